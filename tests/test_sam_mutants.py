"""Damaged SAM records, built with the regf writer, read by aclscan.hives.sam: the reader
skips the one record, names it and says why, in words a test can hold it to. Written to
kill mutants that went through the hive tests (``python -m tests.mutation sam``).

Alias C value layout (the SAMR alias record as Windows stores it; see
aclscan/samples/hives.py ``_alias_c``): 4 bytes, then a table of 4 entries of
(offset, length, extra) u32 at 0x04, the data after the table at 0x34; entry 1 is the
name, 2 the comment, 3 the members (extra: how many SIDs).
"""

from __future__ import annotations

import struct

import pytest

from aclscan.errors import HiveError
from aclscan.hives import read_sam
from aclscan.samples.hives import HIVE_NAMES, SamAlias, sam_hive
from aclscan.samples.regf import REG_BINARY, Value, hive_bytes

MACHINE = "S-1-5-21-1004336348-1177238915-682003330"
ALIAS = "SAM\\Domains\\Account\\Aliases\\000003E8"
TABLE, BASE = 0x04, 0x34
WHERE = "Account\\Aliases\\000003E8"


def _tree():
    return sam_hive(MACHINE, aliases=[SamAlias(1000, "Helpdesk", members=(f"{MACHINE}-500",))])


def _read_with_alias_c(edit) -> tuple:
    """The SAM read back after ``edit(bytearray C) -> bytes | None`` (None: no C value)."""
    tree = _tree()
    key = tree.find(ALIAS)
    c = next(v for v in key.values if v.name == "C")
    changed = edit(bytearray(c.data))
    key.values = [v for v in key.values if v.name != "C"]
    if changed is not None:
        key.values.append(Value("C", REG_BINARY, bytes(changed)))
    info = read_sam(hive_bytes(tree, name=HIVE_NAMES["SAM"]))
    return info.aliases, [p for p in info.problems if "Aliases" in p]


def _entry(c: bytearray, index: int) -> tuple[int, int, int]:
    return struct.unpack_from("<III", c, TABLE + 12 * index)


def _set_entry(c: bytearray, index: int, offset=None, length=None, extra=None) -> bytearray:
    old = _entry(c, index)
    new = (old[0] if offset is None else offset, old[1] if length is None else length,
           old[2] if extra is None else extra)
    struct.pack_into("<III", c, TABLE + 12 * index, *new)
    return c


def test_the_undamaged_alias_reads():
    aliases, problems = _read_with_alias_c(lambda c: c)
    assert problems == []
    assert [(a.rid, a.name, a.members) for a in aliases] == [(1000, "Helpdesk", (f"{MACHINE}-500",))]


@pytest.mark.parametrize("edit, reason", [
    (lambda c: None, "alias 000003E8: no C value"),
    (lambda c: c[: TABLE + 20], f"alias 000003E8 C: {TABLE + 20} bytes, too short for its 4-entry table"),
    # Exactly the table: the table reads, the name it points at does not.
    (lambda c: c[:BASE], "alias 000003E8 C: an entry runs past the end of the value"),
    (lambda c: _set_entry(c, 2, length=0x7FFFFFFF), "alias 000003E8 C: an entry runs past the end of the value"),
    # An offset with its top bit set is a huge unsigned number, not a negative one.
    (lambda c: _set_entry(c, 1, offset=0xFFFFFFF0), "alias 000003E8 C: an entry runs past the end of the value"),
    (lambda c: _set_entry(c, 3, extra=2), "alias 000003E8: 2 members announced, 1 stored"),
])
def test_a_damaged_alias_is_skipped_with_its_reason(edit, reason):
    aliases, problems = _read_with_alias_c(edit)
    assert aliases == ()
    assert problems == [f"{WHERE} skipped: {reason}"]


def test_a_member_that_is_no_sid_is_named_by_its_place():
    def bad_revision(c):
        offset, _length, _extra = _entry(c, 3)
        c[BASE + offset] = 7  # SID Revision must be 1
        return c

    aliases, problems = _read_with_alias_c(bad_revision)
    assert aliases == ()
    assert len(problems) == 1
    assert problems[0].startswith(f"{WHERE} skipped: alias 000003E8: member 1: ")
    assert "revision 7" in problems[0].lower()


def test_alias_names_decode_odd_lengths_and_lone_surrogates():
    def name(raw: bytes):
        def edit(c):
            offset, length, _extra = _entry(c, 1)
            c[BASE + offset : BASE + offset + length] = raw + b"\0" * (length - len(raw))
            return _set_entry(c, 1, length=len(raw))
        return edit

    aliases, _problems = _read_with_alias_c(name("A\0B\0C".encode()))
    assert aliases[0].name == "AB"  # the odd last byte is no UTF-16 unit
    aliases, _problems = _read_with_alias_c(name(b"A\x00\x00\xd8"))
    assert aliases[0].name == "A\ufffd"  # a lone high surrogate reads as U+FFFD


