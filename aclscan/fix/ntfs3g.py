"""The one module that talks to ntfs-3g, mkntfs and the loop driver.

aclscan reads images through The Sleuth Kit and never mounts them. Two things do
need a writing NTFS driver: the offline fixer, which rewrites descriptors through
ntfs-3g so that ``$Secure`` (``$SDS``, ``$SII``, ``$SDH``) stays consistent, and
the tests and benchmarks, which build volumes. Both come through here.

Facts this module relies on (ntfs-3g 2022.10):

* ``system.ntfs_acl`` is the file's self-relative security descriptor, read and
  written verbatim. Setting it stores the descriptor in ``$Secure`` (shared with
  every file whose descriptor has the same bytes) and puts its security id in
  ``$STANDARD_INFORMATION``.
* Without the ``permissions`` option and a user mapping, ntfs-3g applies no access
  control and never rewrites a descriptor; a file it creates gets security id 0
  and a legacy ``$SECURITY_DESCRIPTOR`` attribute granting Everyone full control.
  With ``permissions,inherit`` and a user mapping file, new files get a
  descriptor inherited from their parent directory (ntfs-3g's reading of the
  Windows rules: inherited ACEs do not carry INHERITED_ACE) through ``$Secure``.
* ntfs-3g has no ``offset=`` option (it ignores options it does not know), so a
  partition inside a disk image is mounted through a read-only or read-write loop
  device set up with ``losetup --offset``.
* ``streams_interface=windows`` exposes named data streams as ``file:stream``;
  ``ntfs.streams.list`` lists them (NUL-separated).
* After ``fusermount -u`` the driver may still be writing; the image is complete
  only once the ntfs-3g process has exited, so it runs in the foreground
  (``no_detach``) as our child and we wait for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from aclscan.errors import MountError, ToolMissing
from aclscan.fix.holders import is_mounted

__all__ = [
    "ACL_XATTR",
    "SECTOR",
    "get_ntfs_acl",
    "list_streams",
    "make_image",
    "mounted",
    "ntfs3g_available",
    "release_mount",
    "set_ntfs_acl",
]

ACL_XATTR = "system.ntfs_acl"
STREAMS_XATTR = "ntfs.streams.list"
SECTOR = 512

# Options every mount gets. noatime: reading a file to check it must not change it.
BASE_OPTIONS = ("no_detach", "streams_interface=windows", "noatime")

MOUNT_PREFIX = "aclscan-ntfs3g-"  # our temporary mount points: <tmp>/aclscan-ntfs3g-XXXX/mnt
MOUNT_TIMEOUT = 20.0  # seconds for the mount point to appear
EXIT_TIMEOUT = 600.0  # seconds for ntfs-3g to flush and exit after unmounting
UNMOUNT_TRIES = 20
UNMOUNT_PAUSE = 0.1

# With ``inherit=True`` ntfs-3g needs a user mapping to enable its security code.
# The man page's "single default mapping" form will do: ntfs-3g maps root to
# BUILTIN\Administrators (S-1-5-32-544) whatever the file says, and the
# descriptors that matter are inherited from the parents.
DEFAULT_USER_MAPPING = "::S-1-5-21-3623811015-3361044348-30300820-10000\n"


def _which(*names: str) -> str | None:
    """First of ``names`` on PATH (also the sbin directories a non-root PATH lacks)."""
    path = os.environ.get("PATH", os.defpath) + ":/usr/local/sbin:/usr/sbin:/sbin"
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def _need(*names: str) -> str:
    found = _which(*names)
    if found is None:
        raise ToolMissing(f"{names[0]} not found (install ntfs-3g / util-linux / fuse)")
    return found


def ntfs3g_available() -> str | None:
    """None when volumes can be made and mounted here, else the reason why not.

    Meant for ``pytest.skip(reason)``: checks mkntfs, ntfs-3g, fusermount,
    /dev/fuse and that this process may mount (root, or a setuid ntfs-3g).
    """
    for names in (("mkntfs",), ("ntfs-3g",), ("fusermount", "fusermount3")):
        if _which(*names) is None:
            return f"{names[0]} not found (Debian: apt-get install ntfs-3g fuse3)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (FUSE unavailable, e.g. in an unprivileged container)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable by this user"
    ntfs3g = _which("ntfs-3g")
    assert ntfs3g is not None
    if os.geteuid() != 0 and not os.stat(ntfs3g).st_mode & stat.S_ISUID:
        return "ntfs-3g mounts image files only as root (or when installed setuid root)"
    return None


# --- extended attributes ----------------------------------------------------

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.getxattr.restype = ctypes.c_ssize_t


# One reusable buffer per thread, larger than any descriptor (two ACLs of at most
# 64 KiB each, plus the header and SIDs): one getxattr call per file instead of two.
_XATTR_BUFFER_SIZE = 1 << 18
_buffers = threading.local()


def _getxattr(path: str | os.PathLike[str], name: str) -> bytes:
    """getxattr(2) into a buffer big enough for any descriptor.

    ``os.getxattr`` first tries a 128-byte buffer and expects ERANGE when that is
    too small; ntfs-3g answers EIO instead, so larger values cannot be read that way.
    Should the value not fit (ERANGE or ntfs-3g's EIO), it is sized by a call with
    no buffer first.
    """
    cpath = os.fsencode(path)
    cname = name.encode()
    buf = getattr(_buffers, "buffer", None)
    if buf is None:
        buf = _buffers.buffer = ctypes.create_string_buffer(_XATTR_BUFFER_SIZE)
    got = _libc.getxattr(cpath, cname, buf, _XATTR_BUFFER_SIZE)
    if got >= 0:
        return buf.raw[:got]
    err = ctypes.get_errno()
    if err not in (errno.ERANGE, errno.EIO):
        raise OSError(err, os.strerror(err), os.fspath(path))
    for _ in range(3):  # the value may grow between the two calls
        size = _libc.getxattr(cpath, cname, None, 0)
        if size < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), os.fspath(path))
        sized = ctypes.create_string_buffer(max(size, 1))
        got = _libc.getxattr(cpath, cname, sized, size)
        if got >= 0:
            return sized.raw[:got]
        err = ctypes.get_errno()
        if err != errno.ERANGE:
            raise OSError(err, os.strerror(err), os.fspath(path))
    raise OSError(errno.ERANGE, os.strerror(errno.ERANGE), os.fspath(path))


def get_ntfs_acl(path: str | os.PathLike[str]) -> bytes:
    """The self-relative security descriptor of ``path`` on an ntfs-3g mount."""
    return _getxattr(path, ACL_XATTR)


def set_ntfs_acl(path: str | os.PathLike[str] | int, sd_bytes: bytes) -> None:
    """Replace the security descriptor of ``path`` (or open fd) with ``sd_bytes``.

    ``sd_bytes`` is self-relative; ntfs-3g files it in $Secure, sharing it with
    every file whose descriptor has the same bytes.

    ntfs-3g rejects a descriptor it finds malformed with EINVAL (raised as OSError).
    """
    os.setxattr(path, ACL_XATTR, bytes(sd_bytes))


def list_streams(path: str | os.PathLike[str]) -> list[str]:
    """Names of the named data streams of ``path`` (needs streams_interface=windows)."""
    raw = _getxattr(path, STREAMS_XATTR)
    return [name for name in raw.decode("utf-8").split("\0") if name]


# --- mounting -----------------------------------------------------------------


def _run(argv: list[str], what: str) -> str:
    """Run a helper program; its stdout, or MountError with its last stderr line."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ToolMissing(f"{argv[0]} not found") from None
    if done.returncode != 0:
        raise MountError(f"{what}: {_last_line(done.stderr or done.stdout)}")
    return done.stdout


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


@contextlib.contextmanager
def loop_device(image: Path, offset: int, readonly: bool) -> Iterator[str]:
    losetup = _need("losetup")
    argv = [losetup, "--find", "--show", "--offset", str(offset)]
    if readonly:
        argv.append("--read-only")
    device = _run([*argv, str(image)], f"losetup {image} at offset {offset}").strip()
    try:
        yield device
    finally:
        detach_loop_device(device)


def detach_loop_device(device: str) -> bool:
    """losetup -d, retried while the device is still busy (a driver exiting)."""
    losetup = _need("losetup")
    for _ in range(UNMOUNT_TRIES):
        if subprocess.run([losetup, "-d", device], capture_output=True).returncode == 0:
            return True
        time.sleep(UNMOUNT_PAUSE)
    return False


def _unmount(mount_point: str) -> bool:
    """fusermount -u (else umount) with a short retry while the mount is busy."""
    commands = []
    fusermount = _which("fusermount", "fusermount3")
    if fusermount:
        commands.append([fusermount, "-u", mount_point])
    umount = _which("umount")
    if umount:
        commands.append([umount, mount_point])
    for _ in range(UNMOUNT_TRIES):
        if not is_mounted(mount_point):
            return True
        for argv in commands:
            if subprocess.run(argv, capture_output=True).returncode == 0:
                return True
        time.sleep(UNMOUNT_PAUSE)
    return not is_mounted(mount_point)


def _mount_options(readonly: bool, inherit: bool, mapping: Path | None) -> str:
    options = list(BASE_OPTIONS)
    if readonly:
        options.append("ro")
    if inherit:
        assert mapping is not None
        options += ["permissions", "inherit", f"usermapping={mapping}"]
    return ",".join(options)


@contextlib.contextmanager
def mounted(
    image_path: str | os.PathLike[str],
    *,
    offset: int = 0,
    readonly: bool = False,
    inherit: bool = False,
) -> Iterator[Path]:
    """Mount the NTFS volume in ``image_path`` with ntfs-3g; yield the mount point.

    ``offset`` is the byte offset of the volume inside the file (a partition in a
    disk image): the volume is then reached through a loop device. ``readonly``
    mounts ``ro`` (and the loop device read-only). The default options apply no
    access control and keep every descriptor as written. ``inherit=True`` adds
    ``permissions,inherit`` with a default user mapping, so that new files get a
    descriptor inherited from their parent (owner S-1-5-32-544 for
    root) instead of a legacy Everyone descriptor; for building volumes, not for
    fixing them.

    The volume is always unmounted, the driver waited for (it flushes after the
    unmount) and the temporary mount point removed. Raises ToolMissing or
    MountError with the driver's own last message.
    """
    image = Path(image_path)
    ntfs3g = _need("ntfs-3g")
    _need("fusermount", "fusermount3")
    if not image.exists():
        raise MountError(f"cannot mount {image}: no such file")
    if offset < 0:
        raise MountError(f"cannot mount {image}: negative offset {offset}")
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix=MOUNT_PREFIX))
        mount_point = work / "mnt"
        stack.callback(remove_work_folder, mount_point)
        mount_point.mkdir()
        mapping = None
        if inherit:
            mapping = work / "UserMapping"
            mapping.write_text(DEFAULT_USER_MAPPING)
        source = str(image)
        if offset:
            source = stack.enter_context(loop_device(image, offset, readonly))
        log_path = work / "ntfs-3g.log"
        argv = [ntfs3g, "-o", _mount_options(readonly, inherit, mapping), source, str(mount_point)]
        with open(log_path, "w+b") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                _wait_mounted(proc, mount_point, image, log_path)
                yield mount_point
            finally:
                _stop(proc, str(mount_point))


