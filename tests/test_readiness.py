"""`aclscan check`: the readiness rules on every sample scenario, their JSON, exit codes,
checking an image directly, sysprep states from real hives, and old databases."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3

import pytest

from aclscan import readiness
from aclscan.cli import main
from aclscan.errors import DatabaseError
from aclscan.fleet import add_scan, open_fleet
from aclscan.samples import hives as sample_hives
from aclscan.samples.regf import REG_DWORD, REG_SZ, Value, hive_bytes
from aclscan.store import SCHEMA_VERSION, open_database
from tests.scenarios import SAMPLES, SCENARIOS, manifest

# Which rule a manifest's readiness reason is about, by the words it uses.
REASON_RULES = (
    (("shared with", "machine SID is the image's"), "unique_machine_sid"),
    (("predate", "exist before"), "no_account_predates_sid_change"),
    (("LanmanNT",), "not_domain_controller"),
    (("old SID", "previous machine SID", "lacks SeServiceLogonRight"), "no_stale_prefix"),
    (("orphaned", "SID-history", "problem SIDs"), "no_problem_sids"),
)
FLEET_SCENARIOS = ("ws1", "ws2", "member-before")


@pytest.fixture(scope="module")
def clone_fleet(scenario_db, tmp_path_factory):
    """A fleet database of ws1, ws2 and member-before: one machine SID, three machines."""
    path = tmp_path_factory.mktemp("fleet") / "fleet.db"
    fleet = open_fleet(path)
    for name in FLEET_SCENARIOS:
        add_scan(fleet, scenario_db(name))
    fleet.conn.close()
    return path


def judge(scenario_db, name, fleet_path=None):
    db = open_database(scenario_db(name), index=False)
    fleet = open_fleet(fleet_path, create=False) if fleet_path else None
    try:
        return readiness.check(db, fleet, scan_path=str(scenario_db(name)))
    finally:
        db.conn.close()


def rules_of(result) -> dict[str, readiness.Rule]:
    return {rule.name: rule for rule in result.rules}


@pytest.mark.parametrize("name", SCENARIOS)
def test_readiness_agrees_with_the_manifest(scenario_db, clone_fleet, name):
    expected = manifest(name)["readiness"]
    result = judge(scenario_db, name, clone_fleet if name in FLEET_SCENARIOS else None)
    assert result.ready == expected["ready"], [r for r in result.rules if r.status == "fail"]
    failed = {rule.name for rule in result.failed}
    for reason in expected["reasons"]:
        about = {rule for words, rule in REASON_RULES if any(w in reason for w in words)}
        assert about, f"no rule is about {reason!r}"
        assert about & failed, f"{reason!r}: {sorted(about)} did not fail (failed: {sorted(failed)})"
    assert [r.name for r in result.rules] == [name for name, _q, _f in readiness.RULES]
    assert all(r.status in ("pass", "fail", "skipped") for r in result.rules)


def test_member_before_names_the_accounts_and_the_clones(scenario_db, clone_fleet):
    result = rules_of(judge(scenario_db, "member-before", clone_fleet))
    predates = result["no_account_predates_sid_change"]
    assert predates.status == "fail"
    for account in ("Ken", "Arianne", "Ron"):
        assert account in predates.summary
    unique = result["unique_machine_sid"]
    assert unique.status == "fail"
    assert sorted(line.split(" ")[0] for line in unique.evidence) == ["WS1", "WS2"]
    # Alone, the clone's shared SID cannot be seen.
    alone = rules_of(judge(scenario_db, "member-before"))
    assert alone["unique_machine_sid"].status == "skipped"
    assert alone["no_account_predates_sid_change"].status == "pass"


def test_clean_machine_in_a_fleet_without_its_sid_is_unique(scenario_db, clone_fleet):
    assert rules_of(judge(scenario_db, "clean", clone_fleet))["unique_machine_sid"].status == "pass"


def test_av_service_evidence_itemises_every_reference(scenario_db):
    facts = manifest("av-service")
    old = facts["previous_machine_sids"][0]
    rule = rules_of(judge(scenario_db, "av-service"))["no_stale_prefix"]
    text = "\n".join(rule.evidence)
    assert f"lsa_right: {old}-1003 (AVService) holds SeServiceLogonRight" in text
    assert f"alias_member: {old}-1003 (AVService) is a member of AV Admins" in text
    assert "service_logon: AVScan logs on as .\\AVService" in text
    assert "/Program Files/AVScan" in text
    counted = {sid: row["files"] for sid, row in facts["expected"].items() if sid.startswith(old)}
    for sid, files in counted.items():
        assert f"{sid} " in text and f": {files} file(s)" in text
    predates = rules_of(judge(scenario_db, "av-service"))["no_account_predates_sid_change"]
    assert predates.summary == "local account(s) AVService, AV Admins predate the SID change"


def test_member_after_profiles_are_stale(scenario_db):
    rule = rules_of(judge(scenario_db, "member-after"))["no_stale_prefix"]
    profiles = [line for line in rule.evidence if line.startswith("profile: ")]
    old_profiles = {sid for sid in manifest("member-after")["profiles"] if sid.startswith(
        manifest("member-after")["previous_machine_sids"][0])}
    assert {line.split(" ")[1] for line in profiles} == old_profiles


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_document(scenario_db, capsys):
    code, out, _err = run(["check", str(scenario_db("cloned-dc")), "--format", "json"], capsys)
    assert code == 1
    document = json.loads(out)
    assert document["check_format"] == 1 and document["ready"] is False
    assert document["failed"] == ["not_domain_controller"]
    assert document["machine"]["product_type"] == "LanmanNT"
    assert document["machine"]["computer_name"] == manifest("cloned-dc")["computer"]
    for rule in document["rules"]:
        assert set(rule) == {"name", "checks", "status", "summary", "evidence"}
        assert isinstance(rule["evidence"], list) and all(isinstance(e, str) for e in rule["evidence"])


def test_exit_codes(scenario_db, tmp_path, capsys):
    assert run(["check", str(scenario_db("clean"))], capsys)[0] == 0
    code, out, _ = run(["check", str(scenario_db("cloned-dc"))], capsys)
    headline, machine = out.splitlines()[:2]
    assert code == 1 and headline.startswith("NOT READY: not_domain_controller failed")
    assert machine.startswith("DC01 ")
    # A scan database given as the fleet: a database error.
    code, _, err = run(["check", str(scenario_db("clean")), "--fleet", str(scenario_db("ws1"))], capsys)
    assert code == 5 and "is a scan database, not a fleet database" in err
    # Resolve options belong to an image.
    code, _, err = run(["check", str(scenario_db("clean")), "--history", str(scenario_db("ws1"))], capsys)
    assert code == 2 and "--history" in err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not an image and not a database" * 100)
    code, _, err = run(["check", str(junk)], capsys)
    assert code == 4 and err.startswith("Error: ")


def test_check_image_scans_read_only(scenario_db, capsys):
    image = SAMPLES / "cloned-dc.img.gz"
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    code, out, _ = run(["check", str(image), "--format", "json"], capsys)
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before
    assert code == 1
    document = json.loads(out)
    assert document["image"] == str(image) and document["database"] is None
    from_db = readiness.to_json(judge(scenario_db, "cloned-dc"))
    assert [(r["name"], r["status"]) for r in document["rules"]] == [
        (r["name"], r["status"]) for r in from_db["rules"]]


def test_check_image_with_history_option(capsys):
    image = SAMPLES / "av-service.img.gz"
    code, out, _ = run(["check", str(image), "--history", str(SAMPLES / "av-service.master-SAM"), "--format",
                        "json"], capsys)
    assert code == 1
    failed = json.loads(out)["failed"]
    assert failed == ["no_stale_prefix", "no_account_predates_sid_change"]


def _setup_hives(tmp_path, *, image_state=None, generalization=None):
    """SYSTEM and SOFTWARE hives of the clean scenario's machine with a sysprep state."""
    facts = manifest("clean")
    system = sample_hives.system_hive(facts["computer"], product_type=facts["product_type"])
    if generalization is not None:
        system.ensure("Setup\\Status\\SysprepStatus").values += [
            Value("GeneralizationState", REG_DWORD, generalization), Value("CleanupState", REG_DWORD, 2)]
    software = sample_hives.software_hive([sample_hives.Profile(sid, path) for sid, path in facts["profiles"].items()])
    if image_state is not None:
        software.ensure("Microsoft\\Windows\\CurrentVersion\\Setup\\State").values.append(
            Value("ImageState", REG_SZ, image_state))
    paths = {}
    for kind, tree in (("SYSTEM", system), ("SOFTWARE", software)):
        paths[kind] = tmp_path / kind
        paths[kind].write_bytes(hive_bytes(tree, name=sample_hives.HIVE_NAMES[kind]))
    return paths


