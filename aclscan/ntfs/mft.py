"""MFT records, parsed in bulk with numpy.

A volume has millions of records but they are nearly all alike, so one chunk of
`$MFT` (tens of thousands of records) is parsed at once: fixups are applied and
verified for every record with a handful of array operations, then the
attributes are walked one "column" at a time (the first attribute of every
record, then the second, ...), each step a few gathers over the records that
still have attributes left. What comes out is columns: per record its number,
sequence, flags, base record and `$STANDARD_INFORMATION` SecurityId; per
`$FILE_NAME` its owner, parent reference, namespace and the UTF-16 name bytes
(kept undecoded in one blob); per `$SECURITY_DESCRIPTOR` its owner and, when
resident, its bytes. Extension records (base reference set) contribute their
attributes to their base record, which is how `$ATTRIBUTE_LIST` files (many
hard links, many streams) get every name without parsing the list itself.

On-disk names follow the NTFS documentation (FILE_RECORD_SEGMENT_HEADER,
ATTRIBUTE_RECORD_HEADER, STANDARD_INFORMATION, FILE_NAME).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from aclscan.errors import NotNTFS

# Attribute type codes.
STANDARD_INFORMATION = 0x10
ATTRIBUTE_LIST = 0x20
FILE_NAME = 0x30
SECURITY_DESCRIPTOR = 0x50
END_MARKER = 0xFFFFFFFF

# FILE_RECORD_SEGMENT_HEADER fields (byte offsets).
OFS_MULTI_SECTOR_HEADER_USA_OFFSET = 0x04
OFS_MULTI_SECTOR_HEADER_USA_SIZE = 0x06
OFS_SEQUENCE_NUMBER = 0x10
OFS_FIRST_ATTRIBUTE_OFFSET = 0x14
OFS_FLAGS = 0x16
OFS_BYTES_IN_USE = 0x18
OFS_BASE_FILE_RECORD_SEGMENT = 0x20

FILE_RECORD_SEGMENT_IN_USE = 0x0001
FILE_FILE_NAME_INDEX_PRESENT = 0x0002  # a directory

# STANDARD_INFORMATION: 48 bytes in NTFS 1.x, 72 in 3.x where SecurityId is at 0x34.
SI_SECURITY_ID_OFFSET = 0x34
SI_V3_LENGTH = 0x48

# FILE_NAME value fields.
FN_PARENT_DIRECTORY = 0x00
FN_FILE_NAME_LENGTH = 0x40
FN_FLAGS = 0x41  # the name space: 0 POSIX, 1 Win32, 2 DOS, 3 Win32 and DOS
FN_FILE_NAME = 0x42
NAMESPACE_DOS = 2

# The update sequence array protects every 512-byte stride, whatever the sector size.
FIXUP_STRIDE = 512
ATTRIBUTE_HEADER_MIN = 24

FILE_SIGNATURE = int.from_bytes(b"FILE", "little")
BAAD_SIGNATURE = int.from_bytes(b"BAAD", "little")


@dataclass(frozen=True)
class BootSector:
    """The fields of the NTFS boot sector ($Boot) a scan needs."""

    bytes_per_sector: int
    sectors_per_cluster: int
    total_sectors: int
    mft_lcn: int
    mft_record_size: int
    index_record_size: int
    serial_number: int

    @property
    def cluster_size(self) -> int:
        return self.bytes_per_sector * self.sectors_per_cluster

    @classmethod
    def from_bytes(cls, data: bytes) -> "BootSector":
        if len(data) < 512 or data[3:11] != b"NTFS    ":
            raise NotNTFS("not an NTFS boot sector (no 'NTFS' OEM id)")
        bytes_per_sector, sectors_per_cluster = struct.unpack_from("<HB", data, 0x0B)
        if bytes_per_sector not in (256, 512, 1024, 2048, 4096) or sectors_per_cluster == 0:
            raise NotNTFS("NTFS boot sector with impossible geometry")
        if sectors_per_cluster > 0x80:  # 2**(256-n) sectors, for clusters over 64 KiB
            sectors_per_cluster = 1 << (256 - sectors_per_cluster)
        total_sectors, mft_lcn = struct.unpack_from("<QQ", data, 0x28)
        cluster = bytes_per_sector * sectors_per_cluster

        def record_size(raw: int) -> int:
            signed = raw - 256 if raw > 127 else raw
            return cluster * signed if signed > 0 else 1 << -signed

        serial = struct.unpack_from("<Q", data, 0x48)[0]
        return cls(
            bytes_per_sector,
            sectors_per_cluster,
            total_sectors,
            mft_lcn,
            record_size(data[0x40]),
            record_size(data[0x44]),
            serial,
        )


@dataclass
class MftBatch:
    """Columns parsed from one chunk of `$MFT` (only in-use records appear)."""

    # Per in-use record (base and extension records alike).
    entry: np.ndarray  # int64
    sequence: np.ndarray  # uint16
    flags: np.ndarray  # uint16
    base_entry: np.ndarray  # int64, -1 for a base record
    base_sequence: np.ndarray  # uint16
    security_id: np.ndarray  # uint32, 0 where $STANDARD_INFORMATION has none
    has_standard_information: np.ndarray  # bool
    has_attribute_list: np.ndarray  # bool: attributes may live in extension records
    # Per $FILE_NAME attribute.
    name_record: np.ndarray  # int64: row (in the columns above) of the record holding it
    name_owner: np.ndarray  # int64: the file it names (the base record's entry)
    name_parent: np.ndarray  # int64
    name_parent_sequence: np.ndarray  # uint16
    name_namespace: np.ndarray  # uint8
    name_start: np.ndarray  # int64, byte offset in name_blob
    name_length: np.ndarray  # int64, bytes
    name_blob: bytes
    # Per $SECURITY_DESCRIPTOR attribute: (owner record, resident bytes or None).
    descriptors: list[tuple[int, bytes | None]] = field(default_factory=list)
    # Records that could not be read: (entry, reason).
    problems: list[tuple[int, str]] = field(default_factory=list)
    records_seen: int = 0


class _Fields:
    """Little-endian integers at arbitrary byte positions of one buffer.

    NTFS keeps attribute headers 8-byte aligned and the fields read here at even
    (mostly 4-aligned) positions, so reads go through u16/u32 views of the buffer
    with one gather each; an unaligned position falls back to byte gathers.
    """

    def __init__(self, flat: np.ndarray):
        self.flat = flat
        self.u16_view = flat[: len(flat) // 2 * 2].view("<u2")
        self.u32_view = flat[: len(flat) // 4 * 4].view("<u4")
        self.i64_view = flat[: len(flat) // 8 * 8].view("<i8")

    def u16(self, pos: np.ndarray) -> np.ndarray:
        if not (pos & 1).any():
            return self.u16_view[pos >> 1].astype(np.int64)
        return self.flat[pos].astype(np.int64) | (self.flat[pos + 1].astype(np.int64) << 8)

    def u32(self, pos: np.ndarray) -> np.ndarray:
        if not (pos & 3).any():
            return self.u32_view[pos >> 2].astype(np.int64)
        return self.u16(pos) | (self.u16(pos + 2) << 16)

    def u48(self, pos: np.ndarray) -> np.ndarray:
        return self.u32(pos) | (self.u16(pos + 4) << 32)


def _apply_fixups(records: np.ndarray, in_use: np.ndarray, record_size: int) -> np.ndarray:
    """Apply the update sequence array to the in-use records, in place.

    Returns a bool array over all records: True where the record is in use and
    every protected stride ended with the update sequence number (it was written
    whole). Works column-wise: one strided operation per stride.
    """
    strides = record_size // FIXUP_STRIDE
    words = records.view("<u2")
    usa_offset = words[:, OFS_MULTI_SECTOR_HEADER_USA_OFFSET // 2].astype(np.int64)
    usa_size = words[:, OFS_MULTI_SECTOR_HEADER_USA_SIZE // 2].astype(np.int64)
    sane = in_use & (usa_size == strides + 1) & (usa_offset >= 0x28) & (usa_offset % 2 == 0)
    sane &= usa_offset + 2 * usa_size <= FIXUP_STRIDE - 2
    ok = np.zeros(len(records), dtype=bool)
    # Records of one volume share the array's place (0x30 on NTFS 3.1, 0x2A on 3.0).
    places = usa_offset[sane]
    if not len(places):
        return ok
    # Usually a single place: skip the sort np.unique would do.
    distinct = [int(places[0])] if (places == places[0]).all() else np.unique(places).tolist()
    for place in distinct:
        member = sane & (usa_offset == place)
        usn = words[:, place // 2]
        good = member.copy()
        for index in range(1, strides + 1):
            tail = (index * FIXUP_STRIDE - 2) // 2
            good &= words[:, tail] == usn
        for index in range(1, strides + 1):
            tail = (index * FIXUP_STRIDE - 2) // 2
            np.copyto(words[:, tail], words[:, place // 2 + index], where=good)
        ok |= good
    return ok


def _records_in_use(data: bytes | bytearray, count: int, first_entry: int, record_size: int):
    """(records as a 2-D array with fixups applied, the rows of the in-use records whose
    fixups hold, problems): BAAD records, records without a FILE signature and torn ones
    are problems, never rows."""
    # Fixups are applied in place: a bytearray from the image layer is used as it is
    # (the caller hands it over), anything else is copied once.
    buffer = data if isinstance(data, bytearray) else bytearray(memoryview(data)[: count * record_size])
    records = np.frombuffer(buffer, dtype=np.uint8, count=count * record_size).reshape(count, record_size)
    problems: list[tuple[int, str]] = []

    signature = records[:, :4].view("<u4")[:, 0] if count else np.zeros(0, dtype=np.uint32)
    flags_all = records[:, OFS_FLAGS : OFS_FLAGS + 2].view("<u2")[:, 0].astype(np.int64) if count else signature
    is_file = signature == FILE_SIGNATURE
    in_use = is_file & ((flags_all & FILE_RECORD_SEGMENT_IN_USE) != 0)
    for row in np.nonzero(signature == BAAD_SIGNATURE)[0]:
        problems.append((first_entry + int(row), "record marked BAAD (a failed multi-sector write)"))
    garbage = ~is_file & (signature != BAAD_SIGNATURE) & (signature != 0)
    for row in np.nonzero(garbage)[0]:
        problems.append((first_entry + int(row), "record without FILE signature"))

    fixup_ok = _apply_fixups(records, in_use, record_size) if count else in_use
    for row in np.nonzero(in_use & ~fixup_ok)[0]:
        problems.append((first_entry + int(row), "update sequence (fixup) mismatch: torn or corrupt record"))
    return records, np.nonzero(fixup_ok)[0], problems


def _gather_names(fields, name_rows, name_value, name_value_length, problem):
    """The $FILE_NAME columns of a chunk and its name blob (the UTF-16LE bytes,
    undecoded): (rows, value positions, name starts, name lengths in bytes, blob). A
    name longer than its attribute is a ``problem(row, why)`` and left out."""
    flat = fields.flat
    empty = np.zeros(0, dtype=np.int64)
    fn_rows = np.concatenate(name_rows) if name_rows else empty
    fn_value = np.concatenate(name_value) if name_rows else empty
    fn_value_length = np.concatenate(name_value_length) if name_rows else empty
    name_chars = flat[fn_value + FN_FILE_NAME_LENGTH].astype(np.int64)
    fits = FN_FILE_NAME + 2 * name_chars <= fn_value_length
    for row in fn_rows[~fits]:
        problem(row, "$FILE_NAME longer than its attribute")
    fn_rows, fn_value, name_chars = fn_rows[fits], fn_value[fits], name_chars[fits]
    # Names start at even offsets (attribute values are 8-byte aligned), so gather
    # them as UTF-16 code units: one index per character.
    name_length = 2 * name_chars
    name_start = np.zeros(len(name_length), dtype=np.int64)
    if len(name_length):
        name_start[1:] = np.cumsum(name_length)[:-1]
        first_unit = fn_value + FN_FILE_NAME
        total = int(name_chars.sum())
        if not (first_unit & 1).any():
            source = np.repeat((first_unit >> 1) - (name_start >> 1), name_chars) + np.arange(total, dtype=np.int64)
            name_blob = fields.u16_view[source].tobytes()
        else:
            source = np.repeat(first_unit - name_start, name_length) + np.arange(2 * total, dtype=np.int64)
            name_blob = flat[source].tobytes()
    else:
        name_blob = b""
    return fn_rows, fn_value, name_start, name_length, name_blob


def parse_mft_chunk(data: bytes | bytearray, first_entry: int, record_size: int) -> MftBatch:
    """Parse every in-use record of a run of whole records from `$MFT`.

    A ``bytearray`` is modified in place (fixups); pass bytes to keep the input.
    """
    count = len(data) // record_size
    records, rows, problems = _records_in_use(data, count, first_entry, record_size)
    flat = records.reshape(-1)
    fields = _Fields(flat)
    base = rows.astype(np.int64) * record_size
    first_attr = fields.u16(base + OFS_FIRST_ATTRIBUTE_OFFSET)
    bytes_in_use = np.minimum(fields.u32(base + OFS_BYTES_IN_USE), record_size)
    base_ref = fields.u48(base + OFS_BASE_FILE_RECORD_SEGMENT)
    base_ref_sequence = fields.u16(base + OFS_BASE_FILE_RECORD_SEGMENT + 6)
    # An extension record of $MFT itself names base record 0: the sequence number tells it from "no base".
    is_extension = (base_ref != 0) | (base_ref_sequence != 0)

    n = len(rows)
    security_id = np.zeros(n, dtype=np.uint32)
    has_si = np.zeros(n, dtype=bool)
    has_attribute_list = np.zeros(n, dtype=bool)
    owner = np.where(is_extension, base_ref, first_entry + rows)
    broken = np.zeros(n, dtype=bool)

    name_rows: list[np.ndarray] = []
    name_value: list[np.ndarray] = []
    name_value_length: list[np.ndarray] = []
    descriptor_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    cursor = base + first_attr
    end = base + bytes_in_use
    # Attribute headers are 8-byte aligned, so each step reads whole 64-bit words:
    # Type|Length, then FormCode (non-resident), then ValueLength|ValueOffset.
    words = fields.i64_view
    last_word = len(words) - 1
    misaligned = (first_attr & 7) != 0
    broken[misaligned & (first_attr < bytes_in_use)] = True
    active = np.nonzero((first_attr < bytes_in_use) & ~misaligned)[0]
    for _step in range(record_size // ATTRIBUTE_HEADER_MIN + 1):
        if len(active) == 0:
            break
        pos = cursor[active]
        room = end[active] - pos
        head = words[pos >> 3]
        attr_type = head & 0xFFFFFFFF
        length = (head >> 32) & 0xFFFFFFFF
        # Attributes are stored in ascending type order: past $SECURITY_DESCRIPTOR
        # nothing this pass reads can follow, so the record is done. (The end
        # marker 0xFFFFFFFF is above every type too.)
        finished = attr_type > SECURITY_DESCRIPTOR
        valid = ~finished & (room >= ATTRIBUTE_HEADER_MIN) & (length >= ATTRIBUTE_HEADER_MIN) & (length <= room)
        valid &= (length & 7) == 0
        broken[active[~finished & ~valid]] = True

        live = active[valid]
        pos = pos[valid]
        attr_type = attr_type[valid]
        length = length[valid]
        word_index = pos >> 3
        non_resident = (words[np.minimum(word_index + 1, last_word)] & 0xFF) != 0
        value_word = words[np.minimum(word_index + 2, last_word)]
        value_length = value_word & 0xFFFFFFFF
        value_offset = (value_word >> 32) & 0xFFFF
        value_fits = ~non_resident & (value_offset + value_length <= length)

        pick = (attr_type == STANDARD_INFORMATION) & value_fits
        value = pos[pick] + value_offset[pick]
        has_si[live[pick]] = True
        v3 = value_length[pick] >= SI_V3_LENGTH
        security_id[live[pick][v3]] = fields.u32(value[v3] + SI_SECURITY_ID_OFFSET)

        has_attribute_list[live[attr_type == ATTRIBUTE_LIST]] = True

        pick = (attr_type == FILE_NAME) & value_fits & (value_length >= FN_FILE_NAME)
        if pick.any():
            name_rows.append(live[pick])
            name_value.append(pos[pick] + value_offset[pick])
            name_value_length.append(value_length[pick])

        pick = attr_type == SECURITY_DESCRIPTOR
        if pick.any():
            descriptor_parts.append(
                (live[pick], non_resident[pick], pos[pick] + value_offset[pick], value_length[pick])
            )

        cursor[live] = pos + length
        active = live
    for row in np.nonzero(broken)[0]:
        problems.append((first_entry + int(rows[row]), "attribute header runs past the record"))

    fn_rows, fn_value, name_start, name_length, name_blob = _gather_names(
        fields, name_rows, name_value, name_value_length, lambda row, why: problems.append(
            (first_entry + int(rows[row]), why)))

    descriptors: list[tuple[int, bytes | None]] = []
    for part_rows, part_nonresident, part_value, part_length in descriptor_parts:
        for row, nonres, value, length in zip(part_rows, part_nonresident, part_value, part_length):
            record_owner = int(owner[row])
            if nonres:
                descriptors.append((record_owner, None))
            else:
                descriptors.append((record_owner, flat[value : value + length].tobytes()))

    # A record with a broken attribute keeps what was read before the break.
    sequence = fields.u16(base + OFS_SEQUENCE_NUMBER).astype(np.uint16)
    return MftBatch(
        entry=(first_entry + rows).astype(np.int64),
        sequence=sequence,
        flags=fields.u16(base + OFS_FLAGS).astype(np.uint16),
        base_entry=np.where(is_extension, base_ref, -1).astype(np.int64),
        base_sequence=base_ref_sequence.astype(np.uint16),
        security_id=security_id,
        has_standard_information=has_si,
        has_attribute_list=has_attribute_list,
        name_record=fn_rows.astype(np.int64),
        name_owner=owner[fn_rows].astype(np.int64),
        name_parent=fields.u48(fn_value + FN_PARENT_DIRECTORY),
        name_parent_sequence=fields.u16(fn_value + FN_PARENT_DIRECTORY + 6).astype(np.uint16),
        name_namespace=flat[fn_value + FN_FLAGS].astype(np.uint8),
        name_start=name_start,
        name_length=name_length,
        name_blob=name_blob,
        descriptors=descriptors,
        problems=problems,
        records_seen=count,
    )
