"""aclscan.samples.regf: hives read back by regipy and by hivex, byte-exact where it matters."""

from __future__ import annotations

import io
import struct
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from regipy.registry import RegistryHive
from regipy.structs import REGF_HEADER

from aclscan.errors import Error, MalformedData
from aclscan.samples import regf
from aclscan.samples.regf import (
    REG_BINARY,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_MULTI_SZ,
    REG_NONE,
    REG_QWORD,
    REG_SZ,
    InvalidHive,
    Key,
    Value,
    hive_bytes,
    name_hash,
    write_hive,
)
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl, to_sddl
from tests.samples.readers import as_hivex, as_regipy, hivex_dump, regipy_dump, require_hivex, same_values
from tests.shared_data import expand

BIG = bytes(range(251)) * 161  # 40411 bytes: three db segments
LONG_TEXT = "Ab" * 9000  # 36002 bytes of UTF-16 with its terminator


def sample_tree() -> Key:
    """Every kind of value and name the writer supports, in one tree."""
    many = Key("Many", subkeys=[Key(f"k{i:05d}") for i in range(1100)])  # > 1012: an index root
    return Key(
        "ROOT",
        subkeys=[
            Key(
                "Types",
                [
                    Value("", REG_SZ, "default text"),
                    Value("sz", REG_SZ, "text"),
                    Value("short sz", REG_SZ, "a"),  # 4 bytes: stored in the vk
                    Value("expand", REG_EXPAND_SZ, r"%SystemRoot%\System32"),
                    Value("binary", REG_BINARY, b"\x00\x01\x02\x03\x04\x05"),
                    Value("tiny binary", REG_BINARY, b"\xfe\xff\x01"),
                    Value("empty binary", REG_BINARY, b""),
                    Value("dword", REG_DWORD, 0xDEADBEEF),
                    Value("qword", REG_QWORD, 0x0123456789ABCDEF),
                    Value("multi", REG_MULTI_SZ, ["one", "two", "three"]),
                    Value("none", REG_NONE, b"\x10\x00\x00\x00"),
                    Value("rid type", 0x3E8),  # SAM's Names\<user>: the type is the RID
                    Value("odd type", 0x7FFF0001, "wide text".encode("utf-16-le")),
                ],
            ),
            Key(
                "Big",
                [
                    Value("binary", REG_BINARY, BIG),
                    Value("text", REG_SZ, LONG_TEXT),
                    Value("multi", REG_MULTI_SZ, ["x" * 9000, "y" * 9000]),
                    Value("exactly one cell", REG_BINARY, b"\x5a" * regf.BIG_DATA_SEGMENT),
                ],
            ),
            Key(
                "Names",
                [Value("café", REG_SZ, "Latin-1 value name"), Value("Ωμέγα", REG_DWORD, 7)],
                [
                    Key("Operadores criptográficos"),  # Latin-1: stored compressed
                    Key("Ωμέγα"),  # Greek: stored as UTF-16
                    Key("日本語"),
                    Key("zeta"),
                    Key("Alpha"),
                    Key("beta"),
                    Key("ÿ"),
                ],
            ),
            Key("Lsa", subkeys=[Key("JD", class_name="c8e1cbd9"), Key("Skew1", class_name="ΩΩ")]),
            many,
        ],
    )


def from_sddl_bytes(raw: bytes) -> SecurityDescriptor:
    return SecurityDescriptor.from_bytes(raw)


def writes(tmp_path, tree: Key, name: str = "hive", **kwargs):
    path = tmp_path / name
    write_hive(tree, path, **kwargs)
    return path


@pytest.fixture(scope="module")
def sample_hive(tmp_path_factory):
    return writes(tmp_path_factory.mktemp("regf"), sample_tree())


def tree_paths(tree: Key) -> dict[str, Key]:
    return {path: key for path, key in tree.walk("")}


# ---------------------------------------------------------------------------------------
# The base block and the bins


def test_base_block_fields(sample_hive):
    data = sample_hive.read_bytes()
    header = REGF_HEADER.parse(data[:4096])  # regipy's declaration of the base block
    assert header.primary_sequence_num == header.secondary_sequence_num == 1  # a clean hive
    assert (header.major_version, header.minor_version) == (1, 5)
    assert header.file_type == 0 and header.file_format == 1 and header.clustering_factor == 1
    assert header.root_key_offset == 0x20  # the first cell of the first bin
    assert header.hive_bins_data_size == len(data) - 4096
    assert header.last_modification_time == regf.filetime(regf.DEFAULT_TIMESTAMP)
    # FileName: Windows keeps the last 31 characters of the path.
    assert header.file_name.rstrip("\0") == r"\SystemRoot\System32\Config\SAM"[-31:]
    xor = 0
    for (dword,) in struct.iter_unpack("<I", data[:508]):
        xor ^= dword
    assert struct.unpack_from("<I", data, 508)[0] == xor not in (0, 0xFFFFFFFF)
    assert data[0xA4:0xA8] == b"rmtm" and data[0xB0:0xB4] == b"OfRg"


