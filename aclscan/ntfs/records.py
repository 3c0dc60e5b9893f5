"""One MFT record at a time: its attributes, data runs and attribute list.

The bulk pass over `$MFT` (mft.py) reads a handful of fields from millions of
records; this module reads everything from the few records a scan opens by
number (`$MFT` itself, `$Secure`, `$Volume`, `$UpCase`, directories on the way
to a hive, the hives). Bytes in, objects out: no I/O.

Names follow the NTFS documentation (ATTRIBUTE_RECORD_HEADER, MAPPING_PAIRS,
ATTRIBUTE_LIST_ENTRY).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from aclscan.errors import CorruptRecord
from aclscan.ntfs.mft import (
    ATTRIBUTE_HEADER_MIN,
    END_MARKER,
    FILE_SIGNATURE,
    FILE_RECORD_SEGMENT_IN_USE,
    OFS_BASE_FILE_RECORD_SEGMENT,
    OFS_BYTES_IN_USE,
    OFS_FIRST_ATTRIBUTE_OFFSET,
    OFS_FLAGS,
    OFS_SEQUENCE_NUMBER,
    SI_SECURITY_ID_OFFSET,
    SI_V3_LENGTH,
    STANDARD_INFORMATION,
    _apply_fixups,
)

# ATTRIBUTE_RECORD_HEADER flags.
ATTRIBUTE_FLAG_COMPRESSION_MASK = 0x00FF
ATTRIBUTE_FLAG_ENCRYPTED = 0x4000
ATTRIBUTE_FLAG_SPARSE = 0x8000

REFERENCE_ENTRY_MASK = (1 << 48) - 1


def apply_fixups(buffer: bytearray, record_size: int) -> bool:
    """Apply the update sequence array of one multi-sector record (FILE or INDX)
    in place; False when a protected stride does not end with the sequence number."""
    if len(buffer) < record_size or record_size % 512:
        return False
    records = np.frombuffer(buffer, dtype=np.uint8, count=record_size).reshape(1, record_size)
    return bool(_apply_fixups(records, np.ones(1, dtype=bool), record_size)[0])


def decode_runs(data: bytes, start: int = 0) -> list[tuple[int | None, int]]:
    """MAPPING_PAIRS: [(first cluster or None for a sparse run, cluster count)]."""
    runs: list[tuple[int | None, int]] = []
    position = start
    lcn = 0
    while position < len(data):
        header = data[position]
        if header == 0:
            return runs
        length_size, offset_size = header & 0x0F, header >> 4
        position += 1
        if length_size == 0 or length_size > 8 or offset_size > 8 or position + length_size + offset_size > len(data):
            raise CorruptRecord("data run list is malformed")
        count = int.from_bytes(data[position : position + length_size], "little")
        position += length_size
        if count <= 0:
            raise CorruptRecord("data run of zero or negative length")
        if offset_size == 0:
            runs.append((None, count))
            continue
        lcn += int.from_bytes(data[position : position + offset_size], "little", signed=True)
        position += offset_size
        if lcn < 0:
            raise CorruptRecord("data run before the start of the volume")
        runs.append((lcn, count))
    raise CorruptRecord("data run list has no end")


@dataclass(frozen=True)
class AttributeRecord:
    """One attribute as stored in one record (a non-resident attribute may have
    further extents, each its own AttributeRecord, in other records)."""

    type: int
    name: str
    attribute_id: int
    flags: int
    value: bytes | None  # resident value; None when non-resident
    lowest_vcn: int = 0
    highest_vcn: int = -1
    runs: tuple[tuple[int | None, int], ...] = ()
    allocated_size: int = 0
    data_size: int = 0
    initialized_size: int = 0
    compression_unit: int = 0  # log2 of the clusters in one compression unit

    @property
    def is_resident(self) -> bool:
        return self.value is not None

    @property
    def is_compressed(self) -> bool:
        return bool(self.flags & ATTRIBUTE_FLAG_COMPRESSION_MASK)

    @property
    def is_encrypted(self) -> bool:
        return bool(self.flags & ATTRIBUTE_FLAG_ENCRYPTED)


@dataclass(frozen=True)
class FileRecord:
    entry: int
    sequence: int
    flags: int
    base_entry: int | None  # set on an extension record
    attributes: tuple[AttributeRecord, ...]

    @property
    def in_use(self) -> bool:
        return bool(self.flags & FILE_RECORD_SEGMENT_IN_USE)

    def find(self, attr_type: int, name: str = "") -> list[AttributeRecord]:
        return [a for a in self.attributes if a.type == attr_type and a.name == name]


def parse_record(data: bytearray, entry: int, record_size: int) -> FileRecord:
    """Parse one whole MFT record (fixups applied here, in place)."""
    if len(data) < record_size:
        raise CorruptRecord(f"MFT record {entry} is truncated")
    if int.from_bytes(data[0:4], "little") != FILE_SIGNATURE:
        raise CorruptRecord(f"MFT record {entry} has no FILE signature")
    if not apply_fixups(data, record_size):
        raise CorruptRecord(f"MFT record {entry}: update sequence (fixup) mismatch")
    sequence = struct.unpack_from("<H", data, OFS_SEQUENCE_NUMBER)[0]
    first = struct.unpack_from("<H", data, OFS_FIRST_ATTRIBUTE_OFFSET)[0]
    flags = struct.unpack_from("<H", data, OFS_FLAGS)[0]
    in_use = min(struct.unpack_from("<I", data, OFS_BYTES_IN_USE)[0], record_size)
    base = int.from_bytes(data[OFS_BASE_FILE_RECORD_SEGMENT : OFS_BASE_FILE_RECORD_SEGMENT + 6], "little")
    attributes = []
    position = first
    while position + 8 <= in_use:
        attr_type, length = struct.unpack_from("<II", data, position)
        if attr_type == END_MARKER:
            break
        if length < ATTRIBUTE_HEADER_MIN or position + length > in_use or length % 8:
            raise CorruptRecord(f"MFT record {entry}: attribute {attr_type:#x} runs past the record")
        attributes.append(_parse_attribute(bytes(data[position : position + length]), entry))
        position += length
    return FileRecord(entry, sequence, flags, base or None, tuple(attributes))


_FIRST_ATTRIBUTE = struct.Struct("<IIB")  # type, record length, non-resident
_RESIDENT_VALUE = struct.Struct("<IH")  # value length, value offset (at 0x10 of the header)


def security_id_in_record(head: bytes) -> int:
    """The SecurityId of a base record's $STANDARD_INFORMATION, from the first bytes of the
    record with its fixups applied; 0 where there is none: no v3.x (72-byte) value, a first
    attribute that is not $STANDARD_INFORMATION (it always comes first: attributes are in
    type order), or a value past ``head``."""
    if len(head) < OFS_FIRST_ATTRIBUTE_OFFSET + 2:
        return 0
    first = struct.unpack_from("<H", head, OFS_FIRST_ATTRIBUTE_OFFSET)[0]
    if first + ATTRIBUTE_HEADER_MIN > len(head):
        return 0
    attr_type, length, non_resident = _FIRST_ATTRIBUTE.unpack_from(head, first)
    if attr_type != STANDARD_INFORMATION or non_resident:
        return 0
    value_length, value_offset = _RESIDENT_VALUE.unpack_from(head, first + 0x10)
    if value_length < SI_V3_LENGTH or value_offset + value_length > length:
        return 0
    at = first + value_offset + SI_SECURITY_ID_OFFSET
    if at + 4 > len(head):
        return 0
    return struct.unpack_from("<I", head, at)[0]


def _parse_attribute(raw: bytes, entry: int) -> AttributeRecord:
    attr_type, length, non_resident, name_length, name_offset, flags, attribute_id = struct.unpack_from(
        "<IIBBHHH", raw, 0
    )
    if name_offset + 2 * name_length > length:
        raise CorruptRecord(f"MFT record {entry}: attribute {attr_type:#x} name runs past it")
    name = raw[name_offset : name_offset + 2 * name_length].decode("utf-16-le", "surrogatepass")
    if not non_resident:
        value_length, value_offset = struct.unpack_from("<IH", raw, 0x10)
        if value_offset + value_length > length:
            raise CorruptRecord(f"MFT record {entry}: attribute {attr_type:#x} value runs past it")
        return AttributeRecord(attr_type, name, attribute_id, flags, raw[value_offset : value_offset + value_length])
    if length < 0x40:
        raise CorruptRecord(f"MFT record {entry}: non-resident attribute {attr_type:#x} header too short")
    lowest, highest, runs_offset, compression_unit = struct.unpack_from("<qqHH", raw, 0x10)
    allocated, size, initialized = struct.unpack_from("<qqq", raw, 0x28)
    if runs_offset >= length or lowest < 0 or size < 0 or initialized < 0:
        raise CorruptRecord(f"MFT record {entry}: non-resident attribute {attr_type:#x} header is malformed")
    runs = decode_runs(raw[:length], runs_offset)
    return AttributeRecord(
        attr_type, name, attribute_id, flags, None, lowest, highest, tuple(runs), allocated, size, initialized,
        compression_unit,
    )


@dataclass(frozen=True)
class AttributeListEntry:
    type: int
    name: str
    lowest_vcn: int
    entry: int  # the record holding this extent
    attribute_id: int


def parse_attribute_list(data: bytes) -> list[AttributeListEntry]:
    """The value of an $ATTRIBUTE_LIST: where each attribute (extent) of a file lives."""
    found = []
    position = 0
    while position + 0x1A <= len(data):
        attr_type, length, name_length, name_offset, lowest, reference, attribute_id = struct.unpack_from(
            "<IHBBqQH", data, position
        )
        if length < 0x1A or position + length > len(data) or name_offset + 2 * name_length > length:
            raise CorruptRecord("$ATTRIBUTE_LIST entry runs past the list")
        start = position + name_offset
        name = data[start : start + 2 * name_length].decode("utf-16-le", "surrogatepass")
        found.append(AttributeListEntry(attr_type, name, lowest, reference & REFERENCE_ENTRY_MASK, attribute_id))
        position += length
    return found


def stream_extents(
    extents: list[AttributeRecord], cluster_size: int, volume_offset: int
) -> tuple[int, list[tuple[int, int | None, int]]]:
    """A non-resident attribute's extents (sorted by VCN) as (size, [(stream offset,
    image offset or None, length)]) in bytes, clipped to the data size; None marks
    a sparse run or bytes past the initialized size (they read as zeros)."""
    first = extents[0]
    size, initialized = first.data_size, min(first.initialized_size, first.data_size)
    spans: list[tuple[int, int | None, int]] = []
    for extent in extents:
        vcn = extent.lowest_vcn
        for lcn, count in extent.runs:
            start = vcn * cluster_size
            vcn += count
            length = min(count * cluster_size, size - start)
            if length <= 0:
                continue
            if lcn is None:
                spans.append((start, None, length))
                continue
            live = max(0, min(length, initialized - start))
            if live:
                spans.append((start, volume_offset + lcn * cluster_size, live))
            if live < length:
                spans.append((start + live, None, length - live))
    spans.sort()
    covered = 0
    for start, _where, length in spans:
        if start != covered:
            break
        covered += length
    if covered != size:
        raise CorruptRecord(f"the run list covers {covered} of {size} bytes")
    return size, spans
