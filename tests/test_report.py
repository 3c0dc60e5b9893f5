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
    # the page's own sorting script is the one script; no name became markup
    assert parsed.tags.count("script") == 1 and "img" not in parsed.tags
    assert '<script>' + "alert" not in page
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


def _page_text(path) -> str:
    parsed = _Collector()
    parsed.feed(path.read_text())
    return " ".join("".join(parsed.text).split())


def test_report_shows_how_far_a_fix_got(scenario_db, tmp_path):
    """A fix journal (written through aclscan.fix.journal, as `fix --apply` writes it) for the
    descriptors of one action: the card of that SID says fixed, then undone."""
    from aclscan.fix.journal import Journal
    from aclscan.plan import build_plan
    from aclscan.store import open_database

    db_path = scenario_db("member-after")
    plan = build_plan(open_database(db_path))
    admin = next(a for a in plan.actions if a.sid.endswith("-500"))
    changes = [c for c in plan.descriptors if admin.id in c.actions]
    assert changes
    journal = Journal.create(tmp_path / "fix.journal", {"target": "member-after.img", "offset": 0,
                                                        "serial": "6541EA741F109A0A"})
    seqs = journal.record([(1, 1000 + i, 1, f"/file{i}", b"old", b"new", c.descriptor_key)
                           for i, c in enumerate(changes)])
    journal.mark("written", seqs)
    journal.set_meta(state="applied", finished="2026-12-01T12:00:00+00:00")
    journal.close()
    out = tmp_path / "report.html"
    assert main(["report", str(db_path), "--journal", str(tmp_path / "fix.journal"), "-o", str(out)]) == 0
    page = _page_text(out)
    assert f"Fixed offline: {len(changes)} file(s) rewritten (2026-12-01T12:00:00+00:00)" in page
    assert "Not fixed: the plan refuses" in page  # Ken, Arianne, Ron
    journal = Journal.open(tmp_path / "fix.journal")
    journal.mark("restored", seqs)
    journal.set_meta(state="undone", undone="2026-12-01T12:05:00+00:00")
    journal.close()
    assert main(["report", str(db_path), "--journal", str(tmp_path / "fix.journal"), "-o", str(out)]) == 0
    assert f"Fixed on {len(changes)} file(s), then undone (2026-12-01T12:05:00+00:00)" in _page_text(out)


def test_html_and_pdf_never_go_to_a_terminal(scenario_db, monkeypatch, capsys):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    for fmt in ("html", "pdf"):
        assert main(["report", str(scenario_db("clean")), "--format", fmt]) == 2
        assert "not for a terminal" in capsys.readouterr().err


def test_places_are_used_when_the_scan_has_them(scenario_db, tmp_path):
    """A scan with the places table (schema 3) counts registry keys and other places per
    SID from findings.places, and the hive references beside them; a database without it
    (made before schema 3, its table gone), files and the hive references only."""
    import json
    import sqlite3

    from aclscan.audit import build_report, has_places
    from aclscan.store import open_database

    sid = "S-1-5-21-191058668-193157475-1542849698-1003"
    expected = json.loads(sqlite3.connect(scenario_db("av-service")).execute(
        "SELECT places FROM findings WHERE sid = ?", [sid]).fetchone()[0])
    assert expected.get("registry_key") and expected.get("task")  # what the builder put there
    db = open_database(scenario_db("av-service"))
    assert has_places(db)
    card = next(c for c in build_report(db).cards if c.sid == sid)
    # The sample's whitepaper: AVService holds the right to log on as a service and is a
    # member of the group AV Admins, both still under the old SID.
    assert card.places == {"file": 36, **expected, "lsa_right": 1, "alias_member": 1}
    db_path = tmp_path / "older.db"
    shutil.copy(scenario_db("av-service"), db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TABLE places")
    conn.commit()
    conn.close()
    older = open_database(db_path, migrate=False, index=False)
    assert not has_places(older)
    card = next(c for c in build_report(older).cards if c.sid == sid)
    assert card.places == {"file": 36, "lsa_right": 1, "alias_member": 1}
