"""aclscan.sd.ace: every ACE type (MS-DTYP 2.4.4), byte-exact."""

from __future__ import annotations

import uuid

import pytest

from aclscan.errors import MalformedData, MalformedDescriptor, MalformedSID
from aclscan.sd.ace import ACE, COMPOUND_ACE_IMPERSONATE, AceFlags, AceType, ObjectAceFlags
from aclscan.sd.sid import SID


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


SY = "01010000 00000005 12000000"  # S-1-5-18
BU = "01020000 00000005 20000000 21020000"  # S-1-5-32-545
RU = "01020000 00000005 20000000 2a020000"  # S-1-5-32-554
WD = "01010000 00000001 00000000"  # S-1-1-0
LW = "01010000 00000010 00100000"  # S-1-16-4096
SP = "01010000 00000011 01000000"  # S-1-17-1
TL = "01020000 00000013 00020000 00200000"  # S-1-19-512-8192
# 4c164200-20c0-11d0-a768-00aa006e0529 and 4828cc14-1437-45bc-9b07-ad6f015e5f28 in the
# on-disk GUID layout: Data1, Data2, Data3 little-endian, Data4 as is.
GUID1 = "0042164c c020 d011 a76800aa006e0529"
GUID2 = "14cc2848 3714 bc45 9b07ad6f015e5f28"
UUID1 = uuid.UUID("4c164200-20c0-11d0-a768-00aa006e0529")
UUID2 = uuid.UUID("4828cc14-1437-45bc-9b07-ad6f015e5f28")


def sid(text: str) -> SID:
    return SID.from_string(text)


