"""ntfs-3g's own library, called in-process: descriptors read and written by MFT entry.

The FUSE backend (``ntfs3g.mounted`` and ``system.ntfs_acl``) costs a round trip
through the kernel and ntfs-3g's single request loop per file, plus a path lookup.
This module calls the very functions that request loop calls, from libntfs-3g
(Debian ``libntfs-3g89``), with no FUSE in between:

* ``ntfs_initialize_file_security(device, 0)`` mounts the volume read-write the
  way ``ntfssecaudit`` does (refusing one that is mounted: EBUSY), opens
  ``$Secure`` and builds the default mapping; ``ntfs_leave_file_security``
  unmounts it (flushing everything).
* ``ntfs_inode_open(vol, entry)`` opens a file by its MFT entry: no path lookup;
  the record's sequence number (``ni->mrec``) must be the scan's, so a record
  reused since the scan is refused (ntfs_inode_open itself does not check it).
* ``ntfs_xattr_system_getxattr`` / ``ntfs_xattr_system_setxattr`` with
  ``XATTR_NTFS_ACL`` are what ntfs-3g's ``getxattr``/``setxattr`` handlers call for
  ``system.ntfs_acl``; after a successful set the handler updates the change time
  (``ntfs_inode_update_times(ni, NTFS_UPDATE_CTIME)``), and so do we, then
  ``ntfs_inode_close`` writes the record back.
* While ``$Secure`` is open (``vol->secure_ni``: ntfs_initialize_file_security goes
  on without it), ntfs-3g's ``getsecurityattr`` gives a record whose
  $STANDARD_INFORMATION carries a security id exactly the $SDS descriptor of that
  id, and an id never gets another descriptor. So the first read of each id is
  real and the later ones come from memory (the read costs as much as the open).

Signatures and layouts are those of ntfs-3g 2022.10's headers (``ntfs-3g-dev``:
``security.h``, ``xattrs.h``, ``inode.h``, ``volume.h``, ``layout.h``). The library
is not thread-safe: one volume is used from one thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
from collections.abc import Iterator

from aclscan.errors import MountError, ToolMissing
from aclscan.ntfs.mft import OFS_SEQUENCE_NUMBER
from aclscan.ntfs.records import security_id_in_record

LIBRARY = "ntfs-3g"  # libntfs-3g.so.89 on Debian 12
XATTR_NTFS_ACL = 1  # enum SYSTEMXATTRS (xattrs.h): XATTR_UNMAPPED, XATTR_NTFS_ACL, ...
NTFS_UPDATE_CTIME = 1 << 2  # ntfs_time_update_flags (inode.h)
MFT_REF_MASK = (1 << 48) - 1  # layout.h: MK_MREF(m, s) = (s << 48) | (m & MFT_REF_MASK_CPU)
# struct SECURITY_API { u32 magic; struct SECURITY_CONTEXT security; ... } (security.h):
# the context starts with a pointer (ntfs_volume *vol), so it is aligned to 8 bytes.
SECURITY_CONTEXT_OFFSET = 8
# struct _ntfs_volume (volume.h, x86-64; checked with offsetof against ntfs-3g-dev's
# headers): u32 mft_record_size, ntfs_inode *mft_ni, ntfs_inode *secure_ni. An
# ntfs_inode starts with u64 mft_no.
VOLUME_MFT_RECORD_SIZE_OFFSET, VOLUME_MFT_NI_OFFSET, VOLUME_SECURE_NI_OFFSET = 44, 144, 168
MFT_ENTRY_OF_SECURE = 9
BUFFER_SIZE = 1 << 18  # larger than any descriptor (two ACLs of at most 64 KiB)
RECORD_HEAD = 256  # holds the header and a v3.x $STANDARD_INFORMATION (records are >= 1 KiB)
KNOWN_IDS_MAX = 65536  # descriptors kept by security id (a volume has hundreds to thousands)

_lib = None


def library():
    """The loaded libntfs-3g with the prototypes we use; ToolMissing where it is absent."""
    global _lib
    if _lib is not None:
        return _lib
    name = ctypes.util.find_library(LIBRARY)
    if name is None:
        raise ToolMissing("libntfs-3g not found (Debian: apt-get install libntfs-3g89)")
    lib = ctypes.CDLL(name, use_errno=True)
    lib.ntfs_initialize_file_security.argtypes = [ctypes.c_char_p, ctypes.c_ulong]
    lib.ntfs_initialize_file_security.restype = ctypes.c_void_p
    lib.ntfs_leave_file_security.argtypes = [ctypes.c_void_p]
    lib.ntfs_leave_file_security.restype = ctypes.c_int
    lib.ntfs_inode_open.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    lib.ntfs_inode_open.restype = ctypes.c_void_p
    lib.ntfs_inode_close.argtypes = [ctypes.c_void_p]
    lib.ntfs_inode_close.restype = ctypes.c_int
    lib.ntfs_inode_update_times.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.ntfs_inode_update_times.restype = None
    lib.ntfs_xattr_system_getxattr.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                               ctypes.c_char_p, ctypes.c_size_t]
    lib.ntfs_xattr_system_getxattr.restype = ctypes.c_int
    lib.ntfs_xattr_system_setxattr.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                               ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    lib.ntfs_xattr_system_setxattr.restype = ctypes.c_int
    _lib = lib
    return lib


def available() -> str | None:
    """None when the library can be used, else why not."""
    try:
        library()
    except ToolMissing as exc:
        return str(exc)
    return None


class RecordReused(OSError):
    """An MFT entry whose sequence number is not the scan's: another file now."""