@pytest.mark.parametrize("image_state, generalization, status", [
    ("IMAGE_STATE_UNDEPLOYABLE", 7, "fail"),
    ("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", 7, "pass"),
    ("IMAGE_STATE_COMPLETE", None, "pass"),
    (None, 4, "fail"),
    ("IMAGE_STATE_COMPLETE", 4, "fail"),
    ("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", 4, "pass"),  # generalized and sealed: ImageState is documented
    ("IMAGE_STATE_SOMETHING_NEW", None, "fail"),
])
def test_sysprep_state_from_the_hives(tmp_path, capsys, image_state, generalization, status):
    hives = _setup_hives(tmp_path, image_state=image_state, generalization=generalization)
    code, out, _ = run(["check", str(SAMPLES / "clean.img.gz"), "--system", str(hives["SYSTEM"]), "--software",
                        str(hives["SOFTWARE"]), "--format", "json"], capsys)
    document = json.loads(out)
    rule = next(r for r in document["rules"] if r["name"] == "sysprep_state")
    assert rule["status"] == status
    assert document["machine"]["image_state"] == image_state
    assert document["machine"]["sysprep_generalization_state"] == generalization
    if image_state:
        assert any(image_state in line for line in rule["evidence"])
    assert rule["summary"] == ("sysprep state allows deployment" if status == "pass"
                               else "sysprep left the image undeployable")
    if image_state == "IMAGE_STATE_SOMETHING_NEW":
        assert rule["evidence"] == ["SOFTWARE Setup\\State ImageState = IMAGE_STATE_SOMETHING_NEW: not a state "
                                    "Microsoft documents"]
    # The hives written above have CleanupState 2 beside every GeneralizationState.
    generalization_line = (f"SYSTEM Setup\\Status\\SysprepStatus GeneralizationState = {generalization}, "
                           "CleanupState = 2: ")
    expected = {7: "no sysprep run pending or failed",
                4: ("not 7, but ImageState says the image was generalized and sealed"
                    if image_state and "GENERALIZE_RESEAL" in image_state
                    else "a sysprep run did not finish (Windows keeps 7 otherwise)")}
    if generalization is not None:
        assert generalization_line + expected[generalization] in rule["evidence"]
    assert code == (0 if status == "pass" else 1)


