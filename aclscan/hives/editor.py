"""The one module that changes hive bytes: offline, in memory, bytes in and bytes out.

:class:`HiveEditor` takes a primary hive file's bytes, applies edits to its cells and
returns new bytes that stay a hive Windows loads; :func:`edit_hive` wraps it as a pure
function that also says what changed (:class:`HiveChange`). Readers stay in
``registry`` (regipy); the sample writer in ``aclscan.samples.regf`` builds whole hives
and lends its name helpers (upper-casing, lh hashes, lf hints, the base block checksum).

Format facts (Maxim Suhanov, "Windows registry file format specification"):

* base block: a hive whose PrimarySequenceNumber differs from its SecondarySequenceNumber,
  or whose checksum is wrong, is dirty (its transaction logs hold newer data): refused
  unless the caller says the logs are already applied. A write increments both numbers
  and leaves them equal, sets LastWrittenTimestamp, HiveBinsDataSize and the checksum;
* cells: the size (including its own 4 bytes) is a multiple of 8, negative while
  allocated, positive when free. A freed cell is zeroed (no old SID stays behind in slack),
  turned positive and merged with free neighbours in its bin; a cell is taken first-fit
  from free space (the rest stays a free cell), or from a hive bin appended at the end
  (4 KiB or a multiple, its header names its offset and size);
* nk: subkey count and list, value count and list, sk, class, and the largest subkey
  name, class, value name and data sizes (names counted in UTF-16 bytes, as Windows
  does); a changed key's LastWrittenTimestamp is set;
* subkey lists (li, lf, lh; ri above 1012 entries) are sorted by Windows' upper-case order
  and carry lf hints or lh hashes; a changed list is written anew in the form it had;
* vk: data of 4 bytes or fewer sits in the DataOffset field (DataSize bit 31), more in
  a cell, more than 16344 bytes (1.4 and later) in db segments;
* sk: a circular Flink/Blink list of every sk cell with a ReferenceCount each; a key whose
  descriptor changes shares an identical sk cell or gets a new one linked into the list,
  and an sk cell no key references any more is unlinked and freed.

Paths are relative to the root key (``Policy\\Accounts``), as ``registry.Hive.key``
takes them; names compare without case, as Windows compares them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from aclscan.errors import DirtyHive, HiveEditError, MalformedData, MissingHiveKey
from aclscan.samples.regf import (
    BIG_DATA_SEGMENT,
    KEY_COMP_NAME,
    MAX_KEY_NAME,
    MAX_LEAF,
    NIL,
    RI_LEAF,
    VALUE_COMP_NAME,
    base_block_checksum,
    encode_name,
    filetime,
    name_hash,
    name_hint,
    name_units,
    sort_key,
)
from aclscan.sd.descriptor import SecurityDescriptor

__all__ = ["EditResult", "HiveChange", "HiveEditor", "edit_hive"]

BASE = 0x1000  # cell offsets count from the first hive bin, right after the base block
HBIN_HEADER = 0x20
HBIN_UNIT = 0x1000

# nk fields, offsets into the cell's data (after its size)
NK_FLAGS, NK_STAMP, NK_PARENT, NK_SUBKEYS, NK_SUBKEY_LIST = 2, 4, 16, 20, 28
NK_VALUES, NK_VALUE_LIST, NK_SECURITY, NK_CLASS = 36, 40, 44, 48
NK_MAX_NAME, NK_MAX_CLASS, NK_MAX_VALUE_NAME, NK_MAX_DATA = 52, 56, 60, 64
NK_NAME_LENGTH, NK_CLASS_LENGTH, NK_NAME = 72, 74, 76
# vk fields
VK_NAME_LENGTH, VK_DATA_SIZE, VK_DATA, VK_TYPE, VK_FLAGS, VK_NAME = 2, 4, 8, 12, 16, 20
DATA_INLINE = 0x80000000
# sk fields
SK_FLINK, SK_BLINK, SK_REFS, SK_LENGTH, SK_DESCRIPTOR = 4, 8, 12, 16, 20


@dataclass(frozen=True)
class HiveChange:
    """One change an edit made: its kind, the key's path and what it did."""

    kind: str  # set_value, add_value, delete_value, rename_key, add_key, delete_key, set_security
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.path}: {self.detail}"


@dataclass(frozen=True)
class EditResult:
    """The edited hive's bytes and the changes made, in order."""

    data: bytes
    changes: tuple[HiveChange, ...]


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def _decode_name(raw: bytes, compressed: bool) -> str:
    return raw.decode("latin-1") if compressed else raw.decode("utf-16-le", "surrogatepass")


