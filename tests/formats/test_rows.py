"""Rows out: CSV cells and table cells escape control characters and the line and
paragraph separators; formula starts are neutralised."""

from __future__ import annotations

import csv
import io

from aclscan.formats.rows import terminal_safe, write_rows

NASTY = "a\x1b]0;owned\x07b\rc\u2028d\u2029e\x85f"
ESCAPED = "a\\x1b]0;owned\\x07b\\x0dc\\u2028d\\u2029e\\x85f"


def test_terminal_safe():
    assert terminal_safe(NASTY) == ESCAPED
    assert terminal_safe("Zoë \u00e9t\u00e9 日本") == "Zoë \u00e9t\u00e9 日本"


def test_csv_cells_are_escaped_and_formulas_neutralised():
    out = io.StringIO()
    write_rows([{"path": NASTY, "n": 3, "f": "=cmd|' /C calc'!A0", "raw": b"\x1b\x00"}], ["path", "n", "f", "raw"],
               "csv", out)
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text and "\u2028" not in text and "\u2029" not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["path", "n", "f", "raw"], [ESCAPED, "3", "'=cmd|' /C calc'!A0", "1b00"]]


def test_csv_tab_start_escaped_rather_than_kept():
    out = io.StringIO()
    write_rows([{"v": "\t=1"}], ["v"], "csv", out)
    assert list(csv.reader(io.StringIO(out.getvalue())))[1] == ["\\x09=1"]


def test_table_cells_are_escaped():
    out = io.StringIO()
    write_rows([{"path": NASTY}], ["path"], "table", out)
    assert "\x1b" not in out.getvalue() and "\u2028" not in out.getvalue()
    assert ESCAPED in out.getvalue()
