"""Read a registry hive (regf) from bytes: aclscan's own parser.

A hive comes in as bytes (or a binary file object, or :class:`HiveFiles` read at the
edge; a path is handed to :func:`~aclscan.hives.files.read_hive_files` first) and goes
out as a :class:`Hive`: its root :class:`RegKey`, keys by path, values as
:class:`RegValue` (raw bytes plus the 32-bit type), each key's security cell, and two
bulk walks for the scan (:meth:`Hive.key_security`, :meth:`Hive.security_cells`).
Nothing here reads files or writes temporary copies: the whole hive is in memory.

Every parse failure stays in this module: a hive that cannot be opened at all raises
:class:`HiveError` (one line); a part that cannot be read (a key, a subkey list, a
value, an sk cell) becomes a line of ``Hive.status.problems`` and the rest is read.

Facts from Maxim Suhanov's "Windows registry file format specification":

- Base block (4096 bytes): "regf", PrimarySequenceNumber (4), SecondarySequenceNumber
  (8), LastWrittenTimestamp (0x0C), Major/MinorVersion (0x14, 0x18), FileType (0x1C,
  0 = primary), RootCellOffset (0x24), HiveBinsDataSize (0x28), FileName (0x30, 64
  bytes UTF-16LE), CheckSum (0x1FC, XOR of the 127 dwords before it). A hive is dirty
  when its sequence numbers differ or its checksum is wrong; its transaction logs are
  then applied (:mod:`aclscan.hives.recovery`).
- Hive bins follow the base block: "hbin", its offset from the first bin, its size (a
  multiple of 4096), then cells. Every offset in a cell is relative to the first bin
  (file offset 0x1000) and points at a cell's 4-byte size, negative when allocated.
- nk (key node): Flags (2; KEY_COMP_NAME 0x20: the name is Latin-1, else UTF-16LE),
  LastWrittenTimestamp (4), Parent (16), subkey count (20), subkeys list (28), value
  count (36), values list (40), Security (44: the sk cell), name length (72), name (76).
- Subkey lists: li (count, offsets), lf and lh (count, offset + 4-byte hint pairs),
  ri (count, offsets of li/lf/lh lists: an index root never holds another).
- vk (value): NameLength (2), DataSize (4; bit 31: the data, 4 bytes or fewer, is in
  the DataOffset field itself), DataOffset (8), Type (12), Flags (16; VALUE_COMP_NAME
  0x1: the name is Latin-1), name (20). Data above 16344 bytes in hives 1.4 and later
  is a db cell: segment count (2), offset of the segments list (4).
- sk (key security): Flink (4), Blink (8), ReferenceCount (12), descriptor size (16),
  a self-relative security descriptor (20). Every sk of a hive is on one circular
  doubly linked list; keys with the same descriptor share one cell.
"""

from __future__ import annotations

import functools
import io
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Union

from aclscan.errors import Error, HiveError, WrongHive
from aclscan.hives.files import HiveFiles, read_hive_files
from aclscan.hives.recovery import apply_logs, base_block_checksum

__all__ = [
    "HIVE_KINDS",
    "Hive",
    "HiveFiles",
    "HiveSource",
    "HiveStatus",
    "LogSource",
    "RegKey",
    "RegValue",
    "open_hive",
    "printable",
    "REG_BINARY",
    "REG_DWORD",
    "REG_DWORD_BIG_ENDIAN",
    "REG_EXPAND_SZ",
    "REG_LINK",
    "REG_MULTI_SZ",
    "REG_NONE",
    "REG_QWORD",
    "REG_SZ",
]

HiveSource = Union[bytes, bytearray, memoryview, BinaryIO, HiveFiles, str, os.PathLike]
# Transaction logs: {name: bytes}, or bytes (or binary files) in LOG1, LOG2, LOG order.
LogSource = Union[Mapping[str, bytes], Sequence[Union[bytes, bytearray, memoryview, BinaryIO, tuple[str, bytes]]]]

REG_NONE = 0
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_DWORD_BIG_ENDIAN = 5
REG_LINK = 6
REG_MULTI_SZ = 7
REG_QWORD = 11

# The machine hives aclscan reads, and the root key that tells each apart.
HIVE_KINDS = ("SAM", "SECURITY", "SYSTEM", "SOFTWARE")

