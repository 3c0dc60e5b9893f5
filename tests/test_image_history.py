"""The image's own past as history (issue 15): the RegBack copy of the SAM names the old
SIDs without any file from the user; where no history exists at all, a prefix only this
machine could have written is inferred to be its previous machine SID, with lower
confidence, instead of an unknown authority."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import subprocess

from aclscan.cli import main
from aclscan.plan import build_plan
from aclscan.store import open_database
from tests.scenarios import SAMPLES, manifest


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def findings(db) -> dict[str, dict]:
    rows = sqlite3.connect(db).execute("SELECT sid, verdict, confidence, account, mapped_sid, evidence FROM findings")
    return {sid: {"verdict": v, "confidence": c, "account": a, "mapped_sid": m, "evidence": json.loads(e)}
            for sid, v, c, a, m, e in rows}


def test_regback_names_the_old_sids_without_history(tmp_path, capsys):
    facts = manifest("av-service")
    assert facts["image_history"] == ["Windows/System32/config/RegBack/SAM"]
    old, new = facts["previous_machine_sids"][0], facts["machine_sid"]
    db = tmp_path / "av.db"
    code, _out, err = run(["scan", str(SAMPLES / "av-service.img.gz"), "--db", str(db)], capsys)
    assert code == 0 and "history: SAM in Windows/System32/config/RegBack" in err
    found = findings(db)
    service = found[f"{old}-1003"]
    assert (service["verdict"], service["account"], service["mapped_sid"], service["confidence"]) == (
        "stale_prefix", "AVService", f"{new}-1003", "high")
    assert "SAM in Windows/System32/config/RegBack: it was AVService" in service["evidence"]
    # The same verdicts as with the master's SAM given by hand.
    given = tmp_path / "given.db"
    assert run(["scan", str(SAMPLES / "av-service.img.gz"), "--db", str(given), "--no-image-history",
                "--history", str(SAMPLES / "av-service.master-SAM")], capsys)[0] == 0
    by_hand = findings(given)
    for sid in (f"{old}-1003", f"{old}-1004"):
        assert (found[sid]["verdict"], found[sid]["mapped_sid"]) == (by_hand[sid]["verdict"], by_hand[sid]["mapped_sid"])
    reasons = [a.reason for a in build_plan(open_database(db)).actions if a.kind == "replace_sid"]
    assert reasons and not any("inferred" in r for r in reasons)  # history knows the prefix: no inference


def test_without_any_history_the_previous_machine_sid_is_inferred(tmp_path, capsys):
    old = manifest("av-service")["previous_machine_sids"][0]
    db = tmp_path / "av.db"
    assert run(["scan", str(SAMPLES / "av-service.img.gz"), "--db", str(db), "--no-image-history"], capsys)[0] == 0
    found = findings(db)
    for rid in (1003, 1004):
        verdict = found[f"{old}-{rid}"]
        assert verdict["verdict"] != "unknown_authority"
        assert verdict["confidence"] != "high"
        assert verdict["mapped_sid"] is None  # no name is known: nothing to map by
        assert any("probably a previous machine SID" in line and "inferred" in line for line in verdict["evidence"])


def test_a_regback_file_that_is_not_a_hive_is_recorded_and_the_scan_goes_on(ntfs3g, tmp_path, capsys):
    image = tmp_path / "av.img"
    with gzip.open(SAMPLES / "av-service.img.gz", "rb") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with ntfs3g.mounted(image) as root:
        (root / "Windows" / "System32" / "config" / "RegBack" / "SAM").write_bytes(b"not a hive at all" * 100)
    db = tmp_path / "av.db"
    code, _out, err = run(["scan", str(image), "--db", str(db)], capsys)
    assert code == 3 and "scan_errors" in err
    errors = sqlite3.connect(db).execute("SELECT kind, reason FROM scan_errors").fetchall()
    assert [kind for kind, _ in errors] == ["history"]
    assert "RegBack/SAM" in errors[0][1] and "not a registry hive" in errors[0][1]
    assert findings(db)  # the rest was judged


def _fls_paths(image) -> dict[str, str]:
    """Every path The Sleuth Kit lists on the volume -> its metadata address (for icat)."""
    listing = subprocess.run(["fls", "-r", "-p", str(image)], capture_output=True, text=True, check=True).stdout
    paths = {}
    for line in listing.splitlines():
        kind_and_address, _tab, path = line.partition(":\t")
        paths[path] = kind_and_address.split()[-1]
    return paths


def test_the_no_history_sample_is_judged_by_inference(tmp_path, capsys):
    """no-history: no RegBack, Windows.old, shadow copy or master's SAM; the old prefix is
    inferred from the Administrators alias, the LSA rights and ProfileList, one confidence
    step lower; old Ken maps to today's Ken by ProfileList's name, old 1001 (Jon's RID now,
    its old name unknown) is left alone."""
    facts = manifest("no-history")
    assert facts["history"] == [] and facts["image_history"] == []
    old, new = facts["previous_machine_sids"][0], facts["machine_sid"]
    jon = next(a["sid"] for a in facts["accounts"] if a["name"] == "Jon")
    assert jon == f"{new}-1001"

    # What the volume holds, read by The Sleuth Kit and hivex: no backup of any hive, no
    # store of a shadow copy; ProfileList keeps old Ken's profile under his old SID.
    image = tmp_path / "no-history.img"
    with gzip.open(SAMPLES / "no-history.img.gz", "rb") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
    paths = _fls_paths(image)
    assert "Windows/System32/config/SAM" in paths and "Users/Ken/NTUSER.DAT" in paths
    assert [p for p in paths if "regback" in p.casefold() or p.casefold().startswith(
        ("windows.old", "system volume information"))] == []
    software = tmp_path / "SOFTWARE"
    software.write_bytes(subprocess.run(["icat", str(image), paths["Windows/System32/config/SOFTWARE"]],
                                        capture_output=True, check=True).stdout)
    profile = subprocess.run(["hivexget", str(software),
                              f"\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\{old}-1000",
                              "ProfileImagePath"], capture_output=True, text=True, check=True).stdout.strip()
    assert profile == "C:\\Users\\Ken"

    db = tmp_path / "no-history.db"
    code, _out, err = run(["scan", str(SAMPLES / "no-history.img.gz"), "--db", str(db)], capsys)
    assert code == 0 and "history: none" in err
    found = findings(db)
    ken, backup = found[f"{old}-1000"], found[f"{old}-1001"]
    assert (ken["verdict"], ken["confidence"], ken["account"], ken["mapped_sid"]) == (
        "stale_prefix", "medium", "Ken", f"{new}-1000")
    assert (backup["verdict"], backup["confidence"], backup["account"], backup["mapped_sid"]) == (
        "rid_collision", "low", None, None)
    for verdict in (ken, backup):
        why = verdict["evidence"][0]
        assert f"prefix {old} is probably a previous machine SID of this machine (inferred: " in why
        for place in ("LSA accounts", "SOFTWARE ProfileList", "alias Administrators's members"):
            assert place in why, (place, why)
    assert "SOFTWARE ProfileList: it was Ken" in ken["evidence"]
    assert any("RID 1001 now belongs to WS3\\Jon" in line for line in backup["evidence"])

    plan = build_plan(open_database(db))
    by_sid: dict[str, list] = {}
    for action in plan.actions:
        by_sid.setdefault(action.sid, []).append(action)
    assert by_sid
    assert {(a.kind, a.new_sid) for a in by_sid[f"{old}-1000"]} == {
        ("replace_sid", f"{new}-1000"), ("replace_alias_member", f"{new}-1000"), ("repoint_profile", f"{new}-1000")}
    assert [(a.kind, a.new_sid) for a in by_sid[f"{old}-1001"]] == [("refuse", None)]
    # The plan says that its mapping rests on an inference, and how sure it is.
    replace = next(a for a in by_sid[f"{old}-1000"] if a.kind == "replace_sid")
    assert "that the old prefix was this machine's SID is inferred" in replace.reason
    assert "confidence medium, check before applying" in replace.reason
    assert not [a for a in plan.actions if a.new_sid == jon]
    assert plan.descriptors
    for change in plan.descriptors:  # no rewrite gives Jon anything
        assert change.new_sddl.count(jon) == change.old_sddl.count(jon)
        assert f"{old}-1001" in change.new_sddl or f"{old}-1001" not in change.old_sddl
