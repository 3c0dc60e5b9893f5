"""Apply a dirty hive's transaction logs to its primary file, over bytes.

Facts from Maxim Suhanov's "Windows registry file format specification" ("Format of
transaction log files", "Dirty state of a hive", "Multiple transaction log files"):

- Every log starts with a partial copy of the base block (its first 512 bytes), with
  FileType 1 (old format) or 6 (new format).
- **New format** (Windows 8.1 and later; ``NAME.LOG1`` and ``NAME.LOG2``): log entries
  from offset 512, each at an offset divisible by 512::

      0 "HvLE"  4 Size  8 Flags  12 SequenceNumber  16 HiveBinsDataSize
      20 DirtyPagesCount  24 Hash-1  32 Hash-2  40 (Offset, Size) per dirty page,
      then the dirty pages themselves, in the same order, without gaps

  Only *subsequent* entries are applied: the first must carry the primary file's
  secondary sequence number, each next one that number plus one; recovery stops at
  the first gap (older entries stay in a reused log and would undo newer pages).
  LOG1 is used first, then LOG2: the run may go on from one log into the other.
  A HiveBinsDataSize that is no multiple of 4096, or a wrong hash, stops recovery (an
  entry torn by a crash is never applied); the primary file grows to the
  HiveBinsDataSize of the entry applied. Hash-2 is the Marvin32 hash of the entry's
  first 32 bytes, Hash-1 that of its ``Size - 40`` bytes from offset 40, both with the
  seed 82 EF 4D 88 7A 4E 55 C5 (little-endian); they are compared as Windows' 32-bit
  Marvin32 result, the XOR of the two halves.
- **Old format** (Windows XP to 8; ``NAME.LOG``): at offset 512 a dirty vector,
  "DIRT" then a bitmap with one bit per 512-byte page of the hive bins data
  (HiveBinsDataSize / 512 bits, least significant bit first); the dirty pages follow
  from the next sector boundary, 512 bytes each, in bitmap order; page ``n`` goes to
  file offset ``4096 + 512 * n``. A log applies when its base block is valid
  (its sequence numbers equal) and its LastWrittenTimestamp is the primary file's.

Nothing here reads files: the caller gives the logs' bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["HVLE_HASH_SEED", "Recovered", "apply_logs", "base_block_checksum", "is_dirty", "marvin32"]

BASE_BLOCK_SIZE = 0x1000
LOG_HEADER_SIZE = 0x200  # the part of the base block a log keeps
SECTOR = 512
PAGE = 0x1000
HVLE_HEADER = struct.Struct("<4sIIIII16x")  # 40 bytes
# A hive bins data size beyond this is no hive aclscan reads (and no allocation to make).
MAX_BINS_SIZE = 1 << 31
HVLE_HASH_SEED = int.from_bytes(bytes.fromhex("82EF4D887A4E55C5"), "little")
_MASK = 0xFFFFFFFF


def marvin32(data: bytes, seed: int) -> int:
    """The 64-bit Marvin32 hash of ``data`` (Niels Ferguson's checksum, as .NET and
    Windows compute it): the high state word above the low one."""
    low, high = seed & _MASK, seed >> 32
    words = len(data) // 4
    tail = 0x80  # the last 0-3 bytes, above them a 0x80 byte
    for byte in reversed(data[4 * words :]):
        tail = tail << 8 | byte
    for word in (*struct.unpack_from(f"<{words}I", data), tail, None):
        if word is not None:
            low = (low + word) & _MASK
        high ^= low
        low = ((low << 20 | low >> 12) & _MASK) + high & _MASK
        high = (high << 9 | high >> 23) & _MASK
        high ^= low
        low = ((low << 27 | low >> 5) & _MASK) + high & _MASK
        high = (high << 19 | high >> 13) & _MASK
    return high << 32 | low


def _folded(hash64: int) -> int:
    return (hash64 >> 32) ^ (hash64 & _MASK)


@dataclass(frozen=True)
class Recovered:
    """The primary file after its logs: ``data``, which logs gave pages, how many
    pages were written, and why a log was not used (one line each)."""

    data: bytes
    logs_applied: tuple[str, ...] = ()
    pages: int = 0
    problems: tuple[str, ...] = ()


def base_block_checksum(block: bytes) -> int:
    """The CheckSum of a base block: XOR of its first 127 dwords, 0 -> 1, -1 -> -2."""
    total = 0
    for (dword,) in struct.iter_unpack("<I", block[:508]):
        total ^= dword
    return 0xFFFFFFFE if total == 0xFFFFFFFF else 1 if total == 0 else total


def is_dirty(primary: bytes) -> bool:
    """Whether a primary file needs its logs ("Dirty state of a hive"): its sequence
    numbers differ or its base block's checksum is wrong. False for what is no hive."""
    if len(primary) < LOG_HEADER_SIZE or primary[:4] != b"regf":
        return False
    sequence_differs = primary[4:8] != primary[8:12]
    return sequence_differs or struct.unpack_from("<I", primary, 0x1FC)[0] != base_block_checksum(primary)


