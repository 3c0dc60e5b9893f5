"""The image's own past as history (issue 15): the RegBack copy of the SAM names the old
SIDs without any file from the user; where no history exists at all, a prefix only this
machine could have written is inferred to be its previous machine SID, with lower
confidence, instead of an unknown authority."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3

from aclscan.cli import main
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
