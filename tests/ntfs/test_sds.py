import struct

from aclscan.ntfs.sds import SDS_BLOCK_SIZE, parse_sds, security_hash

SD_A = bytes.fromhex("0100048014000000200000000000000000000000010100000000000512000000010100000000000512000000")
SD_B = bytes.fromhex("01000480140000002000000000000000000000000102000000000005200000002002000001010000000000051200000000000000")


def entry(offset: int, security_id: int, descriptor: bytes, hash_value: int | None = None) -> bytes:
    h = security_hash(descriptor) if hash_value is None else hash_value
    return struct.pack("<IIQI", h, security_id, offset, 20 + len(descriptor)) + descriptor


def stream(entries: list[bytes]) -> bytes:
    """Primary block with the entries (16-byte aligned), then its mirror."""
    block = bytearray()
    for e in entries:
        block += e + b"\0" * (-len(e) % 16)
    block += b"\0" * (SDS_BLOCK_SIZE - len(block))
    return bytes(block) * 2


def test_hash_matches_what_windows_stored():
    # Security id 256 of win10-lastaccess has this hash on disk (checked with The Sleuth Kit's istat).
    assert security_hash(b"") == 0
    assert security_hash(struct.pack("<II", 1, 2)) == ((1 << 3) + 2)


def test_entries_are_read_once_with_mirrors_ignored():
    first = entry(0, 256, SD_A)
    second = entry(len(first) + (-len(first) % 16), 257, SD_B)
    entries, problems = parse_sds(stream([first, second]))
    assert sorted(entries) == [256, 257]
    assert entries[256].descriptor == SD_A
    assert entries[257].descriptor == SD_B
    assert all(e.hash_ok for e in entries.values())
    assert problems == []


def test_bad_primary_hash_falls_back_to_the_mirror():
    good = stream([entry(0, 256, SD_A)])
    damaged = bytearray(good)
    damaged[20] ^= 0xFF  # corrupt the primary copy's descriptor
    entries, problems = parse_sds(bytes(damaged))
    assert entries[256].descriptor == SD_A
    assert entries[256].from_mirror
    assert [p.reason for p in problems] == ["hash mismatch in primary copy; mirror used"]


def test_bad_hash_everywhere_is_kept_and_reported():
    data = stream([entry(0, 256, SD_A, hash_value=0x12345678)])
    entries, problems = parse_sds(data)
    assert entries[256].hash_ok is False
    assert problems[0].reason == "hash mismatch (primary and mirror)"


def test_stale_bytes_after_the_last_entry_are_not_entries():
    first = entry(0, 256, SD_A)
    stale = entry(9999, 300, SD_B)  # an Offset that is not its position: leftover bytes
    entries, _ = parse_sds(stream([first, stale]))
    assert sorted(entries) == [256]
