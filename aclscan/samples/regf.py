"""A writer of Windows registry hive files (regf) from an in-memory key tree.

The output is a clean primary hive as Windows 10 leaves one on disk: a 4 KiB
base block, then hive bins ("hbin", 4 KiB or a multiple for a large cell) of
8-byte aligned cells, allocated cells with a negative size and the free tail of
each bin as one free cell. Facts follow Maxim Suhanov's "Windows registry file
format specification" and were checked against hives written by Windows 7 and
10 (../shared/data/windows/hives):

Base block (the checksum covers its first 508 bytes)::

    0x000 "regf"  0x004 PrimarySequenceNumber  0x008 SecondarySequenceNumber
    0x00C LastWrittenTimestamp  0x014 MajorVersion 1  0x018 MinorVersion 3|5
    0x01C FileType 0 (primary)  0x020 FileFormat 1  0x024 RootCellOffset
    0x028 HiveBinsDataSize  0x02C ClusteringFactor 1  0x030 FileName (64 bytes)
    0x070 RmId  0x080 LogId  0x090 Flags  0x094 TmId  0x0A4 "rmtm"
    0x0A8 LastReorganizedTimestamp  0x0B0 "OfRg" + flags (offline registry)
    0x1FC CheckSum: XOR of the 127 preceding dwords, 0 -> 1, 0xFFFFFFFF -> 0xFFFFFFFE

Cells (offsets are relative to the first hive bin, 0x1000 in the file)::

    nk  key node: Flags, LastWrittenTimestamp, Parent, subkey and value counts,
        list offsets, Security (sk), Class, the largest name/class/data sizes,
        then the name: Latin-1 bytes with KEY_COMP_NAME where every character
        fits in one byte, UTF-16LE otherwise
    vk  value: NameLength, DataSize (bit 31: data in the DataOffset field, for
        four bytes or fewer), DataOffset, Type (any 32-bit number: SAM's
        Names\\<user> default value has the RID as its type), Flags
        (VALUE_COMP_NAME), Name
    lh  hash leaf (1.5): (key node offset, name hash) pairs, sorted by the
        upper-cased name; hash = hash * 37 + upcase(unit) over UTF-16 units
    lf  fast leaf (1.3): (offset, first four name characters)
    ri  index root: offsets of leaves, where a key has more than 1012 subkeys
    sk  security: Flink, Blink (a circular list of every sk), ReferenceCount,
        a self-relative security descriptor; keys with the same descriptor share it
    db  big data (1.4+): value data above 16344 bytes, in 16344-byte segments

The output is deterministic: the same tree and arguments give the same bytes.
"""

from __future__ import annotations

import io
import os
import struct
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import BinaryIO

from aclscan.errors import MalformedData
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl

__all__ = [
    "DEFAULT_SECURITY",
    "DEFAULT_TIMESTAMP",
    "InvalidHive",
    "Key",
    "REG_BINARY",
    "REG_DWORD",
    "REG_DWORD_BIG_ENDIAN",
    "REG_EXPAND_SZ",
    "REG_FULL_RESOURCE_DESCRIPTOR",
    "REG_LINK",
    "REG_MULTI_SZ",
    "REG_NONE",
    "REG_QWORD",
    "REG_RESOURCE_LIST",
    "REG_RESOURCE_REQUIREMENTS_LIST",
    "REG_SZ",
    "Value",
    "base_block_checksum",
    "encode_name",
    "filetime",
    "hive_bytes",
    "name_hash",
    "name_hint",
    "name_units",
    "sort_key",
    "upcase",
    "write_hive",
]

# Value types: the reader's, and the three resource types only a writer needs to name.
from aclscan.hives.registry import (  # noqa: E402
    REG_BINARY, REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_EXPAND_SZ, REG_LINK, REG_MULTI_SZ, REG_NONE, REG_QWORD, REG_SZ)

