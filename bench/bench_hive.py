#!/usr/bin/env python3
"""Time reading a SOFTWARE-sized hive: open it and walk every key's security cell.

    python bench/bench_hive.py [--keys 500000] [--descriptors 2000] [--hive /tmp/bench.hive] [--repeat 3]

The hive is written once by the project's regf writer (``aclscan.samples.regf``) to
``--hive`` (reused when it is already there with the same shape): a root with 50
top-level keys, 100 below each and the rest spread below those, every key with one of
``--descriptors`` distinct security descriptors. Each run is a child process that reads
the file's bytes, opens the hive (``open_hive``), walks ``Hive.key_security()`` over
every key and reads ``Hive.security_cells()``; its wall time for that work and its peak
RSS (VmHWM, the interpreter, imports and the hive's bytes included) are printed.

The CPU time is printed beside the wall time: on a machine other work shares, the
best wall time of a few runs and the CPU time say more than any single run.

Target (issue 9): 500,000 keys and 2,000 distinct sk cells in <= 3 s and <= 300 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 3.0
TARGET_PEAK_MIB = 300
PROJECT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys, time
from aclscan.hives.registry import open_hive
started = time.perf_counter()
cpu_started = time.process_time()
with open(sys.argv[1], "rb") as handle:
    data = handle.read()
read = time.perf_counter()
hive = open_hive(data, label=sys.argv[1])
opened = time.perf_counter()
keys = 0
for _path, _sk in hive.key_security():
    keys += 1
walked = time.perf_counter()
cells = hive.security_cells()
done = time.perf_counter()
cpu = time.process_time() - cpu_started
peak_kib = 0
with open("/proc/self/status") as status:  # VmHWM: this process's own peak resident set
    for line in status:
        if line.startswith("VmHWM:"):
            peak_kib = int(line.split()[1])
print(json.dumps({"peak_kib": peak_kib, "keys": keys, "cells": len(cells), "problems": len(hive.status.problems),
                  "read": read - started, "open": opened - read, "key_security": walked - opened,
                  "security_cells": done - walked, "total": done - read, "cpu": cpu}))
"""


def make_hive(path: Path, keys: int, descriptors: int) -> dict:
    """Write the benchmark hive; return its shape (also kept in PATH.json)."""
    from aclscan.samples.regf import Key, hive_bytes
    from aclscan.sd.sddl import from_sddl

    shape = {"keys": keys, "descriptors": descriptors}
    meta = path.with_name(path.name + ".json")
    if path.is_file() and meta.is_file() and json.loads(meta.read_text()).get("shape") == shape:
        return json.loads(meta.read_text())
    started = time.perf_counter()
    sds = [
        from_sddl(f"O:BAG:SYD:(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;S-1-5-21-1004336348-1177238915-682003330-{1000 + i})")
        .to_bytes()
        for i in range(descriptors)
    ]
    root = Key("ROOT", subkeys=[Key("Microsoft")])
    made = 1
    top = [root.subkeys[0]] + [Key(f"Vendor{i:02d}") for i in range(1, 50)]
    root.subkeys[1:] = top[1:]
    middle: list[Key] = []
    for t, parent in enumerate(top):
        for m in range(100):
            child = Key(f"Product{m:03d} Component", security=sds[(t * 100 + m) % descriptors])
            parent.subkeys.append(child)
            middle.append(child)
    made += len(top) + len(middle)
    index = 0
    while made < keys:
        parent = middle[index % len(middle)]
        parent.subkeys.append(Key(f"{{{index:08X}-0000-4000-8000-SETTING}}", security=sds[index % descriptors]))
        index += 1
        made += 1
    data = hive_bytes(root, name=r"\SystemRoot\System32\Config\SOFTWARE")
    path.write_bytes(data)
    info = {"shape": shape, "bytes": len(data), "write_seconds": round(time.perf_counter() - started, 1)}
    meta.write_text(json.dumps(info))
    return info


def run_child(hive: Path) -> tuple[dict, int]:
    """(the child's figures, its peak RSS in KiB). The peak is the child's VmHWM, not
    wait4's ru_maxrss: a child spawned from this process inherits, through exec, the
    high-water mark this process reached while writing the hive."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    read_end, write_end = os.pipe()
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", _CHILD, str(hive)], env,
                         file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 1)])
    os.close(write_end)
    with os.fdopen(read_end) as out:
        text = out.read()
    _pid, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the reading child failed (exit {os.waitstatus_to_exitcode(status)})")
    figures = json.loads(text)
    return figures, figures["peak_kib"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=500_000)
    parser.add_argument("--descriptors", type=int, default=2000)
    parser.add_argument("--hive", type=Path, default=Path("/tmp/aclscan-bench.hive"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(PROJECT))
    info = make_hive(args.hive, args.keys, args.descriptors)
    print(f"hive {args.hive}: {info['bytes'] / 2**20:.1f} MiB, {args.keys:,} keys, "
          f"{args.descriptors:,} descriptors (written in {info['write_seconds']} s)")
    best, peak = None, 0
    for _ in range(args.repeat):
        figures, rss_kib = run_child(args.hive)
        peak = max(peak, rss_kib)
        if best is None or figures["total"] < best["total"]:
            best = figures
        print(f"  open {figures['open']:.2f} s, key_security {figures['key_security']:.2f} s, "
              f"security_cells {figures['security_cells']:.2f} s: {figures['total']:.2f} s "
              f"(CPU {figures['cpu']:.2f} s); "
              f"peak RSS {rss_kib / 1024:.0f} MiB ({figures['keys']:,} keys, {figures['cells']:,} cells, "
              f"{figures['problems']} problems)")
    ok = best["total"] <= TARGET_SECONDS and peak / 1024 <= TARGET_PEAK_MIB
    print(f"best {best['total']:.2f} s (target {TARGET_SECONDS} s), peak {peak / 1024:.0f} MiB "
          f"(target {TARGET_PEAK_MIB} MiB): {'within' if ok else 'OVER'} target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
