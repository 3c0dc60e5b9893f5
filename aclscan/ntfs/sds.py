"""`$Secure:$SDS`: the shared security descriptor stream of NTFS 3.x.

Layout (NTFS documentation, "$Secure"): the stream is made of 256 KiB blocks,
each primary block followed by a mirror copy of itself. A block holds entries
aligned to 16 bytes, each a SECURITY_DESCRIPTOR_HEADER

    Hash        u32  hash of the self-relative descriptor
    SecurityId  u32  the id `$STANDARD_INFORMATION` refers to
    Offset      u64  byte offset of this entry in the stream
    Length      u32  header + descriptor

followed by the descriptor. Mirror entries repeat the primary's Offset. Entries
never cross a block; the rest of a block after its last entry is zero or stale.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

SDS_BLOCK_SIZE = 0x40000
SDS_HEADER = struct.Struct("<IIQI")
SDS_ALIGNMENT = 16
FIRST_SECURITY_ID = 256


def security_hash(descriptor: bytes) -> int:
    """The hash NTFS stores beside each descriptor: rotate left 3, add each dword."""
    value = 0
    words = struct.unpack_from(f"<{len(descriptor) // 4}I", descriptor)
    for word in words:
        value = ((((value << 3) | (value >> 29)) & 0xFFFFFFFF) + word) & 0xFFFFFFFF
    return value


@dataclass(frozen=True)
class SdsEntry:
    """One descriptor of `$SDS`, de-duplicated by security id."""

    security_id: int
    offset: int
    hash: int
    descriptor: bytes
    hash_ok: bool
    from_mirror: bool = False


@dataclass(frozen=True)
class SdsProblem:
    """Something in `$SDS` that is not as it should be: recorded, never fatal."""

    offset: int
    security_id: int | None
    reason: str


def _entries_in_block(data: bytes, block_start: int) -> Iterator[tuple[int, int, int, bytes]]:
    """(offset, security id, hash, descriptor) of each well-formed entry of one block."""
    block_end = min(block_start + SDS_BLOCK_SIZE, len(data))
    pos = block_start
    while pos + SDS_HEADER.size <= block_end:
        hash_value, security_id, offset, length = SDS_HEADER.unpack_from(data, pos)
        # A header whose Offset is not its own position is stale or zero space:
        # the block's entries end here.
        if length < SDS_HEADER.size or offset != pos or pos + length > block_end:
            return
        yield pos, security_id, hash_value, data[pos + SDS_HEADER.size : pos + length]
        pos += (length + SDS_ALIGNMENT - 1) & ~(SDS_ALIGNMENT - 1)


def _mirror_copy(data: bytes, offset: int) -> tuple[int, bytes] | None:
    """The mirror block's copy of the entry at ``offset``, if it is there and sound."""
    pos = offset + SDS_BLOCK_SIZE
    if pos + SDS_HEADER.size > len(data):
        return None
    hash_value, _security_id, stored_offset, length = SDS_HEADER.unpack_from(data, pos)
    if stored_offset != offset or length < SDS_HEADER.size or pos + length > len(data):
        return None
    return hash_value, data[pos + SDS_HEADER.size : pos + length]


def parse_sds(data: bytes) -> tuple[dict[int, SdsEntry], list[SdsProblem]]:
    """Every security id of the stream, read once.

    Returns ``({security_id: SdsEntry}, problems)``. Only primary blocks are
    walked; where a primary entry's hash is wrong the mirror copy is used if its
    hash is right. A wrong hash on both is kept (with ``hash_ok`` false) and
    reported; a security id seen twice keeps its first sound copy.
    """
    entries: dict[int, SdsEntry] = {}
    problems: list[SdsProblem] = []
    for block_start in range(0, len(data), 2 * SDS_BLOCK_SIZE):
        for offset, security_id, hash_value, descriptor in _entries_in_block(data, block_start):
            hash_ok = security_hash(descriptor) == hash_value
            from_mirror = False
            if not hash_ok:
                mirror = _mirror_copy(data, offset)
                if mirror and security_hash(mirror[1]) == mirror[0]:
                    hash_value, descriptor = mirror
                    hash_ok = from_mirror = True
                    problems.append(SdsProblem(offset, security_id, "hash mismatch in primary copy; mirror used"))
                else:
                    problems.append(SdsProblem(offset, security_id, "hash mismatch (primary and mirror)"))
            if security_id < FIRST_SECURITY_ID:
                problems.append(SdsProblem(offset, security_id, f"security id {security_id} below 256"))
                continue
            known = entries.get(security_id)
            if known is not None:
                if known.hash_ok or not hash_ok:
                    if known.descriptor != descriptor:
                        problems.append(
                            SdsProblem(offset, security_id, "security id repeated with a different descriptor")
                        )
                    continue
            entries[security_id] = SdsEntry(security_id, offset, hash_value, descriptor, hash_ok, from_mirror)
    return entries, problems
