"""Damaging hive bytes for the tests: what a bad sector or a careless copy leaves."""

from __future__ import annotations

from collections.abc import Iterable


def flip_bytes(data: bytes, damage: Iterable[tuple[int, int]]) -> bytes:
    """``data`` with each (offset, byte) of ``damage`` written over it (offsets past
    the end are ignored)."""
    out = bytearray(data)
    for offset, byte in damage:
        if offset < len(out):
            out[offset] = byte
    return bytes(out)