def test_bins_are_tiled_by_cells(sample_hive):
    """Every hive bin starts where the previous ends and is exactly covered by its cells:
    allocated ones (negative size) and one free tail (positive size)."""
    data = sample_hive.read_bytes()
    pos, cells, allocated = 4096, 0, 0
    while pos < len(data):
        assert data[pos : pos + 4] == b"hbin"
        offset, size = struct.unpack_from("<II", data, pos + 4)
        assert offset == pos - 4096 and size % 4096 == 0
        cell = pos + 32
        while cell < pos + size:
            (raw,) = struct.unpack_from("<i", data, cell)
            assert raw != 0 and abs(raw) % 8 == 0, f"cell at {cell:#x}"
            allocated += raw < 0
            cells += 1
            cell += abs(raw)
        assert cell == pos + size
        pos += size
    assert pos == len(data) and allocated > 1100


def test_minor_version_1_3_writes_fast_leaves_and_no_big_data(tmp_path):
    tree = Key("ROOT", [Value("big", REG_BINARY, BIG)], [Key("Zulu"), Key("alpha"), Key("Ωx")])
    path = writes(tmp_path, tree, minor_version=3)
    data = path.read_bytes()
    assert struct.unpack_from("<I", data, 0x18)[0] == 3
    assert b"lf" in data and b"lh\x03\x00" not in data and b"db" not in data[4096:]
    dump = regipy_dump(path)
    assert dump[""].value("big") == ("REG_BINARY", BIG)
    assert dump[""].subkeys == ["alpha", "Zulu", "Ωx"]
    # lf name hints: the first four characters, zeros where a name is not one-byte text
    assert struct.pack("<4s", b"alph") in data and struct.pack("<4s", b"Zulu") in data


# ---------------------------------------------------------------------------------------
# Reading back


def test_regipy_reads_every_key_and_value(sample_hive):
    tree = sample_tree()
    dump = regipy_dump(sample_hive)
    expected = tree_paths(tree)
    assert set(dump) == set(expected)
    for path, key in expected.items():
        got = dump[path]
        assert got.name == key.name
        assert got.compressed == all(ord(c) < 0x100 for c in key.name), path
        assert got.class_name == key.class_name
        assert same_values(got.values, [as_regipy(v) for v in key.values]), path


def test_regipy_reads_the_odd_types(sample_hive):
    dump = regipy_dump(sample_hive)
    assert dump[r"\Types"].value("rid type")[0] == "1000"
    assert dump[r"\Types"].value("odd type") == (str(0x7FFF0001), "wide text")


def test_subkeys_come_sorted_as_windows_compares(sample_hive):
    dump = regipy_dump(sample_hive)
    assert dump[r"\Names"].subkeys == ["Alpha", "beta", "Operadores criptográficos", "zeta", "ÿ", "Ωμέγα", "日本語"]
    assert dump[r"\Many"].subkeys == [f"k{i:05d}" for i in range(1100)]
    assert dump[""].subkeys == ["Big", "Lsa", "Many", "Names", "Types"]


def test_hivex_reads_every_key_and_value(sample_hive):
    require_hivex()
    tree = sample_tree()
    dump = hivex_dump(sample_hive)
    expected = tree_paths(tree)
    assert set(dump) == set(expected)
    for path, key in expected.items():
        got = dump[path]
        assert got.name == key.name
        assert got.subkeys == [c.name for c in sorted(key.subkeys, key=lambda k: regf.sort_key(k.name))]
        assert got.values == [as_hivex(v) for v in key.values], path


def test_hivex_reads_a_1_3_hive(tmp_path):
    require_hivex()
    tree = Key("ROOT", [Value("big", REG_BINARY, BIG)], [Key("Zulu"), Key("alpha", [Value("", 501)])])
    dump = hivex_dump(writes(tmp_path, tree, minor_version=3))
    assert dump[""].values == [("big", 3, BIG)]
    assert dump[""].subkeys == ["alpha", "Zulu"]
    assert dump[r"\alpha"].values == [("", 501, b"")]


