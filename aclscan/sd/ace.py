"""Access control entries (MS-DTYP 2.4.4), every type, binary form.

Every ACE starts with an ACE_HEADER::

    AceType   1 byte
    AceFlags  1 byte
    AceSize   2 bytes, little-endian, includes the header

and continues, by type:

=====================================  =============================================
types                                  body after the header
=====================================  =============================================
0x00-0x03, 0x11, 0x13, 0x14            Mask, Sid
0x04 (compound)                        Mask, CompoundAceType (2), Reserved (2),
                                       server Sid, client Sid
0x05-0x08 (object)                     Mask, Flags, [ObjectType], [InheritedObjectType],
                                       Sid
0x09, 0x0A, 0x0D, 0x0E (callback)      Mask, Sid, ApplicationData
0x0B, 0x0C, 0x0F, 0x10                 Mask, Flags, [ObjectType], [InheritedObjectType],
(callback object)                      Sid, ApplicationData
0x12 (resource attribute)              Mask, Sid, Attribute Data (a claim, kept as bytes)
0x15 (access filter)                   Mask, Sid, ApplicationData (a condition)
anything else                          kept as opaque bytes
=====================================  =============================================

The GUIDs are in the on-disk GUID layout (Data1..Data3 little-endian), i.e.
``uuid.UUID(bytes_le=...)``. ``AceSize`` may exceed what the body needs (MS-DTYP:
"AceSize can be greater than the sum of the individual fields"): for types with
ApplicationData the excess *is* ApplicationData, for the others it is kept as
private padding so that ``ACE.from_bytes(b).to_bytes() == b``.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from functools import lru_cache

from aclscan.errors import MalformedData, MalformedDescriptor
from aclscan.sd.sid import SID

__all__ = [
    "ACE",
    "AceFlags",
    "AceType",
    "COMPOUND_ACE_IMPERSONATE",
    "ObjectAceFlags",
]


class AceType(IntEnum):
    """ACE_HEADER.AceType, with the names of winnt.h / MS-DTYP 2.4.4.1."""

    ACCESS_ALLOWED_ACE_TYPE = 0x00
    ACCESS_DENIED_ACE_TYPE = 0x01
    SYSTEM_AUDIT_ACE_TYPE = 0x02
    SYSTEM_ALARM_ACE_TYPE = 0x03
    ACCESS_ALLOWED_COMPOUND_ACE_TYPE = 0x04
    ACCESS_ALLOWED_OBJECT_ACE_TYPE = 0x05
    ACCESS_DENIED_OBJECT_ACE_TYPE = 0x06
    SYSTEM_AUDIT_OBJECT_ACE_TYPE = 0x07
    SYSTEM_ALARM_OBJECT_ACE_TYPE = 0x08
    ACCESS_ALLOWED_CALLBACK_ACE_TYPE = 0x09
    ACCESS_DENIED_CALLBACK_ACE_TYPE = 0x0A
    ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE = 0x0B
    ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE = 0x0C
    SYSTEM_AUDIT_CALLBACK_ACE_TYPE = 0x0D
    SYSTEM_ALARM_CALLBACK_ACE_TYPE = 0x0E
    SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE = 0x0F
    SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE = 0x10
    SYSTEM_MANDATORY_LABEL_ACE_TYPE = 0x11
    SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE = 0x12
    SYSTEM_SCOPED_POLICY_ID_ACE_TYPE = 0x13
    SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE = 0x14
    ACCESS_FILTER_ACE_TYPE = 0x15
    SYSTEM_ACCESS_FILTER_ACE_TYPE = 0x15  # winnt.h spelling of the same value


class AceFlags(IntFlag):
    """ACE_HEADER.AceFlags (MS-DTYP 2.4.4.1).

    0x40 means SUCCESSFUL_ACCESS_ACE_FLAG in audit and alarm ACEs and
    TRUST_PROTECTED_FILTER_ACE_FLAG in access filter ACEs.
    """

    OBJECT_INHERIT_ACE = 0x01
    CONTAINER_INHERIT_ACE = 0x02
    NO_PROPAGATE_INHERIT_ACE = 0x04
    INHERIT_ONLY_ACE = 0x08
    INHERITED_ACE = 0x10
    CRITICAL_ACE_FLAG = 0x20
    SUCCESSFUL_ACCESS_ACE_FLAG = 0x40
    TRUST_PROTECTED_FILTER_ACE_FLAG = 0x40
    FAILED_ACCESS_ACE_FLAG = 0x80


class ObjectAceFlags(IntFlag):
    """The Flags field of object ACEs (MS-DTYP 2.4.4.3)."""

    ACE_OBJECT_TYPE_PRESENT = 0x1
    ACE_INHERITED_OBJECT_TYPE_PRESENT = 0x2


# CompoundAceType of ACCESS_ALLOWED_COMPOUND_ACE (winnt.h).
COMPOUND_ACE_IMPERSONATE = 0x1

_T = AceType
_OBJECT_TYPES = frozenset(
    {
        _T.ACCESS_ALLOWED_OBJECT_ACE_TYPE,
        _T.ACCESS_DENIED_OBJECT_ACE_TYPE,
        _T.SYSTEM_AUDIT_OBJECT_ACE_TYPE,
        _T.SYSTEM_ALARM_OBJECT_ACE_TYPE,
        _T.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
        _T.ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE,
        _T.SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE,
        _T.SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE,
    }
)
_CALLBACK_TYPES = frozenset(
    {
        _T.ACCESS_ALLOWED_CALLBACK_ACE_TYPE,
        _T.ACCESS_DENIED_CALLBACK_ACE_TYPE,
        _T.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
        _T.ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE,
        _T.SYSTEM_AUDIT_CALLBACK_ACE_TYPE,
        _T.SYSTEM_ALARM_CALLBACK_ACE_TYPE,
        _T.SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE,
        _T.SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE,
    }
)
# Types whose bytes after the SID are ApplicationData rather than padding.
_DATA_TYPES = _CALLBACK_TYPES | {
    _T.SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE,
    _T.ACCESS_FILTER_ACE_TYPE,
}
_COMPOUND = _T.ACCESS_ALLOWED_COMPOUND_ACE_TYPE
_KNOWN_TYPES = frozenset(int(t) for t in AceType)

_HEADER = struct.Struct("<BBH")
_MASK = struct.Struct("<I")
_MASK_FLAGS = struct.Struct("<II")
_COMPOUND_FIELDS = struct.Struct("<IHH")


@dataclass(frozen=True, slots=True)
class ACE:
    """One access control entry of any type.

    Fields used by each kind of ACE (the others stay at their defaults):

    * all known types: ``ace_type``, ``flags``, ``mask``, ``sid`` (the trustee;
      for a compound ACE the client SID)
    * object types: ``object_type`` and ``inherited_object_type`` (UUID or None);
      ``object_flags`` is derived from which of them is present, higher bits kept
    * callback, resource attribute and access filter types: ``application_data``
      (conditional expression or claim bytes, zero-padded to a DWORD boundary
      when the ACE is built rather than parsed, as Windows pads it)
    * compound: ``server_sid`` and ``compound_type`` (CompoundAceType)
    * unknown types: ``raw_body``, the bytes after the ACE_HEADER

    Parsing details that do not change meaning (padding after the SID,
    Reserved of a compound ACE) are kept in private fields excluded from
    equality, so a parsed ACE writes back its exact bytes.
    """

    ace_type: int
    flags: int = 0
    mask: int = 0
    sid: SID | None = None
    object_type: uuid.UUID | None = None
    inherited_object_type: uuid.UUID | None = None
    object_flags: int | None = None
    application_data: bytes = b""
    server_sid: SID | None = None
    compound_type: int = 0
    raw_body: bytes = b""
    _pad: bytes | None = field(default=None, compare=False, repr=False)
    _reserved: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        t = self.ace_type
        if t in _KNOWN_TYPES:
            if type(t) is not AceType:
                set_(self, "ace_type", AceType(t))
                t = self.ace_type
        elif not 0 <= t <= 0xFF:
            raise MalformedDescriptor(f"AceType {t} does not fit in a byte")
        if type(self.flags) is not AceFlags:
            if not 0 <= self.flags <= 0xFF:
                raise MalformedDescriptor(f"AceFlags {self.flags:#x} does not fit in a byte")
            set_(self, "flags", AceFlags(self.flags))
        if not 0 <= self.mask <= 0xFFFFFFFF:
            raise MalformedDescriptor(f"access mask {self.mask:#x} does not fit in 32 bits")
        if t not in _KNOWN_TYPES:
            return
        if not isinstance(self.sid, SID):
            raise MalformedDescriptor(f"{t.name} needs a SID, got {self.sid!r}")
        if t in _OBJECT_TYPES:
            present = 0
            if self.object_type is not None:
                present |= ObjectAceFlags.ACE_OBJECT_TYPE_PRESENT
            if self.inherited_object_type is not None:
                present |= ObjectAceFlags.ACE_INHERITED_OBJECT_TYPE_PRESENT
            given = self.object_flags or 0
            if not 0 <= given <= 0xFFFFFFFF:
                raise MalformedDescriptor(f"object ACE Flags {given:#x} do not fit in 32 bits")
            set_(self, "object_flags", ObjectAceFlags((given & ~0x3) | present))
        elif self.object_type is not None or self.inherited_object_type is not None:
            raise MalformedDescriptor(f"{t.name} is not an object ACE and carries no GUIDs")
        if t == _COMPOUND:
            if not isinstance(self.server_sid, SID):
                raise MalformedDescriptor("a compound ACE needs a server SID")
        if t in _DATA_TYPES and self._pad is None:
            # Built, not parsed: Windows pads ApplicationData to a DWORD boundary.
            data = bytes(self.application_data)
            set_(self, "application_data", data + b"\0" * (-len(data) % 4))

    # ----------------------------------------------------------------- parsing

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> ACE:
        """Parse the ACE that starts at ``offset`` in ``data``.

        Raises :class:`MalformedDescriptor` when the header or body does not fit
        (in the buffer or in AceSize) and :class:`MalformedSID` for a bad SID.
        """
        if offset < 0 or offset + 4 > len(data):
            raise MalformedDescriptor(
                f"ACE at offset {offset} is truncated: need 4 header bytes, buffer has {len(data)}"
            )
        size = data[offset + 2] | (data[offset + 3] << 8)
        if size < 4:
            raise MalformedDescriptor(f"ACE at offset {offset} has AceSize {size}, less than its header")
        if offset + size > len(data):
            raise MalformedDescriptor(
                f"ACE at offset {offset} has AceSize {size} but only {len(data) - offset} bytes remain"
            )
        return _ace_from_raw(bytes(data[offset : offset + size]))

    # ----------------------------------------------------------------- output

    def to_bytes(self) -> bytes:
        """The binary form, header included."""
        t = self.ace_type
        if t not in _KNOWN_TYPES:
            body = self.raw_body
        else:
            parts = []
            if t == _COMPOUND:
                parts.append(_COMPOUND_FIELDS.pack(self.mask, self.compound_type, self._reserved))
                parts.append(self.server_sid.to_bytes())
            elif t in _OBJECT_TYPES:
                parts.append(_MASK_FLAGS.pack(self.mask, self.object_flags))
                if self.object_type is not None:
                    parts.append(self.object_type.bytes_le)
                if self.inherited_object_type is not None:
                    parts.append(self.inherited_object_type.bytes_le)
            else:
                parts.append(_MASK.pack(self.mask))
            parts.append(self.sid.to_bytes())
            if t in _DATA_TYPES:
                parts.append(self.application_data)
            if self._pad:
                parts.append(self._pad)
            body = b"".join(parts)
        size = 4 + len(body)
        if size > 0xFFFF:
            raise MalformedDescriptor(f"ACE of {size} bytes does not fit AceSize (16 bits)")
        return _HEADER.pack(int(t), int(self.flags), size) + body

    @property
    def size(self) -> int:
        """AceSize: the length of :meth:`to_bytes`."""
        return len(self.to_bytes())

    # ----------------------------------------------------------------- facts

    @property
    def sids(self) -> tuple[SID, ...]:
        """Every SID in the ACE: the server SID then the client SID for a compound ACE."""
        if self.server_sid is not None:
            return (self.server_sid, self.sid)
        return (self.sid,) if self.sid is not None else ()

    @property
    def is_known_type(self) -> bool:
        """False for an AceType this module does not know (kept as opaque bytes)."""
        return self.ace_type in _KNOWN_TYPES

    @property
    def is_inherited(self) -> bool:
        """INHERITED_ACE is set: the ACE was propagated from a parent."""
        return bool(self.flags & AceFlags.INHERITED_ACE)

    @property
    def is_inherit_only(self) -> bool:
        """INHERIT_ONLY_ACE is set: the ACE does not apply to the object itself."""
        return bool(self.flags & AceFlags.INHERIT_ONLY_ACE)

    @property
    def is_object(self) -> bool:
        """An object ACE (carries ObjectType / InheritedObjectType fields)."""
        return self.ace_type in _OBJECT_TYPES

    @property
    def is_callback(self) -> bool:
        """A callback ACE (its ApplicationData is usually a conditional expression)."""
        return self.ace_type in _CALLBACK_TYPES


def _parse_sid(raw: bytes, pos: int, what: str) -> SID:
    try:
        return SID.from_bytes(raw, pos)
    except MalformedData as exc:
        raise type(exc)(f"{what}: {exc}") from None


@lru_cache(maxsize=1 << 16)
def _ace_from_raw(raw: bytes) -> ACE:
    """Parse one whole ACE (``raw`` is exactly AceSize bytes). Memoised: ACEs repeat."""
    t, flags, size = _HEADER.unpack_from(raw)
    if t not in _KNOWN_TYPES:
        return ACE(t, flags, raw_body=raw[4:])
    name = AceType(t).name
    end = len(raw)
    if t == _COMPOUND:
        if end < 12:
            raise MalformedDescriptor(f"{name} with AceSize {size} is too short for its fields")
        mask, compound_type, reserved = _COMPOUND_FIELDS.unpack_from(raw, 4)
        server = _parse_sid(raw, 12, f"{name} server SID")
        pos = 12 + server.byte_length
        client = _parse_sid(raw, pos, f"{name} client SID")
        pos += client.byte_length
        return ACE(
            t,
            flags,
            mask,
            client,
            server_sid=server,
            compound_type=compound_type,
            _pad=raw[pos:],
            _reserved=reserved,
        )
    object_type = inherited = None
    object_flags = None
    if t in _OBJECT_TYPES:
        if end < 12:
            raise MalformedDescriptor(f"{name} with AceSize {size} is too short for Mask and Flags")
        mask, object_flags = _MASK_FLAGS.unpack_from(raw, 4)
        pos = 12
        if object_flags & ObjectAceFlags.ACE_OBJECT_TYPE_PRESENT:
            if pos + 16 > end:
                raise MalformedDescriptor(f"{name} with AceSize {size} is too short for ObjectType")
            object_type = uuid.UUID(bytes_le=raw[pos : pos + 16])
            pos += 16
        if object_flags & ObjectAceFlags.ACE_INHERITED_OBJECT_TYPE_PRESENT:
            if pos + 16 > end:
                raise MalformedDescriptor(
                    f"{name} with AceSize {size} is too short for InheritedObjectType"
                )
            inherited = uuid.UUID(bytes_le=raw[pos : pos + 16])
            pos += 16
    else:
        if end < 8:
            raise MalformedDescriptor(f"{name} with AceSize {size} is too short for its Mask")
        (mask,) = _MASK.unpack_from(raw, 4)
        pos = 8
    sid = _parse_sid(raw, pos, f"{name} SID")
    pos += sid.byte_length
    if t in _DATA_TYPES:
        return ACE(
            t, flags, mask, sid, object_type, inherited, object_flags,
            application_data=raw[pos:], _pad=b"",
        )
    return ACE(t, flags, mask, sid, object_type, inherited, object_flags, _pad=raw[pos:])
