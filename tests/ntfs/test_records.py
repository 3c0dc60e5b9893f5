"""Single MFT-record structures, from bytes written inline: data runs, the
attribute list, an attribute header, and directory index entries."""

from __future__ import annotations

import re
import struct
import subprocess

import pytest

from aclscan.errors import CorruptRecord
from aclscan.ntfs.index import UpCase, parse_index_root
from aclscan.ntfs.records import (AttributeRecord, decode_runs, parse_attribute_list, security_id_in_record,
                                  stream_extents)
from tests.shared_data import expand


def test_data_runs_with_a_sparse_run_and_a_backward_step():
    # 0x60 for 0x30 clusters; 8 sparse clusters; 0x10 clusters 16 clusters back (0x50).
    runs = bytes.fromhex("11 30 60  01 08  11 10 f0  00".replace(" ", ""))
    assert decode_runs(runs) == [(0x60, 0x30), (None, 8), (0x50, 0x10)]


def test_data_run_with_wide_fields():
    # length 0x0120 (2 bytes), offset 0x0A3F10 (3 bytes)
    assert decode_runs(bytes.fromhex("3220 01 103f0a 00".replace(" ", ""))) == [(0x0A3F10, 0x120)]


@pytest.mark.parametrize("hexbytes, message", [
    ("1130 60", "no end"),
    ("1130 f0 00", "before the start of the volume"),
    ("1100 60 00", "zero or negative length"),
    ("3130 60", "malformed"),
])
def test_bad_data_runs(hexbytes, message):
    with pytest.raises(CorruptRecord, match=message):
        decode_runs(bytes.fromhex(hexbytes.replace(" ", "")))


def test_attribute_list_entries():
    name = "$SDS".encode("utf-16-le")
    entry = struct.pack("<IHBBqQH", 0x80, 0x20 + 8, 4, 0x1A, 0, 9 | (9 << 48), 3) + name + b"\0" * 6
    second = struct.pack("<IHBBqQH", 0x80, 0x20, 0, 0x1A, 0x40, 27 | (2 << 48), 5) + b"\0" * 6
    parsed = parse_attribute_list(entry + second)
    assert [(e.type, e.name, e.lowest_vcn, e.entry, e.attribute_id) for e in parsed] == [
        (0x80, "$SDS", 0, 9, 3), (0x80, "", 0x40, 27, 5)]


def test_extents_past_the_initialized_size_read_as_zeros():
    extent = AttributeRecord(0x80, "", 0, 0, None, 0, 3, ((10, 2), (None, 1), (20, 1)), 4 * 4096, 15000, 6000)
    assert stream_extents([extent], 4096, 1 << 20) == (15000, [
        (0, (1 << 20) + 10 * 4096, 6000), (6000, None, 2192), (8192, None, 4096), (12288, None, 2712)])


def test_index_root_entries_and_collation():
    def entry(reference: int, name: str, flags: int = 0) -> bytes:
        key = bytearray(0x42) + name.encode("utf-16-le")
        key[0x40], key[0x41] = len(name), 1
        length = (0x10 + len(key) + 7) // 8 * 8
        return struct.pack("<QHHH", reference | (1 << 48), length, len(key), flags) + b"\0\0" + bytes(key).ljust(
            length - 0x10, b"\0")

    entries = entry(64, "Config") + entry(70, "drivers") + struct.pack("<QHHH", 0, 0x10, 0, 2) + b"\0\0"
    value = struct.pack("<IIIB3x", 0x30, 1, 4096, 1) + struct.pack("<IIII", 0x10, 0x10 + len(entries),
                                                                   0x10 + len(entries), 0) + entries
    root = parse_index_root(value)
    assert root.block_size == 4096
    assert [(e.entry, e.name, e.is_end) for e in root.entries] == [(64, "Config", False), (70, "drivers", False),
                                                                   (0, "", True)]
    upcase = UpCase(__import__("numpy").array([ord(chr(u).upper()) if u < 0x80 else u for u in range(1 << 16)],
                                              dtype="<u2"))
    assert upcase.index_key("config") == upcase.index_key("CONFIG") < upcase.index_key("drivers")
    assert upcase.index_key("_") > upcase.index_key("Z")  # upper-cased units compare: '_' (0x5F) after 'Z'


@pytest.mark.shared
@pytest.mark.parametrize("volume, sector", [("hybrid-perfile-sd.raw", 63), ("win7-vsstest.raw", None)])
def test_security_id_in_record_is_the_sleuth_kits(volume, sector, tmp_path):
    """The SecurityId of each record's $STANDARD_INFORMATION, from the record's first
    256 bytes, against istat's "Security ID" (0 for the old 48-byte value): Windows-made
    records of both kinds."""
    image = expand("volumes", volume, tmp_path)
    offset = ["-o", str(sector)] if sector else []
    fsstat = subprocess.run(["fsstat", *offset, str(image)], capture_output=True, text=True, check=True).stdout
    record_size = int(re.search(r"Size of MFT Entries: (\d+) bytes", fsstat).group(1))
    mft = subprocess.run(["icat", *offset, str(image), "0"], capture_output=True, check=True).stdout
    compared = {}
    for entry in range(min(len(mft) // record_size, 64)):
        shown = subprocess.run(["istat", *offset, str(image), str(entry)], capture_output=True, text=True).stdout
        found = re.search(r"\$STANDARD_INFORMATION Attribute Values:.*?Security ID: (\d+)", shown, re.S)
        if found:  # in use, with a $STANDARD_INFORMATION
            head = mft[entry * record_size : entry * record_size + 256]
            compared[entry] = (security_id_in_record(head), int(found.group(1)))
    assert len(compared) > 20
    assert {entry: ours for entry, (ours, _) in compared.items()} == {e: tsk for e, (_, tsk) in compared.items()}
    seen = {tsk for _, tsk in compared.values()}
    assert 0 in seen and any(i >= 256 for i in seen), seen  # both kinds of record were compared


def test_security_id_in_record_of_a_head_too_short_or_without_a_v3_value():
    record = bytearray(256)
    struct.pack_into("<4sH", record, 0, b"FILE", 0x30)
    struct.pack_into("<H", record, 0x14, 0x38)  # first attribute at 0x38
    si = struct.pack("<IIBBHHHIH", 0x10, 0x60, 0, 0, 0, 0, 0, 0x48, 0x18) + b"\0" * 2
    record[0x38 : 0x38 + len(si)] = si
    struct.pack_into("<I", record, 0x38 + 0x18 + 0x34, 0x1234)
    assert security_id_in_record(bytes(record)) == 0x1234
    assert security_id_in_record(bytes(record[:0x38 + 0x18 + 0x34 + 2])) == 0  # the id past the head
    assert security_id_in_record(bytes(record[:0x10])) == 0
    short = bytearray(record)
    struct.pack_into("<I", short, 0x38 + 0x10, 0x30)  # a 48-byte (NTFS 1.x) value: no SecurityId
    assert security_id_in_record(bytes(short)) == 0
    other = bytearray(record)
    struct.pack_into("<I", other, 0x38, 0x30)  # $FILE_NAME first: not a base record's layout
    assert security_id_in_record(bytes(other)) == 0
    outside = bytearray(record)
    struct.pack_into("<H", outside, 0x38 + 0x14, 0x50)  # value runs past the attribute (0x60 long)
    assert security_id_in_record(bytes(outside)) == 0
