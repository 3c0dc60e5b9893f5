"""Conditional ACE expressions and resource attribute claims, binary <-> SDDL.

Two kinds of data live at the tail of an ACE and have their own SDDL syntax:

* the ApplicationData of a callback ACE whose first four bytes are ``artx``
  (a *conditional ACE*, MS-DTYP 2.4.4.17): a postfix (reverse Polish) stream
  of one-byte tokens, literals and attribute references, shown in SDDL as a
  parenthesised infix expression (MS-DTYP 2.5.1.1);
* the attribute of a SYSTEM_RESOURCE_ATTRIBUTE_ACE, a
  CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1 (MS-DTYP 2.4.10.1), shown in SDDL as
  ``("Name",TYPE,FLAGS,value,...)``.

Public functions::

    conditional_to_sddl(data: bytes) -> str
    conditional_from_sddl(text: str) -> bytes
    claim_to_sddl(data: bytes) -> str
    claim_from_sddl(text: str) -> bytes

Bad bytes raise :class:`aclscan.errors.MalformedDescriptor`; bad text, and
binary content that SDDL has no way to write, raise
:class:`aclscan.errors.SDDLError`. Both are ``ValueError``.

Output follows what Windows writes (ConvertSecurityDescriptorToString-
SecurityDescriptor), as far as public captures of Windows output show it:

* every binary operation, and every ``Member_of``-family operation, is put in
  parentheses; the operands of ``&&``, ``||`` and ``!`` are put in parentheses
  when they have none of their own; the whole expression is parenthesised
  once: ``((@USER.A) && (@DEVICE.B))``, ``(!(Member_of {SID(BA)}))``;
* attribute prefixes are written in capitals (``@USER.``, ``@DEVICE.``,
  ``@RESOURCE.``); Windows reads them in any case;
* ``Member_of_Any`` is written ``Member_of_any``; operators are read in any case;
* SDDL text yields only 64-bit integer tokens (0x04); integers keep the sign
  and base recorded in the token (``-5``, ``+5``, ``0x1f``, ``017``);
* a SID literal is ``SID(alias)`` for the fixed well-known SIDs and
  ``SID(S-1-...)`` otherwise (the alias rules of :mod:`aclscan.sd.sddl`);
* octet strings are ``#`` + hex digits (upper case; no capture shows which
  case Windows uses); on input ``#`` inside the digits stands for ``0``, as
  Windows reads it (``##1#2#3##`` is ``#01020300``);
* in resource attributes, flags are ``0x`` + lower-case hex, SIDs are bare SID
  strings (``WD``, ``S-1-5-21-...``) and octet strings are bare hex digits
  without ``#``, as the MS-DTYP grammar (``TD-attr``, ``TX-attr``) and Windows
  output have them. ``SID(...)`` around a TD value is accepted on input; a TX
  value is read the Windows way (``#`` is a ``0`` digit, an odd number of
  digits gains a leading ``0``), so ``#0102`` is three bytes 00 01 02.

Reading is more lenient than writing in a few places that never matter for
text this module writes: extra whitespace, operands of unusual types (for
example a literal on the left of ``==``) and ``%XXXX`` escapes of characters
that could have been written literally.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from aclscan.errors import MalformedDescriptor, MalformedSID, SDDLError
from aclscan.sd.sddl import sid_from_sddl, sid_to_sddl
from aclscan.sd.sid import SID

__all__ = [
    "conditional_to_sddl",
    "conditional_from_sddl",
    "claim_to_sddl",
    "claim_from_sddl",
]

SIGNATURE = b"artx"

# ---------------------------------------------------------------------------
# Token byte codes (MS-DTYP 2.4.4.17.4 - 2.4.4.17.8)
# ---------------------------------------------------------------------------

_PADDING = 0x00
_INT8, _INT16, _INT32, _INT64 = 0x01, 0x02, 0x03, 0x04
_INT_CODES = (_INT8, _INT16, _INT32, _INT64)
_UNICODE = 0x10
_OCTETS = 0x18
_COMPOSITE = 0x50
_SID = 0x51
_LITERAL_CODES = frozenset((*_INT_CODES, _UNICODE, _OCTETS, _COMPOSITE, _SID))

_LOCAL_ATTR, _USER_ATTR, _RESOURCE_ATTR, _DEVICE_ATTR = 0xF8, 0xF9, 0xFA, 0xFB
_ATTR_CODES = frozenset((_LOCAL_ATTR, _USER_ATTR, _RESOURCE_ATTR, _DEVICE_ATTR))
_ATTR_PREFIX = {_USER_ATTR: "@USER.", _DEVICE_ATTR: "@DEVICE.", _RESOURCE_ATTR: "@RESOURCE."}
_ATTR_CLASS_BY_NAME = {"user": _USER_ATTR, "device": _DEVICE_ATTR, "resource": _RESOURCE_ATTR}

# Relational operators with two operands.
_EQ, _NE, _LT, _LE, _GT, _GE = 0x80, 0x81, 0x82, 0x83, 0x84, 0x85
_CONTAINS, _ANY_OF, _NOT_CONTAINS, _NOT_ANY_OF = 0x86, 0x88, 0x8E, 0x8F
# Membership operators with one operand (a SID or a composite of SIDs).
_MEMBER_OF, _DEVICE_MEMBER_OF, _MEMBER_OF_ANY, _DEVICE_MEMBER_OF_ANY = 0x89, 0x8A, 0x8B, 0x8C
_NOT_MEMBER_OF, _NOT_DEVICE_MEMBER_OF = 0x90, 0x91
_NOT_MEMBER_OF_ANY, _NOT_DEVICE_MEMBER_OF_ANY = 0x92, 0x93
# Logical operators.
_EXISTS, _NOT_EXISTS = 0x87, 0x8D
_AND, _OR, _NOT = 0xA0, 0xA1, 0xA2

_MEMBER_OPS = frozenset(
    (
        _MEMBER_OF,
        _DEVICE_MEMBER_OF,
        _MEMBER_OF_ANY,
        _DEVICE_MEMBER_OF_ANY,
        _NOT_MEMBER_OF,
        _NOT_DEVICE_MEMBER_OF,
        _NOT_MEMBER_OF_ANY,
        _NOT_DEVICE_MEMBER_OF_ANY,
    )
)
_PREFIX_OPS = _MEMBER_OPS | {_EXISTS, _NOT_EXISTS}  # written "Name operand"
_UNARY_OPS = _PREFIX_OPS | {_NOT}
_RELATIONAL_OPS = frozenset(
    (_EQ, _NE, _LT, _LE, _GT, _GE, _CONTAINS, _ANY_OF, _NOT_CONTAINS, _NOT_ANY_OF)
)
_BINARY_OPS = _RELATIONAL_OPS | {_AND, _OR}
_LOGICAL_OPS = frozenset((_AND, _OR, _NOT))

_OP_NAMES = {
    _EQ: "==",
    _NE: "!=",
    _LT: "<",
    _LE: "<=",
    _GT: ">",
    _GE: ">=",
    _CONTAINS: "Contains",
    _ANY_OF: "Any_of",
    _NOT_CONTAINS: "Not_Contains",
    _NOT_ANY_OF: "Not_Any_of",
    _MEMBER_OF: "Member_of",
    _DEVICE_MEMBER_OF: "Device_Member_of",
    _MEMBER_OF_ANY: "Member_of_any",
    _DEVICE_MEMBER_OF_ANY: "Device_Member_of_Any",
    _NOT_MEMBER_OF: "Not_Member_of",
    _NOT_DEVICE_MEMBER_OF: "Not_Device_Member_of",
    _NOT_MEMBER_OF_ANY: "Not_Member_of_Any",
    _NOT_DEVICE_MEMBER_OF_ANY: "Not_Device_Member_of_Any",
    _EXISTS: "Exists",
    _NOT_EXISTS: "Not_Exists",
    _AND: "&&",
    _OR: "||",
    _NOT: "!",
}
_PREFIX_OP_BY_WORD = {_OP_NAMES[c].lower(): c for c in _PREFIX_OPS}
_BINARY_OP_BY_WORD = {
    _OP_NAMES[c].lower(): c for c in (_CONTAINS, _ANY_OF, _NOT_CONTAINS, _NOT_ANY_OF)
}
_SYMBOL_OPS = {"==": _EQ, "!=": _NE, "<=": _LE, ">=": _GE, "<": _LT, ">": _GT, "&&": _AND, "||": _OR}

# Binding strength for reading text, tightest first (MS-DTYP / Windows
# documentation "Operator precedence": Exists, Member_of and the relational
# operators, then !, then &&, then ||; binary operators group left to right).
_PRECEDENCE = {code: 1 for code in _PREFIX_OPS}
_PRECEDENCE.update({code: 2 for code in _RELATIONAL_OPS})
_PRECEDENCE.update({_NOT: 3, _AND: 4, _OR: 5})

# Integer sign and base bytes (MS-DTYP 2.4.4.17.5).
_SIGN_POSITIVE, _SIGN_NEGATIVE, _SIGN_NONE = 1, 2, 3
_BASE_OCTAL, _BASE_DECIMAL, _BASE_HEX = 1, 2, 3

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
_MAX_COMPOSITE_DEPTH = 32
_WSPACE = "\t\n\x0b\x0c\r "  # %x09-0D / %x20

# ---------------------------------------------------------------------------
# SIDs: aclscan.sd.sid.SID, written and read with the alias rules of
# aclscan.sd.sddl (two-letter aliases for the fixed well-known SIDs).
# ---------------------------------------------------------------------------


def _sid_at(data: bytes, offset: int, end: int, what: str) -> SID:
    """The binary SID at ``offset`` that must end by ``end``."""
    try:
        return SID.from_bytes(data[offset:end], 0)
    except MalformedSID as exc:
        raise MalformedDescriptor(f"{what}: {exc}") from None


def _sid_from_text(text: str) -> SID:
    """Parse an SDDL sid-string: a two-letter alias (any case, as Windows
    reads it) or ``S-1-...``. Domain-relative aliases (DA, LA...) need a
    domain and are refused."""
    token = text.strip(_WSPACE)
    if len(token) == 2 and token.isalpha():
        token = token.upper()
    return sid_from_sddl(token)


# ---------------------------------------------------------------------------
# Expression tree
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Int:
    value: int
    sign: int = _SIGN_NONE
    base: int = _BASE_DECIMAL
    code: int = _INT64


@dataclass(frozen=True)
class _Str:
    text: str


@dataclass(frozen=True)
class _Octets:
    data: bytes


@dataclass(frozen=True)
class _Sid:
    sid: SID


@dataclass(frozen=True)
class _Composite:
    items: tuple


@dataclass(frozen=True)
class _Attr:
    code: int
    name: str


@dataclass(frozen=True)
class _Op:
    code: int
    args: tuple  # one operand for unary operators, (lhs, rhs) for binary ones


# ---------------------------------------------------------------------------
# Small helpers shared by both directions
# ---------------------------------------------------------------------------


def _as_bytes(data) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, not {type(data).__name__}")


def _utf16_decode(raw: bytes, where: str) -> str:
    if len(raw) % 2:
        raise MalformedDescriptor(f"{where}: UTF-16 data has an odd length ({len(raw)} bytes)")
    return raw.decode("utf-16-le", "surrogatepass")


def _utf16_encode(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def _utf16_units(text: str) -> list[int]:
    raw = _utf16_encode(text)
    return [raw[i] | (raw[i + 1] << 8) for i in range(0, len(raw), 2)]


def _is_attr_char1(ch: str) -> bool:
    # attr-char1 = ALPHA / DIGIT / ":" / "." / "/" / "_"  (ASCII only)
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ch in ":./_"


_MUST_ESCAPE = frozenset('!"&()<=>|%')


def _escape_attr_name(name: str) -> str:
    """Write an @Prefix. attribute or claim name, %XXXX-escaping what must be.

    Whitespace, control characters, anything outside printable ASCII and the
    characters ``! " & ( ) < = > | %`` are written as ``%`` followed by four
    hex digits of the UTF-16 code unit (MS-DTYP 2.5.1.1).
    """
    out = []
    for unit in _utf16_units(name):
        if unit <= 0x20 or unit >= 0x7F or chr(unit) in _MUST_ESCAPE:
            out.append(f"%{unit:04x}")
        else:
            out.append(chr(unit))
    return "".join(out)


def _unescape_attr_name(raw: str) -> str:
    units: list[int] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "%":
            digits = raw[i + 1 : i + 5]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise SDDLError(f"invalid %-escape {raw[i:i + 5]!r} in attribute name {raw!r}")
            units.append(int(digits, 16))
            i += 5
        else:
            units.extend(_utf16_units(ch))
            i += 1
    if 0 in units:
        raise SDDLError(f"attribute name {raw!r} contains a NUL character")
    return _utf16_decode(b"".join(struct.pack("<H", u) for u in units), "attribute name")


def _format_int(value: int, sign: int, base: int) -> str:
    """SDDL form of an integer literal, honouring the token's sign and base.

    The sign byte is a display hint: when it disagrees with the value
    (a "negative" 5, a "positive" -5, an unsigned-looking decimal -5) the
    value wins and the text carries the value's own sign.
    """
    if base not in (_BASE_OCTAL, _BASE_DECIMAL, _BASE_HEX):
        raise MalformedDescriptor(f"integer literal has an unknown base byte {base}")
    if sign not in (_SIGN_POSITIVE, _SIGN_NEGATIVE, _SIGN_NONE):
        raise MalformedDescriptor(f"integer literal has an unknown sign byte {sign}")
    if sign == _SIGN_NONE and base != _BASE_DECIMAL:
        magnitude, prefix = value & _UINT64_MAX, ""  # two's complement, as Windows does
    elif value < 0 or (sign == _SIGN_NEGATIVE and value == 0):
        magnitude, prefix = -value, "-"
    elif sign == _SIGN_POSITIVE:
        magnitude, prefix = value, "+"
    else:
        magnitude, prefix = value, ""
    if base == _BASE_HEX:
        return f"{prefix}0x{magnitude:x}"
    if base == _BASE_OCTAL:
        return f"{prefix}0{magnitude:o}"
    return f"{prefix}{magnitude}"


_INT_TEXT_RE = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]+|[1-9][0-9]*|0)")


def _scan_int(text: str, pos: int, unsigned: bool = False):
    """Match an int-64 literal at ``pos``.

    Returns ``(value, sign, base, end)`` or ``None`` when the text there is
    not an integer (including digits that run on into a word, like ``17pq``).
    Raises SDDLError for an integer that does not fit in 64 bits. Unsigned
    hex and octal (and, with ``unsigned``, decimal) may reach 2**64 - 1 and
    come back wrapped to the signed value with the same 64 bits.
    """
    match = _INT_TEXT_RE.match(text, pos)
    if match is None:
        return None
    end = match.end()
    if end < len(text) and (_is_attr_char1(text[end]) or text[end] == "@"):
        return None
    sign_text, digits = match.group(1), match.group(2)
    if digits[:2].lower() == "0x":
        base, magnitude = _BASE_HEX, int(digits[2:], 16)
    elif len(digits) > 1 and digits[0] == "0":
        base, magnitude = _BASE_OCTAL, int(digits[1:], 8)
    else:
        base, magnitude = _BASE_DECIMAL, int(digits)
    if sign_text == "-":
        sign, value = _SIGN_NEGATIVE, -magnitude
        if value < _INT64_MIN:
            raise SDDLError(f"integer {text[pos:end]!r} is out of the 64-bit range")
    elif sign_text == "+":
        sign, value = _SIGN_POSITIVE, magnitude
        if value > _INT64_MAX:
            raise SDDLError(f"integer {text[pos:end]!r} is out of the 64-bit range")
    else:
        sign, value = _SIGN_NONE, magnitude
        limit = _UINT64_MAX if (unsigned or base != _BASE_DECIMAL) else _INT64_MAX
        if value > limit:
            raise SDDLError(f"integer {text[pos:end]!r} is out of the 64-bit range")
        if value > _INT64_MAX:  # hex/octal written as unsigned two's complement
            value -= 1 << 64
    return value, sign, base, end


# ---------------------------------------------------------------------------
# Binary conditional expression -> tree
# ---------------------------------------------------------------------------


def _read_length(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read the DWORD length after the token byte at ``pos``; return (start, stop)."""
    if pos + 5 > end:
        raise MalformedDescriptor(f"{what} token at offset {pos} is truncated")
    (length,) = struct.unpack_from("<I", data, pos + 1)
    start = pos + 5
    if start + length > end:
        raise MalformedDescriptor(
            f"{what} token at offset {pos} claims {length} bytes but only {end - start} remain"
        )
    return start, start + length