def _as_schema_1(source, target):
    """A copy of a scan database as aclscan wrote it before machine facts."""
    shutil.copy(source, target)
    conn = sqlite3.connect(target)
    conn.execute("DROP TABLE machine")
    conn.execute("DROP TABLE previous_names")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_schema_1_database_migrates_and_asks_for_a_rescan(scenario_db, tmp_path, capsys):
    old = tmp_path / "old.db"
    _as_schema_1(scenario_db("ws1"), old)
    db = open_database(old, index=False)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert db.execute("SELECT COUNT(*) FROM machine").fetchone()[0] == 0
    with pytest.raises(DatabaseError, match="predates machine facts"):
        readiness.check(db)
    db.conn.close()
    code, _, err = run(["check", str(old)], capsys)
    assert code == 5 and "re-scan" in err
    # The fleet still takes it: its machine SID comes from the authorities.
    fleet = open_fleet(tmp_path / "fleet.db")
    add_scan(fleet, old)
    assert fleet.execute("SELECT machine_sid, name FROM machines").fetchall() == [
        (manifest("ws1")["machine_sid"], "old")]


def test_scan_stores_machine_facts(scenario_db):
    for name in SCENARIOS:
        facts = manifest(name)
        db = open_database(scenario_db(name), index=False)
        row = db.execute("SELECT machine_sid, computer_name, product_type, primary_domain_sid, hives_found"
                         " FROM machine").fetchall()
        db.conn.close()
        assert len(row) == 1
        machine_sid, computer, product, domain_sid, hives = row[0]
        assert (machine_sid, computer, product) == (facts["machine_sid"], facts["computer"], facts["product_type"])
        assert domain_sid == (facts["primary_domain"] or {}).get("sid")
        assert sorted(json.loads(hives)) == ["SAM", "SECURITY", "SOFTWARE", "SYSTEM"]


