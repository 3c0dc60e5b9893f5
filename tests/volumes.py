"""Test-only: build NTFS volumes from a small declarative spec, with mkntfs and ntfs-3g.

A spec is a list of entries (``from tests.volumes import ...``)::

    spec = [
        Dir("Users/Ken", sd=raw_sd(ADMINS, SYSTEM, [(ALLOWED, 0x03, FULL, KEN)])),
        File("Users/Ken/a.txt", b"hello", streams={"Zone.Identifier": b"[ZoneTransfer]"}),
        Link("Users/Ken/b.txt", target="Users/Ken/a.txt"),
        Deleted("Users/Ken/gone.txt", b"was here"),
    ]
    manifest = build_volume(tmp_path / "v.img", spec)

Parents are created as needed; ``sd`` is set through ``system.ntfs_acl`` right after
the entry is made. Deleted entries are created and removed last, so that no later
file reuses their MFT record. The returned :class:`Manifest` says what is on the
volume: every path (each hard-link name too) with its MFT entry number (ntfs-3g's
inode number) and the descriptor ntfs-3g reports for it, read back after building.

``raw_sd`` builds self-relative descriptors without aclscan.sd, so that these
fixtures stay an independent opinion. It is deliberately tiny: no SDDL, no checks.
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aclscan.fix import ntfs3g

# --- raw descriptors (test-only) ------------------------------------------------

ACCESS_ALLOWED = 0x00
ACCESS_DENIED = 0x01
SYSTEM_AUDIT = 0x02
SYSTEM_MANDATORY_LABEL = 0x11

OBJECT_INHERIT = 0x01
CONTAINER_INHERIT = 0x02
NO_PROPAGATE = 0x04
INHERIT_ONLY = 0x08
INHERITED = 0x10
SUCCESSFUL_ACCESS = 0x40
FAILED_ACCESS = 0x80

SE_DACL_PRESENT = 0x0004
SE_SACL_PRESENT = 0x0010
SE_DACL_AUTO_INHERITED = 0x0400
SE_SACL_AUTO_INHERITED = 0x0800
SE_DACL_PROTECTED = 0x1000
SE_SACL_PROTECTED = 0x2000
SE_SELF_RELATIVE = 0x8000

FULL = 0x001F01FF
MODIFY = 0x001301BF
READ_EXECUTE = 0x001200A9
READ = 0x00120089
WRITE = 0x00100116
GENERIC_ALL = 0x10000000
DELETE = 0x00010000
NO_WRITE_UP = 0x00000001

EVERYONE = "S-1-1-0"
CREATOR_OWNER = "S-1-3-0"
CREATOR_GROUP = "S-1-3-1"
OWNER_RIGHTS = "S-1-3-4"
AUTHENTICATED_USERS = "S-1-5-11"
SYSTEM = "S-1-5-18"
ADMINISTRATORS = "S-1-5-32-544"
USERS = "S-1-5-32-545"
TRUSTED_INSTALLER = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
HIGH_INTEGRITY = "S-1-16-12288"
LOW_INTEGRITY = "S-1-16-4096"
# A made-up machine: its SID prefix and three of its accounts.
MACHINE = "S-1-5-21-1004336348-1177238915-682003330"
KEN = MACHINE + "-1001"
ALICE = MACHINE + "-1002"
NONE_GROUP = MACHINE + "-513"

Ace = tuple[int, int, int, str]  # (type, flags, mask, SID text); or raw ACE bytes


def sid_bytes(text: str) -> bytes:
    """'S-1-5-32-544' -> the binary SID."""
    parts = text.split("-")
    revision, authority = int(parts[1]), int(parts[2])
    subs = [int(part) for part in parts[3:]]
    return struct.pack("<BB", revision, len(subs)) + authority.to_bytes(6, "big") + struct.pack(
        f"<{len(subs)}I", *subs
    )


def raw_acl(aces: Iterable[Ace | bytes]) -> bytes:
    """An ACL (revision 2) of simple ACEs: header (type, flags, size), mask, SID."""
    body = b""
    count = 0
    for ace in aces:
        if isinstance(ace, bytes):
            body += ace
        else:
            ace_type, flags, mask, sid = ace
            sid_raw = sid_bytes(sid)
            body += struct.pack("<BBHI", ace_type, flags, 8 + len(sid_raw), mask) + sid_raw
        count += 1
    return struct.pack("<BBHHH", 2, 0, 8 + len(body), count, 0) + body


def raw_sd(
    owner_sid_str: str | None,
    group_sid_str: str | None,
    dacl: Sequence[Ace | bytes] | None = (),
    control: int = SE_SELF_RELATIVE | SE_DACL_PRESENT,
    sacl: Sequence[Ace | bytes] | None = None,
) -> bytes:
    """A self-relative descriptor laid out header, owner, group, SACL, DACL.

    ``dacl=None`` leaves the DACL offset 0: with SE_DACL_PRESENT in ``control`` (the
    default) that is a NULL DACL, without it there is no DACL. A list (even empty)
    sets SE_DACL_PRESENT; ``sacl`` likewise sets SE_SACL_PRESENT.
    """
    parts = b""
    offset = 20

    def place(blob: bytes) -> int:
        nonlocal parts, offset
        at = offset
        parts += blob
        offset += len(blob)
        return at

    off_owner = place(sid_bytes(owner_sid_str)) if owner_sid_str else 0
    off_group = place(sid_bytes(group_sid_str)) if group_sid_str else 0
    off_sacl = off_dacl = 0
    if sacl is not None:
        control |= SE_SACL_PRESENT
        off_sacl = place(raw_acl(sacl))
    if dacl is not None:
        control |= SE_DACL_PRESENT
        off_dacl = place(raw_acl(dacl))
    header = struct.pack("<BBHIIII", 1, 0, control, off_owner, off_group, off_sacl, off_dacl)
    return header + parts


# --- the spec -----------------------------------------------------------------


@dataclass(frozen=True)
class Dir:
    path: str  # "" is the root directory
    sd: bytes | None = None


@dataclass(frozen=True)
class File:
    path: str
    data: bytes = b""
    sd: bytes | None = None
    streams: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    """Another name for the file ``target`` (created earlier in the spec)."""

    path: str
    target: str


@dataclass(frozen=True)
class Deleted:
    """A file that is created, then removed once everything else exists."""

    path: str
    data: bytes = b""


Entry = Dir | File | Link | Deleted


@dataclass
class Made:
    path: str  # on the volume, "/"-separated, no leading "/"; "" is the root
    inode: int  # MFT entry number
    is_dir: bool
    sd: bytes  # what system.ntfs_acl returned after building
    explicit_sd: bool  # sd was given in the spec (and came back byte for byte)
    data: bytes = b""
    streams: dict[str, bytes] = field(default_factory=dict)
    names: tuple[str, ...] = ()  # every path of this inode (hard links), sorted


@dataclass
class Manifest:
    image: Path
    partition_offset: int  # bytes; 0 for a bare volume
    entries: dict[str, Made]  # path -> what is there (each link name has its own entry)
    deleted: dict[str, int]  # path -> the MFT entry number it had

    @property
    def sector_offset(self) -> int:
        """For The Sleuth Kit's ``-o``."""
        return self.partition_offset // ntfs3g.SECTOR

    def sds(self) -> dict[str, bytes]:
        return {path: made.sd for path, made in self.entries.items()}

    def distinct_sds(self) -> set[bytes]:
        return {made.sd for made in self.entries.values()}

    def inodes(self) -> dict[int, list[str]]:
        by_inode: dict[int, list[str]] = {}
        for path, made in self.entries.items():
            by_inode.setdefault(made.inode, []).append(path)
        return by_inode


