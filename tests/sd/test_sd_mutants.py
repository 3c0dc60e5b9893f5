"""Tests written to kill mutants of aclscan/sd that went through the rest of the suite
(``python -m tests.mutation sd``; README, "Tests and benchmarks")."""

from __future__ import annotations

import pytest


# Sizes that use both bytes, the exact 16-bit limits, messages that count right.


def _allowed_ace(sid: bytes, padding: int) -> bytes:
    """ACCESS_ALLOWED_ACE (MS-DTYP 2.4.4.2): header, Mask, SID, then ``padding`` zero bytes."""
    size = 4 + 4 + len(sid) + padding
    return bytes([0, 0]) + size.to_bytes(2, "little") + (0x1F01FF).to_bytes(4, "little") + sid + b"\0" * padding


SYSTEM_SID = bytes.fromhex("010100000000000512000000")  # S-1-5-18


def test_ace_and_acl_sizes_over_255_read_both_bytes():
    """AceSize 0x114 and AclSize 0x11C: the high byte counts (a mutant shifting it the wrong
    way, or by 9, reads another size)."""
    ace = _allowed_ace(SYSTEM_SID, 256)
    assert len(ace) == 0x114
    from aclscan.sd.ace import ACE
    from aclscan.sd.acl import ACL

    parsed = ACE.from_bytes(ace)
    assert parsed.size == 0x114 and parsed.to_bytes() == ace and str(parsed.sid) == "S-1-5-18"
    acl = bytes([2, 0]) + (8 + len(ace)).to_bytes(2, "little") + (1).to_bytes(2, "little") + b"\0\0" + ace
    parsed_acl = ACL.from_bytes(acl)
    assert parsed_acl.size == 0x11C and len(parsed_acl.aces) == 1 and parsed_acl.to_bytes() == acl


def test_an_ace_of_just_its_header_is_read():
    """AceSize 4 at the very end of the buffer: an ACE type aclscan does not know, kept whole."""
    from aclscan.sd.ace import ACE

    parsed = ACE.from_bytes(b"\x80\x00\x04\x00")
    assert parsed.size == 4 and parsed.to_bytes() == b"\x80\x00\x04\x00"
    assert ACE.from_bytes(b"\xff\xff\x80\x00\x04\x00", 2).to_bytes() == b"\x80\x00\x04\x00"


def test_truncation_messages_count_the_bytes_that_remain():
    from aclscan.errors import MalformedDescriptor
    from aclscan.sd.ace import ACE
    from aclscan.sd.acl import ACL

    with pytest.raises(MalformedDescriptor, match=r"^ACE at offset 2 has AceSize 20 but only 8 bytes remain$"):
        ACE.from_bytes(b"\0\0" + b"\0\0\x14\x00" + b"\0\0\0\0", 2)
    with pytest.raises(MalformedDescriptor, match=r"^ACL at offset 2 has AclSize 64 but only 10 bytes remain$"):
        ACL.from_bytes(b"\0\0" + bytes([2, 0, 64, 0, 0, 0, 0, 0]) + b"\0\0", 2)


def test_acl_size_limit_is_exactly_16_bits():
    from aclscan.errors import MalformedDescriptor
    from aclscan.sd.acl import ACL

    largest = bytes([2, 0, 0xFF, 0xFF, 0, 0, 0, 0]) + b"\0" * (0xFFFF - 8)
    assert ACL.from_bytes(largest).to_bytes() == largest
    too_big = ACL(aces=(), _slack=b"\0" * (0x10000 - 8))
    with pytest.raises(MalformedDescriptor, match="65536 bytes does not fit AclSize"):
        too_big.to_bytes()


