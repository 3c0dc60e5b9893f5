"""Security descriptors (MS-DTYP 2.4.6), self-relative binary form.

A self-relative SECURITY_DESCRIPTOR is a 20-byte header::

    Revision     1 byte   SECURITY_DESCRIPTOR_REVISION (1)
    Sbz1         1 byte   resource-manager control bits when SE_RM_CONTROL_VALID
    Control      2 bytes  SECURITY_DESCRIPTOR_CONTROL (:class:`Control`)
    OffsetOwner  4 bytes  0 if there is no owner
    OffsetGroup  4 bytes
    OffsetSacl   4 bytes  read only when SE_SACL_PRESENT
    OffsetDacl   4 bytes  read only when SE_DACL_PRESENT

followed by the components at those offsets, in any order, with any gaps.

None versus an ACL tells the cases apart: ``dacl is None`` with
SE_DACL_PRESENT set is a NULL DACL (everyone has full access; SDDL
``D:NO_ACCESS_CONTROL``); ``dacl == ACL(aces=())`` is an empty DACL (nobody has
access); SE_DACL_PRESENT clear means there is no DACL at all.

Exact round trip
----------------
Windows writes the components SACL, DACL, owner, group (seen in ``$Secure:$SDS``
of the Windows 7 and 10 volumes under ``shared/data/windows``); ntfs-3g and
Samba use other orders; descriptors may have gaps, trailing bytes, ACLs with
slack and ACEs with padding. A parsed descriptor keeps its original bytes and
offsets in a private ``_layout`` (not part of equality). :meth:`to_bytes`
writes each component back at its original offset when it still has its
original length, so ``SecurityDescriptor.from_bytes(b).to_bytes() == b`` and
replacing one SID with another of the same length keeps the layout. A
descriptor built from scratch or from SDDL, or whose components changed size,
gets the canonical compact layout Windows writes: header, SACL, DACL, owner,
group, with nothing in between.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntFlag

from aclscan.errors import MalformedData, MalformedDescriptor
from aclscan.sd.acl import ACL
from aclscan.sd.sid import SID

__all__ = ["Control", "SECURITY_DESCRIPTOR_REVISION", "SecurityDescriptor"]

SECURITY_DESCRIPTOR_REVISION = 1

_HEADER = struct.Struct("<BBHIIII")
_HEADER_SIZE = _HEADER.size  # 20


class Control(IntFlag):
    """SECURITY_DESCRIPTOR_CONTROL (MS-DTYP 2.4.6, winnt.h names)."""

    SE_OWNER_DEFAULTED = 0x0001
    SE_GROUP_DEFAULTED = 0x0002
    SE_DACL_PRESENT = 0x0004
    SE_DACL_DEFAULTED = 0x0008
    SE_SACL_PRESENT = 0x0010
    SE_SACL_DEFAULTED = 0x0020
    SE_DACL_UNTRUSTED = 0x0040  # "DT" in MS-DTYP
    SE_SERVER_SECURITY = 0x0080
    SE_DACL_AUTO_INHERIT_REQ = 0x0100
    SE_SACL_AUTO_INHERIT_REQ = 0x0200
    SE_DACL_AUTO_INHERITED = 0x0400
    SE_SACL_AUTO_INHERITED = 0x0800
    SE_DACL_PROTECTED = 0x1000
    SE_SACL_PROTECTED = 0x2000
    SE_RM_CONTROL_VALID = 0x4000
    SE_SELF_RELATIVE = 0x8000


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a parsed descriptor's components were: enough to write the same bytes."""

    raw: bytes
    offsets: tuple[int, int, int, int]  # OffsetOwner, OffsetGroup, OffsetSacl, OffsetDacl as read
    lengths: tuple[int | None, int | None, int | None, int | None]  # None: not parsed


