"""`aclscan report AFTER.db --before BEFORE.db`: the Remediation section (issue 15 item 4),
on member-after scanned, planned, fixed with `fix --apply` through ntfs-3g and scanned
again by the fix. The expected numbers come from the fix journal (each file's original
and replacement descriptor bytes, searched for the SID's binary form, MS-DTYP 2.4.2.2)
and from the earlier scan's own tables, not from the diff code."""

from __future__ import annotations

import json
import sqlite3
import struct

import pytest

from aclscan.cli import main
from tests.test_diff import FixedPair


@pytest.fixture(scope="module")
def fixed(ntfs3g, tmp_path_factory):
    return FixedPair(tmp_path_factory.mktemp("report_remediation"), "member-after", [])


def sid_bytes(text: str) -> bytes:
    """A SID's binary form, written from the specification (revision, count, authority, RIDs)."""
    parts = text.split("-")
    subs = [int(p) for p in parts[3:]]
    return bytes([int(parts[1]), len(subs)]) + int(parts[2]).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def naming_places(db: sqlite3.Connection, sid: str) -> int:
    """Places (registry keys, services, tasks ...) and hive references naming ``sid`` in a scan."""
    places = db.execute(
        "SELECT COUNT(*) FROM places p WHERE p.sid = ?1 OR p.descriptor_key IN (SELECT key FROM descriptors "
        "WHERE owner = ?1 OR \"group\" = ?1 UNION SELECT descriptor_key FROM aces WHERE sid = ?1)", [sid]).fetchone()[0]
    return places + db.execute("SELECT COUNT(*) FROM hive_references WHERE sid = ?", [sid]).fetchone()[0]


def report_rows(fixed, capsys) -> dict[str, dict]:
    code = main(["report", str(fixed.after), "--before", str(fixed.before), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)
    assert rows
    return {row["sid"]: row for row in rows}


def test_remediation_numbers_equal_the_journal_and_the_earlier_scan(fixed, capsys):
    rows = report_rows(fixed, capsys)
    journal = sqlite3.connect(str(fixed.after)[: -len(".after.db")])
    entries = journal.execute("SELECT o.raw, r.raw, e.written FROM entries e JOIN descriptors o ON o.id = e.original"
                              " JOIN descriptors r ON r.id = e.replacement").fetchall()
    assert entries and all(written for _o, _r, written in entries)
    before = sqlite3.connect(fixed.before)
    problems = dict(before.execute("SELECT sid, files FROM findings WHERE verdict IN "
                                   "('orphan', 'stale_prefix', 'rid_collision', 'sid_history', 'foreign_machine', "
                                   "'unknown_authority', 'unresolved')"))
    assert set(rows) == set(problems)
    replaced = {a["sid"] for a in fixed.plan["actions"] if a["kind"] == "replace_sid"}
    refused = {a["sid"] for a in fixed.plan["actions"] if a["kind"] == "refuse"}
    assert replaced and refused
    for sid in replaced:
        binary = sid_bytes(sid)
        rewritten = sum(1 for original, replacement, _w in entries if binary in original and binary not in replacement)
        assert rewritten > 0
        assert rows[sid]["files_fixed"] == rewritten == problems[sid]
        assert (rows[sid]["files_remaining"], rows[sid]["files_new"]) == (0, 0), sid
        # The default plan rewrites no registry place (its descriptors have places == 0).
        assert (rows[sid]["places_fixed"], rows[sid]["places_new"]) == (0, 0)
        assert rows[sid]["places_remaining"] == naming_places(before, sid)
        assert rows[sid]["status"] == ("fixed" if not naming_places(before, sid) else "partly_fixed")
    for sid in refused:  # the plan refuses the RID collisions: everything of them remains
        assert rows[sid]["files_fixed"] == 0 and rows[sid]["files_new"] == 0
        assert rows[sid]["files_remaining"] == problems[sid] > 0
        assert rows[sid]["places_remaining"] == naming_places(before, sid) > 0
        assert rows[sid]["status"] == "not_fixed"
    # No rewritten file lost or gained a refused SID.
    for sid in refused:
        binary = sid_bytes(sid)
        assert all((binary in original) == (binary in replacement) for original, replacement, _w in entries)


def test_the_html_report_has_the_remediation_section(fixed, tmp_path, capsys):
    page = tmp_path / "report.html"
    assert main(["report", str(fixed.after), "--before", str(fixed.before), "-o", str(page)]) == 0
    html = page.read_text()
    section = html.split("<h2>Remediation</h2>", 1)[1].split("</section>", 1)[0]
    rows = report_rows(fixed, capsys)
    assert rows
    for sid, row in rows.items():
        line = section.split(sid, 1)[1].split("</tr>", 1)[0]  # the SID's row
        assert f'data-v="{row["status"]}"' in line
        for column in ("files_fixed", "files_remaining", "files_new", "places_fixed", "places_remaining",
                       "places_new"):
            assert f'data-v="{row[column]}"' in line
    # Without --before there is no such section.
    assert main(["report", str(fixed.after), "-o", str(page)]) == 0
    assert "<h2>Remediation</h2>" not in page.read_text()


def test_an_earlier_scan_that_is_not_a_database_is_one_line_exit_5(fixed, tmp_path, capsys):
    bogus = tmp_path / "not.db"
    bogus.write_text("hello")
    code = main(["report", str(fixed.after), "--before", str(bogus), "--format", "json"])
    err = capsys.readouterr().err
    assert code == 5
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: ")