def _decode_operand(data: bytes, pos: int, end: int, depth: int):
    """Decode one literal or attribute token at ``pos``; return (node, next_pos)."""
    code = data[pos]
    if code in _INT_CODES:
        if pos + 11 > end:
            raise MalformedDescriptor(f"integer token at offset {pos} is truncated")
        (value,) = struct.unpack_from("<q", data, pos + 1)
        sign, base = data[pos + 9], data[pos + 10]
        if sign not in (_SIGN_POSITIVE, _SIGN_NEGATIVE, _SIGN_NONE):
            raise MalformedDescriptor(f"integer token at offset {pos} has unknown sign byte {sign}")
        if base not in (_BASE_OCTAL, _BASE_DECIMAL, _BASE_HEX):
            raise MalformedDescriptor(f"integer token at offset {pos} has unknown base byte {base}")
        return _Int(value, sign, base, code), pos + 11
    if code == _UNICODE:
        start, stop = _read_length(data, pos, end, "Unicode string")
        return _Str(_utf16_decode(data[start:stop], f"string at offset {pos}")), stop
    if code in _ATTR_CODES:
        start, stop = _read_length(data, pos, end, "attribute")
        return _Attr(code, _utf16_decode(data[start:stop], f"attribute at offset {pos}")), stop
    if code == _OCTETS:
        start, stop = _read_length(data, pos, end, "octet string")
        return _Octets(data[start:stop]), stop
    if code == _SID:
        start, stop = _read_length(data, pos, end, "SID")
        sid = _sid_at(data, start, stop, f"SID token at offset {pos}")
        if sid.byte_length != stop - start:
            raise MalformedDescriptor(
                f"SID token at offset {pos} is {stop - start} bytes long"
                f" but holds a {sid.byte_length}-byte SID"
            )
        return _Sid(sid), stop
    if code == _COMPOSITE:
        if depth >= _MAX_COMPOSITE_DEPTH:
            raise MalformedDescriptor(f"composites nested deeper than {_MAX_COMPOSITE_DEPTH} levels")
        start, stop = _read_length(data, pos, end, "composite")
        items = []
        inner = start
        while inner < stop:
            if data[inner] not in _LITERAL_CODES:
                raise MalformedDescriptor(
                    f"composite at offset {pos} holds token 0x{data[inner]:02x} at offset {inner};"
                    " only literals may appear in a composite"
                )
            item, inner = _decode_operand(data, inner, stop, depth + 1)
            items.append(item)
        return _Composite(tuple(items)), stop
    raise MalformedDescriptor(f"unknown token 0x{code:02x} at offset {pos}")  # pragma: no cover


