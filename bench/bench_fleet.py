#!/usr/bin/env python3
"""Time a big fleet: ingesting 1,000 scan databases, the report over them, and image
scans on local processes against a local Dask cluster.

    python bench/bench_fleet.py [--machines 1000] [--images 8,32] [--work DIR] [--skip-scans]

1. The sample images (`sample_volumes/*.img.gz`) are scanned once; each scan database is
   a template.
2. ``--machines`` copies are made round robin over the templates, each with its machine
   SID rewritten to one of its own, except every tenth copy, which keeps its template's
   machine SID: a tenth of the fleet shares machine SIDs (the ws1/ws2/member-before
   copies among them share one, so the identity collisions and the cross-machine
   references of member-after and av-service grow with the fleet).
3. Timed, each in a child process (wall seconds and peak RSS from wait4): the ingest
   (`aclscan.fleet.build_fleet` over every copy), the report (`aclscan fleet FLEET.db`
   as a table, and `--format json`): the command's own work (judged against the
   target), the whole command, and the start-up every aclscan command pays (importing
   its CLI).
4. Unless ``--skip-scans``: `aclscan fleet` over 8 and 32 images (copies of the sample
   images) with `--jobs 2` and with `--scheduler local:2`, each into fresh scan
   databases: what Dask costs on one machine.

Targets (issue 13, this 2-core machine): ingest <= 20 s, report <= 2 s, peak <= 500 MiB.
Exit 0 when every target is met, 1 when one is not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_volumes"
INGEST_TARGET, REPORT_TARGET, PEAK_TARGET_MIB = 20.0, 2.0, 500

# Where a scan database names SIDs that the fleet reads (machine SID rewrites touch these).
SID_COLUMNS = {
    "machine": ("machine_sid", "account_domain_sid"),
    "findings": ("sid", "mapped_sid"),
    "accounts": ("sid",),
    "authorities": ("sid",),
    "previous_names": ("sid",),
}


def timed(argv: list[str], **kwargs) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process, reaped with wait4."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.exit(f"{' '.join(argv[:6])} ... failed ({code}): {child.stderr.read().decode().strip()}")
    return seconds, usage.ru_maxrss / 1024


def aclscan(*args: str) -> list[str]:
    return [sys.executable, "-m", "aclscan", *args]


def make_templates(work: Path) -> list[Path]:
    directory = work / "templates"
    images = sorted(SAMPLES.glob("*.img.gz"))
    if not all((directory / (i.name[: -len(".img.gz")] + ".db")).is_file() for i in images):
        timed(aclscan("fleet", str(work / "templates.db"), *map(str, images), "--jobs", "2", "-q",
                      "--scans-dir", str(directory)))
    return [directory / (i.name[: -len(".img.gz")] + ".db") for i in images]


def make_copies(templates: list[Path], machines: int, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    copies = []
    for n in range(machines):
        template = templates[n % len(templates)]
        copy = directory / f"m{n:05d}.db"
        copies.append(copy)
        if copy.is_file():
            continue
        shutil.copyfile(template, copy)
        conn = sqlite3.connect(copy)
        old = (conn.execute("SELECT machine_sid FROM machine").fetchone() or (None,))[0]
        if old and n % 10:  # nine in ten get a machine SID of their own
            new = f"S-1-5-21-{1000000000 + n}-{2000000000 + n}-{3000000000 + n}"
            for table, columns in SID_COLUMNS.items():
                for column in columns:
                    conn.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?)"
                                 f" WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                                 (new, len(old) + 1, old, len(old) + 1, old + "-"))
        conn.commit()
        conn.close()
    return copies


def fleet_benchmark(work: Path, machines: int) -> list[tuple[str, float, float, float | None]]:
    templates = make_templates(work)
    copies = make_copies(templates, machines, work / f"copies-{machines}")
    fleet = work / f"fleet-{machines}.db"
    fleet.unlink(missing_ok=True)
    listing = work / "copies.txt"
    listing.write_text("\n".join(map(str, copies)))
    ingest = [sys.executable, "-c",
              "import sys; from aclscan.fleet import build_fleet; "
              "b = build_fleet(sys.argv[1], open(sys.argv[2]).read().split('\\n')); "
              "assert len(b.added) == int(sys.argv[3]) and not b.failed, b.failed[:3]",
              str(fleet), str(listing), str(machines)]
    rows = [("ingest", *timed(ingest), INGEST_TARGET)]
    for fmt in ("table", "json"):
        # The command's own work (start-up excluded: importing aclscan's CLI, the same for
        # every command, is timed on its own below), then the whole command.
        seconds_file = work / "report-seconds.txt"
        in_process = [sys.executable, "-c",
                      "import sys, time, os; from aclscan.cli import main; sys.stdout = open(os.devnull, 'w'); "
                      "t = time.perf_counter(); main(['fleet', sys.argv[1], '--format', sys.argv[2]]); "
                      "open(sys.argv[3], 'w').write(str(time.perf_counter() - t))",
                      str(fleet), fmt, str(seconds_file)]
        _wall, peak = timed(in_process)
        rows.append((f"report ({fmt})", float(seconds_file.read_text()), peak, REPORT_TARGET))
        rows.append((f"  aclscan fleet --format {fmt}", *timed(aclscan("fleet", str(fleet), "--format", fmt)), None))
    rows.append(("  of which CLI start-up", *timed([sys.executable, "-c", "import aclscan.cli"]), None))
    conn = sqlite3.connect(fleet)
    counts = {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
              for table in ("machines", "machine_sids", "machine_accounts", "duplicate_machine_sids",
                            "identity_collisions", "cross_machine_references")}
    conn.close()
    print(f"fleet of {machines} machines: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return rows


def scan_benchmark(work: Path, count: int) -> list[tuple[str, float, float, None]]:
    images_dir = work / f"images-{count}"
    images_dir.mkdir(parents=True, exist_ok=True)
    samples = sorted(SAMPLES.glob("*.img.gz"))
    samples = [s for s in samples if s.name != "quickstart.img.gz"] or samples  # the eight scenario images
    images = []
    for n in range(count):
        image = images_dir / f"i{n:03d}-{samples[n % len(samples)].name}"
        if not image.exists():
            os.link(samples[n % len(samples)], image) if os.stat(samples[0]).st_dev == os.stat(
                images_dir).st_dev else shutil.copyfile(samples[n % len(samples)], image)
        images.append(str(image))
    rows = []
    for label, options in (("--jobs 2", ["--jobs", "2"]), ("--scheduler local:2", ["--scheduler", "local:2"])):
        out = Path(tempfile.mkdtemp(prefix="scans-", dir=work))
        seconds, peak = timed(aclscan("fleet", str(out / "fleet.db"), *images, *options, "-q", "--scans-dir", str(out)))
        rows.append((f"{count} images {label}", seconds, peak, None))
        shutil.rmtree(out)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=1000, help="fleet size (0: no fleet benchmark)")
    parser.add_argument("--images", default="8,32", help="image counts to scan both ways (comma-separated)")
    parser.add_argument("--work", help="directory for templates and copies (kept; default: a temporary one)")
    parser.add_argument("--skip-scans", action="store_true")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="aclscan-bench-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; work in {work}")
    rows = fleet_benchmark(work, args.machines) if args.machines else []
    if not args.skip_scans:
        for count in (int(c) for c in args.images.split(",") if c):
            rows += scan_benchmark(work, count)
    met = True
    print(f"{'what':<32} {'seconds':>8} {'peak MiB':>9}  target")
    for label, seconds, peak, target in rows:
        verdict = ""
        if target is not None:
            ok = seconds <= target and peak <= PEAK_TARGET_MIB
            met &= ok
            verdict = f"<= {target:g} s, <= {PEAK_TARGET_MIB} MiB: {'met' if ok else 'NOT met'}"
        print(f"{label:<32} {seconds:>8.2f} {peak:>9.0f}  {verdict}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
