"""Volume states of one scan (issue 15), on the shared win7-vsstest volume scanned with
--snapshots: each distinct descriptor stored once and shared by the states, and
`aclscan diff SCAN.db --from-volume STATE --to-volume STATE`, what changed between two
states. The expected rows and differences come from The Sleuth Kit: every MFT entry's
allocation, sequence number, security id and own $SECURITY_DESCRIPTOR (istat, icat),
names (fls) and the $Secure:$SDS stream (icat) of the live volume and of each store
extracted with libvshadow; the SIDs of a descriptor are read by a small walker of the
MS-DTYP layout written here, not by aclscan."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from aclscan.cli import main
from tests.shared_data import expand
from tests.test_snapshots import FLS_LINE, extract_store

ENTRY_LINE = re.compile(r"^Entry: (\d+)\s+Sequence: (\d+)", re.M)
SECURITY_ID_LINE = re.compile(r"^Security ID: (\d+)", re.M)
OWN_DESCRIPTOR_LINE = re.compile(r"^Type: \$SECURITY_DESCRIPTOR \(80-(\d+)\)", re.M)


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    """(scan database, {volume id: image The Sleuth Kit reads for that state})."""
    directory = tmp_path_factory.mktemp("state_diff")
    volume = expand("volumes", "win7-vsstest.raw", directory)
    db = directory / "vss.db"
    assert main(["scan", str(volume), "--db", str(db), "--snapshots", "-q"]) == 0
    images = {1: volume}
    for index in range(2):
        store = directory / f"store{index}.raw"
        extract_store(volume, index, store)
        images[2 + index] = store  # volumes 2 and 3: the stores in catalog order (tests/test_snapshots.py)
    return db, images


def _run(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, check=True).stdout.decode("utf-8", "replace")


def _sds(image: Path) -> dict[int, bytes]:
    """Security id -> descriptor bytes, from $Secure:$SDS (entry header: hash, id, offset,
    length; the first 256 KiB block of each 512 KiB pair, the mirror skipped)."""
    data = subprocess.run(["icat", str(image), "9-128-8"], capture_output=True, check=True).stdout
    found = {}
    offset = 0
    while offset + 20 <= len(data):
        if offset % 0x80000 >= 0x40000:  # the mirror half
            offset = (offset // 0x80000 + 1) * 0x80000
            continue
        _hash, security_id, _where, length = struct.unpack_from("<IIQI", data, offset)
        if length < 20 or security_id == 0:
            offset = (offset // 0x40000 + 1) * 0x40000 if offset % 0x40000 else offset + 0x40000
            continue
        found.setdefault(security_id, data[offset + 20:offset + length])
        offset += (length + 15) & ~15
    assert found
    return found


@functools.lru_cache(maxsize=None)
def tsk_descriptors(image: Path) -> dict[tuple[int, int], tuple[str, bytes | None, str | None]]:
    """(entry, sequence) -> (path, descriptor bytes, where they are: attribute or sds) of every
    allocated MFT entry, as The Sleuth Kit reads it: a record's own $SECURITY_DESCRIPTOR where
    it has one, else the $SDS entry of its security id."""
    paths = {5: "/"}
    for line in _run("fls", "-r", "-p", str(image)).splitlines():
        match = FLS_LINE.match(line)
        if match and not match["kind"].startswith("V/V") and " * " not in line:
            paths.setdefault(int(match["inode"]), "/" + match["path"].split(":", 1)[0])
    sds = _sds(image)
    # fsstat's metadata range ends with TSK's virtual $OrphanFiles entry.
    records = int(re.search(r"^Range: 0 - (\d+)", _run("fsstat", str(image)), re.M)[1])
    found = {}
    for entry in range(records):
        text = _run("istat", str(image), str(entry))
        if "Not Allocated" in text.split("$STANDARD_INFORMATION")[0]:
            continue
        header = ENTRY_LINE.search(text)
        if entry > 0 and header is None:
            continue
        own = OWN_DESCRIPTOR_LINE.search(text)
        if own:
            raw = subprocess.run(["icat", str(image), f"{entry}-80-{own[1]}"], capture_output=True,
                                 check=True).stdout
            source = "attribute"
        else:
            security_id = SECURITY_ID_LINE.search(text)
            raw = sds.get(int(security_id[1])) if security_id else None
            source = "sds" if raw is not None else None
        found[(entry, int(header[2]))] = (paths.get(entry, f"entry {entry}"), raw, source)
    assert found
    return found


def descriptor_sids(raw: bytes | None) -> set[str]:
    """Owner, group and every ACE's SID of a self-relative descriptor (MS-DTYP 2.4.6)."""
    if not raw:
        return set()

    def sid_at(offset: int) -> tuple[str, int]:
        count = raw[offset + 1]
        authority = int.from_bytes(raw[offset + 2:offset + 8], "big")
        subs = struct.unpack_from(f"<{count}I", raw, offset + 8)
        return "-".join(["S", str(raw[offset]), str(authority), *map(str, subs)]), 8 + 4 * count

    owner, group, sacl, dacl = struct.unpack_from("<IIII", raw, 4)
    found = {sid_at(where)[0] for where in (owner, group) if where}
    for acl in (sacl, dacl):
        if not acl:
            continue
        count = struct.unpack_from("<H", raw, acl + 4)[0]
        ace = acl + 8
        for _ in range(count):
            ace_type, _flags, size = struct.unpack_from("<BBH", raw, ace)
            assert ace_type in (0, 1, 2, 3, 0x11), ace_type  # basic ACEs: the SID follows the mask
            found.add(sid_at(ace + 8)[0])
            ace += size
    return found


