#!/usr/bin/env python3
"""What scanning the shadow copies costs, and what sharing their descriptors saves.

    python bench/bench_snapshots.py IMAGE [--repeat 3] [--work DIR]

IMAGE: a volume (or disk) with Volume Shadow Copy stores, e.g. the shared
``win7-vsstest.raw`` (gunzip ../shared/data/windows/volumes/win7-vsstest.raw.gz). Scans it
``--repeat`` times live only and as many times with ``--snapshots`` (in this process,
best wall time of each), and prints: both times, the number of states N + 1, the ratio of
the two times beside N + 1 (issue 15: at most N + 1), and the rows of ``descriptors``,
``aces`` and ``sids`` of each scan (what the states share, and what they would have
stored each on their own: the descriptors each state's files and $SDS use).
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed_scan(image: Path, db: Path, *, snapshots: bool, repeat: int) -> float:
    from aclscan.scan import scan_image

    best = float("inf")
    for _ in range(repeat):
        db.unlink(missing_ok=True)
        started = time.perf_counter()
        scan_image(image, db, snapshots=snapshots)
        best = min(best, time.perf_counter() - started)
    return best


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    found = {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
             for table in ("volumes", "descriptors", "aces", "sids", "file_records")}
    # What each state uses (its files' and its $SDS's descriptors, distinct per state):
    # the rows the states would hold stored each on its own.
    found["per_state_uses"] = conn.execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT volume_id, descriptor_key FROM file_records "
        "WHERE descriptor_key IS NOT NULL)").fetchone()[0]
    conn.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_snapshots_"))
    work.mkdir(parents=True, exist_ok=True)
    live_db, all_db = work / "live.db", work / "snapshots.db"
    live = timed_scan(args.image, live_db, snapshots=False, repeat=args.repeat)
    both = timed_scan(args.image, all_db, snapshots=True, repeat=args.repeat)
    live_rows, all_rows = counts(live_db), counts(all_db)
    states = all_rows["volumes"]
    print(f"image: {args.image} ({args.image.stat().st_size / 2**20:,.0f} MiB)")
    print(f"live volume only:          {live:.3f} s  ({live_rows['file_records']:,} files)")
    print(f"with {states - 1} shadow copy store(s): {both:.3f} s  ({all_rows['file_records']:,} files in "
          f"{states} states)")
    print(f"ratio: {both / live:.2f} x the live scan (N + 1 = {states})")
    for table in ("descriptors", "aces", "sids"):
        print(f"{table:12} rows: live only {live_rows[table]:,}, all states {all_rows[table]:,}")
    print(f"descriptors the states use, counted per state: {all_rows['per_state_uses']:,} "
          f"(stored once: {all_rows['descriptors']:,} rows)")


if __name__ == "__main__":
    main()