def test_hostile_computer_name_is_terminal_safe(scenario_db, tmp_path, capsys):
    hostile = tmp_path / "hostile.db"
    shutil.copy(scenario_db("av-service"), hostile)
    conn = sqlite3.connect(hostile)
    conn.execute("UPDATE machine SET computer_name = ?", ("EVIL\x1b]0;owned\x07\x1b[2J",))
    conn.execute("UPDATE hive_references SET detail = ? WHERE kind = 'lsa_right'", ("Se\x1b[31mRight",))
    conn.commit()
    conn.close()
    code, out, _ = run(["check", str(hostile)], capsys)
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out
    assert "EVIL\\x1b]0;owned\\x07" in out and "Se\\x1b[31mRight" in out
    code, out, _ = run(["check", str(hostile), "--format", "json"], capsys)
    assert json.loads(out)["machine"]["computer_name"] == "EVIL\x1b]0;owned\x07\x1b[2J"
    assert "\x1b" not in out  # JSON escapes control characters itself


# --- check_target: what `aclscan check` judges, a scan database or an image ---------------

def test_check_target_judges_a_scan_database_without_changing_it(scenario_db, tmp_path):
    scan = tmp_path / "member-after.db"
    shutil.copy(scenario_db("member-after"), scan)
    before = hashlib.sha256(scan.read_bytes()).hexdigest()
    result, database, image = readiness.check_target(str(scan))
    assert (database, image) == (str(scan.resolve()), None)
    # Judged as the scan is, and nothing written to it (no index built, no migration).
    assert hashlib.sha256(scan.read_bytes()).hexdigest() == before
    direct = judge(scenario_db, "member-after")
    assert [(r.name, r.status) for r in result.rules] == [(r.name, r.status) for r in direct.rules]
    assert result.ready is False and result.fleet is None and result.strict is False


def test_check_target_against_a_fleet_that_holds_the_scan_itself(scenario_db, tmp_path):
    """The scan is a machine of the fleet: its own row is not a duplicate of itself, so
    its machine SID is unique there; strict and the fleet's path reach the result."""
    scan = str(scenario_db("clean"))
    fleet_path = tmp_path / "fleet.db"
    fleet = open_fleet(fleet_path)
    add_scan(fleet, scan)
    fleet.conn.close()
    result, _, _ = readiness.check_target(scan, fleet_path=str(fleet_path), strict=True)
    assert rules_of(result)["unique_machine_sid"].status == "pass"
    assert result.fleet == str(fleet_path) and result.strict is True
    # Only the sysprep state is left unjudged (the sample has none), and strict fails it.
    assert [r.name for r in result.unjudged] == ["sysprep_state"] and result.ready is False


def test_check_target_strict_fails_what_it_cannot_judge(scenario_db):
    lenient, _, _ = readiness.check_target(str(scenario_db("clean")))
    strict, _, _ = readiness.check_target(str(scenario_db("clean")), strict=True)
    assert [r.name for r in lenient.unjudged] == ["unique_machine_sid", "sysprep_state"]
    assert lenient.ready is True and strict.ready is False and not strict.failed


def test_check_target_never_creates_a_missing_fleet(scenario_db, tmp_path):
    with pytest.raises(DatabaseError):
        readiness.check_target(str(scenario_db("clean")), fleet_path=str(tmp_path / "absent.db"))
    assert not (tmp_path / "absent.db").exists()


