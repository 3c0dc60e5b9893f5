"""aclscan.hives.registry where mutation testing (``python -m tests.mutation registry``)
found it unwatched: every key and value read back as hivex (python3-hivex, a reader no one
here wrote) reads them, the registry data types as the specification defines them, and
each damaged field the regf format specification (Maxim Suhanov) names giving its own
problem or error."""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import pytest

from aclscan.errors import HiveError, WrongHive
from aclscan.hives.registry import (
    REG_BINARY,
    REG_DWORD,
    REG_DWORD_BIG_ENDIAN,
    REG_EXPAND_SZ,
    REG_LINK,
    REG_MULTI_SZ,
    REG_NONE,
    REG_QWORD,
    REG_SZ,
    RegValue,
    open_hive,
    printable,
)
from aclscan.samples.regf import Key, Value, hive_bytes
from tests.hives.hivex_oracle import run_hivex
from tests.hives.txlogs import checksum, hvle_entry, hvle_log, make_dirty, with_base_block

# Dumps every key of a hive as python3-hivex reads it: path, name, timestamp, values
# (name, type, data in hex), subkey names in hivex's order.
HIVEX_DUMP = r"""
import hivex, json, sys
h = hivex.Hivex(sys.argv[1])
out = {}
def walk(node, path):
    out[path] = {
        "timestamp": h.node_timestamp(node),
        "values": [(h.value_key(v), h.value_value(v)[0], h.value_value(v)[1].hex()) for v in h.node_values(node)],
        "subkeys": [h.node_name(c) for c in h.node_children(node)],
    }
    for c in h.node_children(node):
        name = h.node_name(c)
        walk(c, path + "\\" + name if path else name)
walk(h.root(), "")
print(json.dumps(out))
"""


def hivex_keys(path: Path) -> dict[str, dict]:
    """{key path: {"timestamp", "values", "subkeys"}} as python3-hivex reads the hive."""
    return run_hivex(HIVEX_DUMP, path)


def patch(data: bytes, position: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, position, *values)
    return bytes(out)


def cell_size_at(data: bytes, offset: int) -> int:
    """The payload size of the cell at hive offset ``offset`` (its size field, negated
    where allocated, less the 4 bytes of the field), read as the specification says."""
    size = struct.unpack_from("<i", data, 0x1000 + offset)[0]
    return abs(size) - 4


# --- every key and value as hivex reads them ------------------------------------------------


def mixed_tree() -> Key:
    values = [
        Value("", REG_SZ, "default"),
        Value("Expand", REG_EXPAND_SZ, "%SystemRoot%\\x"),
        Value("Link", REG_LINK, "\\Registry\\Machine\\X"),
        Value("Multi", REG_MULTI_SZ, "one\0\0two\0\0".encode("utf-16-le")),
        Value("Dword", REG_DWORD, 0x01020304),
        Value("Big endian", REG_DWORD_BIG_ENDIAN, 0x01020304),
        Value("Qword", REG_QWORD, 0x0102030405060708),
        Value("None", REG_NONE, b""),
        Value("One byte", REG_BINARY, b"\x7f"),
        Value("Three bytes", REG_BINARY, b"\x01\x02\x03"),
        Value("Four bytes", REG_BINARY, b"\x01\x02\x03\x04"),
        Value("Five bytes", REG_BINARY, b"\x01\x02\x03\x04\x05"),
        Value("Big", REG_BINARY, bytes(range(256)) * 200),  # 51,200 bytes: db cell, four segments
        Value("Exactly one segment", REG_BINARY, bytes([7]) * 16344),
        Value("One past a segment", REG_BINARY, bytes([9]) * 16345),
        Value("Ωmega wide name", REG_SZ, "wide"),
        Value("Odd type", 0x12345678, b"odd"),
    ]
    return Key("ROOT", values, [
        Key("Straße", [Value("x", REG_DWORD, 1)]),
        Key("Ωmega", subkeys=[Key("Inner", [Value("y", REG_QWORD, 2)], last_written=0x01D0_0000_0000_0001)]),
        Key("Crème"),
    ])


@pytest.mark.parametrize("minor", [3, 5])
def test_every_key_and_value_as_hivex_reads_them(tmp_path, minor):
    path = tmp_path / "SOFTWARE"
    path.write_bytes(hive_bytes(mixed_tree(), name="SOFTWARE", minor_version=minor))
    expected = hivex_keys(path)
    hive = open_hive(path.read_bytes())
    assert expected and hive.status.problems == ()
    seen = {}
    stack = [hive.root]
    while stack:
        key = stack.pop()
        seen[key.path] = {
            "timestamp": key.last_written,
            "values": [(v.name, v.type, v.raw.hex()) for v in key.values()],
            "subkeys": [k.name for k in key.subkeys()],
        }
        stack += key.subkeys()
    assert seen == {k: {**v, "values": [tuple(x) for x in v["values"]]} for k, v in expected.items()}
    assert [p for p, _ in hive.key_security()] == ["", "Crème", "Straße", "Ωmega", "Ωmega\\Inner"]