def build_volume(
    image: str | os.PathLike[str],
    spec: Iterable[Entry],
    *,
    size: int = 64 << 20,
    label: str | None = None,
    partition_offset: int | None = None,
    inherit: bool = False,
    cluster_size: int | None = None,
) -> Manifest:
    """Make ``image`` (make_image), mount it, create ``spec``, read it all back.

    ``cluster_size`` (bytes, bare volumes only) formats with ``mkntfs -c`` instead."""
    image = Path(image)
    if cluster_size is None:
        ntfs3g.make_image(image, size, label=label, partition_offset=partition_offset)
    else:
        with open(image, "wb") as fh:
            fh.truncate(size)
        argv = ["mkntfs", "-F", "-Q", "-q", "-c", str(cluster_size)] + (["-L", label] if label else [])
        subprocess.run([*argv, str(image)], check=True, capture_output=True)
    offset = partition_offset or 0
    spec = list(spec)
    explicit: dict[str, bytes] = {}
    streams: dict[str, dict[str, bytes]] = {}
    data: dict[str, bytes] = {}
    deleted: dict[str, int] = {}
    made_dirs: set[str] = {""}
    with ntfs3g.mounted(image, offset=offset, inherit=inherit) as root:

        def parents(path: str) -> None:
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                sub = "/".join(parts[:depth])
                if sub not in made_dirs:
                    (root / sub).mkdir(exist_ok=True)
                    made_dirs.add(sub)

        for entry in spec:
            if isinstance(entry, Deleted):
                continue
            parents(entry.path)
            target = root / entry.path
            if isinstance(entry, Dir):
                if entry.path not in made_dirs:
                    target.mkdir()
                    made_dirs.add(entry.path)
            elif isinstance(entry, File):
                target.write_bytes(entry.data)
                data[entry.path] = entry.data
                for name, content in entry.streams.items():
                    with open(f"{target}:{name}", "wb") as fh:
                        fh.write(content)
                streams[entry.path] = dict(entry.streams)
            elif isinstance(entry, Link):
                os.link(root / entry.target, target)
                data[entry.path] = data.get(entry.target, b"")
                streams[entry.path] = streams.get(entry.target, {})
            else:
                raise TypeError(f"not a spec entry: {entry!r}")
            sd = getattr(entry, "sd", None)
            if sd is not None:
                ntfs3g.set_ntfs_acl(target, sd)
                explicit[entry.path] = sd
        for entry in spec:
            if isinstance(entry, Deleted):
                parents(entry.path)
                target = root / entry.path
                target.write_bytes(entry.data)
                deleted[entry.path] = os.stat(target).st_ino
                target.unlink()
        entries = _read_back(root, made_dirs, data, streams, explicit)
    return Manifest(image=image, partition_offset=offset, entries=entries, deleted=deleted)


