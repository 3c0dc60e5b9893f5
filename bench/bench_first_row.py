#!/usr/bin/env python3
"""How soon `aclscan files` shows its first row, and what the whole listing costs.

    python bench/bench_first_row.py SCAN.db [--runs 3]
    python bench/bench_first_row.py --files 100000      # makes /tmp/bench-first-row-100k.img and scans it

Runs `aclscan files SCAN.db` (table, piped) as a user would, in a fresh process each
time, and prints the time from start to the first row on its stdout (interpreter
start-up and imports included), then to the last row, and the peak RSS of the
listing. The first run also builds the file indexes a fresh scan leaves to its first
reader; the others find them built.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def listing(db: Path) -> tuple[float, float, int]:
    """Seconds to the first data row and to the end, and the rows listed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "aclscan", "files", str(db)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    process.stdout.readline()  # the header
    process.stdout.readline()
    first = time.perf_counter() - start
    rows = 1 + sum(1 for _ in process.stdout)
    process.wait()
    return first, time.perf_counter() - start, rows


def make_scan(files: int) -> Path:
    image = Path(tempfile.gettempdir()) / f"bench-first-row-{files // 1000}k.img"
    db = image.with_suffix(".db")
    if not image.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_volume.py"), str(files), str(image)], check=True)
    db.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "aclscan", "scan", str(image), "--db", str(db), "--quiet"], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", nargs="?", type=Path)
    parser.add_argument("--files", type=int, help="make and scan a volume of this many files instead")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.db and not args.files:
        parser.error("give SCAN.db or --files N")
    db = args.db or make_scan(args.files)
    work = Path(tempfile.mkdtemp()) / "fresh.db"
    shutil.copy(db, work)  # a copy, so the first run meets the indexes unbuilt if the scan left them so
    for run in range(args.runs):
        first, total, rows = listing(work)
        print(f"run {run + 1}: first row {first:.3f} s, all {rows:,} rows {total:.2f} s"
              + (" (first reader: builds the file indexes)" if run == 0 else ""))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a listing: {peak:.0f} MiB")
    shutil.rmtree(work.parent)


if __name__ == "__main__":
    main()