def _decode_expression(data) -> object:
    data = _as_bytes(data)
    if len(data) < 4 or data[:4] != SIGNATURE:
        raise MalformedDescriptor(
            f"conditional ACE data does not start with the 'artx' signature: {data[:4].hex()}"
        )
    stack: list = []
    pos, end = 4, len(data)
    while pos < end:
        code = data[pos]
        if code == _PADDING:
            if any(data[pos:]):
                raise MalformedDescriptor(f"non-zero byte after the padding that starts at offset {pos}")
            break
        if code in _LITERAL_CODES or code in _ATTR_CODES:
            node, pos = _decode_operand(data, pos, end, 0)
            stack.append(node)
            continue
        if code in _UNARY_OPS:
            if not stack:
                raise MalformedDescriptor(f"operator 0x{code:02x} at offset {pos} has no operand")
            stack.append(_Op(code, (stack.pop(),)))
        elif code in _BINARY_OPS:
            if len(stack) < 2:
                raise MalformedDescriptor(f"operator 0x{code:02x} at offset {pos} lacks an operand")
            rhs = stack.pop()
            lhs = stack.pop()
            stack.append(_Op(code, (lhs, rhs)))
        else:
            raise MalformedDescriptor(f"unknown token 0x{code:02x} at offset {pos}")
        pos += 1
    if not stack:
        raise MalformedDescriptor("conditional ACE holds an empty expression")
    if len(stack) != 1:
        raise MalformedDescriptor(
            f"conditional ACE expression leaves {len(stack)} values instead of one"
        )
    return stack[0]


