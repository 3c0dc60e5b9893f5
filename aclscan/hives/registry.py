"""Open a registry hive: the one module of aclscan that calls regipy.

A hive comes in as a path, bytes or a binary file object and goes out as a
:class:`Hive`: its root :class:`RegKey`, keys by path, and values as
:class:`RegValue` (raw bytes plus the 32-bit type). regipy needs a path, so bytes are
written to a private temporary directory that is removed as soon as regipy has read
the file (it keeps the whole hive in memory); nothing is ever written beside the
evidence.

What regipy does here and what it does not:

- regipy parses the base block and walks the key tree (nk cells, lh/lf/li/ri subkey
  lists). Key names come from the nk cell's own bytes: a compressed name
  (KEY_COMP_NAME) is Latin-1, which regipy would decode as ASCII ("Administrador" is
  fine, "José" is not).
- Value cells (vk) are decoded here, from the hive bytes. regipy's
  ``NKRecord.iter_values`` reads ``DataSize`` bytes even for data stored inline in the
  vk cell (DataSize with bit 31 set), that is the rest of the file for every DWORD: 13
  seconds for a 15 MB SYSTEM hive, and garbage as the data of inline values of a type
  it does not know (a SAM ``Names\\<user>`` default value's type is the RID).
- A *dirty* hive (PrimarySequenceNumber != SecondarySequenceNumber) is read as it is,
  after applying its transaction logs (``.LOG1``/``.LOG2``, or ``.LOG`` of Windows XP
  to 8) through regipy's ``apply_transaction_logs`` where they are found. regipy
  applies every HvLE entry of a log; only the entries Windows would apply are given to
  it: a run of consecutive sequence numbers from the primary file's secondary sequence
  number on (older entries left in a reused log would undo newer pages). The entries'
  Marvin32 hashes are not checked.

Facts from Maxim Suhanov's "Windows registry file format specification" (base block,
hive bins, cells, transaction log entries).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

from construct import ConstructError
from regipy.exceptions import RegipyException
from regipy.recovery import apply_transaction_logs
from regipy.registry import NKRecord, RegistryHive

from aclscan.errors import HiveError, WrongHive

__all__ = [
    "HIVE_KINDS",
    "Hive",
    "HiveSource",
    "HiveStatus",
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

logging.getLogger("regipy").setLevel(logging.CRITICAL)  # it logs every value it cannot decode

HiveSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

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
LOG_SUFFIXES = (".LOG1", ".LOG2", ".LOG")
_FILE_TYPES = {0: "primary", 1: "transaction log", 2: "transaction log", 6: "transaction log"}

# What a broken hive makes regipy (or construct under it) raise.
_PARSE_ERRORS = (RegipyException, ConstructError, struct.error, IndexError, ValueError, OverflowError, EOFError)


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
    dirty: bool  # the primary file's sequence numbers differ
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


class RegKey:
    """One key of an open hive. Subkeys and values are read on first use and kept."""

    def __init__(self, hive: Hive, nk: NKRecord, parent: str | None) -> None:
        self._hive = hive
        self._nk = nk
        raw = bytes(nk.header.key_name_string)
        self.name = raw.decode("latin-1") if nk.header.flags.KEY_COMP_NAME else raw.decode("utf-16-le", "replace")
        # backslash-separated from the root's children ("SAM\\Domains"); "" for the root
        self.path = "" if parent is None else f"{parent}\\{self.name}" if parent else self.name
        self._subkeys: list[RegKey] | None = None
        self._values: list[RegValue] | None = None

    def __repr__(self) -> str:
        return f"RegKey({self.path or '(root)'!r})"

    @property
    def last_written(self) -> int:
        """The key's LastWrittenTimestamp (FILETIME)."""
        return int(self._nk.header.last_modified)

    def subkeys(self) -> list[RegKey]:
        """The subkeys, in the order the hive lists them. A broken subkey list ends the
        list early; the hive's ``problems`` say so."""
        if self._subkeys is None:
            found: list[RegKey] = []
            if self._nk.header.subkey_count:
                try:
                    for child in self._nk.iter_subkeys() or ():
                        if isinstance(child, NKRecord):
                            found.append(RegKey(self._hive, child, self.path))
                except _PARSE_ERRORS as exc:
                    self._hive._problem(f"subkeys of {self.path or '(root)'}: {_one_line(exc)}")
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
            self._values = list(self._hive._read_values(self._nk, self.path))
        return self._values

    def value(self, name: str = "") -> RegValue | None:
        """The value called ``name`` ("" for the default value, case-insensitive), or None."""
        wanted = _fold(name)
        for value in self.values():
            if _fold(value.name) == wanted:
                return value
        return None