def test_sid_text_errors_and_authorities_from_2_to_the_32():
    from aclscan.errors import MalformedSID
    from aclscan.sd.sid import SID

    with pytest.raises(MalformedSID, match="SID text must be str, not bytes"):
        SID.from_string(b"S-1-5-18")
    # MS-DTYP 2.4.2.1: an IdentifierAuthority of 2**32 or more is written in hex.
    big = SID.from_bytes(bytes([1, 1]) + (1 << 32).to_bytes(6, "big") + (7).to_bytes(4, "little"))
    assert str(big) == "S-1-0x000100000000-7"
    below = SID.from_bytes(bytes([1, 1]) + ((1 << 32) - 1).to_bytes(6, "big") + (7).to_bytes(4, "little"))
    assert str(below) == "S-1-4294967295-7"
    just_over = SID.from_bytes(bytes([1, 1]) + (1 << 33).to_bytes(6, "big") + (7).to_bytes(4, "little"))
    assert str(just_over) == "S-1-0x000200000000-7"


def test_a_component_that_changed_size_leaves_the_original_layout():
    """Owner replaced by a longer SID: the descriptor is written in the canonical layout, not
    over the old bytes."""
    import dataclasses

    from aclscan.sd.descriptor import SecurityDescriptor
    from aclscan.sd.sid import SID
    from aclscan.sd.sddl import from_sddl

    # A layout no canonical writer makes: owner first, then group, then the DACL.
    built = from_sddl("O:SYG:SYD:(A;;FA;;;BA)")
    owner, group, dacl = (x.to_bytes() for x in (built.owner, built.group, built.dacl))
    header = bytes([1, 0]) + (0x8004).to_bytes(2, "little")
    offsets = (20, 20 + len(owner), 0, 20 + len(owner) + len(group))
    raw = header + b"".join(o.to_bytes(4, "little") for o in offsets) + owner + group + dacl
    parsed = SecurityDescriptor.from_bytes(raw)
    assert parsed.to_bytes() == raw
    longer = SID.from_string("S-1-5-21-1-2-3-1000")
    changed = dataclasses.replace(parsed, owner=longer)
    again = SecurityDescriptor.from_bytes(changed.to_bytes())
    assert again.owner == longer and again.group == parsed.group and again.dacl == parsed.dacl


# Values that do not fit their fields are refused with a message naming the field.


def test_building_sids_acls_and_aces_checks_every_field():
    import uuid

    from aclscan.errors import MalformedDescriptor, MalformedSID
    from aclscan.sd.ace import ACE, AceFlags, AceType
    from aclscan.sd.acl import ACL
    from aclscan.sd.sid import SID

    system = SID.from_string("S-1-5-18")
    with pytest.raises(MalformedSID, match=r"^SID revision 2 is not 1$"):
        SID(2, 5, (18,))
    with pytest.raises(MalformedSID, match=r"^SID identifier authority 281474976710656 does not fit in 48 bits$"):
        SID(1, 1 << 48, (18,))
    with pytest.raises(MalformedSID, match=r"^SID has 16 sub-authorities, at most 15 are allowed$"):
        SID(1, 5, tuple(range(16)))
    assert type(SID(1, 5, [18]).sub_authorities) is tuple
    assert str(SID(1, 1 << 32, (7,))) == "S-1-0x000100000000-7"
    assert str(SID(1, (1 << 32) - 1, (7,))) == "S-1-4294967295-7"
    assert str(SID(1, 1 << 33, (7,))) == "S-1-0x000200000000-7"

    with pytest.raises(MalformedDescriptor, match=r"^AclRevision 256 does not fit in a byte$"):
        ACL(revision=256)
    assert ACL(revision=255).revision == 255
    assert type(ACL(aces=[ACE(0, sid=system)]).aces) is tuple

    plain = ACE(0, 3, 0x1F01FF, system)  # plain ints in, the enums out
    assert type(plain.ace_type) is AceType and plain.ace_type == AceType.ACCESS_ALLOWED_ACE_TYPE
    assert type(plain.flags) is AceFlags and plain.flags == 3
    with pytest.raises(MalformedDescriptor, match=r"^AceType 256 does not fit in a byte$"):
        ACE(0x100)
    with pytest.raises(MalformedDescriptor, match=r"^AceFlags 0x100 does not fit in a byte$"):
        ACE(0, 0x100, 0, system)
    with pytest.raises(MalformedDescriptor, match=r"^access mask 0x100000000 does not fit in 32 bits$"):
        ACE(0, 0, 1 << 32, system)
    with pytest.raises(MalformedDescriptor, match=r"^ACCESS_ALLOWED_ACE_TYPE needs a SID, got None$"):
        ACE(0)
    with pytest.raises(MalformedDescriptor, match=r"^ACCESS_ALLOWED_ACE_TYPE is not an object ACE and carries no GUIDs$"):
        ACE(0, sid=system, object_type=uuid.UUID(int=1))
    with pytest.raises(MalformedDescriptor, match=r"^a compound ACE needs a server SID$"):
        ACE(4, sid=system)
    both = ACE(5, sid=system, object_type=uuid.UUID(int=1), inherited_object_type=uuid.UUID(int=2))
    assert both.object_flags == 3
    assert ACE(5, sid=system, object_flags=0xFFFFFFFF).object_flags == 0xFFFFFFFC  # the presence bits are derived
    with pytest.raises(MalformedDescriptor, match=r"^object ACE Flags 0x100000000 do not fit in 32 bits$"):
        ACE(5, sid=system, object_flags=1 << 32)