BASE_BLOCK_SIZE = 0x1000
HBIN_HEADER_SIZE = 0x20
BIG_DATA_SEGMENT = 16344  # the most data one cell holds before db segments (1.4 and later)
KEY_COMP_NAME = 0x0020
VALUE_COMP_NAME = 0x0001
NIL = 0xFFFFFFFF
_FILE_TYPES = {0: "primary", 1: "transaction log", 2: "transaction log", 6: "transaction log"}

# Cells, read from the cell's size field on.
_CELL_SIZE = struct.Struct("<i")
# nk: size, "nk", Flags, LastWrittenTimestamp, Parent, subkey count, volatile subkey
# count, subkeys list, volatile subkeys list, value count, values list, Security, Class,
# five largest-size fields, name length, class name length; the name follows (80).
_NK = struct.Struct("<i2sHQ4xIIIIIIIII20xHH")
_NK_NAME = 80
# The fields the bulk walk needs: size, "nk", Flags, subkey count, subkeys list,
# Security, name length.
_NK_WALK = struct.Struct("<i2sH16xI4xI12xI24xH")
_SK = struct.Struct("<i2s2xIIII")  # size, "sk", Flink, Blink, ReferenceCount, descriptor size
_SK_HEADER = 24  # from the size field to the descriptor
_VK = struct.Struct("<i2sHIIIH")  # size, "vk", NameLength, DataSize, DataOffset, Type, Flags
_VK_NAME = 24
_HBIN = struct.Struct("<4sII")  # "hbin", offset from the first bin, size


@functools.lru_cache(maxsize=1024)
def _offsets(count: int, stride: int) -> struct.Struct:
    """The struct of ``count`` list entries of ``stride`` dwords each."""
    return struct.Struct(f"<{count * stride}I")


class _Unreadable(Exception):
    """One part of a hive that cannot be read; becomes a line of ``problems``."""


# What reading one part of a hive may raise: _Unreadable for what the checks foresee, the
# others for what they do not (struct past a bound, a bad slice); each is one problem.
_BROKEN = (_Unreadable, struct.error, IndexError, ValueError, OverflowError)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _Unreadable) else f"{type(exc).__name__}: {_one_line(exc)}"


# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RegValue:
    """One value: ``name`` ("" for the default value), ``type`` (any 32-bit number) and
    ``raw``, the data as stored."""

    name: str
    type: int
    raw: bytes

    @property
    def text(self) -> str | None:
        """REG_SZ / REG_EXPAND_SZ / REG_LINK data as text (up to the first NUL), else None."""
        if self.type not in (REG_SZ, REG_EXPAND_SZ, REG_LINK):
            return None
        raw = self.raw[: len(self.raw) // 2 * 2]
        text = raw.decode("utf-16-le", "replace")
        return text if self.type == REG_LINK else text.split("\0", 1)[0]

    @property
    def number(self) -> int | None:
        """REG_DWORD / REG_DWORD_BIG_ENDIAN / REG_QWORD data as a number, else None."""
        if self.type == REG_DWORD and len(self.raw) >= 4:
            return int.from_bytes(self.raw[:4], "little")
        if self.type == REG_DWORD_BIG_ENDIAN and len(self.raw) >= 4:
            return int.from_bytes(self.raw[:4], "big")
        if self.type == REG_QWORD and len(self.raw) >= 8:
            return int.from_bytes(self.raw[:8], "little")
        return None

    @property
    def strings(self) -> list[str] | None:
        """REG_MULTI_SZ data as its non-empty strings, else None."""
        if self.type != REG_MULTI_SZ:
            return None
        raw = self.raw[: len(self.raw) // 2 * 2]
        return [s for s in raw.decode("utf-16-le", "replace").split("\0") if s]


@dataclass(frozen=True)
class HiveStatus:
    """What opening a hive found: its kind, whether it was dirty, which logs were applied,
    and anything that had to be skipped (one line each)."""

    label: str  # the path, or what the caller called the bytes
    kind: str | None  # "SAM", "SECURITY", "SYSTEM", "SOFTWARE" or None
    file_name: str  # the base block's FileName (the last 31 characters of the hive's path)
    dirty: bool  # the primary file's sequence numbers differ or its checksum is wrong
    logs_applied: tuple[str, ...] = ()
    recovered_pages: int = 0
    problems: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------
# Keys


def _fold(name: str) -> str:
    # Windows compares names upper-cased one UTF-16 unit at a time; a character whose
    # upper case is more than one character (German sharp s) stays as it is.
    out = []
    for ch in name:
        up = ch.upper()
        out.append(up if len(up) == 1 else ch)
    return "".join(out)


def _key_name(raw: bytes, flags: int) -> str:
    return raw.decode("latin-1") if flags & KEY_COMP_NAME else raw.decode("utf-16-le", "replace")


class RegKey:
    """One key of an open hive. Subkeys and values are read on first use and kept."""

    def __init__(self, hive: Hive, offset: int, parent: RegKey | None) -> None:
        self._hive = hive
        self._parent = parent
        self.offset = offset  # of its nk cell, from the first hive bin
        fields = hive._nk(offset)
        (_size, _sig, flags, self.last_written, _parent_offset, self._subkey_count, _volatile,
         self._subkey_list, _volatile_list, self._value_count, self._value_list, self.security_offset,
         _class, name_length, _class_length) = fields
        start = BASE_BLOCK_SIZE + offset + _NK_NAME
        self.name = _key_name(hive._data[start : start + name_length], flags)
        # backslash-separated from the root's children ("SAM\\Domains"); "" for the root
        self.path = "" if parent is None else f"{parent.path}\\{self.name}" if parent.path else self.name
        self._subkeys: list[RegKey] | None = None
        self._values: list[RegValue] | None = None

    def __repr__(self) -> str:
        return f"RegKey({self.path or '(root)'!r})"

    def _is_above(self, offset: int) -> bool:
        key: RegKey | None = self
        while key is not None:
            if key.offset == offset:
                return True
            key = key._parent
        return False

    def subkeys(self) -> list[RegKey]:
        """The subkeys, in the order the hive lists them. A subkey that cannot be read,
        or that is this key or one above it (a loop), is left out and named in the
        hive's ``problems``."""
        if self._subkeys is None:
            found: list[RegKey] = []
            where = self.path or "(root)"
            if self._subkey_count:
                for offset in self._hive._subkey_offsets(self._subkey_list, where):
                    if self._is_above(offset):
                        self._hive._problem(f"subkeys of {where}: the list refers back to {offset:#x} (a loop)")
                        continue
                    try:
                        found.append(RegKey(self._hive, offset, self))
                    except _BROKEN as exc:
                        self._hive._problem(f"a subkey of {where}: {_reason(exc)}")
            self._subkeys = found
        return self._subkeys

    def subkey(self, name: str) -> RegKey | None:
        """The direct subkey called ``name`` (compared as Windows compares), or None."""
        wanted = _fold(name)
        for child in self.subkeys():
            if _fold(child.name) == wanted:
                return child
        return None

    def find(self, path: str) -> RegKey | None:
        """The key at a backslash-separated path below this one, or None."""
        key: RegKey | None = self
        for part in path.strip("\\").split("\\"):
            if part and key is not None:
                key = key.subkey(part)
        return key

    def values(self) -> list[RegValue]:
        """The values, in stored order. A value whose cells are out of bounds is skipped
        and named in the hive's ``problems``."""
        if self._values is None:
            self._values = list(self._hive._read_values(self._value_count, self._value_list, self.path))
        return self._values

    def value(self, name: str = "") -> RegValue | None:
        """The value called ``name`` ("" for the default value, case-insensitive), or None."""
        wanted = _fold(name)
        for value in self.values():
            if _fold(value.name) == wanted:
                return value
        return None

    def security(self) -> bytes:
        """The key's self-relative security descriptor (:class:`HiveError` if its sk
        cell cannot be read)."""
        return self._hive.security_descriptor(self.security_offset)


# ---------------------------------------------------------------------------------------
# The hive


class Hive:
    """An open hive: ``root``, ``key(path)``, ``kind``, ``status`` and the key security
    walks. Everything is in memory; there is nothing to close."""

    def __init__(self, data: bytes, status: HiveStatus) -> None:
        self._data = data
        self._minor = struct.unpack_from("<I", data, 0x18)[0]
        bins_size = struct.unpack_from("<I", data, 0x28)[0]
        self._end = min(len(data), BASE_BLOCK_SIZE + bins_size)  # cells lie before this
        self._root_offset = struct.unpack_from("<I", data, 0x24)[0]
        self._problems: list[str] = list(status.problems)
        self._status = status
        self._security_cells: dict[int, bytes] | None = None
        self._check_bins()
        try:
            self.root = RegKey(self, self._root_offset, None)
        except _BROKEN as exc:
            raise HiveError(f"{status.label}: corrupt registry hive (root key: {_reason(exc)})") from None
        self.kind = _identify(self.root)

    @property
    def status(self) -> HiveStatus:
        return HiveStatus(
            label=self._status.label,
            kind=self.kind,
            file_name=self._status.file_name,
            dirty=self._status.dirty,
            logs_applied=self._status.logs_applied,
            recovered_pages=self._status.recovered_pages,
            problems=tuple(self._problems),
        )

    @property
    def label(self) -> str:
        return self._status.label

    def key(self, path: str) -> RegKey | None:
        """The key at ``path`` (``"SAM\\Domains\\Account"``), or None."""
        return self.root.find(path)

    def require(self, *kinds: str) -> Hive:
        """This hive, if it is of one of ``kinds`` (default: any of :data:`HIVE_KINDS`);
        :class:`WrongHive` otherwise, saying what it is."""
        kinds = kinds or HIVE_KINDS
        if self.kind in kinds:
            return self
        if self.kind is None:
            names = ", ".join(printable(k.name, 40) for k in self.root.subkeys()[:6]) or "none"
            what = f"not a machine hive aclscan knows (root keys: {names})"
        else:
            what = f"a {self.kind} hive"
        wanted = " or ".join(kinds)
        raise WrongHive(f"{self.label}: expected a {wanted} hive, but this is {what}")

    def _problem(self, text: str) -> None:
        line = printable(text)
        if line not in self._problems:  # a walk made twice says it once
            self._problems.append(line)

    # cells -----------------------------------------------------------------------------

    def _cell(self, offset: int, what: str) -> tuple[int, int]:
        """(payload position in the file, payload size) of the cell at hive offset ``offset``."""
        position = BASE_BLOCK_SIZE + offset
        if offset == NIL or offset & 7 or position + 4 > self._end:
            raise _Unreadable(f"{what}: cell offset {offset:#x} is outside the hive bins")
        size = _CELL_SIZE.unpack_from(self._data, position)[0]
        size = -size if size < 0 else size  # a free cell still holds what it held
        if size < 8 or position + size > self._end:
            raise _Unreadable(f"{what}: the cell at {offset:#x} has a bad size {size}")
        return position + 4, size - 4

    def _check_bins(self) -> None:
        """Each hive bin's header, and that its first cell fits it: a damaged bin is a
        problem (the cells it holds are read where keys point at them)."""
        data, position = self._data, BASE_BLOCK_SIZE
        while position + HBIN_HEADER_SIZE <= self._end:
            magic, offset, size = _HBIN.unpack_from(data, position)
            where = f"hive bin at {position - BASE_BLOCK_SIZE:#x}"
            if magic != b"hbin" or offset != position - BASE_BLOCK_SIZE or size < 0x1000 or size % 0x1000:
                self._problem(f"{where}: bad header; the hive bins after it are read only where keys point")
                return
            first = _CELL_SIZE.unpack_from(data, position + HBIN_HEADER_SIZE)[0]
            if not 8 <= abs(first) <= size - HBIN_HEADER_SIZE or first % 8:
                self._problem(f"{where}: its first cell is unreadable (size {first})")
            position += size

    def _nk(self, offset: int) -> tuple:
        position = BASE_BLOCK_SIZE + offset
        if offset == NIL or offset & 7 or position + _NK.size > self._end:
            raise _Unreadable(f"key cell offset {offset:#x} is outside the hive bins")
        fields = _NK.unpack_from(self._data, position)
        size = -fields[0] if fields[0] < 0 else fields[0]
        if fields[1] != b"nk":
            raise _Unreadable(f"no key (nk) cell at {offset:#x}")
        if size < _NK_NAME + fields[-2] or position + size > self._end:
            raise _Unreadable(f"the key cell at {offset:#x} is shorter than its name")
        return fields

    def _subkey_offsets(self, list_offset: int, where: str) -> list[int]:
        """The nk offsets a subkey list (li, lf, lh or ri) holds; what cannot be read
        is a problem and left out."""
        try:
            return self._leaf_offsets(list_offset, where, allow_index_root=True)
        except _BROKEN as exc:
            self._problem(_reason(exc))
            return []

    def _leaf_offsets(self, list_offset: int, where: str, *, allow_index_root: bool) -> list[int]:
        start, size = self._cell(list_offset, f"subkey list of {where}")
        signature, count = self._data[start : start + 2], struct.unpack_from("<H", self._data, start + 2)[0]
        if signature in (b"lf", b"lh"):
            if 4 + 8 * count > size:
                raise _Unreadable(f"subkey list of {where}: {count} entries do not fit a {size}-byte cell")
            return list(_offsets(count, 2).unpack_from(self._data, start + 4)[::2])
        if signature == b"li" or (signature == b"ri" and allow_index_root):
            if 4 + 4 * count > size:
                raise _Unreadable(f"subkey list of {where}: {count} entries do not fit a {size}-byte cell")
            found = list(_offsets(count, 1).unpack_from(self._data, start + 4))
            if signature == b"li":
                return found
            leaves: list[int] = []
            for leaf in found:  # an index root holds leaves only: no list can loop
                try:
                    leaves += self._leaf_offsets(leaf, where, allow_index_root=False)
                except _BROKEN as exc:
                    self._problem(_reason(exc))
            return leaves
        what = "an index root inside an index root" if signature == b"ri" else f"signature {signature!r}"
        raise _Unreadable(f"subkey list of {where} at {list_offset:#x}: {what}")

    # the scan's bulk walks ---------------------------------------------------------------

    def key_security(self) -> Iterator[tuple[str, int]]:
        """(key path, sk cell offset) of every key, the root (path "") first, then depth
        first in the order the hive lists subkeys; no :class:`RegKey` is built.

        A key or subkey list that cannot be read, or a key listed a second time (a loop
        or a shared subtree), is a problem; its subtree is left out and the walk goes on.
        """
        data, end, walk, problem = self._data, self._end, _NK_WALK.unpack_from, self._problem
        last = end - _NK_WALK.size
        seen = bytearray((end >> 3) + 1)  # one byte per 8-byte cell position
        # a stack of (subkey offsets still to visit, their parent's path); None: the root
        stack: list[tuple[Iterator[int], str | None]] = [(iter((self._root_offset,)), None)]
        while stack:
            offsets, parent = stack[-1]
            for offset in offsets:
                position = BASE_BLOCK_SIZE + offset
                if offset & 7 or position > last:
                    problem(f"a subkey of {parent or '(root)'}: key cell offset {offset:#x} is outside the hive bins")
                    continue
                if seen[position >> 3]:
                    problem(f"a subkey of {parent or '(root)'}: the key at {offset:#x} is listed twice (a loop)")
                    continue
                seen[position >> 3] = 1
                size, signature, flags, subkey_count, subkey_list, security, name_length = walk(data, position)
                name_at = position + _NK_NAME
                if signature != b"nk" or name_at + name_length > end or -size < _NK_NAME + name_length:
                    problem(f"a subkey of {parent or '(root)'}: no readable key (nk) cell at {offset:#x}")
                    continue
                if flags & KEY_COMP_NAME:
                    name = data[name_at : name_at + name_length].decode("latin-1")
                else:
                    name = data[name_at : name_at + name_length].decode("utf-16-le", "replace")
                path = f"{parent}\\{name}" if parent else name if parent is not None else ""
                yield path, security
                if subkey_count:
                    stack.append((iter(self._subkey_offsets(subkey_list, path or "(root)")), path))
                    break  # its subkeys first, then the rest of this list
            else:
                stack.pop()

    def security_descriptor(self, offset: int) -> bytes:
        """The self-relative security descriptor of the sk cell at ``offset``;
        :class:`HiveError` if there is no readable sk cell there."""
        try:
            return self._sk(offset)[2]
        except _BROKEN as exc:
            raise HiveError(f"{self.label}: {_reason(exc)}") from None

    def _sk(self, offset: int) -> tuple[int, int, bytes]:
        """(Flink, Blink, descriptor) of the sk cell at ``offset``."""
        start, size = self._cell(offset, "key security")
        if size < _SK_HEADER - 4:
            raise _Unreadable(f"key security at {offset:#x}: the cell is too small")
        _size, signature, flink, blink, _references, length = _SK.unpack_from(self._data, start - 4)
        if signature != b"sk":
            raise _Unreadable(f"no key security (sk) cell at {offset:#x}")
        if _SK_HEADER - 4 + length > size:
            raise _Unreadable(f"key security at {offset:#x}: a {length}-byte descriptor does not fit its cell")
        return flink, blink, self._data[start + _SK_HEADER - 4 : start + _SK_HEADER - 4 + length]

    def security_cells(self) -> dict[int, bytes]:
        """{sk offset: self-relative descriptor} of every distinct key security cell,
        found along the sk list (Flink from the root key's cell, then Blink where the
        Flink chain breaks). A cell that cannot be read, a descriptor that does not
        parse, a loop or a broken link is a problem naming its offset; the cell is left
        out and the rest is read. Computed once."""
        if self._security_cells is None:
            self._security_cells = self._walk_sk_list()
        return self._security_cells

    def _walk_sk_list(self) -> dict[int, bytes]:
        from aclscan.sd.descriptor import SecurityDescriptor

        first = self.root.security_offset
        cells: dict[int, bytes] = {}
        parsed: set[int] = set()
        for direction in (1, 2):  # 1: Flink, 2: Blink
            offset, previous = first, None
            this_way: set[int] = set()  # a cell met again this way round: a loop
            while True:
                if offset in this_way and offset != first:
                    self._problem(f"key security list: {offset:#x} is reached twice (a loop)")
                    break
                if offset == first and previous is not None:
                    break  # round the circle
                try:
                    cell = self._sk(offset)
                except _BROKEN as exc:
                    where = f" (linked from {previous:#x})" if previous is not None else ""
                    self._problem(f"key security list{where}: {_reason(exc)}")
                    break
                back = cell[1] if direction == 1 else cell[0]  # the link that should lead back
                if previous is not None and back != previous:
                    self._problem(f"key security list: the cell at {offset:#x} does not link back to {previous:#x}")
                this_way.add(offset)
                if offset not in parsed:
                    parsed.add(offset)
                    try:
                        SecurityDescriptor.from_bytes(cell[2])
                    except Error as exc:
                        self._problem(f"key security at {offset:#x}: the descriptor does not parse: {_one_line(exc)}")
                    else:
                        cells[offset] = cell[2]
                previous, offset = offset, cell[0] if direction == 1 else cell[1]
            if offset == first and previous is not None:
                break  # the Flink chain closed the circle: Blink has nothing to add
        return cells

    # value cells -------------------------------------------------------------------

    def _read_values(self, count: int, list_offset: int, path: str) -> Iterator[RegValue]:
        if not count:
            return
        where = path or "(root)"
        try:
            start, size = self._cell(list_offset, f"value list of {where}")
        except _BROKEN as exc:
            self._problem(_reason(exc))
            return
        if count * 4 > size:
            self._problem(f"value list of {where}: {count} values do not fit a {size}-byte cell")
            count = size // 4
        for vk_offset in _offsets(count, 1).unpack_from(self._data, start):
            try:
                yield self._read_value(vk_offset, where)
            except _BROKEN as exc:
                self._problem(_reason(exc))

    def _read_value(self, offset: int, where: str) -> RegValue:
        data = self._data
        start, size = self._cell(offset, f"a value of {where}")
        if size < _VK_NAME - 4:
            raise _Unreadable(f"a value of {where}: the cell at {offset:#x} is too small")
        _size, signature, name_length, size_field, data_offset, kind, flags = _VK.unpack_from(data, start - 4)
        if signature != b"vk":
            raise _Unreadable(f"a value of {where}: no vk cell at {offset:#x}")
        if _VK_NAME - 4 + name_length > size:
            raise _Unreadable(f"a value of {where}: its name runs past its cell at {offset:#x}")
        raw_name = data[start + _VK_NAME - 4 : start + _VK_NAME - 4 + name_length]
        name = raw_name.decode("latin-1") if flags & VALUE_COMP_NAME else raw_name.decode("utf-16-le", "replace")
        length = size_field & 0x7FFFFFFF
        if size_field & 0x80000000:  # stored in the DataOffset field itself
            return RegValue(name, kind, struct.pack("<I", data_offset)[: min(length, 4)])
        if length == 0:
            return RegValue(name, kind, b"")
        what = f"value {name or '(default)'} of {where}"
        cell, cell_size = self._cell(data_offset, what)
        if length > BIG_DATA_SEGMENT and self._minor >= 4 and data[cell : cell + 2] == b"db":
            return RegValue(name, kind, self._big_data(cell, cell_size, length, what))
        if length > cell_size:
            raise _Unreadable(f"{what}: {length} bytes of data do not fit a {cell_size}-byte cell")
        return RegValue(name, kind, data[cell : cell + length])

    def _big_data(self, cell: int, cell_size: int, length: int, what: str) -> bytes:
        if cell_size < 8:
            raise _Unreadable(f"{what}: db cell too small")
        count, list_offset = struct.unpack_from("<HI", self._data, cell + 2)
        start, size = self._cell(list_offset, what)
        if count * 4 > size:
            raise _Unreadable(f"{what}: {count} data segments do not fit their list")
        out = bytearray()
        for segment in _offsets(count, 1).unpack_from(self._data, start):
            seg_start, seg_size = self._cell(segment, what)
            out += self._data[seg_start : seg_start + min(seg_size, BIG_DATA_SEGMENT, length - len(out))]
            if len(out) >= length:
                break
        if len(out) < length:
            raise _Unreadable(f"{what}: its data segments hold {len(out)} of {length} bytes")
        return bytes(out)


def _identify(root: RegKey) -> str | None:
    """SAM has SAM\\Domains, SECURITY Policy, SYSTEM Select, SOFTWARE Microsoft."""
    if root.subkey("Policy") is not None:
        return "SECURITY"
    sam = root.subkey("SAM")
    if sam is not None and sam.subkey("Domains") is not None:
        return "SAM"
    if root.subkey("Select") is not None:
        return "SYSTEM"
    if root.subkey("Microsoft") is not None:
        return "SOFTWARE"
    return None


# ---------------------------------------------------------------------------------------
# Opening


def printable(text: str, limit: int = 300) -> str:
    """``text`` fit for a one-line message: control characters (line breaks among them)
    escaped, at most ``limit`` characters. Names in a hive are whatever its writer put
    there."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    shown = "".join(out)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _one_line(exc: BaseException) -> str:
    return printable(" ".join(str(exc).split()), 200) or exc.__class__.__name__


def _source_bytes(source: HiveSource) -> HiveFiles:
    """The hive (and any logs read with it) from whatever the caller gave."""
    if isinstance(source, HiveFiles):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return HiveFiles(bytes(source), "hive")
    if isinstance(source, (str, os.PathLike)):
        return read_hive_files(source)  # the edge: the one place a path is read
    if isinstance(source, io.TextIOBase):
        raise HiveError("a hive must be opened in binary mode, not as text")
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise HiveError("a hive must be opened in binary mode, not as text")
        return HiveFiles(bytes(data), "hive")
    raise HiveError(f"cannot read a hive from {type(source).__name__}")


def _log_pairs(logs: LogSource) -> list[tuple[str, bytes]]:
    """(name, bytes) of each log given, in the order given."""
    if isinstance(logs, Mapping):
        return [(str(name), bytes(data)) for name, data in logs.items()]
    pairs = []
    for number, log in enumerate(logs, 1):
        if isinstance(log, tuple):
            pairs.append((str(log[0]), bytes(log[1])))
        elif isinstance(log, (bytes, bytearray, memoryview)):
            pairs.append((f"transaction log {number}", bytes(log)))
        elif hasattr(log, "read"):
            pairs.append((f"transaction log {number}", bytes(log.read())))
        else:
            raise HiveError(f"cannot read a transaction log from {type(log).__name__}")
    return pairs


def _check_base_block(data: bytes, label: str) -> tuple[bool, list[str]]:
    """(dirty?, problems) of a primary file; :class:`HiveError` where it is no hive."""
    if len(data) < 4 or data[:4] != b"regf":
        head = data[:4].hex() if data else "nothing"
        raise HiveError(f"{label}: not a registry hive (starts with {head}, not 'regf')")
    if len(data) < BASE_BLOCK_SIZE + HBIN_HEADER_SIZE:
        raise HiveError(f"{label}: truncated registry hive ({len(data)} bytes, not even one hive bin)")
    primary, secondary = struct.unpack_from("<II", data, 4)
    major, minor, file_type = struct.unpack_from("<III", data, 0x14)
    if file_type != 0:
        kind = _FILE_TYPES.get(file_type, f"file type {file_type}")
        raise HiveError(f"{label}: a registry {kind} file, not a primary hive")
    if major != 1 or minor > 6:
        raise HiveError(f"{label}: registry format {major}.{minor} is not one aclscan reads (1.x)")
    if data[BASE_BLOCK_SIZE : BASE_BLOCK_SIZE + 4] != b"hbin":
        raise HiveError(f"{label}: corrupt registry hive (no hive bin after the base block)")
    problems = []
    bad_checksum = struct.unpack_from("<I", data, 0x1FC)[0] != base_block_checksum(data)
    if bad_checksum:
        problems.append("the base block's checksum is wrong")
    return primary != secondary or bad_checksum, problems


def _check_bins_size(data: bytes, label: str) -> None:
    bins_size, = struct.unpack_from("<I", data, 0x28)
    root, = struct.unpack_from("<I", data, 0x24)
    held = len(data) - BASE_BLOCK_SIZE
    if bins_size > held:
        raise HiveError(
            f"{label}: truncated registry hive (the base block announces {bins_size} bytes of hive bins, "
            f"the file holds {held})"
        )
    if root + 4 + _NK_NAME > min(held, bins_size):
        raise HiveError(f"{label}: corrupt registry hive (root key offset {root:#x} is outside the hive bins)")


def open_hive(
    source: HiveSource,
    *,
    logs: LogSource | None = None,
    label: str | None = None,
    expect: str | None = None,
) -> Hive:
    """Open a hive from bytes, a binary file, :class:`HiveFiles` (bytes and logs read at
    the edge) or a path (read through :func:`~aclscan.hives.files.read_hive_files`,
    which brings ``NAME.LOG1``, ``.LOG2`` and ``.LOG`` beside it).

    ``logs`` are its transaction logs: {name: bytes}, or bytes in LOG1, LOG2, LOG order;
    they replace any read with the hive. Logs are applied only to a dirty hive.
    ``label`` names the hive in messages (default: the path, or "hive"). With ``expect``
    ("SAM", "SECURITY", "SYSTEM" or "SOFTWARE") a hive of another kind raises
    :class:`WrongHive`. Anything that is no readable hive raises :class:`HiveError` (a
    ``ValueError`` too) with a one-line message; no other exception leaves this function
    for any input bytes.
    """
    files = _source_bytes(source)
    label = label or files.label
    log_pairs = list(files.logs) if logs is None else _log_pairs(logs)
    try:
        hive = _open(files.data, log_pairs, label, list(files.problems))
    except HiveError:
        raise
    except Exception as exc:  # a parse failure this module did not foresee: still one line
        raise HiveError(f"{label}: corrupt registry hive ({type(exc).__name__}: {_one_line(exc)})") from None
    if expect is not None:
        hive.require(expect)
    return hive


def _open(data: bytes, logs: list[tuple[str, bytes]], label: str, problems: list[str]) -> Hive:
    dirty, found = _check_base_block(data, label)
    problems += found
    file_name = data[0x30:0x70].decode("utf-16-le", "replace").split("\0", 1)[0]
    applied: tuple[str, ...] = ()
    pages = 0
    if dirty:
        recovered = apply_logs(data, logs)
        data, applied, pages = recovered.data, recovered.logs_applied, recovered.pages
        problems += recovered.problems
        if applied:
            problems = [p for p in problems if p != "the base block's checksum is wrong"]  # recovered
        else:
            problems.append("dirty hive read without its transaction logs: recent changes may be missing")
    _check_bins_size(data, label)
    status = HiveStatus(label, None, file_name, dirty, applied, pages, tuple(printable(p) for p in problems))
    return Hive(data, status)