def test_shared_and_own_security_descriptors(tmp_path):
    own = from_sddl("O:SYG:SYD:(A;CI;KR;;;BU)(A;CI;KA;;;SY)").to_bytes()
    tree = Key("ROOT", subkeys=[Key("a", security=own), Key("b"), Key("c", security=own)])
    data = hive_bytes(tree)
    assert data.count(b"sk\x00\x00") == 2  # one cell per distinct descriptor
    hive = RegistryHive(writes(tmp_path, tree))
    owners = {k.name: k.get_security_key_info()["owner"] for k in hive.root.iter_subkeys()}
    assert owners == {"a": "S-1-5-18", "b": "S-1-5-32-544", "c": "S-1-5-18"}
    assert hive.root.get_security_key_info()["owner"] == "S-1-5-32-544"
    assert to_sddl(from_sddl_bytes(regf.DEFAULT_SECURITY)) == "O:BAG:SYD:(A;CI;KA;;;SY)(A;CI;RCWD;;;BA)"


# ---------------------------------------------------------------------------------------
# Determinism and output forms


def test_same_tree_same_bytes(tmp_path):
    first, second = hive_bytes(sample_tree()), hive_bytes(sample_tree())
    assert first == second
    later = hive_bytes(sample_tree(), timestamp=datetime(2024, 2, 3, tzinfo=timezone.utc))
    assert later != first and len(later) == len(first)
    buffer = io.BytesIO()
    assert write_hive(sample_tree(), buffer) == len(first)
    assert buffer.getvalue() == first
    assert writes(tmp_path, sample_tree()).read_bytes() == first


def test_key_timestamps(tmp_path):
    when = datetime(2020, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    tree = Key("ROOT", subkeys=[Key("old", last_written=when), Key("new")])
    hive = RegistryHive(writes(tmp_path, tree, timestamp=132_000_000_000_000_000))
    stamps = {k.name: k.header.last_modified for k in hive.root.iter_subkeys()}
    assert stamps == {"old": regf.filetime(when), "new": 132_000_000_000_000_000}


@pytest.mark.shared
def test_windows_name_hash_on_a_real_hive(tmp_path):
    """The lh hashes Windows wrote in a real SAM (Latin-1 names among them) equal
    name_hash of the names; the leaves list the names in upcase order."""
    path = expand("hives", "chitonsrv-SAM", tmp_path)
    hive = RegistryHive(str(path))
    raw = path.read_bytes()
    checked = 0
    stack = [hive.root]
    while stack:
        nk = stack.pop()
        children = list(nk.iter_subkeys() or ())
        if not children:
            continue
        cell = 4096 + nk.header.subkeys_list_offset + 4
        if raw[cell : cell + 2] == b"lh":
            (count,) = struct.unpack_from("<H", raw, cell + 2)
            hashes = [struct.unpack_from("<I", raw, cell + 8 + 8 * i)[0] for i in range(count)]
            names = [c.header.key_name_string.decode("latin-1" if c.header.flags.KEY_COMP_NAME else "utf-16-le")
                     for c in children]
            assert hashes == [name_hash(n) for n in names]
            assert names == sorted(names, key=regf.sort_key)
            checked += count
        stack.extend(children)
    assert checked > 80  # 93 names in 27 leaves


# ---------------------------------------------------------------------------------------
# Impossible input


@pytest.mark.parametrize(
    "tree, message",
    [
        (Key("ROOT", subkeys=[Key("Abc"), Key("aBC")]), "two subkeys"),
        (Key("ROOT", subkeys=[Key("é"), Key("É")]), "two subkeys"),
        (Key("ROOT", subkeys=[Key("")]), "empty name"),
        (Key("ROOT", subkeys=[Key("a\\b")]), "backslash"),
        (Key("ROOT", subkeys=[Key("x" * 256)]), "longer than 255"),
        (Key("ROOT", [Value("v", REG_SZ, "a"), Value("V", REG_SZ, "b")]), "two values"),
        (Key("ROOT", [Value("v", -1, b"")]), "32-bit"),
        (Key("ROOT", [Value("v", 1 << 32, b"")]), "32-bit"),
        (Key("ROOT", [Value("v", REG_DWORD, "text")]), "text data"),
        (Key("ROOT", [Value("v", REG_SZ, 5)]), "integer data"),
        (Key("ROOT", [Value("v", REG_DWORD, 1 << 32)]), "does not fit"),
        (Key("ROOT", [Value("v", REG_MULTI_SZ, ["a", ""])]), "non-empty"),
        (Key("ROOT", [Value("v", REG_BINARY, 1.5)]), "cannot store"),
        (Key("ROOT", security=b"\x01\x00"), "security descriptor"),
        (Key("ROOT", security="O:BAG:SY"), "must be bytes"),
        (Key("ROOT", class_name=5), "must be text"),
        (Key("ROOT", last_written="yesterday"), "timestamp"),
    ],
)
def test_impossible_trees_raise(tmp_path, tree, message):
    target = tmp_path / "never"
    with pytest.raises(InvalidHive, match=message):
        write_hive(tree, target)
    assert not target.exists()


def test_invalid_hive_is_an_aclscan_error_and_a_value_error():
    assert issubclass(InvalidHive, Error) and issubclass(InvalidHive, MalformedData)
    assert issubclass(InvalidHive, ValueError)
    with pytest.raises(ValueError):
        hive_bytes(Key("ROOT"), minor_version=2)
    with pytest.raises(InvalidHive, match="sequence"):
        hive_bytes(Key("ROOT"), sequence=-1)
    shared = Key("shared")
    with pytest.raises(InvalidHive, match="twice"):
        hive_bytes(Key("ROOT", subkeys=[Key("a", subkeys=[shared]), Key("b", subkeys=[shared])]))


# ---------------------------------------------------------------------------------------
# Random trees


# no surrogates, controls or XML non-characters (hivexml prints names as XML)
_NAME_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\\ufffe\uffff")
_key_names = st.text(_NAME_CHARS, min_size=1, max_size=12)
_value_names = st.text(_NAME_CHARS, max_size=12)
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=30)
# hivexml prints string data into XML unescaped: no controls or non-characters there
_xml_text = st.text(_NAME_CHARS, max_size=30)


