"""Conditional ACE expressions and resource attribute claims (aclscan.sd.conditional).

Binary inputs are assembled by hand here with the small encoder below, which
follows MS-DTYP 2.4.4.17 (tokens) and 2.4.10.1 (claims) independently of the
module under test. WINDOWS_VECTORS are ApplicationData bytes that Windows
produced for the SDDL beside them; the SDDL is the canonical form Windows
writes back (publicly recorded Windows captures, e.g. in Samba's test data).
"""

from __future__ import annotations

import re
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aclscan.errors import MalformedDescriptor, SDDLError
from aclscan.sd.conditional import (
    claim_from_sddl,
    claim_to_sddl,
    conditional_from_sddl,
    conditional_to_sddl,
)

# ---------------------------------------------------------------------------
# Hand assembler
# ---------------------------------------------------------------------------

POS, NEG, NONE = 1, 2, 3
OCT, DEC, HEX = 1, 2, 3

OPS = {
    "==": 0x80, "!=": 0x81, "<": 0x82, "<=": 0x83, ">": 0x84, ">=": 0x85,
    "Contains": 0x86, "Exists": 0x87, "Any_of": 0x88, "Member_of": 0x89,
    "Device_Member_of": 0x8A, "Member_of_Any": 0x8B, "Device_Member_of_Any": 0x8C,
    "Not_Exists": 0x8D, "Not_Contains": 0x8E, "Not_Any_of": 0x8F,
    "Not_Member_of": 0x90, "Not_Device_Member_of": 0x91, "Not_Member_of_Any": 0x92,
    "Not_Device_Member_of_Any": 0x93, "&&": 0xA0, "||": 0xA1, "!": 0xA2,
}
UNARY = ["Exists", "Not_Exists", "Member_of", "Device_Member_of", "Member_of_Any",
         "Device_Member_of_Any", "Not_Member_of", "Not_Device_Member_of",
         "Not_Member_of_Any", "Not_Device_Member_of_Any", "!"]
BINARY = ["==", "!=", "<", "<=", ">", ">=", "Contains", "Any_of", "Not_Contains",
          "Not_Any_of", "&&", "||"]


def op(name: str) -> bytes:
    return bytes([OPS[name]])


def i64(value: int, sign: int = NONE, base: int = DEC, code: int = 0x04) -> bytes:
    return bytes([code]) + struct.pack("<qBB", value, sign, base)


def _sized(code: int, payload: bytes) -> bytes:
    return bytes([code]) + struct.pack("<I", len(payload)) + payload


def ustr(text: str) -> bytes:
    return _sized(0x10, text.encode("utf-16-le", "surrogatepass"))


def octets(data: bytes) -> bytes:
    return _sized(0x18, data)


def comp(*items: bytes) -> bytes:
    return _sized(0x50, b"".join(items))


def raw_sid(authority: int, *subs: int) -> bytes:
    return bytes([1, len(subs)]) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def sid(authority: int, *subs: int) -> bytes:
    return _sized(0x51, raw_sid(authority, *subs))


def local(name: str) -> bytes:
    return _sized(0xF8, name.encode("utf-16-le", "surrogatepass"))


def user(name: str) -> bytes:
    return _sized(0xF9, name.encode("utf-16-le", "surrogatepass"))


def resource(name: str) -> bytes:
    return _sized(0xFA, name.encode("utf-16-le", "surrogatepass"))


def device(name: str) -> bytes:
    return _sized(0xFB, name.encode("utf-16-le", "surrogatepass"))


def expr(*tokens: bytes) -> bytes:
    body = b"artx" + b"".join(tokens)
    return body + bytes(-len(body) % 4)


BA = sid(5, 32, 544)
WD = sid(1, 0)
SY = sid(5, 18)


def roundtrip(data: bytes, text: str) -> None:
    assert conditional_to_sddl(data) == text
    assert conditional_from_sddl(text) == data


# ---------------------------------------------------------------------------
# Binary written by Windows
# ---------------------------------------------------------------------------