def test_check_target_scans_an_image_into_a_folder_it_removes(tmp_path, monkeypatch):
    import tempfile

    from aclscan.image import ImageInput
    from aclscan.scan import ResolveInputs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its scratch folder goes
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)  # nothing is written where the command runs either
    image = SAMPLES / "av-service.img.gz"
    inputs = ResolveInputs(history=(str(SAMPLES / "av-service.master-SAM"),))
    result, database, found = readiness.check_target(str(image), image_source=ImageInput(str(image)), resolve=inputs)
    assert (database, found) == (None, str(image.resolve()))
    assert [r.name for r in result.failed] == ["no_stale_prefix", "no_account_predates_sid_change"]
    assert list(tmp_path.iterdir()) == [here] and list(here.iterdir()) == []


def test_a_target_that_is_no_file_is_an_image_error_naming_it(tmp_path):
    import os

    from aclscan.errors import ImageError

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ImageError) as caught:
        readiness.is_scan_database(str(fifo))
    assert str(caught.value) == f"IMAGE {fifo} is a named pipe (FIFO), not a regular file or block device"
    assert readiness.is_scan_database(str(SAMPLES / "clean.img.gz")) is False


def _without(scenario_db, tmp_path, name: str, sql: str):
    """A copy of scenario NAME's scan database with SQL run on it."""
    copy = tmp_path / f"{name}.db"
    shutil.copy(scenario_db(name), copy)
    conn = sqlite3.connect(copy)
    conn.execute(sql)
    conn.commit()
    conn.close()
    return copy


def test_old_names_alone_make_a_previous_machine_sid(scenario_db, tmp_path):
    """av-service's history gives both the previous machine SID (authorities) and the old
    account names (previous_names); the names alone still show AVService and AV Admins
    predating the SID change."""
    copy = _without(scenario_db, tmp_path, "av-service", "DELETE FROM authorities WHERE kind = 'previous_machine'")
    result, _, _ = readiness.check_target(str(copy))
    rule = rules_of(result)["no_account_predates_sid_change"]
    assert rule.status == "fail" and rule.summary == "local account(s) AVService, AV Admins predate the SID change"


def test_a_previous_machine_sid_without_old_names_is_still_history(scenario_db, tmp_path):
    """With the old names gone, no account can be shown to predate the change, but the
    scan still knows a previous machine SID: the rule says so, not that none is known."""
    copy = _without(scenario_db, tmp_path, "av-service", "DELETE FROM previous_names")
    result, _, _ = readiness.check_target(str(copy))
    rule = rules_of(result)["no_account_predates_sid_change"]
    assert (rule.status, rule.summary) == ("pass", "no local account is known under a previous machine SID")
    clean = rules_of(judge(scenario_db, "clean"))["no_account_predates_sid_change"]
    assert clean.status == "pass" and clean.summary.endswith("none known under another machine SID")


# --- which machine of the fleet is the one being checked ------------------------------

def _variant(scenario_db, tmp_path, label: str, *, image: str, serial: str, computer: str):
    """A copy of the clean scan as if another scan (of IMAGE, a volume SERIAL, a machine
    named COMPUTER) had made it; its machine SID stays clean's."""
    copy = tmp_path / f"{label}.db"
    shutil.copy(scenario_db("clean"), copy)
    conn = sqlite3.connect(copy)
    conn.execute("UPDATE volumes SET image = ?, serial = ?", (image, serial))
    conn.execute("UPDATE machine SET computer_name = ?", (computer,))
    conn.commit()
    conn.close()
    return str(copy.resolve())


