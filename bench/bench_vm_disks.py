#!/usr/bin/env python3
"""Time ``aclscan scan`` of one volume as a raw image, a qcow2 and a VHDX disk.

    python bench/bench_vm_disks.py /tmp/100k.img [--repeat 3] [--formats qcow2,vhdx,vmdk,vhd]

The disks are written with qemu-img (Debian qemu-utils) as it writes them by
default, into a temporary folder removed afterwards. Each scan (``--no-resolve``:
the image layer and the MFT pass, not the hives) runs once to warm the page
cache, then ``--repeat`` times, round robin; the figure is the median, and the
ratio to the raw scan of the same run. Target (issue 17): at most 1.5x raw.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import count_entries, run_once  # noqa: E402

QEMU_FORMAT = {"qcow2": "qcow2", "vhdx": "vhdx", "vmdk": "vmdk", "vhd": "vpc"}
TARGET_RATIO = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", type=Path, help="a raw NTFS volume (bench/make_volume.py)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="qcow2,vhdx")
    args = parser.parse_args(argv)
    image = args.image.resolve()
    if shutil.which("qemu-img") is None:
        print("error: qemu-img not found (Debian qemu-utils)", file=sys.stderr)
        return 6
    workdir = Path(tempfile.mkdtemp(prefix="aclscan-bench-vm-"))
    try:
        inputs = {"raw": image}
        for fmt in args.formats.split(","):
            target = workdir / f"disk.{fmt}"
            subprocess.run(["qemu-img", "convert", "-O", QEMU_FORMAT[fmt], str(image), str(target)], check=True)
            inputs[fmt] = target
        entries = count_entries(image, 0)
        print(f"{image}: {entries:,} files and directories; {args.repeat} runs each after a warm-up", flush=True)
        seconds: dict[str, list[float]] = {name: [] for name in inputs}
        db = workdir / "scan.db"
        for round_number in range(args.repeat + 1):
            for name, path in inputs.items():
                db.unlink(missing_ok=True)
                took, _peak, code, tail = run_once(
                    [sys.executable, "-m", "aclscan", "scan", str(path), "--db", str(db), "--quiet", "--no-resolve"],
                    workdir)
                if code != 0:
                    print(f"error: scanning {name} failed: exit {code}: {tail}", file=sys.stderr)
                    return 1
                if round_number:
                    seconds[name].append(took)
        raw = statistics.median(seconds["raw"])
        header = f"{'input':<8} {'on disk MiB':>12} {'median s':>9} {'min s':>8} {'x raw':>6}"
        print(header)
        print("-" * len(header))
        for name, path in inputs.items():
            median = statistics.median(seconds[name])
            size = sum(p.stat().st_blocks * 512 for p in path.parent.glob(f"{path.stem}*{path.suffix}")) / 2**20
            verdict = "" if name == "raw" else ("  ok" if median / raw <= TARGET_RATIO else f"  over {TARGET_RATIO}x")
            print(f"{name:<8} {size:>12,.0f} {median:>9.2f} {min(seconds[name]):>8.2f} {median / raw:>6.2f}{verdict}")
    finally:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
