"""Names where a person reads (the icacls-style view) and where a person types (--sid NAME)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from aclscan.cli import main
from tests.scenarios import manifest

OLD = "S-1-5-21-191058668-193157475-1542849698"  # member-after's and av-service's previous machine SID


def run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_acl_view_reads_like_icacls(scenario_db, capsys):
    # The manifest's descriptor of Program Files\AVScan, spelled out in icacls notation:
    # O:BA G:SY D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;OLD-1003)(A;OICI;FA;;;OLD-1004)
    #   (A;OICI;0x1301bf;;;NT SERVICE\AVScan)(A;OICI;0x1200a9;;;BU)
    facts = manifest("av-service")
    assert facts["paths"]["Program Files/AVScan"].startswith("O:BAG:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")
    code, out, _ = run(capsys, ["acl", str(scenario_db("av-service")), "program files\\AVSCAN"])
    assert code == 0
    assert out.splitlines() == [
        "/Program Files/AVScan",
        "    Owner: BUILTIN\\Administrators",
        "    Group: NT AUTHORITY\\SYSTEM",
        "    NT AUTHORITY\\SYSTEM:(OI)(CI)(F)",
        "    BUILTIN\\Administrators:(OI)(CI)(F)",
        f"    {OLD}-1003 (was AVHOST\\AVService, stale_prefix):(OI)(CI)(M)",
        f"    {OLD}-1004 (was AVHOST\\AV Admins, stale_prefix):(OI)(CI)(F)",
        "    NT SERVICE\\AVScan:(OI)(CI)(M)",
        "    BUILTIN\\Users:(OI)(CI)(RX)",
    ]


def test_acl_view_marks_inherited_and_problem_owner(scenario_db, capsys):
    # Users/Ken/Desktop inherits from Users/Ken: O:Ken(old) D:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;FA;;;Ken)
    code, out, _ = run(capsys, ["acl", str(scenario_db("member-after")), "/users/ken/desktop"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "/Users/Ken/Desktop"
    assert lines[1] == f"    Owner: {OLD}-1000 (was MEMBER\\Ken, rid_collision)"
    assert lines[-3:] == [
        "    NT AUTHORITY\\SYSTEM:(I)(OI)(CI)(F)",
        "    BUILTIN\\Administrators:(I)(OI)(CI)(F)",
        f"    {OLD}-1000 (was MEMBER\\Ken, rid_collision):(I)(OI)(CI)(F)",
    ]


def test_acl_unknown_path_is_a_usage_error_quoting_it(scenario_db, capsys):
    code, _, err = run(capsys, ["acl", str(scenario_db("member-after")), "Users\\Nobody"])
    assert code == 2
    assert "no file 'Users\\Nobody'" in err


def test_acl_recurse_json(scenario_db, capsys):
    code, out, _ = run(capsys, ["acl", str(scenario_db("av-service")), "ProgramData/AVScan/Logs", "-r",
                                "--format", "json"])
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records, "no records"
    expected = {"/ProgramData/AVScan/Logs"} | {f"/ProgramData/AVScan/Logs/scan{i:03d}.log" for i in range(1, 11)}
    assert {r["path"] for r in records} == expected
    for record in records:
        assert record["owner"] == f"{OLD}-1003 (was AVHOST\\AVService, stale_prefix)"


@pytest.mark.parametrize("typed", ["AVService", "avservice", "AVHOST\\AVService", "avhost\\avservice"])
def test_sid_option_takes_a_name(scenario_db, capsys, typed):
    db = str(scenario_db("av-service"))
    sid = next(a["sid"] for a in manifest("av-service")["accounts"] if a["name"] == "AVService")
    _, by_sid, _ = run(capsys, ["files", db, "--sid", sid, "--format", "csv"])
    code, by_name, _ = run(capsys, ["files", db, "--sid", typed, "--format", "csv"])
    assert code == 0 and by_name == by_sid


def test_old_names_and_builtin_names(scenario_db, capsys):
    db = str(scenario_db("member-after"))
    _, by_sid, _ = run(capsys, ["files", db, "--sid", f"{OLD}-1000", "--format", "csv"])
    rows = csv_rows(by_sid)
    assert len(rows) == manifest("member-after")["expected"][f"{OLD}-1000"]["files"]
    # Ken exists no more: his name finds his old SID; Jon's name finds Jon's SID
    assert run(capsys, ["files", db, "--sid", "ken", "--format", "csv"])[1] == by_sid
    jon = next(a["sid"] for a in manifest("member-after")["accounts"] if a["name"] == "Jon")
    assert (run(capsys, ["files", db, "--sid", "member\\jon", "--format", "csv"])[1]
            == run(capsys, ["files", db, "--sid", jon, "--format", "csv"])[1])
    for typed in ("BUILTIN\\Administrators", "administrators", "BA", "S-1-5-32-544"):
        code, out, _ = run(capsys, ["descriptors", db, "--sid", typed, "--format", "csv"])
        assert code == 0
        assert out == run(capsys, ["descriptors", db, "--sid", "S-1-5-32-544", "--format", "csv"])[1]
    assert csv_rows(run(capsys, ["descriptors", db, "--sid", "nt authority\\system", "--format", "csv"])[1])


def test_unknown_name_suggests_and_exits_2(scenario_db, capsys):
    code, _, err = run(capsys, ["files", str(scenario_db("member-after")), "--sid", "membr\\jon"])
    assert code == 2
    assert "no account 'membr\\jon'" in err and "did you mean 'MEMBER\\Jon'" in err


def test_plan_owner_takes_a_name(scenario_db, capsys):
    db = str(scenario_db("domain-member"))
    code, out, _ = run(capsys, ["plan", db, "--owner", "NT AUTHORITY\\SYSTEM", "--format", "json"])
    assert json.loads(out)["owner"] == "S-1-5-18"
    code, out, _ = run(capsys, ["plan", db, "--owner", "Administrators", "--format", "json"])
    assert json.loads(out)["owner"] == "S-1-5-32-544"
    code, _, err = run(capsys, ["plan", db, "--owner", "Adminstrators"])
    assert code == 2 and "did you mean 'Administrators'" in err


def test_verdict_is_validated_with_a_suggestion(scenario_db, capsys):
    code, out, err = run(capsys, ["findings", str(scenario_db("member-after")), "--verdict", "orphans"])
    assert code == 2 and out == ""
    assert "'orphans' is not one of" in err and "did you mean 'orphan'?" in err


def test_path_is_case_insensitive(scenario_db, capsys):
    db = str(scenario_db("av-service"))
    _, exact, _ = run(capsys, ["files", db, "--path", "/Program Files/AVScan", "--format", "csv"])
    _, typed, _ = run(capsys, ["files", db, "--path", "program files\\avscan", "--format", "csv"])
    paths = [r["path"] for r in csv_rows(exact)]
    assert paths == ["/Program Files/AVScan", "/Program Files/AVScan/avscan.exe", "/Program Files/AVScan/engine.dll"]
    assert typed == exact


def test_names_form_of_files(scenario_db, capsys):
    code, out, _ = run(capsys, ["files", str(scenario_db("av-service")), "--path", "Program Files/AVScan/engine.dll",
                                "--names", "--format", "json"])
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1 and "sddl" not in rows[0]
    assert rows[0]["acl"].startswith("O:BUILTIN\\Administrators  G:NT AUTHORITY\\SYSTEM  NT AUTHORITY\\SYSTEM:(I)(F)")
    assert f"{OLD}-1003 (was AVHOST\\AVService, stale_prefix):(I)(M)" in rows[0]["acl"]


def test_a_path_that_matches_nothing_is_said(scenario_db, capsys):
    code, out, err = run(capsys, ["files", str(scenario_db("av-service")), "--path", "Program Files\\AVScn",
                                  "--format", "csv"])
    assert code == 0 and out.splitlines() == ["volume_id,entry,sequence,path,is_dir,links,security_id,descriptor_key,sddl"]
    assert "no file at or under 'Program Files\\AVScn' in this scan" in err


@pytest.mark.parametrize("command", [["findings"], ["accounts"], ["files"], ["descriptors"],
                                     ["report", "--format", "csv"], ["acl", "/", "-r", "--format", "json"]])
def test_output_and_limit_mean_the_same_everywhere(scenario_db, tmp_path, capsys, command):
    db = str(scenario_db("av-service"))
    target = tmp_path / "out.txt"
    argv = [command[0], db, *command[1:], "--limit", "2", "-o", str(target)]
    if "--format" not in argv:
        argv += ["--format", "csv"]
    code, out, _ = run(capsys, argv)
    assert code in (0, 1) and out == ""  # everything went to the file
    lines = target.read_text().splitlines()
    assert len(lines) == (2 if command[0] == "acl" else 3)  # two rows (plus the CSV header)


def test_acl_view_of_special_descriptors(feature_volume, tmp_path, capsys):
    """tests/volumes.py's acl/ files: a NULL DACL and no DACL grant everyone everything, an empty
    DACL nothing (MS-DTYP 2.4.6); deny ACEs read (DENY); the mandatory label reads (NW)."""
    db = tmp_path / "features.db"
    assert main(["scan", str(feature_volume.image), "--db", str(db), "--quiet"]) in (0, 3)
    code, out, _ = run(capsys, ["acl", str(db), "/acl", "-r", "--format", "json"])
    assert code == 0
    acl = {r["path"]: r for r in map(json.loads, out.splitlines())}
    assert acl, "nothing listed"
    assert acl["/acl/null_dacl.txt"]["aces"] == ["Everyone:(F) (no DACL: no access control)"]
    assert acl["/acl/no_dacl.txt"]["aces"] == ["Everyone:(F) (no DACL: no access control)"]
    assert acl["/acl/empty_dacl.txt"]["aces"] == ["(empty DACL: no access for anyone)"]
    deny = acl["/acl/deny.txt"]["aces"]
    assert deny[0].endswith(":(DENY)(W,D)") and deny[1].endswith(":(DENY)(F)")
    assert deny[3] == "Everyone:(R)"
    label = acl["/acl/sacl_label.txt"]["aces"]
    assert label[:2] == ["NT AUTHORITY\\SYSTEM:(F)", "NT AUTHORITY\\Authenticated Users:(RX)"]
    assert label[2] == "Mandatory Label\\High Mandatory Level:(NW)"
    assert label[3] == "Everyone:(AUDIT:S,F)(D)"