@dataclass(frozen=True)
class _Entry:
    log: str
    sequence: int
    bins_size: int
    pages: tuple[tuple[int, bytes], ...]  # (offset in the hive bins data, bytes)


def _hvle_entries(log: bytes, name: str) -> tuple[list[_Entry], str | None]:
    """The structurally sound entries of a new-format log, in file order, and why
    reading stopped early (None at the end of the log or of its entries)."""
    entries: list[_Entry] = []
    position = LOG_HEADER_SIZE
    while position + HVLE_HEADER.size <= len(log) and log[position : position + 4] == b"HvLE":
        _magic, size, _flags, sequence, bins_size, count = HVLE_HEADER.unpack_from(log, position)
        where = f"{name}: log entry {sequence} at {position:#x}"
        if size < HVLE_HEADER.size or size % SECTOR or position + size > len(log):
            return entries, f"{where}: its size {size} is wrong"
        if bins_size % PAGE or not 0 < bins_size <= MAX_BINS_SIZE:
            return entries, f"{where}: hive bins data size {bins_size} is no multiple of 4096"
        if HVLE_HEADER.size + 8 * count > size:
            return entries, f"{where}: {count} dirty pages do not fit the entry"
        hash1, hash2 = struct.unpack_from("<QQ", log, position + 24)
        if _folded(hash2) != _folded(marvin32(log[position : position + 32], HVLE_HASH_SEED)) or _folded(
            hash1
        ) != _folded(marvin32(log[position + HVLE_HEADER.size : position + size], HVLE_HASH_SEED)):
            return entries, f"{where}: its hash is wrong (an entry torn by a crash?)"
        references = struct.unpack_from(f"<{2 * count}I", log, position + HVLE_HEADER.size)
        page_at = position + HVLE_HEADER.size + 8 * count
        pages = []
        for index in range(count):
            offset, length = references[2 * index], references[2 * index + 1]
            if page_at + length > position + size or offset + length > bins_size:
                return entries, f"{where}: dirty page {index} runs past the entry or the hive bins"
            pages.append((offset, log[page_at : page_at + length]))
            page_at += length
        entries.append(_Entry(name, sequence, bins_size, tuple(pages)))
        position += size
    return entries, None


def _write(target: bytearray, bins_size: int, pages: Sequence[tuple[int, bytes]]) -> None:
    end = BASE_BLOCK_SIZE + bins_size
    if len(target) < end:
        target.extend(bytes(end - len(target)))
    for offset, page in pages:
        target[BASE_BLOCK_SIZE + offset : BASE_BLOCK_SIZE + offset + len(page)] = page


def _seal(target: bytearray, sequence: int, bins_size: int) -> None:
    """Sequence numbers equal (clean), the new hive bins size, a valid checksum."""
    struct.pack_into("<II", target, 4, sequence, sequence)
    struct.pack_into("<I", target, 0x28, bins_size)
    struct.pack_into("<I", target, 0x1FC, base_block_checksum(bytes(target[:508])))