# (description, hex as Windows lays it out, expected fields)
CASES = [
    (
        "allowed OICI FA SY",
        "00 03 1400 ff011f00" + SY,
        dict(ace_type=AceType.ACCESS_ALLOWED_ACE_TYPE, flags=0x03, mask=0x1F01FF, sid=sid("S-1-5-18")),
    ),
    (
        "allowed OICIID 0x1200a9 BU",
        "00 13 1800 a9001200" + BU,
        dict(ace_type=AceType.ACCESS_ALLOWED_ACE_TYPE, flags=0x13, mask=0x1200A9, sid=sid("S-1-5-32-545")),
    ),
    (
        "denied FA WD",
        "01 00 1400 ff011f00" + WD,
        dict(ace_type=AceType.ACCESS_DENIED_ACE_TYPE, mask=0x1F01FF, sid=sid("S-1-1-0")),
    ),
    (
        "audit success+failure",
        "02 c0 1400 ff011f00" + WD,
        dict(ace_type=AceType.SYSTEM_AUDIT_ACE_TYPE, flags=0xC0, mask=0x1F01FF, sid=sid("S-1-1-0")),
    ),
    (
        "alarm",
        "03 40 1400 00000100" + WD,
        dict(ace_type=AceType.SYSTEM_ALARM_ACE_TYPE, flags=0x40, mask=0x10000, sid=sid("S-1-1-0")),
    ),
    (
        "compound impersonate",
        "04 00 2800 ff011f00 0100 0000" + SY + BU,
        dict(
            ace_type=AceType.ACCESS_ALLOWED_COMPOUND_ACE_TYPE,
            mask=0x1F01FF,
            compound_type=COMPOUND_ACE_IMPERSONATE,
            server_sid=sid("S-1-5-18"),
            sid=sid("S-1-5-32-545"),
        ),
    ),
    (
        "object allowed, both GUIDs",
        "05 12 3c00 10000000 03000000" + GUID1 + GUID2 + RU,
        dict(
            ace_type=AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE,
            flags=0x12,
            mask=0x10,
            object_flags=3,
            object_type=UUID1,
            inherited_object_type=UUID2,
            sid=sid("S-1-5-32-554"),
        ),
    ),
    (
        "object denied, inherited type only",
        "06 00 2c00 20000000 02000000" + GUID2 + RU,
        dict(
            ace_type=AceType.ACCESS_DENIED_OBJECT_ACE_TYPE,
            mask=0x20,
            object_flags=2,
            object_type=None,
            inherited_object_type=UUID2,
            sid=sid("S-1-5-32-554"),
        ),
    ),
    (
        "object audit, no GUIDs",
        "07 40 1800 00010000 00000000" + SY,
        dict(ace_type=AceType.SYSTEM_AUDIT_OBJECT_ACE_TYPE, flags=0x40, mask=0x100, object_flags=0, sid=sid("S-1-5-18")),
    ),
    (
        "object alarm, object type only",
        "08 00 2800 00010000 01000000" + GUID1 + SY,
        dict(ace_type=AceType.SYSTEM_ALARM_OBJECT_ACE_TYPE, mask=0x100, object_type=UUID1, sid=sid("S-1-5-18")),
    ),
    (
        "callback allowed",
        "09 00 1c00 ff011f00" + WD + "61727478 01020300",
        dict(
            ace_type=AceType.ACCESS_ALLOWED_CALLBACK_ACE_TYPE,
            mask=0x1F01FF,
            sid=sid("S-1-1-0"),
            application_data=b"artx\x01\x02\x03\x00",
        ),
    ),
    (
        "callback denied, no data",
        "0a 00 1400 ff011f00" + WD,
        dict(ace_type=AceType.ACCESS_DENIED_CALLBACK_ACE_TYPE, mask=0x1F01FF, application_data=b""),
    ),
    (
        "callback object allowed",
        "0b 00 3000 00010000 01000000" + GUID1 + WD + "61727478 00000000",
        dict(
            ace_type=AceType.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
            object_type=UUID1,
            application_data=b"artx\0\0\0\0",
        ),
    ),
    (
        "callback object denied",
        "0c 00 2000 00010000 00000000" + WD + "61727478 00000000",
        dict(ace_type=AceType.ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE, object_type=None),
    ),
    (
        "callback audit",
        "0d 80 1800 ff011f00" + WD + "61727478",
        dict(ace_type=AceType.SYSTEM_AUDIT_CALLBACK_ACE_TYPE, flags=0x80, application_data=b"artx"),
    ),
    (
        "callback alarm",
        "0e 00 1800 ff011f00" + WD + "61727478",
        dict(ace_type=AceType.SYSTEM_ALARM_CALLBACK_ACE_TYPE),
    ),
    (
        "callback object audit",
        "0f 00 3800 ff011f00 03000000" + GUID1 + GUID2 + WD,
        dict(ace_type=AceType.SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE, inherited_object_type=UUID2),
    ),
    (
        "callback object alarm",
        "10 00 1800 ff011f00 00000000" + WD,
        dict(ace_type=AceType.SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE),
    ),
    (
        "mandatory label NW low",
        "11 00 1400 01000000" + LW,
        dict(ace_type=AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE, mask=1, sid=sid("S-1-16-4096")),
    ),
    (
        "resource attribute",
        "12 02 1c00 00000000" + WD + "14000000 00000000",
        dict(
            ace_type=AceType.SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE,
            flags=AceFlags.CONTAINER_INHERIT_ACE,
            application_data=h("14000000 00000000"),
        ),
    ),
    (
        "scoped policy id",
        "13 00 1400 00000000" + SP,
        dict(ace_type=AceType.SYSTEM_SCOPED_POLICY_ID_ACE_TYPE, sid=sid("S-1-17-1")),
    ),
    (
        "process trust label",
        "14 00 1800 01000200" + TL,
        dict(ace_type=AceType.SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE, mask=0x20001, sid=sid("S-1-19-512-8192")),
    ),
    (
        "access filter, trust protected",
        "15 40 1800 ff011f00" + WD + "61727478",
        dict(
            ace_type=AceType.ACCESS_FILTER_ACE_TYPE,
            flags=AceFlags.TRUST_PROTECTED_FILTER_ACE_FLAG,
            application_data=b"artx",
        ),
    ),
]


