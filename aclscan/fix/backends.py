"""The two ways the fixer reads and writes descriptors, behind one small interface.

* ``fuse``: the volume mounted with ntfs-3g, ``system.ntfs_acl`` read and set per
  path (the reference: the driver a user would mount the volume with). ntfs-3g
  answers one request at a time, but the FUSE round trips of several threads
  overlap: with 4 threads about twice the rate of one.
* ``lib``: the same ntfs-3g code called in-process through libntfs-3g
  (``libntfs3g``), by MFT entry: no FUSE round trip, no path lookup. One thread
  (the library is not thread-safe).

Either way a file is named by its path *and* its MFT reference (entry, sequence),
and ``open`` gives a handle that reads, writes and reads back that one file until
it is closed (the lib backend opens the MFT record once for all three: opening and
closing a record costs as much as reading its descriptor). :class:`RecordReused`
is raised where path and reference no longer agree (the path names another entry,
or the entry holds another file), so nothing is written to a file the scan did not
see.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aclscan.fix import libntfs3g, ntfs3g
from aclscan.fix.libntfs3g import RecordReused

FUSE, LIB = "fuse", "lib"
BACKENDS = (LIB, FUSE)
DEFAULT_BACKEND = LIB  # measured: see README "Fixing offline" (bench/bench_fix.py)
IO_THREADS = 4  # FUSE only: 8 gain little more on 2 cores


class FuseVolume:
    """The volume mounted with ntfs-3g at ``mount_point``."""

    name = FUSE

    def __init__(self, mount_point: Path, pool: ThreadPoolExecutor):
        self.mount_point = mount_point
        self._pool = pool

    def map(self, function: Callable, items: Iterable) -> Iterator:
        return self._pool.map(function, items)

    def _path(self, path: str) -> Path:
        return self.mount_point if path == "/" else self.mount_point / path.lstrip("/")

    def open(self, path: str, entry: int, sequence: int) -> "_MountedFile":
        return _MountedFile(self._path(path), path, entry)


class _MountedFile:
    """A file of the mounted volume by path (every read checks it is still the entry)."""

    def __init__(self, on_mount: Path, path: str, entry: int):
        self._on_mount, self._path, self._entry = on_mount, path, entry

    def read(self) -> bytes:
        current = ntfs3g.get_ntfs_acl(self._on_mount)
        # ntfs-3g gives the MFT entry as the inode number: another file now has this path.
        if self._entry is not None and os.lstat(self._on_mount).st_ino != self._entry:
            raise RecordReused(0, f"{self._path} names another MFT entry now")
        return current

    def write(self, raw: bytes) -> None:
        ntfs3g.set_ntfs_acl(self._on_mount, raw)

    def close(self) -> None:
        pass


class LibVolume:
    """The volume opened in-process through libntfs-3g."""

    name = LIB

    def __init__(self, volume: libntfs3g.Volume):
        self._volume = volume

    def map(self, function: Callable, items: Iterable) -> Iterator:
        return map(function, items)

    def open(self, path: str, entry: int, sequence: int) -> libntfs3g.Inode:
        return self._volume.inode(entry, sequence)


@contextlib.contextmanager
def opened(backend: str, target: str, offset: int, noted: Callable[[str | None, str | None], None]):
    """The volume at ``offset`` in ``target``, writable through ``backend``. ``noted`` hears
    (mount point, loop device) as soon as they exist, for whoever must clean up after a
    SIGKILL; everything is unmounted, flushed and detached on the way out."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown fix backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend == FUSE:
        from aclscan.fix.holders import mount_source

        with ntfs3g.mounted(target, offset=offset) as mount_point, ThreadPoolExecutor(IO_THREADS) as pool:
            source = mount_source(mount_point) or ""
            noted(str(mount_point), source if source.startswith("/dev/loop") else None)
            yield FuseVolume(mount_point, pool)
        return
    with contextlib.ExitStack() as stack:
        device = target
        if offset:
            device = stack.enter_context(ntfs3g.loop_device(Path(target), offset, readonly=False))
        noted(None, device if device != target else None)
        yield LibVolume(stack.enter_context(libntfs3g.opened(device)))