# ---------------------------------------------------------------------------
# Tree -> SDDL text
# ---------------------------------------------------------------------------


def _render_string(text: str) -> str:
    if '"' in text:
        raise SDDLError(f"string {text!r} contains a double quote, which SDDL cannot write")
    return f'"{text}"'


def _render_local_name(name: str) -> str:
    if not name or not _is_attr_char1(name[0]) or not all(_is_attr_char1(c) or c == "@" for c in name):
        raise SDDLError(f"local attribute name {name!r} cannot be written in SDDL")
    if name.lower() in _PREFIX_OP_BY_WORD or _scan_int(name, 0) is not None:
        raise SDDLError(f"local attribute name {name!r} would read back as something else")
    return name


def _render_literal(node, depth: int = 0) -> str:
    if isinstance(node, _Int):
        return _format_int(node.value, node.sign, node.base)
    if isinstance(node, _Str):
        return _render_string(node.text)
    if isinstance(node, _Octets):
        return "#" + node.data.hex().upper()
    if isinstance(node, _Sid):
        return f"SID({sid_to_sddl(node.sid)})"
    if isinstance(node, _Composite):
        return "{" + ", ".join(_render_literal(item, depth + 1) for item in node.items) + "}"
    raise TypeError(f"not a literal: {node!r}")  # pragma: no cover


