#!/usr/bin/env python3
"""Make an NTFS volume of N files for benchmarks, through mkntfs and ntfs-3g.

    python bench/make_volume.py 100000 /tmp/100k.img [--descriptors 300] [--seed 1]

The tree looks like a Windows volume: a few top-level folders, directories a few
to a dozen levels deep holding 20-50 files each (one in ten holds only folders).
About a quarter of the directories carry an explicit descriptor with inheritable
ACEs; the rest, and nearly all files, get the descriptor ntfs-3g derives from the
parent (the volume is mounted ``permissions,inherit``), so every file has a
security id in $Secure, as on Windows. About 2% of the files get an explicit
descriptor of their own. Owners and ACEs name well-known SIDs, a domain, this
machine and a previous machine SID (the cloned-machine case aclscan looks for).

Files are empty: a scan reads MFT records, not data. Creating files through FUSE
is the cost; eight threads keep ntfs-3g's single request loop busy (about four
times the rate of one). Writes a sidecar ``OUT.json`` with the counts, which
bench_scan.py reads.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import stat
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aclscan.fix import ntfs3g  # noqa: E402
from tests.volumes import (  # noqa: E402  (test-only descriptor builder; no aclscan.sd)
    ACCESS_ALLOWED,
    ACCESS_DENIED,
    ADMINISTRATORS,
    AUTHENTICATED_USERS,
    CONTAINER_INHERIT,
    CREATOR_OWNER,
    DELETE,
    EVERYONE,
    FULL,
    GENERIC_ALL,
    INHERIT_ONLY,
    INHERITED,
    MODIFY,
    OBJECT_INHERIT,
    READ,
    READ_EXECUTE,
    SE_DACL_AUTO_INHERITED,
    SE_DACL_PROTECTED,
    SE_SELF_RELATIVE,
    SYSTEM,
    TRUSTED_INSTALLER,
    USERS,
    WRITE,
    raw_sd,
)

THREADS = 8
DOMAIN = "S-1-5-21-2222222222-3333333333-1444444444"
MACHINE = "S-1-5-21-1004336348-1177238915-682003330"
OLD_MACHINE = "S-1-5-21-3141592653-589793238-462643383"  # the master this disk was cloned from
TOP_LEVEL = ["Windows", "Program Files", "Program Files (x86)", "ProgramData", "Users", "Data", "Shares"]
WORDS = (
    "report budget invoice notes draft scan photo backup archive project contract minutes "
    "plan review summary data export import config setup readme license log cache temp "
    "Résumé Übersicht données 報告 проект"
).split()
EXTENSIONS = ["docx", "xlsx", "pdf", "txt", "jpg", "png", "dll", "exe", "log", "xml", "json", "ini", "msg"]
OI_CI = OBJECT_INHERIT | CONTAINER_INHERIT


@dataclass
class PlannedDir:
    path: str
    depth: int
    files: list[str] = field(default_factory=list)
    sd: bytes | None = None
    file_sds: dict[str, bytes] = field(default_factory=dict)


def principals(rng: random.Random) -> list[str]:
    """Accounts and groups ACEs and owners are drawn from."""
    people = [f"{DOMAIN}-{rid}" for rid in rng.sample(range(1100, 9000), 60)]
    people += [f"{MACHINE}-{rid}" for rid in (500, 1000, 1001, 1002, 1003)]
    people += [f"{OLD_MACHINE}-{rid}" for rid in (500, 1000, 1001, 1004, 1005)]
    groups = [f"{DOMAIN}-{rid}" for rid in (512, 513, 519)] + [f"{DOMAIN}-{rid}" for rid in range(3000, 3025)]
    return people + groups


def descriptor_pools(count: int, rng: random.Random) -> tuple[list[bytes], list[bytes]]:
    """``count`` distinct descriptors: a quarter for directories, the rest for files.

    Each explicit directory descriptor adds two inherited ones on the volume (what
    files and what subdirectories inherit), so the volume ends near ``count``.
    """
    who = principals(rng)
    dir_count = max(1, count // 4)
    file_count = max(1, count - 3 * dir_count)
    dir_sds: set[bytes] = set()
    while len(dir_sds) < dir_count:
        aces = [(ACCESS_ALLOWED, OI_CI, FULL, SYSTEM), (ACCESS_ALLOWED, OI_CI, FULL, ADMINISTRATORS)]
        if rng.random() < 0.3:
            aces.insert(0, (ACCESS_DENIED, OI_CI, WRITE | DELETE, rng.choice(who)))
        for _ in range(rng.randint(1, 4)):
            aces.append((ACCESS_ALLOWED, OI_CI, rng.choice([READ_EXECUTE, MODIFY, FULL, READ]), rng.choice(who)))
        if rng.random() < 0.5:
            aces.append((ACCESS_ALLOWED, OI_CI | INHERIT_ONLY, GENERIC_ALL, CREATOR_OWNER))
        if rng.random() < 0.3:
            aces.append((ACCESS_ALLOWED, OI_CI, READ_EXECUTE, rng.choice([USERS, AUTHENTICATED_USERS])))
        control = SE_SELF_RELATIVE | (SE_DACL_PROTECTED if rng.random() < 0.2 else SE_DACL_AUTO_INHERITED)
        owner = rng.choice([ADMINISTRATORS, SYSTEM, TRUSTED_INSTALLER, rng.choice(who)])
        dir_sds.add(raw_sd(owner, SYSTEM, aces, control=control))
    file_sds: set[bytes] = set()
    while len(file_sds) < file_count:
        owner = rng.choice(who)
        aces = [(ACCESS_ALLOWED, 0, rng.choice([FULL, MODIFY]), owner)]
        for _ in range(rng.randint(0, 3)):
            aces.append((ACCESS_ALLOWED, 0, rng.choice([READ, READ_EXECUTE, MODIFY]), rng.choice(who)))
        if rng.random() < 0.1:
            aces.insert(0, (ACCESS_DENIED, 0, DELETE, rng.choice(who + [EVERYONE])))
        aces += [(ACCESS_ALLOWED, INHERITED, FULL, SYSTEM), (ACCESS_ALLOWED, INHERITED, FULL, ADMINISTRATORS)]
        aces += [(ACCESS_ALLOWED, INHERITED, READ_EXECUTE, rng.choice(who)) for _ in range(rng.randint(0, 2))]
        file_sds.add(raw_sd(owner, f"{DOMAIN}-513", aces, control=SE_SELF_RELATIVE | SE_DACL_AUTO_INHERITED))
    return sorted(dir_sds), sorted(file_sds)


def plan(n_files: int, n_descriptors: int, seed: int) -> list[PlannedDir]:
    rng = random.Random(seed)
    dirs = [PlannedDir(name, 1) for name in TOP_LEVEL]
    remaining = n_files
    serial = 0
    while remaining > 0:
        if rng.random() < 0.65:
            parent = rng.choice(dirs[-40:])  # go deeper near where we are
        else:
            parent = rng.choice(dirs[: len(TOP_LEVEL)] + rng.sample(dirs, min(len(dirs), 20)))
        if parent.depth >= 14:
            parent = rng.choice(dirs[: len(TOP_LEVEL)])
        serial += 1
        new = PlannedDir(f"{parent.path}/{rng.choice(WORDS)} {serial}", parent.depth + 1)
        if rng.random() >= 0.1:
            count = min(remaining, rng.randint(20, 50))
            new.files = [f"{rng.choice(WORDS)}_{serial}_{i:03d}.{rng.choice(EXTENSIONS)}" for i in range(count)]
            remaining -= count
        dirs.append(new)
    dir_pool, file_pool = descriptor_pools(n_descriptors, rng)
    explicit_dirs = [d for d in dirs if rng.random() < 0.25] or dirs[:1]
    for i, d in enumerate(explicit_dirs):
        d.sd = dir_pool[i] if i < len(dir_pool) else rng.choice(dir_pool)
    slots = [(d, name) for d in dirs for name in d.files if rng.random() < 0.02]
    for i, (d, name) in enumerate(slots):
        d.file_sds[name] = file_pool[i] if i < len(file_pool) else rng.choice(file_pool)
    return dirs


def create(root: Path, dirs: list[PlannedDir]) -> None:
    """Make the tree, many directories at a time, each after its parent."""

    def one(d: PlannedDir) -> None:
        target = root / d.path
        os.mkdir(target)
        if d.sd is not None:
            ntfs3g.set_ntfs_acl(target, d.sd)
        # Relative to an open directory: the kernel then looks up one new name, not
        # every component of a path a dozen levels deep.
        dir_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in d.files:
                sd = d.file_sds.get(name)
                if sd is None:
                    os.mknod(name, stat.S_IFREG | 0o644, dir_fd=dir_fd)
                else:
                    fd = os.open(name, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
                    try:
                        ntfs3g.set_ntfs_acl(fd, sd)
                    finally:
                        os.close(fd)
        finally:
            os.close(dir_fd)

    children: dict[str, list[PlannedDir]] = {}
    for d in dirs:
        children.setdefault(d.path.rpartition("/")[0], []).append(d)
    pending = len(dirs)
    lock = threading.Lock()
    done = threading.Event()
    failures: list[BaseException] = []

    def run(d: PlannedDir) -> None:
        # a directory's children start once it exists (and has its descriptor)
        nonlocal pending
        try:
            one(d)
            for child in children.get(d.path, ()):
                pool.submit(run, child)
        except BaseException as exc:  # noqa: BLE001  reported below
            failures.append(exc)
            done.set()
        with lock:
            pending -= 1
            if pending == 0:
                done.set()

    with ThreadPoolExecutor(THREADS) as pool:
        for top in children[""]:
            pool.submit(run, top)
        done.wait()
    if failures:
        raise failures[0]


def secure_descriptor_count(image: Path) -> int:
    """Distinct descriptors in $Secure:$SDS, read with The Sleuth Kit."""
    report = subprocess.run(["istat", str(image), "9"], capture_output=True, text=True, check=True).stdout
    attr = re.search(r"Type: \$DATA \((128-\d+)\)\s+Name: \$SDS", report)
    if attr is None:
        raise SystemExit("no $Secure:$SDS in the image")
    sds = subprocess.run(["icat", str(image), f"9-{attr[1]}"], capture_output=True, check=True).stdout
    ids = set()
    for block in range(0, len(sds), 0x80000):  # 256 KiB of entries, then its mirror copy
        pos = block
        while pos + 20 <= min(block + 0x40000, len(sds)):
            _, security_id, offset, length = struct.unpack_from("<IIQI", sds, pos)
            if length < 20 or offset != pos:
                break
            ids.add(security_id)
            pos += (length + 15) & ~15
    return len(ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=int, help="number of files")
    parser.add_argument("out", type=Path, help="image to write (sparse)")
    parser.add_argument("--descriptors", type=int, default=300, help="distinct descriptors to aim for")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, help="volume bytes (default: from the file count)")
    args = parser.parse_args(argv)
    reason = ntfs3g.ntfs3g_available()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 6
    started = time.perf_counter()
    dirs = plan(args.files, args.descriptors, args.seed)
    n_dirs = len(dirs)
    size = args.size or (256 << 20) + args.files * 2048 + n_dirs * 16384
    args.out.unlink(missing_ok=True)
    ntfs3g.make_image(args.out, size, label="BENCH")
    formatted = time.perf_counter()
    with ntfs3g.mounted(args.out, inherit=True) as root:
        create(root, dirs)
        created = time.perf_counter()
    unmounted = time.perf_counter()
    distinct = secure_descriptor_count(args.out)
    counted = time.perf_counter()
    n_made = sum(len(d.files) for d in dirs)
    explicit = sum(d.sd is not None for d in dirs) + sum(len(d.file_sds) for d in dirs)
    depth = max(d.depth for d in dirs)
    summary = {
        "image": str(args.out),
        "files": n_made,
        "directories": n_dirs,
        "max_depth": depth,
        "explicit_descriptors_set": explicit,
        "distinct_descriptors": distinct,
        "volume_bytes": size,
        "seconds": {
            "plan": round(formatted - started, 2),
            "create": round(created - formatted, 2),
            "unmount": round(unmounted - created, 2),
            "count_sds": round(counted - unmounted, 2),
            "total": round(counted - started, 2),
        },
    }
    Path(f"{args.out}.json").write_text(json.dumps(summary, indent=2) + "\n")
    used = os.stat(args.out).st_blocks * 512
    print(f"{args.out}: {n_made} files in {n_dirs} directories (depth <= {depth}), "
          f"{distinct} distinct descriptors in $Secure ({explicit} set explicitly)")
    print(f"  volume {size / 2**20:.0f} MiB sparse, {used / 2**20:.0f} MiB on disk")
    print(f"  created in {created - formatted:.1f} s ({n_made / max(created - formatted, 1e-9):,.0f} files/s); "
          f"total {counted - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
