"""Security identifiers (MS-DTYP 2.4.2), binary and string form.

On disk a SID is::

    Revision             1 byte   always 1 (SID_REVISION)
    SubAuthorityCount    1 byte   0..15 (SID_MAX_SUB_AUTHORITIES)
    IdentifierAuthority  6 bytes  big-endian
    SubAuthority[]       4 bytes each, little-endian

The string form (MS-DTYP 2.4.2.1) is ``S-1-<authority>-<sub>-<sub>...``; the
authority is decimal below 2**32 and ``0x`` plus twelve lower-case hex digits
at or above it, as Windows' ``RtlConvertSidToUnicodeString`` prints it.

A volume holds millions of SID occurrences but only hundreds of distinct SIDs,
so parsing from bytes and from text is memoised: the same bytes give the same
(immutable) :class:`SID` object.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache

from aclscan.errors import MalformedSID

__all__ = ["SID", "SID_MAX_SUB_AUTHORITIES", "SID_REVISION"]

SID_REVISION = 1
SID_MAX_SUB_AUTHORITIES = 15
_MAX_AUTHORITY = (1 << 48) - 1
_MAX_SUB_AUTHORITY = 0xFFFFFFFF

# The string form, ASCII only (Python's \\d and int() would take any script's digits:
# "S-1-5-21-١-2-3-4" is not a SID). The authority is decimal below 2**32 or "0x"
# and hex up to 48 bits; sub-authorities are decimal below 2**32. Digit runs are
# bounded so that no input makes a huge int. Windows accepts "S-" only, we also
# accept "s-".
_SID_TEXT = re.compile(r"[Ss]-([0-9]{1,3})-(0[xX][0-9A-Fa-f]{1,12}|[0-9]{1,10})((?:-[0-9]{1,10})*)", re.ASCII)
_MAX_DECIMAL_AUTHORITY = 0xFFFFFFFF


@dataclass(frozen=True, slots=True, repr=False)
class SID:
    """A Windows security identifier.

    ``authority`` is the 48-bit IdentifierAuthority as an int (5 for NT
    AUTHORITY); ``sub_authorities`` the SubAuthority values in order.
    """

    revision: int = SID_REVISION
    authority: int = 0
    sub_authorities: tuple[int, ...] = ()
    _text: str | None = field(default=None, init=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        subs = self.sub_authorities
        if type(subs) is not tuple:
            subs = tuple(subs)
            object.__setattr__(self, "sub_authorities", subs)
        if self.revision != SID_REVISION:
            raise MalformedSID(f"SID revision {self.revision} is not {SID_REVISION}")
        if not 0 <= self.authority <= _MAX_AUTHORITY:
            raise MalformedSID(f"SID identifier authority {self.authority} does not fit in 48 bits")
        if len(subs) > SID_MAX_SUB_AUTHORITIES:
            raise MalformedSID(
                f"SID has {len(subs)} sub-authorities, at most {SID_MAX_SUB_AUTHORITIES} are allowed"
            )
        for value in subs:
            if not 0 <= value <= _MAX_SUB_AUTHORITY:
                raise MalformedSID(f"SID sub-authority {value} does not fit in 32 bits")

    # ----------------------------------------------------------------- parsing

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> SID:
        """Parse the SID that starts at ``offset`` in ``data``.

        Raises :class:`MalformedSID` if the SID is truncated, has a revision other
        than 1 or more than 15 sub-authorities.
        """
        if offset < 0 or offset + 8 > len(data):
            raise MalformedSID(
                f"SID at offset {offset} is truncated: need 8 header bytes, buffer has {len(data)}"
            )
        count = data[offset + 1]
        if count > SID_MAX_SUB_AUTHORITIES:
            raise MalformedSID(
                f"SID at offset {offset} has SubAuthorityCount {count}, "
                f"at most {SID_MAX_SUB_AUTHORITIES} are allowed"
            )
        end = offset + 8 + 4 * count
        if end > len(data):
            raise MalformedSID(
                f"SID at offset {offset} is truncated: SubAuthorityCount {count} needs "
                f"{8 + 4 * count} bytes, {len(data) - offset} remain"
            )
        return _sid_from_raw(bytes(data[offset:end]))

    @classmethod
    def from_string(cls, text: str) -> SID:
        """Parse ``S-1-5-21-...`` (or ``S-1-0x...`` for authorities >= 2**32).

        Unlike Windows' ``ConvertStringSidToSid``, a SID without sub-authorities
        (``S-1-5``) is accepted, because such SIDs are valid in binary form and
        :meth:`__str__` prints them that way.
        """
        if not isinstance(text, str):
            raise MalformedSID(f"SID text must be str, not {type(text).__name__}")
        return _sid_from_text(text)

    # ----------------------------------------------------------------- output

    def to_bytes(self) -> bytes:
        """The binary form (MS-DTYP 2.4.2.2)."""
        n = len(self.sub_authorities)
        return (
            struct.pack("<BB", self.revision, n)
            + self.authority.to_bytes(6, "big")
            + struct.pack(f"<{n}I", *self.sub_authorities)
        )

    def __str__(self) -> str:
        text = self._text
        if text is None:
            if self.authority >= 1 << 32:
                authority = f"0x{self.authority:012x}"
            else:
                authority = str(self.authority)
            text = f"S-{self.revision}-{authority}" + "".join(f"-{s}" for s in self.sub_authorities)
            object.__setattr__(self, "_text", text)
        return text

    def __repr__(self) -> str:
        return f"SID('{self}')"

    # ----------------------------------------------------------------- facts

    @property
    def byte_length(self) -> int:
        """Size of the binary form: 8 + 4 * SubAuthorityCount."""
        return 8 + 4 * len(self.sub_authorities)

    @property
    def rid(self) -> int | None:
        """The last sub-authority (the relative identifier), or None if there is none."""
        return self.sub_authorities[-1] if self.sub_authorities else None

    @property
    def prefix(self) -> SID | None:
        """This SID without its last sub-authority (the domain of a RID), or None."""
        if not self.sub_authorities:
            return None
        return SID(self.revision, self.authority, self.sub_authorities[:-1])

    @property
    def is_domain_relative(self) -> bool:
        """True for ``S-1-5-21-a-b-c-RID``: an account of a machine or domain."""
        subs = self.sub_authorities
        return self.authority == 5 and len(subs) == 5 and subs[0] == 21

    @property
    def is_domain(self) -> bool:
        """True for ``S-1-5-21-a-b-c``: a machine or domain SID itself."""
        subs = self.sub_authorities
        return self.authority == 5 and len(subs) == 4 and subs[0] == 21


@lru_cache(maxsize=1 << 16)
def _sid_from_raw(raw: bytes) -> SID:
    revision, count = raw[0], raw[1]
    if revision != SID_REVISION:
        raise MalformedSID(f"SID revision {revision} is not {SID_REVISION} (bytes {raw.hex()})")
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", raw, 8)
    return SID(revision, authority, subs)


@lru_cache(maxsize=1 << 14)
def _sid_from_text(text: str) -> SID:
    match = _SID_TEXT.fullmatch(text.strip(" \t\r\n"))
    if match is None:
        raise MalformedSID(f"not a SID string: {_quoted(text)}")
    revision_text, authority_text, subs_text = match.groups()
    revision = int(revision_text)
    if authority_text[:2] in ("0x", "0X"):
        authority = int(authority_text, 16)
    else:
        authority = int(authority_text)
        if authority > _MAX_DECIMAL_AUTHORITY:
            raise MalformedSID(f"{_quoted(text)}: a decimal identifier authority must be below 2**32 "
                               "(larger ones are written 0x and 12 hex digits)")
    subs = tuple(int(s) for s in subs_text.split("-")[1:])
    try:
        return SID(revision, authority, subs)
    except MalformedSID as exc:
        raise MalformedSID(f"{_quoted(text)}: {exc}") from None


def _quoted(text: str, limit: int = 80) -> str:
    """The offending text in a message: repr (escapes), cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