def expected_changes(before: dict, after: dict) -> dict[str, set]:
    """Files added, removed and changed from one state to the other: matched by (entry,
    sequence), then by path, as README "Comparing two scans" states."""
    removed = {key for key in before if key not in after}
    added = {key for key in after if key not in before}
    changed = {(key, key) for key in set(before) & set(after) if before[key][1] != after[key][1]}
    for old in sorted(removed):
        partner = next((new for new in sorted(added) if after[new][0] == before[old][0]), None)
        if partner:
            removed.discard(old)
            added.discard(partner)
            if before[old][1] != after[partner][1]:
                changed.add((old, partner))
    return {"added": added, "removed": removed, "changed": changed}


def test_each_distinct_descriptor_is_stored_once_and_the_states_share_it(states):
    db_path, images = states
    db = sqlite3.connect(db_path)
    # Every $SDS entry and every record's own descriptor of every state, as TSK reads them.
    expected = set()
    for image in images.values():
        expected |= {("sds", raw) for raw in _sds(image).values()}
        expected |= {(source, raw) for _path, raw, source in tsk_descriptors(image).values() if source == "attribute"}
    assert expected
    stored = db.execute("SELECT source, raw FROM descriptors").fetchall()
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == expected
    # Within one source each bytes once; across sources only a record's own descriptor that
    # repeats an $SDS entry (README: the two are told apart), never across states.
    for source, rows, distinct in db.execute("SELECT source, COUNT(*), COUNT(DISTINCT raw) FROM descriptors "
                                             "GROUP BY source"):
        assert rows == distinct, source
    assert db.execute("SELECT COUNT(*) FROM descriptors").fetchone()[0] == \
        db.execute("SELECT COUNT(*) FROM descriptors WHERE volume_id = 1").fetchone()[0]  # nothing new in the stores
    # ACEs are rows of their descriptor: none of a descriptor that is not stored.
    assert db.execute("SELECT COUNT(*) FROM aces WHERE descriptor_key NOT IN (SELECT key FROM descriptors)"
                      ).fetchone()[0] == 0
    # The states share rows, and every file of every state still has the bytes TSK reads.
    for volume_id, image in images.items():
        ours = {(entry, sequence): raw for entry, sequence, raw in db.execute(
            "SELECT r.entry, r.sequence, d.raw FROM file_records r LEFT JOIN descriptors d ON d.key = r.descriptor_key "
            "WHERE r.volume_id = ?", [volume_id])}
        theirs = tsk_descriptors(image)
        assert {key: ours.get(key) for key in theirs} == {key: raw for key, (_p, raw, _s) in theirs.items()}
        if volume_id != 1:
            shared = db.execute("SELECT COUNT(DISTINCT r.descriptor_key) FROM file_records r JOIN descriptors d "
                                "ON d.key = r.descriptor_key WHERE r.volume_id = ? AND d.volume_id = 1",
                                [volume_id]).fetchone()[0]
            assert shared > 0
    # Per-state SID counts stay per state (what each state's files name).
    assert {v for (v,) in db.execute("SELECT DISTINCT volume_id FROM sids")} == set(images)