@st.composite
def values(draw, _text=_text):
    kind = draw(st.sampled_from(["sz", "expand", "binary", "none", "dword", "qword", "multi", "odd", "big"]))
    name = draw(_value_names)
    if kind == "sz":
        return Value(name, REG_SZ, draw(_text))
    if kind == "expand":
        return Value(name, REG_EXPAND_SZ, draw(_text))
    if kind in ("binary", "none"):
        return Value(name, REG_BINARY if kind == "binary" else REG_NONE, draw(st.binary(max_size=40)))
    if kind == "dword":
        return Value(name, REG_DWORD, draw(st.integers(0, 0xFFFFFFFF)))
    if kind == "qword":
        return Value(name, REG_QWORD, draw(st.integers(0, (1 << 64) - 1)))
    if kind == "multi":
        return Value(name, REG_MULTI_SZ, draw(st.lists(_text.filter(bool), max_size=4)))
    if kind == "odd":  # any type number regipy does not special-case
        number = draw(st.integers(12, 0xFFFF0000).filter(lambda n: n not in (16, 0x200000)))
        return Value(name, number, draw(st.binary(min_size=5, max_size=20)))
    size = draw(st.integers(regf.BIG_DATA_SEGMENT - 2, 3 * regf.BIG_DATA_SEGMENT + 7))
    seed = draw(st.integers(0, 255))
    return Value(name, REG_BINARY, bytes((seed + i * 7) % 251 for i in range(size)).replace(b"db", b"dc"))


def _unique(items, name):
    seen, out = set(), []
    for item in items:
        folded = regf.sort_key(name(item))
        if folded not in seen:
            seen.add(folded)
            out.append(item)
    return out


@st.composite
def keys(draw, depth=0, text=_text):
    name = draw(_key_names)
    vals = _unique(draw(st.lists(values(text), max_size=4)), lambda v: v.name)
    children = [] if depth >= 2 else draw(st.lists(keys(depth + 1, text), max_size=4))
    return Key(name, vals, _unique(children, lambda k: k.name), class_name=draw(st.none() | _key_names))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=keys(), minor=st.sampled_from([3, 5]))
def test_random_trees_round_trip_through_regipy(tmp_path, tree, minor):
    path = tmp_path / "random.hiv"
    write_hive(tree, path, minor_version=minor)
    dump = regipy_dump(path)
    expected = tree_paths(tree)
    assert set(dump) == set(expected)
    for where, key in expected.items():
        got = dump[where]
        assert got.name == key.name
        assert got.class_name == key.class_name
        assert got.subkeys == [c.name for c in sorted(key.subkeys, key=lambda k: regf.sort_key(k.name))]
        assert same_values(got.values, [as_regipy(v) for v in key.values])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=keys(text=_xml_text))
def test_random_trees_round_trip_through_hivex(tmp_path, tree):
    require_hivex()
    path = tmp_path / "random.hiv"
    write_hive(tree, path)
    dump = hivex_dump(path, values=False)  # names only: hivexget cannot address every name
    expected = tree_paths(tree)
    assert set(dump) == set(expected)
    for where, key in expected.items():
        assert dump[where].subkeys == [c.name for c in sorted(key.subkeys, key=lambda k: regf.sort_key(k.name))]
