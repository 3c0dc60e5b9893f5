"""aclscan.hives.registry against readers no one here wrote: every key path of the real
and the scenario hives as hivex lists it, every key's security descriptor as regipy
reads its sk cell; and the bulk walks over damaged hives (problems, never exceptions)."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from regipy.registry import NKRecord, RegistryHive
from regipy.structs import SECURITY_KEY_v1_1

from aclscan.errors import HiveError
from aclscan.hives.registry import open_hive
from aclscan.samples.hives import HIVE_NAMES, sam_hive, security_hive, software_hive, system_hive
from aclscan.samples.regf import Key, Value, hive_bytes, REG_SZ
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl
from tests.hives.conftest import SCENARIOS
from tests.hives.damage import flip_bytes
from tests.samples.readers import hivex_dump, regipy_key_name, require_hivex

logging.getLogger("regipy").setLevel(logging.CRITICAL)

REAL_HIVES = ("chitonsrv-SAM", "chitonsrv-SECURITY", "regipy-SAM", "regipy-SECURITY",
              "regipy-SYSTEM_WIN_10_1709", "studentpc8-SAM", "studentpc8-SECURITY")
MACHINE = "S-1-5-21-1111111111-2222222222-3333333333"


def regipy_security(path: Path) -> dict[str, tuple[bytes, dict]]:
    """{key path: (the sk cell's descriptor bytes, get_security_key_info())} by regipy."""
    hive = RegistryHive(str(path))
    out: dict[str, tuple[bytes, dict]] = {}
    stack: list[tuple[NKRecord, str | None]] = [(hive.root, None)]
    while stack:
        nk, parent = stack.pop()
        name = regipy_key_name(nk)
        path_here = "" if parent is None else f"{parent}\\{name}" if parent else name
        hive._stream.seek(0x1000 + nk.header.security_key_offset)
        raw = SECURITY_KEY_v1_1.parse_stream(hive._stream).security_descriptor
        out[path_here] = (bytes(raw), nk.get_security_key_info())
        stack += [(child, path_here) for child in nk.iter_subkeys() or ()]
    return out


def check_against_independent_readers(path: Path) -> int:
    """Every key: same paths as hivex, same descriptor as regipy. Returns the key count."""
    require_hivex()
    hive = open_hive(path.read_bytes(), label=path.name)
    walked = list(hive.key_security())
    assert walked, path
    paths = [p for p, _ in walked]
    assert len(paths) == len(set(paths)), "a key listed twice"
    by_hivex = hivex_dump(path, values=False)
    assert {("\\" + p) if p else "" for p in paths} == set(by_hivex)
    cells = hive.security_cells()
    by_regipy = regipy_security(path)
    assert set(by_regipy) == set(paths)
    for key_path, offset in walked:
        raw, info = by_regipy[key_path]
        assert cells[offset] == raw == hive.security_descriptor(offset), key_path
        sd = SecurityDescriptor.from_bytes(cells[offset])
        assert str(sd.owner) == info["owner"] and str(sd.group) == info["group"], key_path
        for ours, theirs in ((sd.dacl, info["dacl"]), (sd.sacl, info["sacl"])):
            if theirs is not None and ours is not None:
                assert [str(ace.sid) for ace in ours.aces] == [ace["sid"] for ace in theirs], key_path
    # RegKey sees the same tree, with the same security cells
    via_keys, stack = {}, [hive.root]
    while stack:
        key = stack.pop()
        via_keys[key.path] = key.security_offset
        stack += key.subkeys()
    assert via_keys == dict(walked)
    assert hive.status.problems == () or all("dirty" in p or "checksum" in p for p in hive.status.problems)
    return len(walked)


@pytest.mark.parametrize("name", REAL_HIVES)
def test_real_hives_match_hivex_and_regipy(real_hive, name):
    assert check_against_independent_readers(real_hive(name)) > 10


def scenario_trees() -> dict[str, tuple[Key, str]]:
    profiles_sddl = "O:BAG:SYD:(A;CI;KA;;;SY)(A;CI;KR;;;S-1-5-21-1111111111-2222222222-3333333333-1001)"
    software = software_hive()
    av = software.ensure("AVScan")
    av.security = from_sddl(profiles_sddl).to_bytes()
    av.subkeys.append(Key("Engine", [Value("Path", REG_SZ, "C:\\AV")],
                          security=from_sddl("O:SYG:SYD:(A;;KA;;;BA)(A;OICI;KR;;;WD)").to_bytes()))
    av.subkeys.append(Key("Crème", security=from_sddl(profiles_sddl).to_bytes()))  # shares the sk cell
    return {
        "SAM": (sam_hive(MACHINE), HIVE_NAMES["SAM"]),
        "SECURITY": (security_hive("OLDNAME1", MACHINE), HIVE_NAMES["SECURITY"]),
        "SYSTEM": (system_hive("OLDNAME1"), HIVE_NAMES["SYSTEM"]),
        "SOFTWARE": (software, HIVE_NAMES["SOFTWARE"]),
    }


@pytest.mark.parametrize("kind", ["SAM", "SECURITY", "SYSTEM", "SOFTWARE"])
def test_scenario_builder_hives_match_hivex_and_regipy(tmp_path, kind):
    tree, name = scenario_trees()[kind]
    path = tmp_path / kind
    path.write_bytes(hive_bytes(tree, name=name))
    assert check_against_independent_readers(path) > 3


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sample_volume_hives_match_hivex_and_regipy(tmp_path, sample_hives, scenario):
    hives, _manifest = sample_hives(scenario)
    assert hives
    for kind, data in hives.items():
        path = tmp_path / kind
        path.write_bytes(data)
        assert check_against_independent_readers(path) > 3


def test_distinct_descriptors_are_shared_cells():
    tree, name = scenario_trees()["SOFTWARE"]
    hive = open_hive(hive_bytes(tree, name=name))
    walked = dict(hive.key_security())
    assert walked["AVScan"] == walked["AVScan\\Crème"] != walked["AVScan\\Engine"]
    assert hive.key("AVScan\\Crème").security() == from_sddl(
        "O:BAG:SYD:(A;CI;KA;;;SY)(A;CI;KR;;;S-1-5-21-1111111111-2222222222-3333333333-1001)").to_bytes()
    assert set(hive.security_cells()) == set(walked.values())


# --- damaged hives: problems, the rest read -----------------------------------------------

SDS = [from_sddl(f"O:BAG:SYD:(A;CI;KA;;;SY)(A;CI;KR;;;{MACHINE}-{1000 + i})").to_bytes() for i in range(3)]


def three_sk_hive() -> bytes:
    root = Key("ROOT", subkeys=[Key("A", security=SDS[0], subkeys=[Key("A1")]),
                                Key("B", security=SDS[1]), Key("C", security=SDS[2])])
    return hive_bytes(root, name="SOFTWARE")


def sk_list(data: bytes) -> list[int]:
    """The sk offsets in Flink order from the root's, read straight from the bytes."""
    hive = open_hive(data)
    first = hive.root.security_offset
    order, offset = [first], struct.unpack_from("<I", data, 0x1000 + first + 8)[0]
    while offset != first:
        order.append(offset)
        offset = struct.unpack_from("<I", data, 0x1000 + offset + 8)[0]
    return order


def patch(data: bytes, position: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, position, *values)
    return bytes(out)


def test_sk_list_in_order():
    data = three_sk_hive()
    order = sk_list(data)
    assert len(order) == 4  # the default descriptor and three more
    hive = open_hive(data)
    assert set(hive.security_cells()) == set(order) and hive.status.problems == ()


def test_sk_list_loop_is_a_problem():
    data = three_sk_hive()
    first, a, b, c = sk_list(data)
    broken = patch(data, 0x1000 + c + 8, "<I", a)  # C's Flink back to A: a loop
    hive = open_hive(broken)
    assert set(hive.security_cells()) == {first, a, b, c}  # Blink still reaches every cell
    loops = [p for p in hive.status.problems if "(a loop)" in p]
    assert loops == [f"key security list: {a:#x} is reached twice (a loop)"]
    assert len(list(hive.key_security())) == 5  # ROOT, A, A\\A1, B, C


def test_sk_cell_of_wrong_size_is_a_problem():
    data = three_sk_hive()
    first, a, b, c = sk_list(data)
    broken = patch(data, 0x1000 + b + 20, "<I", 0xFFFF)  # B's descriptor size
    hive = open_hive(broken)
    cells = hive.security_cells()
    assert b not in cells and {first, a, c} <= set(cells)
    assert any(f"key security at {b:#x}" in p and "does not fit its cell" in p for p in hive.status.problems)
    with pytest.raises(HiveError, match="does not fit"):
        hive.security_descriptor(b)
    assert len(list(hive.key_security())) == 5  # ROOT, A, A\\A1, B, C


def test_sk_descriptor_that_does_not_parse_is_a_problem():
    data = three_sk_hive()
    first, a, b, c = sk_list(data)
    broken = patch(data, 0x1000 + a + 24, "<B", 9)  # revision 9: no descriptor
    hive = open_hive(broken)
    cells = hive.security_cells()
    assert a not in cells and {first, b, c} <= set(cells)
    assert any(f"key security at {a:#x}: the descriptor does not parse" in p for p in hive.status.problems)


def many_keys_hive() -> bytes:
    root = Key("ROOT", subkeys=[Key(f"K{i:04d}", [Value("v", REG_SZ, "x" * 40)]) for i in range(2500)])
    return hive_bytes(root, name="SOFTWARE")


def test_unreadable_first_cell_of_a_bin():
    data = many_keys_hive()
    bins = [p for p in range(0x2000, len(data), 0x1000)
            if data[p : p + 4] == b"hbin" and data[p + 0x24 : p + 0x26] == b"nk"]
    assert bins, "the writer put a key node first in some bin"
    position = bins[0]
    broken = patch(data, position + 0x20, "<i", 0)  # its size: nothing readable
    hive = open_hive(broken)
    walked = dict(hive.key_security())
    problems = hive.status.problems
    assert any(f"hive bin at {position - 0x1000:#x}: its first cell is unreadable" in p for p in problems)
    assert any(f"{position - 0x1000 + 0x20:#x}" in p for p in problems)  # the key it held
    assert len(walked) == 2500  # the root and every other key
    assert len(open_hive(broken).root.subkeys()) == 2499


def loop_hive() -> tuple[bytes, int]:
    """ROOT\\A\\B where B's subkey list is ROOT's (which holds A): a loop."""
    data = hive_bytes(Key("ROOT", subkeys=[Key("A", subkeys=[Key("B")])]), name="SOFTWARE")
    hive = open_hive(data)
    root_list = hive.root._subkey_list
    b = hive.key("A\\B").offset
    data = patch(data, 0x1000 + b + 4 + 20, "<I", 1)  # subkey count
    return patch(data, 0x1000 + b + 4 + 28, "<I", root_list), b


def test_subkey_list_loop():
    data, _b = loop_hive()
    hive = open_hive(data)
    assert [p for p, _ in hive.key_security()] == ["", "A", "A\\B"]
    assert any("listed twice (a loop)" in p for p in hive.status.problems)
    again = open_hive(data)
    assert again.key("A\\B").subkeys() == []
    assert any("refers back" in p and "(a loop)" in p for p in again.status.problems)


def test_index_root_that_holds_itself():
    data, b = loop_hive()
    ri = bytearray(b"ri" + struct.pack("<H", 1))
    # put an ri cell in place of ROOT's lf list: count 1, pointing at itself
    hive = open_hive(data)
    root_list = hive.root._subkey_list
    broken = bytearray(data)
    broken[0x1000 + root_list + 4 : 0x1000 + root_list + 8] = ri
    struct.pack_into("<I", broken, 0x1000 + root_list + 8, root_list)
    hive = open_hive(bytes(broken))
    assert [p for p, _ in hive.key_security()] == [""]
    assert any("an index root inside an index root" in p for p in hive.status.problems)


def test_huge_counts_and_offsets_out_of_bounds():
    data = hive_bytes(Key("ROOT", subkeys=[Key("A", [Value("v", REG_SZ, "x")]), Key("B")]), name="SOFTWARE")
    hive = open_hive(data)
    a, root_list = hive.key("A").offset, hive.root._subkey_list
    broken = patch(data, 0x1000 + root_list + 6, "<H", 0xFFFF)  # entries beyond the cell
    hive = open_hive(broken)
    assert [p for p, _ in hive.key_security()] == [""]
    assert any("65535 entries do not fit" in p for p in hive.status.problems)
    broken = patch(data, 0x1000 + a + 4 + 40, "<I", 0x7FFFFFF8)  # A's value list far away
    hive = open_hive(broken)
    assert hive.key("A").values() == [] and hive.key("B") is not None
    assert any("value list of A" in p and "outside" in p for p in hive.status.problems)
    broken = patch(data, 0x1000 + a + 4 + 44, "<I", 0x7FFFFFF8)  # A's sk cell far away
    with pytest.raises(HiveError, match="outside the hive bins"):
        open_hive(broken).key("A").security()


def test_unreadable_root_is_one_line_hive_error():
    data = hive_bytes(Key("ROOT", subkeys=[Key("A")]), name="SOFTWARE")
    root = struct.unpack_from("<I", data, 0x24)[0]
    with pytest.raises(HiveError, match=r"^hive: corrupt registry hive \(root key: no key \(nk\) cell"):
        open_hive(patch(data, 0x1000 + root + 4, "2s", b"xx"))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0x1000, 0x2FFF), st.integers(0, 255)), min_size=1, max_size=16))
def test_damaged_hive_walks_never_raise(damage):
    """Bytes flipped anywhere in the hive bins: opening gives a hive or one HiveError;
    every walk and read of an opened hive gives results and problems, no exception."""
    try:
        hive = open_hive(flip_bytes(three_sk_hive(), damage))
    except HiveError as exc:
        assert "\n" not in str(exc)
        return
    walked = list(hive.key_security())
    assert walked and walked[0][0] == ""
    cells = hive.security_cells()
    stack = [hive.root]
    while stack:
        key = stack.pop()
        key.values()
        stack += key.subkeys()
        try:
            assert key.security() == cells.get(key.security_offset, key.security())
        except HiveError as exc:
            assert "\n" not in str(exc)
    assert all("\n" not in p for p in hive.status.problems)
