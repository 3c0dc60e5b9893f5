"""The offline fix on the scenario volumes: each is fixed through ntfs-3g and scanned
again; undo restores every descriptor byte for byte, also after the fix was killed
with SIGKILL at random points; file contents never change."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aclscan.cli import main
from aclscan.plan import HIVE_KINDS
from aclscan.fix import ntfs3g as _ntfs3g
from aclscan.fix import offline as _offline
from aclscan.plan import build_plan, read_plan
from aclscan.store import open_database
from tests import scenarios

FIXED_SCENARIOS = [name for name in scenarios.SCENARIOS]


class Prepared:
    """A writable copy of a scenario volume, its scan, its plan."""

    def __init__(self, directory: Path, name: str):
        self.name = name
        self.image = directory / f"{name}.img"
        with gzip.open(scenarios.SAMPLES / f"{name}.img.gz") as src, open(self.image, "wb") as dst:
            shutil.copyfileobj(src, dst)
        self.db = directory / f"{name}.db"
        assert main(scenarios.scan_args(name, self.db, image=self.image)) == 0
        self.plan_path = directory / f"{name}.plan.json"
        self.plan = build_plan(open_database(self.db), database=str(self.db))
        self.plan_path.write_text(self.plan.to_json())
        self.journal = directory / f"{name}.journal.db"


@pytest.fixture
def prepared(ntfs3g, tmp_path):
    return lambda name: Prepared(tmp_path, name)


def descriptors_by_entry(db_path: Path) -> dict[int, bytes]:
    """Each file's descriptor bytes (MFT entry -> raw), from a scan database."""
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT f.entry, d.raw FROM file_records f JOIN descriptors d ON d.key = f.descriptor_key "
                        "WHERE f.volume_id = 1").fetchall()
    return dict(rows)


def rescan(image: Path, db: Path) -> dict[int, bytes]:
    if db.exists():
        db.unlink()
    assert main(["scan", str(image), "--db", str(db), "--quiet", "--no-resolve"]) == 0
    return descriptors_by_entry(db)


def content_hashes(image: Path) -> dict[str, str]:
    """sha256 of every file's data (and named streams' names), through a read-only mount."""
    hashes = {}
    with _ntfs3g.mounted(image, readonly=True) as root:
        for directory, _dirs, files in os.walk(root):
            for name in files:
                path = Path(directory) / name
                hashes[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def sids_of(raw: bytes) -> set[str]:
    from aclscan.sd.descriptor import SecurityDescriptor

    sd = SecurityDescriptor.from_bytes(raw)
    return {str(s) for s in sd.sids}


@pytest.mark.parametrize("name", FIXED_SCENARIOS)
def test_fix_then_rescan_leaves_nothing_where_the_plan_acted(prepared, name, capsys):
    case = prepared(name)
    before = descriptors_by_entry(case.db)
    contents = content_hashes(case.image)
    code = main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)])
    assert code == (1 if case.plan.refusals else 0)  # what the plan refused remains
    # Each refused SID is named with what still names it: its files and its other places.
    out = capsys.readouterr().out
    findings = {sid: (files, sum(json.loads(places or "{}").values()) + (refs or 0))
                for sid, files, places, refs in sqlite3.connect(case.db).execute(
                    "SELECT sid, files, places, hive_references FROM findings")}
    refused = {a.sid for a in case.plan.refusals} - {a.sid for a in case.plan.actions if a.is_descriptor_action}
    for sid in refused & set(findings):  # a refusal may name a machine, not a SID found
        files, others = findings[sid]
        if files or others:
            assert f"  {sid}: {files} files and {others} other places, not acted on" in out, out
    after = rescan(case.image, case.image.with_suffix(".after.db"))
    assert set(after) == set(before)
    acted = {a.sid: a for a in case.plan.actions if a.is_descriptor_action}
    for entry, raw in after.items():
        carried = sids_of(raw)
        assert not carried & set(acted), f"{name}: entry {entry} still carries an acted-on SID"
        # Every replaced SID's new SID is there exactly where the old one was.
        for sid, action in acted.items():
            if action.kind in ("replace_sid", "translate_sid_history") and sid in sids_of(before[entry]):
                assert action.new_sid in carried
    changed = sum(1 for e in before if before[e] != after[e])
    assert changed == sum(c.files for c in case.plan.descriptors)
    # File contents are never written, but for the hives and task files the plan changes
    # (journaled whole): exactly those differ.
    stores = {path.lstrip("/") for (path,) in sqlite3.connect(case.journal).execute("SELECT path FROM stores")} \
        if any(c.places for c in case.plan.descriptors) or any(a.kind in HIVE_KINDS for a in case.plan.actions) \
        else set()
    now = content_hashes(case.image)
    assert {path for path in contents if now.get(path) != contents[path]} == stores
    user_hives = set(scenarios.manifest(name)["user_hives"])  # a profile's NTUSER.DAT naming a re-pointed SID
    assert all(p.startswith(("Windows/System32/config/", "Windows/System32/Tasks/")) or p in user_hives
               for p in stores)
    if name == "member-after":
        _nothing_grants_jon_kens_files(case, before, after)