REG_RESOURCE_LIST = 8
REG_FULL_RESOURCE_DESCRIPTOR = 9
REG_RESOURCE_REQUIREMENTS_LIST = 10

# Limits Windows enforces (RegCreateKeyEx, RegSetValueEx) and the on-disk fields allow.
MAX_KEY_NAME = 255  # UTF-16 units
MAX_VALUE_NAME = 16383  # UTF-16 units
MAX_CLASS_NAME = 32767  # bytes fit the 16-bit ClassLength
MAX_LEAF = 1012  # CM_MAX_INDEX: entries of one subkey leaf before an index root is needed
RI_LEAF = 506  # Windows splits a full leaf in halves
BIG_DATA_SEGMENT = 16344  # the most data a cell holds before db segments (1.4+)

HBIN_SIZE = 0x1000
BASE_BLOCK_SIZE = 0x1000
HBIN_HEADER_SIZE = 0x20
NIL = 0xFFFFFFFF

KEY_HIVE_ENTRY = 0x0004
KEY_NO_DELETE = 0x0008
KEY_COMP_NAME = 0x0020
VALUE_COMP_NAME = 0x0001

# 2023-06-01T12:00:00Z: a fixed default, so that output never depends on the clock.
DEFAULT_TIMESTAMP = datetime(2023, 6, 1, 12, 0, 0, tzinfo=timezone.utc)

# What Windows puts on SAM and SECURITY keys: SYSTEM full control, Administrators
# READ_CONTROL and WRITE_DAC, both inherited by subkeys.
DEFAULT_SECURITY = from_sddl("O:BAG:SYD:(A;CI;KA;;;SY)(A;CI;RCWD;;;BA)").to_bytes()

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


class InvalidHive(MalformedData):
    """A key tree no hive can hold: bad or duplicate names, data of the wrong kind, sizes out of range."""


# ---------------------------------------------------------------------------------------
# The in-memory tree


@dataclass(frozen=True)
class Value:
    """One registry value. ``type`` is any 32-bit number; ``data`` is raw bytes for any type,
    or a Python value for the usual types: ``str`` for REG_SZ / REG_EXPAND_SZ / REG_LINK,
    ``int`` for REG_DWORD / REG_DWORD_BIG_ENDIAN / REG_QWORD, a list of ``str`` for
    REG_MULTI_SZ, ``None`` for no data. The name ``""`` is the key's default value."""

    name: str
    type: int
    data: bytes | bytearray | str | int | Sequence[str] | None = b""

    @property
    def raw(self) -> bytes:
        """The data as it is stored in the hive."""
        return _value_bytes(self)


@dataclass
class Key:
    """One registry key. Subkeys are written sorted as Windows requires, values in list order.

    ``security`` is a self-relative security descriptor (bytes); ``None`` takes the hive's
    default. ``last_written`` (datetime or FILETIME) overrides the hive's timestamp.
    """

    name: str
    values: list[Value] = field(default_factory=list)
    subkeys: list[Key] = field(default_factory=list)
    class_name: str | None = None
    security: bytes | None = None
    last_written: datetime | int | None = None

    def subkey(self, name: str) -> Key:
        """The direct subkey called ``name`` (case-insensitive, as Windows compares)."""
        wanted = sort_key(name)
        for child in self.subkeys:
            if sort_key(child.name) == wanted:
                return child
        raise KeyError(name)

    def find(self, path: str) -> Key:
        """The key at a backslash-separated path below this one."""
        key = self
        for part in path.strip("\\").split("\\"):
            if part:
                key = key.subkey(part)
        return key

    def ensure(self, path: str) -> Key:
        """The key at ``path`` below this one, creating missing keys on the way."""
        key = self
        for part in path.strip("\\").split("\\"):
            if not part:
                continue
            try:
                key = key.subkey(part)
            except KeyError:
                child = Key(part)
                key.subkeys.append(child)
                key = child
        return key

    def value(self, name: str) -> Value:
        """The value called ``name`` (case-insensitive)."""
        wanted = sort_key(name)
        for value in self.values:
            if sort_key(value.name) == wanted:
                return value
        raise KeyError(name)

    def walk(self, path: str = "") -> Iterator[tuple[str, Key]]:
        """(path, key) for this key and every key below it, depth first, subkeys sorted.
        The path of the key walk starts from is ``path`` (``""`` for a root)."""
        yield path, self
        for child in sorted(self.subkeys, key=lambda k: sort_key(k.name)):
            yield from child.walk(f"{path}\\{child.name}")


