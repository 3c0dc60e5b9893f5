#!/usr/bin/env python3
"""Where the scan's row writer spends its time, step by step, on a real volume.

    python bench/bench_row_writer.py /tmp/1m.img [--repeat 3] [--work DIR]

The scan streams one row per file to a forked writer process (``store.RowWriter``),
which turns each batch's columns into one flat list of values
(``FileRows.flat_values()``) and stores them with ``store.insert_flat``, 50 rows per
INSERT. This script runs the scan once with a stand-in writer that keeps the batches
the MFT pass hands over (so the pass's own time is measured without a writer beside
it), then times, in this process, each way of storing those rows:

- ``flat_values()``: building the values (names decoded, NULLs as None);
- ``the writer: flat values, 50 rows per INSERT``: ``insert_flat`` of those values into
  a fresh scan database with the writer's pragmas;
- ``tuples, one row per INSERT``: what the writer did before (a tuple per row and one
  statement step per row), with NULLs as None;
- ``... with NULLIF(?, -1)``: the same with the sentinels turned into NULL by SQL;
- ``SQLite alone``: ``INSERT ... SELECT`` from one ``carray`` of each batch's entries
  (every integer column from it, a fixed name): SQLite's own cost per row with no
  binding from Python, the floor of any insert of these rows;
- ``carray zip of 2 columns``: two carrays joined on rowid, the only way SQL offers
  to put columns of carrays side by side: quadratic, so timed on 2,000 and 8,000 rows.

Best of ``--repeat`` for each; every method is checked to store the same rows.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import apsw  # noqa: E402
import numpy as np  # noqa: E402

from aclscan import store  # noqa: E402
from aclscan.scan import FILE_RECORD_COLUMNS  # noqa: E402

WRITER_PRAGMAS = ("journal_mode = OFF", "synchronous = OFF", "cache_size = -131072")  # as store._row_writer_main
class KeepingWriter:
    """Stands in for store.RowWriter: keeps every batch, writes nothing."""

    kept: list = []

    def __init__(self, *_args, **_kwargs):
        pass

    def put(self, batch) -> None:
        KeepingWriter.kept.append(batch)

    def close(self) -> None:
        pass


def pass_batches(image: str, work: Path) -> tuple[list, float]:
    """The batches of one scan of IMAGE (no resolution), and that scan's wall time."""
    from aclscan.scan import scan_image

    real = store.RowWriter
    store.RowWriter = KeepingWriter
    try:
        started = time.perf_counter()
        scan_image(image, work / "pass.db", resolve=None)
        return KeepingWriter.kept, time.perf_counter() - started
    finally:
        store.RowWriter = real


def fresh_connection(path: Path) -> apsw.Connection:
    db = store.new_database(path)
    db.conn.close()
    connection = apsw.Connection(str(path))
    for pragma in WRITER_PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")
    return connection


def timed_insert(path: Path, load) -> tuple[float, str]:
    """Seconds to load rows in one transaction (as the writer does), and a digest of the rows."""
    connection = fresh_connection(path)
    started = time.perf_counter()
    connection.execute("BEGIN")
    load(connection)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    digest = hashlib.sha256()
    for row in connection.execute("SELECT * FROM file_records ORDER BY rowid"):
        digest.update(repr(row).encode())
    connection.close()
    return seconds, digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.work, prefix="bench_row_writer_"))

    batches, pass_seconds = pass_batches(args.image, work)
    count = sum(len(b) for b in batches)
    print(f"{count:,} file rows in {len(batches)} batches; scan with a writer that only keeps them: "
          f"{pass_seconds:.3f} s")

    columns = FILE_RECORD_COLUMNS
    width = len(columns)
    flat: list[list] = []
    path = work / "rows.db"
    one_row = store.insert_sql("file_records", columns)
    marks = ", ".join("NULLIF(?, -1)" if c in ("parent_entry", "descriptor_key") else
                      "NULLIF(?, 0)" if c == "security_id" else "?" for c in columns)
    one_row_nullif = one_row[: one_row.index("VALUES")] + f"VALUES ({marks})"
    floor_sql = ("INSERT INTO file_records SELECT ?, value, value, value, value, 'name-of-a-file.txt', 0, 1, "
                 "value, value FROM carray(?)")

    def tuples(values: list) -> list[tuple]:
        return [tuple(values[i : i + width]) for i in range(0, len(values), width)]

    def sentinels(values: list) -> list[tuple]:
        """The rows as the old writer bound them: -1 and 0 for NULL, NULLIF in SQL."""
        rows = []
        for row in tuples(values):
            row = list(row)
            for column, none in (("parent_entry", -1), ("security_id", 0), ("descriptor_key", -1)):
                at = columns.index(column)
                if row[at] is None:
                    row[at] = none
            rows.append(tuple(row))
        return rows

    results: dict[str, list[float]] = {}
    digests: dict[str, str] = {}
    for _ in range(args.repeat):
        started = time.perf_counter()
        flat[:] = [b.flat_values() for b in batches]
        results.setdefault("flat_values() (values built)", []).append(time.perf_counter() - started)
        as_tuples = [tuples(values) for values in flat]
        as_sentinels = [sentinels(values) for values in flat]
        for label, load in (
            ("the writer: flat values, 50 rows per INSERT",
             lambda c: [store.insert_flat(c, "file_records", columns, values) for values in flat]),
            ("tuples, one row per INSERT", lambda c: [c.executemany(one_row, rows) for rows in as_tuples]),
            ("tuples, one row per INSERT, with NULLIF(?, -1)",
             lambda c: [c.executemany(one_row_nullif, rows) for rows in as_sentinels]),
            ("SQLite alone (carray, no binding)",
             lambda c: [c.execute(floor_sql, (b.volume_id, apsw.carray(b.entry.astype(np.int64)))) for b in batches]),
        ):
            seconds, digest = timed_insert(path, load)
            results.setdefault(label, []).append(seconds)
            digests[label] = digest
    for label, runs in results.items():
        print(f"{label:48s} {min(runs):7.3f} s  ({min(runs) / count * 1e6:.2f} us per row)")
    stored = {digest for label, digest in digests.items() if not label.startswith("SQLite alone")}
    print(f"the three ways store the same rows: {len(stored) == 1}")

    connection = apsw.Connection(":memory:")
    for n in (2_000, 8_000):
        column = np.arange(n, dtype=np.int64)
        started = time.perf_counter()
        connection.execute("SELECT count(*) FROM carray(?1) a JOIN carray(?2) b ON b.rowid = a.rowid",
                           (apsw.carray(column), apsw.carray(column))).fetchall()
        print(f"carray zip of 2 columns, {n:,} rows: {time.perf_counter() - started:.3f} s")
    for leftover in work.iterdir():
        leftover.unlink()
    os.rmdir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