def _nothing_grants_jon_kens_files(case: Prepared, before: dict[int, bytes], after: dict[int, bytes]) -> None:
    from aclscan.sd.descriptor import SecurityDescriptor

    facts = scenarios.manifest("member-after")
    ken = next(s for s, e in facts["expected"].items() if e.get("account") == "Ken" and e["verdict"] == "rid_collision")
    jon = next(a["sid"] for a in facts["accounts"] if a["name"] == "Jon")
    kens = [e for e, raw in before.items() if ken in sids_of(raw)]
    assert kens, "member-after has files naming Ken's old SID"
    for entry in kens:
        old, new = SecurityDescriptor.from_bytes(before[entry]), SecurityDescriptor.from_bytes(after[entry])
        jon_before = [a for a in (old.dacl.aces if old.dacl else ()) if str(a.sid) == jon]
        jon_after = [a for a in (new.dacl.aces if new.dacl else ()) if str(a.sid) == jon]
        assert jon_after == jon_before, f"entry {entry}: the fix granted Jon something on Ken's file"
        assert str(new.owner) != jon or str(old.owner) == jon


def test_undo_restores_every_descriptor_byte_for_byte(prepared, capsys):
    case = prepared("member-after")
    before = descriptors_by_entry(case.db)
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)]) == 1  # Ken, Arianne, Ron are refused: problems remain
    assert capsys.readouterr().err.startswith(f"journal: {case.journal}")
    assert main(["undo", str(case.journal)]) == 0
    out = capsys.readouterr().out
    assert f"restored {sum(c.files for c in case.plan.descriptors)} descriptors" in out
    assert rescan(case.image, case.image.with_suffix(".undone.db")) == before
    # A second undo finds everything original already.
    assert main(["undo", str(case.journal)]) == 0
    assert "restored 0 descriptors" in capsys.readouterr().out


def test_journal_keeps_each_descriptor_once_and_undo_reads_a_format_1_journal(prepared, capsys):
    """Format 2 stores each distinct descriptor once; the bytes it gives back are the
    scan's. A journal in format 1 (bytes in every row, as aclscan wrote them before)
    still undoes the fix."""
    case = prepared("member-after")
    before = descriptors_by_entry(case.db)
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)]) == 1
    capsys.readouterr()
    conn = sqlite3.connect(case.journal)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    distinct, entries = conn.execute("SELECT (SELECT count(*) FROM descriptors), count(*) FROM entries").fetchone()
    assert 0 < distinct <= 2 * len(case.plan.descriptors) < entries
    journaled = conn.execute("SELECT e.entry, o.raw FROM entries e JOIN descriptors o ON o.id = e.original").fetchall()
    assert journaled and all(bytes(raw) == before[entry] for entry, raw in journaled)
    # Rewrite it as a format 1 journal: every row carries its bytes.
    with conn:
        conn.executescript("""
            CREATE TABLE old_entries AS SELECT e.seq, e.volume_id, e.entry, e.sequence, e.path,
                o.raw AS original, r.raw AS replacement, e.descriptor_key, e.written, e.restored
            FROM entries e JOIN descriptors o ON o.id = e.original JOIN descriptors r ON r.id = e.replacement;
            DROP TABLE entries; DROP TABLE descriptors;
            ALTER TABLE old_entries RENAME TO entries;
            PRAGMA user_version = 1;
        """)
    conn.close()
    assert main(["undo", str(case.journal)]) == 0
    assert f"restored {entries} descriptors" in capsys.readouterr().out
    assert rescan(case.image, case.image.with_suffix(".undone.db")) == before


def test_kill_9_at_random_points_then_undo(prepared, capsys):
    case = prepared("member-after")
    before = descriptors_by_entry(case.db)
    contents = content_hashes(case.image)
    rng = random.Random(20261125)
    delays = sorted(rng.uniform(0.2, 2.0) for _ in range(4))
    interrupted = []  # (journaled, written) of each killed fix that had started writing
    for round_number, delay in enumerate(delays):
        journal = case.journal.with_name(f"kill-{round_number}.journal.db")
        proc = subprocess.Popen(
            [sys.executable, "-m", "aclscan", "fix", str(case.db), "--plan", str(case.plan_path), "--target",
             str(case.image), "--apply", "--journal", str(journal)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            # The whole group, as a shell's kill of the job would: the fix's re-scan
            # has a row writer child (its leaving a killed parent is in test_row_writer).
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _wait_for_group_to_end(proc.pid)
        if journal.exists():
            written = sqlite3.connect(journal).execute("SELECT count(*), sum(written) FROM entries").fetchone()
            interrupted.append(written)
            assert main(["undo", str(journal)]) == 0, capsys.readouterr()
        else:
            # Killed before the journal existed: nothing can have been written.
            _release_our_mounts(case.image)
        assert rescan(case.image, case.image.with_suffix(f".k{round_number}.db")) == before, f"after {delay:.2f} s"
    assert content_hashes(case.image) == contents
    print("journaled/written per killed fix:", interrupted)
    assert any(0 < (w or 0) < sum(c.files for c in case.plan.descriptors) for _j, w in interrupted) or \
        len(interrupted) < len(delays), "no fix was killed mid-write: choose other delays"


def _wait_for_group_to_end(group: int) -> None:
    for _ in range(200):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {group} outlived SIGKILL")


def _release_our_mounts(image: Path) -> None:
    from aclscan.fix.offline import mounted_at

    for mount_point in mounted_at(str(image)):
        assert _ntfs3g.release_mount(mount_point)


def test_dry_run_writes_nothing(prepared, capsys):
    case = prepared("av-service")
    digest = hashlib.sha256(case.image.read_bytes()).hexdigest()
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image)]) == 0
    out = capsys.readouterr().out
    assert "would rewrite 36 files' descriptors (7 distinct descriptors)" in out
    assert "dry run: nothing was written" in out
    assert hashlib.sha256(case.image.read_bytes()).hexdigest() == digest