# ---------------------------------------------------------------------------------------
# Names: encoding, upper-casing, hashing


def name_units(text: str) -> tuple[int, ...]:
    """The UTF-16 code units of ``text`` (a name's length in the hive counts these)."""
    raw = text.encode("utf-16-le", "surrogatepass")
    return struct.unpack(f"<{len(raw) // 2}H", raw)


def _upcase_unit(unit: int) -> int:
    # Windows upper-cases one UTF-16 unit at a time (RtlUpcaseUnicodeChar); a character
    # whose upper case is not one BMP character (German sharp s, ligatures) stays as it is.
    if 0xD800 <= unit <= 0xDFFF:
        return unit
    upper = chr(unit).upper()
    if len(upper) == 1 and ord(upper) <= 0xFFFF:
        return ord(upper)
    return unit


def upcase(text: str) -> str:
    """``text`` upper-cased as Windows compares key names: unit by unit."""
    units = [_upcase_unit(u) for u in name_units(text)]
    return struct.pack(f"<{len(units)}H", *units).decode("utf-16-le", "surrogatepass")


def sort_key(name: str) -> tuple[int, ...]:
    """What subkey lists are sorted by and names compared by: the upper-cased UTF-16 units."""
    return tuple(_upcase_unit(u) for u in name_units(name))


def name_hash(name: str) -> int:
    """The hash an lh leaf stores for a key name."""
    h = 0
    for unit in sort_key(name):
        h = (h * 37 + unit) & 0xFFFFFFFF
    return h


def encode_name(name: str) -> tuple[bytes, bool]:
    """(stored bytes, compressed?): Latin-1 where every character fits, UTF-16LE otherwise."""
    if all(ord(c) < 0x100 for c in name):
        return name.encode("latin-1"), True
    return name.encode("utf-16-le", "surrogatepass"), False