@pytest.mark.parametrize(("checked", "itself"), [
    # The same scan database: itself.
    ({"label": "in-fleet", "image": "/images/a.img", "serial": "A", "computer": "WS-A"}, True),
    # The same scan database, whatever it says now (rewritten after the fleet took it).
    ({"label": "in-fleet", "image": "/images/z.img", "serial": "Z", "computer": "WS-Z"}, True),
    # Another scan of the same image: itself.
    ({"label": "again", "image": "/images/a.img", "serial": "B", "computer": "WS-B"}, True),
    # Same computer name and volume serials, the image moved: itself.
    ({"label": "moved", "image": "/moved/a.img", "serial": "A", "computer": "WS-A"}, True),
    # Same name, another volume: a clone that kept the name.
    ({"label": "clone", "image": "/images/b.img", "serial": "B", "computer": "WS-A"}, False),
    # Another image, volume and name: another machine with the same machine SID.
    ({"label": "other", "image": "/images/c.img", "serial": "C", "computer": "WS-C"}, False),
])
def test_the_checked_machine_is_told_from_its_clones_in_the_fleet(scenario_db, tmp_path, checked, itself):
    fleet_path = tmp_path / "fleet.db"
    member = _variant(scenario_db, tmp_path, "in-fleet", image="/images/a.img", serial="A", computer="WS-A")
    fleet = open_fleet(fleet_path)
    add_scan(fleet, member)
    fleet.conn.close()
    # Made again under the fleet member's own path when the label is in-fleet.
    target = _variant(scenario_db, tmp_path, **checked)
    result, _, _ = readiness.check_target(target, fleet_path=str(fleet_path))
    rules = rules_of(result)
    if itself:
        assert rules["unique_machine_sid"].status == "pass"
        assert rules["unique_machine_sid"].summary.endswith("is unique in the fleet")
    else:
        rule = rules["unique_machine_sid"]
        assert rule.status == "fail"
        assert rule.summary == (f"machine SID {manifest('clean')['machine_sid']} shared with 1 other machine(s) "
                                "of the fleet")
        assert rule.evidence == (f"WS-A ({member}) has machine SID {manifest('clean')['machine_sid']}",)
        # Its local accounts will predate the SID change the clone needs.
        local = [a["name"] for a in manifest("clean")["accounts"] if a["rid"] >= 1000]
        accounts = rules["no_account_predates_sid_change"]
        assert (accounts.status, accounts.summary) == ("fail", f"local account(s) {', '.join(local)} predate the SID "
                                                               "change")
        assert accounts.evidence == (f"machine SID {manifest('clean')['machine_sid']} is shared with WS-A: local "
                                     f"account(s) {', '.join(local)} will predate the SID change it needs",)


def test_a_history_with_this_very_machine_sid_fails_uniqueness_without_a_fleet(scenario_db, tmp_path):
    """The master's SAM given as history has the machine SID the clone still carries: the
    SID was never changed, and the rule says so with no fleet at all."""
    sid = manifest("clean")["machine_sid"]
    copy = _without(scenario_db, tmp_path, "clean", "INSERT INTO authorities (sid, name, kind, complete, source) "
                                                    f"VALUES ('{sid}', NULL, 'previous_machine', 0, "
                                                    "'history master-SAM')")
    rule = rules_of(readiness.check_target(str(copy))[0])["unique_machine_sid"]
    assert (rule.status, rule.summary) == ("fail", f"machine SID {sid} is the one the history had")
    assert rule.evidence == (f"history master-SAM had this machine SID {sid} before: the SID was never changed",)


def test_stale_prefix_evidence_of_a_changed_av_service_scan(scenario_db, tmp_path):
    """av-service's scan changed where the rule has choices to make: AV Admins' old SID named
    by no file and known by no name, a SAM-account reference (never evidence) for AVService's
    old SID, its group membership gone (its right alone still makes a service's logon
    stale), and a service logging on as today's AV Admins (whose old SID holds no right)."""
    facts = manifest("av-service")
    before, now = facts["previous_machine_sids"][0], facts["machine_sid"]
    service, admins = f"{before}-1003", f"{before}-1004"
    copy = tmp_path / "av-service.db"
    shutil.copy(scenario_db("av-service"), copy)
    conn = sqlite3.connect(copy)
    conn.execute("UPDATE findings SET files = 0, descriptors = 0, account = NULL WHERE sid = ?", (admins,))
    conn.execute("INSERT INTO hive_references (sid, kind, detail) VALUES (?, 'sam_account', 'AVService')", (service,))
    conn.execute("DELETE FROM hive_references WHERE sid = ? AND kind = 'alias_member'", (service,))
    conn.execute("INSERT INTO hive_references (sid, kind, detail) VALUES (?, 'service_logon', 'AVAdmin logs on as "
                 ".\\AV Admins')", (f"{now}-1004",))
    conn.commit()
    conn.close()
    rule = rules_of(readiness.check_target(str(copy))[0])["no_stale_prefix"]
    assert rule.status == "fail"
    assert rule.summary == ("2 stale SID(s) still named: 36 file reference(s), lsa_right, dcom, registry_key, service, "
                            "share, task")
    assert f"{admins} stale_prefix, today {now}-1004: 0 file(s), 0 descriptor(s)" in rule.evidence
    assert not [e for e in rule.evidence if "sam_account" in e or "(None)" in e or "alias_member" in e]
    assert [e for e in rule.evidence if e.startswith("service_logon:")] == [
        f"service_logon: AVScan logs on as .\\AVService ({now}-1003), but SeServiceLogonRight is granted to the "
        f"old SID {service}"]


