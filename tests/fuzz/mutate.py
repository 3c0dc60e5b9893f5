"""Mutations of a seed input: what a damaged disk or a hostile file does to bytes.

``mutate(seed, choose)`` applies one to eight edits; ``choose(lo, hi)`` picks an
integer in ``[lo, hi]``. :class:`Tape` makes the choices from a string of bytes that
hypothesis draws in one go (far cheaper than one draw per choice) and shrinks to its
fewest, smallest bytes, that is to the fewest, smallest edits.
"""

from __future__ import annotations

from typing import Callable

Choose = Callable[[int, int], int]


class Tape:
    """``choose(lo, hi)`` from ``tape``, 4 bytes a choice; past its end every choice is ``lo``."""

    def __init__(self, tape: bytes) -> None:
        self.tape = tape
        self.pos = 0

    def __call__(self, lo: int, hi: int) -> int:
        raw = self.tape[self.pos : self.pos + 4]
        self.pos += 4
        return lo + int.from_bytes(raw, "little") % (hi - lo + 1)

# Values a length, count or offset field is set to: the edges a parser must check.
EXTREMES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
WIDTHS = (1, 2, 4, 8)
MAX_SPAN = 64


def _flip(data: bytearray, choose: Choose) -> None:
    pos = choose(0, len(data) - 1)
    data[pos] ^= choose(1, 255)


def _set_byte(data: bytearray, choose: Choose) -> None:
    data[choose(0, len(data) - 1)] = EXTREMES[choose(0, 5)]


def _truncate(data: bytearray, choose: Choose) -> None:
    del data[choose(0, len(data) - 1) :]


def _insert(data: bytearray, choose: Choose) -> None:
    pos = choose(0, len(data))
    length = choose(1, MAX_SPAN)
    if choose(0, 1) and data:  # a copy of another part of the input (a repeated record)
        start = choose(0, len(data) - 1)
        span = data[start : start + length]
    else:
        span = bytes(choose(0, 255) for _ in range(min(length, 8))) * (length // 8 + 1)
        span = span[:length]
    data[pos:pos] = span


def _remove(data: bytearray, choose: Choose) -> None:
    pos = choose(0, len(data) - 1)
    del data[pos : pos + choose(1, MAX_SPAN)]


def _length_field(data: bytearray, choose: Choose) -> None:
    width = WIDTHS[choose(0, len(WIDTHS) - 1)]
    if len(data) < width:
        return
    # Fields are aligned to their width in every format fuzzed here.
    pos = choose(0, (len(data) - width) // width) * width
    value = EXTREMES[choose(0, len(EXTREMES) - 1)] & ((1 << (8 * width)) - 1)
    if choose(0, 3) == 0:  # the input's own size, or just past it
        value = (len(data) + choose(-1, 1)) % (1 << (8 * width))
    data[pos : pos + width] = value.to_bytes(width, "little")


def _overwrite(data: bytearray, choose: Choose) -> None:
    """Copy one span over another (a record or cell landing in the wrong place)."""
    source = choose(0, len(data) - 1)
    target = choose(0, len(data) - 1)
    span = data[source : source + choose(1, MAX_SPAN)]
    data[target : target + len(span)] = span


MUTATIONS = (_flip, _set_byte, _truncate, _insert, _remove, _length_field, _length_field, _overwrite)


def mutate(seed: bytes, choose: Choose) -> bytes:
    data = bytearray(seed)
    for _ in range(choose(1, 8)):
        operation = MUTATIONS[choose(0, len(MUTATIONS) - 1)]
        if not data and operation is not _insert:
            operation = _insert
        operation(data, choose)
    return bytes(data)