def _render_operand(node) -> str:
    if isinstance(node, _Attr):
        if node.code == _LOCAL_ATTR:
            return _render_local_name(node.name)
        if not node.name or "\0" in node.name:
            raise SDDLError(f"attribute name {node.name!r} cannot be written in SDDL")
        return _ATTR_PREFIX[node.code] + _escape_attr_name(node.name)
    return _render_literal(node)


def _wants_own_parens(node) -> bool:
    return isinstance(node, _Op) and (node.code in _BINARY_OPS or node.code in _MEMBER_OPS)


def _child_needs_parens(parent_code: int, child) -> bool:
    if _wants_own_parens(child):
        return False
    if parent_code in _LOGICAL_OPS:
        return True  # Windows: operands of && || ! are always parenthesised
    # Beyond Windows' rule, so that the text reads back as the same tree:
    # a "!" under a relational or prefix operator must be enclosed.
    return isinstance(child, _Op) and child.code == _NOT


def _render_expression(root) -> str:
    out: list[str] = []
    work: list = [(root, not _wants_own_parens(root))]
    while work:
        item = work.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, parens = item
        if not isinstance(node, _Op):
            text = _render_operand(node)
            out.append(f"({text})" if parens else text)
            continue
        own = _wants_own_parens(node)
        if parens or own:
            out.append("(")
            work.append(")")
        name = _OP_NAMES[node.code]
        if node.code in _BINARY_OPS:
            lhs, rhs = node.args
            work.append((rhs, _child_needs_parens(node.code, rhs)))
            work.append(f" {name} ")
            work.append((lhs, _child_needs_parens(node.code, lhs)))
        else:
            (operand,) = node.args
            work.append((operand, _child_needs_parens(node.code, operand)))
            work.append(name if node.code == _NOT else name + " ")
    return "".join(out)


def conditional_to_sddl(data: bytes) -> str:
    """SDDL text of a conditional ACE's ApplicationData (``artx`` + tokens).

    ``data`` may carry trailing zero padding. The result has outer
    parentheses, e.g. ``(Member_of {SID(BA)})``.
    """
    return _render_expression(_decode_expression(data))


# ---------------------------------------------------------------------------
# SDDL text -> tree
# ---------------------------------------------------------------------------

_LPAREN = object()  # marker on the operator stack


class _Reader:
    """Character-level reader shared by the expression and claim parsers."""

    def __init__(self, text: str, what: str):
        if not isinstance(text, str):
            raise TypeError(f"expected str, not {type(text).__name__}")
        self.s = text
        self.i = 0
        self.what = what

    def fail(self, message: str):
        raise SDDLError(f"{message} at offset {self.i} in {self.what} {self.s!r}")

    def skip_ws(self) -> None:
        s, i = self.s, self.i
        while i < len(s) and s[i] in _WSPACE:
            i += 1
        self.i = i

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            found = repr(self.peek()) if self.peek() else "end of text"
            self.fail(f"expected {ch!r}, found {found}")
        self.i += 1

    def word(self) -> str:
        """An attr-char1 word (with '@' allowed after the first character)."""
        s, i = self.s, self.i
        if i >= len(s) or not _is_attr_char1(s[i]):
            return ""
        j = i + 1
        while j < len(s) and (_is_attr_char1(s[j]) or s[j] == "@"):
            j += 1
        return s[i:j]

    # -- literals ---------------------------------------------------------

    def quoted_string(self) -> str:
        self.expect('"')
        stop = self.s.find('"', self.i)
        if stop < 0:
            self.fail("unterminated string")
        text = self.s[self.i : stop]
        self.i = stop + 1
        return text

    def integer(self, unsigned: bool = False) -> _Int:
        scanned = _scan_int(self.s, self.i, unsigned)
        if scanned is None:
            self.fail("expected an integer")
        value, sign, base, self.i = scanned
        return _Int(value, sign, base)

    def octet_string(self) -> _Octets:
        self.expect("#")
        s, j = self.s, self.i
        while j < len(s) and s[j] in "#0123456789abcdefABCDEF":
            j += 1
        digits = s[self.i : j].replace("#", "0")  # '#' stands for '0' (Windows)
        if len(digits) % 2:
            self.fail("octet string has an odd number of hex digits")
        self.i = j
        return _Octets(bytes.fromhex(digits))

    def sid_literal(self) -> _Sid:
        if self.s[self.i : self.i + 4].upper() != "SID(":
            self.fail("expected SID(")
        self.i += 4
        stop = self.s.find(")", self.i)
        if stop < 0:
            self.fail("unterminated SID(")
        body = self.s[self.i : stop].strip(_WSPACE)
        self.i = stop + 1
        return _Sid(_sid_from_text(body))

    def composite(self, depth: int) -> _Composite:
        if depth >= _MAX_COMPOSITE_DEPTH:
            self.fail(f"composites nested deeper than {_MAX_COMPOSITE_DEPTH} levels")
        self.expect("{")
        items = []
        self.skip_ws()
        if self.peek() == "}":
            self.i += 1
            return _Composite(())
        while True:
            self.skip_ws()
            items.append(self.literal(depth + 1))
            self.skip_ws()
            ch = self.peek()
            if ch == "}":
                self.i += 1
                return _Composite(tuple(items))
            if ch != ",":
                self.fail("expected ',' or '}' in composite")
            self.i += 1

    def literal(self, depth: int = 0):
        ch = self.peek()
        if ch == '"':
            return _Str(self.quoted_string())
        if ch == "#":
            return self.octet_string()
        if ch == "{":
            return self.composite(depth)
        if ch in "Ss" and self.s[self.i : self.i + 4].upper() == "SID(":
            return self.sid_literal()
        if ch and (ch in "+-" or "0" <= ch <= "9"):
            return self.integer()
        self.fail("expected a literal value")