def test_keys_that_are_not_8_hex_digits_are_no_records():
    tree = _tree()
    aliases = tree.find("SAM\\Domains\\Account\\Aliases")
    stray = tree.find(ALIAS)
    aliases.subkeys.append(type(stray)("3E9", list(stray.values)))
    info = read_sam(hive_bytes(tree, name=HIVE_NAMES["SAM"]))
    assert [a.rid for a in info.aliases] == [1000]


def test_an_account_key_without_v_has_no_machine_sid():
    tree = _tree()
    account = tree.find("SAM\\Domains\\Account")
    account.values = [v for v in account.values if v.name != "V"]
    with pytest.raises(HiveError, match=r"^SAM\\Domains\\Account has no V value: no machine SID$"):
        read_sam(hive_bytes(tree, name=HIVE_NAMES["SAM"]))


def test_a_short_account_v_falls_back_to_its_last_24_bytes():
    tree = _tree()
    account = tree.find("SAM\\Domains\\Account")
    v = next(x for x in account.values if x.name == "V")
    # 40 bytes: too short for the 4-entry table; the SID is in its last 24 bytes.
    from aclscan.sd.sid import SID

    short = b"\0" * 16 + SID.from_string(MACHINE).to_bytes()
    account.values = [x for x in account.values if x.name != "V"] + [Value("V", v.type, short)]
    info = read_sam(hive_bytes(tree, name=HIVE_NAMES["SAM"]))
    assert info.machine_sid == MACHINE
    assert ("SAM\\Domains\\Account V: SAM\\Domains\\Account V: 40 bytes, too short for its 4-entry table; "
            "the machine SID is taken from its last 24 bytes") in info.problems


def test_lookups_by_rid_and_name():
    info = read_sam(hive_bytes(_tree(), name=HIVE_NAMES["SAM"]))
    assert info.user(500).name == "Administrator" and info.user(501).name == "Guest"
    assert info.user(1234) is None
    assert info.alias(1000).name == "Helpdesk" and info.alias(1001) is None
    assert info.builtin_alias(544).name == "Administrators" and info.builtin_alias(1000) is None


def _with_account_f(edit):
    tree = _tree()
    account = tree.find("SAM\\Domains\\Account")
    f = next(v for v in account.values if v.name == "F")
    changed = edit(bytearray(f.data))
    account.values = [v for v in account.values if v.name != "F"]
    if changed is not None:
        account.values.append(Value("F", f.type, bytes(changed)))
    return read_sam(hive_bytes(tree, name=HIVE_NAMES["SAM"]))


def test_next_rid_is_read_from_the_account_f_value():
    """Domain F (SAM_DOMAIN_FIXED_DATA): NextRid is the unsigned dword at 0x48."""
    def next_rid(value):
        def edit(f):
            struct.pack_into("<I", f, 0x48, value)
            return f[:0x4C]  # exactly long enough
        return edit

    assert _with_account_f(next_rid(1003)).next_rid == 1003
    assert _with_account_f(next_rid(0x80000001)).next_rid == 0x80000001
    assert _with_account_f(lambda f: f[:0x4B]).next_rid is None
    assert _with_account_f(lambda f: None).next_rid is None


def test_a_record_named_otherwise_than_names_says_is_reported():
    tree = _tree()
    names = tree.find("SAM\\Domains\\Account\\Aliases\\Names")
    names.subkeys[0].name = "Support"
    info = read_sam(hive_bytes(tree, name=HIVE_NAMES["SAM"]))
    assert [a.name for a in info.aliases] == ["Helpdesk"]
    assert f"{WHERE}: named 'Helpdesk', but Names lists 'Support'" in info.problems


def test_a_member_list_past_the_value_is_named():
    aliases, problems = _read_with_alias_c(lambda c: _set_entry(c, 3, length=0x1000))
    assert problems == [f"{WHERE} skipped: alias 000003E8 C: an entry runs past the end of the value"]


# User records: V (17-entry table of offset, length, extra at 0; data at 0xCC; entry 1 the
# name, 2 the full name, 3 the comment) and F (RID at 0x30, primary group at 0x34,
# account control bits at 0x38). Groups: C with its table at 0x14, data at 0x44.
USER = "SAM\\Domains\\Account\\Users\\000003E9"
USER_WHERE = "Account\\Users\\000003E9"
GROUP = "SAM\\Domains\\Account\\Groups\\00000201"
GROUP_WHERE = "Account\\Groups\\00000201"
V_BASE, GROUP_TABLE, GROUP_BASE = 0xCC, 0x14, 0x44


def _user_tree():
    from aclscan.samples.hives import SamUser, default_users

    return sam_hive(MACHINE, users=[*default_users(), SamUser(1001, "alice", full_name="Alice A", comment="desk")])


def _read_with(path: str, value: str, edit, tree=None):
    tree = tree or _user_tree()
    key = tree.find(path)
    old = next(v for v in key.values if v.name == value)
    changed = edit(bytearray(old.data))
    key.values = [v for v in key.values if v.name != value]
    if changed is not None:
        key.values.append(Value(value, old.type, bytes(changed)))
    info = read_sam(hive_bytes(tree, name=HIVE_NAMES["SAM"]))
    return info, [p for p in info.problems if "Users" in p or "Groups" in p]


