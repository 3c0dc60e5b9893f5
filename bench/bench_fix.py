#!/usr/bin/env python3
"""Time planning, the offline fix and undo on a volume made by make_volume.py.

    python bench/bench_fix.py /tmp/100k.img [--work DIR] [--domain-too]

make_volume.py's volumes name a previous machine SID (OLD_MACHINE) next to today's
(MACHINE) but carry no hives, so the scan has no verdicts. This benchmark copies the
image, scans it, and records the verdict a scan with the master's SAM would give:
OLD_MACHINE's RIDs stale_prefix, mapped RID to RID to MACHINE (the bench's accounts
share names by construction). Then it times `plan`, `fix --apply` (every file that
names an old SID is rewritten, journaled first), the re-scan inside it, and `undo`,
and checks that undo gave back every descriptor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.make_volume import DOMAIN, MACHINE, OLD_MACHINE  # noqa: E402


def run(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aclscan", *argv], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"aclscan {argv[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return time.perf_counter() - started


def descriptors(db: Path) -> dict[int, bytes]:
    conn = sqlite3.connect(db)
    return dict(conn.execute("SELECT f.entry, d.raw FROM file_records f JOIN descriptors d ON d.key = f.descriptor_key"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image")
    parser.add_argument("--work", help="directory for the copy, databases and journal (default: a temporary one)")
    parser.add_argument("--domain-too", action="store_true",
                        help="also treat the volume's domain SIDs as stale (most files then change: a worst case)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="aclscan-bench-fix-"))
    work.mkdir(parents=True, exist_ok=True)
    image = work / "target.img"
    subprocess.run(["cp", "--sparse=always", args.image, image], check=True)
    db, plan, journal = work / "scan.db", work / "plan.json", work / "journal.db"
    for stale in (db, plan, journal, Path(f"{journal}.after.db")):
        stale.unlink(missing_ok=True)
    figures = {"scan": run(["scan", str(image), "--db", str(db), "--quiet", "--no-resolve"])}
    conn = sqlite3.connect(db)
    prefixes = [OLD_MACHINE] + ([DOMAIN] if args.domain_too else [])
    stale = [sid for prefix in prefixes
             for (sid,) in conn.execute("SELECT DISTINCT sid FROM sids WHERE sid LIKE ?", [prefix + "-%"])]
    with conn:
        conn.executemany(
            "INSERT INTO findings (sid, verdict, confidence, account, mapped_sid, files, evidence) "
            "VALUES (?, 'stale_prefix', 'high', ?, ?, 0, '[]')",
            [(sid, f"user{sid.rsplit('-', 1)[1]}", f"{MACHINE}-{sid.rsplit('-', 1)[1]}") for sid in stale])
        conn.execute("INSERT INTO authorities VALUES (?, 'BENCH', 'machine', 1, 'bench')", [MACHINE])
    conn.close()
    figures["plan"] = run(["plan", str(db), "--format", "json", "-o", str(plan)])
    planned = json.loads(plan.read_text())["summary"]
    before = descriptors(db)
    figures["fix --apply (with re-scan)"] = run(["fix", str(db), "--plan", str(plan), "--target", str(image),
                                                  "--apply", "--journal", str(journal)])
    written = sqlite3.connect(journal).execute("SELECT count(*) FROM entries").fetchone()[0]
    figures["undo"] = run(["undo", str(journal)])
    check = work / "after-undo.db"
    check.unlink(missing_ok=True)
    run(["scan", str(image), "--db", str(check), "--quiet", "--no-resolve"])
    same = descriptors(check) == before
    print(f"volume: {args.image}: {len(before):,} files; plan: {planned['descriptors']} distinct descriptors, "
          f"{planned['files']:,} files to rewrite ({len(stale)} stale SIDs)")
    for name, seconds in figures.items():
        print(f"  {name:28s} {seconds:7.2f} s")
    rate = written / figures["fix --apply (with re-scan)"] if written else 0
    print(f"  journaled and rewritten: {written:,} files ({rate:,.0f} files/s including mount, re-scan)")
    print(f"  undo restored every descriptor byte for byte: {'yes' if same else 'NO'}")
    if not args.work:
        shutil.rmtree(work)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