def _record_head(ni: int) -> bytes:
    """The first RECORD_HEAD bytes of the open record, ``ni->mrec`` (inode.h: ``u64 mft_no;
    MFT_RECORD *mrec;`` ...), as read (fixups applied); layout.h puts ``sequence_number``
    at offset 16 of it."""
    return ctypes.string_at(ctypes.c_void_p.from_address(ni + 8).value, RECORD_HEAD)


def _oserror(what: str) -> OSError:
    err = ctypes.get_errno() or 5  # EIO where the library set nothing
    return OSError(err, f"{what}: {os.strerror(err)}")


def _secure_is_open(vol: int) -> bool:
    """Whether ntfs-3g has ``$Secure`` open on ``vol``. The layout is checked on the way:
    a plausible record size, then $MFT's inode at its place, before ``secure_ni`` is
    trusted; anything unexpected answers False (every descriptor is then read)."""
    record_size = ctypes.c_uint32.from_address(vol + VOLUME_MFT_RECORD_SIZE_OFFSET).value
    if record_size < 256 or record_size > 65536 or record_size & (record_size - 1):
        return False
    mft_ni = ctypes.c_void_p.from_address(vol + VOLUME_MFT_NI_OFFSET).value
    if not mft_ni or ctypes.c_uint64.from_address(mft_ni).value != 0:
        return False
    secure_ni = ctypes.c_void_p.from_address(vol + VOLUME_SECURE_NI_OFFSET).value
    return bool(secure_ni) and ctypes.c_uint64.from_address(secure_ni).value == MFT_ENTRY_OF_SECURE