def _apply_new(primary: bytes, logs: Sequence[tuple[str, bytes, int]], problems: list[str]) -> Recovered | None:
    """Entries from the primary's secondary sequence number on, LOG1's then LOG2's."""
    expected = struct.unpack_from("<I", primary, 8)[0]
    by_sequence: dict[int, _Entry] = {}
    for name, log, _log_sequence in logs:
        entries, why = _hvle_entries(log, name)
        if why:
            problems.append(why)
        for entry in entries:
            by_sequence.setdefault(entry.sequence, entry)  # the log given first wins a tie
    target: bytearray | None = None
    applied: list[str] = []
    pages = 0
    sequence, bins_size = expected, 0
    while sequence in by_sequence:
        entry = by_sequence[sequence]
        if target is None:
            target = bytearray(primary)
        _write(target, entry.bins_size, entry.pages)
        pages += len(entry.pages)
        bins_size = entry.bins_size
        if entry.log not in applied:
            applied.append(entry.log)
        sequence += 1
    if target is None:
        return None
    _seal(target, sequence - 1, max(bins_size, struct.unpack_from("<I", primary, 0x28)[0]))
    return Recovered(bytes(target), tuple(applied), pages, ())


def _apply_old(primary: bytes, name: str, log: bytes, problems: list[str]) -> Recovered | None:
    """One DIRT log, all of its pages or none."""
    log_primary, log_secondary, stamp = struct.unpack_from("<IIQ", log, 4)
    if log_primary != log_secondary:
        problems.append(f"{name}: an incomplete log (its sequence numbers differ)")
        return None
    if stamp != struct.unpack_from("<Q", primary, 0x0C)[0]:
        problems.append(f"{name}: written for another state of the hive (its timestamp differs)")
        return None
    bins_size = struct.unpack_from("<I", log, 0x28)[0]
    if bins_size % PAGE or not 0 < bins_size <= MAX_BINS_SIZE:
        problems.append(f"{name}: hive bins data size {bins_size} is no multiple of 4096")
        return None
    bitmap_length = (bins_size // SECTOR + 7) // 8
    bitmap = log[LOG_HEADER_SIZE + 4 : LOG_HEADER_SIZE + 4 + bitmap_length]
    if len(bitmap) < bitmap_length:
        problems.append(f"{name}: its dirty vector is cut short")
        return None
    page_at = LOG_HEADER_SIZE + -(-(4 + bitmap_length) // SECTOR) * SECTOR
    pages: list[tuple[int, bytes]] = []
    for byte_index, byte in enumerate(bitmap):
        if not byte:
            continue
        for bit in range(8):
            if byte >> bit & 1:
                page = log[page_at : page_at + SECTOR]
                if len(page) < SECTOR:
                    problems.append(f"{name}: holds fewer dirty pages than its dirty vector marks")
                    return None
                pages.append(((byte_index * 8 + bit) * SECTOR, page))
                page_at += SECTOR
    target = bytearray(primary)
    _write(target, bins_size, pages)
    _seal(target, log_secondary, bins_size)
    return Recovered(bytes(target), (name,), len(pages), ())


def apply_logs(primary: bytes, logs: Sequence[tuple[str, bytes]]) -> Recovered:
    """The primary file with whatever its logs hold that it lacks.

    ``logs`` are (name, bytes) pairs in the order Windows uses them (LOG1, LOG2, LOG).
    Logs that do not apply are named in ``problems``; with none applied, ``data`` is
    ``primary`` as it is.
    """
    problems: list[str] = []
    new_format: list[tuple[str, bytes, int]] = []
    old_format: list[tuple[str, bytes]] = []
    for name, log in logs:
        if not log:
            continue  # Windows 10 keeps an empty NAME.LOG beside LOG1 and LOG2
        if len(log) < LOG_HEADER_SIZE + 4 or log[:4] != b"regf":
            problems.append(f"{name}: not a registry transaction log")
            continue
        magic = log[LOG_HEADER_SIZE : LOG_HEADER_SIZE + 4]
        if magic == b"HvLE":
            new_format.append((name, log, struct.unpack_from("<I", log, 4)[0]))
        elif magic == b"DIRT":
            old_format.append((name, log))
        else:
            problems.append(f"{name}: holds no log entries")
    recovered = _apply_new(primary, new_format, problems) if new_format else None
    if recovered is None:
        for name, log in old_format:
            recovered = _apply_old(primary, name, log, problems)
            if recovered is not None:
                break
    if recovered is None:
        return Recovered(primary, (), 0, tuple(problems))
    return Recovered(recovered.data, recovered.logs_applied, recovered.pages, tuple(problems))