def test_refuses_another_volume_a_compressed_image_and_a_mounted_target(prepared, tmp_path, capsys):
    case = prepared("av-service")
    other = prepared("clean")
    args = ["fix", str(case.db), "--plan", str(case.plan_path), "--apply", "--target"]
    assert main(args + [str(other.image)]) == 16
    assert "is not the scanned volume" in capsys.readouterr().err  # same serial (clones), another $MFT
    assert main(args + [str(scenarios.SAMPLES / "av-service.img.gz")]) == 16
    assert "gzip image" in capsys.readouterr().err
    with _ntfs3g.mounted(case.image, readonly=True) as mount_point:
        assert main(args + [str(case.image)]) == 16
        assert f"is mounted at {mount_point}" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.aclscan-journal-*"))


def test_a_file_changed_since_the_scan_is_left_alone(prepared, capsys):
    case = prepared("av-service")
    planned = read_plan(case.plan_path)
    victim = "/Program Files/AVScan"
    with _ntfs3g.mounted(case.image) as root:
        path = root / victim.lstrip("/")
        original = _ntfs3g.get_ntfs_acl(path)
        from aclscan.sd.sddl import from_sddl

        _ntfs3g.set_ntfs_acl(path, from_sddl("O:BAG:SYD:(A;;FA;;;BA)").to_bytes())
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)]) == 1
    out = capsys.readouterr().out
    assert f"left alone, changed since the scan: {victim}" in out
    assert f"rewrote {sum(c.files for c in planned.descriptors) - 1} files" in out
    assert original  # the original was read; the file keeps the user's later descriptor
    with _ntfs3g.mounted(case.image, readonly=True) as root:
        assert _ntfs3g.get_ntfs_acl(root / victim.lstrip("/")) == from_sddl("O:BAG:SYD:(A;;FA;;;BA)").to_bytes()


def test_a_record_reused_since_the_scan_is_left_alone(prepared, capsys):
    """The lib backend opens files by MFT entry: a record whose sequence number is no longer
    the scan's holds another file now, and is left alone (here the scan's number is made
    older, as if the file had been deleted and its record reused)."""
    case = prepared("av-service")
    planned = read_plan(case.plan_path)
    victim = "/Program Files/AVScan"
    conn = sqlite3.connect(case.db)
    entry, sequence = conn.execute("SELECT entry, sequence FROM files WHERE path = ?", [victim]).fetchone()
    with conn:
        conn.execute("UPDATE file_records SET sequence = ? WHERE volume_id = 1 AND entry = ?", [sequence + 1, entry])
    conn.close()
    before = descriptors_by_entry(case.db)[entry]
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal), "--backend", "lib"]) == 1
    out = capsys.readouterr().out
    assert f"left alone, changed since the scan: {victim}" in out
    assert f"rewrote {sum(c.files for c in planned.descriptors) - 1} files" in out
    assert rescan(case.image, case.image.with_suffix(".after-reuse.db"))[entry] == before
    from aclscan.fix import libntfs3g

    with libntfs3g.opened(case.image) as volume, pytest.raises(libntfs3g.RecordReused,
                                                              match=f"sequence {sequence}, the scan's {sequence + 1}"):
        volume.inode(entry, sequence + 1)


def test_bad_plan_and_journal_are_one_line_errors(prepared, tmp_path, capsys):
    case = prepared("clean")
    bad = tmp_path / "bad.json"
    bad.write_text('{"plan_format": 99}')
    assert main(["fix", str(case.db), "--plan", str(bad), "--target", str(case.image)]) == 8
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["undo", str(tmp_path / "missing.db")]) == 5
    assert main(["undo", str(case.db)]) == 5
    assert "not an aclscan fix journal" in capsys.readouterr().err


def test_a_plan_of_another_scan_is_refused(prepared, capsys):
    case = prepared("av-service")
    other = prepared("member-after")
    assert main(["fix", str(case.db), "--plan", str(other.plan_path), "--target", str(case.image)]) == 16
    assert "the plan was made from another scan" in capsys.readouterr().err