def _v_entry(v: bytearray, index: int, length=None, offset=None) -> bytearray:
    old = struct.unpack_from("<III", v, 12 * index)
    struct.pack_into("<III", v, 12 * index, old[0] if offset is None else offset,
                     old[1] if length is None else length, old[2])
    return v


def test_a_user_record_reads_every_field():
    info, problems = _read_with(USER, "V", lambda v: v)
    assert problems == []
    user = info.user(1001)
    tree = _user_tree()
    f = next(v for v in tree.find(USER).values if v.name == "F").data
    rid, group, flags = struct.unpack_from("<IIH", f, 0x30)
    assert (rid, group) == (1001, 513)
    assert (user.rid, user.name, user.full_name, user.comment, user.disabled, user.acb_flags, user.primary_group) == (
        1001, "alice", "Alice A", "desk", False, flags, 513)
    assert info.user(501).disabled is True


@pytest.mark.parametrize("value, edit, reason", [
    ("V", lambda v: None, "user 000003E9: no V value"),
    ("V", lambda v: v[:203], "user 000003E9 V: 203 bytes, too short for its 17-entry table"),
    ("V", lambda v: v[:204], "user 000003E9 V: an entry runs past the end of the value"),
    ("V", lambda v: _v_entry(v, 2, length=0x10000), "user 000003E9 V: an entry runs past the end of the value"),
    ("V", lambda v: _v_entry(v, 3, length=0x10000), "user 000003E9 V: an entry runs past the end of the value"),
    ("F", lambda f: f[:0x30] + struct.pack("<I", 1002) + f[0x34:], "user 000003E9: its F value says RID 1002"),
    ("F", lambda f: f[:0x30] + struct.pack("<I", 0x80000000) + f[0x34:],
     "user 000003E9: its F value says RID 2147483648"),
])
def test_a_damaged_user_is_skipped_with_its_reason(value, edit, reason):
    info, problems = _read_with(USER, value, edit)
    assert info.user(1001) is None and info.user(500) is not None
    assert problems == [f"{USER_WHERE} skipped: {reason}"]


def test_a_short_f_value_gives_no_flags_and_exactly_0x3a_bytes_do():
    info, _ = _read_with(USER, "F", lambda f: f[:0x39])
    assert (info.user(1001).acb_flags, info.user(1001).primary_group) == (0, None)
    info, _ = _read_with(USER, "F", lambda f: f[:0x3A])
    assert info.user(1001).primary_group == 513


def test_a_user_without_a_name_in_v_takes_the_names_key_or_is_skipped():
    info, problems = _read_with(USER, "V", lambda v: _v_entry(v, 1, length=0))
    assert info.user(1001).name == "alice" and problems == []
    tree = _user_tree()
    names = tree.find("SAM\\Domains\\Account\\Users\\Names")
    names.subkeys = [k for k in names.subkeys if k.name != "alice"]
    info, problems = _read_with(USER, "V", lambda v: _v_entry(v, 1, length=0), tree)
    assert problems == [f"{USER_WHERE} skipped: user 000003E9: no name"]


def test_a_names_entry_without_its_record_is_reported():
    tree = _user_tree()
    users = tree.find("SAM\\Domains\\Account\\Users")
    users.subkeys = [k for k in users.subkeys if k.name != "000003E9"]
    info = read_sam(hive_bytes(tree, name=HIVE_NAMES["SAM"]))
    assert "Account\\Users\\Names\\alice names RID 1001, which has no Account\\Users\\000003E9 key" in info.problems


@pytest.mark.parametrize("edit, reason", [
    (lambda c: None, "group 00000201: no C value"),
    (lambda c: c[: GROUP_TABLE + 20], f"group 00000201 C: {GROUP_TABLE + 20} bytes, too short for its 4-entry table"),
    (lambda c: c[:GROUP_BASE], "group 00000201 C: an entry runs past the end of the value"),
])
def test_a_damaged_group_is_skipped_with_its_reason(edit, reason):
    info, problems = _read_with(GROUP, "C", edit)
    assert info.groups == ()
    assert problems == [f"{GROUP_WHERE} skipped: {reason}"]


def test_a_group_announcing_more_members_than_it_holds_is_skipped():
    def more(c):
        offset, length, _count = struct.unpack_from("<III", c, GROUP_TABLE + 36)
        struct.pack_into("<III", c, GROUP_TABLE + 36, offset, length, length // 4 + 1)
        return c

    info, problems = _read_with(GROUP, "C", more)
    assert len(problems) == 1
    assert problems[0].startswith(f"{GROUP_WHERE} skipped: group 00000201: ")
    count, room = problems[0].split(": ")[-1].split(" members announced, room for ")
    assert int(count) == int(room) + 1
    info, problems = _read_with(GROUP, "C", lambda c: c)
    assert [(g.rid, g.name) for g in info.groups] == [(513, "None")] and problems == []
