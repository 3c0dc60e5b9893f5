"""Build MFT records byte by byte for parser tests (layout: NTFS docs,
FILE_RECORD_SEGMENT_HEADER and ATTRIBUTE_RECORD_HEADER)."""

from __future__ import annotations

import struct

RECORD_SIZE = 1024
USA_OFFSET = 0x30
FIRST_ATTRIBUTE = 0x38


def resident(attr_type: int, value: bytes, name: str = "") -> bytes:
    encoded_name = name.encode("utf-16-le")
    name_offset = 0x18
    value_offset = (name_offset + len(encoded_name) + 7) & ~7
    length = (value_offset + len(value) + 7) & ~7
    header = struct.pack("<IIBBHHHIHBB", attr_type, length, 0, len(name), name_offset, 0, 0, len(value), value_offset, 0, 0)
    body = header + encoded_name
    body += b"\0" * (value_offset - len(body)) + value
    return body + b"\0" * (length - len(body))


def standard_information(security_id: int | None) -> bytes:
    times = b"\x01" * 32
    if security_id is None:  # the 48-byte NTFS 1.x form
        return resident(0x10, times + struct.pack("<IIII", 0x20, 0, 0, 0))
    return resident(0x10, times + struct.pack("<IIIIIIQQ", 0x20, 0, 0, 0, 0, security_id, 0, 0))


def file_name(parent: int, parent_seq: int, name: str, namespace: int = 1) -> bytes:
    encoded = name.encode("utf-16-le", "surrogatepass")
    value = struct.pack("<Q", parent | (parent_seq << 48)) + b"\0" * 0x38
    value += struct.pack("<BB", len(encoded) // 2, namespace) + encoded
    return resident(0x30, value)


def security_descriptor(raw: bytes) -> bytes:
    return resident(0x50, raw)


def record(
    attributes: list[bytes],
    *,
    sequence: int = 1,
    directory: bool = False,
    in_use: bool = True,
    base: int = 0,
    base_seq: int = 0,
    usn: int = 0x0001,
) -> bytes:
    """A whole 1024-byte record with its update sequence array applied."""
    flags = (1 if in_use else 0) | (2 if directory else 0)
    body = b"".join(attributes) + struct.pack("<II", 0xFFFFFFFF, 0)
    used = FIRST_ATTRIBUTE + len(body)
    header = b"FILE" + struct.pack("<HHQHHHHIIQHH", USA_OFFSET, 3, 0, sequence, 1, FIRST_ATTRIBUTE, flags, used, RECORD_SIZE,
                                  base | (base_seq << 48), 0, 0)
    header += b"\0" * (USA_OFFSET - len(header))
    data = bytearray(header + b"\0" * (FIRST_ATTRIBUTE - len(header)) + body)
    data += b"\0" * (RECORD_SIZE - len(data))
    # Update sequence array: the USN, then the true last two bytes of each sector.
    struct.pack_into("<H", data, USA_OFFSET, usn)
    for index in (1, 2):
        tail = index * 512 - 2
        data[USA_OFFSET + 2 * index : USA_OFFSET + 2 * index + 2] = data[tail : tail + 2]
        struct.pack_into("<H", data, tail, usn)
    return bytes(data)
