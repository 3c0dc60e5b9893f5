#!/usr/bin/env python3
"""Time `aclscan diff` on a before/after pair grown to N files.

    python bench/bench_diff.py BEFORE.db AFTER.db [--files 1000000] [--work DIR]

BEFORE and AFTER are a real pair, e.g. member-after scanned and the re-scan `fix --apply`
wrote (``JOURNAL.after.db``). Copies of both are grown to about N files by repeating every
file record under new MFT entries (entry + k * stride, same descriptor key), the same way
in both, so the grown pair differs exactly where the real one did, K times over. Then it
times, in this process: opening and joining (``file_groups``: the files counted per
descriptor pair), ``summary()`` (per SID, no per-file work), and streaming every row of
``iter_changes()``; and prints the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def grow(source: Path, target: Path, files: int) -> int:
    shutil.copyfile(source, target)
    conn = sqlite3.connect(target)
    count, stride = conn.execute("SELECT COUNT(*), MAX(entry) + 1 FROM file_records").fetchone()
    copies = max(0, files // count - 1)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'file_records' "
                                "AND sql IS NOT NULL").fetchall():
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute(
        "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?) "
        "INSERT INTO file_records SELECT r.volume_id, r.entry + k.n * ?, r.sequence, r.parent_entry, "
        "r.parent_sequence, r.name, r.is_dir, r.links, r.security_id, r.descriptor_key "
        "FROM file_records r, k WHERE r.entry < ?", [copies, stride, stride])
    conn.commit()
    total = conn.execute("SELECT COUNT(*) FROM file_records").fetchone()[0]
    conn.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_diff_"))
    work.mkdir(parents=True, exist_ok=True)
    before, after = work / "before.db", work / "after.db"
    started = time.perf_counter()
    files = grow(args.before, before, args.files)
    grow(args.after, after, args.files)
    from aclscan.store import open_database

    for path in (before, after):  # the file indexes every reader builds once
        open_database(path).conn.close()
    print(f"grew the pair to {files:,} files each in {time.perf_counter() - started:.1f} s (indexes included)")

    from aclscan.diff import ScanDiff

    # CPU time beside wall time: on a machine other work shares, it says more.
    started, cpu = time.perf_counter(), time.process_time()
    with ScanDiff(before, after) as scans:
        groups = scans.file_groups()
        changed = sum(n for a, b, n in groups if scans.descriptor_diff(a, b).changes)
        print(f"join and count per descriptor pair: {time.perf_counter() - started:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} s CPU ({len(groups)} pairs, {changed:,} files changed)")
        started, cpu = time.perf_counter(), time.process_time()
        summary = scans.summary()
        print(f"summary: {time.perf_counter() - started:.2f} s wall, {time.process_time() - cpu:.2f} s CPU "
              f"({len(summary)} SIDs)")
        started, cpu = time.perf_counter(), time.process_time()
        rows = sum(1 for _ in scans.iter_changes())
        elapsed = time.perf_counter() - started
        print(f"every change streamed: {elapsed:.2f} s wall, {time.process_time() - cpu:.2f} s CPU "
              f"({rows:,} rows, {rows / elapsed:,.0f} rows/s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
