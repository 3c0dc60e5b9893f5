"""Who else holds an image file or block device: mounts, loop devices, open files.

Everything is compared by device and inode (or device number), never by path: an
image mounted through a hard link, a bind mount or another spelling of its path is
the same file, and a loop device attached to it (mounted or not) writes to it. A
fix that wrote while any of these held the volume could be silently undone by the
other's flush.

Sources (Linux): ``/proc/self/mountinfo`` (each mount's device number and source),
``/sys/block/loop*`` and the loop driver's ``LOOP_GET_STATUS64`` (the backing
file's device and inode, as ``losetup --list`` shows them), ``/sys/dev/block``
(partitions of a device) and ``/proc/*/fd`` (processes with the file open).
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

LOOP_GET_STATUS64 = 0x4C05
# struct loop_info64: lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit (u64 each),
# lo_number, lo_encrypt_type, lo_encrypt_key_size, lo_flags (u32 each), three name/key
# arrays (64 + 64 + 32 bytes), lo_init[2] (u64): 232 bytes.
_LOOP_INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")


@dataclass(frozen=True)
class Identity:
    """What a path is, by number: the file's (device, inode), and for a block device its
    device number."""

    dev: int
    ino: int
    rdev: int | None  # a block device's own number

    @classmethod
    def of(cls, path: str | os.PathLike) -> "Identity | None":
        try:
            info = os.stat(path)
        except OSError:
            return None
        return cls(info.st_dev, info.st_ino, info.st_rdev if stat.S_ISBLK(info.st_mode) else None)

    def same_file(self, other: "Identity | None") -> bool:
        return other is not None and (other.dev, other.ino) == (self.dev, self.ino)


@dataclass(frozen=True)
class Holders:
    mounts: tuple[str, ...]  # mount points of the volume (directly or through a loop device)
    loop_devices: tuple[str, ...]  # loop devices backed by it, mounted or not
    processes: tuple[str, ...]  # "PID (command)" of other processes that have it open

    def __bool__(self) -> bool:
        return bool(self.mounts or self.loop_devices or self.processes)


def holders(path: str | os.PathLike, *, processes: bool = True) -> Holders:
    """Every mount, loop device and (with ``processes``) other process holding ``path``."""
    me = Identity.of(path)
    if me is None:
        return Holders((), (), ())
    loops = loop_devices_of(me)
    devices = set()
    if me.rdev is not None:
        devices |= _with_partitions(me.rdev)
    for loop in loops:
        number = Identity.of(loop)
        if number is not None and number.rdev is not None:
            devices |= _with_partitions(number.rdev)
    mounts = tuple(_mounts_of(me, devices))
    open_by = tuple(_processes_with(me, loops)) if processes else ()
    return Holders(mounts, tuple(loops), open_by)


def mounted_at(path: str | os.PathLike) -> list[str]:
    """Mount points where ``path`` (an image file or block device) is mounted: directly,
    through a hard link or another name, or through a loop device backed by it."""
    return list(holders(path, processes=False).mounts)


def loop_devices_of(me: Identity) -> list[str]:
    """Loop devices (``/dev/loopN``) whose backing file is ``me`` (or whose backing block
    device is ``me``), mounted or not."""
    found = []
    for entry in sorted(Path("/sys/block").glob("loop*")):
        if not (entry / "loop").is_dir():
            continue  # not attached
        device = f"/dev/{entry.name}"
        backing = _loop_backing(device, entry)
        if backing is not None and (me.same_file(backing) or (me.rdev is not None and backing.rdev == me.rdev)):
            found.append(device)
    return found


def _loop_backing(device: str, entry: Path) -> Identity | None:
    """The backing file of a loop device as the driver knows it (device and inode, held
    even when its path was renamed or removed); its sysfs path where the device cannot
    be opened."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        fd = None
    if fd is not None:
        try:
            raw = fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(_LOOP_INFO64.size))
            lo_device, lo_inode, lo_rdevice = _LOOP_INFO64.unpack(raw)[:3]
            return Identity(lo_device, lo_inode, lo_rdevice or None)
        except OSError:
            pass
        finally:
            os.close(fd)
    try:
        name = (entry / "loop" / "backing_file").read_text().strip()
    except OSError:
        return None
    return Identity.of(name.removesuffix(" (deleted)"))


def _with_partitions(rdev: int) -> set[str]:
    """"MAJOR:MINOR" of a block device and of each of its partitions (a mount of
    /dev/loop0p1 or /dev/sdb1 holds /dev/loop0 or /dev/sdb)."""
    own = f"{os.major(rdev)}:{os.minor(rdev)}"
    numbers = {own}
    node = Path("/sys/dev/block") / own
    try:
        children = list(node.resolve().iterdir())
    except OSError:
        return numbers
    for child in children:
        if (child / "partition").exists():
            try:
                numbers.add((child / "dev").read_text().strip())
            except OSError:
                continue
    return numbers


def _mounts_of(me: Identity, devices: set[str]) -> list[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        if " - " not in line:
            continue
        fields, after = line.split(" - ", 1)[0].split(), line.split(" - ", 1)[1].split()
        mount_point, major_minor = unescape(fields[4]), fields[2]
        source = unescape(after[1]) if len(after) > 1 else ""
        if major_minor in devices:  # a block device (or partition) we hold: fuseblk, ext4, ...
            found.append(mount_point)
        elif source.startswith("/"):  # ntfs-3g names the image or device it serves
            other = Identity.of(source)
            if me.same_file(other) or (other is not None and other.rdev is not None
                                       and f"{os.major(other.rdev)}:{os.minor(other.rdev)}" in devices):
                found.append(mount_point)
    return found


def _processes_with(me: Identity, loops: list[str]) -> list[str]:
    """Other processes with the file (or a loop device over it) open: a virtual machine,
    an ntfs-3g driver mounted through a path since removed, a copy in progress."""
    wanted = {(me.dev, me.ino)}
    for loop in loops:
        number = Identity.of(loop)
        if number is not None:
            wanted.add((number.dev, number.ino))
    own = os.getpid()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == own:
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                info = os.stat(fd)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in wanted:
                found.append(f"{proc.name} ({_command(proc)})")
                break
    return found


def _command(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return "?"


def unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit() and len(text[i + 1:i + 4]) == 3:
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mount_source(mount_point: str | os.PathLike) -> str | None:
    """The source (device or image path) of the mount at ``mount_point``, from mountinfo."""
    wanted = os.fspath(mount_point)
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if " - " not in line:
            continue
        fields, after = line.split(" - ", 1)[0].split(), line.split(" - ", 1)[1].split()
        if unescape(fields[4]) == wanted and len(after) > 1:
            return unescape(after[1])
    return None


def is_mounted(mount_point: str | os.PathLike) -> bool:
    """Whether anything is mounted at ``mount_point``. Unlike ``os.path.ismount`` this is
    true for a dead FUSE mount too (its driver killed: "Transport endpoint is not
    connected"), which still has to be taken down."""
    return mount_source(mount_point) is not None or os.path.ismount(mount_point)
