"""`aclscan diff` on real before/after pairs: member-after scanned, planned, fixed with
`fix --apply` through ntfs-3g and scanned again by the fix. What diff lists is checked
against the plan (which descriptors it rewrote, old and new SDDL) and against the two
databases compared by MFT entry and by place location."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from aclscan.cli import main
from aclscan.places import PLACE_KINDS
from tests import scenarios


class FixedPair:
    """Sample volume NAME before and after `fix --apply` of a plan made with ``plan_options``."""

    def __init__(self, directory: Path, name: str, plan_options: list[str]):
        image = directory / f"{name}.img"
        with gzip.open(scenarios.SAMPLES / f"{name}.img.gz") as src, open(image, "wb") as dst:
            shutil.copyfileobj(src, dst)
        self.before = directory / "before.db"
        assert main(scenarios.scan_args(name, self.before, image=image)) == 0
        plan_path = directory / "plan.json"
        assert main(["plan", str(self.before), *plan_options, "--format", "json", "-o", str(plan_path)]) in (0, 1)
        self.plan = json.loads(plan_path.read_text())
        journal = directory / "journal.db"
        assert main(["fix", str(self.before), "--plan", str(plan_path), "--target", str(image), "--apply",
                     "--journal", str(journal)]) in (0, 1)
        self.after = Path(str(journal) + ".after.db")
        assert self.after.is_file()
        self.actions = {a["id"]: a for a in self.plan["actions"]}


@pytest.fixture(scope="module")
def default_fix(ntfs3g, tmp_path_factory):
    return FixedPair(tmp_path_factory.mktemp("diff_default"), "member-after", [])


@pytest.fixture(scope="module")
def remove_orphans_fix(ntfs3g, tmp_path_factory):
    return FixedPair(tmp_path_factory.mktemp("diff_remove_orphans"), "member-after", ["--remove-orphans"])


@pytest.fixture(scope="module")
def av_service_fix(ntfs3g, tmp_path_factory):
    return FixedPair(tmp_path_factory.mktemp("diff_av_service"), "av-service", [])


def run_diff(capsys, *args) -> tuple[int, list[dict], str]:
    code = main(["diff", *map(str, args), "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else [], captured.err


def rows_by_place(rows: list[dict]) -> dict[tuple, list[dict]]:
    found = defaultdict(list)
    for row in rows:
        found[(row["kind"], row["entry"] if row["kind"] == "file" else row["path"])].append(row)
    return found


def test_diff_after_fix_lists_exactly_the_files_the_plan_rewrote(default_fix, capsys):
    case = default_fix
    changed_keys = {d["descriptor_key"]: d for d in case.plan["descriptors"]}
    assert changed_keys, "the default plan of member-after rewrites descriptors"
    before = sqlite3.connect(case.before)
    planned = {entry: key for entry, key in before.execute("SELECT entry, descriptor_key FROM file_records")
               if key in changed_keys}
    assert len(planned) == sum(d["files"] for d in case.plan["descriptors"])
    # The two databases compared by MFT entry: exactly those files' bytes differ.
    before.execute("ATTACH DATABASE ? AS after", [str(case.after)])
    differing = {entry for (entry,) in before.execute(
        "SELECT ra.entry FROM file_records ra JOIN descriptors da ON da.key = ra.descriptor_key "
        "JOIN after.file_records rb ON rb.entry = ra.entry AND rb.sequence = ra.sequence "
        "JOIN after.descriptors db ON db.key = rb.descriptor_key WHERE da.raw != db.raw")}
    assert differing == set(planned)

    code, rows, err = run_diff(capsys, case.before, case.after)
    assert code == 1, err
    places = rows_by_place(rows)
    files = {entry for (kind, entry) in places if kind == "file"}
    assert files == set(planned)
    # The default plan changes no registry place (its descriptors have places == 0) and no hive reference.
    assert all(d["places"] == 0 for d in case.plan["descriptors"])
    assert {kind for kind, _ in places} == {"file"}

    # Every changed file: the old SIDs the plan acted on removed, their new SIDs added,
    # with the ACE text the plan's old and new SDDL hold.
    for entry, key in planned.items():
        planned_descriptor = changed_keys[key]
        acted = [case.actions[i] for i in planned_descriptor["actions"]]
        assert acted and all(a["kind"] == "replace_sid" for a in acted)
        found = places[("file", entry)]
        assert {r["sid"] for r in found if r["change"] == "removed"} == {a["sid"] for a in acted}
        assert {r["sid"] for r in found if r["change"] == "added"} == {a["new_sid"] for a in acted}
        assert {r["change"] for r in found} == {"removed", "added"}
        for row in found:
            if row["part"] in ("dacl", "sacl"):
                text = row["old"] if row["change"] == "removed" else row["new"]
                sddl = planned_descriptor["old_sddl"] if row["change"] == "removed" else planned_descriptor["new_sddl"]
                assert text in sddl
            else:
                assert row["part"] in ("owner", "group")
                prefix = "O:" if row["part"] == "owner" else "G:"
                sid = row["old"] or row["new"]
                sddl = planned_descriptor["old_sddl"] if row["change"] == "removed" else planned_descriptor["new_sddl"]
                assert prefix + sid in sddl


def test_diff_summary_counts_each_sids_files(default_fix, capsys):
    case = default_fix
    code = main(["diff", str(case.before), str(case.after), "--summary", "--format", "json"])
    summary = {r["sid"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 1 and summary
    for action in (a for a in case.plan["actions"] if a["kind"] == "replace_sid"):
        # Files naming the old SID before (owner, group or ACE), from the scan's own tables.
        naming = sqlite3.connect(case.before).execute(
            "SELECT COUNT(*) FROM file_records f JOIN descriptors d ON d.key = f.descriptor_key WHERE d.owner = ?1 "
            "OR d.\"group\" = ?1 OR EXISTS (SELECT 1 FROM aces a WHERE a.descriptor_key = d.key AND a.sid = ?1)",
            [action["sid"]]).fetchone()[0]
        assert naming == action["files"] > 0
        assert summary[action["sid"]]["files_removed"] == naming
        assert summary[action["new_sid"]]["files_added"] == naming
    # --sid (an alias or a SID) and --kind keep only theirs.
    old = next(a for a in case.plan["actions"] if a["kind"] == "replace_sid")
    code, rows, _ = run_diff(capsys, case.before, case.after, "--sid", old["sid"], "--kind", "file")
    assert code == 1 and rows
    assert {r["sid"] for r in rows} == {old["sid"]} and {r["change"] for r in rows} == {"removed"}
    code, rows, _ = run_diff(capsys, case.before, case.after, "--kind", "registry_key")
    assert (code, rows) == (0, [])


@pytest.mark.parametrize("fixed", ["remove_orphans_fix", "av_service_fix"])
def test_diff_after_fix_lists_the_registry_places_the_fix_rewrote(request, fixed, capsys):
    """member-after with --remove-orphans (Ken's keys, share, printer; profiles and a group
    membership removed) and av-service (AVService's keys, service, share, task, DCOM, LSA
    right and alias membership re-pointed)."""
    case = request.getfixturevalue(fixed)
    capsys.readouterr()  # what making the fixture printed
    place_keys = {d["descriptor_key"]: d for d in case.plan["descriptors"] if d["places"]}
    assert place_keys, "the plan rewrites place descriptors"
    acted = {a["sid"] for a in case.plan["actions"] if a["kind"] != "refuse"}
    new_sids = {a["sid"]: a["new_sid"] for a in case.plan["actions"] if a["kind"] == "replace_sid"}
    conn = sqlite3.connect(case.before)
    conn.execute("ATTACH DATABASE ? AS after", [str(case.after)])
    # A place before and after: same kind, same location in a hive read from the same file
    # (or the same task file).
    matched = "FROM places pa LEFT JOIN hives ha ON ha.name = pa.hive " \
              "LEFT JOIN after.hives hb ON hb.origin = ha.origin " \
              "JOIN after.places pb ON pb.kind = pa.kind AND pb.hive = IFNULL(hb.name, pa.hive) " \
              "AND pb.location = pa.location"
    pairs = list(conn.execute(f"SELECT pb.kind, pb.path, pa.descriptor_key, pa.sid {matched}"))
    rewritten = defaultdict(set)  # a task's path is both its TaskCache SD and its file's
    for kind, path, key, _sid in pairs:
        if key in place_keys:
            rewritten[(kind, path)].add(key)
    renamed = conn.execute(f"SELECT COUNT(*) FROM places pa WHERE pa.id NOT IN (SELECT pa.id {matched}) "
                           f"AND pa.descriptor_key IN ({','.join(map(str, place_keys))})").fetchone()[0]
    assert sum(len(keys) for keys in rewritten.values()) + renamed == sum(d["places"] for d in place_keys.values())
    repointed = {(kind, path) for kind, path, _key, sid in pairs if sid in acted}
    deleted = {(kind, path) for kind, path in conn.execute(
        f"SELECT pa.kind, pa.path FROM places pa WHERE pa.id NOT IN (SELECT pa.id {matched})")}
    made = {(kind, path) for kind, path in conn.execute(
        f"SELECT pb.kind, pb.path FROM after.places pb WHERE pb.id NOT IN (SELECT pb.id {matched})")}

    code, rows, err = run_diff(capsys, case.before, case.after)
    assert code == 1, err
    places = {k: v for k, v in rows_by_place(rows).items() if k[0] in PLACE_KINDS}
    assert set(places) == set(rewritten) | repointed | deleted | made
    assert all(r["change"] == "removed" for place in deleted - made for r in places[place])
    assert all(r["change"] == "added" for place in made - deleted for r in places[place])
    assert rewritten
    for place, keys in rewritten.items():
        acted_here = [case.actions[i] for key in keys for i in place_keys[key]["actions"]]
        found = places[place]
        removed = {r["sid"] for r in found if r["change"] == "removed"}
        assert removed & {a["sid"] for a in acted_here}, place
        assert removed <= {a["sid"] for a in acted_here}, place
        assert {r["sid"] for r in found if r["change"] == "added"} <= {a["new_sid"] for a in acted_here}, place
    # av-service's task names AVService as its principal directly (no descriptor).
    assert bool(repointed) == (fixed == "av_service_fix")
    for place in repointed:
        principal = [(r["change"], r["sid"]) for r in places[place] if r["part"] == "principal"]
        old = next(r["sid"] for r in places[place] if r["part"] == "principal" and r["change"] == "removed")
        assert principal == [("removed", old), ("added", new_sids[old])]
    # Hive references: every row naming an acted-on SID is gone; a re-pointed SID's come back
    # under its new SID.
    references = {(r["change"], r["kind"], r["sid"], r["old"] or r["new"]) for r in rows
                  if r["kind"] not in PLACE_KINDS and r["kind"] != "file"}
    before_refs = [(kind, sid, detail) for kind, sid, detail in conn.execute(
        "SELECT kind, sid, detail FROM hive_references") if sid in acted]
    assert before_refs
    expected = {("removed", kind, sid, detail) for kind, sid, detail in before_refs}
    expected |= {("added", kind, new_sids[sid], detail) for kind, sid, detail in before_refs if sid in new_sids}
    assert references == expected


def test_an_identical_rescan_differs_in_nothing(scenario_db, tmp_path, capsys):
    first = scenario_db("member-after")
    again = tmp_path / "again.db"
    assert main(scenarios.scan_args("member-after", again)) == 0
    code, rows, err = run_diff(capsys, first, again)
    assert (code, rows, err) == (0, [], "")
    assert main(["diff", str(first), str(again), "--summary", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "sid,account,files_added,files_removed,files_changed,places_added," \
                                      "places_removed,places_changed\n"


def test_output_formats_hold_the_same_rows(default_fix, tmp_path, capsys):
    case = default_fix
    code, rows, _ = run_diff(capsys, case.before, case.after)
    assert code == 1 and rows
    out = tmp_path / "diff.ndjson"
    assert main(["diff", str(case.before), str(case.after), "--format", "ndjson", "-o", str(out)]) == 1
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    assert main(["diff", str(case.before), str(case.after), "--format", "csv"]) == 1
    assert len(capsys.readouterr().out.splitlines()) == len(rows) + 1


@pytest.mark.parametrize("bad", ["missing", "text", "foreign_sqlite"])
def test_a_bad_database_is_one_line_and_exit_5(scenario_db, tmp_path, capsys, bad):
    good = scenario_db("member-after")
    path = tmp_path / "bad.db"
    if bad == "text":
        path.write_text("not a database at all\n" * 100)
    elif bad == "foreign_sqlite":
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    for args in ([good, path], [path, good]):
        code = main(["diff", *map(str, args)])
        captured = capsys.readouterr()
        assert code == 5
        assert captured.out == ""
        assert captured.err.startswith("Error: ") and captured.err.count("\n") == 1


KEN = "S-1-5-21-191058668-193157475-1542849698-1000"


def test_one_machine_at_two_times_files_deleted_made_again_renamed_and_changed(ntfs3g, tmp_path, capsys):
    """Files changed through ntfs-3g between two scans: a file deleted (removed), one deleted
    and made again at its path (matched by path: a new entry or sequence), a new one (added),
    one renamed (same entry: nothing), one whose ACE for Ken lost rights (changed)."""
    from aclscan.sd.sddl import from_sddl

    image = tmp_path / "member-after.img"
    with gzip.open(scenarios.SAMPLES / "member-after.img.gz") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
    before, after = tmp_path / "before.db", tmp_path / "after.db"
    assert main(["scan", str(image), "--db", str(before), "--quiet", "--no-resolve"]) == 0
    docs = "Users/Ken/Documents"
    remade_sddl = "O:BAG:SYD:P(A;;FA;;;SY)(A;;FA;;;BA)"
    narrowed_sddl = f"O:{KEN}G:S-1-5-21-191058668-193157475-1542849698-513D:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)" \
                    f"(A;ID;FR;;;{KEN})"
    with ntfs3g.mounted(image) as root:
        (root / docs / "Ken report 001.docx").unlink()
        (root / docs / "Ken report 002.docx").unlink()
        (root / docs / "Ken report 002.docx").write_bytes(b"made again")
        ntfs3g.set_ntfs_acl(root / docs / "Ken report 002.docx", from_sddl(remade_sddl).to_bytes())
        (root / docs / "new.txt").write_bytes(b"new")
        ntfs3g.set_ntfs_acl(root / docs / "new.txt", from_sddl(remade_sddl).to_bytes())
        (root / docs / "Ken report 003.docx").rename(root / docs / "renamed.docx")
        ntfs3g.set_ntfs_acl(root / docs / "Ken report 004.docx", from_sddl(narrowed_sddl).to_bytes())
    assert main(["scan", str(image), "--db", str(after), "--quiet", "--no-resolve"]) == 0

    code, rows, err = run_diff(capsys, before, after, "--kind", "file")
    assert code == 1, err
    by_path = defaultdict(list)
    for row in rows:
        by_path[row["path"]].append((row["change"], row["sid"], row["part"], row["old"], row["new"]))
    old_kens = sqlite3.connect(before).execute(
        "SELECT d.sddl FROM files f JOIN descriptors d ON d.key = f.descriptor_key WHERE f.path = ?",
        [f"/{docs}/Ken report 001.docx"]).fetchone()[0]
    assert f"O:{KEN}" in old_kens
    removed_001 = by_path.pop(f"/{docs}/Ken report 001.docx")
    assert {c for c, *_ in removed_001} == {"removed"}
    assert {(part, old) for _c, _s, part, old, _n in removed_001 if part in ("dacl", "sacl")} == \
        {("dacl", f"({ace})") for ace in old_kens.split("(")[1:] for ace in [ace.rstrip(")")]}
    remade = by_path.pop(f"/{docs}/Ken report 002.docx")
    identity = "SELECT entry, sequence FROM files WHERE path = ?"
    path = f"/{docs}/Ken report 002.docx"
    assert sqlite3.connect(before).execute(identity, [path]).fetchone() != \
        sqlite3.connect(after).execute(identity, [path]).fetchone()  # matched by path, not by entry
    assert ("removed", KEN, "owner", KEN, None) in remade
    assert ("added", "S-1-5-32-544", "owner", None, "S-1-5-32-544") in remade
    assert ("removed", KEN, "dacl", f"(A;ID;FA;;;{KEN})", None) in remade
    assert ("changed", "S-1-5-18", "dacl", "(A;ID;FA;;;SY)", "(A;;FA;;;SY)") in remade
    new = by_path.pop(f"/{docs}/new.txt")
    assert {c for c, *_ in new} == {"added"}
    assert {(part, sid) for _c, sid, part, *_ in new} == {("owner", "S-1-5-32-544"), ("group", "S-1-5-18"),
                                                           ("dacl", "S-1-5-18"), ("dacl", "S-1-5-32-544")}
    assert by_path.pop(f"/{docs}/Ken report 004.docx") == [("changed", KEN, "dacl", f"(A;ID;FA;;;{KEN})",
                                                              f"(A;ID;FR;;;{KEN})")]
    # The renamed file kept its entry and descriptor; the folder's own descriptor is unchanged
    # (ntfs-3g rewrites no descriptor when a name comes or goes): nothing else differs.
    assert by_path == {}
    code = main(["diff", str(before), str(after), "--kind", "file", "--summary", "--sid", KEN, "--format", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert summary == [{"sid": KEN, "account": None, "files_added": 0, "files_removed": 2, "files_changed": 1,
                        "places_added": 0, "places_removed": 0, "places_changed": 0}]


BA, SY, BU, WD = "S-1-5-32-544", "S-1-5-18", "S-1-5-32-545", "S-1-1-0"


@pytest.mark.parametrize("old, new, changes, sids", [
    # The owner handed from BA to SY; the DACL untouched.
    ("O:BAG:SYD:(A;;FA;;;SY)", "O:SYG:SYD:(A;;FA;;;SY)",
     [("removed", BA, "owner", None, BA, None), ("added", SY, "owner", None, None, SY)],
     {BA: "removed", SY: "changed"}),
    # A right narrowed: the same SID's ACE changed in place.
    ("O:BAG:SYD:(A;;FA;;;BU)", "O:BAG:SYD:(A;;FR;;;BU)",
     [("changed", BU, "dacl", 0, "(A;;FA;;;BU)", "(A;;FR;;;BU)")], {BU: "changed"}),
    # A duplicate ACE dropped: the SID keeps access, one ACE removed (its old position).
    ("O:BAG:SYD:(A;;FA;;;BU)(A;;FA;;;SY)(A;;FA;;;BU)", "O:BAG:SYD:(A;;FA;;;BU)(A;;FA;;;SY)",
     [("removed", BU, "dacl", 2, "(A;;FA;;;BU)", None)], {BU: "changed"}),
    # Two ACEs swapped: no SID gained or lost anything; the bytes differ all the same.
    ("O:BAG:SYD:(A;;FA;;;SY)(A;;FA;;;BA)", "O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)",
     [("changed", "", "descriptor", None, "O:BAG:SYD:(A;;FA;;;SY)(A;;FA;;;BA)", "O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)")],
     {}),
    # Inheritance blocked (SE_DACL_PROTECTED, 0x1000) and an audit ACE for Everyone added.
    ("O:BAG:SYD:(A;;FA;;;SY)", "O:BAG:SYD:P(A;;FA;;;SY)S:(AU;SA;FA;;;WD)",
     [("added", WD, "sacl", 0, None, "(AU;SA;FA;;;WD)"), ("changed", "", "control", None, "0x8004", "0x9014")],
     {WD: "added"}),
    # A descriptor where there was none (a file made since).
    (None, "O:BAG:SYD:(A;;FA;;;SY)",
     [("added", BA, "owner", None, None, BA), ("added", SY, "group", None, None, SY), ("added", SY, "dacl", 0, None,
                                                                                       "(A;;FA;;;SY)")],
     {BA: "added", SY: "added"}),
])
def test_descriptor_comparison(old, new, changes, sids):
    from aclscan.diff import compare_descriptor_bytes
    from aclscan.sd.sddl import from_sddl

    found = compare_descriptor_bytes(from_sddl(old).to_bytes() if old else None,
                                     from_sddl(new).to_bytes() if new else None)
    assert [(c.change, c.sid, c.part, c.position, c.old, c.new) for c in found.changes] == changes
    assert found.sids == sids


def test_volumes_of_other_serials_list_every_file_removed_and_added_with_a_note(scenario_db, capsys):
    before, after = scenario_db("ws1"), scenario_db("member-after")
    serials = [sqlite3.connect(db).execute("SELECT serial FROM volumes").fetchone()[0] for db in (before, after)]
    assert serials[0] != serials[1]
    code, rows, err = run_diff(capsys, before, after, "--kind", "file")
    assert code == 1
    note = "note: volume {} of {} has no volume of that serial in the other scan: its files are listed as {}"
    assert err.splitlines() == [note.format(serials[0], "before", "removed"), note.format(serials[1], "after", "added")]
    for db, change in ((before, "removed"), (after, "added")):
        with_descriptor = {e for (e,) in sqlite3.connect(db).execute(
            "SELECT entry FROM file_records WHERE descriptor_key IS NOT NULL")}
        assert with_descriptor
        assert {r["entry"] for r in rows if r["change"] == change} == with_descriptor
    assert {r["change"] for r in rows} == {"removed", "added"}