class _ExpressionParser(_Reader):
    def __init__(self, text: str):
        super().__init__(text, "conditional expression")

    def operand(self):
        ch = self.peek()
        if ch == "@":
            return self.prefixed_attribute()
        if ch in ('"', "#", "{"):
            return self.literal()
        if ch in "+-":
            return self.integer()
        if "0" <= ch <= "9" and _scan_int(self.s, self.i) is not None:
            return self.integer()
        word = self.word()
        if not word:
            self.fail(f"unexpected character {ch!r}" if ch else "unexpected end of text")
        if word.upper() == "SID" and self.s[self.i + 3 : self.i + 4] == "(":
            return self.sid_literal()
        self.i += len(word)
        return _Attr(_LOCAL_ATTR, word)

    def prefixed_attribute(self) -> _Attr:
        self.expect("@")
        dot = self.s.find(".", self.i)
        cls = _ATTR_CLASS_BY_NAME.get(self.s[self.i : dot].lower()) if dot >= 0 else None
        if cls is None:
            self.fail("expected @User., @Device. or @Resource.")
        self.i = dot + 1
        s, j = self.s, self.i
        while j < len(s) and s[j] not in _WSPACE and s[j] not in '!&()<>=|"':
            j += 1
        raw = s[self.i : j]
        if not raw:
            self.fail("empty attribute name")
        self.i = j
        return _Attr(cls, _unescape_attr_name(raw))

    def binary_operator(self) -> int:
        s, i = self.s, self.i
        two = s[i : i + 2]
        if two in _SYMBOL_OPS:
            self.i += 2
            return _SYMBOL_OPS[two]
        if s[i : i + 1] in _SYMBOL_OPS:
            self.i += 1
            return _SYMBOL_OPS[s[i]]
        word = self.word()
        code = _BINARY_OP_BY_WORD.get(word.lower()) if word else None
        if code is None:
            found = word or s[i : i + 2] or "end of text"
            self.fail(f"unknown operator {found!r}")
        self.i += len(word)
        return code

    def parse(self):
        """Shunting-yard over the text: no recursion, so depth is not limited."""
        self.skip_ws()
        if self.peek() != "(":
            self.fail("a conditional expression must be enclosed in parentheses")
        output: list = []
        ops: list = []
        depth = 0
        expect_operand = True

        def reduce() -> None:
            code = ops.pop()
            arity = 1 if code in _UNARY_OPS else 2
            if len(output) < arity:
                self.fail(f"operator {_OP_NAMES[code]!r} lacks an operand")
            args = tuple(output[-arity:])
            del output[-arity:]
            output.append(_Op(code, args))

        while True:
            self.skip_ws()
            if self.i >= len(self.s):
                break
            if depth == 0 and output:
                self.fail("unexpected text after the closing ')'")
            ch = self.peek()
            if expect_operand:
                if ch == "(":
                    ops.append(_LPAREN)
                    depth += 1
                    self.i += 1
                elif ch == "!" and self.s[self.i + 1 : self.i + 2] != "=":
                    ops.append(_NOT)
                    self.i += 1
                elif ch == ")":
                    self.fail("missing operand before ')'")
                else:
                    code = _PREFIX_OP_BY_WORD.get(self.word().lower())
                    if code is not None:
                        ops.append(code)
                        self.i += len(self.word())
                    else:
                        output.append(self.operand())
                        expect_operand = False
            elif ch == ")":
                while ops and ops[-1] is not _LPAREN:
                    reduce()
                if not ops:
                    self.fail("unbalanced ')'")
                ops.pop()
                depth -= 1
                self.i += 1
            else:
                code = self.binary_operator()
                while ops and ops[-1] is not _LPAREN and _PRECEDENCE[ops[-1]] <= _PRECEDENCE[code]:
                    reduce()
                ops.append(code)
                expect_operand = True
        if depth != 0:
            self.fail("unbalanced parentheses: missing ')'")
        if len(output) != 1 or ops:  # pragma: no cover - guarded by the loop above
            self.fail("incomplete expression")
        return output[0]


def _encode_operand(node, out: bytearray) -> None:
    if isinstance(node, _Int):
        out.append(node.code)
        out += struct.pack("<qBB", node.value, node.sign, node.base)
    elif isinstance(node, _Str):
        raw = _utf16_encode(node.text)
        out.append(_UNICODE)
        out += struct.pack("<I", len(raw)) + raw
    elif isinstance(node, _Attr):
        raw = _utf16_encode(node.name)
        out.append(node.code)
        out += struct.pack("<I", len(raw)) + raw
    elif isinstance(node, _Octets):
        out.append(_OCTETS)
        out += struct.pack("<I", len(node.data)) + node.data
    elif isinstance(node, _Sid):
        raw = node.sid.to_bytes()
        out.append(_SID)
        out += struct.pack("<I", len(raw)) + raw
    elif isinstance(node, _Composite):
        inner = bytearray()
        for item in node.items:
            _encode_operand(item, inner)
        out.append(_COMPOSITE)
        out += struct.pack("<I", len(inner)) + inner
    else:  # pragma: no cover
        raise TypeError(f"cannot encode {node!r}")