# ---------------------------------------------------------------------------------------
# The hive


class Hive:
    """An open hive: ``root``, ``key(path)``, ``kind`` and ``status``. Everything is in
    memory; there is nothing to close."""

    def __init__(self, data: bytes, regipy_hive: RegistryHive, status: HiveStatus) -> None:
        self._data = data
        self._minor = struct.unpack_from("<I", data, 0x18)[0]
        self._problems: list[str] = list(status.problems)
        self._status = status
        self.root = RegKey(self, regipy_hive.root, None)
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
        self._problems.append(printable(text))

    # value cells -------------------------------------------------------------------

    def _cell(self, offset: int, what: str) -> tuple[int, int]:
        """(payload position in the file, payload size) of the cell at hive offset ``offset``."""
        position = BASE_BLOCK_SIZE + offset
        if offset == 0xFFFFFFFF or position + 4 > len(self._data):
            raise HiveError(f"{what}: cell offset {offset:#x} is outside the hive")
        size = struct.unpack_from("<i", self._data, position)[0]
        size = -size if size < 0 else size  # a free cell still holds what it held
        if size < 4 or position + size > len(self._data):
            raise HiveError(f"{what}: cell at {offset:#x} has a bad size {size}")
        return position + 4, size - 4

    def _read_values(self, nk: NKRecord, path: str) -> Iterator[RegValue]:
        count = nk.header.values_count
        if not count:
            return
        where = path or "(root)"
        try:
            start, size = self._cell(nk.header.values_list_offset, f"value list of {where}")
        except HiveError as exc:
            self._problem(str(exc))
            return
        if count * 4 > size:
            self._problem(f"value list of {where}: {count} values do not fit a {size}-byte cell")
            count = size // 4
        for (vk_offset,) in struct.iter_unpack("<I", self._data[start : start + 4 * count]):
            try:
                yield self._read_value(vk_offset, where)
            except HiveError as exc:
                self._problem(str(exc))

    def _read_value(self, offset: int, where: str) -> RegValue:
        data = self._data
        start, size = self._cell(offset, f"a value of {where}")
        if size < 0x14 or data[start : start + 2] != b"vk":
            raise HiveError(f"a value of {where}: no vk cell at {offset:#x}")
        name_length, size_field, data_offset, kind, flags = struct.unpack_from("<HIIIH", data, start + 2)
        if 0x14 + name_length > size:
            raise HiveError(f"a value of {where}: its name runs past its cell at {offset:#x}")
        raw_name = data[start + 0x14 : start + 0x14 + name_length]
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
            raise HiveError(f"{what}: {length} bytes of data do not fit a {cell_size}-byte cell")
        return RegValue(name, kind, data[cell : cell + length])

    def _big_data(self, cell: int, cell_size: int, length: int, what: str) -> bytes:
        if cell_size < 8:
            raise HiveError(f"{what}: db cell too small")
        count, list_offset = struct.unpack_from("<HI", self._data, cell + 2)
        start, size = self._cell(list_offset, what)
        if count * 4 > size:
            raise HiveError(f"{what}: {count} data segments do not fit their list")
        out = bytearray()
        for (segment,) in struct.iter_unpack("<I", self._data[start : start + 4 * count]):
            seg_start, seg_size = self._cell(segment, what)
            out += self._data[seg_start : seg_start + min(seg_size, BIG_DATA_SEGMENT, length - len(out))]
            if len(out) >= length:
                break
        if len(out) < length:
            raise HiveError(f"{what}: its data segments hold {len(out)} of {length} bytes")
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


