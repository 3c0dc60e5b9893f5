"""aclscan.sd.acl: ACLs (MS-DTYP 2.4.5), byte-exact, and what a lying header does."""

from __future__ import annotations

import uuid

import pytest

from aclscan.errors import MalformedData, MalformedDescriptor, MalformedSID
from aclscan.sd.ace import ACE, AceType
from aclscan.sd.acl import ACL, ACL_REVISION, ACL_REVISION_DS
from aclscan.sd.sid import SID


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


SY = "01010000 00000005 12000000"
BU = "01020000 00000005 20000000 21020000"
ALLOW_SY = "00 03 1400 ff011f00" + SY  # (A;OICI;FA;;;SY), 20 bytes
ALLOW_BU = "00 13 1800 a9001200" + BU  # (A;OICIID;0x1200a9;;;BU), 24 bytes
# A typical file DACL: revision 2, AclSize 0x34 (8 + 20 + 24), two ACEs.
DACL = "02 00 3400 0200 0000" + ALLOW_SY + ALLOW_BU


def test_typical_dacl():
    acl = ACL.from_bytes(h(DACL))
    assert acl.revision == ACL_REVISION == 2
    assert len(acl.aces) == 2
    first, second = acl.aces
    assert (first.ace_type, int(first.flags), first.mask, str(first.sid)) == (0, 0x03, 0x1F01FF, "S-1-5-18")
    assert (second.ace_type, int(second.flags), second.mask, str(second.sid)) == (0, 0x13, 0x1200A9, "S-1-5-32-545")
    assert acl.to_bytes() == h(DACL)
    assert acl.size == 0x34
    assert [str(s) for s in acl.sids] == ["S-1-5-18", "S-1-5-32-545"]
    assert list(acl) == list(acl.aces) and acl[1] is second


def test_built_acl_equals_parsed_one():
    built = ACL(aces=[ACE.from_bytes(h(ALLOW_SY)), ACE.from_bytes(h(ALLOW_BU))])
    assert built.revision == ACL_REVISION
    assert built.to_bytes() == h(DACL)
    assert built == ACL.from_bytes(h(DACL))


def test_acl_at_an_offset():
    data = b"\xee" * 6 + h(DACL) + b"\xff" * 5
    acl = ACL.from_bytes(data, 6)
    assert acl.to_bytes() == h(DACL)


def test_slack_after_the_last_ace_is_kept_but_not_compared():
    # AclSize 0x40: 12 bytes of room after the ACEs, with leftovers in it.
    raw = h("02 00 4000 0200 0000" + ALLOW_SY + ALLOW_BU + "00000000 11223344 00000000")
    acl = ACL.from_bytes(raw)
    assert len(acl.aces) == 2
    assert acl.to_bytes() == raw
    assert acl.size == 0x40
    compact = ACL.from_bytes(h(DACL))
    assert acl == compact and hash(acl) == hash(compact)


def test_reserved_fields_are_kept():
    raw = h("02 7f 3400 0200 abcd" + ALLOW_SY + ALLOW_BU)
    assert ACL.from_bytes(raw).to_bytes() == raw


def test_empty_acl_is_not_falsy():
    empty = ACL.from_bytes(h("02 00 0800 0000 0000"))
    assert empty.aces == ()
    assert empty  # an empty DACL must never look like a NULL one in ``if sd.dacl:``
    assert empty.to_bytes() == h("02 00 0800 0000 0000")
    assert ACL() == empty


def test_revision_follows_the_ace_types_when_built():
    sid = SID.from_string("S-1-5-32-554")
    obj = ACE(AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, 0, 0x10, sid, uuid.uuid4())
    plain = ACE(AceType.ACCESS_ALLOWED_ACE_TYPE, 0, 0x10, sid)
    assert ACL(aces=(plain,)).revision == ACL_REVISION
    assert ACL(aces=(plain, obj)).revision == ACL_REVISION_DS == 4
    assert ACL(revision=4, aces=(plain,)).to_bytes()[0] == 4


def test_lying_ace_count_names_the_ace():
    # AceCount 3, but AclSize only holds two ACEs.
    raw = h("02 00 3400 0300 0000" + ALLOW_SY + ALLOW_BU + "00000000")
    with pytest.raises(MalformedDescriptor, match=r"AceCount is 3 but ACE 2 \(at offset 52\)") as info:
        ACL.from_bytes(raw)
    assert isinstance(info.value, ValueError)


def test_ace_running_past_acl_size_names_the_ace():
    # AclSize 0x30 cuts the second ACE (24 bytes at offset 28) short.
    raw = h("02 00 3000 0200 0000" + ALLOW_SY + ALLOW_BU)
    with pytest.raises(MalformedDescriptor, match=r"ACE 1 \(at offset 28, AceSize 24\) runs past AclSize 48"):
        ACL.from_bytes(raw)


def test_zero_ace_size_is_refused_rather_than_looping():
    raw = h("02 00 1000 0200 0000 00000000 00000000")
    with pytest.raises(MalformedDescriptor, match="ACE 0 .* AceSize 0"):
        ACL.from_bytes(raw)


def test_bad_sid_inside_an_ace_names_the_ace():
    bad_second = "00 00 1400 ff011f00 01100000 00000005 12000000"  # SubAuthorityCount 16
    raw = h("02 00 3000 0200 0000" + ALLOW_SY + bad_second + "00000000")
    with pytest.raises(MalformedSID, match=r"ACE 1 \(at offset 28\)") as info:
        ACL.from_bytes(raw)
    assert isinstance(info.value, MalformedData) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("hex_bytes", "message"),
    [
        ("02 00 3400", "truncated"),
        ("02 00 0400 0000 0000", "AclSize 4"),
        ("02 00 4000 0200 0000" + ALLOW_SY + ALLOW_BU, "AclSize 64 but only 52"),
    ],
)
def test_bad_headers(hex_bytes, message):
    with pytest.raises(MalformedDescriptor, match=message) as info:
        ACL.from_bytes(h(hex_bytes))
    assert isinstance(info.value, ValueError)


def test_oversized_acl_is_refused_on_write():
    sid = SID(1, 5, tuple(range(15)))  # 68-byte SID, 76-byte ACE
    ace = ACE(AceType.ACCESS_ALLOWED_ACE_TYPE, 0, 1, sid)
    with pytest.raises(MalformedDescriptor, match="AclSize"):
        ACL(aces=(ace,) * 900).to_bytes()