@pytest.mark.parametrize(("name", "hex_bytes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_windows_layout_parses_and_writes_back(name, hex_bytes, expected):
    raw = h(hex_bytes)
    assert int.from_bytes(raw[2:4], "little") == len(raw), "test data: AceSize must match"
    ace = ACE.from_bytes(raw)
    for attr, value in expected.items():
        assert getattr(ace, attr) == value, attr
    assert ace.to_bytes() == raw
    assert ace.size == len(raw)


def test_every_known_type_has_a_case():
    assert {c[2]["ace_type"] for c in CASES} == set(AceType)


_OBJECT = {
    AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE,
    AceType.ACCESS_DENIED_OBJECT_ACE_TYPE,
    AceType.SYSTEM_AUDIT_OBJECT_ACE_TYPE,
    AceType.SYSTEM_ALARM_OBJECT_ACE_TYPE,
    AceType.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
    AceType.ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE,
    AceType.SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE,
    AceType.SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE,
}


@pytest.mark.parametrize("ace_type", list(AceType))
def test_every_type_built_then_round_tripped(ace_type):
    kwargs = dict(ace_type=ace_type, flags=0x13, mask=0x1200A9, sid=sid("S-1-5-21-1-2-3-1001"))
    if ace_type in _OBJECT:
        kwargs.update(object_type=UUID1, inherited_object_type=UUID2)
    if ace_type == AceType.ACCESS_ALLOWED_COMPOUND_ACE_TYPE:
        kwargs.update(server_sid=sid("S-1-5-18"), compound_type=COMPOUND_ACE_IMPERSONATE)
    if ace_type in (AceType.ACCESS_ALLOWED_CALLBACK_ACE_TYPE, AceType.ACCESS_FILTER_ACE_TYPE):
        kwargs.update(application_data=b"artx\x01\x02\x03\x04")
    ace = ACE(**kwargs)
    if ace.is_object:
        assert ace.object_flags == 3
    raw = ace.to_bytes()
    assert raw[0] == ace_type and raw[1] == 0x13
    assert int.from_bytes(raw[2:4], "little") == len(raw)
    assert len(raw) % 4 == 0
    again = ACE.from_bytes(raw)
    assert again == ace
    assert again.to_bytes() == raw


def test_padding_after_the_sid_is_kept_but_not_compared():
    raw = h("00 03 1800 ff011f00" + SY + "deadbeef")
    ace = ACE.from_bytes(raw)
    assert ace.to_bytes() == raw
    built = ACE(AceType.ACCESS_ALLOWED_ACE_TYPE, 3, 0x1F01FF, sid("S-1-5-18"))
    assert ace == built and hash(ace) == hash(built)
    assert built.to_bytes() == h("00 03 1400 ff011f00" + SY)


def test_bytes_after_the_sid_of_a_callback_ace_are_its_application_data():
    raw = h("09 00 1a00 ff011f00" + WD + "61727478 0102")  # AceSize 26: not a DWORD multiple
    ace = ACE.from_bytes(raw)
    assert ace.application_data == b"artx\x01\x02"
    assert ace.to_bytes() == raw


def test_built_application_data_is_padded_to_a_dword_like_windows():
    ace = ACE(AceType.ACCESS_ALLOWED_CALLBACK_ACE_TYPE, 0, 0x1F01FF, sid("S-1-1-0"), application_data=b"artx\x01")
    assert ace.application_data == b"artx\x01\0\0\0"
    assert ace.size == 4 + 4 + 12 + 8
    assert ACE.from_bytes(ace.to_bytes()) == ace


def test_compound_reserved_field_is_kept():
    raw = h("04 00 2800 ff011f00 0100 abcd" + SY + BU)
    ace = ACE.from_bytes(raw)
    assert ace.to_bytes() == raw
    assert ace.sid == sid("S-1-5-32-545")  # the client
    assert ace.sids == (sid("S-1-5-18"), sid("S-1-5-32-545"))  # server, client


def test_object_flags_high_bits_are_kept_and_presence_follows_the_guids():
    raw = h("05 00 2800 10000000 05000000" + GUID1 + SY)  # bit 0x4 is not defined
    ace = ACE.from_bytes(raw)
    assert ace.object_flags == 5 and ace.object_type == UUID1
    assert ace.to_bytes() == raw
    built = ACE(AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, 0, 0x10, sid("S-1-5-18"), inherited_object_type=UUID2)
    assert built.object_flags == ObjectAceFlags.ACE_INHERITED_OBJECT_TYPE_PRESENT


@pytest.mark.parametrize("ace_type", [0x16, 0x7F, 0xFF])
def test_unknown_type_is_kept_as_opaque_bytes(ace_type):
    raw = bytes([ace_type, 0x10, 10, 0]) + b"\x01\x02\x03\x04\x05\x06"
    ace = ACE.from_bytes(raw)
    assert ace.ace_type == ace_type and not ace.is_known_type
    assert ace.raw_body == raw[4:]
    assert ace.sid is None and ace.sids == ()
    assert ace.is_inherited
    assert ace.to_bytes() == raw


def test_predicates():
    inherited = ACE.from_bytes(h("00 13 1800 a9001200" + BU))
    assert inherited.is_inherited and not inherited.is_object and not inherited.is_callback
    assert not inherited.is_inherit_only
    obj = ACE.from_bytes(h("05 0a 3c00 10000000 03000000" + GUID1 + GUID2 + RU))
    assert obj.is_object and not obj.is_callback and not obj.is_inherited and obj.is_inherit_only
    callback_object = ACE.from_bytes(h("0b 00 3000 00010000 01000000" + GUID1 + WD + "61727478 00000000"))
    assert callback_object.is_object and callback_object.is_callback
    label = ACE.from_bytes(h("11 00 1400 01000000" + LW))
    assert not label.is_object and not label.is_callback


def test_flag_and_type_names():
    assert AceFlags(0xC0) == AceFlags.SUCCESSFUL_ACCESS_ACE_FLAG | AceFlags.FAILED_ACCESS_ACE_FLAG
    assert AceFlags.TRUST_PROTECTED_FILTER_ACE_FLAG == AceFlags.SUCCESSFUL_ACCESS_ACE_FLAG == 0x40
    assert AceFlags.CRITICAL_ACE_FLAG == 0x20
    assert AceType(0x11).name == "SYSTEM_MANDATORY_LABEL_ACE_TYPE"
    assert AceType(0x14).name == "SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE"
    assert AceType.ACCESS_FILTER_ACE_TYPE == AceType.SYSTEM_ACCESS_FILTER_ACE_TYPE == 0x15


@pytest.mark.parametrize(
    ("hex_bytes", "error", "message"),
    [
        ("00 03 14", MalformedDescriptor, "truncated"),
        ("00 03 0200 ff011f00" + SY, MalformedDescriptor, "AceSize 2"),
        ("00 03 2000 ff011f00" + SY, MalformedDescriptor, "AceSize 32 but only 20"),
        ("00 03 0600 ff01", MalformedDescriptor, "too short for its Mask"),
        ("00 03 1000 ff011f00" + SY, MalformedSID, "truncated"),  # AceSize cuts the SID
        ("00 03 1400 ff011f00 01100000 00000005 12000000", MalformedSID, "SubAuthorityCount 16"),
        ("05 00 1c00 10000000 03000000" + GUID1, MalformedDescriptor, "InheritedObjectType"),
        ("05 00 0c00 10000000 01000000", MalformedDescriptor, "ObjectType"),
        ("04 00 0800 ff011f00", MalformedDescriptor, "too short"),
        ("04 00 1800 ff011f00 0100 0000" + SY, MalformedSID, "client SID"),
    ],
)
def test_malformed_aces(hex_bytes, error, message):
    with pytest.raises(error, match=message) as info:
        ACE.from_bytes(h(hex_bytes))
    assert isinstance(info.value, ValueError) and isinstance(info.value, MalformedData)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(ace_type=AceType.ACCESS_ALLOWED_ACE_TYPE, mask=1),  # no SID
        dict(ace_type=AceType.ACCESS_ALLOWED_ACE_TYPE, sid=SID(1, 5, (18,)), mask=1 << 32),
        dict(ace_type=AceType.ACCESS_ALLOWED_ACE_TYPE, sid=SID(1, 5, (18,)), flags=0x100),
        dict(ace_type=AceType.ACCESS_ALLOWED_ACE_TYPE, sid=SID(1, 5, (18,)), object_type=UUID1),
        dict(ace_type=AceType.ACCESS_ALLOWED_COMPOUND_ACE_TYPE, sid=SID(1, 5, (18,))),  # no server SID
        dict(ace_type=0x100),
    ],
)
def test_inconsistent_construction(kwargs):
    with pytest.raises(MalformedDescriptor):
        ACE(**kwargs)