def test_a_domain_controller_plan_changes_nothing_and_exits_1(prepared, capsys):
    case = prepared("cloned-dc")
    assert [a.verdict for a in case.plan.refusals] == ["domain_controller"]
    digest = hashlib.sha256(case.image.read_bytes()).hexdigest()
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)]) == 1
    assert "domain controller" in capsys.readouterr().out
    assert hashlib.sha256(case.image.read_bytes()).hexdigest() == digest


def test_fix_and_undo_through_a_block_device(prepared, capsys):
    """--target may be a device: a loop device over the image stands in for a disk."""
    if shutil.which("losetup") is None:
        pytest.skip("losetup not found (util-linux)")
    case = prepared("av-service")
    before = descriptors_by_entry(case.db)
    done = subprocess.run(["losetup", "--find", "--show", str(case.image)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"no loop device here: {done.stderr.strip()}")
    device = done.stdout.strip()
    try:
        # The device must be the scanned volume too: scan it, plan from that scan.
        device_db = case.db.with_name("device.db")
        assert main(scenarios.scan_args("av-service", device_db, image=Path(device))) == 0
        plan_path = case.plan_path.with_name("device.plan.json")
        plan_path.write_text(build_plan(open_database(device_db), database=str(device_db)).to_json())
        journal = case.journal.with_name("device.journal.db")
        assert main(["fix", str(device_db), "--plan", str(plan_path), "--target", device, "--apply",
                     "--journal", str(journal)]) == 0
        assert "rewrote 36 files' descriptors" in capsys.readouterr().out
        with _ntfs3g.mounted(device, readonly=True) as mount_point:
            assert main(["fix", str(device_db), "--plan", str(plan_path), "--target", device]) == 16
            assert f"is mounted at {mount_point}" in capsys.readouterr().err
        assert main(["undo", str(journal)]) == 0
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True)
    assert rescan(case.image, case.image.with_suffix(".device-undone.db")) == before


def test_a_plan_whose_new_bytes_were_swapped_is_refused(prepared, tmp_path, capsys):
    """The plan file travels between people: its new_raw is recomputed from the scan."""
    import base64
    import json

    from aclscan.sd.sddl import from_sddl

    case = prepared("member-after")
    digest = hashlib.sha256(case.image.read_bytes()).hexdigest()
    data = json.loads(case.plan_path.read_text())
    victim = data["descriptors"][0]
    assert victim["new_sddl"] != "O:WDG:WDD:(A;;FA;;;WD)"
    victim["new_raw"] = base64.b64encode(from_sddl("O:WDG:WDD:(A;;FA;;;WD)").to_bytes()).decode()
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps(data))
    for extra in ([], ["--apply", "--journal", str(case.journal)]):
        assert main(["fix", str(case.db), "--plan", str(swapped), "--target", str(case.image), *extra]) == 16
        err = capsys.readouterr().err
        assert err == (f"Error: plan descriptor {victim['descriptor_key']}: new_raw is not the scanned descriptor "
                       "with the plan's actions applied: refusing the plan\n")
    assert not case.journal.exists()
    assert hashlib.sha256(case.image.read_bytes()).hexdigest() == digest


def test_a_plan_whose_action_or_old_hash_was_changed_is_refused(prepared, tmp_path, capsys):
    import json

    case = prepared("member-after")
    digest = hashlib.sha256(case.image.read_bytes()).hexdigest()
    data = json.loads(case.plan_path.read_text())
    replaced = next(a for a in data["actions"] if a["kind"] == "replace_sid")
    replaced["new_sid"] = "S-1-1-0"  # Everyone instead of today's account of that name
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    assert main(["fix", str(case.db), "--plan", str(edited), "--target", str(case.image), "--apply"]) == 16
    assert f"plan action {replaced['id']} (replace_sid {replaced['sid']} -> S-1-1-0)" in capsys.readouterr().err
    data = json.loads(case.plan_path.read_text())
    data["descriptors"][-1]["old_sha256"] = "0" * 64
    edited.write_text(json.dumps(data))
    assert main(["fix", str(case.db), "--plan", str(edited), "--target", str(case.image), "--apply"]) == 16
    assert (f"plan descriptor {data['descriptors'][-1]['descriptor_key']}: old_sha256"
            in capsys.readouterr().err)
    assert hashlib.sha256(case.image.read_bytes()).hexdigest() == digest
    assert not list(tmp_path.glob("*.aclscan-journal-*"))


def test_undo_leaves_a_descriptor_changed_since_the_fix_unless_forced(prepared, capsys):
    from aclscan.sd.sddl import from_sddl

    case = prepared("av-service")
    before = descriptors_by_entry(case.db)
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)]) == 0
    capsys.readouterr()
    victim = "/Program Files/AVScan"
    later = from_sddl("O:BAG:SYD:(A;;FA;;;BA)(A;;FR;;;BU)").to_bytes()  # an administrator's change after the fix
    with _ntfs3g.mounted(case.image) as root:
        path = root / victim.lstrip("/")
        fixed = _ntfs3g.get_ntfs_acl(path)
        _ntfs3g.set_ntfs_acl(path, later)
    assert fixed != later
    assert main(["undo", str(case.journal)]) == 1
    out = capsys.readouterr().out
    files = sum(c.files for c in case.plan.descriptors)
    assert f"restored {files - 1} descriptors, 0 already original, 1 changed since the fix" in out
    assert f"left alone, changed since the fix: {victim}\n" in out
    after = rescan(case.image, case.image.with_suffix(".undone.db"))
    entry = next(e for e, raw in after.items() if raw == later)
    with _ntfs3g.mounted(case.image, readonly=True) as root:
        assert _ntfs3g.get_ntfs_acl(root / victim.lstrip("/")) == later  # ntfs-3g's own view
    assert {e: r for e, r in after.items() if e != entry} == {e: r for e, r in before.items() if e != entry}
    assert main(["undo", str(case.journal), "--force"]) == 0
    assert f"restored 1 descriptors, {files - 1} already original, 0 changed since the fix" in capsys.readouterr().out
    assert rescan(case.image, case.image.with_suffix(".forced.db")) == before


