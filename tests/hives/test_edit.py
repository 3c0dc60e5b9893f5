"""The hive editor and the SID re-pointing on top of it, checked by readers no one here wrote.

Every edited hive is loaded by hivex (Debian's Python bindings, run with /usr/bin/python3,
and ``hivexsh``) and by regipy; its base block checksum is recomputed here (the XOR of
the first 508 bytes' dwords, per Suhanov's specification), and a structural check written
for these tests walks the cells: every allocated cell referenced once (sk cells by as
many keys as their ReferenceCount says), no free cell beside another, subkey lists
sorted with the lh hashes of the specification, the sk Flink/Blink ring closed.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

import pytest
from regipy.registry import RegistryHive

from aclscan.errors import DirtyHive, Error, HiveEditError, HiveError, MissingHiveKey
from aclscan.hives import read_sam, read_security, read_software
from aclscan.hives.editor import HiveEditor, edit_hive
from aclscan.hives.repoint import (
    ACCOUNTS,
    PROFILE_LIST,
    repoint_alias_member,
    repoint_lsa_account,
    repoint_profile,
    replace_sids_in_key_security,
    replace_sids_in_value_descriptor,
)
from aclscan.samples import build, scenarios
from aclscan.samples.regf import REG_BINARY, REG_DWORD, REG_SZ, Key, Value, hive_bytes
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl, to_sddl
from aclscan.sd.sid import SID
from tests.hives.hivex_oracle import require_hivex, run_hivex
from tests.hives.test_real_hives import hivexsh_ls
from tests.samples.readers import regipy_key_name

STAMP = 133_000_000_000_000_000  # a fixed FILETIME, so results do not depend on the clock

# Walks a hive with Debian's hivex bindings and prints every key: its path, its
# subkeys in stored order and its values (name, type, data as hex).
HIVEX_DUMP = r"""
import hivex, json, sys
h = hivex.Hivex(sys.argv[1])
out = {}
stack = [("", h.root())]
while stack:
    path, node = stack.pop()
    children = h.node_children(node)
    values = []
    for v in h.node_values(node):
        kind, data = h.value_value(v)
        values.append([h.value_key(v), kind, data.hex()])
    names = [h.node_name(c) for c in children]
    out[path] = {"subkeys": names, "values": values}
    for c, name in zip(children, names):
        assert h.node_parent(c) == node, (path, name)
        stack.append((path + "\\" + name, c))