def test_accounts_whose_old_sids_nothing_names_are_reported_re_pointed(scenario_db, tmp_path):
    """After a fix re-pointed everything, av-service's AVService and AV Admins still predate
    the SID change (the history says so) but nothing names their old SIDs: the rule passes
    and lists both, AV Admins' old SID too (one re-pointed account does not end the search)."""
    facts = manifest("av-service")
    before, now = facts["previous_machine_sids"][0], facts["machine_sid"]
    copy = _without(scenario_db, tmp_path, "av-service", f"DELETE FROM findings WHERE sid LIKE '{before}-%'")
    rule = rules_of(readiness.check_target(str(copy))[0])["no_account_predates_sid_change"]
    assert (rule.status, rule.summary) == ("pass", "2 local account(s) predate the SID change, all re-pointed")
    assert rule.evidence == (
        f"AVService ({now}-1003) was {before}-1003 (history av-service.master-SAM); nothing names the old SID any more",
        f"AV Admins ({now}-1004) was {before}-1004 (history av-service.master-SAM); nothing names the old SID any more",
    )


@pytest.mark.parametrize(("kinds", "summary"), [
    (("hive", "record"), "the scan is partial (1 hive, 2 record): the accounts could not be judged"),
    (("record", "task"), "the scan is partial (2 record, 1 task): what was not read cannot be judged"),
])
def test_a_partial_scan_fails_scan_complete_and_says_what_it_missed(scenario_db, tmp_path, kinds, summary):
    copy = tmp_path / "clean.db"
    shutil.copy(scenario_db("clean"), copy)
    conn = sqlite3.connect(copy)
    columns = [c[1] for c in conn.execute("PRAGMA table_info(scan_errors)")]
    assert {"kind", "reason"} <= set(columns)
    rows = [(kind, f"{kind} {n}: unreadable") for kind in kinds for n in range(2 if kind == "record" else 1)]
    conn.executemany("INSERT INTO scan_errors (kind, reason) VALUES (?, ?)", rows)
    conn.commit()
    conn.close()
    rule = rules_of(readiness.check_target(str(copy))[0])["scan_complete"]
    assert (rule.status, rule.summary) == ("fail", summary)
    assert rule.evidence == tuple(f"{2 if kind == 'record' else 1} {kind} item(s) unread; e.g. {kind} 0: unreadable"
                                  for kind in sorted(kinds))