WINDOWS_VECTORS = [
    ('(@USER.Title == "PM")',
     "61727478f90a0000005400690074006c006500100400000050004d0080000000"),
    ('(a == 1)',
     "61727478f802000000610004010000000000000003028000"),
    ('(Device_Member_of {SID(BA)})',
     "6172747850150000005110000000010200000000000520000000200200008a00"),
    ('(!(!(Member_of {SID(AA)})))',
     "61727478501500000051100000000102000000000005200000004302000089a2a2000000"),
    ('(@DEVICE.bb == 0x7fffffffffffffff)',
     "61727478fb040000006200620004ffffffffffffff7f030380000000"),
    ('(((@USER.A) && (@DEVICE.B)) || (@USER.C))',
     "61727478f9020000004100fb020000004200a0f9020000004300a100"),
    ('((@USER.A) || ((@DEVICE.B) && (@USER.C)))',
     "61727478f9020000004100fb020000004200f9020000004300a0a100"),
    ('(Member_of SID(WD))',
     "61727478510c000000010100000000000100000000890000"),
    ('(Member_of_any {SID(AS), SID(WD)})',
     "617274785022000000510c000000010100000000001201000000510c0000000101000000000001000000008b"),
    ('(OctetStringType == #01020300)',
     "61727478f81e0000004f00630074006500740053007400720069006e006700540079007000650018040000000102030080000000"),
    ('(@DEVICE.colour == {"orange", "blue"})',
     "61727478fb0c00000063006f006c006f0075007200501e000000100c0000006f00720061006e0067006500100800000062006c007500650080000000"),
    ('(!(@USER.Project Not_Any_of 1))',
     "61727478f90e000000500072006f006a0065006300740004010000000000000003028fa2"),
    ('((Member_of {SID(S-1-999-777-7-7), SID(BO)}) && (@DEVICE.Bitlocker))',
     "61727478502e000000511400000001030000000003e709030000070000000700000051100000000102000000000005200000002702000089fb120000004200690074006c006f0063006b0065007200a0"),
    ('(@USER.Project Any_of @RESOURCE.Project)',
     "61727478f90e000000500072006f006a00650063007400fa0e000000500072006f006a006500630074008800"),
    # The example of the Windows documentation ("Security Descriptor
    # Definition Language for Conditional ACEs").
    ('((@USER.Title == "PM") && ((@USER.Division == "Finance") || (@USER.Division == "Sales")))',
     "61727478f90a0000005400690074006c006500100400000050004d0080f9100000004400690076006900730069006f006e00100e000000460069006e0061006e006300650080f9100000004400690076006900730069006f006e00100a000000530061006c006500730080a1a0000000"),
    ('(@USER.ad://ext/AuthenticationSilo == "siloname")',
     "61727478f936000000610064003a002f002f006500780074002f00410075007400680065006e007400690063006100740069006f006e00530069006c006f001010000000730069006c006f006e0061006d00650080000000"),
]


@pytest.mark.parametrize("text,hexdata", WINDOWS_VECTORS, ids=[t for t, _ in WINDOWS_VECTORS])
def test_windows_vectors_both_ways(text, hexdata):
    data = bytes.fromhex(hexdata)
    assert conditional_to_sddl(data) == text
    assert conditional_from_sddl(text) == data


# Text as people (or Windows documentation) write it -> Windows' canonical form.
NON_CANONICAL = [
    ('(@User.Title==\"PM\" && (@User.Division==\"Finance\" || @User.Division ==\"Sales\"))',
     '((@USER.Title == "PM") && ((@USER.Division == "Finance") || (@USER.Division == "Sales")))'),
    ("(@USER.A && @Device.B && @USER.C)", "(((@USER.A) && (@DEVICE.B)) && (@USER.C))"),
    ("(@USER.A && @Device.B || @USER.C)", "(((@USER.A) && (@DEVICE.B)) || (@USER.C))"),
    ("(@USER.A || @Device.B && @USER.C)", "((@USER.A) || ((@DEVICE.B) && (@USER.C)))"),
    ("(!(! (Member_of{SID(AA)})))", "(!(!(Member_of {SID(AA)})))"),
    ("(OctetStringType==##1#2#3##)", "(OctetStringType == #01020300)"),
    ("(Member_of(SID(S-1-1-0)))", "(Member_of SID(WD))"),
    ("(mEMBER_of{SID(S-1-1-0)})", "(Member_of {SID(WD)})"),
    ("(Member_of_Any{SID(AS),SID(WD)})", "(Member_of_any {SID(AS), SID(WD)})"),
    ("(Device_Member_of{SID(BA)} && Member_of{SID(WD)})",
     "((Device_Member_of {SID(BA)}) && (Member_of {SID(WD)}))"),
    ("(@User.Project Any_of @Resource.Project)", "(@USER.Project Any_of @RESOURCE.Project)"),
    ("  ( x  ==1 )  ", "(x == 1)"),
    ("(@user.x==1 &&(@user.x >@user.x ) )", "((@USER.x == 1) && (@USER.x > @USER.x))"),
    ("(17pq == 3||2a==@USER.7)", "((17pq == 3) || (2a == @USER.7))"),
    ("(a == @User.a)", "(a == @USER.a)"),
    ("(x Any_of {\"a\",\"b\"  ,  \"c\"})", '(x Any_of {"a", "b", "c"})'),
    ("(@Device.%025cɜ == 3)", "(@DEVICE.%025c%025c == 3)"),
    ("(@User.%0041 == 1)", "(@USER.A == 1)"),
    ("(Member_of {SID(s-1-5-32-544)})", "(Member_of {SID(BA)})"),
    ("(@User.x == SID(ba))", "(@USER.x == SID(BA))"),
]