def _read_back(
    root: Path,
    dirs: set[str],
    data: dict[str, bytes],
    streams: dict[str, dict[str, bytes]],
    explicit: dict[str, bytes],
) -> dict[str, Made]:
    entries: dict[str, Made] = {}
    for path in sorted(dirs | set(data)):
        target = root / path if path else root
        sd = ntfs3g.get_ntfs_acl(target)
        entries[path] = Made(
            path=path,
            inode=os.stat(target).st_ino,
            is_dir=path in dirs,
            sd=sd,
            explicit_sd=path in explicit,
            data=data.get(path, b""),
            streams=streams.get(path, {}),
        )
    names: dict[int, list[str]] = {}
    for path, made in entries.items():
        names.setdefault(made.inode, []).append(path)
    for made in entries.values():
        made.names = tuple(sorted(names[made.inode]))
    # a descriptor set on one name of an inode is the descriptor of all its names
    by_inode_sd = {entries[p].inode: sd for p, sd in explicit.items()}
    for made in entries.values():
        if made.inode in by_inode_sd:
            made.explicit_sd = True
            if made.sd != by_inode_sd[made.inode]:
                raise AssertionError(
                    f"ntfs-3g returned another descriptor for {made.path}: "
                    f"{made.sd.hex()} != {by_inode_sd[made.inode].hex()}"
                )
    return entries


# --- the feature volume -------------------------------------------------------------

DEEP_LEVELS = 30
SHARED_FILES = 200
SHARED_SDS = 20
LINK_COUNT = 60  # names of the one hard-linked file, each in its own directory
STREAM_COUNT = 40

LINK_TARGET = "links/dir00/linked file 00.bin"
STREAM_FILE = "streams/forty streams.txt"
DELETED_FILE = "trash/deleted file.txt"
DEEP_DIR = "/".join(f"level{n:02d}" for n in range(1, DEEP_LEVELS + 1))


