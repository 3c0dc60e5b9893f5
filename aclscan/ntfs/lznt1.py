"""LZNT1, the compression of NTFS compressed attributes (MS-XCA 2.5), and the
compression units it is stored in. Bytes in, bytes out: no I/O.

A compressed attribute is cut into compression units of 2**CompressionUnit
clusters (16 clusters: 64 KiB on 4 KiB clusters). A unit whose clusters are all
allocated is stored as it is; one whose tail is sparse holds LZNT1 data in its
allocated clusters; one with none allocated is zeros. LZNT1 data is a run of
chunks, each a 16-bit header (bits 0-11: stored size - 3, bit 15: compressed)
and at most 4096 bytes of output. Inside a compressed chunk, a flag byte
announces eight tokens: a literal byte (bit 0) or a 16-bit back reference (bit
1) whose split between offset and length bits grows with the position in the
chunk.
"""

from __future__ import annotations

from aclscan.errors import CorruptRecord

CHUNK_SIZE = 4096
CHUNK_COMPRESSED = 0x8000
CHUNK_SIZE_MASK = 0x0FFF


def decompress(data: bytes, limit: int) -> bytes:
    """Up to ``limit`` bytes of the LZNT1 stream ``data`` (a compression unit)."""
    out = bytearray()
    position = 0
    while position + 2 <= len(data) and len(out) < limit:
        header = data[position] | data[position + 1] << 8
        if header == 0:
            break
        stored = (header & CHUNK_SIZE_MASK) + 1
        body = data[position + 2 : position + 2 + stored]
        if len(body) != stored:
            raise CorruptRecord("LZNT1 chunk runs past its compression unit")
        position += 2 + stored
        if header & CHUNK_COMPRESSED:
            out += _chunk(body)
        else:
            out += body
    return bytes(out[:limit])


def _chunk(body: bytes) -> bytearray:
    chunk = bytearray()
    position = 0
    while position < len(body):
        flags = body[position]
        position += 1
        for bit in range(8):
            if position >= len(body):
                break
            if not flags >> bit & 1:
                chunk.append(body[position])
                position += 1
                continue
            if position + 2 > len(body) or not chunk:
                raise CorruptRecord("LZNT1 back reference is truncated or comes first")
            token = body[position] | body[position + 1] << 8
            position += 2
            # Offset bits: enough to reach back to the chunk's start (at least 4).
            offset_bits = max(4, (len(chunk) - 1).bit_length())
            length_bits = 16 - offset_bits
            distance = (token >> length_bits) + 1
            length = (token & ((1 << length_bits) - 1)) + 3
            if distance > len(chunk):
                raise CorruptRecord("LZNT1 back reference before the chunk's start")
            start = len(chunk) - distance
            for index in range(length):  # may overlap what it writes
                chunk.append(chunk[start + index])
            if len(chunk) > CHUNK_SIZE:
                raise CorruptRecord("LZNT1 chunk decompresses past 4096 bytes")
    return chunk


def unit_clusters(runs: list[tuple[int, int | None, int]], first_vcn: int, count: int) -> list[int | None]:
    """Per cluster of one compression unit (``count`` clusters from ``first_vcn``),
    its LCN or None (sparse); ``runs`` are (first VCN, first LCN or None, clusters)."""
    clusters: list[int | None] = [None] * count
    for vcn, lcn, length in runs:
        low, high = max(vcn, first_vcn), min(vcn + length, first_vcn + count)
        for index in range(low, high):
            clusters[index - first_vcn] = None if lcn is None else lcn + index - vcn
    return clusters
