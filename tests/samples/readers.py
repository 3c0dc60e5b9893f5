"""Two readers no one here wrote, to read back the hives aclscan.samples writes.

regipy (in-process) and hivex (the Debian ``hivexml`` and ``hivexget`` programs). Each
gives a dump ``{key path: KeyDump}`` with the key path spelled from the root's children
(``""`` is the root, ``"\\SAM\\Domains"`` below it), names decoded as the reader decodes
them. ``as_regipy`` and ``as_hivex`` turn a :class:`Value` into what each reader is
expected to report for it.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from regipy.registry import NKRecord, RegistryHive

from aclscan.samples.regf import Value

logging.getLogger("regipy").setLevel(logging.CRITICAL)  # it logs every value it cannot decode

REGIPY_TYPE_NAMES = {
    0: "REG_NONE",
    1: "REG_SZ",
    2: "REG_EXPAND_SZ",
    3: "REG_BINARY",
    4: "REG_DWORD",
    5: "REG_DWORD_BIG_ENDIAN",
    6: "REG_LINK",
    7: "REG_MULTI_SZ",
    8: "REG_RESOURCE_LIST",
    9: "REG_FULL_RESOURCE_DESCRIPTOR",
    10: "REG_RESOURCE_REQUIREMENTS_LIST",
    11: "REG_QWORD",
    16: "REG_FILETIME",
}


@dataclass
class KeyDump:
    name: str
    subkeys: list[str] = field(default_factory=list)  # in the order the reader lists them
    values: list[tuple[str, object, object]] = field(default_factory=list)  # (name, type, data), stored order
    class_name: str | None = None
    compressed: bool | None = None  # KEY_COMP_NAME, where the reader shows it

    def value(self, name: str) -> tuple[object, object]:
        """(type, data) of the first value called ``name``."""
        for got, kind, data in self.values:
            if got == name:
                return kind, data
        raise KeyError(name)


def same_values(got: list[tuple[str, object, object]], expected: list[tuple[str, object, object]]) -> bool:
    """Equal lists of values, where data ``...`` in ``expected`` matches anything."""
    if len(got) != len(expected):
        return False
    return all(
        g[:2] == e[:2] and (e[2] is ... or g[2] == e[2]) for g, e in zip(got, expected)
    )


# ---------------------------------------------------------------------------------------
# regipy


def regipy_key_name(nk: NKRecord) -> str:
    """The key's name from regipy's parse of the nk cell: regipy itself decodes compressed
    names as ASCII, so the Latin-1 bytes are decoded here."""
    raw = nk.header.key_name_string
    return raw.decode("latin-1") if nk.header.flags.KEY_COMP_NAME else raw.decode("utf-16-le")


def regipy_dump(path: str | Path) -> dict[str, KeyDump]:
    hive = RegistryHive(str(path))
    out: dict[str, KeyDump] = {}

    def walk(nk: NKRecord, where: str) -> None:
        name = regipy_key_name(nk)
        children = list(nk.iter_subkeys() or ())
        dump = KeyDump(name, compressed=bool(nk.header.flags.KEY_COMP_NAME))
        if nk.header.class_name_size:
            dump.class_name = nk.get_class_name()
        for value in nk.iter_values(trim_values=False) or ():
            dump.values.append((value.name, value.value_type, value.value))
        out[where] = dump
        for child in children:
            child_name = regipy_key_name(child)
            dump.subkeys.append(child_name)
            walk(child, f"{where}\\{child_name}")

    walk(hive.root, "")
    return out


def regipy_type(number: int) -> str:
    """A value type as regipy names it."""
    return REGIPY_TYPE_NAMES.get(number, str(number))


def regipy_value_name(name: str) -> str:
    if name == "":
        return "(default)"
    if all(ord(c) < 0x100 for c in name):  # stored compressed; regipy decodes it as ASCII
        return name.encode("latin-1").decode("ascii", "replace")
    return name


def as_regipy(value: Value) -> tuple[str, object, object]:
    """(name, type, data) as regipy reports ``value``; data is ``...`` where regipy cannot
    read it (data of four bytes or fewer in an unusual type)."""
    raw = value.raw
    kind = regipy_type(value.type)
    if value.type in (1, 2):
        data: object = raw.decode("utf-16-le").rstrip("\0")
    elif value.type in (0, 3):
        data = raw
    elif value.type in (4, 11):
        data = int.from_bytes(raw, "little")
    elif value.type == 7:
        data = [s for s in raw.decode("utf-16-le").split("\0") if s]
    else:
        data = ...
    return regipy_value_name(value.name), kind, data


# ---------------------------------------------------------------------------------------
# hivex


def require_hivex() -> None:
    for tool in ("hivexml", "hivexget"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (Debian libhivex-bin) is not installed")


_LINE = re.compile(r'^("(?:[^"\\]|\\.)*"|@)=(.*)$')


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def hivex_values(path: str | Path, key: str) -> list[tuple[str, int, object]]:
    """The values of one key as ``hivexget`` prints them: (name, type, data), data the
    text for REG_SZ / REG_EXPAND_SZ, the number for REG_DWORD, bytes otherwise."""
    result = subprocess.run(
        ["hivexget", str(path), key or "\\"], capture_output=True, check=True, text=True, encoding="utf-8"
    )
    values: list[tuple[str, int, object]] = []
    for line in result.stdout.splitlines():
        match = _LINE.match(line)
        assert match, f"hivexget printed {line!r}"
        raw_name, rest = match.groups()
        name = "" if raw_name in ("@", '"@"') else _unescape(raw_name[1:-1])
        if rest.startswith('"'):
            values.append((name, 1, _unescape(rest[1:-1])))
        elif m := re.fullmatch(r'str\((\d+)\):"(.*)"', rest):
            values.append((name, int(m.group(1)), _unescape(m.group(2))))
        elif m := re.fullmatch(r"dword:([0-9a-f]{8})", rest):
            values.append((name, 4, int(m.group(1), 16)))
        elif m := re.fullmatch(r"hex\((\d+)\):([0-9a-f,]*)", rest):
            data = bytes(int(b, 16) for b in m.group(2).split(",") if b)
            values.append((name, int(m.group(1)), data))
        else:
            raise AssertionError(f"hivexget printed {line!r}")
    return values


def as_hivex(value: Value) -> tuple[str, int, object]:
    """(name, type, data) as :func:`hivex_values` reports ``value``."""
    raw = value.raw
    if value.type in (1, 2):
        return value.name, value.type, raw.decode("utf-16-le").split("\0")[0]
    if value.type == 4 and len(raw) == 4:
        return value.name, 4, int.from_bytes(raw, "little")
    return value.name, value.type, raw


def hivex_dump(path: str | Path, *, values: bool = True) -> dict[str, KeyDump]:
    """Every key ``hivexml`` lists, and (with ``values``) every value through ``hivexget``."""
    xml = subprocess.run(["hivexml", str(path)], capture_output=True, check=True).stdout
    root = ET.fromstring(xml).find("node")
    assert root is not None and root.get("root") == "1"
    out: dict[str, KeyDump] = {}

    def walk(node: ET.Element, where: str) -> None:
        dump = KeyDump(node.get("name", ""))
        out[where] = dump
        if values and node.find("value") is not None:
            dump.values = hivex_values(path, where)
        for child in node.findall("node"):
            dump.subkeys.append(child.get("name", ""))
            walk(child, f"{where}\\{child.get('name')}")

    walk(root, "")
    return out