def _shared_sd(k: int) -> bytes:
    """Descriptor number k of the 20 shared ones: some over 128 bytes, some small."""
    user = f"{MACHINE}-{1100 + k}"
    aces: list[Ace] = [
        (ACCESS_ALLOWED, INHERITED, FULL, SYSTEM),
        (ACCESS_ALLOWED, INHERITED, FULL, ADMINISTRATORS),
        (ACCESS_ALLOWED, 0, MODIFY if k % 2 else READ_EXECUTE, user),
    ]
    aces += [(ACCESS_ALLOWED, INHERITED, READ, f"{MACHINE}-{2000 + j}") for j in range(k % 7)]
    return raw_sd(user, NONE_GROUP, aces, control=SE_SELF_RELATIVE | SE_DACL_AUTO_INHERITED)


def feature_sds() -> dict[str, bytes]:
    """The named descriptors of the feature volume (the shared ones as shared00..19)."""
    sds = {
        "root": raw_sd(
            ADMINISTRATORS,
            SYSTEM,
            [
                (ACCESS_ALLOWED, OBJECT_INHERIT | CONTAINER_INHERIT, FULL, SYSTEM),
                (ACCESS_ALLOWED, OBJECT_INHERIT | CONTAINER_INHERIT, FULL, ADMINISTRATORS),
                (ACCESS_ALLOWED, OBJECT_INHERIT | CONTAINER_INHERIT, READ_EXECUTE, USERS),
                (ACCESS_ALLOWED, CONTAINER_INHERIT | INHERIT_ONLY, GENERIC_ALL, CREATOR_OWNER),
            ],
        ),
        "null_dacl": raw_sd(KEN, NONE_GROUP, None),
        "empty_dacl": raw_sd(KEN, NONE_GROUP, []),
        "no_dacl": raw_sd(KEN, NONE_GROUP, None, control=SE_SELF_RELATIVE),
        "protected": raw_sd(
            ADMINISTRATORS,
            SYSTEM,
            [(ACCESS_ALLOWED, 0, FULL, ADMINISTRATORS), (ACCESS_ALLOWED, 0, READ, KEN)],
            control=SE_SELF_RELATIVE | SE_DACL_PROTECTED,
        ),
        "deny": raw_sd(
            KEN,
            NONE_GROUP,
            [
                (ACCESS_DENIED, 0, WRITE | DELETE, ALICE),
                (ACCESS_DENIED, 0, FULL, f"{MACHINE}-1003"),
                (ACCESS_ALLOWED, 0, FULL, KEN),
                (ACCESS_ALLOWED, 0, READ, EVERYONE),
            ],
        ),
        "inherited": raw_sd(
            KEN,
            NONE_GROUP,
            [
                (ACCESS_ALLOWED, 0, MODIFY, ALICE),
                (ACCESS_DENIED, INHERITED, DELETE, f"{MACHINE}-1004"),
                (ACCESS_ALLOWED, INHERITED, FULL, SYSTEM),
                (ACCESS_ALLOWED, INHERITED, FULL, ADMINISTRATORS),
                (ACCESS_ALLOWED, INHERITED, FULL, KEN),
                (ACCESS_ALLOWED, INHERITED | OBJECT_INHERIT | CONTAINER_INHERIT, READ, USERS),
            ],
            control=SE_SELF_RELATIVE | SE_DACL_AUTO_INHERITED,
        ),
        "sacl_label": raw_sd(
            ADMINISTRATORS,
            SYSTEM,
            [(ACCESS_ALLOWED, 0, FULL, SYSTEM), (ACCESS_ALLOWED, 0, READ_EXECUTE, AUTHENTICATED_USERS)],
            sacl=[
                (SYSTEM_MANDATORY_LABEL, 0, NO_WRITE_UP, HIGH_INTEGRITY),
                (SYSTEM_AUDIT, SUCCESSFUL_ACCESS | FAILED_ACCESS, DELETE, EVERYONE),
            ],
        ),
        "placeholders": raw_sd(
            TRUSTED_INSTALLER,
            SYSTEM,
            [
                (ACCESS_ALLOWED, OBJECT_INHERIT | CONTAINER_INHERIT | INHERIT_ONLY, GENERIC_ALL, CREATOR_OWNER),
                (ACCESS_ALLOWED, OBJECT_INHERIT | CONTAINER_INHERIT | INHERIT_ONLY, READ, CREATOR_GROUP),
                (ACCESS_ALLOWED, 0, READ, OWNER_RIGHTS),
                (ACCESS_ALLOWED, 0, FULL, TRUSTED_INSTALLER),
            ],
        ),
    }
    for k in range(SHARED_SDS):
        sds[f"shared{k:02d}"] = _shared_sd(k)
    return sds