def filetime(when: datetime | int) -> int:
    """A FILETIME (100 ns since 1601-01-01 UTC) from a datetime (naive means UTC) or an int."""
    if isinstance(when, bool):
        raise InvalidHive(f"a timestamp must be a datetime or a FILETIME, not {when!r}")
    if isinstance(when, int):
        value = when
    elif isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        delta = when - _FILETIME_EPOCH
        value = (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    else:
        raise InvalidHive(f"a timestamp must be a datetime or a FILETIME, not {type(when).__name__}")
    if not 0 <= value < 1 << 64:
        raise InvalidHive(f"timestamp {when!r} is outside the FILETIME range")
    return value


# ---------------------------------------------------------------------------------------
# Value data


def _value_bytes(value: Value) -> bytes:
    kind, data = value.type, value.data
    if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 0xFFFFFFFF:
        raise InvalidHive(f"value {value.name!r}: type {kind!r} is not a 32-bit number")
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        if kind in (REG_SZ, REG_EXPAND_SZ):
            return (data + "\0").encode("utf-16-le", "surrogatepass")
        if kind == REG_LINK:  # a symbolic link target is stored without a terminator
            return data.encode("utf-16-le", "surrogatepass")
        raise InvalidHive(f"value {value.name!r}: text data needs REG_SZ, REG_EXPAND_SZ or REG_LINK, not type {kind}")
    if isinstance(data, int) and not isinstance(data, bool):
        formats = {REG_DWORD: ("<I", 32), REG_DWORD_BIG_ENDIAN: (">I", 32), REG_QWORD: ("<Q", 64)}
        if kind not in formats:
            raise InvalidHive(f"value {value.name!r}: integer data needs REG_DWORD or REG_QWORD, not type {kind}")
        fmt, bits = formats[kind]
        if not 0 <= data < 1 << bits:
            raise InvalidHive(f"value {value.name!r}: {data} does not fit {bits} bits")
        return struct.pack(fmt, data)
    if isinstance(data, (list, tuple)) and all(isinstance(s, str) for s in data):
        if kind != REG_MULTI_SZ:
            raise InvalidHive(f"value {value.name!r}: a list of strings needs REG_MULTI_SZ, not type {kind}")
        for s in data:
            if not s or "\0" in s:
                raise InvalidHive(f"value {value.name!r}: REG_MULTI_SZ strings must be non-empty, without NUL")
        return ("".join(s + "\0" for s in data) + "\0").encode("utf-16-le", "surrogatepass")
    raise InvalidHive(f"value {value.name!r}: cannot store data of type {type(data).__name__}")


# ---------------------------------------------------------------------------------------
# Validation


def _check_tree(root: Key) -> None:
    if not isinstance(root, Key):
        raise InvalidHive(f"the root must be a Key, not {type(root).__name__}")
    stack: list[tuple[Key, str]] = [(root, "")]
    seen: set[int] = set()
    while stack:
        key, path = stack.pop()
        if id(key) in seen:
            raise InvalidHive(f"key {path or key.name!r} appears twice in the tree")
        seen.add(id(key))
        where = path or "the root"
        if not isinstance(key.name, str) or not key.name:
            raise InvalidHive(f"key below {where!r} has an empty name")
        if "\\" in key.name:
            raise InvalidHive(f"key name {key.name!r} contains a backslash")
        if len(name_units(key.name)) > MAX_KEY_NAME:
            raise InvalidHive(f"key name {key.name[:40]!r}... is longer than {MAX_KEY_NAME} characters")
        if key.class_name is not None:
            if not isinstance(key.class_name, str):
                raise InvalidHive(f"class name of {where!r} must be text, not {type(key.class_name).__name__}")
            if len(key.class_name.encode("utf-16-le", "surrogatepass")) > MAX_CLASS_NAME:
                raise InvalidHive(f"class name of {where!r} is longer than {MAX_CLASS_NAME} bytes")
        if key.security is not None:
            if not isinstance(key.security, bytes):
                raise InvalidHive(f"security descriptor of {where!r} must be bytes, not {type(key.security).__name__}")
            try:
                SecurityDescriptor.from_bytes(key.security)
            except MalformedData as exc:
                raise InvalidHive(f"security descriptor of {where!r}: {exc}") from exc
        names: set[tuple[int, ...]] = set()
        for value in key.values:
            if not isinstance(value, Value) or not isinstance(value.name, str):
                raise InvalidHive(f"{where!r} holds {value!r}, not a Value")
            if len(name_units(value.name)) > MAX_VALUE_NAME:
                raise InvalidHive(f"value name {value.name[:40]!r}... is longer than {MAX_VALUE_NAME} characters")
            folded = sort_key(value.name)
            if folded in names:
                raise InvalidHive(f"{where!r} has two values called {value.name!r} (names ignore case)")
            names.add(folded)
            value.raw  # noqa: B018 - raises InvalidHive for data that cannot be stored
        names.clear()
        for child in key.subkeys:
            if not isinstance(child, Key):
                raise InvalidHive(f"{where!r} holds {child!r} as a subkey, not a Key")
            folded = sort_key(child.name) if isinstance(child.name, str) else ()
            if folded in names:
                raise InvalidHive(f"{where!r} has two subkeys called {child.name!r} (names ignore case)")
            names.add(folded)
            stack.append((child, f"{path}\\{child.name}"))


# ---------------------------------------------------------------------------------------
# Cell allocation and layout


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


class _Bins:
    """Hive bins, filled front to back. Offsets are relative to the first bin."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.bin_start = 0
        self.bin_end = 0
        self.pos = 0
        self.sizes: dict[int, int] = {}

    def alloc(self, payload: int) -> int:
        size = _align(payload + 4, 8)
        if self.pos + size > self.bin_end:
            self._close_bin()
            bin_size = max(HBIN_SIZE, _align(size + HBIN_HEADER_SIZE, HBIN_SIZE))
            self.bin_start = len(self.data)
            self.bin_end = self.bin_start + bin_size
            self.data += bytes(bin_size)
            struct.pack_into("<4sII", self.data, self.bin_start, b"hbin", self.bin_start, bin_size)
            self.pos = self.bin_start + HBIN_HEADER_SIZE
        offset = self.pos
        struct.pack_into("<i", self.data, offset, -size)
        self.sizes[offset] = size
        self.pos += size
        return offset

    def put(self, offset: int, payload: bytes) -> None:
        if len(payload) + 4 > self.sizes[offset]:  # a bug here, never the caller's input
            raise AssertionError(f"cell at {offset:#x} is {self.sizes[offset]} bytes, payload {len(payload)}")
        self.data[offset + 4 : offset + 4 + len(payload)] = payload

    def _close_bin(self) -> None:
        if self.bin_end > self.pos:  # the free tail of a bin is one free cell (positive size)
            struct.pack_into("<i", self.data, self.pos, self.bin_end - self.pos)
        self.pos = self.bin_end

    def finish(self) -> bytes:
        self._close_bin()
        return bytes(self.data)


@dataclass
class _ValuePlan:
    value: Value
    raw: bytes
    name: bytes
    compressed: bool
    vk: int = NIL
    data: int = NIL  # data cell, or db cell
    segment_list: int = NIL
    segments: list[int] = field(default_factory=list)


@dataclass
class _KeyPlan:
    key: Key
    name: bytes
    compressed: bool
    parent: _KeyPlan | None
    children: list[_KeyPlan] = field(default_factory=list)
    values: list[_ValuePlan] = field(default_factory=list)
    nk: int = NIL
    class_cell: int = NIL
    value_list: int = NIL
    subkey_list: int = NIL
    leaves: list[tuple[int, list[_KeyPlan]]] = field(default_factory=list)
    sk: int = NIL


class _Writer:
    def __init__(self, root: Key, *, minor_version: int, timestamp: int, security: bytes) -> None:
        self.minor = minor_version
        self.timestamp = timestamp
        self.default_security = security
        self.bins = _Bins()
        self.sk_cells: dict[bytes, int] = {}
        self.sk_refs: dict[bytes, int] = {}
        self.root = self._plan(root, None)

    def _plan(self, key: Key, parent: _KeyPlan | None) -> _KeyPlan:
        name, compressed = encode_name(key.name)
        plan = _KeyPlan(key, name, compressed, parent)
        for value in key.values:
            vname, vcomp = encode_name(value.name)
            plan.values.append(_ValuePlan(value, value.raw, vname, vcomp))
        plan.children = [self._plan(c, plan) for c in sorted(key.subkeys, key=lambda k: sort_key(k.name))]
        return plan

    # pass 1: give every cell its offset, depth first, as Windows lays out a fresh hive
    def allocate(self) -> None:
        stack = [self.root]
        while stack:
            plan = stack.pop()
            self._allocate_key(plan)
            stack.extend(reversed(plan.children))

    def _allocate_key(self, plan: _KeyPlan) -> None:
        key = plan.key
        plan.nk = self.bins.alloc(0x4C + len(plan.name))
        sd = key.security if key.security is not None else self.default_security
        if sd not in self.sk_cells:
            self.sk_cells[sd] = self.bins.alloc(20 + len(sd))
            self.sk_refs[sd] = 0
        self.sk_refs[sd] += 1
        plan.sk = self.sk_cells[sd]
        if key.class_name:
            plan.class_cell = self.bins.alloc(len(key.class_name.encode("utf-16-le", "surrogatepass")))
        if plan.values:
            plan.value_list = self.bins.alloc(4 * len(plan.values))
            for vp in plan.values:
                vp.vk = self.bins.alloc(0x14 + len(vp.name))
                self._allocate_data(vp)
        if plan.children:
            self._allocate_subkey_lists(plan)

    def _allocate_data(self, vp: _ValuePlan) -> None:
        size = len(vp.raw)
        if size <= 4:
            return  # stored in the vk's DataOffset field
        if size <= BIG_DATA_SEGMENT or self.minor < 4:
            vp.data = self.bins.alloc(size)
            return
        count = -(-size // BIG_DATA_SEGMENT)
        if count > 0xFFFF:
            raise InvalidHive(f"value {vp.value.name!r}: {size} bytes need more than 65535 db segments")
        vp.data = self.bins.alloc(12)  # "db", count, list offset, 4 unused bytes: a 16-byte cell
        vp.segment_list = self.bins.alloc(4 * count)
        vp.segments = [self.bins.alloc(BIG_DATA_SEGMENT) for _ in range(count)]

    def _allocate_subkey_lists(self, plan: _KeyPlan) -> None:
        children = plan.children
        if len(children) <= MAX_LEAF:
            plan.subkey_list = self.bins.alloc(4 + 8 * len(children))
            plan.leaves = [(plan.subkey_list, children)]
            return
        chunks = [children[i : i + RI_LEAF] for i in range(0, len(children), RI_LEAF)]
        plan.subkey_list = self.bins.alloc(4 + 4 * len(chunks))
        plan.leaves = [(self.bins.alloc(4 + 8 * len(chunk)), chunk) for chunk in chunks]

    # pass 2: fill the cells
    def fill(self) -> None:
        stack = [self.root]
        while stack:
            plan = stack.pop()
            self._fill_key(plan)
            stack.extend(reversed(plan.children))
        cells = list(self.sk_cells.items())
        for i, (sd, offset) in enumerate(cells):
            flink = cells[(i + 1) % len(cells)][1]
            blink = cells[i - 1][1]
            payload = struct.pack("<2sHIIII", b"sk", 0, flink, blink, self.sk_refs[sd], len(sd)) + sd
            self.bins.put(offset, payload)

    def _fill_key(self, plan: _KeyPlan) -> None:
        key = plan.key
        flags = KEY_COMP_NAME if plan.compressed else 0
        if plan.parent is None:
            flags |= KEY_HIVE_ENTRY | KEY_NO_DELETE
        stamp = self.timestamp if key.last_written is None else filetime(key.last_written)
        class_raw = key.class_name.encode("utf-16-le", "surrogatepass") if key.class_name else b""
        largest_subkey = max((2 * len(name_units(c.key.name)) for c in plan.children), default=0)
        largest_class = max(
            (len(c.key.class_name.encode("utf-16-le", "surrogatepass")) for c in plan.children if c.key.class_name),
            default=0,
        )
        largest_value_name = max((2 * len(name_units(v.value.name)) for v in plan.values), default=0)
        largest_data = max((len(v.raw) for v in plan.values), default=0)
        nk = struct.pack(
            "<2sHQIIIIIIIIIIIIIIIHH",
            b"nk",
            flags,
            stamp,
            0,  # access bits: not accessed since written
            plan.parent.nk if plan.parent else NIL,
            len(plan.children),
            0,  # volatile subkeys never reach the file
            plan.subkey_list if plan.children else NIL,
            NIL,
            len(plan.values),
            plan.value_list if plan.values else NIL,
            plan.sk,
            plan.class_cell if class_raw else NIL,
            largest_subkey,
            largest_class,
            largest_value_name,
            largest_data,
            0,  # WorkVar
            len(plan.name),
            len(class_raw),
        )
        self.bins.put(plan.nk, nk + plan.name)
        if class_raw:
            self.bins.put(plan.class_cell, class_raw)
        if plan.values:
            self.bins.put(plan.value_list, struct.pack(f"<{len(plan.values)}I", *(v.vk for v in plan.values)))
            for vp in plan.values:
                self._fill_value(vp)
        if plan.children:
            self._fill_subkey_lists(plan)

    def _fill_value(self, vp: _ValuePlan) -> None:
        size = len(vp.raw)
        if size <= 4:
            size_field, offset_field = size | 0x80000000, int.from_bytes(vp.raw.ljust(4, b"\0"), "little")
        else:
            size_field, offset_field = size, vp.data
        flags = VALUE_COMP_NAME if vp.compressed and vp.name else 0
        vk = struct.pack("<2sHIIIHH", b"vk", len(vp.name), size_field, offset_field, vp.value.type, flags, 0)
        self.bins.put(vp.vk, vk + vp.name)
        if size <= 4:
            return
        if not vp.segments:
            self.bins.put(vp.data, vp.raw)
            return
        self.bins.put(vp.data, struct.pack("<2sHII", b"db", len(vp.segments), vp.segment_list, 0))
        self.bins.put(vp.segment_list, struct.pack(f"<{len(vp.segments)}I", *vp.segments))
        for i, segment in enumerate(vp.segments):
            self.bins.put(segment, vp.raw[i * BIG_DATA_SEGMENT : (i + 1) * BIG_DATA_SEGMENT])

    def _leaf(self, children: list[_KeyPlan]) -> bytes:
        if self.minor >= 5:
            entries = b"".join(struct.pack("<II", c.nk, name_hash(c.key.name)) for c in children)
            return struct.pack("<2sH", b"lh", len(children)) + entries
        entries = b"".join(struct.pack("<I", c.nk) + name_hint(c.key.name) for c in children)
        return struct.pack("<2sH", b"lf", len(children)) + entries

    def _fill_subkey_lists(self, plan: _KeyPlan) -> None:
        for offset, children in plan.leaves:
            self.bins.put(offset, self._leaf(children))
        if len(plan.leaves) > 1:
            offsets = [offset for offset, _ in plan.leaves]
            self.bins.put(plan.subkey_list, struct.pack(f"<2sH{len(offsets)}I", b"ri", len(offsets), *offsets))

    def build(self) -> bytes:
        self.allocate()
        self.fill()
        return self.bins.finish()


def name_hint(name: str) -> bytes:
    """The name hint an lf leaf stores for a key name."""
    # lf leaves keep the first four characters where they fit one byte each, else zeros.
    head = name[:4]
    if all(ord(c) < 0x100 for c in head):
        return head.encode("latin-1").ljust(4, b"\0")
    return b"\0\0\0\0"


# ---------------------------------------------------------------------------------------
# The base block


def base_block_checksum(block: bytes) -> int:
    """The CheckSum of a base block: XOR of its first 127 dwords, 0 -> 1, 0xFFFFFFFF -> 0xFFFFFFFE."""
    total = 0
    for (dword,) in struct.iter_unpack("<I", block[:508]):
        total ^= dword
    if total == 0xFFFFFFFF:
        return 0xFFFFFFFE
    if total == 0:
        return 1
    return total


def _base_block(
    *, root_offset: int, bins_size: int, name: str, minor_version: int, sequence: int, timestamp: int
) -> bytes:
    block = bytearray(BASE_BLOCK_SIZE)
    struct.pack_into(
        "<4sIIQIIIIIII",
        block,
        0,
        b"regf",
        sequence,
        sequence,  # equal: a clean hive, nothing to recover from logs
        timestamp,
        1,
        minor_version,
        0,  # primary file
        1,  # direct memory load
        root_offset,
        bins_size,
        1,  # clustering factor
    )
    # FileName keeps the last 31 characters of the hive's path, as Windows truncates it.
    units = name_units(name)[-31:]
    block[0x30 : 0x30 + 2 * len(units)] = struct.pack(f"<{len(units)}H", *units)
    # Resource manager, log and transaction manager GUIDs of the hive's (unused) CLFS log:
    # Windows fills them; ours derive from the name and time so the output stays repeatable.
    rm = uuid.uuid5(uuid.NAMESPACE_URL, f"aclscan-regf:{name}:{timestamp}").bytes_le
    tm = struct.pack("<I", (struct.unpack_from("<I", rm)[0] + 1) & 0xFFFFFFFF) + rm[4:]
    block[0x70:0x80] = rm
    block[0x80:0x90] = rm
    block[0x94:0xA4] = tm
    struct.pack_into("<4sQ4sI", block, 0xA4, b"rmtm", timestamp, b"OfRg", 1)
    struct.pack_into("<I", block, 0x1FC, base_block_checksum(bytes(block)))
    return bytes(block)


# ---------------------------------------------------------------------------------------
# Public entry points


def hive_bytes(
    root: Key,
    *,
    name: str = r"\SystemRoot\System32\Config\SAM",
    timestamp: datetime | int = DEFAULT_TIMESTAMP,
    minor_version: int = 5,
    sequence: int = 1,
    security: bytes = DEFAULT_SECURITY,
) -> bytes:
    """The bytes of a hive file holding ``root`` and everything below it.

    ``name`` is the hive's path as Windows records it in the base block (its last 31
    characters are kept); regipy tells hive types apart by it. ``timestamp`` is every
    key's last-written time unless the key has its own. ``minor_version`` 5 (1.5, what
    Windows XP to 11 write) uses lh leaves and db big data; 3 (1.3, NT 4) uses lf leaves
    and stores big values in one cell. ``security`` is the descriptor of keys without one.
    """
    if minor_version not in (3, 4, 5, 6):
        raise InvalidHive(f"regf minor version {minor_version!r} is not one of 3, 4, 5 or 6")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence <= 0xFFFFFFFF:
        raise InvalidHive(f"sequence number {sequence!r} is not a 32-bit number")
    if not isinstance(name, str):
        raise InvalidHive(f"the hive name must be text, not {type(name).__name__}")
    stamp = filetime(timestamp)
    if not isinstance(security, bytes):
        raise InvalidHive(f"the default security descriptor must be bytes, not {type(security).__name__}")
    try:
        SecurityDescriptor.from_bytes(security)
    except MalformedData as exc:
        raise InvalidHive(f"default security descriptor: {exc}") from exc
    _check_tree(root)
    writer = _Writer(root, minor_version=minor_version, timestamp=stamp, security=bytes(security))
    bins = writer.build()
    header = _base_block(
        root_offset=writer.root.nk,
        bins_size=len(bins),
        name=name,
        minor_version=minor_version,
        sequence=sequence,
        timestamp=stamp,
    )
    return header + bins


def write_hive(
    root: Key,
    path_or_file: str | os.PathLike[str] | BinaryIO,
    *,
    name: str = r"\SystemRoot\System32\Config\SAM",
    timestamp: datetime | int = DEFAULT_TIMESTAMP,
    minor_version: int = 5,
    sequence: int = 1,
    security: bytes = DEFAULT_SECURITY,
) -> int:
    """Write the hive holding ``root`` to a path or a binary file; return its size in bytes.

    See :func:`hive_bytes` for the arguments. Nothing is written when the tree is invalid.
    """
    data = hive_bytes(
        root, name=name, timestamp=timestamp, minor_version=minor_version, sequence=sequence, security=security
    )
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "wb") as handle:
            handle.write(data)
    elif isinstance(path_or_file, io.TextIOBase):
        raise InvalidHive("write_hive needs a binary file, not a text file")
    else:
        path_or_file.write(data)
    return len(data)