@pytest.mark.parametrize("given_text,canonical", NON_CANONICAL)
def test_non_canonical_text_is_rewritten_like_windows(given_text, canonical):
    data = conditional_from_sddl(given_text)
    assert conditional_to_sddl(data) == canonical
    assert conditional_from_sddl(canonical) == data


# ---------------------------------------------------------------------------
# Hand-assembled expressions, one feature at a time
# ---------------------------------------------------------------------------


def test_member_of_builtin_admins():
    roundtrip(expr(comp(BA), op("Member_of")), "(Member_of {SID(BA)})")


def test_title_and_project_any_of():
    data = expr(
        user("Title"), ustr("PM"), op("=="),
        resource("Project"), comp(ustr("A"), ustr("B")), op("Any_of"),
        op("&&"),
    )
    roundtrip(data, '((@USER.Title == "PM") && (@RESOURCE.Project Any_of {"A", "B"}))')


@pytest.mark.parametrize("name", list(OPS))
def test_every_operator(name):
    if name in ("&&", "||"):
        data = expr(user("a"), device("b"), op(name))
        text = f"((@USER.a) {name} (@DEVICE.b))"
    elif name == "!":
        data = expr(user("a"), op("!"))
        text = "(!(@USER.a))"
    elif name in ("Exists", "Not_Exists"):
        data = expr(local("x"), op(name))
        text = f"({name} x)"
    elif name in UNARY:
        data = expr(comp(SY, BA), op(name))
        written = "Member_of_any" if name == "Member_of_Any" else name
        text = f"({written} {{SID(SY), SID(BA)}})"
    else:
        data = expr(user("x"), i64(5), op(name))
        text = f"(@USER.x {name} 5)"
    roundtrip(data, text)


@pytest.mark.parametrize(
    "token,text",
    [
        (i64(0), "0"),
        (i64(42), "42"),
        (i64(-42, NEG), "-42"),
        (i64(42, POS), "+42"),
        (i64(0, NEG), "-0"),
        (i64(0x1F, NONE, HEX), "0x1f"),
        (i64(0, NONE, HEX), "0x0"),
        (i64(-31, NEG, HEX), "-0x1f"),
        (i64(31, POS, HEX), "+0x1f"),
        (i64(8, NONE, OCT), "010"),
        (i64(0, NONE, OCT), "00"),
        (i64(-8, NEG, OCT), "-010"),
        (i64(8, POS, OCT), "+010"),
        (i64(-1, NONE, HEX), "0xffffffffffffffff"),
        (i64(-1, NONE, OCT), "01777777777777777777777"),
        (i64(-(1 << 63), NEG), "-9223372036854775808"),
        (i64(-(1 << 63), NEG, HEX), "-0x8000000000000000"),
        (i64((1 << 63) - 1), "9223372036854775807"),
        (i64(0xFFFFFFFF, NONE, HEX), "0xffffffff"),
    ],
)
def test_integer_literals_keep_sign_and_base(token, text):
    roundtrip(expr(user("n"), token, op("==")), f"(@USER.n == {text})")


@pytest.mark.parametrize("code", [0x01, 0x02, 0x03])
def test_short_integer_tokens_are_read_and_written_back_as_int64(code):
    data = expr(user("n"), i64(-7, NEG, DEC, code), op("<"))
    assert conditional_to_sddl(data) == "(@USER.n < -7)"
    assert conditional_from_sddl("(@USER.n < -7)") == expr(user("n"), i64(-7, NEG), op("<"))


def test_sign_byte_that_disagrees_with_the_value_yields_to_the_value():
    assert conditional_to_sddl(expr(user("n"), i64(-5, NONE), op("=="))) == "(@USER.n == -5)"
    assert conditional_to_sddl(expr(user("n"), i64(-5, POS), op("=="))) == "(@USER.n == -5)"
    assert conditional_to_sddl(expr(user("n"), i64(5, NEG), op("=="))) == "(@USER.n == 5)"


def test_strings_octets_and_nested_composites():
    data = expr(
        local("v"),
        comp(ustr(""), ustr("päivä ✓ 😀"), octets(b""), octets(b"\x00\xab\xff"),
             comp(i64(1), comp()), SY),
        op("=="),
    )
    roundtrip(data, '(v == {"", "päivä ✓ 😀", #, #00ABFF, {1, {}}, SID(SY)})')


def test_sids_with_aliases_and_numeric():
    data = expr(
        comp(sid(5, 21, 1, 2, 3, 500), sid(5, 32, 579), sid(18, 1), sid(5, 84, 0, 0, 0, 0, 0),
             sid(16, 12288), sid(0x100000000, 7), sid(5)),
        op("Not_Member_of_Any"),
    )
    roundtrip(
        data,
        "(Not_Member_of_Any {SID(S-1-5-21-1-2-3-500), SID(AA), SID(AS), SID(UD), SID(HI),"
        " SID(S-1-0x000100000000-7), SID(S-1-5)})",
    )