class Volume:
    """An NTFS volume opened read-write through libntfs-3g; use :func:`opened`."""

    def __init__(self, api: int):
        self._lib = library()
        self._api = api
        self._scx = api + SECURITY_CONTEXT_OFFSET
        self._vol = ctypes.c_void_p.from_address(self._scx).value
        self._buffer = ctypes.create_string_buffer(BUFFER_SIZE)
        self._descriptor_of_id: dict[int, bytes] = {}  # security id -> its $SDS descriptor, as read
        self.ids_name_descriptors = _secure_is_open(self._vol)

    def inode(self, entry: int, sequence: int = 0) -> "Inode":
        """The file at MFT reference (entry, sequence; 0: whatever the record holds now),
        open until :meth:`Inode.close`: its descriptor read, compared, set and read back on
        one open record. ntfs_inode_open takes the entry alone: RecordReused where the
        record's sequence number is not the scan's."""
        ni = self._lib.ntfs_inode_open(self._vol, entry & MFT_REF_MASK)
        if not ni:
            raise _oserror(f"MFT entry {entry}")
        head = _record_head(ni)
        found = int.from_bytes(head[OFS_SEQUENCE_NUMBER : OFS_SEQUENCE_NUMBER + 2], "little")
        if sequence and found != sequence:
            self._lib.ntfs_inode_close(ni)
            raise RecordReused(errno.ESTALE, f"MFT entry {entry} is another file now (sequence {found}, "
                                             f"the scan's {sequence})")
        return Inode(self, entry, ni, head)


class Inode:
    """One open file of a :class:`Volume`."""

    def __init__(self, volume: Volume, entry: int, ni: int, head: bytes):
        self._volume, self.entry, self._ni = volume, entry, ni
        self._head = head  # the record's first bytes as opened: its security id until a set
        self._written = False  # a descriptor was set: the record must be written back

    def read(self) -> bytes:
        """The file's descriptor, as ntfs-3g's getxattr gives it."""
        volume = self._volume
        security_id = 0
        # After a set, the record in memory still holds the old id (until the close).
        if volume.ids_name_descriptors and not self._written:
            security_id = security_id_in_record(self._head)
            known = volume._descriptor_of_id.get(security_id)
            if known is not None:
                return known
        got = volume._lib.ntfs_xattr_system_getxattr(volume._scx, XATTR_NTFS_ACL, self._ni, None, volume._buffer,
                                                     BUFFER_SIZE)
        if got < 0:
            raise OSError(-got, f"MFT entry {self.entry}: {os.strerror(-got)}")
        if got > BUFFER_SIZE:
            raise OSError(errno.ERANGE, f"MFT entry {self.entry}: a descriptor of {got} bytes")
        descriptor = ctypes.string_at(volume._buffer, got)  # not .raw: that copies the whole buffer
        if security_id and len(volume._descriptor_of_id) < KNOWN_IDS_MAX:
            volume._descriptor_of_id[security_id] = descriptor
        return descriptor

    def write(self, sd_bytes: bytes) -> None:
        """Replace the descriptor as ntfs-3g's setxattr handler does ($Secure shared)."""
        volume = self._volume
        value = bytes(sd_bytes)
        if volume._lib.ntfs_xattr_system_setxattr(volume._scx, XATTR_NTFS_ACL, self._ni, None, value, len(value), 0):
            raise _oserror(f"MFT entry {self.entry}: ntfs-3g refused the descriptor")
        volume._lib.ntfs_inode_update_times(self._ni, NTFS_UPDATE_CTIME)
        self._written = True

    def close(self) -> None:
        """Close the record once; where a descriptor was set, an error writing it back is
        raised (after a failed or no change there is nothing of ours to write back)."""
        if self._ni is None:
            return
        ni, self._ni = self._ni, None
        if self._volume._lib.ntfs_inode_close(ni) and self._written:
            raise _oserror(f"MFT entry {self.entry}: writing the record back")


@contextlib.contextmanager
def opened(device: str | os.PathLike) -> Iterator[Volume]:
    """Open the NTFS volume on ``device`` (an image file or block device holding the volume
    at offset 0) read-write; unmounted, flushed, on the way out whatever happens."""
    lib = library()
    ctypes.set_errno(0)
    api = lib.ntfs_initialize_file_security(os.fsencode(device), 0)
    if not api:
        err = ctypes.get_errno()
        raise MountError(f"libntfs-3g cannot open {device}: {os.strerror(err) if err else 'not an NTFS volume'}")
    try:
        yield Volume(api)
    finally:
        if not lib.ntfs_leave_file_security(api):
            raise MountError(f"libntfs-3g could not unmount {device} cleanly")