def test_other_problem_sids_are_shown_with_their_rights_and_places(scenario_db, tmp_path):
    """domain-member's orphan, given a user right, a service that logs on as it and a
    scheduled task that runs as it (and a SAM-account reference, never evidence): each is
    a line of the rule's evidence, the task's kind spelled with a space."""
    facts = manifest("domain-member")
    orphan = next(sid for sid, v in facts["expected"].items() if v["verdict"] == "orphan")
    copy = tmp_path / "domain-member.db"
    shutil.copy(scenario_db("domain-member"), copy)
    conn = sqlite3.connect(copy)
    conn.executemany("INSERT INTO hive_references (sid, kind, detail) VALUES (?, ?, ?)",
                     [(orphan, "lsa_right", "SeBackupPrivilege"), (orphan, "sam_account", "old"),
                      (orphan, "service_logon", "BackupAgent")])
    conn.execute("INSERT INTO places (volume_id, kind, path, sid, role) VALUES (1, 'scheduled_task', "
                 "'task \\Backup', ?, 'principal')", (orphan,))
    conn.commit()
    conn.close()
    rule = rules_of(readiness.check_target(str(copy))[0])["no_problem_sids"]
    assert rule.status == "fail"
    kinds = ("lsa_right", "scheduled_task", "sam_account", "service_logon")
    lines = [e for e in rule.evidence if e.startswith(kinds)]
    assert lines == [f"lsa_right: {orphan} holds SeBackupPrivilege",
                     f"service_logon: {orphan} is the logon of service BackupAgent",
                     f"scheduled_task: {orphan} is named by 1 scheduled task(s); e.g. task \\Backup"]
    assert rule.summary == "2 problem SID(s) still named (orphan, sid_history): see aclscan findings"


def test_a_scan_without_its_sam_and_system_hives_cannot_be_judged(scenario_db, tmp_path):
    copy = _without(scenario_db, tmp_path, "clean", """UPDATE machine SET hives_found = '{"SOFTWARE": "volume x"}'""")
    rule = rules_of(readiness.check_target(str(copy))[0])["hives_present"]
    assert (rule.status, rule.summary) == ("fail", "no SAM or SYSTEM hive: the machine cannot be judged")
    assert rule.evidence == ("SOFTWARE: volume x",)


def test_rules_that_need_a_hive_the_scan_lacks_are_not_judged(scenario_db, tmp_path):
    copy = _without(scenario_db, tmp_path, "clean", "UPDATE machine SET machine_sid = NULL, product_type = NULL")
    rules = rules_of(readiness.check_target(str(copy))[0])
    assert {name: (rules[name].status, rules[name].summary) for name in
            ("unique_machine_sid", "no_account_predates_sid_change", "not_domain_controller")} == {
        "unique_machine_sid": ("skipped", "no SAM hive: the machine SID is unknown"),
        "no_account_predates_sid_change": ("skipped", "no SAM hive: the local accounts are unknown"),
        "not_domain_controller": ("skipped", "no SYSTEM hive (or no ProductType): the machine's role is unknown"),
    }


@pytest.mark.parametrize("domain", [None, "S-1-5-21-9-9-9"])
def test_a_profile_under_a_prefix_nobody_claims_is_stale(scenario_db, tmp_path, domain):
    """clean with one ProfileList entry under S-1-5-21-9-9-9: stale unless that is the
    machine's domain."""
    copy = tmp_path / "clean.db"
    shutil.copy(scenario_db("clean"), copy)
    conn = sqlite3.connect(copy)
    conn.execute("INSERT INTO hive_references (sid, kind, detail) VALUES ('S-1-5-21-9-9-9-1001', 'profile', "
                 "'C:\\Users\\x')")
    conn.execute("UPDATE machine SET primary_domain_sid = ?", (domain,))
    conn.commit()
    conn.close()
    rule = rules_of(readiness.check_target(str(copy))[0])["no_stale_prefix"]
    if domain:
        assert rule.status == "pass"
        return
    assert (rule.status, rule.summary) == ("fail", "1 profile(s) under another machine prefix")
    assert rule.evidence == ("profile: S-1-5-21-9-9-9-1001 C:\\Users\\x is under S-1-5-21-9-9-9, neither this "
                             "machine's SID nor a domain's",)


def test_a_scan_without_machine_facts_is_a_database_error_that_says_what_to_do(scenario_db, tmp_path):
    older = _without(scenario_db, tmp_path, "clean", "DELETE FROM machine")
    with pytest.raises(DatabaseError) as caught:
        readiness.check_target(str(older))
    assert str(caught.value) == "the scan predates machine facts (schema 1): re-scan the image with this aclscan"
    conn = sqlite3.connect(older)
    conn.execute("DELETE FROM findings")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError) as caught:
        readiness.check_target(str(older))
    assert str(caught.value) == ("the scan has no verdicts or machine facts (scanned with --no-resolve?): re-scan "
                                 "without --no-resolve")