def _parts(path: str) -> list[str]:
    return [p for p in path.strip("\\").split("\\") if p]


def _joined(parts: list[str]) -> str:
    return "\\".join(parts) or "(root)"


def _shown(path: str) -> str:
    """A path as messages and changes show it: no leading backslash, the root as (root)."""
    return _joined(_parts(path))


class HiveEditor:
    """A primary hive held in memory for editing; :meth:`to_bytes` gives the result. A
    method that cannot make its change raises :class:`~aclscan.errors.HiveEditError`
    (:class:`~aclscan.errors.MissingHiveKey` for a key or value that is not there) and
    may leave the copy half changed: use :func:`edit_hive`, which then returns nothing."""

    def __init__(self, data: bytes, *, logs_applied: bool = False, timestamp: datetime | int | None = None,
                 label: str = "hive") -> None:
        self.label = label
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise HiveEditError(f"{label}: hive bytes expected, not {type(data).__name__}")
        data = bytes(data)
        if len(data) < BASE + HBIN_HEADER or data[:4] != b"regf":
            raise HiveEditError(f"{label}: not a registry hive")
        primary, secondary = struct.unpack_from("<II", data, 4)
        major, minor, file_type = struct.unpack_from("<III", data, 0x14)
        if file_type != 0 or major != 1:
            raise HiveEditError(f"{label}: not a primary hive of format 1.x (type {file_type}, {major}.{minor})")
        checksum_ok = struct.unpack_from("<I", data, 0x1FC)[0] == base_block_checksum(data[:BASE])
        if (primary != secondary or not checksum_ok) and not logs_applied:
            why = (f"sequence numbers {primary} and {secondary} differ" if primary != secondary
                   else "its base block checksum is wrong")
            raise DirtyHive(f"{label}: dirty hive ({why}): apply its transaction logs before writing it")
        self.minor = minor
        self.sequence = max(primary, secondary)
        bins_size = struct.unpack_from("<I", data, 0x28)[0]
        if BASE + bins_size > len(data) or bins_size % HBIN_UNIT:
            raise HiveEditError(f"{label}: hive bins data size {bins_size} does not fit the file ({len(data)} bytes)")
        self.buf = bytearray(data[: BASE + bins_size])
        self._padding = data[BASE + bins_size :]  # after the last bin: kept unless bins are appended
        self.root = struct.unpack_from("<I", data, 0x24)[0]
        self.stamp = filetime(timestamp if timestamp is not None else datetime.now(timezone.utc))
        self.changes: list[HiveChange] = []
        self._free: dict[int, int] = {}  # free cell offset -> size
        self._free_end: dict[int, int] = {}  # end of a free cell -> its offset
        self._sk_index: dict[bytes, int] | None = None  # descriptor -> an sk cell holding it
        self._scan_bins(bins_size)
        self._expect(self.root, b"nk", "the root key")

    # ------------------------------------------------------------------ bins and cells

    def _scan_bins(self, bins_size: int) -> None:
        position = 0
        while position < bins_size:
            at = BASE + position
            signature, offset, size = struct.unpack_from("<4sII", self.buf, at)
            if signature != b"hbin" or offset != position or size < HBIN_UNIT or size % HBIN_UNIT \
                    or position + size > bins_size:
                raise HiveEditError(f"{self.label}: corrupt hive bin at {position:#x}")
            cell = position + HBIN_HEADER
            while cell < position + size:
                raw = struct.unpack_from("<i", self.buf, BASE + cell)[0]
                length = abs(raw)
                if length < 8 or length % 8 or cell + length > position + size:
                    raise HiveEditError(f"{self.label}: corrupt cell at {cell:#x} (size {raw})")
                if raw > 0:
                    self._add_free(cell, length)
                cell += length
            position += size

    @property
    def bins_size(self) -> int:
        return len(self.buf) - BASE

    def _add_free(self, offset: int, size: int) -> None:
        # Merge with the free cells right after and right before (never across a bin: the
        # next bin's first cell starts after its header, so no free cell ends there).
        after = self._free.pop(offset + size, None)
        if after is not None:
            del self._free_end[offset + size + after]
            size += after
        before = self._free_end.pop(offset, None)
        if before is not None:
            del self._free[before]
            size += offset - before
            offset = before
        self._free[offset] = size
        self._free_end[offset + size] = offset
        struct.pack_into("<i", self.buf, BASE + offset, size)

    def _release(self, offset: int) -> None:
        """Free an allocated cell: its bytes are zeroed, then it joins its free neighbours."""
        if offset == NIL:
            return
        size = self._cell_size(offset)
        self.buf[BASE + offset + 4 : BASE + offset + size] = bytes(size - 4)
        self._add_free(offset, size)

    def _alloc(self, payload: int) -> int:
        need = _align(payload + 4, 8)
        for offset in sorted(self._free):
            size = self._free[offset]
            if size >= need:
                break
        else:
            offset, size = self._append_bin(need)
        del self._free[offset]
        del self._free_end[offset + size]
        if size > need:
            self._add_free(offset + need, size - need)
        struct.pack_into("<i", self.buf, BASE + offset, -need)
        self.buf[BASE + offset + 4 : BASE + offset + need] = bytes(need - 4)
        return offset

    def _append_bin(self, need: int) -> tuple[int, int]:
        start = self.bins_size
        size = max(HBIN_UNIT, _align(need + HBIN_HEADER, HBIN_UNIT))
        self.buf += bytes(size)
        struct.pack_into("<4sII", self.buf, BASE + start, b"hbin", start, size)
        self._padding = b""
        cell = start + HBIN_HEADER
        self._add_free(cell, size - HBIN_HEADER)
        return cell, size - HBIN_HEADER

    def _cell_size(self, offset: int) -> int:
        if offset + 4 > self.bins_size:
            raise HiveEditError(f"{self.label}: cell offset {offset:#x} is outside the hive bins")
        raw = struct.unpack_from("<i", self.buf, BASE + offset)[0]
        if raw >= 0:
            raise HiveEditError(f"{self.label}: cell {offset:#x} is referenced but free")
        return -raw

    def _data(self, offset: int, length: int | None = None) -> bytes:
        size = self._cell_size(offset)
        end = BASE + offset + size if length is None else BASE + offset + 4 + length
        if length is not None and length > size - 4:
            raise HiveEditError(f"{self.label}: cell {offset:#x} holds {size - 4} bytes, {length} expected")
        return bytes(self.buf[BASE + offset + 4 : end])

    def _get(self, offset: int, field: int, fmt: str = "<I"):
        return struct.unpack_from(fmt, self.buf, BASE + offset + 4 + field)[0]

    def _set(self, offset: int, field: int, value: int, fmt: str = "<I") -> None:
        struct.pack_into(fmt, self.buf, BASE + offset + 4 + field, value)

    def _expect(self, offset: int, signature: bytes, what: str) -> None:
        if self._data(offset, 2) != signature:
            raise HiveEditError(f"{self.label}: {what} at {offset:#x} is not a {signature.decode()} cell")

    def _store(self, old: int, payload: bytes) -> int:
        """``payload`` in ``old``'s cell when it fits (the rest zeroed), else in a new cell
        (``old`` freed). Returns the cell's offset."""
        if old != NIL and self._cell_size(old) - 4 >= len(payload):
            size = self._cell_size(old)
            self.buf[BASE + old + 4 : BASE + old + size] = payload.ljust(size - 4, b"\0")
            return old
        new = self._alloc(len(payload))
        self.buf[BASE + new + 4 : BASE + new + 4 + len(payload)] = payload
        self._release(old)
        return new

    def _new_cell(self, payload: bytes) -> int:
        return self._store(NIL, payload)

    # ------------------------------------------------------------------ keys

    def _key_name(self, nk: int) -> str:
        length = self._get(nk, NK_NAME_LENGTH, "<H")
        raw = self._data(nk, NK_NAME + length)[NK_NAME:]
        return _decode_name(raw, bool(self._get(nk, NK_FLAGS, "<H") & KEY_COMP_NAME))

    def _subkeys(self, nk: int) -> list[int]:
        count, offset = self._get(nk, NK_SUBKEYS), self._get(nk, NK_SUBKEY_LIST)
        if count == 0 or offset == NIL:
            return []
        found: list[int] = []
        for leaf in self._leaves(offset):
            signature, entries = struct.unpack_from("<2sH", self.buf, BASE + leaf + 4)
            step = 4 if signature == b"li" else 8
            raw = self._data(leaf, 4 + step * entries)
            found.extend(struct.unpack_from("<I", raw, 4 + step * i)[0] for i in range(entries))
        if len(found) != count:
            raise HiveEditError(f"{self.label}: key at {nk:#x} announces {count} subkeys, its list holds {len(found)}")
        return found

    def _leaves(self, offset: int) -> list[int]:
        signature, entries = struct.unpack_from("<2sH", self._data(offset, 4))
        if signature in (b"li", b"lf", b"lh"):
            return [offset]
        if signature != b"ri":
            raise HiveEditError(f"{self.label}: subkey list at {offset:#x} has signature {signature!r}")
        raw = self._data(offset, 4 + 4 * entries)
        return [struct.unpack_from("<I", raw, 4 + 4 * i)[0] for i in range(entries)]

    def _child(self, nk: int, name: str) -> int | None:
        wanted = sort_key(name)
        for child in self._subkeys(nk):
            if sort_key(self._key_name(child)) == wanted:
                return child
        return None

    def key(self, path: str) -> int:
        """The key node at ``path`` (its cell offset); MissingHiveKey when there is none."""
        nk = self.root
        parts = _parts(path)
        for depth, part in enumerate(parts):
            child = self._child(nk, part)
            if child is None:
                raise MissingHiveKey(f"{self.label}: no key {_joined(parts[: depth + 1])}")
            nk = child
        return nk

    def has_key(self, path: str) -> bool:
        try:
            self.key(path)
        except MissingHiveKey:
            return False
        return True

    def subkey_names(self, path: str) -> list[str]:
        """The names of the key's subkeys, in the hive's (sorted) order."""
        return [self._key_name(child) for child in self._subkeys(self.key(path))]

    def iter_keys(self, path: str = "") -> Iterator[tuple[str, int]]:
        """(path, key node) of the key at ``path`` and every key below it, depth first."""
        stack = [(_shown(path), self.key(path))]
        while stack:
            where, nk = stack.pop()
            yield where, nk
            for child in reversed(self._subkeys(nk)):
                name = self._key_name(child)
                stack.append((f"{where}\\{name}" if where else name, child))

    def _touch(self, nk: int) -> None:
        self._set(nk, NK_STAMP, self.stamp, "<Q")

    def _write_subkeys(self, parent: int, children: list[int]) -> None:
        """Write ``parent``'s subkey list anew, sorted, in the form it had; update the counts
        and the largest-name fields. The old list cells are freed."""
        old = self._get(parent, NK_SUBKEY_LIST)
        signature = b"lh" if self.minor >= 5 else b"lf"
        if self._get(parent, NK_SUBKEYS) and old != NIL:
            leaves = self._leaves(old)
            signature = self._data(leaves[0], 2)
            for cell in leaves + ([old] if leaves != [old] else []):
                self._release(cell)
        named = sorted(((self._key_name(c), c) for c in children), key=lambda item: sort_key(item[0]))
        for (a, _), (b, _) in zip(named, named[1:]):
            if sort_key(a) == sort_key(b):
                raise HiveEditError(f"{self.label}: two subkeys called {b!r}")
        offset = NIL
        if named:
            chunks = [named] if len(named) <= MAX_LEAF else [named[i : i + RI_LEAF]
                                                              for i in range(0, len(named), RI_LEAF)]
            leaves = [self._new_cell(self._leaf(signature, chunk)) for chunk in chunks]
            offset = leaves[0] if len(leaves) == 1 else self._new_cell(
                struct.pack(f"<2sH{len(leaves)}I", b"ri", len(leaves), *leaves))
        self._set(parent, NK_SUBKEYS, len(named))
        self._set(parent, NK_SUBKEY_LIST, offset)
        self._set(parent, NK_MAX_NAME, max((2 * len(name_units(n)) for n, _ in named), default=0))
        self._set(parent, NK_MAX_CLASS, max((self._get(c, NK_CLASS_LENGTH, "<H") for _, c in named), default=0))
        self._touch(parent)

    @staticmethod
    def _leaf(signature: bytes, chunk: list[tuple[str, int]]) -> bytes:
        head = struct.pack("<2sH", signature, len(chunk))
        if signature == b"li":
            return head + b"".join(struct.pack("<I", nk) for _, nk in chunk)
        if signature == b"lf":
            return head + b"".join(struct.pack("<I", nk) + name_hint(name) for name, nk in chunk)
        return head + b"".join(struct.pack("<II", nk, name_hash(name)) for name, nk in chunk)

    def _check_key_name(self, name: str) -> tuple[bytes, bool]:
        if not isinstance(name, str) or not name or "\\" in name:
            raise HiveEditError(f"{self.label}: {name!r} is not a key name (empty, or with a backslash)")
        if len(name_units(name)) > MAX_KEY_NAME:
            raise HiveEditError(f"{self.label}: key name {name[:40]!r}... is longer than {MAX_KEY_NAME} characters")
        return encode_name(name)

    def _split(self, path: str) -> tuple[str, str]:
        parts = _parts(path)
        if not parts:
            raise HiveEditError(f"{self.label}: the root key cannot be added, renamed or deleted")
        return "\\".join(parts[:-1]), parts[-1]

    def add_key(self, path: str, *, security: bytes | None = None) -> None:
        """Create the key ``path`` (its parent must exist), with the parent's descriptor
        unless ``security`` (self-relative bytes) is given."""
        parent_path, name = self._split(path)
        raw_name, compressed = self._check_key_name(name)
        parent = self.key(parent_path)
        if self._child(parent, name) is not None:
            raise HiveEditError(f"{self.label}: key {_shown(path)} exists already")
        sd = self._checked_descriptor(security, path) if security is not None else None
        sk = self._sk_of(parent) if sd is None else self._acquire_sk(sd, self._get(parent, NK_SECURITY))
        nk = self._new_cell(struct.pack(
            "<2sHQIIIIIIIIIIIIIIIHH", b"nk", KEY_COMP_NAME if compressed else 0, self.stamp, 0, parent, 0, 0,
            NIL, NIL, 0, NIL, sk, NIL, 0, 0, 0, 0, 0, len(raw_name), 0) + raw_name)
        if sd is None:
            self._set(sk, SK_REFS, self._get(sk, SK_REFS) + 1)
        self._write_subkeys(parent, self._subkeys(parent) + [nk])
        self.changes.append(HiveChange("add_key", _shown(path), "created"))

    def _sk_of(self, nk: int) -> int:
        sk = self._get(nk, NK_SECURITY)
        self._expect(sk, b"sk", "a key's security")
        return sk

    def rename_key(self, path: str, new_name: str) -> None:
        """Give the key at ``path`` the name ``new_name``; its parent's list is sorted again."""
        parent_path, _ = self._split(path)
        raw_name, compressed = self._check_key_name(new_name)
        nk = self.key(path)
        parent = self.key(parent_path)
        clash = self._child(parent, new_name)
        if clash is not None and clash != nk:
            where = f"{parent_path}\\{new_name}" if parent_path else new_name
            raise HiveEditError(f"{self.label}: cannot rename {_shown(path)}: key {where} exists already")
        header = self._data(nk, NK_NAME)
        flags = (self._get(nk, NK_FLAGS, "<H") & ~KEY_COMP_NAME) | (KEY_COMP_NAME if compressed else 0)
        header = header[:NK_FLAGS] + struct.pack("<H", flags) + header[NK_FLAGS + 2 : NK_NAME_LENGTH] \
            + struct.pack("<H", len(raw_name)) + header[NK_NAME_LENGTH + 2 :]
        moved = self._store(nk, header + raw_name)
        if moved != nk:  # a longer name: the children and the parent's list point to the new cell
            for child in self._subkeys(moved):
                self._set(child, NK_PARENT, moved)
        siblings = [moved if c == nk else c for c in self._subkeys(parent)]
        self._touch(moved)
        self._write_subkeys(parent, siblings)
        self.changes.append(HiveChange("rename_key", _shown(path), f"renamed to {new_name}"))

    def copy_key(self, path: str, new_path: str) -> None:
        """Copy the key at ``path`` with its values and subkeys to ``new_path`` (which must
        not exist; its parent must); the copies share the originals' descriptors."""
        source = self.key(path)
        if self._get(source, NK_CLASS_LENGTH, "<H"):
            raise HiveEditError(f"{self.label}: key {_shown(path)} has a class name: not copied")
        self.add_key(new_path, security=self.security(path))
        for vk in self._value_cells(source):
            self.set_value(new_path, self._value_name(vk), self._get(vk, VK_TYPE), self._value_data(vk))
        for child in self._subkeys(source):
            name = self._key_name(child)
            self.copy_key(f"{path}\\{name}", f"{new_path}\\{name}")

    def delete_key(self, path: str, *, recursive: bool = False) -> None:
        """Delete the key at ``path`` with its values; with ``recursive``, its subkeys first
        (otherwise a key with subkeys is refused)."""
        parent_path, _ = self._split(path)
        nk = self.key(path)
        parent = self.key(parent_path)
        if self._get(nk, NK_SUBKEYS):
            if not recursive:
                raise HiveEditError(f"{self.label}: key {_shown(path)} has subkeys")
            for child in self._subkeys(nk):
                self.delete_key(f"{path}\\{self._key_name(child)}", recursive=True)
        for vk in self._value_cells(nk):
            self._free_value(vk)
        self._release(self._get(nk, NK_VALUE_LIST) if self._get(nk, NK_VALUES) else NIL)
        if self._get(nk, NK_CLASS_LENGTH, "<H") and self._get(nk, NK_CLASS) != NIL:
            self._release(self._get(nk, NK_CLASS))
        self._release_sk(self._get(nk, NK_SECURITY))
        self._release(nk)
        self._write_subkeys(parent, [c for c in self._subkeys(parent) if c != nk])
        self.changes.append(HiveChange("delete_key", _shown(path), "deleted"))

    # ------------------------------------------------------------------ values

    def _value_cells(self, nk: int) -> list[int]:
        count, offset = self._get(nk, NK_VALUES), self._get(nk, NK_VALUE_LIST)
        if count == 0 or offset == NIL:
            return []
        raw = self._data(offset, 4 * count)
        return list(struct.unpack(f"<{count}I", raw))

    def _value_name(self, vk: int) -> str:
        length = self._get(vk, VK_NAME_LENGTH, "<H")
        raw = self._data(vk, VK_NAME + length)[VK_NAME:]
        return _decode_name(raw, bool(self._get(vk, VK_FLAGS, "<H") & VALUE_COMP_NAME))

    def _find_value(self, nk: int, name: str) -> int | None:
        wanted = sort_key(name)
        return next((vk for vk in self._value_cells(nk) if sort_key(self._value_name(vk)) == wanted), None)

    def _value_data(self, vk: int) -> bytes:
        size, offset = self._get(vk, VK_DATA_SIZE), self._get(vk, VK_DATA)
        if size & DATA_INLINE:
            return struct.pack("<I", offset)[: min(size & ~DATA_INLINE, 4)]
        if size == 0:
            return b""
        if self._is_big(vk):
            segments = self._segments(offset)
            return b"".join(self._data(s) for s in segments)[:size]
        return self._data(offset, size)

    def _is_big(self, vk: int) -> bool:
        size, offset = self._get(vk, VK_DATA_SIZE), self._get(vk, VK_DATA)
        return (not size & DATA_INLINE and size > BIG_DATA_SEGMENT and self.minor >= 4
                and self._data(offset, 2) == b"db")

    def _segments(self, db: int) -> list[int]:
        count, listing = struct.unpack_from("<HI", self._data(db, 8), 2)
        return list(struct.unpack(f"<{count}I", self._data(listing, 4 * count)))

    def value(self, path: str, name: str) -> tuple[int, bytes]:
        """(type, data) of the value ``name`` of the key at ``path``."""
        vk = self._find_value(self.key(path), name)
        if vk is None:
            raise MissingHiveKey(f"{self.label}: key {_shown(path)} has no value {name!r}")
        return self._get(vk, VK_TYPE), self._value_data(vk)

    def value_names(self, path: str) -> list[str]:
        return [self._value_name(vk) for vk in self._value_cells(self.key(path))]

    def _free_data(self, vk: int) -> None:
        size, offset = self._get(vk, VK_DATA_SIZE), self._get(vk, VK_DATA)
        if size & DATA_INLINE or size == 0 or offset == NIL:
            return
        if self._is_big(vk):
            listing = struct.unpack_from("<I", self._data(offset, 8), 4)[0]
            for segment in self._segments(offset):
                self._release(segment)
            self._release(listing)
        self._release(offset)

    def _free_value(self, vk: int) -> None:
        self._free_data(vk)
        self._release(vk)

    def _write_data(self, vk: int, data: bytes) -> None:
        """Store ``data`` for ``vk``: reuse its data cell where the new data fits it."""
        size, offset = self._get(vk, VK_DATA_SIZE), self._get(vk, VK_DATA)
        plain_cell = not size & DATA_INLINE and size != 0 and offset != NIL and not self._is_big(vk)
        if len(data) <= 4:
            self._free_data(vk)
            self._set(vk, VK_DATA_SIZE, len(data) | DATA_INLINE)
            self._set(vk, VK_DATA, int.from_bytes(data.ljust(4, b"\0"), "little"))
            return
        if len(data) > BIG_DATA_SEGMENT and self.minor >= 4:
            self._free_data(vk)
            segments = [self._new_cell(data[i : i + BIG_DATA_SEGMENT]) for i in range(0, len(data), BIG_DATA_SEGMENT)]
            if len(segments) > 0xFFFF:
                raise HiveEditError(f"{self.label}: {len(data)} bytes of data need more than 65535 db segments")
            listing = self._new_cell(struct.pack(f"<{len(segments)}I", *segments))
            cell = self._new_cell(struct.pack("<2sHII", b"db", len(segments), listing, 0))
        elif plain_cell:
            cell = self._store(offset, data)
        else:
            self._free_data(vk)
            cell = self._new_cell(data)
        self._set(vk, VK_DATA_SIZE, len(data))
        self._set(vk, VK_DATA, cell)

    def _update_value_maxima(self, nk: int) -> None:
        cells = self._value_cells(nk)
        self._set(nk, NK_MAX_VALUE_NAME, max((2 * len(name_units(self._value_name(v))) for v in cells), default=0))
        self._set(nk, NK_MAX_DATA, max((self._get(v, VK_DATA_SIZE) & ~DATA_INLINE for v in cells), default=0))
        self._touch(nk)

    def set_value(self, path: str, name: str, kind: int, data: bytes) -> None:
        """Set (or add) the value ``name`` of the key at ``path`` to ``data`` of type ``kind``."""
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 0xFFFFFFFF:
            raise HiveEditError(f"{self.label}: value type {kind!r} is not a 32-bit number")
        if not isinstance(data, (bytes, bytearray)) or not isinstance(name, str):
            raise HiveEditError(f"{self.label}: a value needs a text name and bytes of data")
        data = bytes(data)
        nk = self.key(path)
        vk = self._find_value(nk, name)
        where = _shown(path)
        if vk is None:
            raw_name, compressed = encode_name(name)
            if len(raw_name) > 0xFFFF:
                raise HiveEditError(f"{self.label}: value name {name[:40]!r}... is too long")
            flags = VALUE_COMP_NAME if compressed and raw_name else 0
            vk = self._new_cell(struct.pack("<2sHIIIHH", b"vk", len(raw_name), DATA_INLINE, 0, kind, flags, 0)
                                + raw_name)
            cells = self._value_cells(nk) + [vk]
            old_list = self._get(nk, NK_VALUE_LIST) if self._get(nk, NK_VALUES) else NIL
            self._set(nk, NK_VALUE_LIST, self._store(old_list, struct.pack(f"<{len(cells)}I", *cells)))
            self._set(nk, NK_VALUES, len(cells))
            change = HiveChange("add_value", where, f"{name or '(default)'} added: type {kind}, {len(data)} bytes")
        else:
            change = HiveChange("set_value", where, f"{name or '(default)'} set: type {kind}, {len(data)} bytes")
        self._write_data(vk, data)
        self._set(vk, VK_TYPE, kind)
        self._update_value_maxima(nk)
        self.changes.append(change)

    def delete_value(self, path: str, name: str) -> None:
        nk = self.key(path)
        vk = self._find_value(nk, name)
        if vk is None:
            raise MissingHiveKey(f"{self.label}: key {_shown(path)} has no value {name!r}")
        cells = [c for c in self._value_cells(nk) if c != vk]
        self._free_value(vk)
        listing = self._get(nk, NK_VALUE_LIST)
        if cells:
            self._store(listing, struct.pack(f"<{len(cells)}I", *cells))
        else:
            self._release(listing)
            self._set(nk, NK_VALUE_LIST, NIL)
        self._set(nk, NK_VALUES, len(cells))
        self._update_value_maxima(nk)
        self.changes.append(HiveChange("delete_value", _shown(path), f"{name or '(default)'} deleted"))

    # ------------------------------------------------------------------ security (sk)

    def _checked_descriptor(self, sd: bytes, path: str) -> bytes:
        try:
            SecurityDescriptor.from_bytes(sd)
        except (MalformedData, TypeError) as exc:
            raise HiveEditError(f"{self.label}: descriptor for {_shown(path)}: {exc}") from None
        return bytes(sd)

    def _sk_descriptor(self, sk: int) -> bytes:
        length = self._get(sk, SK_LENGTH)
        return self._data(sk, SK_DESCRIPTOR + length)[SK_DESCRIPTOR:]

    def iter_sk(self) -> Iterator[int]:
        """Every sk cell, along the Flink list from the root key's."""
        start = self._sk_of(self.root)
        sk, seen = start, set()
        while sk not in seen:
            seen.add(sk)
            yield sk
            sk = self._get(sk, SK_FLINK)
            self._expect(sk, b"sk", "an sk list entry")
        if sk != start:
            raise HiveEditError(f"{self.label}: the sk list does not lead back to its start")

    def security(self, path: str) -> bytes:
        """The self-relative descriptor of the key at ``path``."""
        return self._sk_descriptor(self._sk_of(self.key(path)))

    def _acquire_sk(self, sd: bytes, beside: int) -> int:
        """An sk cell holding ``sd`` with its ReferenceCount raised by one: an identical one
        if the hive has it, else a new one linked after ``beside``."""
        if self._sk_index is None:  # built once: a hive may hold thousands of sk cells
            self._sk_index = {}
            for sk in self.iter_sk():
                self._sk_index.setdefault(self._sk_descriptor(sk), sk)
        sk = self._sk_index.get(sd)
        if sk is not None:
            self._set(sk, SK_REFS, self._get(sk, SK_REFS) + 1)
            return sk
        after = self._get(beside, SK_FLINK)
        sk = self._new_cell(struct.pack("<2sHIIII", b"sk", 0, after, beside, 1, len(sd)) + sd)
        self._set(beside, SK_FLINK, sk)
        self._set(after, SK_BLINK, sk)
        self._sk_index[sd] = sk
        return sk

    def _release_sk(self, sk: int, count: int = 1) -> None:
        refs = self._get(sk, SK_REFS)
        if refs > count:
            self._set(sk, SK_REFS, refs - count)
            return
        before, after = self._get(sk, SK_BLINK), self._get(sk, SK_FLINK)
        if before == sk:
            raise HiveEditError(f"{self.label}: the last sk cell cannot be freed")
        self._set(before, SK_FLINK, after)
        self._set(after, SK_BLINK, before)
        if self._sk_index is not None and self._sk_index.get(self._sk_descriptor(sk)) == sk:
            del self._sk_index[self._sk_descriptor(sk)]
        self._release(sk)

    def set_security(self, path: str, sd: bytes) -> None:
        """Give the key at ``path`` the descriptor ``sd`` (self-relative bytes)."""
        sd = self._checked_descriptor(sd, path)
        nk = self.key(path)
        self._repoint_sk([nk], sd)
        self.changes.append(HiveChange("set_security", _shown(path), f"descriptor set ({len(sd)} bytes)"))

    def _repoint_sk(self, keys: list[int], sd: bytes) -> None:
        """Point every key of ``keys`` (sharing one sk cell) at an sk cell holding ``sd``."""
        old = self._sk_of(keys[0])
        if self._sk_descriptor(old) == sd:
            return
        new = self._acquire_sk(sd, old)
        self._set(new, SK_REFS, self._get(new, SK_REFS) + len(keys) - 1)
        for nk in keys:
            self._set(nk, NK_SECURITY, new)
        self._release_sk(old, len(keys))

    def rewrite_descriptors(self, rewrite: Callable[[bytes], bytes | None], *, path: str = "") -> int:
        """Apply ``rewrite`` (descriptor bytes -> new bytes, or None to keep) to the descriptor
        of every key at and below ``path``, each distinct sk cell once; keys that shared a
        cell go on sharing one. Returns the number of keys whose descriptor changed."""
        users: dict[int, list[tuple[str, int]]] = {}
        for where, nk in self.iter_keys(path):
            users.setdefault(self._sk_of(nk), []).append((where, nk))
        changed = 0
        for sk, keys in users.items():
            old = self._sk_descriptor(sk)
            new = rewrite(old)
            if new is None or new == old:
                continue
            new = self._checked_descriptor(new, keys[0][0])
            self._repoint_sk([nk for _, nk in keys], new)
            changed += len(keys)
            shown = keys[0][0] or "(root)"
            more = f" and {len(keys) - 1} other key(s) sharing it" if len(keys) > 1 else ""
            self.changes.append(HiveChange("set_security", shown, f"descriptor rewritten{more}"))
        return changed

    # ------------------------------------------------------------------ output

    def to_bytes(self) -> bytes:
        """The edited hive: both sequence numbers one past the highest, equal; the
        timestamp, hive bins size and checksum of the base block set."""
        sequence = (self.sequence + 1) & 0xFFFFFFFF
        struct.pack_into("<IIQ", self.buf, 4, sequence, sequence, self.stamp)
        struct.pack_into("<I", self.buf, 0x28, self.bins_size)
        if struct.unpack_from("<Q", self.buf, BASE + 20)[0]:  # the first bin's copy of the timestamp
            struct.pack_into("<Q", self.buf, BASE + 20, self.stamp)
        struct.pack_into("<I", self.buf, 0x1FC, base_block_checksum(bytes(self.buf[:508])))
        return bytes(self.buf) + self._padding


def edit_hive(data: bytes, edit: Callable[[HiveEditor], None], *, logs_applied: bool = False,
              timestamp: datetime | int | None = None, label: str = "hive") -> EditResult:
    """Apply ``edit`` (a function that calls :class:`HiveEditor` methods) to a copy of the
    hive ``data``; the new bytes and the changes made. ``data`` itself is never changed;
    when ``edit`` raises, nothing is returned."""
    editor = HiveEditor(data, logs_applied=logs_applied, timestamp=timestamp, label=label)
    try:
        edit(editor)
    except struct.error as exc:  # an offset of a damaged hive pointing past its bins
        raise HiveEditError(f"{label}: corrupt hive: a cell reaches past the hive bins ({exc})") from None
    return EditResult(editor.to_bytes(), tuple(editor.changes))