def test_names_compared_as_windows_compares(tmp_path):
    hive = open_hive(hive_bytes(mixed_tree(), name="SOFTWARE"))
    # one UTF-16 unit upper-cased at a time: ß has no one-unit upper case and stays ß
    assert hive.key("STRAßE").name == "Straße" and hive.key("STRASSE") is None
    assert hive.key("ωMEGA\\inner").path == "Ωmega\\Inner"
    assert hive.key("\\Ωmega\\\\Inner\\").path == "Ωmega\\Inner"  # separators at the ends and doubled
    assert hive.key("").path == "" and hive.root.find("\\") is hive.root
    assert hive.root.value("ΩMEGA WIDE NAME").text == "wide"
    assert hive.root.value("").text == "default" and hive.root.value("DWORD").number == 0x01020304
    assert repr(hive.root) == "RegKey('(root)')" and repr(hive.key("ωmega\\inner")) == "RegKey('Ωmega\\\\Inner')"


# --- registry data types (the specification's table of value types) ---------------------------


def utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def test_text_of_string_types():
    assert RegValue("a", REG_SZ, utf16("abc\0junk")).text == "abc"
    assert RegValue("a", REG_EXPAND_SZ, utf16("%x%\0")).text == "%x%"
    assert RegValue("a", REG_LINK, utf16("a\0b")).text == "a\0b"  # a link's target is kept whole
    assert RegValue("a", REG_SZ, utf16("ab") + b"c").text == "ab"  # an odd last byte is no character
    assert RegValue("a", REG_SZ, b"").text == ""
    for kind in (REG_NONE, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD):
        assert RegValue("a", kind, utf16("abc")).text is None


