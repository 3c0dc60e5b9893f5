"""qcow2 disks (QEMU's format, versions 2 and 3), read from a file-like object.

aclscan reads qcow2 itself rather than through libqcow: libqcow 20260703 returns
zeros, without an error, for a compressed cluster that does not start on a
512-byte boundary, and qemu-img (7.x, qcow2 version 3) packs compressed clusters
at any byte. A scan must never take zeros for data.

Layout (QEMU's docs/interop/qcow2.txt): a big-endian header; a two-level table
(L1 -> L2) maps each guest cluster to a host offset. An L2 entry is unallocated
(read from the backing file, or zeros), all zeros (version 3, bit 0), a standard
cluster (bits 9-55), or a compressed one (bit 62: a host byte offset and a count
of 512-byte sectors, raw deflate inside). Bytes in, bytes out: the caller opens
the file and the backing disk.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from aclscan.errors import ImageError

MAGIC = b"QFI\xfb"
HEADER_V2 = struct.Struct(">4sIQIIQIIQQIIQ")  # 72 bytes
L1_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L2_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L2_COMPRESSED = 1 << 62
L2_ZERO = 1
INCOMPATIBLE_DIRTY = 1 << 0
INCOMPATIBLE_CORRUPT = 1 << 1
INCOMPATIBLE_EXTERNAL_DATA = 1 << 2
INCOMPATIBLE_COMPRESSION_TYPE = 1 << 3
INCOMPATIBLE_EXTENDED_L2 = 1 << 4
EXTENSION_END = 0x00000000
EXTENSION_BACKING_FORMAT = 0xE2792ACA
SECTOR = 512


class ByteSource(Protocol):
    size: int

    def read(self, offset: int, size: int) -> bytes: ...


@dataclass(frozen=True)
class Qcow2Header:
    version: int
    cluster_bits: int
    size: int  # guest bytes
    l1_size: int
    l1_offset: int
    backing_file: str | None
    backing_format: str | None
    incompatible: int

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits


def read_header(fh: BinaryIO, where: str) -> Qcow2Header:
    fh.seek(0)
    head = fh.read(4096)
    if len(head) < HEADER_V2.size or not head.startswith(MAGIC):
        raise ImageError(f"{where}: not a qcow2 disk, or truncated before its header ends")
    (_magic, version, backing_offset, backing_size, cluster_bits, size, crypt, l1_size, l1_offset,
     _refcount_offset, _refcount_clusters, _snapshots, _snapshots_offset) = HEADER_V2.unpack_from(head)
    if version not in (2, 3):
        raise ImageError(f"{where}: qcow2 version {version} (aclscan reads versions 2 and 3)")
    if not 9 <= cluster_bits <= 21:
        raise ImageError(f"{where}: qcow2 clusters of 2**{cluster_bits} bytes are impossible")
    if crypt:
        raise ImageError(f"{where}: an encrypted qcow2 disk (decrypt it with qemu-img convert first)")
    incompatible, header_length, compression_type = 0, HEADER_V2.size, 0
    if version == 3:
        if len(head) < 104:
            raise ImageError(f"{where}: truncated qcow2 version 3 header")
        incompatible = struct.unpack_from(">Q", head, 72)[0]
        header_length = struct.unpack_from(">I", head, 100)[0]
        if header_length > 104:
            compression_type = head[104]
    unsupported = incompatible & ~(INCOMPATIBLE_DIRTY | INCOMPATIBLE_COMPRESSION_TYPE)
    if unsupported & INCOMPATIBLE_CORRUPT:
        raise ImageError(f"{where}: QEMU marked this qcow2 disk corrupt (qemu-img check -r all repairs it)")
    if unsupported:
        names = {INCOMPATIBLE_EXTERNAL_DATA: "an external data file", INCOMPATIBLE_EXTENDED_L2: "extended L2 entries"}
        what = ", ".join(n for bit, n in names.items() if unsupported & bit) or f"feature bits {unsupported:#x}"
        raise ImageError(f"{where}: qcow2 with {what}, which aclscan does not read")
    if compression_type != 0:
        raise ImageError(f"{where}: qcow2 compressed with zstd, which aclscan does not read (zlib only)")
    backing_file = None
    if backing_offset and backing_size:
        fh.seek(backing_offset)
        raw = fh.read(backing_size)
        if len(raw) != backing_size:
            raise ImageError(f"{where}: truncated before its backing file name")
        backing_file = raw.decode("utf-8", "surrogateescape")
    backing_format = None
    position = header_length
    while position + 8 <= len(head):
        kind, length = struct.unpack_from(">II", head, position)
        if kind == EXTENSION_END:
            break
        if kind == EXTENSION_BACKING_FORMAT:
            backing_format = head[position + 8 : position + 8 + length].decode("ascii", "replace")
        position += 8 + (length + 7) // 8 * 8
    return Qcow2Header(version, cluster_bits, size, l1_size, l1_offset, backing_file, backing_format, incompatible)


class Qcow2Reader:
    """The guest bytes of one qcow2 file over ``backing`` (a parent disk, or None)."""

    def __init__(self, fh: BinaryIO, where: str, backing: ByteSource | None = None):
        self._fh, self.where, self.backing = fh, where, backing
        self.header = read_header(fh, where)
        self.size = self.header.size
        self._l2_entries = self.header.cluster_size // 8
        fh.seek(self.header.l1_offset)
        raw = fh.read(8 * self.header.l1_size)
        if len(raw) != 8 * self.header.l1_size:
            raise ImageError(f"{where}: truncated before the end of its L1 table")
        self._l1 = struct.unpack(f">{self.header.l1_size}Q", raw)
        self._l2_cache: dict[int, tuple[int, ...]] = {}
        self._last_compressed: tuple[int, bytes] | None = None

    def read(self, offset: int, size: int) -> bytes:
        size = max(0, min(size, self.size - offset))
        out = bytearray()
        cluster_size = self.header.cluster_size
        while size > 0:
            within = offset & (cluster_size - 1)
            take = min(size, cluster_size - within)
            out += self._read_in_cluster(offset >> self.header.cluster_bits, within, take)
            offset += take
            size -= take
        return bytes(out)

    def _l2_entry(self, cluster: int) -> int:
        l1_index, l2_index = divmod(cluster, self._l2_entries)
        if l1_index >= len(self._l1):
            return 0
        table_offset = self._l1[l1_index] & L1_OFFSET_MASK
        if not table_offset:
            return 0
        table = self._l2_cache.get(table_offset)
        if table is None:
            raw = self._pread(table_offset, self.header.cluster_size, "L2 table")
            table = struct.unpack(f">{self._l2_entries}Q", raw)
            self._l2_cache[table_offset] = table
        return table[l2_index]

    def _read_in_cluster(self, cluster: int, within: int, length: int) -> bytes:
        entry = self._l2_entry(cluster)
        if entry & L2_COMPRESSED:
            return self._compressed(cluster, entry)[within : within + length]
        host = entry & L2_OFFSET_MASK
        if entry & L2_ZERO and self.header.version == 3:
            return bytes(length)
        if host:
            return self._pread(host + within, length, "data cluster")
        guest = (cluster << self.header.cluster_bits) + within
        if self.backing is not None and guest < self.backing.size:
            data = self.backing.read(guest, length)
            return data + bytes(length - len(data))
        return bytes(length)

    def _compressed(self, cluster: int, entry: int) -> bytes:
        if self._last_compressed and self._last_compressed[0] == cluster:
            return self._last_compressed[1]
        shift = 62 - (self.header.cluster_bits - 8)
        host = entry & ((1 << shift) - 1)
        sectors = ((entry >> shift) & ((1 << (self.header.cluster_bits - 8)) - 1)) + 1
        stored = sectors * SECTOR - (host % SECTOR)
        self._fh.seek(host)
        raw = self._fh.read(stored)  # the last compressed cluster may end before its last sector
        try:
            data = zlib.decompressobj(-15).decompress(raw, self.header.cluster_size)
        except zlib.error as exc:
            raise ImageError(f"{self.where}: compressed cluster {cluster} cannot be inflated: {exc}") from None
        if len(data) != self.header.cluster_size:
            raise ImageError(f"{self.where}: compressed cluster {cluster} inflates to {len(data)} bytes, "
                             f"not {self.header.cluster_size} (truncated?)")
        self._last_compressed = (cluster, data)
        return data

    def _pread(self, offset: int, length: int, what: str) -> bytes:
        self._fh.seek(offset)
        data = self._fh.read(length)
        if len(data) != length:
            raise ImageError(f"{self.where}: {what} at {offset} lies past the end of the file (truncated?)")
        return data
