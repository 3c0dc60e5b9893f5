"""aclscan.sd.sddl: SDDL as Windows writes it (MS-DTYP 2.5.1).

Expected strings come from Windows output:
* Wine's advapi32 test ``test_ConvertSecurityDescriptorToString`` (its expectations
  pass on real Windows; Vista+ variant where XP differs);
* real Get-Acl / cacls output published by Microsoft and admins, e.g.
  ``O:BAG:DUD:ARAI(A;;FA;;;BA)...(A;ID;0x1200a9;;;BU)`` and
  ``D:AI(D;OICI;FA;;;BG)...(A;OICIIOID;GA;;;CO)(A;OICIID;0x1200a9;;;BU)(A;CIID;LC;;;BU)``
  (Directory Services team blog, "The Security Descriptor Definition Language of Love").
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aclscan.errors import MalformedData, SDDLError
from aclscan.sd import ACE, ACL, AceFlags, AceType, Control, SecurityDescriptor, SID
from aclscan.sd.sddl import (
    ace_from_sddl,
    ace_to_sddl,
    from_sddl,
    mask_from_sddl,
    mask_to_sddl,
    sid_from_sddl,
    sid_to_sddl,
    to_sddl,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# The typical file descriptor of test_descriptor.py, as Windows lays it out.
WINDOWS_SD = (
    "01 00 1494 64000000 74000000 14000000 30000000"
    "02 00 1c00 0100 0000 11 00 1400 01000000 01010000 00000010 00100000"
    "02 00 3400 0200 0000"
    "00 03 1400 ff011f00 01010000 00000005 12000000"
    "00 13 1800 a9001200 01020000 00000005 20000000 21020000"
    "01020000 00000005 20000000 20020000"
    "01010000 00000005 12000000"
)
WINDOWS_SDDL = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICIID;0x1200a9;;;BU)S:(ML;;NW;;;LW)"
DOMAIN = SID.from_string("S-1-5-21-93476-23408-4576")


def test_windows_bytes_to_sddl_and_back():
    sd = SecurityDescriptor.from_bytes(h(WINDOWS_SD))
    assert to_sddl(sd) == WINDOWS_SDDL
    parsed = from_sddl(WINDOWS_SDDL)
    assert parsed == sd
    assert parsed.to_bytes() == h(WINDOWS_SD)  # SDDL gives Windows' own layout


@pytest.mark.parametrize(
    "text",
    [
        # Wine test_ConvertSecurityDescriptorToString, as Windows (Vista and later) writes them.
        "",
        "O:S-1-2-0",
        "O:SY",
        "O:SYG:S-1-5-21-93476-23408-4576",
        "G:S-1-5-21-93476-23408-4576",
        "O:SYG:S-1-5-21-93476-23408-4576D:",
        "O:SYG:S-1-5-21-93476-23408-4576D:(A;NP;GAGXGWGR;;;SU)",
        "O:SYG:S-1-5-21-93476-23408-4576D:(A;NP;GAGXGWGR;;;SU)(A;IOID;CCDC;;;SU)",
        "O:SYG:S-1-5-21-93476-23408-4576D:(A;NP;GAGXGWGR;;;SU)(A;IOID;CCDC;;;SU)"
        "(D;OICI;0xffffffff;;;S-1-5-21-93476-23408-4576)",
        "O:SYG:S-1-5-21-93476-23408-4576D:S:",
        "O:SYG:S-1-5-21-93476-23408-4576D:NO_ACCESS_CONTROLS:(AU;OICINPIOIDSAFA;CCDCLCSWRPRC;;;SU)",
        "O:SYG:S-1-5-21-93476-23408-4576D:NO_ACCESS_CONTROLS:(AU;OICINPIOIDSAFA;CCDCLCSWRPRC;;;SU)"
        "(AU;NPSA;0x12019f;;;SU)",
        # Published Get-Acl / cacls output (domain aliases replaced by numeric SIDs).
        "O:BAG:S-1-5-21-93476-23408-4576-513D:ARAI(A;;FA;;;BA)(A;;FA;;;SY)(A;;0x1200a9;;;BU)"
        "(A;ID;FA;;;BA)(A;ID;FA;;;SY)(A;ID;0x1200a9;;;BU)",
        "D:AI(D;OICI;FA;;;BG)(A;;FA;;;BA)(A;OICIID;FA;;;BA)(A;OICIID;FA;;;SY)(A;OICIIOID;GA;;;CO)"
        "(A;OICIID;0x1200a9;;;BU)(A;CIID;LC;;;BU)(A;CIID;DC;;;BU)",
        "O:BAG:SYD:PAI(A;OICIIO;GA;;;CO)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)",
        "D:PAI(A;CIIO;KA;;;CO)(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;BU)",
        "D:(OA;CIIOID;RP;4c164200-20c0-11d0-a768-00aa006e0529;4828cc14-1437-45bc-9b07-ad6f015e5f28;RU)",
        "D:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)",
        WINDOWS_SDDL,
        "S:AI(ML;OICIID;NW;;;LW)",
    ],
)
def test_windows_strings_parse_and_print_identically(text):
    sd = from_sddl(text)
    assert to_sddl(sd) == text
    assert from_sddl(to_sddl(SecurityDescriptor.from_bytes(sd.to_bytes()))) == sd


@pytest.mark.parametrize(
    ("mask", "ace_type", "text"),
    [
        (0, AceType.ACCESS_ALLOWED_ACE_TYPE, ""),
        (0x1F01FF, AceType.ACCESS_ALLOWED_ACE_TYPE, "FA"),
        (0x120089, AceType.ACCESS_ALLOWED_ACE_TYPE, "FR"),
        (0x120116, AceType.ACCESS_ALLOWED_ACE_TYPE, "FW"),
        (0x1200A0, AceType.ACCESS_ALLOWED_ACE_TYPE, "FX"),
        (0xF003F, AceType.ACCESS_ALLOWED_ACE_TYPE, "KA"),  # also coverable by letters: exact wins
        (0x20019, AceType.ACCESS_ALLOWED_ACE_TYPE, "KR"),  # == KEY_EXECUTE
        (0x20006, AceType.ACCESS_ALLOWED_ACE_TYPE, "KW"),
        (0xF0000000, AceType.ACCESS_ALLOWED_ACE_TYPE, "GAGXGWGR"),
        (0x3, AceType.ACCESS_ALLOWED_ACE_TYPE, "CCDC"),
        (0x2001F, AceType.SYSTEM_AUDIT_ACE_TYPE, "CCDCLCSWRPRC"),  # KEY_READ | KEY_WRITE
        (0xF01FF, AceType.ACCESS_ALLOWED_ACE_TYPE, "CCDCLCSWRPWPDTLOCRSDRCWDWO"),
        (0x12019F, AceType.SYSTEM_AUDIT_ACE_TYPE, "0x12019f"),  # SYNCHRONIZE has no letter
        (0x1200A9, AceType.ACCESS_ALLOWED_ACE_TYPE, "0x1200a9"),
        (0x1301BF, AceType.ACCESS_ALLOWED_ACE_TYPE, "0x1301bf"),
        (0xFFFFFFFF, AceType.ACCESS_DENIED_ACE_TYPE, "0xffffffff"),
        (0x101F01FF, AceType.ACCESS_ALLOWED_ACE_TYPE, "0x101f01ff"),  # FA|GA: no combination of wholes
        (0x1, AceType.ACCESS_ALLOWED_ACE_TYPE, "CC"),
        (0x1, AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE, "NW"),
        (0x3, AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE, "NWNR"),
        (0x7, AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE, "NWNRNX"),
        (0x10000000, AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE, "GA"),
    ],
)
def test_rights(mask, ace_type, text):
    assert mask_to_sddl(mask, ace_type) == text
    assert mask_from_sddl(text) == mask


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("FAGA", 0x101F01FF),
        ("RPLCLORC", 0x20094),  # letters in any order
        ("0X1200A9", 0x1200A9),
        ("1179817", 0x1200A9),  # decimal
        (" NRNW ", 0x3),
        ("KX", 0x20019),
    ],
)
def test_rights_input_forms(text, mask):
    assert mask_from_sddl(text) == mask


@pytest.mark.parametrize("text", ["F", "XY", "FAX", "0x", "0xg", "0x100000000", "4294967296", "fa"])
def test_bad_rights(text):
    with pytest.raises(SDDLError) as info:
        mask_from_sddl(text)
    assert isinstance(info.value, ValueError)


FIXED = {
    "AA": "S-1-5-32-579", "AC": "S-1-15-2-1", "AN": "S-1-5-7", "AO": "S-1-5-32-548", "AS": "S-1-18-1",
    "AU": "S-1-5-11", "BA": "S-1-5-32-544", "BG": "S-1-5-32-546", "BO": "S-1-5-32-551",
    "BU": "S-1-5-32-545", "CD": "S-1-5-32-574", "CG": "S-1-3-1", "CO": "S-1-3-0", "CY": "S-1-5-32-569",
    "ED": "S-1-5-9", "ER": "S-1-5-32-573", "ES": "S-1-5-32-576", "HA": "S-1-5-32-578",
    "HI": "S-1-16-12288", "IS": "S-1-5-32-568", "IU": "S-1-5-4", "LS": "S-1-5-19", "LU": "S-1-5-32-559",
    "LW": "S-1-16-4096", "ME": "S-1-16-8192", "MP": "S-1-16-8448", "MS": "S-1-5-32-577",
    "MU": "S-1-5-32-558", "NO": "S-1-5-32-556", "NS": "S-1-5-20", "NU": "S-1-5-2", "OW": "S-1-3-4",
    "PO": "S-1-5-32-550", "PS": "S-1-5-10", "PU": "S-1-5-32-547", "RA": "S-1-5-32-575",
    "RC": "S-1-5-12", "RD": "S-1-5-32-555", "RE": "S-1-5-32-552", "RM": "S-1-5-32-580",
    "RU": "S-1-5-32-554", "SI": "S-1-16-16384", "SO": "S-1-5-32-549", "SS": "S-1-18-2", "SU": "S-1-5-6",
    "SY": "S-1-5-18", "UD": "S-1-5-84-0-0-0-0-0", "WD": "S-1-1-0", "WR": "S-1-5-33",
}


@pytest.mark.parametrize(("alias", "sid"), sorted(FIXED.items()))
def test_fixed_aliases_both_ways(alias, sid):
    assert str(sid_from_sddl(alias)) == sid
    assert sid_to_sddl(SID.from_string(sid)) == alias


@pytest.mark.parametrize(
    ("alias", "rid"),
    [("LA", 500), ("LG", 501), ("DA", 512), ("DU", 513), ("DG", 514), ("DC", 515), ("DD", 516),
     ("CA", 517), ("PA", 520), ("CN", 522), ("AP", 525), ("KA", 526), ("RS", 553),
     ("RO", 498), ("SA", 518), ("EA", 519), ("EK", 527)],
)
def test_domain_relative_aliases(alias, rid):
    with pytest.raises(SDDLError, match="domain_sid") as info:
        sid_from_sddl(alias)
    assert isinstance(info.value, ValueError)
    sid = sid_from_sddl(alias, domain_sid=DOMAIN)
    assert str(sid) == f"S-1-5-21-93476-23408-4576-{rid}"
    assert sid_to_sddl(sid) == str(sid)  # never written back as an alias
    assert sid_from_sddl(alias, domain_sid="S-1-5-21-93476-23408-4576") == sid


def test_root_domain_aliases_prefer_the_root_domain():
    root = SID.from_string("S-1-5-21-7-8-9")
    assert str(sid_from_sddl("EA", DOMAIN, root)) == "S-1-5-21-7-8-9-519"
    assert str(sid_from_sddl("DA", DOMAIN, root)) == "S-1-5-21-93476-23408-4576-512"
    sd = from_sddl("O:DAG:DUD:(A;;FA;;;LA)", domain_sid=DOMAIN)
    assert to_sddl(sd) == (
        "O:S-1-5-21-93476-23408-4576-512G:S-1-5-21-93476-23408-4576-513"
        "D:(A;;FA;;;S-1-5-21-93476-23408-4576-500)"
    )


@pytest.mark.parametrize("text", ["XX", "ba", "", "S-1-5-x", "S-1", "SID(BA)"])
def test_bad_sids(text):
    with pytest.raises(SDDLError):
        sid_from_sddl(text)


def test_ace_flags_order_and_special_bits():
    every = AceFlags(0xFF)
    audit = ACE(AceType.SYSTEM_AUDIT_ACE_TYPE, every, 1, SID.from_string("S-1-1-0"))
    assert ace_to_sddl(audit) == "(AU;OICINPIOIDCRSAFA;CC;;;WD)"
    assert ace_from_sddl("(AU;FASAOICINPIOIDCR;CC;;;WD)") == audit  # any order on input
    filter_ace = ACE(AceType.ACCESS_FILTER_ACE_TYPE, AceFlags.TRUST_PROTECTED_FILTER_ACE_FLAG, 0, SID(1, 1, (0,)))
    assert ace_to_sddl(filter_ace) == "(FL;TP;;;;WD)"
    assert ace_from_sddl("(FL;TP;;;;WD)") == filter_ace


def test_object_guids_are_lower_case_and_read_in_any_case():
    ace = ace_from_sddl("(OA;;CR;AB721A53-1E2F-11D0-9819-00AA0040529B;;PS)")
    assert ace.object_type == uuid.UUID("ab721a53-1e2f-11d0-9819-00aa0040529b")
    assert ace.inherited_object_type is None
    assert ace_to_sddl(ace) == "(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;PS)"
    assert ace_from_sddl("(OA;;CR;;;PS)").object_flags == 0


def test_null_empty_and_absent_acls():
    null = from_sddl("D:NO_ACCESS_CONTROL")
    assert null.is_null_dacl and null.dacl is None
    assert null.to_bytes() == h("01 00 0480 00000000 00000000 00000000 00000000")
    empty = from_sddl("D:")
    assert empty.dacl == ACL() and not empty.is_null_dacl
    assert empty.to_bytes() == h("01 00 0480 00000000 00000000 00000000 14000000 02 00 0800 0000 0000")
    absent = from_sddl("O:SY")
    assert not absent.is_dacl_present
    protected_null = from_sddl("D:PAINO_ACCESS_CONTROL")
    assert protected_null.is_null_dacl and protected_null.is_dacl_protected
    assert to_sddl(protected_null) == "D:PAINO_ACCESS_CONTROL"
    assert to_sddl(SecurityDescriptor.from_bytes(null.to_bytes())) == "D:NO_ACCESS_CONTROL"
    assert to_sddl(from_sddl("S:NO_ACCESS_CONTROL")) == "S:NO_ACCESS_CONTROL"


def test_acl_flags_go_to_the_right_control_bits():
    sd = from_sddl("D:PARAI(A;;FA;;;SY)S:ARAI(AU;SA;FA;;;WD)")
    assert sd.control == (
        Control.SE_SELF_RELATIVE | Control.SE_DACL_PRESENT | Control.SE_SACL_PRESENT
        | Control.SE_DACL_PROTECTED | Control.SE_DACL_AUTO_INHERIT_REQ | Control.SE_DACL_AUTO_INHERITED
        | Control.SE_SACL_AUTO_INHERIT_REQ | Control.SE_SACL_AUTO_INHERITED
    )
    assert to_sddl(sd) == "D:PARAI(A;;FA;;;SY)S:ARAI(AU;SA;FA;;;WD)"


def test_input_tolerates_order_and_whitespace():
    sd = from_sddl(" S:(ML;;NW;;;LW) D:PAI (A;OICI;FA;;;SY) (A;OICIID;0x1200a9;;;BU) G:SY O:BA ")
    assert to_sddl(sd) == WINDOWS_SDDL


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("X:BA", "expected O:, G:, D: or S:"),
        ("O:BAO:SY", "two O: sections"),
        ("D:(A;;FA;;;SY", "unbalanced"),
        ("D:(Q;;FA;;;SY)", "unknown ACE type"),
        ("D:(A;;FA;;SY)", "needs 6"),
        ("D:(A;;FA;ab721a53-1e2f-11d0-9819-00aa0040529b;;SY)", "takes no object GUIDs"),
        ("D:(OA;;CR;not-a-guid;;SY)", "bad object type GUID"),
        ("D:(A;;FA;;;SY;(x))", "takes no seventh field"),
        ("D:(A;XX;FA;;;SY)", "unknown ACE flag"),
        ("D:NO_ACCESS_CONTROL(A;;FA;;;SY)", "lists ACEs"),
        ("D:(A;;FA;;;SY)junk", "unexpected text"),
        ("O:", "unknown SID alias"),
        ("D:(A;;FA;;;DA)", "domain_sid"),
    ],
)
def test_bad_sddl(text, message):
    with pytest.raises(SDDLError, match=message) as info:
        from_sddl(text)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MalformedData)


@pytest.mark.parametrize(
    "ace",
    [
        ACE(AceType.ACCESS_ALLOWED_COMPOUND_ACE_TYPE, 0, 1, SID(1, 5, (18,)), server_sid=SID(1, 5, (19,))),
        ACE(AceType.ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE, 0, 1, SID(1, 5, (18,))),
        ACE(AceType.SYSTEM_ALARM_CALLBACK_ACE_TYPE, 0, 1, SID(1, 5, (18,))),
        ACE(0x42, 0, raw_body=b"\0\0\0\0"),
    ],
)
def test_types_sddl_cannot_express(ace):
    with pytest.raises(SDDLError, match="SDDL cannot express"):
        to_sddl(SecurityDescriptor(dacl=ACL(aces=(ace,))))


def test_plain_types_without_a_condition():
    for text in ["(SP;;;;;S-1-17-1)", "(TL;;CCRC;;;S-1-19-512-8192)", "(TL;;0x20201;;;S-1-19-512-8192)", "(XA;;FA;;;WD)", "(AL;SA;FA;;;WD)",
                 "(OU;SA;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;WD)", "(ML;CI;NX;;;HI)"]:
        assert ace_to_sddl(ace_from_sddl(text)) == text


# ------------------------------------------------------------------ conditional expressions

def test_callback_and_resource_attribute_aces_through_the_conditional_module():
    for text in [
        "D:(XA;;FA;;;WD;(Member_of {SID(BA)}))",
        "D:(XD;OICI;FA;;;AU;(Member_of {SID(S-1-5-21-1-2-3-1105)}))",
        "S:(XU;SA;FA;;;WD;(Member_of {SID(BA)}))",
        'S:(RA;CI;;;;WD;("Project",TS,0x0,"Secret"))',
        "D:(ZA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;WD;(Member_of {SID(BA)}))",
    ]:
        sd = from_sddl(text)
        ace = (sd.dacl or sd.sacl).aces[0]
        assert ace.application_data and len(ace.application_data) % 4 == 0
        assert to_sddl(sd) == text
        again = SecurityDescriptor.from_bytes(sd.to_bytes())
        assert again == sd and to_sddl(again) == text
    conditional = from_sddl("D:(XA;;FA;;;WD;(Member_of {SID(BA)}))").dacl.aces[0]
    assert conditional.application_data.startswith(b"artx")


# ------------------------------------------------------------------ property

ALIASED = [SID.from_string(s) for s in FIXED.values()]
sids = st.one_of(
    st.sampled_from(ALIASED),
    st.builds(
        SID,
        revision=st.just(1),
        authority=st.sampled_from([5, 5, 1, 16, 0x010203040506]),
        sub_authorities=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    ),
)
SDDL_TYPES = [
    AceType.ACCESS_ALLOWED_ACE_TYPE, AceType.ACCESS_DENIED_ACE_TYPE, AceType.SYSTEM_AUDIT_ACE_TYPE,
    AceType.SYSTEM_ALARM_ACE_TYPE, AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, AceType.ACCESS_DENIED_OBJECT_ACE_TYPE,
    AceType.SYSTEM_AUDIT_OBJECT_ACE_TYPE, AceType.SYSTEM_ALARM_OBJECT_ACE_TYPE,
    AceType.ACCESS_ALLOWED_CALLBACK_ACE_TYPE, AceType.ACCESS_DENIED_CALLBACK_ACE_TYPE,
    AceType.SYSTEM_AUDIT_CALLBACK_ACE_TYPE, AceType.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
    AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE, AceType.SYSTEM_SCOPED_POLICY_ID_ACE_TYPE,
    AceType.SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE, AceType.ACCESS_FILTER_ACE_TYPE,
]
OBJECTS = {
    AceType.ACCESS_ALLOWED_OBJECT_ACE_TYPE, AceType.ACCESS_DENIED_OBJECT_ACE_TYPE,
    AceType.SYSTEM_AUDIT_OBJECT_ACE_TYPE, AceType.SYSTEM_ALARM_OBJECT_ACE_TYPE,
    AceType.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
}


@st.composite
def sddl_aces(draw):
    ace_type = draw(st.sampled_from(SDDL_TYPES))
    guids = {}
    if ace_type in OBJECTS:
        guids = dict(object_type=draw(st.none() | st.uuids()), inherited_object_type=draw(st.none() | st.uuids()))
    mask = draw(st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([0x1F01FF, 0x1200A9, 0xF003F, 0x20019, 1, 7])))
    return ACE(ace_type, draw(st.integers(0, 0xFF)), mask, draw(sids), **guids)


sddl_acls = st.none() | st.builds(ACL, aces=st.lists(sddl_aces(), max_size=4).map(tuple))
# Control bits SDDL can express (the rest are lost, as in Windows).
SDDL_CONTROL = [
    Control.SE_DACL_PRESENT, Control.SE_SACL_PRESENT, Control.SE_DACL_PROTECTED, Control.SE_SACL_PROTECTED,
    Control.SE_DACL_AUTO_INHERIT_REQ, Control.SE_SACL_AUTO_INHERIT_REQ,
    Control.SE_DACL_AUTO_INHERITED, Control.SE_SACL_AUTO_INHERITED,
]


@st.composite
def sddl_descriptors(draw):
    control = Control.SE_SELF_RELATIVE
    for bit in draw(st.lists(st.sampled_from(SDDL_CONTROL), unique=True)):
        control |= bit
    dacl, sacl = draw(sddl_acls), draw(sddl_acls)
    if not control & Control.SE_DACL_PRESENT and dacl is None:
        control &= ~(Control.SE_DACL_PROTECTED | Control.SE_DACL_AUTO_INHERIT_REQ | Control.SE_DACL_AUTO_INHERITED)
    if not control & Control.SE_SACL_PRESENT and sacl is None:
        control &= ~(Control.SE_SACL_PROTECTED | Control.SE_SACL_AUTO_INHERIT_REQ | Control.SE_SACL_AUTO_INHERITED)
    return SecurityDescriptor(
        control=control, owner=draw(st.none() | sids), group=draw(st.none() | sids), dacl=dacl, sacl=sacl
    )


@settings(max_examples=200, deadline=None)
@given(sddl_descriptors())
def test_sddl_round_trip(sd):
    text = to_sddl(sd)
    parsed = from_sddl(text)
    assert parsed == sd
    assert to_sddl(parsed) == text
    # ... and through the binary form too.
    again = SecurityDescriptor.from_bytes(parsed.to_bytes())
    assert again == sd and to_sddl(again) == text
    assert parsed.to_bytes() == dataclasses.replace(sd, _layout=None).to_bytes()


# ------------------------------------------------------------------ real descriptors

@pytest.mark.shared
def test_real_descriptors_through_sddl(windows_descriptors):
    """Windows' own $SDS bytes -> SDDL -> bytes gives the very same bytes."""
    seen = set()
    for real in windows_descriptors:
        sd = SecurityDescriptor.from_bytes(real.data)
        text = to_sddl(sd)
        assert from_sddl(text) == sd, (real.volume, real.where, text)
        if real.volume.startswith("win10") and real.where.startswith("$SDS"):
            assert from_sddl(text).to_bytes() == real.data, (real.where, text)
        seen.add(text)
    assert "O:BAG:SYD:(A;;FA;;;BA)(A;;0x1200a9;;;SY)" not in seen  # sanity: strings really vary
    assert any(t.startswith("O:S-1-5-21-2341207468-2645333676-3461800803-1001") and "S:" in t for t in seen)
    assert any("(ML;OICIIO;NW;;;LW)" in t for t in seen)
