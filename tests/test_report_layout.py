"""The auditor's report in a real browser: headless Chromium (Debian's `chromium`) opens
every sample's report at 1,366 px and prints it on A4; the layout is checked by numbers
(no sideways scrolling, no cell whose text overflows it) and a screenshot is saved."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aclscan.cli import main
from tests.browser import Browser, chromium
from tests.scenarios import manifest, SCENARIOS

SCREENSHOTS = Path(__file__).resolve().parent.parent / "reports" / ".screenshots"

# Every element whose content is wider than its box; the page itself wider than the window.
LAYOUT = """(() => {
  const over = [];
  document.querySelectorAll('td, th, dd, dt, .tile, .chart, h1, h2, h3, p, li').forEach(el => {
    if (el.scrollWidth > el.clientWidth + 1) over.push(el.tagName + ': ' + el.textContent.slice(0, 80));
  });
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, over: over,
          cards: document.querySelectorAll('article.card').length,
          scripts: Array.from(document.scripts).filter(s => s.src).length};
})()"""


def pdf_pages(data: bytes, tmp_path: Path) -> int:
    """Pages of a PDF, as poppler's pdfinfo counts them."""
    target = tmp_path / "page-count.pdf"
    target.write_bytes(data)
    info = subprocess.run(["pdfinfo", str(target)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


@pytest.fixture(scope="module")
def browser():
    if not chromium():
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    with Browser() as running:
        yield running


@pytest.mark.parametrize("name", SCENARIOS)
def test_report_fits_the_screen_and_prints(name, scenario_db, browser, tmp_path):
    assert shutil.which("pdfinfo"), "pdfinfo (poppler-utils) is needed to count pages"
    page_file = tmp_path / f"{name}.html"
    assert main(["report", str(scenario_db(name)), "-o", str(page_file), "--title", f"aclscan: {name}"]) == 0
    page = browser.open(page_file, width=1366)
    layout = page.evaluate(LAYOUT)
    assert layout["scrollWidth"] <= layout["innerWidth"] == 1366
    assert layout["over"] == []
    assert layout["scripts"] == 0  # nothing loaded from anywhere
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(SCREENSHOTS / f"{name}.png")
    assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000
    pages = pdf_pages(page.pdf(), tmp_path)
    assert 1 <= pages <= 10, f"{name} prints on {pages} A4 pages"


def test_member_after_first_page_and_cards(scenario_db, browser, tmp_path):
    page_file = tmp_path / "member-after.html"
    assert main(["report", str(scenario_db("member-after")), "-o", str(page_file)]) == 0
    page = browser.open(page_file, width=1366)
    first = page.evaluate("document.querySelector('.first-page').innerText")
    assert "NOT READY" in first and "no_stale_prefix" in first
    for name in ("MEMBER\\Ken", "MEMBER\\Arianne", "MEMBER\\Ron", "MEMBER\\Administrator"):
        assert name in first
    assert page.evaluate("document.querySelectorAll('.first-page svg rect').length") >= 4  # the two charts
    assert page.evaluate("document.querySelectorAll('article.card').length") == 5
    ken = page.evaluate("Array.from(document.querySelectorAll('article.card')).find("
                        "c => c.querySelector('h3').textContent === 'MEMBER\\\\Ken').innerText")
    ken_files = next(e["files"] for e in manifest("member-after")["expected"].values()
                     if e.get("account") == "Ken" and e["verdict"] == "rid_collision")
    assert "MEMBER\\Jon" in ken and "Refused" in ken and f"{ken_files:,}" in ken
    # sorting and filtering work in the page
    page.evaluate("document.querySelector('#findings thead th:nth-child(5)').click()")
    files = page.evaluate("Array.from(document.querySelectorAll('#findings tbody tr td:nth-child(5)'))"
                          ".map(td => Number(td.textContent.replace(/,/g, '')))")
    assert files and files == sorted(files)
    page.evaluate("const i = document.querySelector('input[data-filter=evidence]'); i.value = 'arianne';"
                  "i.dispatchEvent(new Event('input'))")
    rows = page.evaluate("Array.from(document.querySelectorAll('#evidence tbody tr'))"
                         ".map(r => [r.style.display !== 'none', r.textContent.toLowerCase()])")
    assert rows and any(not shown for shown, _ in rows)
    assert all(shown == ("arianne" in row) for shown, row in rows)
    assert any(shown and "member\\arianne" in row for shown, row in rows)


def test_pdf_format(scenario_db, browser, tmp_path):
    out = tmp_path / "report.pdf"
    assert main(["report", str(scenario_db("member-after")), "--format", "pdf", "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert 1 <= pdf_pages(data, tmp_path) <= 10