json.dump(out, sys.stdout)
"""


def hivex_python() -> None:
    require_hivex()
    if shutil.which("hivexsh") is None:
        pytest.skip("hivexsh (Debian libhivex-bin) is not installed")


@pytest.fixture
def write(tmp_path):
    """``write(data)``: the hive bytes as a file for the outside readers."""
    counter = iter(range(1000))

    def put(data: bytes) -> Path:
        path = tmp_path / f"hive{next(counter)}"
        path.write_bytes(data)
        return path

    return put


def hivex_tree(path: Path) -> dict[str, dict]:
    hivex_python()
    return run_hivex(HIVEX_DUMP, path)


def hivex_value(tree: dict, key: str, name: str) -> tuple[int, bytes]:
    for got, kind, data in tree[key]["values"]:
        if got.lower() == name.lower():
            return kind, bytes.fromhex(data)
    raise KeyError((key, name))


def regipy_keys(path: Path) -> dict[str, object]:
    """Every key regipy finds, by path (from the root's children, like hivex_tree)."""
    hive = RegistryHive(str(path))
    out = {}
    stack = [("", hive.root)]
    while stack:
        where, nk = stack.pop()
        out[where] = nk
        for child in nk.iter_subkeys() or ():
            stack.append((f"{where}\\{regipy_key_name(child)}", child))
    return out


# --------------------------------------------------------------------------- the independent checks


def xor_checksum(block: bytes) -> int:
    total = 0
    for i in range(0, 508, 4):
        total ^= struct.unpack_from("<I", block, i)[0]
    return total


def spec_hash(name: str) -> int:
    h = 0
    units = struct.unpack(f"<{len(name)}H", name.upper().encode("utf-16-le"))
    for unit in units:
        h = (37 * h + unit) & 0xFFFFFFFF
    return h


def check_structure(data: bytes) -> dict[int, int]:
    """The format's invariants, read straight from the bytes; returns {sk offset: keys}."""
    assert data[:4] == b"regf"
    primary, secondary = struct.unpack_from("<II", data, 4)
    assert primary == secondary, "sequence numbers differ"
    assert struct.unpack_from("<I", data, 0x1FC)[0] == xor_checksum(data)
    root, bins_size = struct.unpack_from("<II", data, 0x24)
    assert 0x1000 + bins_size <= len(data)

    def u32(offset: int, field: int) -> int:
        return struct.unpack_from("<I", data, 0x1000 + offset + 4 + field)[0]

    cells: dict[int, int] = {}  # offset -> signed size
    position = 0
    while position < bins_size:
        sig, at, size = struct.unpack_from("<4sII", data, 0x1000 + position)
        assert sig == b"hbin" and at == position and size % 0x1000 == 0
        cell, previous_free = position + 0x20, False
        while cell < position + size:
            raw = struct.unpack_from("<i", data, 0x1000 + cell)[0]
            assert raw != 0 and abs(raw) % 8 == 0, f"cell {cell:#x} size {raw}"
            assert not (raw > 0 and previous_free), f"free cells side by side at {cell:#x}"
            previous_free = raw > 0
            cells[cell] = raw
            cell += abs(raw)
        assert cell == position + size
        position += size
    assert position == bins_size

    referenced: dict[int, int] = {}

    def use(offset: int) -> None:
        assert cells.get(offset, 0) < 0, f"reference to {offset:#x}, which is no allocated cell"
        referenced[offset] = referenced.get(offset, 0) + 1

    def cell_bytes(offset: int) -> bytes:
        return data[0x1000 + offset + 4 : 0x1000 + offset - cells[offset]]

    sk_users: dict[int, int] = {}
    stack = [(root, None)]
    while stack:
        nk, parent = stack.pop()
        use(nk)
        body = cell_bytes(nk)
        assert body[:2] == b"nk"
        if parent is not None:
            assert u32(nk, 16) == parent, "a child's Parent field is wrong"
        sk = u32(nk, 44)
        sk_users[sk] = sk_users.get(sk, 0) + 1
        if u32(nk, 48) != 0xFFFFFFFF and struct.unpack_from("<H", body, 74)[0]:
            use(u32(nk, 48))
        count, values = u32(nk, 36), u32(nk, 40)
        if count:
            use(values)
            for i in range(count):
                vk = struct.unpack_from("<I", cell_bytes(values), 4 * i)[0]
                use(vk)
                size, where = u32(vk, 4), u32(vk, 8)
                if size & 0x80000000 or size == 0:
                    continue
                use(where)
                db = cell_bytes(where)
                if size > 16344 and db[:2] == b"db":
                    segments, listing = struct.unpack_from("<HI", db, 2)
                    use(listing)
                    for j in range(segments):
                        use(struct.unpack_from("<I", cell_bytes(listing), 4 * j)[0])
        subkeys, listing = u32(nk, 20), u32(nk, 28)
        children: list[tuple[int, int | None]] = []
        if subkeys:
            use(listing)
            head = cell_bytes(listing)
            leaves = [listing]
            if head[:2] == b"ri":
                leaves = [struct.unpack_from("<I", head, 4 + 4 * i)[0] for i in range(struct.unpack_from("<H", head, 2)[0])]
                for leaf in leaves:
                    use(leaf)
            for leaf in leaves:
                body_leaf = cell_bytes(leaf)
                sig, n = struct.unpack_from("<2sH", body_leaf)
                step = 4 if sig == b"li" else 8
                for i in range(n):
                    child, extra = struct.unpack_from("<I", body_leaf, 4 + step * i)[0], None
                    if step == 8:
                        extra = struct.unpack_from("<I", body_leaf, 8 + step * i)[0]
                    children.append((child, extra))
                    if sig == b"lh":
                        name = key_name(cell_bytes(child))
                        assert extra == spec_hash(name), f"lh hash of {name!r}"
            assert len(children) == subkeys
            names = [key_name(cell_bytes(c)).upper() for c, _ in children]
            assert names == sorted(names, key=lambda n: n.encode("utf-16-be")), "subkey list out of order"
            largest = max(2 * len(n) for n in names)
            assert u32(nk, 52) >= largest, "largest subkey name length too small"
        stack.extend((c, nk) for c, _ in children)

    # The sk ring: closed both ways, and every sk counted as often as keys use it.
    ring, sk = [], u32(root, 44)
    while sk not in ring:
        ring.append(sk)
        following = u32(sk, 4)
        assert u32(following, 8) == sk, "an sk cell's Flink and its successor's Blink disagree"
        sk = following
    assert sk == ring[0]
    assert set(ring) == set(sk_users), "sk cells no key uses, or keys with an sk outside the ring"
    for sk, users in sk_users.items():
        assert cell_bytes(sk)[:2] == b"sk"
        assert u32(sk, 12) == users, f"sk {sk:#x}: ReferenceCount {u32(sk, 12)}, {users} keys use it"
        assert sk not in referenced, "an sk cell referenced from a list"
        referenced[sk] = 1
    for offset, count in referenced.items():
        assert count == 1, f"cell {offset:#x} referenced {count} times"
    leaked = {o for o, size in cells.items() if size < 0} - set(referenced)
    assert not leaked, f"allocated cells nothing references: {sorted(leaked)[:5]}"
    return sk_users


def key_name(body: bytes) -> str:
    flags, length = struct.unpack_from("<H", body, 2)[0], struct.unpack_from("<H", body, 72)[0]
    raw = body[76 : 76 + length]
    return raw.decode("latin-1") if flags & 0x20 else raw.decode("utf-16-le")


def loads_everywhere(data: bytes, write) -> dict[str, dict]:
    """The hive as hivex reads it, after hivexsh, regipy and the structural check load it."""
    check_structure(data)
    path = write(data)
    tree = hivex_tree(path)
    assert hivexsh_ls(path, "\\") == tree[""]["subkeys"]
    keys = regipy_keys(path)
    assert set(keys) == set(tree), "regipy and hivex see different keys"
    for where, nk in keys.items():
        assert [v.name if v.name != "(default)" else "" for v in nk.iter_values() or ()] == \
            [name for name, _, _ in tree[where]["values"]] or where == ""
    return tree


def same_except(before: dict, after: dict, changed: set[str]) -> None:
    """Every key not in ``changed`` reads the same (subkeys, value names, types, bytes)."""
    untouched = [k for k in before if k not in changed and k in after]
    assert untouched
    for key in untouched:
        assert after[key] == before[key], key


# --------------------------------------------------------------------------- av-service


@pytest.fixture(scope="module")
def av_service():
    scenario = scenarios.av_service()
    files = build.hive_files(scenario)
    old = f"{scenario.previous_machine_sids[0]}-1003"
    new = f"{scenario.machine_sid}-1003"
    return scenario, files, old, new


def test_lsa_right_moves_to_the_new_sid(av_service, write):
    _, files, old, new = av_service
    before = hivex_tree(write(files["SECURITY"]))
    result = repoint_lsa_account(files["SECURITY"], old, new, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    accounts = tree[f"\\{ACCOUNTS}"]["subkeys"]
    assert new in accounts and old not in accounts
    assert hivex_value(tree, f"\\{ACCOUNTS}\\{new}\\Sid", "")[1] == SID.from_string(new).to_bytes()
    bits = hivex_value(tree, f"\\{ACCOUNTS}\\{new}\\ActSysAc", "")[1]
    assert struct.unpack("<I", bits)[0] & 0x10  # SeServiceLogonRight, [MS-LSAD] 2.2.1.2
    assert SID.from_string(old).to_bytes() not in result.data
    assert old.encode("latin-1") not in result.data
    moved = {k for k in before if old in k} | {k.replace(old, new) for k in before if old in k}
    same_except(before, tree, moved | {f"\\{ACCOUNTS}"})
    for suffix in ("\\ActSysAc", "\\SecDesc"):  # the moved subkeys keep their values
        assert tree[f"\\{ACCOUNTS}\\{new}{suffix}"] == before[f"\\{ACCOUNTS}\\{old}{suffix}"]
    assert [c.kind for c in result.changes] == ["rename_key", "set_value"]
    assert read_security(result.data).accounts[new].rights == frozenset({"SeServiceLogonRight"})


def test_lsa_rights_merge_with_what_the_new_sid_holds(av_service, write):
    _, files, old, new = av_service
    # The new SID holds some rights of its own first: S-1-5-32-544's, moved onto it.
    first = repoint_lsa_account(files["SECURITY"], "S-1-5-32-544", new, timestamp=STAMP)
    held = read_security(first.data).accounts[new]
    result = repoint_lsa_account(first.data, old, new, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    assert old not in tree[f"\\{ACCOUNTS}"]["subkeys"]
    bits = struct.unpack("<I", hivex_value(tree, f"\\{ACCOUNTS}\\{new}\\ActSysAc", "")[1])[0]
    assert bits == held.system_access | 0x10
    raw = hivex_value(tree, f"\\{ACCOUNTS}\\{new}\\Privilgs", "")[1]
    count = struct.unpack_from("<I", raw)[0]
    assert count == len(held.privileges) and len(raw) == 8 + 12 * count
    assert SID.from_string(old).to_bytes() not in result.data
    merged = read_security(result.data).accounts[new]
    assert merged.rights == held.rights | {"SeServiceLogonRight"} and merged.privileges == held.privileges


def test_alias_lists_the_new_sid_both_ways(av_service, write):
    _, files, old, new = av_service
    before = hivex_tree(write(files["SAM"]))
    result = repoint_alias_member(files["SAM"], old, new, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    aliases = "\\SAM\\Domains\\Account\\Aliases"
    c = hivex_value(tree, f"{aliases}\\000003EC", "C")[1]
    assert SID.from_string(new).to_bytes() in c and SID.from_string(old).to_bytes() not in c
    old_domain, new_domain = old.rsplit("-", 1)[0], new.rsplit("-", 1)[0]
    members = tree[f"{aliases}\\Members"]["subkeys"]
    assert new_domain in members and old_domain not in members
    kind, rids = hivex_value(tree, f"{aliases}\\Members\\{new_domain}\\000003EB", "")
    assert (kind, rids) == (1, struct.pack("<I", 0x3EC))  # type = alias count, data = alias RIDs
    assert SID.from_string(old).to_bytes() not in result.data and old.encode() not in result.data
    changed = {k for k in before if k.startswith(f"{aliases}\\Members") or k == f"{aliases}\\000003EC"}
    same_except(before, tree, changed)
    assert read_sam(result.data).alias(0x3EC).members == (new,)


def test_profile_moves_to_the_new_sid(av_service, write):
    scenario, files, _, _ = av_service
    old, new = f"{scenario.machine_sid}-500", f"{scenario.machine_sid}-1003"
    before = hivex_tree(write(files["SOFTWARE"]))
    result = repoint_profile(files["SOFTWARE"], old, new, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    profiles = f"\\{PROFILE_LIST}"
    assert new in tree[profiles]["subkeys"] and old not in tree[profiles]["subkeys"]
    assert tree[profiles]["subkeys"] == sorted(tree[profiles]["subkeys"], key=str.upper)
    assert hivex_value(tree, f"{profiles}\\{new}", "Sid") == (REG_BINARY, SID.from_string(new).to_bytes())
    assert hivex_value(tree, f"{profiles}\\{new}", "ProfileImagePath") == \
        hivex_value(before, f"{profiles}\\{old}", "ProfileImagePath")
    assert SID.from_string(old).to_bytes() not in result.data
    same_except(before, tree, {profiles, f"{profiles}\\{old}", f"{profiles}\\{new}"})
    assert {p.sid for p in read_software(result.data).profiles} >= {new}


# --------------------------------------------------------------------------- descriptors

OLD = "S-1-5-21-111-222-333-1003"
NEW = "S-1-5-21-444-555-666-1003"


def descriptor_tree() -> Key:
    shared = from_sddl(f"O:BAG:SYD:(A;CI;KA;;;SY)(A;CI;KR;;;{OLD})").to_bytes()
    own = from_sddl(f"O:{OLD}G:SYD:(A;;KA;;;{OLD})(A;;KR;;;BU)").to_bytes()
    service_sd = from_sddl(f"O:SYG:SYD:(A;;CCLCSWLOCRRC;;;{OLD})(A;;0xf01ff;;;BA)").to_bytes()
    return Key("ROOT", subkeys=[
        Key("Alpha", [Value("Data", REG_SZ, "alpha")], security=shared),
        Key("Beta", [Value("Data", REG_DWORD, 7)], security=shared),
        Key("Gamma", subkeys=[Key("Inner", security=own)], security=own),
        Key("Plain", [Value("Security", REG_BINARY, service_sd), Value("Other", REG_SZ, "x")]),
    ])


def test_sids_in_key_descriptors_are_replaced(write):
    data = hive_bytes(descriptor_tree(), name="\\REGISTRY\\MACHINE\\TEST")
    before = hivex_tree(write(data))
    users_before = check_structure(data)
    result = replace_sids_in_key_security(data, {OLD: NEW}, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    same_except(before, tree, set())  # keys and values untouched
    keys = regipy_keys(write(result.data))
    for path in ("\\Alpha", "\\Beta", "\\Gamma", "\\Gamma\\Inner"):
        info = keys[path].get_security_key_info()
        sids = {info["owner"]} | {ace["sid"] for ace in info["dacl"] or ()}
        assert info["dacl"] and NEW in sids and OLD not in sids, path
    assert keys["\\Gamma"].get_security_key_info()["owner"] == NEW
    users_after = check_structure(result.data)
    assert sorted(users_after.values()) == sorted(users_before.values())  # sharing kept
    assert SID.from_string(OLD).to_bytes() in hivex_value(tree, "\\Plain", "Security")[1]  # values: not this call
    assert len(result.changes) == 2


def test_sids_in_a_value_descriptor_are_replaced(write):
    data = hive_bytes(descriptor_tree(), name="\\REGISTRY\\MACHINE\\TEST")
    before = hivex_tree(write(data))
    result = replace_sids_in_value_descriptor(data, "Plain", "Security", {OLD: NEW}, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    kind, raw = hivex_value(tree, "\\Plain", "Security")
    assert kind == REG_BINARY
    assert to_sddl(SecurityDescriptor.from_bytes(raw)) == \
        to_sddl(from_sddl(f"O:SYG:SYD:(A;;CCLCSWLOCRRC;;;{NEW})(A;;0xf01ff;;;BA)"))
    assert hivex_value(tree, "\\Plain", "Other") == hivex_value(before, "\\Plain", "Other")
    same_except(before, tree, {"\\Plain"})


def test_set_security_shares_and_frees_sk_cells(write):
    data = hive_bytes(descriptor_tree(), name="\\REGISTRY\\MACHINE\\TEST")
    ed = HiveEditor(data, timestamp=STAMP)
    alpha = ed.security("Alpha")
    ed.set_security("Beta", ed.security("Plain"))  # Beta leaves Alpha's cell for the default one
    ed.set_security("Gamma\\Inner", alpha)  # Inner joins Alpha; Gamma keeps its own
    ed.set_security("Gamma", alpha)  # the last user of Gamma's descriptor: its cell is freed
    out = ed.to_bytes()
    users = check_structure(out)
    assert sorted(users.values()) == [3, 3]  # {Alpha, Gamma, Inner} and {root, Beta, Plain}
    keys = regipy_keys(write(out))
    assert keys["\\Gamma"].get_security_key_info() == keys["\\Alpha"].get_security_key_info()
    assert SID.from_string(OLD).to_bytes() in out  # Alpha's descriptor still names it
    assert from_sddl(f"O:{OLD}G:SYD:(A;;KA;;;{OLD})(A;;KR;;;BU)").to_bytes() not in out  # freed and zeroed
    loads_everywhere(out, write)


# --------------------------------------------------------------------------- growth


def small_tree() -> Key:
    return Key("ROOT", subkeys=[
        Key("Alpha", [Value("Small", REG_BINARY, b"12345678")], subkeys=[Key("Child1"), Key("Child2")]),
        Key("Bravo", [Value("Keep", REG_SZ, "kept")]),
        Key("Charlie"),
    ])


def test_a_longer_value_moves_to_a_new_cell(write):
    data = hive_bytes(small_tree())
    before = hivex_tree(write(data))
    result = edit_hive(data, lambda ed: ed.set_value("Alpha", "Small", REG_BINARY, b"x" * 200), timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    assert hivex_value(tree, "\\Alpha", "Small") == (REG_BINARY, b"x" * 200)
    assert struct.unpack_from("<I", result.data, 0x28) == struct.unpack_from("<I", data, 0x28)  # room in the bin
    same_except(before, tree, {"\\Alpha"})


def test_a_new_hive_bin_is_appended_when_the_bins_are_full(write):
    data = hive_bytes(small_tree())
    big = bytes(range(256)) * 40  # 10240 bytes: more than the free tail of a 4 KiB bin
    huge = bytes(reversed(range(256))) * 100  # 25600 bytes: db segments (format 1.5)
    result = edit_hive(data, lambda ed: (ed.set_value("Bravo", "Big", REG_BINARY, big),
                                         ed.set_value("Charlie", "Huge", REG_BINARY, huge)), timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    assert hivex_value(tree, "\\Bravo", "Big") == (REG_BINARY, big)
    assert hivex_value(tree, "\\Charlie", "Huge") == (REG_BINARY, huge)
    assert hivex_value(tree, "\\Bravo", "Keep") == hivex_value(hivex_tree(write(data)), "\\Bravo", "Keep")
    bins_size = struct.unpack_from("<I", result.data, 0x28)[0]
    assert bins_size > struct.unpack_from("<I", data, 0x28)[0] and len(result.data) == 0x1000 + bins_size
    # Shrinking back frees the cells: the data goes inline and nothing is left allocated for it.
    shrunk = edit_hive(result.data, lambda ed: (ed.set_value("Bravo", "Big", REG_DWORD, b"\1\0\0\0"),
                                                ed.delete_value("Charlie", "Huge")), timestamp=STAMP)
    tree = loads_everywhere(shrunk.data, write)
    assert hivex_value(tree, "\\Bravo", "Big") == (REG_DWORD, b"\1\0\0\0")
    assert tree["\\Charlie"]["values"] == []
    assert big[:64] not in shrunk.data and huge[:64] not in shrunk.data


def test_rename_to_a_name_that_sorts_elsewhere(write):
    data = hive_bytes(small_tree())
    before = hivex_tree(write(data))
    long_name = "zulu-" + "a-much-longer-name-than-before" * 3
    result = edit_hive(data, lambda ed: ed.rename_key("Alpha", long_name), timestamp=STAMP)
    tree = loads_everywhere(result.data, write)  # checks the children's Parent fields too
    assert tree[""]["subkeys"] == ["Bravo", "Charlie", long_name]
    assert tree[f"\\{long_name}"] == before["\\Alpha"]
    assert tree[f"\\{long_name}\\Child1"] == before["\\Alpha\\Child1"]
    assert b"Alpha" not in result.data
    same_except(before, tree, {"", "\\Alpha", "\\Alpha\\Child1", "\\Alpha\\Child2"})
    # Latin-1 names are stored compressed, others as UTF-16; both sort by their upper case.
    again = edit_hive(result.data, lambda ed: (ed.rename_key("Bravo", "Ärger"), ed.rename_key("Charlie", "ключ")),
                      timestamp=STAMP)
    tree = loads_everywhere(again.data, write)
    assert tree[""]["subkeys"] == [long_name, "Ärger", "ключ"]
    assert "ключ".encode("utf-16-le") in again.data and "Ärger".encode("latin-1") in again.data


def test_add_and_delete_keys_and_values(write):
    data = hive_bytes(small_tree())
    before = hivex_tree(write(data))

    def edit(ed: HiveEditor) -> None:
        ed.add_key("Alpha\\Child0")
        ed.set_value("Alpha\\Child0", "", REG_SZ, "hello\0".encode("utf-16-le"))
        ed.delete_key("Alpha\\Child2")
        ed.delete_value("Bravo", "Keep")
        ed.add_key("Delta")

    result = edit_hive(data, edit, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    assert tree["\\Alpha"]["subkeys"] == ["Child0", "Child1"]
    assert hivex_value(tree, "\\Alpha\\Child0", "") == (REG_SZ, "hello\0".encode("utf-16-le"))
    assert tree["\\Bravo"]["values"] == [] and tree[""]["subkeys"] == ["Alpha", "Bravo", "Charlie", "Delta"]
    assert tree["\\Alpha"]["values"] == before["\\Alpha"]["values"]
    assert [str(c).split(":")[0] for c in result.changes] == [
        "add_key Alpha\\Child0", "add_value Alpha\\Child0", "delete_key Alpha\\Child2",
        "delete_value Bravo", "add_key Delta"]


def test_an_index_root_list_stays_sorted(write):
    names = [f"K{i:05d}" for i in range(0, 2400, 2)]  # 1200 subkeys: an ri with lh leaves
    data = hive_bytes(Key("ROOT", subkeys=[Key("Many", subkeys=[Key(n) for n in names])]))
    result = edit_hive(data, lambda ed: (ed.add_key("Many\\K00601"), ed.delete_key("Many\\K00000")),
                       timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    assert tree["\\Many"]["subkeys"] == sorted(names[1:] + ["K00601"])


def test_logs_applied_hive_is_written_clean(write):
    data = bytearray(hive_bytes(small_tree()))
    struct.pack_into("<I", data, 4, 9)  # primary 9, secondary 1: as a hive after its logs were applied
    struct.pack_into("<I", data, 0x1FC, xor_checksum(bytes(data)))
    result = edit_hive(bytes(data), lambda ed: ed.add_key("Echo"), logs_applied=True, timestamp=STAMP)
    assert struct.unpack_from("<II", result.data, 4) == (10, 10)
    loads_everywhere(result.data, write)


# --------------------------------------------------------------------------- bad input


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def test_a_dirty_hive_is_refused(av_service):
    _, files, old, new = av_service
    dirty = bytearray(files["SECURITY"])
    struct.pack_into("<I", dirty, 4, 2)  # primary 2, secondary 1
    struct.pack_into("<I", dirty, 0x1FC, xor_checksum(bytes(dirty)))
    snapshot = hashlib.sha256(dirty).hexdigest()
    with pytest.raises(DirtyHive) as caught:
        repoint_lsa_account(bytes(dirty), old, new)
    assert "dirty hive" in one_line(caught.value) and "2 and 1" in str(caught.value)
    assert isinstance(caught.value, HiveError) and caught.value.exit_code == 8
    assert hashlib.sha256(dirty).hexdigest() == snapshot
    bad_sum = bytearray(files["SECURITY"])
    bad_sum[0x1FC] ^= 1
    with pytest.raises(DirtyHive, match="checksum"):
        edit_hive(bytes(bad_sum), lambda ed: None)


@pytest.mark.parametrize("call, message", [
    (lambda f, o, n: repoint_lsa_account(f["SECURITY"], "S-1-5-21-1-2-3-1000", n), "no LSA account"),
    (lambda f, o, n: repoint_alias_member(f["SAM"], "S-1-5-21-1-2-3-1000", n), "no alias lists"),
    (lambda f, o, n: repoint_profile(f["SOFTWARE"], o, n), "no key Microsoft"),
    (lambda f, o, n: replace_sids_in_value_descriptor(f["SYSTEM"], "Nowhere", "SD", {o: n}), "no key Nowhere"),
    (lambda f, o, n: edit_hive(f["SAM"], lambda ed: ed.delete_value("SAM", "Nothing")), "no value"),
])
def test_missing_keys_are_one_line_errors(av_service, call, message):
    _, files, old, new = av_service
    with pytest.raises(MissingHiveKey) as caught:
        call(files, old, new)
    assert message in one_line(caught.value)
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, Error)


@pytest.mark.parametrize("edit, message", [
    (lambda ed: ed.delete_key("Alpha"), "has subkeys"),
    (lambda ed: ed.rename_key("Alpha", "bravo"), "exists already"),
    (lambda ed: ed.add_key("Charlie"), "exists already"),
    (lambda ed: ed.rename_key("", "X"), "root key"),
    (lambda ed: ed.add_key(""), "root key"),
    (lambda ed: ed.add_key("Nowhere\\Deeper"), "no key Nowhere"),
    (lambda ed: ed.set_security("Alpha", b"not a descriptor"), "descriptor"),
    (lambda ed: ed.rename_key("Alpha", "x" * 256), "longer than 255"),
])
def test_edits_that_cannot_be_made_are_refused(edit, message):
    data = hive_bytes(small_tree())
    with pytest.raises(HiveEditError) as caught:
        edit_hive(data, edit)
    assert message in one_line(caught.value)


def test_not_a_hive_and_bad_mappings():
    with pytest.raises(HiveEditError, match="not a registry hive"):
        edit_hive(b"MZ" + bytes(5000), lambda ed: None)
    data = hive_bytes(descriptor_tree())
    with pytest.raises(HiveEditError, match="both an old and a new SID"):
        replace_sids_in_key_security(data, {OLD: NEW, NEW: "S-1-5-32-544"})
    with pytest.raises(HiveEditError, match="not a SID"):
        replace_sids_in_key_security(data, {"Ken": NEW})
    profiles = build.hive_files(scenarios.av_service())["SOFTWARE"]
    with pytest.raises(HiveEditError, match="has a profile already"):
        repoint_profile(profiles, "S-1-5-18", "S-1-5-19")


# --------------------------------------------------------------------------- hives Windows wrote

CHITONSRV = "S-1-5-21-3656677704-2377210397-1510584988"
STUDENTPC8 = "S-1-5-21-4070822719-3404542230-2541167049"
CLONE = "S-1-5-21-1000000001-1000000002-1000000003"


@pytest.mark.shared
@pytest.mark.parametrize("hive, old", [
    ("chitonsrv-SAM", f"{CHITONSRV}-1004"),  # format 1.5: lh leaves; in Administradores and Usuarios
    ("studentpc8-SAM", f"{STUDENTPC8}-1001"),  # format 1.3 (Windows 7): lf leaves
])
def test_real_sam_alias_member_is_repointed(real_hive, write, hive, old):
    data = real_hive(hive).read_bytes()
    new = f"{CLONE}-{old.rsplit('-', 1)[1]}"
    before = hivex_tree(write(data))
    groups = [a.rid for a in read_sam(data).builtin_aliases if old in a.members]
    assert groups
    result = repoint_alias_member(data, old, new, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    after = read_sam(result.data)
    for rid in groups:
        members = after.builtin_alias(rid).members
        assert new in members and old not in members
    members = "\\SAM\\Domains\\Builtin\\Aliases\\Members"
    rid_key = f"{members}\\{CLONE}\\{int(new.rsplit('-', 1)[1]):08X}"
    kind, rids = hivex_value(tree, rid_key, "")
    assert kind == len(groups) and sorted(struct.unpack(f"<{kind}I", rids)) == sorted(groups)
    assert f"{int(old.rsplit('-', 1)[1]):08X}" not in tree[f"{members}\\{old.rsplit('-', 1)[0]}"]["subkeys"]
    # The old SID stays where this edit does not reach: the user's own V value (its
    # descriptor grants the user access) and slack Windows left in free cells.
    aliases = [k for k in tree if k.startswith("\\SAM\\Domains\\Builtin\\Aliases")]
    assert aliases
    for key in aliases:
        for _, _, data in tree[key]["values"]:
            assert SID.from_string(old).to_bytes().hex() not in data, key
    changed = {k for k in before if k.startswith(members)} | {f"\\SAM\\Domains\\Builtin\\Aliases\\{r:08X}"
                                                              for r in groups}
    same_except(before, tree, changed)


@pytest.mark.shared
def test_real_security_lsa_account_is_repointed(real_hive, write):
    data = real_hive("studentpc8-SECURITY").read_bytes()  # format 1.3
    old, new = f"{STUDENTPC8}-501", f"{CLONE}-501"
    held = read_security(data).accounts[old]
    before = hivex_tree(write(data))
    result = repoint_lsa_account(data, old, new, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    assert new in tree[f"\\{ACCOUNTS}"]["subkeys"] and old not in tree[f"\\{ACCOUNTS}"]["subkeys"]
    assert read_security(result.data).accounts[new] == held
    assert SID.from_string(old).to_bytes() not in result.data
    same_except(before, tree, {k for k in before if old in k} | {f"\\{ACCOUNTS}"})


# --------------------------------------------------------------------------- a plan's registry actions


def test_av_service_plan_registry_actions_applied_offline(scenario_db, sample_hives, write):
    """What `fix --apply` is to do with the plan's registry actions, on the hives of the
    committed av-service volume: afterwards SeServiceLogonRight and the AV Admins membership
    name today's AVService, and neither hive holds an old SID."""
    from aclscan.plan import GRANT_LSA_RIGHTS, REPLACE_ALIAS_MEMBER, build_plan
    from aclscan.store import open_database

    hives, manifest = sample_hives("av-service")
    plan = build_plan(open_database(scenario_db("av-service")))
    registry = [a for a in plan.actions if a.kind in (GRANT_LSA_RIGHTS, REPLACE_ALIAS_MEMBER)]
    assert {a.kind for a in registry} == {GRANT_LSA_RIGHTS, REPLACE_ALIAS_MEMBER}
    edited = dict(hives)
    for action in registry:
        if action.kind == GRANT_LSA_RIGHTS:
            edited["SECURITY"] = repoint_lsa_account(edited["SECURITY"], action.sid, action.new_sid,
                                                     timestamp=STAMP).data
        else:
            edited["SAM"] = repoint_alias_member(edited["SAM"], action.sid, action.new_sid, timestamp=STAMP).data
    old_service = next(a.sid for a in registry)
    new_service = next(a.new_sid for a in registry)
    security = loads_everywhere(edited["SECURITY"], write)
    bits = struct.unpack("<I", hivex_value(security, f"\\{ACCOUNTS}\\{new_service}\\ActSysAc", "")[1])[0]
    assert bits & 0x10  # SeServiceLogonRight
    sam = loads_everywhere(edited["SAM"], write)
    aliases = "\\SAM\\Domains\\Account\\Aliases"
    c = hivex_value(sam, f"{aliases}\\000003EC", "C")[1]
    assert SID.from_string(new_service).to_bytes() in c
    regipy_c = regipy_keys(write(edited["SAM"]))[f"{aliases}\\000003EC"].get_value("C")
    assert SID.from_string(new_service).to_bytes() in regipy_c
    olds = {a.sid for a in plan.actions if a.kind == "replace_sid"}  # AVService's and AV Admins' old SIDs
    assert len(olds) == 2
    for old in olds:
        for name in ("SAM", "SECURITY"):
            assert SID.from_string(old).to_bytes() not in edited[name], (old, name)
    assert SID.from_string(old_service).to_bytes() in hives["SECURITY"]  # it was there before
    assert manifest["machine_sid"] == plan.scan["machine_sid"]


def test_keep_old_grants_both_sids(av_service, write):
    _, files, old, new = av_service
    security = repoint_lsa_account(files["SECURITY"], old, new, keep_old=True, timestamp=STAMP)
    tree = loads_everywhere(security.data, write)
    assert {old, new} <= set(tree[f"\\{ACCOUNTS}"]["subkeys"])
    assert tree[f"\\{ACCOUNTS}\\{new}\\ActSysAc"] == tree[f"\\{ACCOUNTS}\\{old}\\ActSysAc"]
    assert hivex_value(tree, f"\\{ACCOUNTS}\\{new}\\Sid", "")[1] == SID.from_string(new).to_bytes()
    sam = repoint_alias_member(files["SAM"], old, new, keep_old=True, timestamp=STAMP)
    loads_everywhere(sam.data, write)
    assert read_sam(sam.data).alias(0x3EC).members == (old, new)


def test_profile_guid_follows_the_profile(write):
    old, new = OLD, NEW
    guid = "{2E8A4C3B-1111-2222-3333-444455556666}"
    current = Key("CurrentVersion", subkeys=[
        Key("ProfileGuid", subkeys=[Key(guid, [Value("SidString", REG_SZ, old)])]),
        Key("ProfileList", subkeys=[Key(old, [Value("ProfileImagePath", REG_SZ, "C:\\Users\\ken"),
                                               Value("Sid", REG_BINARY, SID.from_string(old).to_bytes())])]),
    ])
    root = Key("ROOT", subkeys=[Key("Microsoft", subkeys=[Key("Windows NT", subkeys=[current])])])
    data = hive_bytes(root, name="\\REGISTRY\\MACHINE\\SOFTWARE")
    result = repoint_profile(data, old, new, timestamp=STAMP)
    tree = loads_everywhere(result.data, write)
    base = "\\Microsoft\\Windows NT\\CurrentVersion"
    assert tree[f"{base}\\ProfileList"]["subkeys"] == [new]
    assert hivex_value(tree, f"{base}\\ProfileGuid\\{guid}", "SidString") == (REG_SZ, (new + "\0").encode("utf-16-le"))
    assert old.encode("utf-16-le") not in result.data and old.encode() not in result.data
    assert SID.from_string(old).to_bytes() not in result.data


def test_a_damaged_subkey_list_is_a_one_line_error():
    data = bytearray(hive_bytes(small_tree()))
    ed = HiveEditor(bytes(data))
    struct.pack_into("<I", data, 0x1000 + ed.root + 4 + 28, 0x7FFFFFF0)  # the root's subkey list: far away
    struct.pack_into("<I", data, 0x1FC, xor_checksum(bytes(data)))
    with pytest.raises(HiveEditError) as caught:
        edit_hive(bytes(data), lambda ed: ed.add_key("Delta"))
    assert one_line(caught.value)


def test_an_old_sid_is_removed_from_aliases_and_lsa(av_service, write):
    from aclscan.hives.repoint import remove_alias_member, remove_lsa_account

    _, files, old, _ = av_service
    sam = remove_alias_member(files["SAM"], old, timestamp=STAMP)
    tree = loads_everywhere(sam.data, write)
    assert read_sam(sam.data).alias(0x3EC).members == ()
    assert tree["\\SAM\\Domains\\Account\\Aliases\\Members"]["subkeys"] == []
    assert SID.from_string(old).to_bytes() not in sam.data
    security = remove_lsa_account(files["SECURITY"], old, timestamp=STAMP)
    tree = loads_everywhere(security.data, write)
    assert old not in tree[f"\\{ACCOUNTS}"]["subkeys"] and old not in read_security(security.data).accounts
    assert SID.from_string(old).to_bytes() not in security.data
    with pytest.raises(MissingHiveKey):
        remove_lsa_account(security.data, old)