def test_ace_size_limit_is_exactly_16_bits():
    from aclscan.errors import MalformedDescriptor
    from aclscan.sd.ace import ACE

    assert len(ACE(0x80, raw_body=b"\0" * (0xFFFF - 4)).to_bytes()) == 0xFFFF
    with pytest.raises(MalformedDescriptor, match=r"^ACE of 65536 bytes does not fit AceSize \(16 bits\)$"):
        ACE(0x80, raw_body=b"\0" * (0x10000 - 4)).to_bytes()


def test_an_acl_ending_in_a_header_only_ace_is_read():
    from aclscan.sd.acl import ACL

    raw = bytes([2, 0, 12, 0, 1, 0, 0, 0]) + b"\x80\x00\x04\x00"
    acl = ACL.from_bytes(raw)
    assert len(acl.aces) == 1 and acl.to_bytes() == raw


def test_descriptor_and_sid_fields_out_of_range_are_refused_by_name():
    from aclscan.errors import MalformedDescriptor, MalformedSID
    from aclscan.sd.descriptor import Control, SecurityDescriptor
    from aclscan.sd.sid import SID

    with pytest.raises(MalformedDescriptor, match=r"^Control 0x10000 does not fit in 16 bits$"):
        SecurityDescriptor(control=0x10000)
    assert SecurityDescriptor(control=0xFFFF).control == 0xFFFF
    built = SecurityDescriptor(control=0x8004)
    assert type(built.control) is Control and built.control == 0x8004
    for revision, sbz1 in ((256, 0), (0, 256), (-1, 0)):
        with pytest.raises(MalformedDescriptor, match=r"^Revision and Sbz1 are single bytes$"):
            SecurityDescriptor(revision=revision, sbz1=sbz1)
    assert SecurityDescriptor(revision=0, sbz1=255).revision == 0
    assert SecurityDescriptor(revision=255).revision == 255
    with pytest.raises(MalformedSID, match=r"^SID sub-authority 4294967296 does not fit in 32 bits$"):
        SID(1, 5, (1 << 32,))
    # The binary form of a SID whose numbers use the top bit (signed packing would fail).
    big = SID(1, (1 << 47) + 1, (0xFFFFFFFF,))
    assert big.to_bytes() == bytes([1, 1]) + ((1 << 47) + 1).to_bytes(6, "big") + b"\xff\xff\xff\xff"
    assert SID.from_bytes(big.to_bytes()) == big


def test_a_truncated_sid_says_how_many_bytes_it_needs_and_has():
    from aclscan.errors import MalformedSID
    from aclscan.sd.sid import SID

    # Two bytes before it; SubAuthorityCount 2 needs 8 + 2 * 4 = 16 bytes; 12 follow offset 2.
    data = b"\0\0" + bytes([1, 2, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0])
    with pytest.raises(MalformedSID, match=r"^SID at offset 2 is truncated: SubAuthorityCount 2 needs 16 bytes, "
                                           r"12 remain$"):
        SID.from_bytes(data, 2)