def long_names() -> list[str]:
    """Names of 255 UTF-16 units and names with non-BMP characters.

    In a 1 KiB MFT record a $FILE_NAME this long always spans byte 510, where the
    update sequence (fixup) of the first sector sits; the emoji runs shifted by
    0-3 units put a surrogate pair across that spot in some of them.
    """
    names = [
        "A" * 255,
        "漢" * 255,  # 765 bytes of UTF-8, 255 UTF-16 units
        "\U0001F600" * 127 + "a",  # 255 units: 127 surrogate pairs
        "Résumé – naïve café ✓ \U0001D11E \U0001F9D1\u200D\U0001F4BB.txt",
    ]
    for shift in range(4):
        run = (255 - shift) // 2
        names.append("x" * shift + "\U0001F4C1" * run)
    names += ["m" * n + "\U0001F680" for n in range(130, 140)]  # rocket near unit 134
    return names


def feature_spec() -> list[Entry]:
    sds = feature_sds()
    spec: list[Entry] = [Dir("", sd=sds["root"])]
    # 30 levels of directories, a file at the bottom
    spec.append(Dir(DEEP_DIR, sd=sds["inherited"]))
    spec.append(File(DEEP_DIR + "/bottom.txt", b"deep\n", sd=sds["protected"]))
    # 200 files over 10 directories sharing 20 descriptors
    for i in range(SHARED_FILES):
        payload = (f"file {i}\n" * (1 + i % 3)).encode()
        if i % 50 == 7:
            payload = bytes(range(256)) * 64  # 16 KiB: non-resident data
        spec.append(File(f"shared/d{i // 20:02d}/file{i:03d}.txt", payload, sd=sds[f"shared{i % SHARED_SDS:02d}"]))
    # one file, 60 names in 60 directories (an attribute list and extension records)
    spec.append(File(LINK_TARGET, b"linked\n", sd=sds["deny"]))
    for n in range(1, LINK_COUNT):
        spec.append(Link(f"links/dir{n:02d}/linked file {n:02d}.bin", target=LINK_TARGET))
    # 40 named streams on one file
    streams = {f"stream{n:02d}": f"stream {n}\n".encode() for n in range(1, STREAM_COUNT)}
    streams["Zone.Identifier"] = b"[ZoneTransfer]\r\nZoneId=3\r\n"
    spec.append(File(STREAM_FILE, b"main stream\n", sd=sds["sacl_label"], streams=streams))
    # long and non-BMP names
    for n, name in enumerate(long_names()):
        spec.append(File(f"names/{name}", f"name {n}\n".encode(), sd=sds["inherited"] if n % 2 else None))
    # one file or directory per special descriptor
    for key in ("null_dacl", "empty_dacl", "no_dacl", "protected", "deny", "inherited", "sacl_label", "placeholders"):
        spec.append(File(f"acl/{key}.txt", f"{key}\n".encode(), sd=sds[key]))
    spec.append(Dir("acl/protected dir", sd=sds["protected"]))
    spec.append(Dir("acl/null dacl dir", sd=sds["null_dacl"]))
    spec.append(File("acl/protected dir/inside.txt", b"inside\n"))
    spec.append(Deleted(DELETED_FILE, b"this file was deleted\n"))
    return spec


def build_feature_volume(image: str | os.PathLike[str], **options) -> Manifest:
    return build_volume(image, feature_spec(), label="FEATURES", **options)