def _encode_expression(root) -> bytes:
    out = bytearray(SIGNATURE)
    work: list = [(root, False)]
    while work:  # iterative post-order walk
        node, children_done = work.pop()
        if not isinstance(node, _Op):
            _encode_operand(node, out)
        elif children_done:
            out.append(node.code)
        else:
            work.append((node, True))
            for arg in reversed(node.args):
                work.append((arg, False))
    out += bytes(-len(out) % 4)
    return bytes(out)


def conditional_from_sddl(text: str) -> bytes:
    """Binary ApplicationData (``artx`` + postfix tokens, zero-padded to a
    multiple of 4 bytes) for a parenthesised SDDL conditional expression."""
    return _encode_expression(_ExpressionParser(text).parse())


# ---------------------------------------------------------------------------
# Resource attribute claims (CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1)
# ---------------------------------------------------------------------------

_CLAIM_INT64, _CLAIM_UINT64, _CLAIM_STRING = 0x0001, 0x0002, 0x0003
_CLAIM_FQBN, _CLAIM_SID, _CLAIM_BOOLEAN, _CLAIM_OCTETS = 0x0004, 0x0005, 0x0006, 0x0010
_CLAIM_TYPE_TEXT = {
    _CLAIM_INT64: "TI",
    _CLAIM_UINT64: "TU",
    _CLAIM_STRING: "TS",
    _CLAIM_SID: "TD",
    _CLAIM_OCTETS: "TX",
    _CLAIM_BOOLEAN: "TB",
}
_CLAIM_TYPE_BY_TEXT = {text: code for code, text in _CLAIM_TYPE_TEXT.items()}
_CLAIM_HEADER = struct.Struct("<IHHII")  # Name, ValueType, Reserved, Flags, ValueCount


def _read_claim_string(data: bytes, offset: int, what: str) -> str:
    if offset >= len(data):
        raise MalformedDescriptor(f"{what} offset {offset} is beyond the attribute ({len(data)} bytes)")
    stop = offset
    while True:
        if stop + 2 > len(data):
            raise MalformedDescriptor(f"{what} at offset {offset} has no terminating NUL")
        if data[stop] == 0 and data[stop + 1] == 0:
            break
        stop += 2
    return _utf16_decode(data[offset:stop], what)


def _read_claim_blob(data: bytes, offset: int, what: str) -> bytes:
    if offset + 4 > len(data):
        raise MalformedDescriptor(f"{what} at offset {offset} is truncated")
    (length,) = struct.unpack_from("<I", data, offset)
    if offset + 4 + length > len(data):
        raise MalformedDescriptor(f"{what} at offset {offset} claims {length} bytes past the end")
    return data[offset + 4 : offset + 4 + length]


def claim_to_sddl(data: bytes) -> str:
    """SDDL ``("Name",TYPE,FLAGS,value,...)`` of a resource attribute ACE's
    CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1 (trailing padding is ignored)."""
    data = _as_bytes(data)
    if len(data) < _CLAIM_HEADER.size:
        raise MalformedDescriptor(f"claim attribute is {len(data)} bytes, shorter than its 16-byte header")
    name_offset, value_type, _reserved, flags, count = _CLAIM_HEADER.unpack_from(data)
    if _CLAIM_HEADER.size + 4 * count > len(data):
        raise MalformedDescriptor(f"claim attribute lists {count} values but is only {len(data)} bytes")
    offsets = struct.unpack_from(f"<{count}I", data, _CLAIM_HEADER.size)
    name = _read_claim_string(data, name_offset, "claim name")
    if not name:
        raise MalformedDescriptor("claim attribute has an empty name")
    if value_type == _CLAIM_FQBN:
        raise SDDLError("claim of type FQBN (0x0004) has no SDDL form")
    if value_type not in _CLAIM_TYPE_TEXT:
        raise MalformedDescriptor(f"claim attribute has unknown value type 0x{value_type:04x}")

    values = []
    for index, offset in enumerate(offsets):
        what = f"claim value {index}"
        if value_type in (_CLAIM_INT64, _CLAIM_UINT64, _CLAIM_BOOLEAN):
            if offset + 8 > len(data):
                raise MalformedDescriptor(f"{what} at offset {offset} is truncated")
            signed, unsigned = struct.unpack_from("<q", data, offset)[0], struct.unpack_from("<Q", data, offset)[0]
            if value_type == _CLAIM_BOOLEAN and unsigned not in (0, 1):
                # SDDL's TB takes 0 or 1 only: writing the number would give text no reader takes.
                raise SDDLError(f"{what} is boolean {unsigned}, which SDDL (TB: 0 or 1) cannot write")
            values.append(str(signed if value_type == _CLAIM_INT64 else unsigned))
        elif value_type == _CLAIM_STRING:
            values.append(_render_string(_read_claim_string(data, offset, what)))
        elif value_type == _CLAIM_SID:
            blob = _read_claim_blob(data, offset, what)
            sid = _sid_at(blob, 0, len(blob), what)
            if sid.byte_length != len(blob):
                raise MalformedDescriptor(
                    f"{what} is {len(blob)} bytes but holds a {sid.byte_length}-byte SID"
                )
            values.append(sid_to_sddl(sid))
        else:  # octet string
            blob = _read_claim_blob(data, offset, what)
            if not blob:
                raise SDDLError(f"{what} is an empty octet string, which SDDL cannot write")
            values.append(blob.hex().upper())
    head = f'("{_escape_attr_name(name)}",{_CLAIM_TYPE_TEXT[value_type]},0x{flags:x}'
    return head + "".join("," + v for v in values) + ")"


