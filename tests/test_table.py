"""Terminal output: streamed, fitted to the terminal, unpadded when piped."""

from __future__ import annotations

import io
import itertools

import pytest
from rich.cells import cell_len

from aclscan import queries
from aclscan.findings import FINDING_COLUMNS, iter_findings
from aclscan.formats.rows import RowFormat, write_rows
from aclscan.formats.table import SAMPLE_ROWS, wrap, write_table
from aclscan.store import open_database


class FirstWrite(io.StringIO):
    """Records how many rows the generator had yielded when the first byte was written."""

    def __init__(self, counter):
        super().__init__()
        self.counter = counter
        self.yielded_at_first_write = None

    def write(self, text):
        if self.yielded_at_first_write is None:
            self.yielded_at_first_write = self.counter[0]
        return super().write(text)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def counted_rows(n: int, counter: list[int]):
    for i in range(n):
        counter[0] += 1
        yield {"path": f"/Windows/System32/file{i}.dll", "sddl": "O:SYG:SYD:(A;;FA;;;SY)" * 5, "n": i}


@pytest.mark.parametrize("fmt", list(RowFormat))
def test_every_format_writes_before_the_rows_run_out(fmt):
    counter = [0]
    out = FirstWrite(counter)
    write_rows(counted_rows(10_000, counter), ("path", "sddl", "n"), fmt, out)
    assert counter[0] == 10_000
    assert out.yielded_at_first_write is not None and out.yielded_at_first_write <= SAMPLE_ROWS + 1


def test_files_query_streams(scenario_db):
    """The first file comes after a small part of the work of listing them all: the query
    walks folders in index order instead of sorting every file first."""
    db = open_database(scenario_db("member-after"))
    steps = [0]

    def step():
        steps[0] += 1
        return 0

    db.conn.set_progress_handler(step, 100)
    rows = queries.iter_files(db)
    first = next(rows)
    before_first = steps[0]
    rest = sum(1 for _ in rows)
    db.conn.set_progress_handler(None, 0)
    assert first["path"] == "/" and rest > 5000
    assert before_first * 20 < steps[0], (before_first, steps[0])


def test_files_come_folder_by_folder(scenario_db):
    db = open_database(scenario_db("av-service"))
    rows = list(queries.iter_files(db))
    assert rows
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set((r["volume_id"], r["entry"]) for r in rows))
    expected = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    assert len(paths) == expected
    folders = [p.rsplit("/", 1)[0] or "/" for p in paths[1:] if not p.startswith("/$OrphanFiles/")]
    assert folders == sorted(folders)  # each folder's entries together, folders in path order


def test_piped_table_is_not_padded(scenario_db):
    db = open_database(scenario_db("member-after"))
    out = io.StringIO()
    write_rows(queries.iter_files(db, limit=200), queries.FILE_COLUMNS, "table", out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 201
    assert all(not line.endswith(" ") for line in lines)
    widest_sddl = max(len(r["sddl"] or "") for r in queries.iter_files(db, limit=200))
    assert max(len(line) for line in lines) < 60 * 8 + widest_sddl  # no column padded beyond 60


@pytest.mark.parametrize("width", [80, 120, 200])
def test_terminal_tables_fit(scenario_db, width, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    db = open_database(scenario_db("member-after"))
    for rows, columns in ((queries.iter_files(db, limit=100), queries.FILE_COLUMNS),
                          (({**f, "evidence": " | ".join(f["evidence"])} for f in iter_findings(db)), FINDING_COLUMNS)):
        out = Terminal()
        write_rows(rows, columns, "table", out)
        lines = out.getvalue().splitlines()
        assert lines
        assert max(cell_len(line) for line in lines) <= width


def test_findings_on_120_columns_keep_a_sid_on_one_line(scenario_db, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    db = open_database(scenario_db("member-after"))
    out = Terminal()
    write_rows(({**f, "evidence": " | ".join(f["evidence"])} for f in iter_findings(db)), FINDING_COLUMNS, "table", out)
    text = out.getvalue()
    sids = [f["sid"] for f in iter_findings(db)]
    assert sids and all(sid in text for sid in sids)


def test_wrap_breaks_after_separators_and_keeps_every_character():
    text = "O:SYG:SYD:PAI(A;OICIIO;SDGXGWGR;;;AU)(A;;0x1301bf;;;AU)(A;OICIIO;GA;;;SY)"
    parts = wrap(text, 20)
    assert "".join(parts) == text and all(cell_len(p) <= 20 for p in parts)
    assert wrap("\u5b57" * 15, 10) == ["\u5b57" * 5] * 3  # wide characters take two cells


def test_vertical_records_when_columns_cannot_fit():
    out = io.StringIO()
    columns = tuple(f"column_{i}" for i in range(12))
    write_table(itertools.repeat({c: "x" * 30 for c in columns}, 2), columns, out, str, width=60)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("-[ 1 ]") and lines[1].startswith("column_0  ")
    assert max(cell_len(line) for line in lines) <= 60


@pytest.mark.parametrize("prefix", ["/users", "USERS\\KEN", "Data/Finance", "/data/finance/finance 0001.xlsx", "/Nope"])
def test_streamed_path_listing_matches_the_files_view(scenario_db, prefix):
    """The folder-driven listing under a path gives exactly the files view's paths at or under
    it, compared without case (NTFS on Windows)."""
    db = open_database(scenario_db("member-after"))
    norm = queries.ntfs_upper(queries.normalise_path_prefix(prefix))
    every = [row[0] for row in db.execute("SELECT path FROM files")]
    assert len(every) > 5000
    expected = sorted(p for p in every if queries.ntfs_upper(p) == norm or queries.ntfs_upper(p).startswith(norm + "/"))
    assert sorted(r["path"] for r in queries.iter_files(db, path_prefix=prefix)) == expected