def test_refuses_a_target_mounted_through_a_hard_link(prepared, tmp_path, capsys):
    """Compared by device and inode: another name of the same file is the same target."""
    case = prepared("av-service")
    digest = hashlib.sha256(case.image.read_bytes()).hexdigest()
    link = tmp_path / "elsewhere" / "another-name.img"
    link.parent.mkdir()
    os.link(case.image, link)
    with _ntfs3g.mounted(link) as mount_point:
        assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                     "--journal", str(case.journal)]) == 16
        assert capsys.readouterr().err == f"Error: {case.image} is mounted at {mount_point}: unmount it first\n"
    assert not case.journal.exists()
    assert hashlib.sha256(case.image.read_bytes()).hexdigest() == digest


def test_refuses_a_target_attached_to_a_loop_device_not_mounted(prepared, tmp_path, capsys):
    case = prepared("av-service")
    digest = hashlib.sha256(case.image.read_bytes()).hexdigest()
    link = tmp_path / "linked.img"
    os.link(case.image, link)
    device = subprocess.run(["losetup", "--find", "--show", str(link)], capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                     "--journal", str(case.journal)]) == 16
        assert capsys.readouterr().err == (f"Error: {case.image} is attached to {device}: detach it first "
                                           f"(losetup -d {device})\n")
        # losetup -j, util-linux's own lookup by the backing file, agrees.
        listed = subprocess.run(["losetup", "-j", str(case.image)], capture_output=True, text=True).stdout
        assert listed.startswith(f"{device}:")
    finally:
        subprocess.run(["losetup", "-d", device], check=True)
    assert not case.journal.exists()
    assert hashlib.sha256(case.image.read_bytes()).hexdigest() == digest
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image)]) == 0


def test_refuses_a_read_only_block_device_and_an_immutable_image(prepared, capsys):
    """A loop device attached read-only opens for writing but fails every write, and
    ntfs-3g does not always say so: refused before anything, as is an immutable image
    (root's permission bits would not stop either)."""
    case = prepared("member-after")
    before = hashlib.sha256(case.image.read_bytes()).hexdigest()
    device = subprocess.run(["losetup", "-r", "--find", "--show", str(case.image)], capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", device, "--apply",
                     "--journal", str(case.journal)]) == 16
        assert capsys.readouterr().err.strip() == f"Error: {device} is a read-only block device (blockdev --setrw, " \
                                                  "or a loop device attached without -r)"
    finally:
        subprocess.run(["losetup", "-d", device], check=True)
    subprocess.run(["chattr", "+i", str(case.image)], check=True)
    try:
        assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                     "--journal", str(case.journal)]) == 16
        assert capsys.readouterr().err.strip() == f"Error: {case.image} is not writable: Operation not permitted"
    finally:
        subprocess.run(["chattr", "-i", str(case.image)], check=True)
    assert not case.journal.exists()
    assert hashlib.sha256(case.image.read_bytes()).hexdigest() == before


def test_writes_the_volume_did_not_keep_are_errors(prepared, tmp_path, capsys):
    """The fix checks its writes in the re-scan: a file the journal says was written must
    carry the replacement bytes. Checked against a scan of the volume as it was before
    the fix (as if no write had been kept): every written file is named."""
    case = prepared("member-after")
    untouched = tmp_path / "untouched.img"
    shutil.copyfile(case.image, untouched)
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)]) == 1
    capsys.readouterr()
    assert _offline._writes_not_kept(f"{case.journal}.after.db", str(case.journal)) == []
    as_if_dropped = tmp_path / "dropped.db"
    assert main(scenarios.scan_args("member-after", as_if_dropped, image=untouched)) == 0
    written = sqlite3.connect(case.journal).execute("SELECT count(*) FROM entries WHERE written = 1").fetchone()[0]
    errors = _offline._writes_not_kept(str(as_if_dropped), str(case.journal))
    assert written == sum(c.files for c in case.plan.descriptors) > 20
    assert len(errors) == 21 and errors[-1].startswith(f"{written} files written do not carry their new descriptor")


def test_refuses_a_target_another_process_has_open(prepared, capsys):
    case = prepared("av-service")
    with open(case.image, "rb") as held:
        holder = subprocess.Popen(["sleep", "60"], stdin=held)
    try:
        assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                     "--journal", str(case.journal)]) == 16
        assert f"is open in process {holder.pid} (sleep)" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert not case.journal.exists()