def test_attribute_names_are_escaped_like_windows():
    data = expr(user("a b!\"&()<=>|%\x16é"), device("x:y/z._@1"), op("=="))
    roundtrip(
        data,
        "(@USER.a%0020b%0021%0022%0026%0028%0029%003c%003d%003e%007c%0025%0016%00e9"
        " == @DEVICE.x:y/z._@1)",
    )


def test_non_bmp_and_lone_surrogate_names_survive():
    roundtrip(expr(resource("😀"), op("Exists")), "(Exists @RESOURCE.%d83d%de00)")
    roundtrip(expr(resource("\ud800"), op("Exists")), "(Exists @RESOURCE.%d800)")


def test_local_attribute_names_in_windows_use():
    roundtrip(expr(local("WIN://SYSAPPID"), comp(ustr("x")), op("Contains")),
              '(WIN://SYSAPPID Contains {"x"})')
    roundtrip(expr(local("APPID://PATH"), ustr("%OSDRIVE%\\*"), op("==")),
              '(APPID://PATH == "%OSDRIVE%\\*")')


def test_bare_attributes_and_not_of_exists():
    data = expr(user("smartcard"), device("managed"), op("Not_Exists"), op("!"), op("||"))
    roundtrip(data, "((@USER.smartcard) || (!(Not_Exists @DEVICE.managed)))")


def test_left_assoc_relational_chain_and_unusual_operands():
    # (a == b) == c ; a literal on the left ; Exists under a relational operator
    roundtrip(expr(local("a"), local("b"), op("=="), local("c"), op("==")), "((a == b) == c)")
    roundtrip(expr(i64(1), i64(2), op("<")), "(1 < 2)")
    roundtrip(expr(user("a"), op("Exists"), i64(1), op("==")), "(Exists @USER.a == 1)")
    roundtrip(expr(user("a"), user("b"), op("Exists"), op("==")), "(@USER.a == Exists @USER.b)")
    roundtrip(expr(user("a"), op("!"), i64(1), op("==")), "((!(@USER.a)) == 1)")
    roundtrip(expr(user("a"), op("!"), op("Exists")), "(Exists (!(@USER.a)))")
    roundtrip(expr(BA), "(SID(BA))")


def test_trailing_padding_is_optional_for_reading():
    data = expr(user("A"), user("B"), op("&&"))
    unpadded = data.rstrip(b"\0")
    assert conditional_to_sddl(unpadded) == conditional_to_sddl(data) == "((@USER.A) && (@USER.B))"
    assert conditional_to_sddl(data + bytes(8)) == "((@USER.A) && (@USER.B))"
    assert conditional_to_sddl(bytearray(data)) == conditional_to_sddl(memoryview(data))


def test_output_is_padded_to_a_multiple_of_four():
    for text in ["(a)", "(ab)", "(abc)", "(abcd)", "(a == 1)", '(@USER.x == "y")']:
        data = conditional_from_sddl(text)
        assert data[:4] == b"artx" and len(data) % 4 == 0


def test_very_deep_expressions_do_not_recurse():
    depth = 5000
    data = expr(user("x"), *(op("!") for _ in range(depth)))
    text = conditional_to_sddl(data)
    assert text == "(!" * depth + "(@USER.x)" + ")" * depth
    assert conditional_from_sddl(text) == data


# ---------------------------------------------------------------------------
# Malformed bytes and text
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"art",
        b"xtra" + user("a"),
        b"ARTX" + user("a"),
    ],
)
def test_bad_signature(data):
    with pytest.raises(MalformedDescriptor, match="artx"):
        conditional_to_sddl(data)


@pytest.mark.parametrize(
    "tokens",
    [
        i64(1)[:-1],  # no base byte
        i64(1)[:5],
        bytes([0x10, 4, 0, 0]),  # length field cut
        bytes([0x10, 4, 0, 0, 0, 0x41, 0]),  # 2 of 4 bytes
        octets(b"\x01\x02")[:-1],
        sid(5, 18)[:-2],
        bytes([0x51, 4, 0, 0, 0, 1, 1, 0, 0]),  # SID shorter than its header
        comp(i64(1), i64(2))[:-3],
        user("abc")[:-1],
        bytes([0xF9]),
    ],
)
def test_truncated_tokens(tokens):
    with pytest.raises(MalformedDescriptor):
        conditional_to_sddl(b"artx" + tokens)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"artx" + bytes([0x42]), "unknown token 0x42"),
        (b"artx" + user("a") + bytes([0x94]), "unknown token 0x94"),
        (b"artx" + user("a") + bytes([0xA3]), "unknown token"),
        (b"artx" + op("=="), "lacks an operand"),
        (b"artx" + user("a") + op("=="), "lacks an operand"),
        (b"artx" + op("!"), "no operand"),
        (b"artx" + user("a") + user("b"), "2 values"),
        (b"artx", "empty"),
        (b"artx\0\0\0\0", "empty"),
        (b"artx" + user("a") + b"\0\x80", "non-zero byte after the padding"),
        (b"artx" + comp(user("a")), "only literals"),
        (b"artx" + comp(i64(1), op("!")), "only literals"),
        (b"artx" + _sized(0x51, raw_sid(5, 18) + b"\0\0\0\0"), "holds a 12-byte SID"),
        (b"artx" + _sized(0x51, b"\x02\x01" + bytes(10)), "revision"),
        (b"artx" + _sized(0x51, bytes([1, 16]) + bytes(70)), "SubAuthorityCount 16"),
        (b"artx" + _sized(0x10, b"abc"), "odd length"),
        (b"artx" + user("a") + b"\x04" + struct.pack("<qBB", 1, 4, 2) + op("=="), "sign byte"),
        (b"artx" + user("a") + b"\x04" + struct.pack("<qBB", 1, 3, 0) + op("=="), "base byte"),
        (b"artx" + user("a") + _sized(0x50, comp(comp(comp()))[:-1]) + op("=="), "claims 10 bytes but only 9"),
    ],
)
def test_malformed_binary(data, message):
    with pytest.raises(MalformedDescriptor, match=message):
        conditional_to_sddl(data)