class _ClaimParser(_Reader):
    def __init__(self, text: str):
        super().__init__(text, "resource attribute")

    def bare_token(self) -> str:
        """Text up to the next ',' or ')' (or whitespace)."""
        s, j = self.s, self.i
        while j < len(s) and s[j] not in ",)" and s[j] not in _WSPACE:
            j += 1
        token = s[self.i : j]
        self.i = j
        return token

    def octets(self) -> bytes:
        s, j = self.s, self.i
        while j < len(s) and s[j] in "#0123456789abcdefABCDEF":
            j += 1
        digits = s[self.i : j].replace("#", "0")  # Windows reads '#' as a 0 digit
        if not digits:
            self.fail("expected hex digits of an octet string")
        self.i = j
        if len(digits) % 2:
            digits = "0" + digits  # an odd digit count gains a leading 0 (Windows)
        return bytes.fromhex(digits)

    def value(self, value_type: int):
        if value_type == _CLAIM_STRING:
            if self.peek() != '"':
                self.fail("expected a quoted string")
            text = self.quoted_string()
            if "\0" in text:
                self.fail("TS values cannot contain NUL characters")
            return text
        if value_type == _CLAIM_SID:
            if self.s[self.i : self.i + 4].upper() == "SID(":
                return self.sid_literal().sid
            token = self.bare_token()
            if not token:
                self.fail("expected a SID")
            return _sid_from_text(token)
        if value_type == _CLAIM_OCTETS:
            return self.octets()
        start = self.i
        number = self.integer(unsigned=value_type == _CLAIM_UINT64)
        value = number.value
        if value_type == _CLAIM_UINT64:
            if number.sign == _SIGN_NEGATIVE and value != 0:
                self.i = start
                self.fail("TU values must not be negative")
            return value & _UINT64_MAX
        if value_type == _CLAIM_BOOLEAN and value not in (0, 1):
            self.i = start
            self.fail("TB values must be 0 or 1")
        if value_type == _CLAIM_INT64 and number.sign == _SIGN_NONE and number.base != _BASE_DECIMAL and value < 0:
            self.i = start
            self.fail("TI value is out of the signed 64-bit range")
        return value

    def parse(self):
        self.skip_ws()
        self.expect("(")
        self.skip_ws()
        self.expect('"')
        stop = self.s.find('"', self.i)
        if stop < 0:
            self.fail("unterminated attribute name")
        name = _unescape_attr_name(self.s[self.i : stop])
        if not name:
            self.fail("empty attribute name")
        self.i = stop + 1
        self.skip_ws()
        self.expect(",")
        self.skip_ws()
        type_text = self.s[self.i : self.i + 2].upper()
        if type_text not in _CLAIM_TYPE_BY_TEXT:
            self.fail(f"unknown attribute type {self.s[self.i:self.i + 2]!r} (want TI TU TS TD TX TB)")
        value_type = _CLAIM_TYPE_BY_TEXT[type_text]
        self.i += 2
        self.skip_ws()
        self.expect(",")
        self.skip_ws()
        flags = self.integer()
        if flags.sign == _SIGN_NEGATIVE or not 0 <= flags.value <= 0xFFFFFFFF:
            self.fail("attribute flags must be a 32-bit unsigned number")
        values = []
        while True:
            self.skip_ws()
            ch = self.peek()
            if ch == ")":
                self.i += 1
                break
            if ch != ",":
                self.fail("expected ',' or ')'")
            self.i += 1
            self.skip_ws()
            values.append(self.value(value_type))
        self.skip_ws()
        if self.i != len(self.s):
            self.fail("unexpected text after the closing ')'")
        return name, value_type, flags.value, values


def claim_from_sddl(text: str) -> bytes:
    """CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1 bytes for ``("Name",TYPE,FLAGS,...)``.

    Laid out as Windows does: the 16-byte header, the array of value offsets,
    the NUL-terminated name, then the values one after another with no
    alignment, and zero bytes to a multiple of 4 (the padding Windows puts at
    the end of the ACE).
    """
    name, value_type, flags, values = _ClaimParser(text).parse()
    name_offset = _CLAIM_HEADER.size + 4 * len(values)
    body = bytearray(_utf16_encode(name) + b"\0\0")
    offsets = []
    for value in values:
        offsets.append(name_offset + len(body))
        if value_type == _CLAIM_INT64:
            body += struct.pack("<q", value)
        elif value_type in (_CLAIM_UINT64, _CLAIM_BOOLEAN):
            body += struct.pack("<Q", value)
        elif value_type == _CLAIM_STRING:
            body += _utf16_encode(value) + b"\0\0"
        elif value_type == _CLAIM_SID:
            raw = value.to_bytes()
            body += struct.pack("<I", len(raw)) + raw
        else:
            body += struct.pack("<I", len(value)) + value
    out = _CLAIM_HEADER.pack(name_offset, value_type, 0, flags, len(values))
    out += struct.pack(f"<{len(offsets)}I", *offsets) + body
    return out + bytes(-len(out) % 4)