@dataclass(frozen=True, slots=True)
class SecurityDescriptor:
    """A security descriptor: control flags, owner, group, SACL and DACL.

    Building one sets SE_DACL_PRESENT / SE_SACL_PRESENT when a DACL / SACL is
    given; a NULL DACL is ``dacl=None`` with SE_DACL_PRESENT in ``control``.
    ``sbz1`` is the Sbz1 byte (resource-manager control bits).
    """

    revision: int = SECURITY_DESCRIPTOR_REVISION
    control: int = Control.SE_SELF_RELATIVE
    owner: SID | None = None
    group: SID | None = None
    dacl: ACL | None = None
    sacl: ACL | None = None
    sbz1: int = 0
    _layout: _Layout | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        control = self.control
        if not 0 <= control <= 0xFFFF:
            raise MalformedDescriptor(f"Control {control:#x} does not fit in 16 bits")
        if self.dacl is not None:
            control |= Control.SE_DACL_PRESENT
        if self.sacl is not None:
            control |= Control.SE_SACL_PRESENT
        if type(control) is not Control:
            control = Control(control)
        object.__setattr__(self, "control", control)
        if not 0 <= self.revision <= 0xFF or not 0 <= self.sbz1 <= 0xFF:
            raise MalformedDescriptor("Revision and Sbz1 are single bytes")

    # ----------------------------------------------------------------- parsing

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> SecurityDescriptor:
        """Parse a self-relative security descriptor that fills ``data``.

        Raises :class:`MalformedDescriptor` for a short header, a revision other
        than 1, an offset into the header or outside the buffer, or a bad ACL,
        and :class:`MalformedSID` for a bad owner or group SID. Bytes after the
        last component are kept (see the module notes on exact round trips).
        SE_SELF_RELATIVE is not required: the offsets are read either way.
        """
        raw = bytes(data)
        if len(raw) < _HEADER_SIZE:
            raise MalformedDescriptor(
                f"security descriptor of {len(raw)} bytes is shorter than its {_HEADER_SIZE}-byte header"
            )
        revision, sbz1, control, o_owner, o_group, o_sacl, o_dacl = _HEADER.unpack_from(raw)
        if revision != SECURITY_DESCRIPTOR_REVISION:
            raise MalformedDescriptor(
                f"security descriptor Revision is {revision}, not {SECURITY_DESCRIPTOR_REVISION}"
            )

        def read(name: str, what: str, offset: int, reader):
            if offset < _HEADER_SIZE:
                raise MalformedDescriptor(f"{name} {offset} points into the {_HEADER_SIZE}-byte header")
            if offset >= len(raw):
                raise MalformedDescriptor(
                    f"{name} {offset} points outside the {len(raw)}-byte descriptor"
                )
            try:
                return reader(raw, offset)
            except MalformedData as exc:
                raise type(exc)(f"{what}: {exc}") from None

        owner = group = sacl = dacl = None
        lengths: list[int | None] = [None, None, None, None]
        if o_owner:
            owner = read("OffsetOwner", "owner", o_owner, SID.from_bytes)
            lengths[0] = owner.byte_length
        if o_group:
            group = read("OffsetGroup", "group", o_group, SID.from_bytes)
            lengths[1] = group.byte_length
        if control & Control.SE_SACL_PRESENT and o_sacl:
            sacl = read("OffsetSacl", "SACL", o_sacl, ACL.from_bytes)
            lengths[2] = raw[o_sacl + 2] | (raw[o_sacl + 3] << 8)  # AclSize
        if control & Control.SE_DACL_PRESENT and o_dacl:
            dacl = read("OffsetDacl", "DACL", o_dacl, ACL.from_bytes)
            lengths[3] = raw[o_dacl + 2] | (raw[o_dacl + 3] << 8)  # AclSize
        layout = _Layout(raw, (o_owner, o_group, o_sacl, o_dacl), tuple(lengths))
        return cls(revision, Control(control), owner, group, dacl, sacl, sbz1, layout)

    # ----------------------------------------------------------------- output

    def to_bytes(self) -> bytes:
        """The self-relative binary form (see the module notes on layout)."""
        parts = (
            self.owner.to_bytes() if self.owner is not None else None,
            self.group.to_bytes() if self.group is not None else None,
            self.sacl.to_bytes() if self.sacl is not None else None,
            self.dacl.to_bytes() if self.dacl is not None else None,
        )
        if self._layout is not None:
            kept = self._in_original_layout(parts)
            if kept is not None:
                return kept
        # Canonical: header, SACL, DACL, owner, group (Windows' order).
        offsets = [0, 0, 0, 0]
        body = []
        pos = _HEADER_SIZE
        for index in (2, 3, 0, 1):
            part = parts[index]
            if part is not None:
                offsets[index] = pos
                body.append(part)
                pos += len(part)
        header = _HEADER.pack(self.revision, self.sbz1, int(self.control), *offsets)
        return header + b"".join(body)

    def _in_original_layout(self, parts: tuple[bytes | None, ...]) -> bytes | None:
        layout = self._layout
        for part, length in zip(parts, layout.lengths):
            if (part is None) != (length is None) or (part is not None and len(part) != length):
                return None
        offsets = list(layout.offsets)
        # An ACL offset Windows ignored (its PRESENT flag clear) is kept, unless the flag is
        # now set without an ACL: that is a NULL ACL, whose offset must read 0.
        for index, present in ((2, Control.SE_SACL_PRESENT), (3, Control.SE_DACL_PRESENT)):
            if parts[index] is None and self.control & present:
                offsets[index] = 0
        buf = bytearray(layout.raw)
        _HEADER.pack_into(buf, 0, self.revision, self.sbz1, int(self.control), *offsets)
        placed = [(off, part) for off, part in zip(offsets, parts) if part is not None]
        for off, part in placed:
            buf[off : off + len(part)] = part
        # Components that overlap in the original must still agree with each other.
        for off, part in placed:
            if buf[off : off + len(part)] != part:
                return None
        return bytes(buf)

    # ----------------------------------------------------------------- facts

    @property
    def is_self_relative(self) -> bool:
        return bool(self.control & Control.SE_SELF_RELATIVE)

    @property
    def is_dacl_present(self) -> bool:
        """SE_DACL_PRESENT: the descriptor has a DACL (possibly a NULL one)."""
        return bool(self.control & Control.SE_DACL_PRESENT)

    @property
    def is_sacl_present(self) -> bool:
        return bool(self.control & Control.SE_SACL_PRESENT)

    @property
    def is_null_dacl(self) -> bool:
        """A NULL DACL: present but without an ACL, so every access is granted."""
        return self.is_dacl_present and self.dacl is None

    @property
    def is_dacl_protected(self) -> bool:
        """SE_DACL_PROTECTED: the DACL does not inherit from the parent."""
        return bool(self.control & Control.SE_DACL_PROTECTED)

    @property
    def is_dacl_auto_inherited(self) -> bool:
        return bool(self.control & Control.SE_DACL_AUTO_INHERITED)

    @property
    def sids(self) -> tuple[SID, ...]:
        """Owner, group, then every ACE SID of the DACL and SACL, without repeats."""
        found = [s for s in (self.owner, self.group) if s is not None]
        for acl in (self.dacl, self.sacl):
            if acl is not None:
                found.extend(acl.sids)
        return tuple(dict.fromkeys(found))