def test_absurd_composite_nesting_is_refused():
    nested = comp()
    for _ in range(40):
        nested = comp(nested)
    with pytest.raises(MalformedDescriptor, match="nested deeper"):
        conditional_to_sddl(expr(user("a"), nested, op("==")))


@pytest.mark.parametrize(
    "data",
    [
        expr(user("a"), ustr('say "hi"'), op("==")),  # SDDL strings have no escapes
        expr(local("a b"), op("Exists")),  # not an attr-char1 name
        expr(local(""), op("Exists")),
        expr(local("Exists"), op("Exists")),  # would read back as the operator
        expr(local("17"), op("Exists")),  # would read back as an integer
        expr(user(""), op("Exists")),
        expr(user("a\0b"), op("Exists")),
    ],
)
def test_valid_binary_that_sddl_cannot_write(data):
    with pytest.raises(SDDLError):
        conditional_to_sddl(data)


@pytest.mark.parametrize(
    "text,message",
    [
        ("(a == 1", "missing '\\)'"),
        ("((a == 1)", "missing '\\)'"),
        ("(a == 1))", "after the closing"),
        ("(a == 1) && (b == 2)", "after the closing"),
        ("a == 1", "enclosed in parentheses"),
        ("", "enclosed in parentheses"),
        ("()", "missing operand"),
        ("(a ==)", "missing operand"),
        ("(!)", "missing operand"),
        ("(Member_of)", "missing operand"),
        ("(a = 1)", "unknown operator"),
        ("(a ~= 1)", "unknown operator"),
        ("(a Equals 1)", "unknown operator"),
        ("(a & b)", "unknown operator"),
        ("(a b)", "unknown operator"),
        ('(a == "abc)', "unterminated string"),
        ("(a == #123)", "odd number"),
        ("(a == SID(S-1-5-32-544)", "missing '\\)'"),
        ("(a == SID(XX))", "unknown SID alias"),
        ("(a == SID(DA))", "relative to a domain"),
        ("(a == SID(S-2-5-32))", "bad SID"),
        ("(a == SID(foo))", "unknown SID alias"),
        ("(@Token.x == 1)", "@User., @Device. or @Resource."),
        ("(@User. == 1)", "empty attribute name"),
        ("(@User.a%00 == 1)", "%-escape"),
        ("(@User.a%zzzz == 1)", "%-escape"),
        ("(@User.a%0000 == 1)", "NUL"),
        ("(a == 99999999999999999999)", "64-bit range"),
        ("(a == -9223372036854775809)", "64-bit range"),
        ("(a == 0x10000000000000000)", "64-bit range"),
        ("(a == {1, 2)", "expected ',' or '}'"),
        ("(a == {1 2})", "expected ',' or '}'"),
        ("(a == {x})", "expected a literal"),
        ("(a == -)", "expected an integer"),
        ("(a == ?)", "unexpected character"),
    ],
)
def test_malformed_text(text, message):
    with pytest.raises(SDDLError, match=message):
        conditional_from_sddl(text)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        conditional_from_sddl("(")
    with pytest.raises(ValueError):
        conditional_to_sddl(b"nope")
    with pytest.raises(TypeError):
        conditional_to_sddl("artx")
    with pytest.raises(TypeError):
        conditional_from_sddl(b"(a)")


# ---------------------------------------------------------------------------
# Resource attribute claims
# ---------------------------------------------------------------------------


def claim(name: str, value_type: int, flags: int, values: list[bytes]) -> bytes:
    """CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1 laid out as Windows lays it out."""
    name_offset = 16 + 4 * len(values)
    body = name.encode("utf-16-le", "surrogatepass") + b"\0\0"
    offsets = []
    for value in values:
        offsets.append(name_offset + len(body))
        body += value
    out = struct.pack("<IHHII", name_offset, value_type, 0, flags, len(values))
    out += struct.pack(f"<{len(values)}I", *offsets) + body
    return out + bytes(-len(out) % 4)


