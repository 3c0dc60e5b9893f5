#!/usr/bin/env python3
"""Rebuild sample_volumes/quickstart.img.gz, the volume of the README quick start.

    sudo python sample_volumes/make_quickstart.py [OUT.img.gz]

Needs root, FUSE, mkntfs and ntfs-3g (Debian: ntfs-3g). Writes the gzipped image
and, beside it, quickstart.json: every path with its MFT entry and descriptor.

The story: this disk was cloned from a master machine (prefix OLD_MACHINE) and
given a new machine SID (MACHINE). Ken's files still name accounts by the old
prefix; one ACE names a domain no source knows.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.volumes import (  # noqa: E402  (test-only descriptor builder; no aclscan.sd)
    ACCESS_ALLOWED as ALLOW,
    ACCESS_DENIED as DENY,
    ADMINISTRATORS,
    AUTHENTICATED_USERS,
    CONTAINER_INHERIT as CI,
    CREATOR_OWNER,
    DELETE,
    FULL,
    GENERIC_ALL,
    INHERIT_ONLY as IO,
    INHERITED as ID,
    MODIFY,
    OBJECT_INHERIT as OI,
    READ,
    READ_EXECUTE,
    SE_DACL_AUTO_INHERITED,
    SE_DACL_PROTECTED,
    SE_SELF_RELATIVE,
    SYSTEM,
    TRUSTED_INSTALLER,
    USERS,
    WRITE,
    Dir,
    File,
    build_volume,
    raw_sd,
)

SIZE = 12 << 20
MACHINE = "S-1-5-21-1004336348-1177238915-682003330"  # this machine, after the SID change
OLD_MACHINE = "S-1-5-21-3141592653-589793238-462643383"  # the master it was cloned from
UNKNOWN_DOMAIN = "S-1-5-21-2718281828-459045235-360287471"  # no source knows it
KEN = f"{MACHINE}-1001"
ALICE = f"{MACHINE}-1002"
OLD_KEN = f"{OLD_MACHINE}-1001"  # Ken before the SID change
OLD_REVIEWERS = f"{OLD_MACHINE}-1010"  # a local group of the master
OLD_ADMIN = f"{OLD_MACHINE}-500"
AUDITOR = f"{UNKNOWN_DOMAIN}-4120"
NONE_GROUP = f"{MACHINE}-513"
AUTO = SE_SELF_RELATIVE | SE_DACL_AUTO_INHERITED


def descriptors() -> dict[str, bytes]:
    root_aces = [
        (ALLOW, OI | CI, FULL, SYSTEM),
        (ALLOW, OI | CI, FULL, ADMINISTRATORS),
        (ALLOW, OI | CI, READ_EXECUTE, USERS),
        (ALLOW, CI, 0x00000004, AUTHENTICATED_USERS),  # create folders
        (ALLOW, OI | CI | IO, GENERIC_ALL, CREATOR_OWNER),
    ]
    system_inherited = [(ALLOW, ID, FULL, SYSTEM), (ALLOW, ID, FULL, ADMINISTRATORS)]
    return {
        "root": raw_sd(ADMINISTRATORS, SYSTEM, root_aces, control=SE_SELF_RELATIVE),
        "program_files": raw_sd(
            TRUSTED_INSTALLER,
            TRUSTED_INSTALLER,
            [
                (ALLOW, OI | CI, FULL, TRUSTED_INSTALLER),
                (ALLOW, OI | CI, MODIFY, SYSTEM),
                (ALLOW, OI | CI, MODIFY, ADMINISTRATORS),
                (ALLOW, OI | CI, READ_EXECUTE, USERS),
                (ALLOW, OI | CI | IO, GENERIC_ALL, CREATOR_OWNER),
            ],
            control=SE_SELF_RELATIVE | SE_DACL_PROTECTED,
        ),
        "app_dir": raw_sd(
            TRUSTED_INSTALLER,
            TRUSTED_INSTALLER,
            [
                (ALLOW, OI | CI | ID, FULL, TRUSTED_INSTALLER),
                (ALLOW, OI | CI | ID, MODIFY, SYSTEM),
                (ALLOW, OI | CI | ID, MODIFY, ADMINISTRATORS),
                (ALLOW, OI | CI | ID, READ_EXECUTE, USERS),
            ],
            control=AUTO,
        ),
        "app_file": raw_sd(
            TRUSTED_INSTALLER,
            SYSTEM,
            [
                (ALLOW, ID, FULL, TRUSTED_INSTALLER),
                (ALLOW, ID, READ_EXECUTE | 0x00100000, SYSTEM),
                (ALLOW, ID, READ_EXECUTE, ADMINISTRATORS),
                (ALLOW, ID, READ_EXECUTE, USERS),
            ],
            control=AUTO,
        ),
        "users": raw_sd(ADMINISTRATORS, SYSTEM, [*system_inherited, (ALLOW, OI | CI | ID, READ_EXECUTE, USERS)],
                        control=AUTO),
        "ken_home": raw_sd(
            KEN,
            NONE_GROUP,
            [
                (ALLOW, OI | CI, FULL, SYSTEM),
                (ALLOW, OI | CI, FULL, ADMINISTRATORS),
                (ALLOW, OI | CI, FULL, OLD_KEN),  # written before the SID change
                (ALLOW, OI | CI, FULL, KEN),
            ],
            control=SE_SELF_RELATIVE | SE_DACL_PROTECTED,
        ),
        "ken_file": raw_sd(
            OLD_KEN,
            NONE_GROUP,
            [
                (ALLOW, ID, FULL, SYSTEM),
                (ALLOW, ID, FULL, ADMINISTRATORS),
                (ALLOW, ID, FULL, OLD_KEN),
                (ALLOW, ID, FULL, KEN),
            ],
            control=AUTO,
        ),
        "ken_private": raw_sd(
            KEN,
            NONE_GROUP,
            [
                (DENY, 0, READ | WRITE | DELETE, ALICE),
                (ALLOW, 0, FULL, KEN),
                (ALLOW, ID, FULL, SYSTEM),
                (ALLOW, ID, FULL, ADMINISTRATORS),
                (ALLOW, ID, FULL, OLD_KEN),
            ],
            control=AUTO,
        ),
        "data": raw_sd(
            ADMINISTRATORS,
            SYSTEM,
            [*system_inherited, (ALLOW, OI | CI, MODIFY, OLD_ADMIN), (ALLOW, OI | CI | ID, READ_EXECUTE, USERS)],
            control=AUTO,
        ),
        "reviews": raw_sd(
            OLD_ADMIN,
            SYSTEM,
            [
                (DENY, OI | CI, DELETE, OLD_REVIEWERS),
                (ALLOW, OI | CI, MODIFY, OLD_REVIEWERS),
                (ALLOW, OI | CI, READ, AUDITOR),
                (ALLOW, OI | CI | ID, FULL, SYSTEM),
                (ALLOW, OI | CI | ID, FULL, ADMINISTRATORS),
                (ALLOW, OI | CI | ID, MODIFY, OLD_ADMIN),
            ],
            control=AUTO,
        ),
        "review_file": raw_sd(
            OLD_KEN,
            NONE_GROUP,
            [
                (DENY, ID, DELETE, OLD_REVIEWERS),
                (ALLOW, ID, MODIFY, OLD_REVIEWERS),
                (ALLOW, ID, READ, AUDITOR),
                (ALLOW, ID, FULL, SYSTEM),
                (ALLOW, ID, FULL, ADMINISTRATORS),
                (ALLOW, ID, MODIFY, OLD_ADMIN),
            ],
            control=AUTO,
        ),
    }


def spec() -> list:
    sd = descriptors()
    return [
        Dir("", sd=sd["root"]),
        Dir("Program Files", sd=sd["program_files"]),
        Dir("Program Files/App", sd=sd["app_dir"]),
        File("Program Files/App/app.exe", b"MZ" + b"\0" * 510, sd=sd["app_file"]),
        File("Program Files/App/app.dll", b"MZ" + b"\0" * 254, sd=sd["app_file"]),
        File("Program Files/App/readme.txt", b"App 1.0\r\n", sd=sd["app_file"]),
        Dir("Users", sd=sd["users"]),
        Dir("Users/Ken", sd=sd["ken_home"]),
        Dir("Users/Ken/Documents", sd=sd["ken_file"]),
        File("Users/Ken/notes.txt", b"Quarterly goals\r\n", sd=sd["ken_file"]),
        File("Users/Ken/Documents/budget.xlsx", b"PK\x03\x04" + b"\0" * 60, sd=sd["ken_file"]),
        File("Users/Ken/Documents/private.txt", b"Not for Alice\r\n", sd=sd["ken_private"]),
        Dir("Data", sd=sd["data"]),
        Dir("Data/Reviews", sd=sd["reviews"]),
        File("Data/Reviews/2023 review.docx", b"PK\x03\x04" + b"\0" * 60, sd=sd["review_file"]),
        File("Data/Reviews/2024 review.docx", b"PK\x03\x04" + b"\0" * 60, sd=sd["review_file"]),
        File("Data/Reviews/summary.txt", b"All reviews done.\r\n", sd=sd["review_file"]),
    ]


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "quickstart.img.gz"
    with tempfile.TemporaryDirectory(prefix="aclscan-quickstart-") as work:
        image = Path(work) / "quickstart.img"
        manifest = build_volume(image, spec(), size=SIZE, label="QUICKSTART")
        # gzip without a timestamp or name in the header
        with open(image, "rb") as src, open(out, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    names = {v: k for k, v in globals().items() if isinstance(v, str) and v.startswith("S-1-")}
    listing = {
        "image": out.name,
        "volume_bytes": SIZE,
        "sids": {sid: name for sid, name in sorted(names.items())},
        "entries": {
            path or "/": {"inode": made.inode, "dir": made.is_dir, "sd": made.sd.hex()}
            for path, made in sorted(manifest.entries.items())
        },
    }
    out.with_name(out.name.replace(".img.gz", ".json")).write_text(json.dumps(listing, indent=2) + "\n")
    distinct = len(manifest.distinct_sds())
    print(f"{out}: {out.stat().st_size:,} bytes; {len(manifest.entries)} paths, {distinct} distinct descriptors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