def _no_work_folders(directory: Path) -> None:
    assert not list(directory.glob(f"{_ntfs3g.MOUNT_PREFIX}*")), "a work folder was left behind"


def test_a_full_journal_disk_says_what_was_changed_and_how_to_undo(prepared, tmp_path, monkeypatch, capsys):
    """The journal on a small tmpfs that fills after the first batch: one line with the count
    of files already changed and the undo command; undo works on the still-full disk."""
    from aclscan.errors import JournalWriteFailed
    from aclscan.fix import offline

    case = prepared("member-after")
    before = descriptors_by_entry(case.db)
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    try:
        journal = small / "journal.db"
        batches = []

        def fill_after_the_first_batch(done, total):
            batches.append(done)
            if len(batches) == 1:
                with open(small / "filler", "wb") as filler:
                    with pytest.raises(OSError):
                        while True:
                            filler.write(b"\0" * 65536)
                            filler.flush()

        with pytest.raises(JournalWriteFailed) as failed:
            offline.fix(open_database(case.db), read_plan(case.plan_path), case.image, apply=True,
                        journal_path=str(journal), progress=fill_after_the_first_batch, batch=8)
        conn = sqlite3.connect(journal)
        journaled = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        conn.close()
        assert journaled == 8  # the second batch's originals could not be journaled: never written
        message = str(failed.value)
        assert "\n" not in message and failed.value.exit_code == 5
        assert message.startswith(f"the journal {journal} cannot be written (database or disk is full): ")
        assert message.endswith(f": 8 files were already changed; aclscan undo {journal} restores them")
        assert not offline.mounted_at(str(case.image))
        _no_work_folders(tmp_path)
        assert main(["undo", str(journal)]) == 0  # the disk is still full
        out = capsys.readouterr().out
        assert "restored 8 descriptors" in out and "note: the journal" in out
    finally:
        subprocess.run(["umount", "--lazy", str(small)], check=True)
    assert rescan(case.image, case.image.with_suffix(".undone.db")) == before


def _start_fix(case: Prepared, journal: Path, tmp: Path, *extra: str) -> subprocess.Popen:
    """A fix through the FUSE backend (whose mount and work folder are what must be cleaned
    up) unless ``extra`` says otherwise."""
    return subprocess.Popen(
        [sys.executable, "-m", "aclscan", "fix", str(case.db), "--plan", str(case.plan_path), "--target",
         str(case.image), "--apply", "--journal", str(journal), "--backend", "fuse", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TMPDIR": str(tmp)})


def _wait_until_writing(journal: Path, proc: subprocess.Popen) -> str:
    """The mount point, once the journal names it and holds a first batch."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the fix ended before it could be interrupted"
        if journal.exists():
            try:
                conn = sqlite3.connect(journal)
                mount = conn.execute("SELECT value FROM meta WHERE key = 'mount_point'").fetchone()
                rows = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
                conn.close()
            except sqlite3.Error:
                mount, rows = None, 0
            if mount and mount[0] and rows:
                return mount[0]
        time.sleep(0.01)
    raise AssertionError("the fix never started writing")


def test_sigterm_mid_fix_unmounts_and_cleans_up(prepared, tmp_path, capsys):
    case = prepared("member-after")
    before = descriptors_by_entry(case.db)
    work = tmp_path / "tmp"
    work.mkdir()
    proc = _start_fix(case, case.journal, work)
    mount_point = _wait_until_writing(case.journal, proc)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: the fix stopped by SIGTERM: ") and last.endswith(
        f"files were already changed; aclscan undo {case.journal} restores them")
    assert not os.path.exists(mount_point) and not _ntfs3g_mounts(case.image)
    _no_work_folders(work)
    assert main(["undo", str(case.journal)]) == 0
    assert rescan(case.image, case.image.with_suffix(".undone.db")) == before


def test_sigterm_mid_fix_through_the_library_closes_the_volume_cleanly(prepared, tmp_path, capsys):
    """The lib backend: the signal is taken between two library calls, the volume is
    closed (ntfs_leave_file_security flushes it), nothing holds the image, ntfsfix finds
    it consistent, and undo restores every descriptor."""
    from aclscan.fix.holders import holders

    case = prepared("member-after")
    before = descriptors_by_entry(case.db)
    work = tmp_path / "tmp"
    work.mkdir()
    proc = _start_fix(case, case.journal, work, "--backend", "lib", "--batch", "1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if case.journal.exists():
            try:
                conn = sqlite3.connect(f"file:{case.journal}?mode=ro", uri=True)
                journaled = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
                conn.close()
            except sqlite3.Error:
                journaled = 0
            if journaled >= 20:
                break
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].endswith(f"aclscan undo {case.journal} restores them")
    assert not holders(case.image)
    assert_consistent(case.image)
    assert main(["undo", str(case.journal)]) == 0
    assert rescan(case.image, case.image.with_suffix(".undone.db")) == before


def _ntfs3g_mounts(image: Path) -> list[str]:
    from aclscan.fix.offline import mounted_at

    return mounted_at(str(image))


def test_undo_takes_down_the_dead_mount_a_killed_fix_and_driver_leave(prepared, tmp_path, capsys):
    """kill -9 of the fix and its ntfs-3g: the mount is dead ("Transport endpoint is not
    connected"); undo releases it, removes the work folder and restores byte for byte."""
    import errno

    case = prepared("member-after")
    before = descriptors_by_entry(case.db)
    work = tmp_path / "tmp"
    work.mkdir()
    proc = _start_fix(case, case.journal, work)
    mount_point = _wait_until_writing(case.journal, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the driver dies with the group
        try:
            os.stat(mount_point)
        except OSError as exc:
            assert exc.errno == errno.ENOTCONN
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the mount is still served")
    assert _ntfs3g_mounts(case.image) == [mount_point]
    assert main(["undo", str(case.journal)]) == 0, capsys.readouterr()
    assert not _ntfs3g_mounts(case.image)
    _no_work_folders(work)
    assert rescan(case.image, case.image.with_suffix(".undone.db")) == before


def _findings(db: Path) -> set[tuple]:
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute("SELECT sid, verdict, account, mapped_sid, files FROM findings"))
    finally:
        conn.close()


@pytest.mark.parametrize("name", ["member-after", "domain-member"])
def test_the_after_database_has_the_original_scans_verdicts(prepared, tmp_path, capsys, name):
    """fix --apply re-scans with the original scan's account sources (member-after's
    history, domain-member's domain export; the volume's hives read again): findings and
    check on it tell the truth."""
    import json

    case = prepared(name)
    refused = {a.sid for a in case.plan.refusals}
    assert main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)]) == (1 if refused else 0)
    capsys.readouterr()
    after = Path(f"{case.journal}.after.db")
    # The same scan, run by hand on the fixed image with the scenario's inputs, is the reference.
    by_hand = tmp_path / "by-hand.db"
    assert main(scenarios.scan_args(name, by_hand, image=case.image)) == 0
    assert _findings(after) and _findings(after) == _findings(by_hand)
    code = main(["findings", str(after), "--problems", "--format", "json"])
    listed = json.loads(capsys.readouterr().out)
    assert code == (1 if listed else 0)
    assert refused <= {row["sid"] for row in listed}
    on_files = {row["sid"] for row in listed if row["files"]}
    assert on_files == refused  # every acted-on SID is gone from the files
    if name == "member-after":
        assert refused
        assert main(["check", str(after)]) == 1  # judged (not exit 5: it has machine facts)
        assert "NOT READY" in capsys.readouterr().out
    else:
        assert main(["check", str(after)]) in (0, 1)


