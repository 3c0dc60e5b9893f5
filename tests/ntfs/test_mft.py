import struct

import numpy as np
import pytest

from aclscan.errors import NotNTFS
from aclscan.ntfs.mft import BootSector, parse_mft_chunk
from tests.ntfs.records import RECORD_SIZE, file_name, record, security_descriptor, standard_information

FREE = b"\0" * RECORD_SIZE


def names_of(batch):
    text = batch.name_blob.decode("utf-16-le", "surrogatepass")
    return [text[s // 2 : (s + n) // 2] for s, n in zip(batch.name_start, batch.name_length)]


def test_security_id_parent_and_name_of_a_plain_file():
    data = FREE * 5 + record([standard_information(None), file_name(5, 5, ".")], sequence=5, directory=True)
    data += record([standard_information(300), file_name(5, 5, "Bericht über Ärger.txt")], sequence=7)
    batch = parse_mft_chunk(data, 0, RECORD_SIZE)
    assert batch.entry.tolist() == [5, 6]
    assert batch.sequence.tolist() == [5, 7]
    assert batch.security_id.tolist() == [0, 300]
    assert batch.name_owner.tolist() == [5, 6]
    assert batch.name_parent.tolist() == [5, 5]
    assert batch.name_parent_sequence.tolist() == [5, 5]
    assert names_of(batch) == [".", "Bericht über Ärger.txt"]
    assert batch.problems == []


def test_fixups_are_applied_so_a_name_across_the_sector_boundary_is_whole():
    # A long name pushes the $FILE_NAME across byte 510, where the USN sits on disk.
    long_name = "\U0001F600" + "n" * 250
    data = record([standard_information(256), file_name(5, 5, long_name)])
    assert data[510:512] == b"\x01\x00"  # the fixup is really in the name's path
    batch = parse_mft_chunk(data, 40, RECORD_SIZE)
    assert names_of(batch) == [long_name]
    assert batch.entry.tolist() == [40]


def test_broken_fixup_is_recorded_and_the_other_records_are_still_read():
    good = record([standard_information(257), file_name(5, 5, "good.txt")])
    torn = bytearray(record([standard_information(258), file_name(5, 5, "torn.txt")]))
    torn[1022:1024] = b"\x99\x99"  # the second sector was not written with the first
    batch = parse_mft_chunk(good + bytes(torn) + good, 100, RECORD_SIZE)
    assert batch.entry.tolist() == [100, 102]
    assert batch.problems == [(101, "update sequence (fixup) mismatch: torn or corrupt record")]


def test_free_records_are_skipped_and_garbage_is_reported():
    unused = record([standard_information(256), file_name(5, 5, "deleted.txt")], in_use=False)
    garbage = b"JUNK" + b"\x55" * (RECORD_SIZE - 4)
    batch = parse_mft_chunk(FREE + unused + garbage, 0, RECORD_SIZE)
    assert batch.entry.tolist() == []
    assert batch.problems == [(2, "record without FILE signature")]


def test_extension_record_names_belong_to_the_base_record():
    base = record([standard_information(256), file_name(5, 5, "a.txt")], sequence=3)
    extension = record([file_name(5, 5, "b.txt", namespace=0)], base=0x20, base_seq=3)
    data = base + extension
    batch = parse_mft_chunk(data, 0x20, RECORD_SIZE)
    assert batch.base_entry.tolist() == [-1, 0x20]
    assert batch.name_owner.tolist() == [0x20, 0x20]
    assert sorted(names_of(batch)) == ["a.txt", "b.txt"]


def test_resident_security_descriptor_attribute_is_returned_with_its_owner():
    raw = bytes.fromhex("01000480140000002000000000000000000000000101000000000005120000000101000000000005120000000000")
    data = record([standard_information(None), file_name(5, 5, "$Boot", namespace=3), security_descriptor(raw)])
    batch = parse_mft_chunk(data, 7, RECORD_SIZE)
    assert batch.descriptors == [(7, raw)]
    assert batch.security_id.tolist() == [0]
    assert batch.has_standard_information.tolist() == [True]


def test_attribute_running_past_the_record_is_recorded_and_earlier_names_kept():
    data = bytearray(record([standard_information(256), file_name(5, 5, "x.txt")]))
    # Corrupt the length of the second attribute ($FILE_NAME) to run past the record.
    first_length = struct.unpack_from("<I", data, 0x38 + 4)[0]
    struct.pack_into("<I", data, 0x38 + first_length + 4, 0x10000)
    # Re-apply nothing: the fixup area is untouched, so the record passes fixups.
    batch = parse_mft_chunk(bytes(data), 9, RECORD_SIZE)
    assert batch.entry.tolist() == [9]
    assert batch.security_id.tolist() == [256]
    assert batch.problems == [(9, "attribute header runs past the record")]
    assert names_of(batch) == []


def test_boot_sector_fields():
    boot = bytearray(512)
    boot[3:11] = b"NTFS    "
    struct.pack_into("<HB", boot, 0x0B, 512, 8)
    struct.pack_into("<QQ", boot, 0x28, 1_000_000, 786432)
    boot[0x40] = 0xF6  # -10: 2**10 = 1024-byte records
    boot[0x44] = 1  # one cluster per index record
    struct.pack_into("<Q", boot, 0x48, 0x0870803570802C0E)
    parsed = BootSector.from_bytes(bytes(boot))
    assert parsed.cluster_size == 4096
    assert parsed.mft_record_size == 1024
    assert parsed.index_record_size == 4096
    assert parsed.mft_lcn == 786432
    assert parsed.serial_number == 0x0870803570802C0E


def test_boot_sector_that_is_not_ntfs():
    with pytest.raises(NotNTFS):
        BootSector.from_bytes(b"\xeb\x3c\x90MSDOS5.0" + b"\0" * 500)
