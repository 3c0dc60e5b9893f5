"""`aclscan report`: the auditor's export, safe with hostile names."""

from __future__ import annotations

import csv
import html.parser
import io
import shutil
import sqlite3

from aclscan.cli import main
from aclscan.formats.rows import terminal_safe

HOSTILE_NAME = '=cmd|\' /C calc\'!A0 <script>alert(1)</script> "\x1b[31m'
HOSTILE_ACCOUNT = "@SUM(1)<img src=x onerror=alert(1)>\x07"


def hostile_copy(scenario_db, tmp_path):
    """domain-member's scan with a hostile file name on the file that holds dave's explicit ACE
    and a hostile account name on dave's finding."""
    db = tmp_path / "hostile.db"
    shutil.copy(scenario_db("domain-member"), db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE file_records SET name = ? WHERE name = 'Legacy'", [HOSTILE_NAME])
        conn.execute("UPDATE directories SET path = replace(path, '/Legacy', ?)", ["/" + HOSTILE_NAME])
        conn.execute("UPDATE findings SET account = ? WHERE verdict = 'sid_history'", [HOSTILE_ACCOUNT])
    return db


class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_html_escapes_hostile_names(scenario_db, tmp_path, capsys):
    db = hostile_copy(scenario_db, tmp_path)
    out = tmp_path / "report.html"
    assert main(["report", str(db), "-o", str(out)]) == 0
    page = out.read_text()
    parsed = _Collector()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text  # shown as text
    assert "\x1b" not in page and "\x07" not in page
    assert "\\x1b[31m" in text


def test_csv_neutralises_formulas_and_counts_every_place(scenario_db, tmp_path, capsys):
    db = hostile_copy(scenario_db, tmp_path)
    assert main(["report", str(db), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and all(not r["example_path"].startswith("=") for r in rows)
    hostile = [r for r in rows if terminal_safe(HOSTILE_NAME) in r["example_path"]]  # control characters escaped
    assert hostile and all(r["example_path"].startswith("'/") or r["example_path"].startswith("/") for r in hostile)
    accounts = {r["account"] for r in rows if r["verdict"] == "sid_history"}
    assert accounts == {"'" + terminal_safe(HOSTILE_ACCOUNT)}
    # One row per problem SID and place: the ACEs naming it plus owner/group occurrences.
    conn = sqlite3.connect(db)
    problems = [s for (s,) in conn.execute("SELECT sid FROM findings WHERE verdict IN ('orphan', 'sid_history')")]
    expected = 0
    for sid in problems:
        expected += conn.execute("SELECT count(*) FROM aces WHERE sid = ?", [sid]).fetchone()[0]
        expected += conn.execute('SELECT count(*) FROM descriptors WHERE owner = ?', [sid]).fetchone()[0]
        expected += conn.execute('SELECT count(*) FROM descriptors WHERE "group" = ?', [sid]).fetchone()[0]
    assert len(rows) == expected


def test_report_of_a_missing_database_is_exit_5(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none.db")]) == 5
    assert capsys.readouterr().err.count("\n") == 1