def diff_json(*argv: str, capsys) -> tuple[int, list[dict], str]:
    code = main(["diff", *argv, "--format", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else []), captured.err


@pytest.mark.parametrize("store", [2, 3])
def test_store_to_live_equals_what_the_sleuth_kit_reads(states, store, capsys):
    db, images = states
    before, after = tsk_descriptors(images[store]), tsk_descriptors(images[1])
    expected = expected_changes(before, after)
    assert expected["added"] or expected["removed"], "the stores differ from the live volume"

    code, rows, err = diff_json(str(db), "--from-volume", str(store), "--to-volume", "live", capsys=capsys)
    assert code == 1 and rows, err
    assert "files only" in err  # a shadow copy's registry is not compared
    listed: dict[tuple[str, int], set[str]] = {}
    for row in rows:
        assert row["kind"] == "file"
        listed.setdefault((row["change"], row["entry"]), set()).add(row["sid"])
    assert {entry for (change, entry) in listed if change == "removed"} == \
        {e for e, _s in expected["removed"]} | {old[0] for old, _new in expected["changed"]}
    assert {entry for (change, entry) in listed if change == "added"} == \
        {e for e, _s in expected["added"]} | {new[0] for _old, new in expected["changed"]}
    # Each file on one side only: every SID of its descriptor, as the walker reads the bytes.
    for key in expected["removed"]:
        assert listed[("removed", key[0])] == descriptor_sids(before[key][1]), before[key][0]
    for key in expected["added"]:
        assert listed[("added", key[0])] == descriptor_sids(after[key][1]), after[key][0]

    code, summary, _ = diff_json(str(db), "--from-volume", str(store), "--summary", capsys=capsys)
    assert code == 1 and summary
    want: dict[str, Counter] = {}
    for change, side, keys in (("added", after, expected["added"]), ("removed", before, expected["removed"])):
        for key in keys:
            for sid in descriptor_sids(side[key][1]):
                want.setdefault(sid, Counter())[f"files_{change}"] += 1
    assert not expected["changed"]  # on this volume every difference is a file made or deleted
    assert {r["sid"]: {k: r[k] for k in ("files_added", "files_removed", "files_changed") if r[k]}
            for r in summary} == {sid: dict(counts) for sid, counts in want.items()}


def test_a_state_against_itself_and_between_stores(states, capsys):
    db, images = states
    code, rows, _ = diff_json(str(db), "--from-volume", "live", "--to-volume", "1", capsys=capsys)
    assert (code, rows) == (0, [])
    # Two stores, one named by its GUID (braces and case as a user may type them).
    code, rows, err = diff_json(str(db), "--from-volume", "{600F0B69-5BDF-11E3-9D6C-005056C00008}",
                                "--to-volume", "600f0b6d", capsys=capsys)
    expected = expected_changes(tsk_descriptors(images[2]), tsk_descriptors(images[3]))
    assert code == 1 and rows, err
    assert {r["entry"] for r in rows if r["change"] == "added"} == \
        {e for e, _s in expected["added"]} | {new[0] for _old, new in expected["changed"]}


@pytest.mark.parametrize("argv, message", [
    (["--from-volume", "9"], "'9' is no volume state of"),
    (["--from-volume", "2", "--to-volume", "deadbeef"], "'deadbeef' is no volume state of"),
])
def test_an_unknown_volume_state_is_one_line_and_exit_2(states, argv, message, capsys):
    db, _images = states
    code = main(["diff", str(db), *argv])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], err
    assert "shadow copy {600f0b69-5bdf-11e3-9d6c-005056c00008}" in lines[0]  # what the scan does hold


def test_one_database_without_a_state_is_a_usage_error(states, capsys):
    db, _images = states
    assert main(["diff", str(db)]) == 2
    assert "--from-volume" in capsys.readouterr().err


def test_a_plan_of_a_snapshots_scan_changes_the_live_files_only(states, tmp_path):
    """The live volume and its stores share descriptor rows; a plan (here: the unknown
    -1000 account mapped to BUILTIN\\Administrators) acts on the live volume's files alone."""
    from aclscan.plan import iter_plan_files, read_plan
    from aclscan.store import open_database

    db_path, images = states
    old = "S-1-5-21-4060289323-199701022-3924801681-1000"
    mapping = tmp_path / "map.csv"
    mapping.write_text(f"{old},S-1-5-32-544\n")
    plan_path = tmp_path / "plan.json"
    assert main(["plan", str(db_path), "--map", str(mapping), "--format", "json", "-o", str(plan_path)]) == 1
    live = {key[0]: value for key, value in tsk_descriptors(images[1]).items()}
    naming = {entry for entry, (_path, raw, _source) in live.items() if old in descriptor_sids(raw)}
    assert naming
    in_stores = {entry for volume_id in (2, 3) for (entry, _seq), (_p, raw, _s) in tsk_descriptors(images[volume_id]).items()
                 if old in descriptor_sids(raw)}
    assert in_stores  # the stores name it too, through the very same rows
    planned = list(iter_plan_files(open_database(db_path), read_plan(plan_path)))
    assert planned
    assert {f.volume_id for f in planned} == {1}
    assert {f.entry for f in planned} == naming
    assert sum(d["files"] for d in json.loads(plan_path.read_text())["descriptors"]) == len(naming)


def test_a_plain_scan_against_a_snapshots_scan_pairs_live_with_live(states, tmp_path, capsys):
    """Two scans of one image, without and with --snapshots: the live volumes pair (nothing
    of them differs) and each store, with no store to pair with, lists its files added."""
    db, images = states
    plain = tmp_path / "plain.db"
    assert main(["scan", str(images[1]), "--db", str(plain), "-q"]) == 0
    code, summary, err = diff_json(str(plain), str(db), "--summary", capsys=capsys)
    assert code == 1 and summary
    assert err.count("has no such store in the other scan: its files are listed as added") == 2, err
    want: dict[str, Counter] = {}
    for volume_id in (2, 3):
        for _path, raw, _source in tsk_descriptors(images[volume_id]).values():
            for sid in descriptor_sids(raw):
                want.setdefault(sid, Counter())["files_added"] += 1
    assert want
    assert {r["sid"]: {k: r[k] for k in ("files_added", "files_removed", "files_changed") if r[k]}
            for r in summary} == {sid: dict(counts) for sid, counts in want.items()}