WORK_FILES = ("ntfs-3g.log", "UserMapping")  # what mounted() puts beside the mount point


def remove_work_folder(mount_point: Path) -> None:
    """Remove a work folder of ours (``<tmp>/aclscan-ntfs3g-XXXX/mnt``) once nothing is
    mounted there. Never recursive: a folder with a volume still mounted in it must not
    lose the volume's files."""
    work = mount_point.parent
    if not work.name.startswith(MOUNT_PREFIX) or mount_point.name != "mnt" or is_mounted(mount_point):
        return
    for name in WORK_FILES:
        with contextlib.suppress(FileNotFoundError):
            (work / name).unlink()
    for folder in (mount_point, work):
        with contextlib.suppress(FileNotFoundError):
            folder.rmdir()


_CHATTER = ("Version ", "Requested device", "Mounted ", "Cmdline options", "Mount options",
            "Unmounting", "Ownership and permissions", "Global ownership", "User mapping")


def _driver_message(text: str) -> str:
    """ntfs-3g's reason for failing, on one line, without its banner."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith(_CHATTER)]
    return "; ".join(reasons[:2]) if reasons else "ntfs-3g exited without a message"


def _wait_mounted(proc: subprocess.Popen[bytes], mount_point: Path, image: Path, log: Path) -> None:
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while not os.path.ismount(mount_point):
        if proc.poll() is not None:
            message = _driver_message(log.read_text(errors="replace"))
            raise MountError(f"ntfs-3g cannot mount {image}: {message}")
        if time.monotonic() > deadline:
            raise MountError(f"ntfs-3g cannot mount {image}: no mount after {MOUNT_TIMEOUT:.0f} s")
        time.sleep(0.005)


def _stop(proc: subprocess.Popen[bytes], mount_point: str) -> None:
    """Unmount, then wait for the driver to finish writing the volume and exit."""
    unmounted = _unmount(mount_point)
    if proc.poll() is None and not unmounted:
        proc.terminate()  # a busy mount we could not release: let the driver go
    try:
        proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise MountError(f"ntfs-3g did not exit after unmounting {mount_point}") from None
    if not unmounted:
        _unmount(mount_point)  # a dead driver leaves a stale mount ("transport endpoint")


def release_mount(mount_point: str, timeout: float = EXIT_TIMEOUT) -> bool:
    """Take down a mount whose owner died (a fix killed with SIGKILL): unmount it and
    wait for its ntfs-3g driver to flush and exit. True when it is gone."""
    drivers = [pid for pid, argv in _processes() if argv and os.path.basename(argv[0]) == "ntfs-3g"
               and mount_point in argv]
    if not _unmount(mount_point):
        return False
    deadline = time.monotonic() + timeout
    for pid in drivers:
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            try:  # our own child (same process tree) must be reaped, else it stays a zombie
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                pass
            if _is_zombie(pid):
                break
            time.sleep(0.05)
    return not is_mounted(mount_point)


def _processes() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            yield int(entry.name), [os.fsdecode(a) for a in argv if a]


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# --- formatting -------------------------------------------------------------


def make_image(
    path: str | os.PathLike[str],
    size_bytes: int,
    *,
    label: str | None = None,
    partition_offset: int | None = None,
) -> Path:
    """Create a sparse file of ``size_bytes`` holding a fresh NTFS volume (mkntfs -Q).

    With ``partition_offset`` (bytes, a multiple of 512) the file is a disk image:
    an MBR with one NTFS partition (type 0x07) from that offset to the end, and the
    boot sector records the partition's start (``mkntfs --partition-start``).
    Returns the path. Mount the partition with ``mounted(path, offset=...)``.
    """
    mkntfs = _need("mkntfs")
    image = Path(path)
    start = partition_offset or 0
    if start % SECTOR or start < 0:
        raise MountError(f"partition offset {start} is not a multiple of {SECTOR}")
    if partition_offset is not None and start < SECTOR:
        raise MountError("a partition cannot start in the MBR sector")
    volume_bytes = (size_bytes - start) // SECTOR * SECTOR
    if volume_bytes < 1 << 20:
        raise MountError(f"{size_bytes} bytes is too small for an NTFS volume")
    argv = [mkntfs, "-F", "-Q", "-s", str(SECTOR)]
    if label is not None:
        argv += ["-L", label]
    if partition_offset is None:
        _sparse_file(image, size_bytes)
        _run([*argv, str(image)], f"mkntfs {image}")
        return image
    # mkntfs cannot format at an offset inside a file: format a volume-sized file
    # (telling it where it will live), then copy its data extents into place.
    with tempfile.TemporaryDirectory(prefix="aclscan-mkntfs-", dir=image.parent) as work:
        volume = Path(work) / "volume.img"
        _sparse_file(volume, volume_bytes)
        geometry = ["-p", str(start // SECTOR), "-H", "255", "-S", "63"]
        _run([*argv, *geometry, str(volume)], f"mkntfs {image}")
        _sparse_file(image, size_bytes)
        with open(image, "r+b") as disk:
            disk.write(_mbr(start // SECTOR, volume_bytes // SECTOR))
            _copy_extents(volume, disk, start)
    return image


def _sparse_file(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)


def _mbr(first_lba: int, sectors: int) -> bytes:
    """A classic MBR with one partition of type 0x07 (NTFS/exFAT); LBA only."""
    if first_lba + sectors > 0xFFFFFFFF:
        raise MountError("disk too large for an MBR partition table")
    chs_max = b"\xfe\xff\xff"  # "use the LBA fields"
    entry = struct.pack("<B3sB3sII", 0x00, chs_max, 0x07, chs_max, first_lba, sectors)
    mbr = bytearray(SECTOR)
    mbr[440:444] = struct.pack("<I", 0x41434C53)  # disk signature "SLCA"
    mbr[446:462] = entry
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def _copy_extents(source: Path, target, at: int) -> None:
    """Copy the data (not the holes) of ``source`` into ``target`` at byte ``at``."""
    with open(source, "rb") as src:
        fd = src.fileno()
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:  # ENXIO: only a hole remains
                if exc.errno == errno.ENXIO:
                    break
                raise
            hole = os.lseek(fd, pos, os.SEEK_HOLE)
            src.seek(pos)
            target.seek(at + pos)
            remaining = hole - pos
            while remaining:
                chunk = src.read(min(remaining, 1 << 22))
                target.write(chunk)
                remaining -= len(chunk)
            pos = hole