def cstr(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass") + b"\0\0"


def blob(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


CLAIM_CASES = [
    (claim("Secrecy", 1, 0, [struct.pack("<q", 3), struct.pack("<q", -(1 << 63))]),
     '("Secrecy",TI,0x0,3,-9223372036854775808)'),
    (claim("Level", 2, 0x12, [struct.pack("<Q", (1 << 64) - 1), struct.pack("<Q", 0)]),
     '("Level",TU,0x12,18446744073709551615,0)'),
    (claim("Project", 3, 0x2, [cstr("Windows"), cstr("SQL"), cstr("")]),
     '("Project",TS,0x2,"Windows","SQL","")'),
    (claim("Owner", 5, 0, [blob(raw_sid(5, 32, 544)), blob(raw_sid(5, 21, 1, 2, 3, 1001))]),
     '("Owner",TD,0x0,BA,S-1-5-21-1-2-3-1001)'),
    (claim("Blob", 0x10, 0, [blob(b"\x00\x77"), blob(b"\xab"), blob(b"\x01\x02\x03")]),
     '("Blob",TX,0x0,0077,AB,010203)'),
    (claim("Flag", 6, 0x10000, [struct.pack("<Q", 1), struct.pack("<Q", 0)]),
     '("Flag",TB,0x10000,1,0)'),
    (claim("Empty", 3, 0, []), '("Empty",TS,0x0)'),
    (claim("Département x", 3, 0, [cstr("é")]), '("D%00e9partement%0020x",TS,0x0,"é")'),
]


@pytest.mark.parametrize("data,text", CLAIM_CASES, ids=[t for _, t in CLAIM_CASES])
def test_claims_of_each_type(data, text):
    assert claim_to_sddl(data) == text
    assert claim_from_sddl(text) == data


def test_claim_windows_vector_colour():
    # SACL resource attribute ACE written by Windows for ("colour",TS,0,"blue","red")
    windows = bytes.fromhex(
        "18000000030000000000000002000000260000003000000063006f006c006f0075007200"
        "000062006c00750065000000720065006400" + "0000"
    )
    assert claim_from_sddl('("colour",TS,0,"blue", "red")') == windows
    assert claim_to_sddl(windows) == '("colour",TS,0x0,"blue","red")'
    windows_one = bytes.fromhex(
        "140000000300000000000000010000002200000063006f006c006f007500720000006200"
        "6c00750065000000"
    )
    assert claim_from_sddl('("colour",TS,0,"blue")') == windows_one
    assert claim_to_sddl(windows_one) == '("colour",TS,0x0,"blue")'


def test_claim_windows_vector_octet_strings_with_escaped_name():
    # A resource attribute Windows wrote: 38 TX values, a name with 115
    # %0016-escaped characters. Offsets and total size are Windows' own.
    name = "colOIr" + "%0016" * 115 + "r"
    values = ("0077,00,0077,00,0077,00,00,00,0077,00,0077,"
              "00,0077,007777,007777,0077,007777,0077,007777,"
              "007770,0077,00,0077,00,00,00,0077,00,0077,00,"
              "0077,007777,007777,0077,007777,0077,007777,007777")
    data = claim_from_sddl(f'("{name}",TX,0x0,{values})')
    assert len(data) == 640  # ACE size 0x294 minus its 20-byte header, mask and SID
    assert struct.unpack_from("<IHHII", data) == (0xA8, 0x10, 0, 0, 38)
    windows_offsets = [
        0x19E, 0x1A4, 0x1A9, 0x1AF, 0x1B4, 0x1BA, 0x1BF, 0x1C4, 0x1C9, 0x1CF, 0x1D4, 0x1DA, 0x1DF,
        0x1E5, 0x1EC, 0x1F3, 0x1F9, 0x200, 0x206, 0x20D, 0x214, 0x21A, 0x21F, 0x225, 0x22A, 0x22F,
        0x234, 0x23A, 0x23F, 0x245, 0x24A, 0x250, 0x257, 0x25E, 0x264, 0x26B, 0x271, 0x278,
    ]
    assert list(struct.unpack_from("<38I", data, 16)) == windows_offsets
    assert data[0x19E:0x1A4] == b"\x02\0\0\0\x00\x77"
    assert data[0x278:] == b"\x03\0\0\0\x00\x77\x77\x00"  # last value, then one byte of padding
    assert claim_to_sddl(data) == f'("{name}",TX,0x0,{values})'


@pytest.mark.parametrize(
    "text,canonical",
    [
        (' ( "Project" , TS , 0 , "Windows" , "SQL" ) ', '("Project",TS,0x0,"Windows","SQL")'),
        ('("Secrecy",TU,0,3)', '("Secrecy",TU,0x0,3)'),
        ('("n",TI,0x0,0x10,-010,+7)', '("n",TI,0x0,16,-8,7)'),
        ('("n",ti,16,1)', '("n",TI,0x10,1)'),
        ('("n",TU,0x0,0xffffffffffffffff)', '("n",TU,0x0,18446744073709551615)'),
        ('("n",TD,0x0,SID(BA),wd,S-1-5-18)', '("n",TD,0x0,BA,WD,SY)'),
        ('("n",TX,0x0,abc,#1,##,F)', '("n",TX,0x0,0ABC,01,00,0F)'),
        ('("n",TB,0x0,0x1,0)', '("n",TB,0x0,1,0)'),
        ('("%0041%0062",TS,0x0,"x")', '("Ab",TS,0x0,"x")'),
    ],
)
def test_claim_text_forms(text, canonical):
    data = claim_from_sddl(text)
    assert claim_to_sddl(data) == canonical
    assert claim_from_sddl(canonical) == data


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "shorter than its 16-byte header"),
        (struct.pack("<IHHII", 16, 3, 0, 0, 1), "lists 1 values"),
        (struct.pack("<IHHII", 99, 3, 0, 0, 0), "beyond the attribute"),
        (struct.pack("<IHHII", 16, 3, 0, 0, 0) + b"a\0b\0", "no terminating NUL"),
        (struct.pack("<IHHII", 16, 3, 0, 0, 0) + b"\0\0", "empty name"),
        (struct.pack("<IHHII", 16, 3, 0, 0, 0) + b"a\0\0", "no terminating NUL"),
        (struct.pack("<IHHII", 16, 7, 0, 0, 0) + cstr("x"), "unknown value type 0x0007"),
        (claim("x", 1, 0, [b"\1\2\3"])[:-1], "truncated"),
        (claim("x", 3, 0, [b"a\0b\0"]), "no terminating NUL"),
        (claim("x", 5, 0, [struct.pack("<I", 99) + raw_sid(5, 18)]), "past the end"),
        (claim("x", 5, 0, [blob(raw_sid(5, 18) + b"\0")]), "holds a 12-byte SID"),
        (claim("x", 5, 0, [blob(b"\x01\x05" + bytes(6))]), "truncated"),
        (claim("x", 0x10, 0, [b"\1\0"]), "past the end"),
        (struct.pack("<IHHII", 20, 0x10, 0, 0, 1) + struct.pack("<I", 26) + cstr("x"), "truncated"),
    ],
)
def test_malformed_claim_bytes(data, message):
    with pytest.raises(MalformedDescriptor, match=message):
        claim_to_sddl(data)


