#!/usr/bin/env python3
"""Time planning, the offline fix and undo on a volume made by make_volume.py, per backend.

    python bench/bench_fix.py /tmp/100k.img [--work DIR] [--domain-too] [--backends lib,fuse]

make_volume.py's volumes name a previous machine SID (OLD_MACHINE) next to today's
(MACHINE) but carry no hives, so the scan has no verdicts. This benchmark copies the
image, scans it, and records the verdict a scan with the master's SAM would give:
OLD_MACHINE's RIDs stale_prefix, mapped RID to RID to MACHINE (the bench's accounts
share names by construction). Then it times `plan`, and for each backend (on its own
fresh copy of the image, in the same run) `fix --apply` (every file that names an old
SID is rewritten, journaled first; the re-scan is part of it) and `undo`, with each
command's peak memory, and checks that undo gave back every descriptor.
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


def run(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one aclscan command."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "aclscan", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.exit(f"aclscan {argv[0]} failed ({code}): {proc.stderr.read().strip()}")
    proc.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def descriptors(db: Path) -> dict[int, bytes]:
    conn = sqlite3.connect(db)
    return dict(conn.execute("SELECT f.entry, d.raw FROM file_records f JOIN descriptors d ON d.key = f.descriptor_key"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image")
    parser.add_argument("--work", help="directory for the copies, databases and journals (default: a temporary one)")
    parser.add_argument("--domain-too", action="store_true",
                        help="also treat the volume's domain SIDs as stale (most files then change: a worst case)")
    parser.add_argument("--backends", default="lib,fuse", help="comma-separated: lib, fuse (default: both)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="aclscan-bench-fix-"))
    work.mkdir(parents=True, exist_ok=True)
    scanned = work / "scanned.img"
    subprocess.run(["cp", "--sparse=always", args.image, scanned], check=True)
    os.sync()
    db, plan = work / "scan.db", work / "plan.json"
    for stale in (db, plan):
        stale.unlink(missing_ok=True)
    scan_seconds, scan_mib = run(["scan", str(scanned), "--db", str(db), "--quiet", "--no-resolve"])
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
    plan_seconds, plan_mib = run(["plan", str(db), "--format", "json", "-o", str(plan)])
    planned = json.loads(plan.read_text())["summary"]
    before = descriptors(db)
    print(f"volume: {args.image}: {len(before):,} files; plan: {planned['descriptors']} distinct descriptors, "
          f"{planned['files']:,} files to rewrite ({len(stale)} stale SIDs)")
    print(f"  {'scan':34s} {scan_seconds:7.2f} s {scan_mib:7.0f} MiB")
    print(f"  {'plan':34s} {plan_seconds:7.2f} s {plan_mib:7.0f} MiB")
    all_same = True
    for backend in args.backends.split(","):
        image, journal = work / f"{backend}.img", work / f"{backend}.journal.db"
        for old in (image, journal, Path(f"{journal}.after.db")):
            old.unlink(missing_ok=True)
        subprocess.run(["cp", "--sparse=always", args.image, image], check=True)
        os.sync()  # the copy's gigabytes written back now, not during the timed fix
        fix_seconds, fix_mib = run(["fix", str(db), "--plan", str(plan), "--target", str(image), "--apply",
                                    "--journal", str(journal), "--backend", backend])
        written = sqlite3.connect(journal).execute("SELECT count(*) FROM entries").fetchone()[0]
        undo_seconds, undo_mib = run(["undo", str(journal)])
        check = work / f"{backend}.after-undo.db"
        check.unlink(missing_ok=True)
        run(["scan", str(image), "--db", str(check), "--quiet", "--no-resolve"])
        same = descriptors(check) == before
        all_same &= same
        rate = written / fix_seconds if written else 0
        print(f"  {backend + ': fix --apply (with re-scan)':34s} {fix_seconds:7.2f} s {fix_mib:7.0f} MiB   "
              f"{written:,} files journaled and rewritten ({rate:,.0f} files/s overall)")
        print(f"  {backend + ': undo':34s} {undo_seconds:7.2f} s {undo_mib:7.0f} MiB   "
              f"every descriptor back byte for byte: {'yes' if same else 'NO'}")
    if not args.work:
        shutil.rmtree(work)
    sys.exit(0 if all_same else 1)


if __name__ == "__main__":
    main()
