"""aclscan.sd.sid: SIDs in binary and string form (MS-DTYP 2.4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aclscan.errors import MalformedData, MalformedSID
from aclscan.sd.sid import SID

# S-1-5-32-544 (BUILTIN\Administrators) as Windows stores it.
BA_HEX = "01020000000000052000000020020000"
# S-1-5-21-2341207468-2645333676-3461800803-1001, the user SID of the Windows 10 test volumes.
USER_HEX = "010500000000000515000000acfd8b8bac96ac9d63e356cee9030000"


def test_builtin_administrators_from_bytes():
    sid = SID.from_bytes(bytes.fromhex(BA_HEX))
    assert sid.revision == 1
    assert sid.authority == 5
    assert sid.sub_authorities == (32, 544)
    assert str(sid) == "S-1-5-32-544"
    assert sid.byte_length == 16
    assert sid.rid == 544
    assert sid.prefix == SID(1, 5, (32,))
    assert not sid.is_domain_relative
    assert sid.to_bytes().hex() == BA_HEX


def test_domain_user_from_bytes_at_offset():
    data = b"\xaa" * 7 + bytes.fromhex(USER_HEX) + b"\xbb" * 3
    sid = SID.from_bytes(data, 7)
    assert str(sid) == "S-1-5-21-2341207468-2645333676-3461800803-1001"
    assert sid.sub_authorities == (21, 2341207468, 2645333676, 3461800803, 1001)
    assert sid.is_domain_relative
    assert sid.rid == 1001
    assert str(sid.prefix) == "S-1-5-21-2341207468-2645333676-3461800803"
    assert sid.prefix.is_domain and not sid.prefix.is_domain_relative
    assert sid.to_bytes().hex() == USER_HEX


def test_sid_without_sub_authorities():
    sid = SID.from_bytes(bytes.fromhex("0100000000000005"))
    assert str(sid) == "S-1-5"
    assert sid.rid is None and sid.prefix is None
    assert SID.from_string("S-1-5") == sid


@pytest.mark.parametrize(
    ("authority_bytes", "text"),
    [
        # Windows prints authorities below 2**32 in decimal (Wine's test_sid, run on Windows).
        ("000033445566", "S-1-860116326-1"),
        ("000001020304", "S-1-16909060-1"),
        ("000000000102", "S-1-258-1"),
        ("00000000000c", "S-1-12-1"),
        # ... and from 2**32 on as 0x plus 12 lower-case hex digits (RtlConvertSidToUnicodeString).
        ("010203040506", "S-1-0x010203040506-1"),
        ("0000ffffffff", "S-1-4294967295-1"),
        ("000100000000", "S-1-0x000100000000-1"),
    ],
)
def test_authority_text_form(authority_bytes, text):
    raw = bytes.fromhex("0101" + authority_bytes + "01000000")
    sid = SID.from_bytes(raw)
    assert str(sid) == text
    assert SID.from_string(text) == sid
    assert sid.to_bytes() == raw


def test_string_forms_accepted_on_input():
    assert SID.from_string("S-1-0x5-18") == SID(1, 5, (18,))  # hex authority below 2**32
    assert SID.from_string("S-1-0X010203040506") == SID(1, 0x010203040506, ())
    assert SID.from_string("s-1-5-18") == SID(1, 5, (18,))
    assert SID.from_string(" S-1-5-18 ") == SID(1, 5, (18,))


def test_equal_hashable_and_memoised():
    from_bytes = SID.from_bytes(bytes.fromhex(BA_HEX))
    from_text = SID.from_string("S-1-5-32-544")
    built = SID(1, 5, [32, 544])  # a list becomes a tuple
    assert from_bytes == from_text == built
    assert len({from_bytes, from_text, built}) == 1
    assert built.sub_authorities == (32, 544)
    # The same bytes parse to the very same object: scanners parse the same SIDs over and over.
    assert SID.from_bytes(bytes.fromhex(BA_HEX)) is from_bytes
    assert repr(from_text) == "SID('S-1-5-32-544')"


@pytest.mark.parametrize(
    ("hex_bytes", "message"),
    [
        ("0102000000", "truncated"),  # header cut short
        ("010200000000000520000000", "truncated"),  # second sub-authority missing
        ("011000000000000520000000" + "00" * 60, "SubAuthorityCount 16"),
        ("01ff0000000000052000000020020000", "SubAuthorityCount 255"),
        ("02020000000000052000000020020000", "revision 2"),
        ("", "truncated"),
    ],
)
def test_bad_bytes(hex_bytes, message):
    with pytest.raises(MalformedSID, match=message) as info:
        SID.from_bytes(bytes.fromhex(hex_bytes))
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MalformedData)


def test_offset_past_the_end():
    with pytest.raises(MalformedSID, match="truncated"):
        SID.from_bytes(bytes.fromhex(BA_HEX), 12)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "S-1",
        "S-1-",
        "S-1-5-",
        "S-1-5-x",
        "S-1-5--18",
        "BA",
        "S-2-5-18",
        "S-1-5-4294967296",  # sub-authority past 32 bits
        "S-1-281474976710656-1",  # authority past 48 bits
        "S-1-0x1234567890123-1",  # 13 hex digits
        "S-1-5" + "-1" * 16,  # 16 sub-authorities
    ],
)
def test_bad_strings(text):
    with pytest.raises(MalformedSID) as info:
        SID.from_string(text)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"revision": 2, "authority": 5},
        {"authority": -1},
        {"authority": 1 << 48},
        {"authority": 5, "sub_authorities": (1 << 32,)},
        {"authority": 5, "sub_authorities": (-1,)},
        {"authority": 5, "sub_authorities": tuple(range(16))},
    ],
)
def test_bad_constructor_values(kwargs):
    with pytest.raises(MalformedSID):
        SID(**kwargs)


sids = st.builds(
    SID,
    revision=st.just(1),
    authority=st.one_of(st.integers(0, 20), st.integers(0, (1 << 48) - 1)),
    sub_authorities=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
)


@settings(max_examples=200)
@given(sids)
def test_text_and_bytes_round_trip(sid):
    text = str(sid)
    assert SID.from_string(text) == sid
    raw = sid.to_bytes()
    assert len(raw) == sid.byte_length == 8 + 4 * len(sid.sub_authorities)
    assert SID.from_bytes(raw) == sid
    assert SID.from_bytes(b"\0" * 3 + raw, 3) == sid
    # The text form follows MS-DTYP 2.4.2.1: hex authority exactly from 2**32 on.
    assert ("-0x" in text) == (sid.authority >= 1 << 32)


@settings(max_examples=200)
@given(st.binary(max_size=80))
def test_random_bytes_parse_or_raise_malformed_sid(data):
    try:
        sid = SID.from_bytes(data)
    except MalformedSID:
        return
    assert data[: sid.byte_length] == sid.to_bytes()


@pytest.mark.parametrize("text, message", [
    ("S-1-5-21-\u0661-2-3-4", "not a SID string"),  # ARABIC-INDIC DIGIT ONE: int() would take it
    ("S-1-5-21-\uff11-2-3-4", "not a SID string"),  # FULLWIDTH DIGIT ONE
    ("S-\u0661-5-18", "not a SID string"),
    ("S-1-\u0665-18", "not a SID string"),
    ("S-1-4294967296-1", "a decimal identifier authority must be below 2**32"),
    ("S-1-0x1000000000000-1", "not a SID string"),  # 13 hex digits: over 48 bits
    ("S-1-5-4294967296", "does not fit in 32 bits"),
    ("S-1-5-" + "9" * 5000, "not a SID string"),  # no huge int is made
    ("S-1-5-18\u2028", "not a SID string"),
    ("S-1-5" + "-1" * 16, "at most 15 are allowed"),
])
def test_strict_text_form(text, message):
    with pytest.raises(MalformedSID) as exc:
        SID.from_string(text)
    assert message in str(exc.value)
    assert len(str(exc.value)) < 200


def test_largest_values_of_each_part():
    assert str(SID.from_string("S-1-4294967295-4294967295")) == "S-1-4294967295-4294967295"
    assert str(SID.from_string("S-1-0xFFFFFFFFFFFF-0")) == "S-1-0xffffffffffff-0"
