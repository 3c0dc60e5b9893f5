"""store.RowWriter: the child process that stores a scan's file rows. It must store
every row, report its failures, and never outlive a scan that was killed (a child left
behind keeps the scanned image open, and fix and undo then refuse the image)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aclscan.store import ROWS_PER_STATEMENT, DatabaseError, RowWriter, insert_flat


class Batch:
    def __init__(self, first: int, count: int):
        self.first, self.count = first, count

    def flat_values(self):
        return [value for n in range(self.first, self.first + self.count) for value in (n, f"name-{n}")]


def make_table(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, name TEXT)")


def test_every_batch_is_stored(tmp_path):
    db = tmp_path / "rows.db"
    make_table(db)
    writer = RowWriter(db, "t", ["n", "name"])
    for first in range(0, 50_000, 4_999):  # batches that are not whole statements
        writer.put(Batch(first, min(4_999, 50_000 - first)))
    writer.close()
    rows = sqlite3.connect(db).execute("SELECT count(*), min(n), max(n), max(name) FROM t").fetchone()
    assert rows == (50_000, 0, 49_999, "name-9999")
    stored = sqlite3.connect(db).execute("SELECT n, name FROM t ORDER BY rowid").fetchall()
    assert stored == [(n, f"name-{n}") for n in range(50_000)]  # in order, each value in its column


def test_a_failure_in_the_child_is_raised_by_close(tmp_path):
    db = tmp_path / "rows.db"
    make_table(db)
    writer = RowWriter(db, "t", ["n", "name"])
    writer.put(Batch(0, 10))
    writer.put(Batch(5, 10))  # n is the primary key: 5..9 again
    with pytest.raises(DatabaseError, match="UNIQUE"):
        writer.close()


def test_the_child_leaves_when_the_scan_is_killed(tmp_path):
    db = tmp_path / "rows.db"
    make_table(db)
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from aclscan.store import RowWriter
        writer = RowWriter({str(db)!r}, "t", ["n", "name"])
        print(writer._process.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert Path(f"/proc/{child}").exists()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    # The orphan is re-parented to init, which reaps it; wait for it to go.
    for _ in range(200):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "the row writer outlived the killed scan"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("count", [0, 1, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, 3 * ROWS_PER_STATEMENT + 7])
def test_insert_flat_stores_every_row_whole_statements_or_not(tmp_path, count):
    db = tmp_path / "rows.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT, c INTEGER)")
    rows = [(n, None if n % 3 == 0 else f"v{n}", None if n % 5 == 0 else -n) for n in range(count)]
    insert_flat(conn, "t", ("a", "b", "c"), [value for row in rows for value in row])
    assert conn.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == rows
    assert conn.execute("SELECT count(*) FROM t WHERE b IS NULL").fetchone()[0] == sum(r[1] is None for r in rows)


def test_insert_flat_refuses_values_that_do_not_make_whole_rows(tmp_path):
    conn = sqlite3.connect(tmp_path / "rows.db")
    conn.execute("CREATE TABLE t (a, b)")
    with pytest.raises(ValueError, match="3 values"):
        insert_flat(conn, "t", ("a", "b"), [1, 2, 3])
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_bulk_insert_refuses_a_row_of_the_wrong_width(tmp_path):
    from aclscan import store

    db = store.new_database(tmp_path / "scan.db")
    with pytest.raises(ValueError, match="a row of 3 values for the 4 columns of directories"):
        store.bulk_insert(db, "directories", ("volume_id", "entry", "sequence", "path"), [(1, 5, 5, "/"), (1, 6, 6)])
    store.bulk_insert(db, "directories", ("volume_id", "entry", "sequence", "path"), [(1, 5, 5, "/"), (1, 6, 6, "/x")])
    assert db.execute("SELECT entry, path FROM directories ORDER BY entry").fetchall() == [(5, "/"), (6, "/x")]