def _read_source(source: HiveSource) -> tuple[bytes, Path | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with open(path, "rb") as handle:  # read-only: never written
                return handle.read(), path
        except IsADirectoryError:
            raise HiveError(f"{path}: a directory, not a registry hive") from None
        except OSError as exc:
            raise HiveError(f"{path}: cannot read: {exc.strerror or _one_line(exc)}") from None
    if isinstance(source, io.TextIOBase):
        raise HiveError("a hive must be opened in binary mode, not as text")
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise HiveError("a hive must be opened in binary mode, not as text")
        return bytes(data), None
    raise HiveError(f"cannot read a hive from {type(source).__name__}")


def _checksum(block: bytes) -> int:
    total = 0
    for (dword,) in struct.iter_unpack("<I", block[:508]):
        total ^= dword
    return 0xFFFFFFFE if total == 0xFFFFFFFF else 1 if total == 0 else total


def _check_base_block(data: bytes, label: str) -> tuple[bool, list[str]]:
    """(dirty?, problems) of a primary file; :class:`HiveError` where it is no hive."""
    if len(data) < 4 or data[:4] != b"regf":
        head = data[:4].hex() if data else "nothing"
        raise HiveError(f"{label}: not a registry hive (starts with {head}, not 'regf')")
    if len(data) < BASE_BLOCK_SIZE + HBIN_HEADER_SIZE:
        raise HiveError(f"{label}: truncated registry hive ({len(data)} bytes, not even one hive bin)")
    primary, secondary = struct.unpack_from("<II", data, 4)
    major, minor, file_type, _format, root, bins_size = struct.unpack_from("<IIIIII", data, 0x14)
    if file_type != 0:
        kind = _FILE_TYPES.get(file_type, f"file type {file_type}")
        raise HiveError(f"{label}: a registry {kind} file, not a primary hive")
    if major != 1 or minor > 6:
        raise HiveError(f"{label}: registry format {major}.{minor} is not one aclscan reads (1.x)")
    if data[BASE_BLOCK_SIZE : BASE_BLOCK_SIZE + 4] != b"hbin":
        raise HiveError(f"{label}: corrupt registry hive (no hive bin after the base block)")
    problems = []
    if struct.unpack_from("<I", data, 0x1FC)[0] != _checksum(data):
        problems.append("the base block's checksum is wrong")
    return primary != secondary, problems


def _check_bins(data: bytes, label: str) -> None:
    bins_size, = struct.unpack_from("<I", data, 0x28)
    root, = struct.unpack_from("<I", data, 0x24)
    held = len(data) - BASE_BLOCK_SIZE
    if bins_size > held:
        raise HiveError(
            f"{label}: truncated registry hive (the base block announces {bins_size} bytes of hive bins, "
            f"the file holds {held})"
        )
    if root + 4 + 0x50 > held:
        raise HiveError(f"{label}: corrupt registry hive (root key offset {root:#x} is outside the hive bins)")


def _logs_beside(path: Path) -> list[Path]:
    """``NAME.LOG1``, ``NAME.LOG2`` and ``NAME.LOG`` beside ``path``, any case."""
    try:
        entries = {p.name.upper(): p for p in path.parent.iterdir() if p.is_file()}
    except OSError:
        return []
    found = []
    for suffix in LOG_SUFFIXES:
        hit = entries.get((path.name + suffix).upper())
        if hit is not None:
            found.append(hit)
    return found


def _log_bytes(log: str | os.PathLike | bytes | bytearray | memoryview | BinaryIO, number: int) -> tuple[bytes, str]:
    """(its bytes, its name in messages) of the ``number``-th log given."""
    if isinstance(log, (bytes, bytearray, memoryview)):
        return bytes(log), f"transaction log {number}"
    if isinstance(log, (str, os.PathLike)):
        with open(log, "rb") as handle:  # read-only
            return handle.read(), Path(log).name
    return bytes(log.read()), f"transaction log {number}"


def _usable_log(log: bytes, expected: int, name: str) -> tuple[bytes | None, int, str | None]:
    """(the log to give regipy, the first sequence number it applies, why it is not used).

    An HvLE log keeps its base block and the run of entries whose sequence numbers go
    on from ``expected`` (the primary file's secondary sequence number) one by one; a
    DIRT log (Windows XP to 8) is given as it is."""
    if len(log) < 0x204 or log[:4] != b"regf":
        return None, 0, f"{name}: not a registry transaction log"
    magic = log[0x200:0x204]
    if magic == b"DIRT":
        return log, 0, None
    if magic != b"HvLE":
        return None, 0, f"{name}: holds no log entries"
    kept = bytearray(log[:0x200])
    position, first, sequence = 0x200, None, None
    while position + 40 <= len(log) and log[position : position + 4] == b"HvLE":
        size, _flags, number = struct.unpack_from("<III", log, position + 4)
        if size < 40 or size % 512 or position + size > len(log):
            break
        if first is None:
            if number < expected:  # an older entry: reconciled already
                position += size
                continue
            first = sequence = number
        elif number != sequence:
            break
        kept += log[position : position + size]
        sequence += 1
        position += size
    if first is None:
        return None, 0, None  # nothing in it is newer than the primary file
    return bytes(kept), first, None


def _recover(
    data: bytes, logs: Sequence[tuple[bytes, str]], workdir: Path
) -> tuple[bytes, list[str], int, list[str]]:
    """The primary file with its logs applied: (bytes, logs applied, pages, problems)."""
    expected = struct.unpack_from("<I", data, 8)[0]
    problems: list[str] = []
    usable: list[tuple[int, bytes, str]] = []
    for raw, name in logs:
        log, first, why = _usable_log(raw, expected, name)
        if why:
            problems.append(why)
        if log is not None:
            usable.append((first, log, name))
    if not usable:
        return data, [], 0, problems
    usable.sort(key=lambda item: item[0])
    usable = usable[-2:]  # regipy takes two logs at most; the newest matter
    hive_path = workdir / "hive"
    hive_path.write_bytes(data)
    paths = []
    for index, (_first, log, _name) in enumerate(usable):
        paths.append(workdir / f"hive.log{index}")
        paths[-1].write_bytes(log)
    restored = workdir / "restored"
    try:
        if len(paths) == 2:  # regipy applies the secondary log first, then the primary
            _path, pages = apply_transaction_logs(
                str(hive_path), str(paths[1]), secondary_log_path=str(paths[0]), restored_hive_path=str(restored)
            )
        else:
            _path, pages = apply_transaction_logs(str(hive_path), str(paths[0]), restored_hive_path=str(restored))
        recovered = restored.read_bytes()
    except (*_PARSE_ERRORS, OSError) as exc:
        problems.append(f"transaction logs not applied: {_one_line(exc)}")
        return data, [], 0, problems
    return recovered, [name for _first, _log, name in usable], pages, problems


def open_hive(
    source: HiveSource,
    *,
    logs: Sequence[str | os.PathLike | bytes | BinaryIO] | None = None,
    label: str | None = None,
    expect: str | None = None,
) -> Hive:
    """Open a hive from a path, bytes or a binary file.

    ``logs`` are its transaction logs (paths, bytes or files); for a path, ``None``
    looks for ``NAME.LOG1``, ``NAME.LOG2`` and ``NAME.LOG`` beside it. Logs are applied
    only to a dirty hive. ``label`` names the hive in messages (default: the path, or
    "hive"). With ``expect`` ("SAM", "SECURITY", "SYSTEM" or "SOFTWARE") a hive of
    another kind raises :class:`WrongHive`. Anything that is no readable hive raises
    :class:`HiveError` (a ``ValueError`` too) with a one-line message.
    """
    data, path = _read_source(source)
    label = label or (str(path) if path is not None else "hive")
    dirty, problems = _check_base_block(data, label)
    file_name = data[0x30:0x70].decode("utf-16-le", "replace").split("\0", 1)[0]
    applied: list[str] = []
    pages = 0
    workdir = Path(tempfile.mkdtemp(prefix="aclscan-hive-"))  # mode 0700: private
    try:
        if dirty:
            if logs is None and path is not None:
                logs = _logs_beside(path)
            if logs:
                try:
                    log_data = [_log_bytes(log, i) for i, log in enumerate(logs, 1)]
                except OSError as exc:
                    log_data = []
                    problems.append(f"transaction logs not read: {exc.strerror or _one_line(exc)}")
                data, applied, pages, more = _recover(data, log_data, workdir)
                problems += more
            if not applied:
                problems.append("dirty hive read without its transaction logs: recent changes may be missing")
        _check_bins(data, label)
        hive_path = workdir / "hive"
        hive_path.write_bytes(data)
        try:
            regipy_hive = RegistryHive(str(hive_path))
        except _PARSE_ERRORS as exc:
            raise HiveError(f"{label}: corrupt registry hive ({_one_line(exc)})") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    status = HiveStatus(label, None, file_name, dirty, tuple(applied), pages, tuple(printable(p) for p in problems))
    try:
        hive = Hive(data, regipy_hive, status)
    except _PARSE_ERRORS as exc:
        raise HiveError(f"{label}: corrupt registry hive ({_one_line(exc)})") from None
    if expect is not None:
        hive.require(expect)
    return hive