@pytest.mark.parametrize(
    "data",
    [
        claim("fqbn", 4, 0, []),  # FQBN has no SDDL type letter
        claim("x", 0x10, 0, [blob(b"")]),
        claim("x", 3, 0, [cstr('a"b')]),
    ],
)
def test_claims_sddl_cannot_write(data):
    with pytest.raises(SDDLError):
        claim_to_sddl(data)


@pytest.mark.parametrize(
    "text,message",
    [
        ('"x",TS,0x0,"a")', "expected '\\('"),
        ('("x",TS,0x0,"a"', "expected ',' or '\\)'"),
        ('("x",TS,0x0,"a"))', "after the closing"),
        ('("x,TS,0x0)', "unterminated attribute name"),
        ('("",TS,0x0)', "empty attribute name"),
        ('("x",TZ,0x0)', "unknown attribute type"),
        ('("x",TS)', "expected ','"),
        ('("x",TS,-1)', "32-bit unsigned"),
        ('("x",TS,0x100000000)', "32-bit unsigned"),
        ('("x",TS,0x0,abc)', "quoted string"),
        ('("x",TS,0x0,"abc)', "unterminated string"),
        ('("x",TU,0x0,-1)', "must not be negative"),
        ('("x",TB,0x0,2)', "0 or 1"),
        ('("x",TI,0x0,9223372036854775808)', "64-bit range"),
        ('("x",TI,0x0,0xffffffffffffffff)', "signed 64-bit range"),
        ('("x",TI,0x0,abc)', "expected an integer"),
        ('("x",TD,0x0,)', "expected a SID"),
        ('("x",TD,0x0,DA)', "relative to a domain"),
        ('("x",TD,0x0,S-1-5-x)', "bad SID"),
        ('("x",TX,0x0,)', "hex digits"),
        ('("x",TX,0x0,0xAB)', "expected ',' or '\\)'"),
        ('("x",TS,0x0,"a" "b")', "expected ',' or '\\)'"),
    ],
)
def test_malformed_claim_text(text, message):
    with pytest.raises(SDDLError, match=message):
        claim_from_sddl(text)


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------

_KEYWORDS = {name.lower() for name in UNARY if name != "!"}
_INT_LIKE = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)")

