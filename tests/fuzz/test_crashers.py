"""Inputs the fuzzer found, kept as named tests.

No input has yet made a parser raise anything but an :class:`aclscan.errors.Error`
(see README, "Tests and benchmarks", for the figures). What the fuzzer did find are
descriptors that parse, round-trip byte for byte, and that SDDL then refuses deep in
the conditional-expression (callback ACE) and claim (resource attribute) decoders:
the first harness wrongly treated that refusal as a crash. They are in
``corpus/sd/refused-*.bin`` (named after the line of ``aclscan/sd/conditional.py``
that refuses them) and seed the fuzzer too. A crasher found later goes here as a
test named for what it breaks, with its bytes inline or in ``corpus/crashers/``.
"""

from __future__ import annotations

import pytest

from aclscan.errors import Error, MalformedDescriptor, SDDLError
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl, to_sddl
from tests.fuzz.seeds import CORPUS

REFUSED = sorted((CORPUS / "sd").glob("refused-*.bin"))


def test_the_refused_descriptors_are_there():
    assert len(REFUSED) >= 10


@pytest.mark.parametrize("path", REFUSED, ids=lambda p: p.stem)
def test_descriptor_sddl_refuses_is_kept_byte_for_byte(path):
    raw = path.read_bytes()
    descriptor = SecurityDescriptor.from_bytes(raw)
    assert descriptor.to_bytes() == raw
    with pytest.raises(Error) as refused:
        to_sddl(descriptor)
    assert isinstance(refused.value, (MalformedDescriptor, SDDLError))
    assert "\n" not in str(refused.value)


def test_an_ace_type_sddl_has_no_letters_for_is_refused_not_crashed():
    """ACE type 0x80 (no such type in MS-DTYP): the descriptor is read and kept, SDDL says no."""
    raw = bytearray(from_sddl("O:BAG:SYD:(A;;FA;;;SY)").to_bytes())
    # Canonical layout: 20-byte header, then the DACL (8-byte header), then its first ACE.
    assert raw[28] == 0  # AceType ACCESS_ALLOWED
    raw[28] = 0x80
    descriptor = SecurityDescriptor.from_bytes(bytes(raw))
    assert descriptor.to_bytes() == bytes(raw)
    with pytest.raises(SDDLError, match="0x80"):
        to_sddl(descriptor)


def test_a_boolean_claim_other_than_0_or_1_is_refused_by_sddl():
    """Found by the conditional-bytes fuzz test (tests/sd/test_conditional.py) once it checked
    its result: claim bytes with a TB value of 25769803779 were written as SDDL that
    claim_from_sddl then refused ("TB values must be 0 or 1"). The writer now refuses it."""
    from aclscan.sd.conditional import claim_from_sddl, claim_to_sddl

    # Name at offset 3, value type 6 (boolean), flags 0, one value at offset 0: its 8 bytes
    # read as 0x600000003.
    data = bytes.fromhex("0300000006000000000000000100000000000000")
    with pytest.raises(SDDLError, match="boolean"):
        claim_to_sddl(data)
    # 0 and 1 still round-trip.
    text = claim_to_sddl(claim_from_sddl('("flag",TB,0x0,1)'))
    assert text == '("flag",TB,0x0,1)'
