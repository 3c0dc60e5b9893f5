"""Every place a SID lives, read by the scan into the same model as files: per-kind
counts of every scenario equal what its builder wrote (the manifest), the stories
are attributed to the right SID and verdict, and downstream commands see them."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3

import pytest

from aclscan.cli import main
from tests.scenarios import SAMPLES, SCENARIOS, manifest


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def findings_places(db) -> dict[str, tuple[str, dict]]:
    rows = sqlite3.connect(db).execute("SELECT sid, verdict, places FROM findings").fetchall()
    assert rows
    return {sid: (verdict, json.loads(places or "{}")) for sid, verdict, places in rows}


@pytest.mark.parametrize("name", SCENARIOS)
def test_place_counts_equal_the_manifest(scenario_db, name):
    """For every SID: how many places of each kind name it, as the builder counted
    what it wrote; and no place names a SID the builder did not put there."""
    expected = manifest(name)["places"]["by_sid"]
    assert expected
    found = findings_places(scenario_db(name))
    for sid, facts in expected.items():
        assert sid in found, f"{name}: {sid} is named by places but has no finding"
        verdict, kinds = found[sid]
        assert kinds == facts["kinds"], f"{name}: {sid}"
        assert verdict == facts["verdict"], f"{name}: {sid}"
    extra = {sid: kinds for sid, (_v, kinds) in found.items() if kinds and sid not in expected}
    assert not extra, f"{name}: places name SIDs the builder did not write: {extra}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_hives_and_keys_equal_the_manifest(scenario_db, name):
    facts = manifest(name)["places"]["hives"]
    db = sqlite3.connect(scenario_db(name))
    hives = {hive: keys for hive, keys in db.execute("SELECT name, keys FROM hives")}
    assert hives
    for path, hive in facts.items():
        assert hives.get(hive["hive"]) == hive["keys"], f"{name}: {path}"
    counted = dict(db.execute("SELECT hive, COUNT(*) FROM places WHERE kind = 'registry_key' GROUP BY hive"))
    assert counted == {facts_hive["hive"]: facts_hive["keys"] for facts_hive in facts.values()}


def test_av_service_story(scenario_db, capsys):
    facts = manifest("av-service")
    old = facts["previous_machine_sids"][0]
    db = str(scenario_db("av-service"))
    admins = f"{old}-1004"  # the old AV Admins
    service = f"{old}-1003"  # the old AVService
    code, out, _ = run(["places", db, "--sid", admins, "--format", "json"], capsys)
    assert code == 0
    rows = json.loads(out)
    kinds = {row["kind"] for row in rows}
    assert {"registry_key", "service", "share", "dcom", "task"} <= kinds
    paths = {row["path"] for row in rows}
    assert "service AVScan" in paths and "task \\AVScan\\Update" in paths
    assert any(p.startswith("share AVLogs (") for p in paths)
    assert any(p.casefold().startswith("hklm\\software\\avscan") for p in paths)
    code, out, _ = run(["places", db, "--sid", service, "--kind", "task", "--format", "json"], capsys)
    principals = [row for row in json.loads(out) if row["sid"] == service]
    assert principals and principals[0]["location"].endswith("/UserId")
    # The gate sees the registry side too.
    code, out, _ = run(["check", db], capsys)
    assert code == 1
    assert f"share: {admins} (AV Admins) is named by 1 share(s); e.g. share AVLogs" in out
    assert f"service: {admins} (AV Admins) is named by 1 service(s); e.g. service AVScan" in out


def test_member_after_user_hives_are_tied_to_their_profiles(scenario_db):
    facts = manifest("member-after")
    db = sqlite3.connect(scenario_db("member-after"))
    hives = {name: (kind, root, sid) for name, kind, root, sid in
             db.execute("SELECT name, kind, root, profile_sid FROM hives WHERE kind IN ('NTUSER', 'USRCLASS')")}
    assert set(hives) == set(facts["user_hives"].values())
    for name, (kind, root, sid) in hives.items():
        assert sid and name.endswith(sid) and root.startswith(f"HKU\\{sid}")
        assert root.endswith("_Classes") == (kind == "USRCLASS")
    ken_old = f"{facts['previous_machine_sids'][0]}-1000"
    keys = db.execute("SELECT path FROM places WHERE kind = 'registry_key' AND hive LIKE 'NTUSER.DAT of %'"
                      " AND descriptor_key IN (SELECT descriptor_key FROM aces WHERE sid = ?)", [ken_old]).fetchall()
    assert keys and all(path.startswith(f"HKU\\{ken_old}") or path.startswith("HKU\\") for (path,) in keys)
    verdict = db.execute("SELECT verdict FROM findings WHERE sid = ?", [ken_old]).fetchone()[0]
    assert verdict == "rid_collision"


def test_a_broken_task_file_is_recorded_and_the_scan_goes_on(ntfs3g, tmp_path, capsys):
    image = tmp_path / "clean.img"
    with gzip.open(SAMPLES / "clean.img.gz", "rb") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with ntfs3g.mounted(image) as mnt:
        tasks = mnt / "Windows" / "System32" / "Tasks"
        tasks.mkdir(parents=True, exist_ok=True)
        (tasks / "Broken").write_bytes(b"\xff\xfe<\x00T\x00a\x00")  # UTF-16, cut off mid-element
    db = tmp_path / "clean.db"
    code, _out, err = run(["scan", str(image), "--db", str(db)], capsys)
    assert code == 3 and "scan_errors" in err
    errors = sqlite3.connect(db).execute("SELECT kind, reason FROM scan_errors").fetchall()
    assert len(errors) == 1 and errors[0][0] == "place"
    assert "Windows/System32/Tasks/Broken" in errors[0][1]
    # The rest was read: the clean machine's own places are all there.
    places = sqlite3.connect(db).execute("SELECT COUNT(*) FROM places").fetchone()[0]
    assert places > 0


def test_report_lists_every_place_kind_naming_each_sid(scenario_db, capsys):
    """`report --format json --all`: for every SID, the kinds of places naming it (as the
    builder wrote them) each with a human path of such a place."""
    db = str(scenario_db("av-service"))
    code, out, _ = run(["report", db, "--format", "json", "--all"], capsys)
    assert code in (0, 1)
    rows = json.loads(out)
    assert rows
    expected = manifest("av-service")["places"]["by_sid"]
    conn = sqlite3.connect(db)
    for sid, facts in expected.items():
        mine = [r for r in rows if r["sid"] == sid and r["kind"] != "file"]
        assert {r["kind"] for r in mine} == set(facts["kinds"]), sid
        for row in mine:
            named = {p for (p,) in conn.execute("SELECT path FROM places WHERE kind = ?", [row["kind"]])}
            assert row["example_path"] in named and row["places"] >= 1


def test_files_of_profile_and_task_folders_are_found_by_rowid_as_by_a_pass(tmp_path, monkeypatch):
    """The scan finds the files of the profile and task folders through the rows it
    stored (place_scan.FileParents), not a pass over file_records: the same files as the
    pass, and a FileParents that does not match the table is refused for the pass."""
    import dataclasses

    from aclscan import place_scan
    from aclscan.scan import scan_image

    calls = []
    real = place_scan.files_in

    def spy(db, volume_id, folders, parents=None):
        found = real(db, volume_id, folders, parents)
        calls.append((volume_id, dict(folders), parents, found))
        return found

    monkeypatch.setattr(place_scan, "files_in", spy)
    image = tmp_path / "member-after.img"
    with gzip.open(SAMPLES / "member-after.img.gz") as source, open(image, "wb") as target:
        shutil.copyfileobj(source, target)
    db_path = tmp_path / "scan.db"
    scan_image(image, db_path)
    assert len(calls) == 1
    volume_id, folders, parents, found = calls[0]
    assert parents is not None and folders
    db = sqlite3.connect(db_path)
    assert parents.holds_rows_of(db, volume_id)
    by_pass = real(db, volume_id, folders)
    assert sorted(found) == sorted(by_pass)
    names = {name for _folder, name in found}
    assert {"NTUSER.DAT", "UsrClass.dat"} <= names  # the user hives the manifest lists are among them
    assert len(parents.rowids_under(e for e, _s in folders)) == len(found)
    shifted = dataclasses.replace(parents, first_rowid=parents.first_rowid + 1)
    assert not shifted.holds_rows_of(db, volume_id)
    assert sorted(real(db, volume_id, folders, shifted)) == sorted(by_pass)
    assert not dataclasses.replace(parents, last_entry=parents.last_entry + 1).holds_rows_of(db, volume_id)
