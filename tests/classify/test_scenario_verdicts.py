"""The scenario volumes give exactly the verdicts of their manifests: every SID on
the volume and in its hives, scanned with the inputs the manifest names
(domain exports, the master's SAM)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from aclscan.cli import main

from tests.scenarios import SAMPLES, SCENARIOS, scan_args
from tests.scenarios import manifest as read_manifest


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    directory = tmp_path_factory.mktemp("verdicts")
    done = {}

    def of(name):
        if name not in done:
            manifest = json.loads((SAMPLES / f"{name}.json").read_text())
            db = directory / f"{name}.db"
            assert main(scan_args(name, db)) == 0
            rows = sqlite3.connect(db).execute(
                "SELECT sid, verdict, account, mapped_sid, files, descriptors FROM findings").fetchall()
            done[name] = (manifest, {r[0]: r for r in rows}, db)
        return done[name]

    return of


@pytest.mark.parametrize("name", SCENARIOS)
def test_verdicts_match_the_manifest(findings, name):
    manifest, found, _db = findings(name)
    wrong = {}
    for sid, expected in manifest["expected"].items():
        row = found.get(sid)
        if row is None:
            wrong[sid] = ("missing", expected["verdict"])
            continue
        if row[1] != expected["verdict"] or row[3] != expected.get("mapped_sid"):
            wrong[sid] = ((row[1], row[3]), (expected["verdict"], expected.get("mapped_sid")))
    assert not wrong


# The scenarios whose story is about how sure a verdict is (no-history: an inferred prefix).
STATING_CONFIDENCE = [name for name in SCENARIOS
                      if any("confidence" in e for e in read_manifest(name)["expected"].values())]


@pytest.mark.parametrize("name", STATING_CONFIDENCE)
def test_confidences_match_the_manifest_where_it_states_them(findings, name):
    manifest, _found, db = findings(name)
    stated = {sid: e["confidence"] for sid, e in manifest["expected"].items() if "confidence" in e}
    assert stated
    got = dict(sqlite3.connect(db).execute(
        f"SELECT sid, confidence FROM findings WHERE sid IN ({', '.join('?' for _ in stated)})", list(stated)))
    assert got == stated


@pytest.mark.parametrize("name", SCENARIOS)
def test_accounts_are_named(findings, name):
    manifest, found, _db = findings(name)
    for sid, expected in manifest["expected"].items():
        account = expected.get("account")
        if account and expected["verdict"] in ("resolved", "sid_history"):
            got = found[sid][2] or ""
            assert got.split("\\")[-1].casefold() == account.split("\\")[-1].casefold(), (sid, got, account)


def test_findings_command_exit_codes(findings, capsys):
    _m, _f, clean_db = findings("clean")
    assert main(["findings", str(clean_db), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {"sid", "verdict", "confidence", "account", "mapped_sid", "files", "evidence"} <= set(rows[0])
    _m, _f, after_db = findings("member-after")
    assert main(["findings", str(after_db), "--problems", "--format", "ndjson"]) == 1
    problems = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ken = next(p for p in problems if p["sid"].endswith("-1542849698-1000"))
    assert ken["verdict"] == "rid_collision" and ken["mapped_sid"] is None
    assert any("Jon" in e for e in ken["evidence"]), ken["evidence"]


def test_av_service_reads_as_one_story(findings):
    manifest, found, db = findings("av-service")
    old = "S-1-5-21-191058668-193157475-1542849698-1003"
    evidence = json.loads(sqlite3.connect(db).execute("SELECT evidence FROM findings WHERE sid = ?",
                                                      (old,)).fetchone()[0])
    text = " ".join(evidence)
    assert "SeServiceLogonRight" in text  # the LSA right names the old SID
    assert "AV Admins" in text  # the alias membership names it
    assert found[old][4] > 0  # and the ACEs on the AVScan folders
    refs = sqlite3.connect(db).execute("SELECT kind, detail FROM hive_references WHERE kind = 'service_logon'"
                                       " AND detail LIKE 'AVScan%'").fetchall()
    assert refs == [("service_logon", "AVScan logs on as .\\AVService")]


def test_inconsistent_hives_are_a_finding(tmp_path, capsys):
    from tests.shared_data import expand

    sam = expand("hives", "regipy-SAM", tmp_path)
    security = expand("hives", "regipy-SECURITY", tmp_path)  # another machine's SECURITY (dirty, still read)
    db = tmp_path / "mixed.db"
    # The dirty SECURITY has no transaction logs beside it: read, but the scan is partial (3).
    assert main(["scan", str(SAMPLES / "clean.img.gz"), "--db", str(db), "--quiet",
                 "--sam", str(sam), "--security", str(security)]) == 3
    errors = sqlite3.connect(db).execute("SELECT kind, reason FROM scan_errors").fetchall()
    assert ("hive", f"SECURITY hive ({security}): dirty hive read without its transaction logs: recent changes "
                    "may be missing") in errors
    row = sqlite3.connect(db).execute(
        "SELECT verdict, evidence FROM findings WHERE sid = 'S-1-5-21-1786693902-1815088602-2777321892'").fetchone()
    assert row[0] == "inconsistent_hives" and "S-1-5-21-1760460187-1592185332-161725925" in row[1]
    assert main(["findings", str(db), "--verdict", "inconsistent_hives", "--format", "ndjson"]) == 1
    capsys.readouterr()
    # Without --quiet the summary says why, as a note (a volume with no shadow copy: no
    # snapshot note for the resolution's notes to hide behind).
    assert main(["scan", str(SAMPLES / "clean.img.gz"), "--db", str(db), "--sam", str(sam),
                 "--security", str(security)]) == 3
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert any("SECURITY PolAcDmS S-1-5-21-1786693902-1815088602-2777321892 is not the SAM's machine SID "
               "S-1-5-21-1760460187-1592185332-161725925" in line
               for line in notes), notes


def test_wrong_hive_is_one_line_and_exit_8(tmp_path, capsys):
    from tests.shared_data import expand

    system = expand("hives", "regipy-SYSTEM_WIN_10_1709", tmp_path)
    code = main(["scan", str(SAMPLES / "clean.img.gz"), "--db", str(tmp_path / "x.db"), "--quiet", "--sam", str(system)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 8 and len(err) == 1 and "expected a SAM hive" in err[0]