def test_numbers_of_number_types():
    raw = bytes([1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert RegValue("a", REG_DWORD, raw).number == 0x04030201
    assert RegValue("a", REG_DWORD_BIG_ENDIAN, raw).number == 0x01020304
    assert RegValue("a", REG_QWORD, raw).number == 0x0807060504030201
    assert RegValue("a", REG_DWORD, raw[:4]).number == 0x04030201
    assert RegValue("a", REG_DWORD_BIG_ENDIAN, raw[:4]).number == 0x01020304
    assert RegValue("a", REG_QWORD, raw[:8]).number == 0x0807060504030201
    assert RegValue("a", REG_DWORD, raw[:3]).number is None
    assert RegValue("a", REG_DWORD_BIG_ENDIAN, raw[:3]).number is None
    assert RegValue("a", REG_QWORD, raw[:7]).number is None
    for kind in (REG_NONE, REG_SZ, REG_BINARY, REG_MULTI_SZ, REG_LINK):
        assert RegValue("a", kind, raw).number is None


def test_strings_of_multi_string():
    assert RegValue("a", REG_MULTI_SZ, utf16("one\0\0two\0\0")).strings == ["one", "two"]
    assert RegValue("a", REG_MULTI_SZ, utf16("one\0two") + b"x").strings == ["one", "two"]
    assert RegValue("a", REG_MULTI_SZ, b"").strings == []
    for kind in (REG_SZ, REG_EXPAND_SZ, REG_BINARY):
        assert RegValue("a", kind, utf16("one\0two\0")).strings is None


def test_printable_escapes_control_characters_and_cuts():
    assert printable("a\nb\tc\x7fd\x9fe\xa0f\u2028g\u2029h\x1f") == \
        "a\\x0ab\\x09c\\x7fd\\x9fe\xa0f\\u2028g\\u2029h\\x1f"
    assert printable(" ~") == " ~"
    assert printable("x" * 300) == "x" * 300
    assert printable("x" * 301) == "x" * 297 + "..."
    assert printable("abcdef", 5) == "ab..." and printable("abcde", 5) == "abcde"


# --- sources and logs ------------------------------------------------------------------------


def small_hive(name: str = "SYSTEM", **kwargs) -> bytes:
    return hive_bytes(Key("ROOT", subkeys=[Key("Select", [Value("Current", REG_DWORD, 1)])]), name=name, **kwargs)


def test_sources_of_every_kind():
    data = small_hive()
    assert open_hive(memoryview(data)).kind == "SYSTEM"
    assert open_hive(io.BytesIO(data), label="given").status.label == "given"
    assert open_hive(data).status.label == "hive"

    class TextReader:
        def read(self):
            return "regf"

    with pytest.raises(HiveError, match=r"^a hive must be opened in binary mode, not as text$"):
        open_hive(TextReader())
    with pytest.raises(HiveError, match=r"^cannot read a hive from int$"):
        open_hive(42)


def test_logs_given_every_way():
    old = small_hive()
    new = hive_bytes(Key("ROOT", subkeys=[Key("Select", [Value("Current", REG_DWORD, 2)])]), name="SYSTEM")
    log = hvle_log(hvle_entry(old, new, 4))
    dirty = make_dirty(old)

    def current(hive) -> int:
        return hive.key("Select").value("Current").number

    assert current(open_hive(dirty)) == 1
    by_name = open_hive(dirty, logs={"SYSTEM.LOG1": log})
    assert current(by_name) == 2 and by_name.status.logs_applied == ("SYSTEM.LOG1",)
    assert by_name.status.dirty and by_name.status.recovered_pages >= 1
    pair = open_hive(dirty, logs=[("named.LOG2", log)])
    assert current(pair) == 2 and pair.status.logs_applied == ("named.LOG2",)
    second = open_hive(dirty, logs=[b"not a log" * 100, io.BytesIO(log)])
    assert current(second) == 2 and second.status.logs_applied == ("transaction log 2",)
    assert any(p.startswith("transaction log 1: ") for p in second.status.problems)
    assert not any("checksum" in p for p in second.status.problems)
    with pytest.raises(HiveError, match=r"^cannot read a transaction log from int$"):
        open_hive(dirty, logs=[3])


def test_expect_and_file_name():
    name = "\\REGISTRY\\MACHINE\\SYSTEM"
    data = small_hive(name=name)
    hive = open_hive(data, expect="SYSTEM")
    # FileName: 64 bytes of UTF-16LE at 0x30, NUL-padded (the specification)
    assert hive.status.file_name == data[0x30:0x70].decode("utf-16-le").rstrip("\0") == name
    assert hive.status.kind == "SYSTEM" and not hive.status.dirty
    with pytest.raises(WrongHive, match=r"^hive: expected a SAM hive, but this is a SYSTEM hive$"):
        open_hive(data, expect="SAM")


def test_what_each_kind_of_hive_is_told_apart_by():
    def kind(*subkeys: Key) -> str | None:
        return open_hive(hive_bytes(Key("ROOT", subkeys=list(subkeys)), name="X")).kind

    assert kind(Key("Policy"), Key("Select")) == "SECURITY"
    assert kind(Key("SAM", subkeys=[Key("Domains")])) == "SAM"
    assert kind(Key("SAM")) is None  # no SAM\Domains: not a SAM
    assert kind(Key("Select")) == "SYSTEM"
    assert kind(Key("Microsoft")) == "SOFTWARE"
    assert kind() is None


def test_a_hive_of_no_known_kind_names_its_first_six_root_keys():
    names = [f"K{i}" for i in range(7)] + ["L" + "x" * 60]
    data = hive_bytes(Key("ROOT", subkeys=[Key(n) for n in names]), name="X")
    with pytest.raises(WrongHive) as caught:
        open_hive(data).require()
    assert str(caught.value) == ("hive: expected a SAM or SECURITY or SYSTEM or SOFTWARE hive, but this is not a "
                                 "machine hive aclscan knows (root keys: K0, K1, K2, K3, K4, K5)")
    long_first = hive_bytes(Key("ROOT", subkeys=[Key("A" + "x" * 60)]), name="X")
    with pytest.raises(WrongHive, match=r"\(root keys: A" + "x" * 36 + r"\.\.\.\)$"):
        open_hive(long_first).require("SAM")
    with pytest.raises(WrongHive, match=r"^hive: expected a SAM hive, but this is not a machine hive aclscan "
                                        r"knows \(root keys: none\)$"):
        open_hive(hive_bytes(Key("ROOT"), name="X")).require("SAM")
    assert open_hive(small_hive()).require("SAM", "SYSTEM").kind == "SYSTEM"


# --- the base block ---------------------------------------------------------------------------


def with_fields(data: bytes, fmt: str, position: int, *values) -> bytes:
    """``data`` with a base block field changed and the checksum made right again."""
    changed = patch(data, position, fmt, *values)
    return patch(changed, 0x1FC, "<I", checksum(changed[:0x200]))


def test_base_block_checks():
    data = small_hive()
    assert open_hive(data).status.problems == ()
    with pytest.raises(HiveError, match=r"^x: not a registry hive \(starts with nothing, not 'regf'\)$"):
        open_hive(b"", label="x")
    with pytest.raises(HiveError, match=r"^x: not a registry hive \(starts with 72656700, not 'regf'\)$"):
        open_hive(b"reg\0" + data[4:], label="x")
    with pytest.raises(HiveError, match=r"^x: not a registry hive \(starts with 7265, not 'regf'\)$"):
        open_hive(b"re", label="x")
    with pytest.raises(HiveError, match=r"^x: truncated registry hive \(4127 bytes, not even one hive bin\)$"):
        open_hive(data[:0x101F], label="x")
    with pytest.raises(HiveError, match=r"^x: a registry transaction log file, not a primary hive$"):
        open_hive(with_fields(data, "<I", 0x1C, 1), label="x")
    with pytest.raises(HiveError, match=r"^x: a registry transaction log file, not a primary hive$"):
        open_hive(with_fields(data, "<I", 0x1C, 2), label="x")
    with pytest.raises(HiveError, match=r"^x: a registry file type 9 file, not a primary hive$"):
        open_hive(with_fields(data, "<I", 0x1C, 9), label="x")
    with pytest.raises(HiveError, match=r"^x: registry format 1\.7 is not one aclscan reads \(1\.x\)$"):
        open_hive(with_fields(data, "<I", 0x18, 7), label="x")
    with pytest.raises(HiveError, match=r"^x: registry format 0\.5 is not one aclscan reads \(1\.x\)$"):
        open_hive(with_fields(data, "<I", 0x14, 0), label="x")
    assert open_hive(with_fields(data, "<I", 0x18, 6)).status.problems == ()  # 1.6 is read


def test_a_wrong_checksum_makes_the_hive_dirty():
    data = small_hive()
    bad = patch(data, 0x1FC, "<I", checksum(data[:0x200]) ^ 1)
    hive = open_hive(bad)
    assert hive.status.dirty
    assert hive.status.problems == ("the base block's checksum is wrong",
                                    "dirty hive read without its transaction logs: recent changes may be missing")
    dirty = open_hive(make_dirty(data))  # sequence numbers differ, checksum right
    assert dirty.status.dirty
    assert dirty.status.problems == ("dirty hive read without its transaction logs: recent changes may be missing",)
    same = with_base_block(data, primary=9, secondary=9)
    assert not open_hive(same).status.dirty


def test_hive_bins_size_checks():
    data = small_hive()
    held = len(data) - 0x1000
    with pytest.raises(HiveError, match=rf"^x: truncated registry hive \(the base block announces {held + 0x1000} "
                                        rf"bytes of hive bins, the file holds {held}\)$"):
        open_hive(with_fields(data, "<I", 0x28, held + 0x1000), label="x")
    assert open_hive(with_fields(data, "<I", 0x28, held)).kind == "SYSTEM"
    # the root key's nk cell and its name must lie inside the hive bins
    last = held - 4 - 80
    with pytest.raises(HiveError, match=rf"root key offset {last + 8:#x} is outside the hive bins"):
        open_hive(with_fields(data, "<I", 0x24, last + 8), label="x")
    with pytest.raises(HiveError, match=r"^x: corrupt registry hive \(root key: "):
        open_hive(with_fields(data, "<I", 0x24, last), label="x")  # inside, but no nk cell there
    # cells beyond HiveBinsDataSize are not read, even where the file goes on
    with pytest.raises(HiveError, match=r"root key offset"):
        open_hive(with_fields(data, "<I", 0x28, 0x20), label="x")


# --- hive bins and cells ------------------------------------------------------------------------


def test_bad_hive_bin_headers():
    data = small_hive()
    assert data[0x1000:0x1004] == b"hbin"
    for field, fmt, value in ((4, "<I", 0x1000), (8, "<I", 0x800), (8, "<I", 0x1800)):
        hive = open_hive(patch(data, 0x1000 + field, fmt, value))
        assert hive.status.problems == ("hive bin at 0x0: bad header; the hive bins after it are read only where "
                                        "keys point",), (field, value)
        assert hive.kind == "SYSTEM"


def test_a_first_cell_of_a_bad_size():
    data = small_hive()
    first = struct.unpack_from("<i", data, 0x1020)[0]
    assert data[0x1024:0x1026] == b"nk" and first % 8 == 0 and first < 0  # the root key, allocated
    # sizes the root's nk cell still fits in, but that no cell may have: not a multiple of 8
    for size in (first - 4, -first + 4):
        hive = open_hive(patch(data, 0x1020, "<i", size))
        assert hive.status.problems == (f"hive bin at 0x0: its first cell is unreadable (size {size})",), size
    bin_size = struct.unpack_from("<I", data, 0x1008)[0]
    for size in (-first, -(bin_size - 0x20)):  # free, and as big as the bin allows: both fit
        assert open_hive(patch(data, 0x1020, "<i", size)).status.problems == (), size


def test_a_value_list_shorter_than_its_count():
    data = hive_bytes(Key("ROOT", [Value(f"v{i}", REG_DWORD, i) for i in range(3)]), name="X")
    hive = open_hive(data)
    root = hive.root.offset
    value_list = struct.unpack_from("<I", data, 0x1000 + root + 4 + 40)[0]
    size = cell_size_at(data, value_list)
    count = size // 4 + 1
    broken = patch(data, 0x1000 + root + 4 + 36, "<I", count)
    hive = open_hive(broken)
    read = hive.root.values()
    assert f"value list of (root): {count} values do not fit a {size}-byte cell" in hive.status.problems
    assert [v.name for v in read[:3]] == ["v0", "v1", "v2"]
    assert len(read) + sum("a value of (root)" in p for p in hive.status.problems) == size // 4


def vk_of(data: bytes, name: str) -> int:
    """The hive offset of the vk cell of the root's value ``name`` (found by its bytes)."""
    raw = name.encode("latin-1")
    position = data.index(b"vk" + struct.pack("<H", len(raw)), 0x1000)
    while data[position + 20 : position + 20 + len(raw)] != raw:
        position = data.index(b"vk" + struct.pack("<H", len(raw)), position + 1)
    return position - 4 - 0x1000


def value_problem(data: bytes, name: str) -> tuple[list[str], tuple[str, ...]]:
    hive = open_hive(data)
    return [v.name for v in hive.root.values()], hive.status.problems


def test_damaged_value_cells():
    values = [Value("a", REG_BINARY, b"\x01" * 40), Value("b", REG_DWORD, 5)]
    data = hive_bytes(Key("ROOT", values), name="X")
    a = vk_of(data, "a")
    names, problems = value_problem(patch(data, 0x1000 + a + 4, "2s", b"xx"), "a")
    assert names == ["b"] and problems == (f"a value of (root): no vk cell at {a:#x}",)
    names, problems = value_problem(patch(data, 0x1000 + a + 6, "<H", 200), "a")
    assert names == ["b"] and problems == (f"a value of (root): its name runs past its cell at {a:#x}",)
    names, problems = value_problem(patch(data, 0x1000 + a + 8, "<I", 4000), "a")
    size = cell_size_at(data, struct.unpack_from("<I", data, 0x1000 + a + 12)[0])
    assert names == ["b"] and problems == (f"value a of (root): 4000 bytes of data do not fit a {size}-byte cell",)
    names, problems = value_problem(patch(data, 0x1000 + a, "<i", -16), "a")
    assert names == ["b"] and problems == (f"a value of (root): the cell at {a:#x} is too small",)
    names, problems = value_problem(patch(data, 0x1000 + a + 12, "<I", 0xFFFFFFFF), "a")
    assert names == ["b"] and problems == ("value a of (root): cell offset 0xffffffff is outside the hive bins",)
    names, problems = value_problem(patch(data, 0x1000 + a + 12, "<I", 0x24), "a")  # not 8-byte aligned
    assert names == ["b"] and problems == ("value a of (root): cell offset 0x24 is outside the hive bins",)
    # the spec's size of an allocated cell is negative; a positive (free) one still holds its bytes
    data_cell = struct.unpack_from("<I", data, 0x1000 + a + 12)[0]
    freed = patch(data, 0x1000 + data_cell, "<i", -struct.unpack_from("<i", data, 0x1000 + data_cell)[0])
    hive = open_hive(freed)
    assert hive.root.value("a").raw == b"\x01" * 40 and hive.status.problems == ()
    names, problems = value_problem(patch(data, 0x1000 + data_cell, "<i", -4), "a")
    assert names == ["b"] and problems == (f"value a of (root): the cell at {data_cell:#x} has a bad size 4",)


def test_inline_data_and_zero_length():
    data = hive_bytes(Key("ROOT", [Value("a", REG_DWORD, 0x11223344)]), name="X")
    a = vk_of(data, "a")
    # DataSize with bit 31: the data is the DataOffset field itself, its first (size) bytes
    for size, expected in ((0, b""), (1, b"\x44"), (3, b"\x44\x33\x22"), (4, b"\x44\x33\x22\x11"),
                           (9, b"\x44\x33\x22\x11")):
        hive = open_hive(patch(data, 0x1000 + a + 8, "<I", 0x80000000 | size))
        assert hive.root.value("a").raw == expected, size
    hive = open_hive(patch(data, 0x1000 + a + 8, "<I", 0))  # no data at all, wherever DataOffset points
    assert hive.root.value("a").raw == b"" and hive.status.problems == ()


def big_value_hive(minor: int = 5) -> tuple[bytes, int]:
    data = hive_bytes(Key("ROOT", [Value("big", REG_BINARY, bytes(range(256)) * 100)]), name="X",
                      minor_version=minor)
    return data, vk_of(data, "big")


def test_big_data_cells():
    data, vk = big_value_hive()
    db = struct.unpack_from("<I", data, 0x1000 + vk + 12)[0]
    assert data[0x1000 + db + 4 : 0x1000 + db + 6] == b"db"
    count, segments = struct.unpack_from("<HI", data, 0x1000 + db + 6)
    assert count == 2  # 25,600 bytes: 16,344 + 9,256
    # a db cell is read only for data above 16,344 bytes and in hives 1.4 and later
    small = open_hive(patch(data, 0x1000 + vk + 8, "<I", 16344))
    assert small.root.values() == [] and any("16344 bytes of data do not fit" in p for p in small.status.problems)
    old = open_hive(with_fields(data, "<I", 0x18, 3))
    assert old.root.values() == [] and any("25600 bytes of data do not fit" in p for p in old.status.problems)
    assert open_hive(with_fields(data, "<I", 0x18, 4)).root.value("big").raw == bytes(range(256)) * 100
    one_segment = open_hive(patch(data, 0x1000 + db + 6, "<H", 1))
    assert one_segment.root.values() == []
    assert one_segment.status.problems == ("value big of (root): its data segments hold 16344 of 25600 bytes",)
    second = struct.unpack_from("<2I", data, 0x1000 + segments + 4)[1]
    held = 16344 + min(cell_size_at(data, second), 16344)  # a segment holds 16,344 bytes at most
    longer = open_hive(patch(data, 0x1000 + vk + 8, "<I", held + 1))
    assert longer.root.values() == []
    assert longer.status.problems == (f"value big of (root): its data segments hold {held} of {held + 1} bytes",)
    shorter = open_hive(patch(data, 0x1000 + vk + 8, "<I", 16345))
    assert shorter.root.value("big").raw == (bytes(range(256)) * 100)[:16345]
    list_size = cell_size_at(data, segments)
    too_many = list_size // 4 + 1
    hive = open_hive(patch(data, 0x1000 + db + 6, "<H", too_many))
    assert hive.root.values() == []
    assert hive.status.problems == (f"value big of (root): {too_many} data segments do not fit their list",)
    assert list_size // 4 > 2  # room for a third offset the value does not need
    fits = open_hive(patch(data, 0x1000 + db + 6, "<H", list_size // 4))
    assert fits.root.value("big").raw == bytes(range(256)) * 100  # read up to its length, no further
    assert not any("do not fit their list" in p for p in fits.status.problems)
    tiny_db = open_hive(patch(data, 0x1000 + db, "<i", -8))
    assert tiny_db.root.values() == []
    assert tiny_db.status.problems == ("value big of (root): db cell too small",)
    # "db", count and list offset: 8 bytes are a whole db cell
    least = open_hive(patch(data, 0x1000 + db, "<i", -12))
    assert least.root.value("big").raw == bytes(range(256)) * 100 and least.status.problems == ()
    far_list = open_hive(patch(data, 0x1000 + db + 8, "<I", 0xFFFFFFF8))  # unsigned: past any hive
    assert far_list.root.values() == []
    assert far_list.status.problems == ("value big of (root): cell offset 0xfffffff8 is outside the hive bins",)
    first_segment = struct.unpack_from("<I", data, 0x1000 + segments + 4)[0]
    far_segment = open_hive(patch(data, 0x1000 + segments + 4, "<I", 0xFFFFFFF8))
    assert far_segment.root.values() == []
    assert far_segment.status.problems == ("value big of (root): cell offset 0xfffffff8 is outside the hive bins",)
    # a segment cell smaller than a segment: only what it holds is data
    short_segment = open_hive(patch(data, 0x1000 + first_segment, "<i", -0x108))
    assert short_segment.root.values() == []
    assert short_segment.status.problems == (
        f"value big of (root): its data segments hold {0x104 + min(cell_size_at(data, second), 16344)} of 25600 bytes",)


def test_big_data_in_a_1_3_hive_is_one_cell(tmp_path):
    data, _vk = big_value_hive(3)
    path = tmp_path / "X"
    path.write_bytes(data)
    (value,) = hivex_keys(path)[""]["values"]
    assert open_hive(data).root.value("big").raw.hex() == value[2]


# --- subkey lists -------------------------------------------------------------------------------


def subkey_list_of_root(data: bytes) -> int:
    root = struct.unpack_from("<I", data, 0x24)[0]
    return struct.unpack_from("<I", data, 0x1000 + root + 4 + 28)[0]


def as_li(data: bytes, list_offset: int) -> bytes:
    """The lf/lh list at ``list_offset`` rewritten in place as an li list (offsets only)."""
    start = 0x1000 + list_offset + 4
    count = struct.unpack_from("<H", data, start + 2)[0]
    offsets = struct.unpack_from(f"<{2 * count}I", data, start + 4)[::2]
    out = bytearray(data)
    out[start : start + 4] = b"li" + struct.pack("<H", count)
    struct.pack_into(f"<{count}I", out, start + 4, *offsets)
    return bytes(out)


def test_an_li_list_is_read(tmp_path):
    tree = Key("ROOT", subkeys=[Key("A", subkeys=[Key("Inner")]), Key("B"), Key("C")])
    data = hive_bytes(tree, name="X")
    li = as_li(data, subkey_list_of_root(data))
    path = tmp_path / "X"
    path.write_bytes(li)
    expected = hivex_keys(path)
    hive = open_hive(li)
    assert [k.name for k in hive.root.subkeys()] == expected[""]["subkeys"] == ["A", "B", "C"]
    assert [p for p, _ in hive.key_security()] == ["", "A", "A\\Inner", "B", "C"]
    assert hive.status.problems == ()
    list_offset = subkey_list_of_root(li)
    size = cell_size_at(li, list_offset)
    too_many = (size - 4) // 4 + 1
    broken = open_hive(patch(li, 0x1000 + list_offset + 4 + 2, "<H", too_many))
    assert broken.root.subkeys() == []
    assert broken.status.problems == (f"subkey list of (root): {too_many} entries do not fit a {size}-byte cell",)


def test_an_index_root_of_leaves(tmp_path):
    tree = Key("ROOT", subkeys=[Key("Big", subkeys=[Key(f"K{i:04d}") for i in range(1100)])])
    data = hive_bytes(tree, name="X")
    path = tmp_path / "X"
    path.write_bytes(data)
    expected = hivex_keys(path)
    hive = open_hive(data)
    big = hive.key("Big")
    ri = big._subkey_list
    assert data[0x1000 + ri + 4 : 0x1000 + ri + 6] == b"ri"
    assert [k.name for k in big.subkeys()] == expected["Big"]["subkeys"] and len(expected["Big"]["subkeys"]) == 1100
    assert len(list(hive.key_security())) == 1102 and hive.status.problems == ()
    # a leaf of the index root that is no list: the other leaf is still read
    first_leaf = struct.unpack_from("<I", data, 0x1000 + ri + 8)[0]
    first_count = struct.unpack_from("<H", data, 0x1000 + first_leaf + 6)[0]
    broken = open_hive(patch(data, 0x1000 + first_leaf + 4, "2s", b"zz"))
    assert len(broken.key("Big").subkeys()) == 1100 - first_count
    assert broken.status.problems == (f"subkey list of Big at {first_leaf:#x}: signature b'zz'",)


def test_subkey_list_damage():
    data = hive_bytes(Key("ROOT", subkeys=[Key("A"), Key("B")]), name="X")
    list_offset = subkey_list_of_root(data)
    hive = open_hive(patch(data, 0x1000 + list_offset + 4, "2s", b"qq"))
    assert hive.root.subkeys() == [] and [p for p, _ in hive.key_security()] == [""]
    assert hive.status.problems == (f"subkey list of (root) at {list_offset:#x}: signature b'qq'",)
    size = cell_size_at(data, list_offset)
    fits = (size - 4) // 8
    too_many = fits + 1
    hive = open_hive(patch(data, 0x1000 + list_offset + 6, "<H", too_many))
    assert hive.status.problems == (f"subkey list of (root): {too_many} entries do not fit a {size}-byte cell",)
    # a subkey count of 0 means no list is read, whatever the list offset says
    root = struct.unpack_from("<I", data, 0x24)[0]
    none = open_hive(patch(data, 0x1000 + root + 4 + 20, "<I", 0))
    assert none.root.subkeys() == [] and none.status.problems == ()
    assert [p for p, _ in none.key_security()] == [""]


def test_damaged_key_cells():
    data = hive_bytes(Key("ROOT", subkeys=[Key("A"), Key("B")]), name="X")
    hive = open_hive(data)
    a = hive.key("A").offset
    list_offset = subkey_list_of_root(data)
    misaligned = open_hive(patch(data, 0x1000 + list_offset + 8, "<I", a + 4))
    assert [k.name for k in misaligned.root.subkeys()] == ["B"]
    assert misaligned.status.problems == (f"a subkey of (root): key cell offset {a + 4:#x} is outside the hive bins",)
    walked = open_hive(patch(data, 0x1000 + list_offset + 8, "<I", a + 4))
    assert [p for p, _ in walked.key_security()] == ["", "B"]
    assert walked.status.problems == (f"a subkey of (root): key cell offset {a + 4:#x} is outside the hive bins",)
    not_nk = open_hive(patch(data, 0x1000 + a + 4, "2s", b"xx"))
    assert [k.name for k in not_nk.root.subkeys()] == ["B"]
    assert not_nk.status.problems == (f"a subkey of (root): no key (nk) cell at {a:#x}",)
    walked = open_hive(patch(data, 0x1000 + a + 4, "2s", b"xx"))  # opening reads the root's subkeys
    assert [p for p, _ in walked.key_security()] == ["", "B"]
    assert walked.status.problems == (f"a subkey of (root): no key (nk) cell at {a:#x}",
                                      f"a subkey of (root): no readable key (nk) cell at {a:#x}")
    # a name longer than the cell holds
    long_name = patch(data, 0x1000 + a + 4 + 72, "<H", 400)
    short = open_hive(long_name)
    assert [k.name for k in short.root.subkeys()] == ["B"]
    assert short.status.problems == (f"a subkey of (root): the key cell at {a:#x} is shorter than its name",)
    walked = open_hive(long_name)
    assert [p for p, _ in walked.key_security()] == ["", "B"]
    assert walked.status.problems == (f"a subkey of (root): the key cell at {a:#x} is shorter than its name",
                                      f"a subkey of (root): no readable key (nk) cell at {a:#x}")
    free = open_hive(patch(data, 0x1000 + a, "<i", -struct.unpack_from("<i", data, 0x1000 + a)[0]))
    assert [k.name for k in free.root.subkeys()] == ["A", "B"]  # a free cell still holds what it held


# --- the key security list ----------------------------------------------------------------------


def sk_hive() -> tuple[bytes, list[int]]:
    from aclscan.sd.sddl import from_sddl

    tree = Key("ROOT", subkeys=[Key(f"K{i}", security=from_sddl(f"O:BAG:SYD:(A;;KR;;;S-1-5-21-1-2-3-{1000 + i})")
                                    .to_bytes()) for i in range(3)])
    data = hive_bytes(tree, name="X")
    root = struct.unpack_from("<I", data, 0x24)[0]
    first = struct.unpack_from("<I", data, 0x1000 + root + 4 + 44)[0]
    order, offset = [first], struct.unpack_from("<I", data, 0x1000 + first + 8)[0]  # Flink
    while offset != first:
        order.append(offset)
        offset = struct.unpack_from("<I", data, 0x1000 + offset + 8)[0]
    return data, order


def test_a_broken_flink_is_walked_round_by_blink():
    data, order = sk_hive()
    assert len(order) == 4
    first, a, b, c = order
    broken = patch(data, 0x1000 + a + 8, "<I", 0xFFFFFFF8)  # A's Flink points nowhere
    hive = open_hive(broken)
    assert set(hive.security_cells()) == set(order)
    assert hive.status.problems == (
        f"key security list (linked from {a:#x}): key security: cell offset 0xfffffff8 is outside the hive bins",
        f"key security list: the cell at {a:#x} does not link back to {b:#x}")  # seen from Blink
    wrong_blink = patch(data, 0x1000 + b + 12, "<I", c)  # B's Blink names C, not A
    hive = open_hive(wrong_blink)
    assert set(hive.security_cells()) == set(order)
    # Flink closes the circle: Blink, wrong or not, is not walked as well
    assert hive.status.problems == (f"key security list: the cell at {b:#x} does not link back to {a:#x}",)
    not_sk = patch(data, 0x1000 + b + 4, "2s", b"zz")
    hive = open_hive(not_sk)
    assert set(hive.security_cells()) == {first, a, c}
    assert hive.status.problems == (f"key security list (linked from {a:#x}): no key security (sk) cell at {b:#x}",
                                    f"key security list (linked from {c:#x}): no key security (sk) cell at {b:#x}")
    small = patch(data, 0x1000 + b, "<i", -16)
    hive = open_hive(small)
    assert b not in hive.security_cells()
    assert f"key security list (linked from {a:#x}): key security at {b:#x}: the cell is too small" in \
        hive.status.problems
    with pytest.raises(HiveError, match=rf"^hive: key security at {b:#x}: the cell is too small$"):
        hive.security_descriptor(b)


def test_the_root_sk_cell_unreadable():
    data, order = sk_hive()
    first = order[0]
    hive = open_hive(patch(data, 0x1000 + first + 4, "2s", b"zz"))
    assert hive.security_cells() == {}
    assert hive.status.problems == (f"key security list: no key security (sk) cell at {first:#x}",)


def test_security_cells_as_regipy_would_see_them_are_each_descriptor_once():
    data, order = sk_hive()
    hive = open_hive(data)
    cells = hive.security_cells()
    assert list(cells) == order  # along Flink, from the root key's cell
    for offset in order:
        length = struct.unpack_from("<I", data, 0x1000 + offset + 20)[0]
        assert cells[offset] == data[0x1000 + offset + 24 : 0x1000 + offset + 24 + length]
        assert hive.security_descriptor(offset) == cells[offset]
    assert hive.security_cells() is cells  # computed once


def test_an_sk_descriptor_exactly_filling_its_cell():
    data, order = sk_hive()
    a = order[1]
    room = cell_size_at(data, a) - 20
    length = struct.unpack_from("<I", data, 0x1000 + a + 20)[0]
    assert room >= length
    exact = patch(data, 0x1000 + a + 20, "<I", room)
    assert len(open_hive(exact).security_descriptor(a)) == room
    with pytest.raises(HiveError, match=rf"a {room + 1}-byte descriptor does not fit its cell"):
        open_hive(patch(data, 0x1000 + a + 20, "<I", room + 1)).security_descriptor(a)


def test_problems_said_once():
    data = hive_bytes(Key("ROOT", subkeys=[Key("A"), Key("B")]), name="X")
    list_offset = subkey_list_of_root(data)
    hive = open_hive(patch(data, 0x1000 + list_offset + 4, "2s", b"qq"))
    list(hive.key_security())
    list(hive.key_security())
    hive.root.subkeys()
    assert len(hive.status.problems) == 1


@pytest.mark.skipif(shutil.which("hivexsh") is None, reason="hivexsh (Debian libhivex-bin) is not installed")
def test_key_timestamps_as_hivexsh_lists_them(tmp_path):
    path = tmp_path / "X"
    path.write_bytes(hive_bytes(mixed_tree(), name="X"))
    expected = hivex_keys(path)
    hive = open_hive(path.read_bytes())
    assert hive.key("Ωmega\\Inner").last_written == expected["Ωmega\\Inner"]["timestamp"] == 0x01D0_0000_0000_0001
    assert hive.root.last_written == expected[""]["timestamp"]


def test_the_smallest_sk_cell():
    """An sk cell holds Flink, Blink, ReferenceCount and the descriptor size (20 bytes
    after its size field) before any descriptor."""
    data, order = sk_hive()
    a = order[1]
    empty = patch(patch(data, 0x1000 + a, "<i", -24), 0x1000 + a + 20, "<I", 0)  # 20 bytes, no descriptor
    assert open_hive(empty).security_descriptor(a) == b""
    short = patch(data, 0x1000 + a, "<i", -23)
    with pytest.raises(HiveError, match=rf"^hive: key security at {a:#x}: the cell is too small$"):
        open_hive(short).security_descriptor(a)


def test_a_descriptor_that_does_not_parse_says_why():
    from aclscan.errors import Error
    from aclscan.sd.descriptor import SecurityDescriptor

    data, order = sk_hive()
    a = order[1]
    broken = patch(data, 0x1000 + a + 24, "<B", 9)  # revision 9: no descriptor
    length = struct.unpack_from("<I", broken, 0x1000 + a + 20)[0]
    with pytest.raises(Error) as parsed:
        SecurityDescriptor.from_bytes(broken[0x1000 + a + 24 : 0x1000 + a + 24 + length])
    reason = " ".join(str(parsed.value).split())
    assert reason
    hive = open_hive(broken)
    assert a not in hive.security_cells()
    assert hive.status.problems == (f"key security at {a:#x}: the descriptor does not parse: {reason}",)


def test_a_subkey_offset_in_the_last_bytes_of_the_hive_bins():
    data = hive_bytes(Key("ROOT", subkeys=[Key("A"), Key("B")]), name="X")
    end = 0x1000 + struct.unpack_from("<I", data, 0x28)[0]
    list_offset = subkey_list_of_root(data)
    near_end = end - 0x1000 - 8  # aligned, but no key cell fits there
    broken = open_hive(patch(data, 0x1000 + list_offset + 8, "<I", near_end))
    assert [p for p, _ in broken.key_security()] == ["", "B"]
    assert f"a subkey of (root): key cell offset {near_end:#x} is outside the hive bins" in broken.status.problems
