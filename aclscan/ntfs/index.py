"""Directory indexes ($I30: $INDEX_ROOT and $INDEX_ALLOCATION) and name collation
through the volume's `$UpCase` table. Bytes in, objects out: no I/O.

A directory's names sit in a B-tree ordered by COLLATION_FILE_NAME: names are
compared one UTF-16 unit at a time after mapping each unit through `$UpCase`.
``index_key`` turns a name into bytes that sort the same way (big-endian
upcased units), so a lookup compares bytes. Names follow the NTFS documentation
(INDEX_ROOT, INDEX_HEADER, INDEX_ENTRY, INDEX_ALLOCATION_BUFFER "INDX").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from aclscan.errors import CorruptRecord
from aclscan.ntfs.mft import FN_FILE_NAME, FN_FILE_NAME_LENGTH, FN_FLAGS
from aclscan.ntfs.records import REFERENCE_ENTRY_MASK, apply_fixups

INDEX_ROOT = 0x90
INDEX_ALLOCATION = 0xA0
FILE_NAME_INDEX = "$I30"

INDEX_ENTRY_NODE = 0x01  # the entry points to a subnode (its VCN ends the entry)
INDEX_ENTRY_END = 0x02  # the last entry of a node: no key
INDX_SIGNATURE = b"INDX"
INDX_HEADER_OFFSET = 0x18  # INDEX_HEADER inside an INDX buffer
ROOT_HEADER_OFFSET = 0x10  # INDEX_HEADER inside an INDEX_ROOT value
INDEX_ENTRY_MIN = 0x10
UPCASE_UNITS = 1 << 16


@dataclass(frozen=True)
class IndexEntry:
    entry: int  # the MFT entry the name belongs to (0 on the end entry)
    name: str  # "" on the end entry
    namespace: int
    subnode_vcn: int | None
    is_end: bool


@dataclass(frozen=True)
class IndexRoot:
    block_size: int  # bytes in one INDX buffer
    entries: list[IndexEntry]


class UpCase:
    """The volume's `$UpCase`: the upper-case form of every UTF-16 unit."""

    def __init__(self, table: np.ndarray):
        self._big_endian = table.astype(">u2")

    @classmethod
    def from_bytes(cls, data: bytes) -> "UpCase":
        if len(data) < 2 * UPCASE_UNITS:
            raise CorruptRecord(f"$UpCase holds {len(data)} bytes, not {2 * UPCASE_UNITS}")
        return cls(np.frombuffer(data, dtype="<u2", count=UPCASE_UNITS))

    def index_key(self, name: str) -> bytes:
        """Bytes that compare as NTFS compares file names in a directory index."""
        units = np.frombuffer(name.encode("utf-16-le", "surrogatepass"), dtype="<u2")
        return self._big_endian[units].tobytes()


def parse_index_root(value: bytes) -> IndexRoot:
    if len(value) < ROOT_HEADER_OFFSET + 16:
        raise CorruptRecord("$INDEX_ROOT is too short")
    block_size = struct.unpack_from("<I", value, 0x08)[0]
    return IndexRoot(block_size, _entries(value, ROOT_HEADER_OFFSET))


def parse_index_block(data: bytearray, block_size: int) -> list[IndexEntry]:
    """The entries of one INDX buffer (fixups applied here, in place)."""
    if len(data) < block_size or data[0:4] != INDX_SIGNATURE:
        raise CorruptRecord("index buffer without INDX signature")
    if not apply_fixups(data, block_size):
        raise CorruptRecord("index buffer: update sequence (fixup) mismatch")
    return _entries(data[:block_size], INDX_HEADER_OFFSET)


def _entries(data: bytes | bytearray, header: int) -> list[IndexEntry]:
    first, in_use = struct.unpack_from("<II", data, header)
    position, end = header + first, min(header + in_use, len(data))
    found = []
    while position + INDEX_ENTRY_MIN <= end:
        reference, length, key_length, flags = struct.unpack_from("<QHHH", data, position)
        if length < INDEX_ENTRY_MIN or position + length > end or INDEX_ENTRY_MIN + key_length > length:
            raise CorruptRecord("index entry runs past its node")
        subnode = None
        if flags & INDEX_ENTRY_NODE:
            if length < INDEX_ENTRY_MIN + 8:
                raise CorruptRecord("index entry too short for its subnode")
            subnode = struct.unpack_from("<q", data, position + length - 8)[0]
        if flags & INDEX_ENTRY_END:
            found.append(IndexEntry(0, "", 0, subnode, True))
            return found
        key = position + INDEX_ENTRY_MIN
        if key_length < FN_FILE_NAME:
            raise CorruptRecord("index entry key is not a $FILE_NAME")
        chars = data[key + FN_FILE_NAME_LENGTH]
        if FN_FILE_NAME + 2 * chars > key_length:
            raise CorruptRecord("index entry name runs past its key")
        name = bytes(data[key + FN_FILE_NAME : key + FN_FILE_NAME + 2 * chars]).decode("utf-16-le", "surrogatepass")
        found.append(IndexEntry(reference & REFERENCE_ENTRY_MASK, name, data[key + FN_FLAGS], subnode, False))
        position += length
    raise CorruptRecord("index node has no end entry")
