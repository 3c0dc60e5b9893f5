"""The auditor's report as PDF: the HTML page printed on A4 by headless Chromium
(Debian's ``chromium``), with the page's own print stylesheet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aclscan.errors import Error, ToolMissing

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str:
    """The Chromium executable (ACLSCAN_CHROMIUM overrides); ToolMissing (exit 6) if none."""
    for candidate in (os.environ.get("ACLSCAN_CHROMIUM"),) + BROWSERS:
        if candidate and (found := shutil.which(candidate)):
            return found
    raise ToolMissing("--format pdf needs Chromium (Debian: apt-get install chromium)")


def html_to_pdf(html_file: Path, pdf_file: Path, *, browser: str | None = None, timeout: float = 120) -> None:
    """Print ``html_file`` to ``pdf_file`` (A4, the page's @page rules, no header or footer)."""
    browser = browser or find_browser()
    with tempfile.TemporaryDirectory(prefix="aclscan-chromium-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-extensions", f"--user-data-dir={profile}", "--no-pdf-header-footer",
                   f"--print-to-pdf={pdf_file}", html_file.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Error(f"Chromium did not print the report within {timeout:.0f} s") from None
    if done.returncode != 0 or not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        message = " ".join(done.stderr.decode(errors="replace").split())[-300:]
        raise Error(f"Chromium could not print the report (exit {done.returncode}): {message}")


def write_pdf_report(db, output: str | None, *, title: str, journal: str | None, remediation: list | None = None,
                     earlier: str | None = None) -> None:
    """The report as PDF into ``output`` (or stdout, which must not be a terminal)."""
    from aclscan.formats.html import write_html_report

    browser = find_browser()  # before any work
    with tempfile.TemporaryDirectory(prefix="aclscan-report-") as work:
        page = Path(work) / "report.html"
        with open(page, "w", encoding="utf-8") as out:
            write_html_report(db, out, title=title, journal=journal, remediation=remediation, earlier=earlier)
        pdf = Path(work) / "report.pdf"
        html_to_pdf(page, pdf, browser=browser)
        if output:
            try:
                shutil.copyfile(pdf, output)
            except OSError as exc:
                raise Error(f"cannot write {output}: {exc.strerror or exc}") from None
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(pdf.read_bytes())
            sys.stdout.buffer.flush()