@pytest.mark.parametrize("backend", ["lib", "fuse"])
def test_kill_9_mid_write_then_undo(prepared, backend, capsys):
    """One file per journal commit (--batch 1) spreads the writes out, so each SIGKILL lands
    while descriptors are being written; undo restores every one byte for byte."""
    case = prepared("member-after")
    before = descriptors_by_entry(case.db)
    contents = content_hashes(case.image)
    total = sum(c.files for c in case.plan.descriptors)
    rng = random.Random(20261201)
    mid_write = []
    for round_number in range(3):
        journal = case.journal.with_name(f"kill-{backend}-{round_number}.journal.db")
        proc = subprocess.Popen(
            [sys.executable, "-m", "aclscan", "fix", str(case.db), "--plan", str(case.plan_path), "--target",
             str(case.image), "--apply", "--journal", str(journal), "--backend", backend, "--batch", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        target = rng.randrange(1, total)
        while proc.poll() is None:  # kill once `target` files are journaled
            journaled = 0
            if journal.exists():
                try:
                    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
                    journaled = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
                    conn.close()
                except sqlite3.Error:
                    pass
            if journaled >= target:
                os.kill(proc.pid, signal.SIGKILL)  # the fix only: a FUSE driver lives on
                break
            time.sleep(0.001)
        proc.wait()
        conn = sqlite3.connect(journal)
        journaled, written = conn.execute("SELECT count(*), coalesce(sum(written), 0) FROM entries").fetchone()
        conn.close()
        mid_write.append((journaled, written))
        assert main(["undo", str(journal)]) == 0, capsys.readouterr()
        assert rescan(case.image, case.image.with_suffix(f".k{round_number}.db")) == before
    print(f"{backend}: journaled/written per killed fix of {total} files:", mid_write)
    assert all(0 < journaled < total for journaled, _w in mid_write), mid_write
    assert content_hashes(case.image) == contents
    assert_consistent(case.image)


def test_lib_and_fuse_backends_write_the_same_descriptors(prepared, tmp_path, capsys):
    """The same plan through both backends, on two copies of one volume: file by file the
    same descriptor bytes (read by ntfs-3g's FUSE driver, an independent path), and
    ntfsfix and ntfssecaudit find both volumes consistent."""
    case = prepared("member-after")
    copy = tmp_path / "fuse-copy.img"
    shutil.copyfile(case.image, copy)
    copy_db = tmp_path / "fuse-copy.db"
    assert main(scenarios.scan_args("member-after", copy_db, image=copy)) == 0
    copy_plan = tmp_path / "fuse-copy.plan.json"
    copy_plan.write_text(build_plan(open_database(copy_db), database=str(copy_db)).to_json())
    for db, plan, image, backend in ((case.db, case.plan_path, case.image, "lib"),
                                     (copy_db, copy_plan, copy, "fuse")):
        assert main(["fix", str(db), "--plan", str(plan), "--target", str(image), "--apply", "--backend", backend,
                     "--journal", str(tmp_path / f"{backend}.journal.db")]) == 1
    capsys.readouterr()
    by_backend = {}
    for image in (case.image, copy):
        seen = {}
        with _ntfs3g.mounted(image, readonly=True) as root:
            for directory, dirs, files in os.walk(root):
                for name in dirs + files:
                    path = Path(directory) / name
                    seen[str(path.relative_to(root))] = _ntfs3g.get_ntfs_acl(path)
            seen["/"] = _ntfs3g.get_ntfs_acl(root)
        by_backend[image] = seen
    lib, fuse = by_backend[case.image], by_backend[copy]
    assert len(lib) > 50 and lib.keys() == fuse.keys()
    differing = [path for path in lib if lib[path] != fuse[path]]
    assert not differing, differing[:5]
    after = rescan(case.image, tmp_path / "lib-after.db")
    changed = sum(1 for e, raw in descriptors_by_entry(case.db).items() if raw != after.get(e))
    assert changed == sum(c.files for c in case.plan.descriptors)
    for image in (case.image, copy):
        assert_consistent(image)


def test_lib_reads_each_security_id_once_and_as_the_fuse_driver_does(prepared):
    """The lib backend reads a security id's descriptor once and takes it from memory for
    the next record with that id: every file's bytes still equal what ntfs-3g's FUSE driver
    gives (an independent path), the root directory's own $SECURITY_DESCRIPTOR among them."""
    from aclscan.fix import libntfs3g

    case = prepared("member-after")
    files = [row for row in sqlite3.connect(case.db).execute("SELECT path, entry, sequence FROM files WHERE volume_id = 1")
             if not row[0].startswith(_offline.ORPHAN_FILES)]  # records with no path: no FUSE name to compare
    assert len(files) > 50
    through_lib = {}
    with libntfs3g.opened(case.image) as volume:
        assert volume.ids_name_descriptors  # $Secure open: ids name descriptors
        for path, entry, sequence in files:
            with contextlib.closing(volume.inode(entry, sequence)) as inode:
                through_lib[path] = inode.read()
        remembered = len(volume._descriptor_of_id)
    assert 0 < remembered < len(files) / 4  # few real reads
    with _ntfs3g.mounted(case.image, readonly=True) as root:
        through_fuse = {path: _ntfs3g.get_ntfs_acl(root if path == "/" else root / path.lstrip("/"))
                        for path, _entry, _sequence in files}
    assert "/" in through_lib
    differing = [path for path in through_lib if through_lib[path] != through_fuse[path]]
    assert not differing, differing[:5]


def assert_consistent(image: Path) -> None:
    """ntfs-3g's own checkers: ntfsfix finds the volume sound, and ntfssecaudit's audit of
    $Secure ($SDS and its mirror, $SII, $SDH) finds every key in every list and no error,
    but one it makes itself (see _audit_reads_past_sds)."""
    done = subprocess.run(["ntfsfix", "-n", str(image)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    audit = subprocess.run(["ntfssecaudit", "-a", str(image)], capture_output=True, text=True).stdout
    assert "All keys are present in all lists" in audit, audit[-2000:]
    for part in ("$SDS-1", "$SII", "$SDH"):
        assert f"0 errors in {part}\n" in audit, audit[-2000:]
    assert "0 errors in $SDS-2\n" in audit or _audit_reads_past_sds(image, audit), audit[-2000:]


def _audit_reads_past_sds(image: Path, audit: str) -> bool:
    """ntfssecaudit 1.5.0 steps to the next 16-byte boundary after the last $SDS mirror
    entry even where ntfs-3g ended the stream with that entry (no padding), and reads
    whatever lies past the end as an entry "too long". True when that is the only error:
    the last entry it found valid ends exactly where $SDS ends (The Sleuth Kit reads the
    stream)."""
    mirror = audit[audit.index("Auditing $SDS-2"):audit.index("Auditing $SII")]
    if "1 errors in $SDS-2" not in mirror or "Security attribute is too long" not in mirror:
        return False
    last = int(re.findall(r"Valid entry at (0x[0-9a-f]+)", mirror)[-1], 16)
    attribute = next(line.split("(", 1)[1].split(")", 1)[0] for line in subprocess.run(
        ["istat", str(image), "9"], capture_output=True, text=True, check=True).stdout.splitlines()
        if "Name: $SDS" in line)
    sds = subprocess.run(["icat", str(image), f"9-{attribute}"], capture_output=True, check=True).stdout
    length = struct.unpack_from("<I", sds, last + 16)[0]  # an $SDS entry header: hash, id, offset (8), length
    return last + length == len(sds)