"""aclscan.sd.descriptor: self-relative security descriptors (MS-DTYP 2.4.6).

The hard requirement: ``SecurityDescriptor.from_bytes(b).to_bytes() == b`` for any
layout Windows, mkntfs or ntfs-3g writes (component order, gaps, ACL slack, ACE
padding, trailing bytes), and a canonical Windows layout for new descriptors.
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aclscan.errors import MalformedData, MalformedDescriptor, MalformedSID
from aclscan.sd import ACE, ACL, AceType, Control, SecurityDescriptor, SID


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


SY = "01010000 00000005 12000000"  # S-1-5-18, 12 bytes
BA = "01020000 00000005 20000000 20020000"  # S-1-5-32-544, 16 bytes
BU = "01020000 00000005 20000000 21020000"  # S-1-5-32-545
WD = "01010000 00000001 00000000"  # S-1-1-0
LW = "01010000 00000010 00100000"  # S-1-16-4096
SACL = "02 00 1c00 0100 0000" + "11 00 1400 01000000" + LW  # (ML;;NW;;;LW), AclSize 0x1c
DACL = (
    "02 00 3400 0200 0000"
    + "00 03 1400 ff011f00" + SY  # (A;OICI;FA;;;SY)
    + "00 13 1800 a9001200" + BU  # (A;OICIID;0x1200a9;;;BU)
)
# A typical file descriptor as Windows writes it: header, SACL (0x14), DACL (0x30),
# owner (0x64), group (0x74). Control 0x9414 = SE_SELF_RELATIVE | SE_DACL_PROTECTED |
# SE_DACL_AUTO_INHERITED | SE_SACL_PRESENT | SE_DACL_PRESENT.
WINDOWS_SD = "01 00 1494 64000000 74000000 14000000 30000000" + SACL + DACL + BA + SY
# The same kind of descriptor in ntfs-3g's order: owner (0x14), group (0x24), DACL (0x30).
NTFS3G_SD = "01 00 0480 14000000 24000000 00000000 30000000" + BA + SY + "02 00 1c00 0100 0000 00 00 1400 ff011f00" + WD


def test_windows_file_descriptor():
    raw = h(WINDOWS_SD)
    sd = SecurityDescriptor.from_bytes(raw)
    assert sd.revision == 1 and sd.sbz1 == 0
    assert sd.control == 0x9414
    assert sd.control == (
        Control.SE_SELF_RELATIVE
        | Control.SE_DACL_PROTECTED
        | Control.SE_DACL_AUTO_INHERITED
        | Control.SE_SACL_PRESENT
        | Control.SE_DACL_PRESENT
    )
    assert str(sd.owner) == "S-1-5-32-544"
    assert str(sd.group) == "S-1-5-18"
    assert [(a.ace_type, int(a.flags), a.mask, str(a.sid)) for a in sd.dacl.aces] == [
        (AceType.ACCESS_ALLOWED_ACE_TYPE, 0x03, 0x1F01FF, "S-1-5-18"),
        (AceType.ACCESS_ALLOWED_ACE_TYPE, 0x13, 0x1200A9, "S-1-5-32-545"),
    ]
    (label,) = sd.sacl.aces
    assert (label.ace_type, label.mask, str(label.sid)) == (AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE, 1, "S-1-16-4096")
    assert sd.is_self_relative and sd.is_dacl_present and sd.is_sacl_present
    assert sd.is_dacl_protected and sd.is_dacl_auto_inherited and not sd.is_null_dacl
    assert [str(s) for s in sd.sids] == ["S-1-5-32-544", "S-1-5-18", "S-1-5-32-545", "S-1-16-4096"]
    assert sd.to_bytes() == raw


def test_built_descriptor_gets_the_windows_layout():
    parsed = SecurityDescriptor.from_bytes(h(WINDOWS_SD))
    built = SecurityDescriptor(
        control=Control.SE_SELF_RELATIVE | Control.SE_DACL_PROTECTED | Control.SE_DACL_AUTO_INHERITED,
        owner=SID.from_string("S-1-5-32-544"),
        group=SID.from_string("S-1-5-18"),
        dacl=parsed.dacl,
        sacl=parsed.sacl,
    )
    assert built.control == 0x9414  # the PRESENT flags follow the ACLs given
    assert built == parsed and hash(built) == hash(parsed)
    assert built.to_bytes() == h(WINDOWS_SD)


def test_ntfs3g_order_round_trips_and_canonical_form_reorders():
    raw = h(NTFS3G_SD)
    sd = SecurityDescriptor.from_bytes(raw)
    assert sd.to_bytes() == raw
    canonical = dataclasses.replace(sd, _layout=None).to_bytes()
    assert canonical != raw
    assert struct.unpack_from("<4I", canonical, 4) == (0x30, 0x40, 0, 0x14)  # DACL first, then owner, group
    assert SecurityDescriptor.from_bytes(canonical) == sd


def test_null_dacl_empty_dacl_and_no_dacl():
    null = SecurityDescriptor.from_bytes(h("01 00 0480 14000000 00000000 00000000 00000000" + SY))
    assert null.is_dacl_present and null.dacl is None and null.is_null_dacl
    empty = SecurityDescriptor.from_bytes(h("01 00 0480 14000000 00000000 00000000 20000000" + SY + "02 00 0800 0000 0000"))
    assert empty.is_dacl_present and empty.dacl == ACL() and not empty.is_null_dacl
    absent = SecurityDescriptor.from_bytes(h("01 00 0080 14000000 00000000 00000000 00000000" + SY))
    assert not absent.is_dacl_present and absent.dacl is None and not absent.is_null_dacl
    assert len({null, empty, absent}) == 3
    for sd, hex_bytes in [
        (null, "01 00 0480 14000000 00000000 00000000 00000000" + SY),
        (empty, "01 00 0480 1c000000 00000000 00000000 14000000 02 00 0800 0000 0000" + SY),
        (absent, "01 00 0080 14000000 00000000 00000000 00000000" + SY),
    ]:
        assert dataclasses.replace(sd, _layout=None).to_bytes() == h(hex_bytes)
    built_null = SecurityDescriptor(control=Control.SE_SELF_RELATIVE | Control.SE_DACL_PRESENT)
    assert built_null.is_null_dacl
    assert built_null.to_bytes() == h("01 00 0480 00000000 00000000 00000000 00000000")


def test_dacl_offset_without_dacl_present_is_ignored_like_windows_but_kept():
    raw = h("01 00 0080 14000000 00000000 00000000 20000000" + SY + "02 00 0800 0000 0000")
    sd = SecurityDescriptor.from_bytes(raw)
    assert sd.dacl is None and not sd.is_dacl_present
    assert sd.to_bytes() == raw
    # Turning it into a NULL DACL must not resurrect the ignored ACL.
    null = dataclasses.replace(sd, control=sd.control | Control.SE_DACL_PRESENT)
    again = SecurityDescriptor.from_bytes(null.to_bytes())
    assert again.is_null_dacl and again == null


def test_slack_padding_gaps_and_trailing_bytes_survive():
    dacl = (
        "02 00 3000 0100 0000"  # AclSize 0x30: one 24-byte ACE, then 16 bytes of slack
        + "00 00 1800 ff011f00" + SY + "cafebabe"  # AceSize 0x18: 4 bytes of padding
        + "0102030405060708 090a0b0c0d0e0f10"
    )
    # 4-byte gap, DACL at 0x18, owner at 0x48, 2-byte gap, group at 0x5a, one stray byte at the end
    raw = h("01 00 0480 48000000 5a000000 00000000 18000000" + "aabbccdd" + dacl + BA + "eeee" + SY + "77")
    sd = SecurityDescriptor.from_bytes(raw)
    assert str(sd.owner) == "S-1-5-32-544" and str(sd.group) == "S-1-5-18"
    assert sd.dacl.aces == (ACE(AceType.ACCESS_ALLOWED_ACE_TYPE, 0, 0x1F01FF, SID.from_string("S-1-5-18")),)
    assert sd.to_bytes() == raw
    # The canonical form drops gaps and the tail but keeps the ACL's own slack and padding.
    canonical = dataclasses.replace(sd, _layout=None).to_bytes()
    assert len(canonical) == 20 + 0x30 + 16 + 12
    assert SecurityDescriptor.from_bytes(canonical) == sd


def test_same_length_change_keeps_the_layout_other_changes_do_not():
    raw = h(NTFS3G_SD)
    sd = SecurityDescriptor.from_bytes(raw)
    users = SID.from_string("S-1-5-32-545")  # same length as BA
    swapped = dataclasses.replace(sd, owner=users)
    out = swapped.to_bytes()
    assert out == raw.replace(h(BA), h(BU))
    assert SecurityDescriptor.from_bytes(out).owner == users
    domain_user = SID.from_string("S-1-5-21-1-2-3-1001")  # longer: no longer fits
    moved = dataclasses.replace(sd, owner=domain_user).to_bytes()
    assert struct.unpack_from("<I", moved, 16)[0] == 0x14  # canonical: DACL first
    assert SecurityDescriptor.from_bytes(moved) == dataclasses.replace(sd, owner=domain_user)


def test_shared_offsets_round_trip_and_a_conflicting_change_falls_back():
    raw = h("01 00 0080 14000000 14000000 00000000 00000000" + SY)  # owner and group share one SID
    sd = SecurityDescriptor.from_bytes(raw)
    assert sd.owner == sd.group == SID.from_string("S-1-5-18")
    assert sd.to_bytes() == raw
    changed = dataclasses.replace(sd, owner=SID.from_string("S-1-5-19"))  # same length, same place
    again = SecurityDescriptor.from_bytes(changed.to_bytes())
    assert str(again.owner) == "S-1-5-19" and str(again.group) == "S-1-5-18"


def test_rm_control_byte_is_kept():
    raw = h("01 5a 0040 14000000 00000000 00000000 00000000" + SY)
    sd = SecurityDescriptor.from_bytes(raw)
    assert sd.sbz1 == 0x5A and sd.control == Control.SE_RM_CONTROL_VALID
    assert not sd.is_self_relative  # not required: the offsets are read regardless
    assert sd.to_bytes() == raw


@pytest.mark.parametrize(
    ("hex_bytes", "error", "message"),
    [
        ("01 00 0480 1400", MalformedDescriptor, "shorter than its 20-byte header"),
        ("02 00 0480 00000000 00000000 00000000 00000000", MalformedDescriptor, "Revision is 2"),
        ("01 00 0480 40000000 00000000 00000000 00000000" + SY, MalformedDescriptor, "OffsetOwner 64 points outside"),
        ("01 00 0480 14000000 ffffff7f 00000000 00000000" + SY, MalformedDescriptor, "OffsetGroup 2147483647 points outside"),
        ("01 00 1080 00000000 00000000 20000000 00000000" + SY, MalformedDescriptor, "OffsetSacl 32 points outside"),
        ("01 00 0480 00000000 00000000 00000000 08000000" + SY, MalformedDescriptor, "OffsetDacl 8 points into the"),
        ("01 00 0480 00000000 00000000 00000000 14000000 02 00 3400 0200 0000", MalformedDescriptor, "DACL: ACL at offset 20 has AclSize 52"),
        ("01 00 0480 14000000 00000000 00000000 00000000 0102000000000005 20000000", MalformedSID, "owner: SID at offset 20 is truncated"),
        ("01 00 0480 00000000 14000000 00000000 00000000 0110000000000005" + "00" * 64, MalformedSID, "group: .*SubAuthorityCount 16"),
        ("01 00 0480 00000000 00000000 00000000 14000000 02 00 1c00 0200 0000" + "00 00 1400 ff011f00" + SY, MalformedDescriptor, "AceCount is 2 but ACE 1"),
    ],
)
def test_malformed_descriptors(hex_bytes, error, message):
    with pytest.raises(error, match=message) as info:
        SecurityDescriptor.from_bytes(h(hex_bytes))
    assert isinstance(info.value, ValueError) and isinstance(info.value, MalformedData)


def test_control_names():
    assert Control(0x8000).name == "SE_SELF_RELATIVE"
    assert Control.SE_DACL_PROTECTED == 0x1000 and Control.SE_SACL_AUTO_INHERITED == 0x800
    assert Control.SE_DACL_AUTO_INHERIT_REQ == 0x100 and Control.SE_RM_CONTROL_VALID == 0x4000


# ------------------------------------------------------------------ random layouts
# The generator writes bytes with its own encoder, independent of the code under test.

def enc_sid(sid: SID) -> bytes:
    n = len(sid.sub_authorities)
    return bytes([1, n]) + sid.authority.to_bytes(6, "big") + struct.pack(f"<{n}I", *sid.sub_authorities)


sids = st.builds(
    SID,
    revision=st.just(1),
    authority=st.sampled_from([0, 1, 3, 5, 16, 18, 0x010203040506]),
    sub_authorities=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
)
PLAIN = [0x00, 0x01, 0x02, 0x03, 0x11, 0x13, 0x14]
WITH_DATA = [0x09, 0x0A, 0x0D, 0x0E, 0x12, 0x15]
OBJECT = [0x05, 0x06, 0x07, 0x08]
CALLBACK_OBJECT = [0x0B, 0x0C, 0x0F, 0x10]


@st.composite
def aces(draw):
    """(raw ACE bytes, expected (type, flags, mask, sids)) for any type, with padding."""
    kind = draw(st.sampled_from(["plain", "data", "object", "callback_object", "compound", "unknown"]))
    flags = draw(st.integers(0, 0xFF))
    mask = draw(st.integers(0, 0xFFFFFFFF))
    if kind == "unknown":
        t = draw(st.integers(0x16, 0xFF))
        body = draw(st.binary(max_size=16))
        return bytes([t, flags]) + struct.pack("<H", 4 + len(body)) + body, (t, flags, None, ())
    sid = draw(sids)
    tail = draw(st.binary(max_size=9))  # padding, or ApplicationData
    if kind == "compound":
        server = draw(sids)
        body = struct.pack("<IHH", mask, draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)))
        body += enc_sid(server) + enc_sid(sid) + tail
        expected_sids = (server, sid)
        t = 0x04
    elif kind in ("object", "callback_object"):
        t = draw(st.sampled_from(OBJECT if kind == "object" else CALLBACK_OBJECT))
        object_flags = draw(st.integers(0, 0xFFFFFFFF))
        body = struct.pack("<II", mask, object_flags)
        if object_flags & 1:
            body += draw(st.uuids()).bytes_le
        if object_flags & 2:
            body += draw(st.uuids()).bytes_le
        body += enc_sid(sid) + tail
        expected_sids = (sid,)
    else:
        t = draw(st.sampled_from(PLAIN if kind == "plain" else WITH_DATA))
        body = struct.pack("<I", mask) + enc_sid(sid) + tail
        expected_sids = (sid,)
    return bytes([t, flags]) + struct.pack("<H", 4 + len(body)) + body, (t, flags, mask, expected_sids)


@st.composite
def acls(draw):
    entries = draw(st.lists(aces(), max_size=5))
    slack = draw(st.binary(max_size=12))
    body = b"".join(raw for raw, _ in entries) + slack
    header = struct.pack(
        "<BBHHH", draw(st.sampled_from([2, 4, 0, 255])), draw(st.integers(0, 0xFF)), 8 + len(body),
        len(entries), draw(st.integers(0, 0xFFFF)),
    )
    return header + body, [expected for _, expected in entries]


@st.composite
def descriptors(draw):
    """(raw descriptor bytes, expected owner, group, SACL and DACL)."""
    owner = draw(st.none() | sids)
    group = draw(st.none() | sids)
    control = draw(st.integers(0, 0xFFFF)) & ~0x14
    blobs = {}  # component name -> bytes placed in the body
    expected = {"owner": owner, "group": group}
    if owner is not None:
        blobs["owner"] = enc_sid(owner)
    if group is not None:
        blobs["group"] = enc_sid(group)
    for name, present_bit in (("sacl", 0x10), ("dacl", 0x04)):
        mode = draw(st.sampled_from(["absent", "null", "acl", "ignored"]))
        expected[name] = None
        if mode in ("null", "acl"):
            control |= present_bit
        if mode in ("acl", "ignored"):
            raw_acl, acl_expected = draw(acls())
            blobs[name] = raw_acl
            if mode == "acl":
                expected[name] = acl_expected
    order = draw(st.permutations(sorted(blobs)))
    offsets = dict.fromkeys(("owner", "group", "sacl", "dacl"), 0)
    body = b""
    for name in order:
        body += draw(st.binary(max_size=6))  # a gap
        offsets[name] = 20 + len(body)
        body += blobs[name]
    body += draw(st.binary(max_size=8))  # trailing bytes
    header = struct.pack(
        "<BBHIIII", 1, draw(st.integers(0, 0xFF)), control,
        offsets["owner"], offsets["group"], offsets["sacl"], offsets["dacl"],
    )
    return header + body, expected


def summary(acl: ACL | None):
    if acl is None:
        return None
    return [(int(a.ace_type), int(a.flags), a.mask if a.is_known_type else None, a.sids) for a in acl.aces]


@settings(max_examples=200, deadline=None)
@given(descriptors())
def test_any_layout_round_trips_byte_exact(case):
    raw, expected = case
    sd = SecurityDescriptor.from_bytes(raw)
    assert sd.owner == expected["owner"]
    assert sd.group == expected["group"]
    assert summary(sd.dacl) == expected["dacl"]
    assert summary(sd.sacl) == expected["sacl"]
    assert sd.to_bytes() == raw
    # The canonical layout writes the same descriptor again.
    canonical = dataclasses.replace(sd, _layout=None).to_bytes()
    assert SecurityDescriptor.from_bytes(canonical) == sd


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=20, max_size=120))
def test_random_bytes_parse_or_raise_malformed_data(data):
    data = b"\x01" + data[1:]
    try:
        sd = SecurityDescriptor.from_bytes(data)
    except MalformedData:
        return
    assert sd.to_bytes() == data


# ------------------------------------------------------------------ real descriptors

@pytest.mark.shared
def test_real_descriptors_round_trip(windows_descriptors):
    per_file = Counter(r.volume for r in windows_descriptors if r.where.startswith("record"))
    assert per_file == {"win10-lastaccess.raw": 6, "hybrid-perfile-sd.raw": 12}  # the data's README
    for real in windows_descriptors:
        sd = SecurityDescriptor.from_bytes(real.data)
        assert sd.to_bytes() == real.data, (real.volume, real.where)


@pytest.mark.shared
def test_windows_sds_uses_the_canonical_layout(windows_descriptors):
    """What Windows wrote to $SDS is exactly what a descriptor built from scratch gets."""
    written = [r for r in windows_descriptors if r.volume.startswith("win10") and r.where.startswith("$SDS")]
    assert len(written) == 13
    for real in written:
        sd = SecurityDescriptor.from_bytes(real.data)
        assert dataclasses.replace(sd, _layout=None).to_bytes() == real.data, real.where


@pytest.mark.shared
def test_facts_of_the_windows_10_volume(windows_descriptors):
    """The facts ../shared/data/windows/README.md states for win10-lastaccess."""
    sds = [
        SecurityDescriptor.from_bytes(r.data)
        for r in windows_descriptors
        if r.volume == "win10-lastaccess.raw" and r.where.startswith("$SDS")
    ]
    ace_types = Counter(a.ace_type.name for sd in sds for acl in (sd.dacl, sd.sacl) if acl for a in acl.aces)
    assert ace_types == {"ACCESS_ALLOWED_ACE_TYPE": 34, "SYSTEM_MANDATORY_LABEL_ACE_TYPE": 3}
    domain = "S-1-5-21-2341207468-2645333676-3461800803"
    assert {str(s) for sd in sds for s in sd.sids} == {
        "S-1-5-18", "S-1-5-32-544", "S-1-5-32-545", "S-1-5-11", "S-1-16-4096", f"{domain}-1001", f"{domain}-513",
    }


@pytest.mark.shared
def test_mkntfs_root_descriptor_with_acl_slack(windows_descriptors):
    """mkntfs gives the root directory a DACL with AclSize 4096, mostly slack."""
    (root,) = [r for r in windows_descriptors if r.volume == "hybrid-perfile-sd.raw" and r.where == "record 5"]
    sd = SecurityDescriptor.from_bytes(root.data)
    assert struct.unpack_from("<H", root.data, 0x14 + 2)[0] == 4096
    assert len(sd.dacl.aces) == 8
    assert sd.to_bytes() == root.data


def test_uuid_fields_use_the_on_disk_guid_layout():
    guid = uuid.UUID("bf967aba-0de6-11d0-a285-00aa003049e2")
    ace = ACE(AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, 0, 0x100, SID.from_string("S-1-5-10"), guid)
    raw = ace.to_bytes()
    assert raw[12:28] == h("ba7a96bf e60d d011 a285 00aa003049e2")
