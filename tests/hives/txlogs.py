"""Writers of registry transaction logs for the tests, from the specification
(Maxim Suhanov, "Windows registry file format specification", "Format of transaction
log files"), independent of the code that applies them.

A log carries what a *newer* state of a hive (``new``) holds that the primary file
(``old``) lacks: every 4096-byte page of the hive bins that differs, or that ``new``
has beyond the end of ``old``.
"""

from __future__ import annotations

import struct

from aclscan.hives.recovery import HVLE_HASH_SEED, marvin32


def checksum(block: bytes) -> int:
    total = 0
    for (dword,) in struct.iter_unpack("<I", block[:508]):
        total ^= dword
    return 0xFFFFFFFE if total == 0xFFFFFFFF else 1 if total == 0 else total


def with_base_block(data: bytes, *, primary: int, secondary: int, file_type: int = 0) -> bytes:
    """``data`` with these sequence numbers and file type, its checksum made right."""
    block = bytearray(data[:0x1000])
    struct.pack_into("<II", block, 4, primary, secondary)
    struct.pack_into("<I", block, 0x1C, file_type)
    struct.pack_into("<I", block, 0x1FC, checksum(bytes(block)))
    return bytes(block) + data[0x1000:]


def make_dirty(data: bytes, primary: int = 5, secondary: int = 4) -> bytes:
    """A primary file caught mid-write: its sequence numbers differ."""
    return with_base_block(data, primary=primary, secondary=secondary)


def changed_pages(old: bytes, new: bytes) -> list[int]:
    """File offsets of the 4 KiB hive-bin pages of ``new`` that ``old`` lacks."""
    return [p for p in range(0x1000, len(new), 0x1000) if old[p : p + 0x1000] != new[p : p + 0x1000]]


def hvle_entry(old: bytes, new: bytes, sequence: int) -> bytes:
    """One HvLE log entry bringing ``old`` to ``new``, with its Marvin32 hashes (the
    hash function is checked against .NET's published vectors in test_dirty_hives)."""
    pages = changed_pages(old, new)
    references = b"".join(struct.pack("<II", p - 0x1000, 0x1000) for p in pages)
    body = references + b"".join(new[p : p + 0x1000] for p in pages)
    size = -(-(40 + len(body)) // 512) * 512
    body = body.ljust(size - 40, b"\0")
    header = struct.pack("<4sIIIII", b"HvLE", size, 0, sequence, len(new) - 0x1000, len(pages))
    header += struct.pack("<Q", marvin32(body, HVLE_HASH_SEED))
    header += struct.pack("<Q", marvin32(header, HVLE_HASH_SEED))
    return header + body


def hvle_log(*entries: bytes, sequence: int = 5) -> bytes:
    """A new-format log (file type 6): a 512-byte base block, then the entries."""
    block = bytearray(512)
    struct.pack_into("<4sII", block, 0, b"regf", sequence, sequence)
    struct.pack_into("<IIII", block, 0x14, 1, 5, 6, 1)  # version 1.5, file type 6: a log
    return bytes(block) + b"".join(entries)


def dirt_log(old: bytes, new: bytes, sequence: int = 5) -> bytes:
    """An old-format log (file type 1): ``new``'s base block (its first 512 bytes, with
    equal sequence numbers), "DIRT" and a bitmap of 512-byte pages (all eight of each
    changed 4 KiB page, as Windows marks them), then those pages in bitmap order."""
    block = bytearray(with_base_block(new, primary=sequence, secondary=sequence, file_type=1)[:512])
    bins_size = len(new) - 0x1000
    bitmap = bytearray(bins_size // 512 // 8)
    pages = []
    for page in changed_pages(old, new):
        for sector in range(8):
            bit = (page - 0x1000) // 512 + sector
            bitmap[bit // 8] |= 1 << (bit % 8)
            pages.append(new[page + 512 * sector : page + 512 * (sector + 1)])
    vector = (b"DIRT" + bytes(bitmap)).ljust(-(-(4 + len(bitmap)) // 512) * 512, b"\0")
    return bytes(block) + vector + b"".join(pages)
