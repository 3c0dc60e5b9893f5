"""`aclscan fleet`: facts across machines (against the ws1/ws2 manifests), re-adding,
parallel image scans, bad inputs, and hostile names in every output."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3

import pytest

from aclscan.cli import main
from aclscan.errors import DatabaseError
from aclscan.fleet import (FLEET_APPLICATION_ID, add_scan, build_fleet, open_fleet, scan_db_name, scan_targets,
                           summarise)
from tests.scenarios import SAMPLES, manifest


def fleet_of(tmp_path, scenario_db, names):
    fleet = open_fleet(tmp_path / "fleet.db")
    for name in names:
        add_scan(fleet, scenario_db(name))
    return fleet


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_clone_facts_equal_the_manifests(tmp_path, scenario_db):
    fleet = fleet_of(tmp_path, scenario_db, ["ws1", "ws2"])
    summary = summarise(fleet)
    assert len(summary.machines) == 2
    for machine in summary.machines:
        name = machine.name.casefold()
        expected = manifest(name)["fleet"]
        assert machine.machine_sid == manifest(name)["machine_sid"]
        assert [n.casefold() for n in machine.duplicate_machine_sid_with] == expected["duplicate_machine_sid_with"]
        assert list(machine.identity_collisions) == expected["identity_collisions"]
    assert summary.duplicate_machine_sids == ({"machine_sid": manifest("ws1")["machine_sid"], "count": 2,
                                               "machines": ["WS1", "WS2"]},)
    assert summary.has_conflicts


def test_scenarios_without_fleet_facts_have_none(tmp_path, scenario_db):
    names = ["clean", "domain-member", "cloned-dc"]
    summary = summarise(fleet_of(tmp_path, scenario_db, names))
    assert all(manifest(n)["fleet"] == {} for n in names)
    assert not summary.has_conflicts and not summary.cross_machine_references
    assert {m.name for m in summary.machines} == {manifest(n)["computer"] for n in names}


def test_member_after_names_the_clones_accounts(tmp_path, scenario_db):
    """Its stale SIDs carry ws1's machine SID: references to another live machine's
    accounts, marked as its own previous prefix."""
    summary = summarise(fleet_of(tmp_path, scenario_db, ["ws1", "member-after"]))
    old = manifest("member-after")["previous_machine_sids"][0]
    assert old == manifest("ws1")["machine_sid"]
    cross = summary.cross_machine_references
    expected_sids = {sid for sid, row in manifest("member-after")["expected"].items()
                     if sid.startswith(old + "-")}
    assert {r["sid"] for r in cross} == expected_sids
    assert all(r["machine"] == "MEMBER" and r["other"] == "WS1" and r["own_previous"] for r in cross)
    ken = next(r for r in cross if r["sid"] == f"{old}-1000")
    assert (ken["account"], ken["other_account"], ken["verdict"]) == ("Ken", "Eric", "rid_collision")
    assert not summary.has_conflicts  # different machine SIDs, different accounts


def test_re_adding_a_scan_replaces_it(tmp_path, scenario_db):
    fleet = fleet_of(tmp_path, scenario_db, ["ws1", "ws2"])

    def counts():
        return [fleet.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("machines", "machine_sids", "machine_accounts", "machine_previous_sids")]

    before = counts()
    first = summarise(fleet)
    add_scan(fleet, scenario_db("ws1"))
    add_scan(fleet, scenario_db("ws1"))
    assert counts() == before
    again = summarise(fleet)
    strip = lambda s: [(m.name, m.duplicate_machine_sid_with, m.identity_collisions, m.sids) for m in s.machines]
    assert strip(again) == strip(first)


def test_fleet_database_is_versioned_and_checked(tmp_path, scenario_db, capsys):
    fleet = fleet_of(tmp_path, scenario_db, ["clean"])
    assert fleet.execute("PRAGMA application_id").fetchone()[0] == FLEET_APPLICATION_ID
    assert fleet.execute("PRAGMA user_version").fetchone()[0] == 1
    with pytest.raises(DatabaseError, match="scan database, not a fleet"):
        open_fleet(scenario_db("clean"))
    code, _, err = run(["fleet", str(scenario_db("clean")), str(scenario_db("ws1"))], capsys)
    assert code == 5 and "not a fleet database" in err


def test_scan_database_names():
    assert scan_db_name("/x/ws1.img.gz") == "ws1.db"
    assert scan_db_name("disk.E01") == "disk.db"
    assert scan_db_name("server.vhdx") == "server.db"
    assert scan_db_name("a.b.raw") == "a.b.db"
    pairs = scan_targets(["/a/ws1.img.gz", "/b/ws1.img"], SAMPLES)
    assert [p[1].rsplit("/", 1)[1] for p in pairs] == ["ws1.db", "ws1-2.db"]


def test_images_scanned_in_parallel(tmp_path, capsys):
    images = [SAMPLES / "ws1.img.gz", SAMPLES / "ws2.img.gz"]
    digests = [hashlib.sha256(i.read_bytes()).hexdigest() for i in images]
    fleet_path = tmp_path / "fleet.db"
    code, out, _ = run(["fleet", str(fleet_path), *map(str, images), "--jobs", "2", "--format", "json"], capsys)
    assert code == 1  # the clones collide
    assert [hashlib.sha256(i.read_bytes()).hexdigest() for i in images] == digests
    document = json.loads(out)
    assert document["fleet_format"] == 2
    assert sorted(m["scan_db"] for m in document["machines"]) == [str(tmp_path / "ws1.db"), str(tmp_path / "ws2.db")]
    # One entry per colliding SID, each account once with its machines.
    pair = manifest("ws1")["fleet"]["identity_collisions"][0]
    assert pair["sid"] == manifest("ws2")["fleet"]["identity_collisions"][0]["sid"]
    assert document["identity_collisions"] == [{"sid": pair["sid"], "accounts": sorted(
        ({"account": n.split("\\")[1], "machines": [n.split("\\")[0]]} for n in (pair["here"], pair["there"])),
        key=lambda a: a["account"].casefold())}]
    for name in ("ws1", "ws2"):
        db = sqlite3.connect(tmp_path / f"{name}.db")
        assert db.execute("SELECT computer_name FROM machine").fetchone()[0] == manifest(name)["computer"]
        db.close()


def test_bad_image_is_recorded_and_the_others_go_on(tmp_path, capsys):
    broken = tmp_path / "broken.img"
    broken.write_bytes(b"\x00" * 65536)
    fleet_path = tmp_path / "fleet.db"
    code, out, err = run(["fleet", str(fleet_path), str(broken), str(SAMPLES / "clean.img.gz"), "--jobs", "2"],
                         capsys)
    assert code == 3
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: 1 input(s) not added") and "broken.img" in last
    assert "failed inputs (1)" in out and "CLEANWS" in out
    fleet = open_fleet(fleet_path, create=False)
    assert [m.name for m in summarise(fleet).machines] == ["CLEANWS"]
    failed = fleet.execute("SELECT input, exit_code FROM failed_inputs").fetchall()
    assert failed == [(str(broken), 4)]
    # Reporting the fleet again (no inputs) lists the failure but adds nothing new.
    code, out, _ = run(["fleet", str(fleet_path)], capsys)
    assert code == 0 and "failed inputs (1)" in out


def test_hostile_names_in_every_format(tmp_path, scenario_db, capsys):
    hostile = tmp_path / "hostile.db"
    shutil.copy(scenario_db("ws2"), hostile)
    conn = sqlite3.connect(hostile)
    conn.execute("UPDATE machine SET computer_name = ?", ("=HYPERLINK(\"x\")\x1b[2J",))
    conn.execute("UPDATE accounts SET name = ? WHERE sid LIKE '%-1000'", ("Steph\x1b]0;pwn\x07anie",))
    conn.commit()
    conn.close()
    fleet_path = tmp_path / "fleet.db"
    code, out, _ = run(["fleet", str(fleet_path), str(scenario_db("ws1")), str(hostile)], capsys)
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out
    assert "Steph\\x1b]0;pwn\\x07anie" in out
    code, out, _ = run(["fleet", str(fleet_path), "--format", "json"], capsys)
    document = json.loads(out)
    accounts = [a for c in document["identity_collisions"] for a in c["accounts"]]
    assert {"account": "Steph\x1b]0;pwn\x07anie", "machines": ["=HYPERLINK(\"x\")\x1b[2J"]} in accounts
    code, out, _ = run(["fleet", str(fleet_path), "--format", "csv", "--section", "machines"], capsys)
    cells = [cell for row in csv.reader(io.StringIO(out)) for cell in row]
    # no formula for a spreadsheet, and no raw escape sequence (CSV cells escape controls)
    assert cells and "'=HYPERLINK(\"x\")\\x1b[2J" in cells
    assert not any(cell.startswith("=") for cell in cells)


def test_machines_sharing_a_computer_name_get_their_image_names(tmp_path, scenario_db):
    names = ["member-before", "member-after", "ws1"]
    assert manifest("member-before")["computer"] == manifest("member-after")["computer"] == "MEMBER"
    summary = summarise(fleet_of(tmp_path, scenario_db, names))
    assert sorted(m.name for m in summary.machines) == ["MEMBER (member-after)", "MEMBER (member-before)", "WS1"]
    # Ken's old SID on member-after is WS1\Eric's: the reference names the machine uniquely.
    ken = next(r for r in summary.cross_machine_references
               if r["sid"] == manifest("ws1")["machine_sid"] + "-1000" and r["other"] == "WS1")
    assert ken["machine"] == "MEMBER (member-after)"


def test_each_collision_is_listed_once(tmp_path, scenario_db, capsys):
    """ws1, ws2 and member-before share a machine SID: RID 1000 is Eric, Stephanie and
    Ken. One line for that SID, each account once with its machine."""
    names = ["ws1", "ws2", "member-before"]
    fleet = fleet_of(tmp_path, scenario_db, names)
    fleet.conn.close()
    eric = manifest("ws1")["fleet"]["identity_collisions"][0]
    code, out, _ = run(["fleet", str(tmp_path / "fleet.db"), "--format", "json"], capsys)
    assert code == 1
    document = json.loads(out)
    assert [c["sid"] for c in document["identity_collisions"]] == [eric["sid"]]
    accounts = document["identity_collisions"][0]["accounts"]
    assert sorted((a["account"], a["machines"][0]) for a in accounts) == sorted([
        tuple(reversed(eric["here"].split("\\"))), tuple(reversed(eric["there"].split("\\"))),
        ("Ken", manifest("member-before")["computer"])])
    assert document["duplicate_machine_sids"] == [{"machine_sid": manifest("ws1")["machine_sid"], "count": 3,
                                                   "machines": sorted(manifest(n)["computer"] for n in names)}]
    code, out, _ = run(["fleet", str(tmp_path / "fleet.db")], capsys)
    lines = out.splitlines()
    start = lines.index("identity collisions (one SID, different accounts; one line per SID) (1)")
    assert lines[start + 2].startswith(eric["sid"]) and lines[start + 3] == ""
    # A long section is cut at --limit, saying how to get the rest.
    code, out, _ = run(["fleet", str(tmp_path / "fleet.db"), "--limit", "1"], capsys)
    assert "... 2 more (--limit 0 for all; --format json or --format csv --section machines" in out
    code, out, _ = run(["fleet", str(tmp_path / "fleet.db"), "--format", "csv", "--section", "duplicate-sids"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows == [{"machine_sid": manifest("ws1")["machine_sid"], "count": "3",
                     "machines": "; ".join(sorted(manifest(n)["computer"] for n in names))}]


def test_a_missing_input_is_a_failed_input(tmp_path, scenario_db, capsys):
    missing = tmp_path / "gone.img"
    fleet_path = tmp_path / "fleet.db"
    code, out, err = run(["fleet", str(fleet_path), str(missing), str(scenario_db("clean"))], capsys)
    assert code == 3 and "gone.img: no such file" in err.splitlines()[-1]
    fleet = open_fleet(fleet_path, create=False)
    assert fleet.execute("SELECT input, reason, exit_code FROM failed_inputs").fetchall() == [
        (str(missing), "no such file", 4)]
    assert [m.name for m in summarise(fleet).machines] == [manifest("clean")["computer"]]


def test_a_rerun_resumes(tmp_path):
    """An image whose scan database is complete and newer is not scanned again; a newer
    image, or a database a killed scan left unfinished, is."""
    images = []
    for name in ("ws1", "ws2"):
        images.append(tmp_path / f"{name}.img.gz")
        shutil.copy(SAMPLES / f"{name}.img.gz", images[-1])
    fleet_path = tmp_path / "fleet.db"
    calls = []
    first = build_fleet(fleet_path, list(map(str, images)), jobs=1, progress=lambda *a: calls.append(a))
    assert len(first.added) == 2 and not first.failed and not first.reused
    assert calls and calls[-1] == (2, 0, 0, 2)  # done, failed, running, total
    ws1_db, ws2_db = tmp_path / "ws1.db", tmp_path / "ws2.db"
    stamps = {p: p.stat().st_mtime_ns for p in (ws1_db, ws2_db)}
    assert not list(tmp_path.glob("*.partial"))

    again = build_fleet(fleet_path, list(map(str, images)), jobs=1)
    assert sorted(again.reused) == sorted(map(str, images)) and not again.added
    assert len(again.unchanged) == 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    later = ws1_db.stat().st_mtime + 10
    os.utime(images[0], (later, later))  # ws1's image changed after its scan
    from aclscan.store import INDEXES

    table, columns, _unique = INDEXES[-1]  # the scan's last step builds the small tables' indexes
    conn = sqlite3.connect(ws2_db)  # ws2's scan stopped before its last step
    conn.execute(f"DROP INDEX idx_{table}_{'_'.join(columns)}")
    conn.close()
    third = build_fleet(fleet_path, list(map(str, images)), jobs=1)
    assert not third.reused and sorted(third.added) == [str(ws1_db), str(ws2_db)]
    fleet = open_fleet(fleet_path, create=False)
    assert fleet.execute("SELECT COUNT(*), COUNT(DISTINCT scan_db) FROM machines").fetchone() == (2, 2)
