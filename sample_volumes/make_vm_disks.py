#!/usr/bin/env python3
"""Write the sample volumes as virtual machine disks, for trying aclscan on them.

    python sample_volumes/make_vm_disks.py OUT_DIR [NAME ...] [--formats vhd,vhdx,vmdk,qcow2]

Every sample volume (sample_volumes/NAME.img.gz; all of them by default) is
written into OUT_DIR as each format (qemu-img, Debian qemu-utils): VHD dynamic
and fixed, VHDX dynamic and fixed, VMDK monolithic sparse, split, flat and
stream-optimized, qcow2 plain and compressed. The disks are not committed (they
are generated in tests, tests/test_vm_disks.py, from tests/vm_disks.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.vm_disks import FORMATS, convert, expand  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("names", nargs="*", help="sample names (default: every sample volume)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: " + ", ".join(FORMATS))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    samples = Path(__file__).resolve().parent
    names = args.names or sorted(p.name[: -len(".img.gz")] for p in samples.glob("*.img.gz"))
    for name in names:
        raw = expand(samples / f"{name}.img.gz", args.out_dir)
        for fmt in args.formats.split(","):
            print(convert(raw, args.out_dir, fmt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
