#!/usr/bin/env python3
"""Regenerate the example reports in reports/ from the bundled sample volumes.

    python reports/make_reports.py [NAME ...]

For each scenario: the auditor's HTML report and CSV evidence, the plan (text, JSON,
PowerShell; icacls and SetACL files for av-service), the readiness check (JSON) and
the graph (PNG). For ws1, ws2 and member-before: a fleet and the checks against it.
Scan databases go to reports/.work/ (not committed). The repository's own path is
written as "." so the files do not depend on where the project was checked out.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aclscan.cli import main  # noqa: E402
from tests.scenarios import SCENARIOS, scan_args  # noqa: E402

OUT = ROOT / "reports"
WORK = OUT / ".work"
SCRIPT_FORMATS = {"av-service": ("icacls", "setacl")}
EXAMPLE_ACLS = {"member-after": ("/Users/Ken",), "av-service": ("/Program Files/AVScan",), "no-history": ("/Backup",)}
PDF_REPORTS = ("member-after",)  # printed by Chromium, where it is installed


def run(argv: list[str], output: Path | None = None) -> int:
    """Run an aclscan command; text it prints goes to ``output`` with the repo path made relative."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv)
    if output is not None and buffer.getvalue():
        output.write_text(buffer.getvalue().replace(str(ROOT), "."), encoding="utf-8")
    return code


def relative_file(path: Path) -> None:
    """Make the repository path relative inside a text file a command wrote itself."""
    text = path.read_text(encoding="utf-8-sig") if path.suffix in (".html", ".json", ".ps1", ".txt", ".csv") else None
    if text is not None:
        bom = "\ufeff" if path.read_bytes().startswith(b"\xef\xbb\xbf") else ""
        path.write_text(bom + text.replace(str(ROOT), "."), encoding="utf-8", newline="")


def plan_has_descriptor_changes(db: Path) -> bool:
    from aclscan.plan import build_plan
    from aclscan.store import open_database

    return bool(build_plan(open_database(db)).descriptors)


def main_reports(names: list[str]) -> None:
    """Every scenario's reports, or only NAMES' (the others' files are left as they are)."""
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"no sample volume {', '.join(unknown)}; there are {', '.join(SCENARIOS)}")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    for name in names or SCENARIOS:
        target = OUT / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        db = WORK / f"{name}.db"
        assert run(scan_args(name, db)) in (0, 3), f"scan of {name} failed"
        outputs = {
            "report.html": ["report", str(db), "--title", f"aclscan: {name}", "-o", str(target / "report.html")],
            "evidence.csv": ["report", str(db), "--format", "csv", "-o", str(target / "evidence.csv")],
            "plan.txt": ["plan", str(db), "--format", "text", "-o", str(target / "plan.txt")],
            "plan.json": ["plan", str(db), "--format", "json", "-o", str(target / "plan.json")],
            "graph.png": ["graph", str(db), "--format", "png", "-o", str(target / "graph.png")],
        }
        if plan_has_descriptor_changes(db):  # a script for a machine with nothing to change says nothing
            outputs["plan.ps1"] = ["plan", str(db), "--format", "powershell", "-o", str(target / "plan.ps1")]
        for fmt in SCRIPT_FORMATS.get(name, ()):
            outputs[f"plan.{fmt}"] = ["plan", str(db), "--format", fmt, "-o", str(target / f"plan.{fmt}")]
        for filename, argv in outputs.items():
            run(argv)
            if (target / filename).exists():
                relative_file(target / filename)
        run(["check", str(db), "--format", "json"], target / "check.json")
        for path in EXAMPLE_ACLS.get(name, ()):  # the icacls-style view, with names
            run(["acl", str(db), path, "-o", str(target / "acl.txt")])
        if name in PDF_REPORTS and shutil.which("chromium"):  # printed from the page with relative paths
            from aclscan.formats.pdf import html_to_pdf

            html_to_pdf(target / "report.html", target / "report.pdf")
        print(f"{name}: {', '.join(sorted(p.name for p in target.iterdir()))}")
    clones = ["ws1", "ws2", "member-before"]
    if not set(clones) <= set(names or SCENARIOS):
        return
    fleet = WORK / "fleet.db"
    run(["fleet", str(fleet), *(str(WORK / f"{n}.db") for n in clones), "--format", "json"], OUT / "fleet.json")
    for name in clones:
        run(["check", str(WORK / f"{name}.db"), "--fleet", str(fleet), "--format", "json"],
            OUT / name / "check-with-fleet.json")
    print("fleet.json, and check-with-fleet.json for", ", ".join(clones))


if __name__ == "__main__":
    main_reports(sys.argv[1:])
