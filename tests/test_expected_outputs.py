"""Expected-file tests for the renderers: every plan format (text, JSON, PowerShell, icacls,
SetACL) and the readiness text of the member-after and av-service samples, compared byte
for byte with files under tests/expected/ that were read by hand once. What depends on
when and where the scan ran (the scan time, the image's path) is fixed first.

Regenerate on purpose only, after reading the difference:
    ACLSCAN_REGENERATE_EXPECTED=1 python -m pytest -q tests/test_expected_outputs.py
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path

import pytest

from aclscan import readiness
from aclscan.formats.check_text import render_text
from aclscan.formats.plans import PlanContext, PlanFormat, PlanOutput, render
from aclscan.plan import build_plan
from aclscan.store import open_database

EXPECTED = Path(__file__).parent / "expected"
REGENERATE = os.environ.get("ACLSCAN_REGENERATE_EXPECTED") == "1"
SCANNED_AT = "2026-12-01T00:00:00+00:00"
EXTENSIONS = {PlanFormat.JSON: "json", PlanFormat.TEXT: "txt", PlanFormat.POWERSHELL: "ps1",
              PlanFormat.ICACLS: "icacls", PlanFormat.SETACL: "setacl"}


def _fixed_plan(db):
    """The plan with what depends on this run (paths, scan time) fixed."""
    plan = build_plan(db, database="SCAN.db")
    volumes = [{**v, "image": "IMAGE.img", "scanned_at": SCANNED_AT} for v in plan.scan["volumes"]]
    return dataclasses.replace(plan, scan={**plan.scan, "database": "SCAN.db", "volumes": volumes})


def _compare(name: str, produced: bytes) -> None:
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
    plan = _fixed_plan(db)
    buffer = io.BytesIO()
    out = PlanOutput(lambda: buffer)
    render(plan, fmt, PlanContext(db), out)
    produced = buffer.getvalue()
    if fmt in (PlanFormat.ICACLS, PlanFormat.SETACL) and not plan.descriptors:
        assert produced == b""
    assert produced or fmt in (PlanFormat.ICACLS, PlanFormat.SETACL)
    _compare(f"{scenario}.plan.{EXTENSIONS[fmt]}", produced)


@pytest.mark.parametrize("scenario", ["member-after", "av-service"])
def test_check_text_matches_its_expected_file(scenario_db, scenario):
    db = open_database(scenario_db(scenario), index=False)
    result = readiness.check(db)
    produced = render_text(result, source="SCAN.db").encode("utf-8")
    assert produced.startswith(b"NOT READY")
    _compare(f"{scenario}.check.txt", produced)