local_names = st.from_regex(r"[A-Za-z_:./][A-Za-z0-9_:./@]{0,7}", fullmatch=True).filter(
    lambda n: n.lower() not in _KEYWORDS and not _INT_LIKE.fullmatch(n)
)
any_names = st.text(st.characters(blacklist_characters="\0"), min_size=1, max_size=6)
strings = st.text(st.characters(blacklist_characters='"'), max_size=6)


@st.composite
def integers(draw):
    value = draw(st.one_of(st.integers(-(1 << 63), (1 << 63) - 1), st.integers(-3, 3)))
    base = draw(st.sampled_from([OCT, DEC, HEX]))
    if value > 0:
        sign = draw(st.sampled_from([NONE, POS]))
    elif value == 0:
        sign = draw(st.sampled_from([NONE, POS, NEG]))
    else:
        sign = draw(st.sampled_from([NEG] if base == DEC else [NEG, NONE]))
    return i64(value, sign, base)


sids = st.one_of(
    st.sampled_from([BA, WD, SY, sid(5, 32, 579), sid(18, 1)]),
    st.builds(
        lambda auth, subs: sid(auth, *subs),
        st.integers(0, (1 << 48) - 1),
        st.lists(st.integers(0, 0xFFFFFFFF), max_size=6),
    ),
)
scalars = st.one_of(integers(), strings.map(ustr), st.binary(max_size=6).map(octets), sids)
literals = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3).map(lambda xs: comp(*xs)),
                        max_leaves=6)
attributes = st.one_of(
    local_names.map(local), any_names.map(user), any_names.map(device), any_names.map(resource)
)


def _extend(children):
    unary = st.builds(lambda c, name: c + op(name), children, st.sampled_from(UNARY))
    binary = st.builds(lambda a, b, name: a + b + op(name), children, children, st.sampled_from(BINARY))
    return st.one_of(unary, binary)


expressions = st.recursive(st.one_of(attributes, literals), _extend, max_leaves=12).map(expr)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_random_expression_trees_round_trip(data):
    text = conditional_to_sddl(data)
    assert conditional_from_sddl(text) == data
    assert conditional_to_sddl(conditional_from_sddl(text)) == text


@st.composite
def claims(draw):
    value_type = draw(st.sampled_from([1, 2, 3, 5, 6, 0x10]))
    value = {
        1: st.integers(-(1 << 63), (1 << 63) - 1).map(lambda v: struct.pack("<q", v)),
        2: st.integers(0, (1 << 64) - 1).map(lambda v: struct.pack("<Q", v)),
        3: st.text(st.characters(blacklist_characters='"\0'), max_size=5).map(cstr),
        5: sids.map(lambda token: token[1:]),  # the token's length + SID is the claim's blob
        6: st.integers(0, 1).map(lambda v: struct.pack("<Q", v)),
        0x10: st.binary(min_size=1, max_size=5).map(blob),
    }[value_type]
    name = draw(any_names)
    flags = draw(st.integers(0, 0xFFFFFFFF))
    return claim(name, value_type, flags, draw(st.lists(value, max_size=4)))


@settings(max_examples=300, deadline=None)
@given(claims())
def test_random_claims_round_trip(data):
    text = claim_to_sddl(data)
    assert claim_from_sddl(text) == data
    assert claim_to_sddl(claim_from_sddl(text)) == text


def _mutate(data: bytes, where: int, byte: int) -> bytes:
    where %= max(len(data), 1)
    return data[:where] + bytes([byte]) + data[where + 1 :]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=48).map(lambda tail: b"artx" + tail),
        st.builds(_mutate, expressions, st.integers(4, 200), st.integers(0, 255)),
    )
)
def test_garbage_expression_bytes_raise_only_our_errors(data):
    try:
        text = conditional_to_sddl(data)
    except (MalformedDescriptor, SDDLError):
        return
    # What was read is written as SDDL that reads back to the same expression.
    assert conditional_to_sddl(conditional_from_sddl(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.builds(_mutate, claims(), st.integers(0, 200), st.integers(0, 255))))
def test_garbage_claim_bytes_raise_only_our_errors(data):
    try:
        text = claim_to_sddl(data)
    except (MalformedDescriptor, SDDLError):
        return
    assert claim_to_sddl(claim_from_sddl(text)) == text


_PIECES = list('()!=<>&|@"#{},- ') + [
    "Member_of", "Exists", "SID(", "BA", "@User.", "x", "1", "0x", "%00", "Any_of", "S-1-5-",
    "TS", "TX", "TD", '"a"',
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=20).map("".join))
def test_garbage_text_raises_only_sddl_error(text):
    for parse, write in ((conditional_from_sddl, conditional_to_sddl), (claim_from_sddl, claim_to_sddl)):
        try:
            data = parse(text)
        except SDDLError:
            continue
        # Text that parses gives bytes that are written as SDDL and read back the same.
        assert parse(write(data)) == data
