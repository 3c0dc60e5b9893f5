"""Expected-file tests for the renderers: every plan format (text, JSON, PowerShell, icacls,
SetACL), the readiness check (text and JSON) and the auditor's report (HTML page, JSON
evidence rows) of the member-after and av-service samples, the check and evidence rows of
no-history, and the check of the clean, domain-member and cloned-dc samples, compared byte
for byte with files under tests/expected/ that were read by hand once. What depends on when, where and by which
release the scan ran is replaced by :func:`normalise`, the one place that knows it.

Regenerate on purpose only, after reading the difference:
    ACLSCAN_REGENERATE_EXPECTED=1 python -m pytest -q tests/test_expected_outputs.py
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from aclscan import __version__, readiness
from aclscan.findings import EVIDENCE_COLUMNS, iter_evidence
from aclscan.formats.check_text import render_text
from aclscan.formats.html import write_html_report
from aclscan.formats.plans import PlanContext, PlanFormat, PlanOutput, render
from aclscan.formats.rows import write_rows
from aclscan.plan import build_plan
from aclscan.store import open_database
from tests.scenarios import manifest

EXPECTED = Path(__file__).parent / "expected"
REGENERATE = os.environ.get("ACLSCAN_REGENERATE_EXPECTED") == "1"
SCANNED_AT = "2026-12-01T00:00:00+00:00"
EXTENSIONS = {PlanFormat.JSON: "json", PlanFormat.TEXT: "txt", PlanFormat.POWERSHELL: "ps1",
              PlanFormat.ICACLS: "icacls", PlanFormat.SETACL: "setacl"}


def normalise(produced: bytes, db) -> bytes:
    """The output with what depends on this run replaced, and nothing else: each volume's
    image path (where the checkout is) by IMAGE.img, its scan time by SCANNED_AT, and the
    release (``aclscan 0.1.0``) by ``aclscan VERSION``; spelled in UTF-8 or, for the icacls
    and SetACL files, UTF-16-LE. The scan database's path never reaches an output here: the
    renderers are given SCAN.db."""
    volumes = list(db.execute("SELECT image, scanned_at FROM volumes"))
    assert volumes
    replacements = [(f"aclscan {__version__}", "aclscan VERSION")]
    for image, scanned_at in volumes:
        replacements += [(image, "IMAGE.img"), (scanned_at, SCANNED_AT)]
    for encoding in ("utf-8", "utf-16-le"):
        for volatile, fixed in replacements:
            produced = produced.replace(volatile.encode(encoding), fixed.encode(encoding))
    return produced


def _compare(name: str, produced: bytes, db) -> None:
    produced = normalise(produced, db)
    path = EXPECTED / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(produced)
    assert path.is_file(), f"{path} missing: regenerate with ACLSCAN_REGENERATE_EXPECTED=1 and read it"
    expected = path.read_bytes()
    assert produced == expected, f"{name} differs from {path} (regenerate on purpose only)"


# Every format on av-service (a few dozen files); member-after's file lists run to
# megabytes in icacls and SetACL form, so only its text and JSON plans are kept.
CASES = [("av-service", fmt) for fmt in PlanFormat] + [("member-after", PlanFormat.TEXT),
                                                      ("member-after", PlanFormat.JSON)]


@pytest.mark.parametrize(("scenario", "fmt"), CASES)
def test_plan_renderers_match_their_expected_files(scenario_db, scenario, fmt):
    db = open_database(scenario_db(scenario))
    plan = build_plan(db, database="SCAN.db")
    buffer = io.BytesIO()
    out = PlanOutput(lambda: buffer)
    render(plan, fmt, PlanContext(db), out)
    produced = buffer.getvalue()
    if fmt in (PlanFormat.ICACLS, PlanFormat.SETACL) and not plan.descriptors:
        assert produced == b""
    assert produced or fmt in (PlanFormat.ICACLS, PlanFormat.SETACL)
    _compare(f"{scenario}.plan.{EXTENSIONS[fmt]}", produced, db)


# clean: ready (its rules' pass texts); domain-member: other problem SIDs (orphans, SID
# history); cloned-dc: a domain controller; no-history: a previous machine SID inferred.
CHECKED = ["member-after", "av-service", "clean", "domain-member", "cloned-dc", "no-history"]


@pytest.mark.parametrize("scenario", CHECKED)
def test_check_text_matches_its_expected_file(scenario_db, scenario):
    db = open_database(scenario_db(scenario), index=False)
    result = readiness.check(db)
    produced = render_text(result, source="SCAN.db").encode("utf-8")
    ready = manifest(scenario)["readiness"]["ready"]
    assert produced.startswith(b"READY" if ready else b"NOT READY")
    _compare(f"{scenario}.check.txt", produced, db)


@pytest.mark.parametrize("scenario", CHECKED)
def test_check_json_matches_its_expected_file(scenario_db, scenario):
    db = open_database(scenario_db(scenario), index=False)
    document = readiness.to_json(readiness.check(db), database="SCAN.db")
    assert document["ready"] is manifest(scenario)["readiness"]["ready"]
    produced = (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    _compare(f"{scenario}.check.json", produced, db)


@pytest.mark.parametrize("scenario", ["member-after", "av-service"])
def test_html_report_matches_its_expected_file(scenario_db, scenario):
    db = open_database(scenario_db(scenario))
    page = io.StringIO()
    write_html_report(db, page)
    produced = page.getvalue().encode("utf-8")
    assert b"NOT READY" in produced
    _compare(f"{scenario}.report.html", produced, db)


@pytest.mark.parametrize("scenario", ["member-after", "av-service", "no-history"])
def test_json_evidence_report_matches_its_expected_file(scenario_db, scenario):
    db = open_database(scenario_db(scenario))
    out = io.StringIO()
    write_rows(iter_evidence(db), EVIDENCE_COLUMNS, "json", out)
    produced = out.getvalue().encode("utf-8")
    assert produced.startswith(b"[")
    _compare(f"{scenario}.report.json", produced, db)
