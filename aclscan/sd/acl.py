"""Access control lists (MS-DTYP 2.4.5), binary form.

An ACL is an 8-byte header followed by AceCount ACEs::

    AclRevision  1 byte   ACL_REVISION (2) or ACL_REVISION_DS (4, object ACEs)
    Sbz1         1 byte   reserved
    AclSize      2 bytes  header + ACEs (+ any slack), little-endian
    AceCount     2 bytes
    Sbz2         2 bytes  reserved

Windows may leave AclSize larger than the ACEs need (room to add ACEs). The
bytes after the last ACE up to AclSize are kept as private slack, with the
reserved fields, so that ``ACL.from_bytes(b).to_bytes() == b``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from aclscan.errors import MalformedData, MalformedDescriptor
from aclscan.sd.ace import _OBJECT_TYPES, ACE, _ace_from_raw
from aclscan.sd.sid import SID

__all__ = ["ACL", "ACL_REVISION", "ACL_REVISION_DS"]

ACL_REVISION = 2
ACL_REVISION_DS = 4

_HEADER = struct.Struct("<BBHHH")


@dataclass(frozen=True, slots=True)
class ACL:
    """An ACL: its AclRevision and its ACEs in order.

    ``revision`` None (the default when building) becomes ACL_REVISION_DS if
    any ACE is an object ACE, else ACL_REVISION, as Windows chooses.
    """

    revision: int | None = None
    aces: tuple[ACE, ...] = ()
    _sbz1: int = field(default=0, compare=False, repr=False)
    _sbz2: int = field(default=0, compare=False, repr=False)
    _slack: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        aces = self.aces
        if type(aces) is not tuple:
            aces = tuple(aces)
            object.__setattr__(self, "aces", aces)
        if self.revision is None:
            object_ace = any(ace.ace_type in _OBJECT_TYPES for ace in aces)
            object.__setattr__(self, "revision", ACL_REVISION_DS if object_ace else ACL_REVISION)
        elif not 0 <= self.revision <= 0xFF:
            raise MalformedDescriptor(f"AclRevision {self.revision} does not fit in a byte")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> ACL:
        """Parse the ACL that starts at ``offset`` in ``data``.

        Raises :class:`MalformedDescriptor` if the ACL runs past the buffer or an
        ACE runs past AclSize (a lying AceCount), naming the ACE.
        """
        if offset < 0 or offset + 8 > len(data):
            raise MalformedDescriptor(
                f"ACL at offset {offset} is truncated: need 8 header bytes, buffer has {len(data)}"
            )
        revision, sbz1, size, count, sbz2 = _HEADER.unpack_from(data, offset)
        if size < 8:
            raise MalformedDescriptor(f"ACL at offset {offset} has AclSize {size}, less than its header")
        end = offset + size
        if end > len(data):
            raise MalformedDescriptor(
                f"ACL at offset {offset} has AclSize {size} but only {len(data) - offset} bytes remain"
            )
        aces = []
        pos = offset + 8
        for index in range(count):
            if pos + 4 > end:
                raise MalformedDescriptor(
                    f"ACL at offset {offset}: AceCount is {count} but ACE {index} "
                    f"(at offset {pos}) starts past AclSize {size}"
                )
            ace_size = data[pos + 2] | (data[pos + 3] << 8)
            if ace_size < 4:
                raise MalformedDescriptor(
                    f"ACL at offset {offset}: ACE {index} (at offset {pos}) has AceSize {ace_size}"
                )
            if pos + ace_size > end:
                raise MalformedDescriptor(
                    f"ACL at offset {offset}: AceCount is {count} but ACE {index} "
                    f"(at offset {pos}, AceSize {ace_size}) runs past AclSize {size}"
                )
            try:
                aces.append(_ace_from_raw(bytes(data[pos : pos + ace_size])))
            except MalformedData as exc:
                raise type(exc)(f"ACL at offset {offset}: ACE {index} (at offset {pos}): {exc}") from None
            pos += ace_size
        return cls(revision, tuple(aces), sbz1, sbz2, bytes(data[pos:end]))

    def to_bytes(self) -> bytes:
        """The binary form: header, ACEs, then any slack kept from parsing."""
        body = b"".join(ace.to_bytes() for ace in self.aces) + self._slack
        size = 8 + len(body)
        if size > 0xFFFF:
            raise MalformedDescriptor(f"ACL of {size} bytes does not fit AclSize (16 bits)")
        if len(self.aces) > 0xFFFF:
            raise MalformedDescriptor(f"{len(self.aces)} ACEs do not fit AceCount (16 bits)")
        return _HEADER.pack(self.revision, self._sbz1, size, len(self.aces), self._sbz2) + body

    @property
    def size(self) -> int:
        """AclSize: the length of :meth:`to_bytes`."""
        return 8 + sum(ace.size for ace in self.aces) + len(self._slack)

    # No __len__ on purpose: an empty ACL must stay truthy, so that ``if sd.dacl:``
    # can never confuse an empty DACL (deny everyone) with a NULL DACL (allow all).

    def __iter__(self):
        return iter(self.aces)

    def __getitem__(self, index):
        return self.aces[index]

    @property
    def sids(self) -> tuple[SID, ...]:
        """Every SID of every ACE, in order, without repeats."""
        return tuple(dict.fromkeys(sid for ace in self.aces for sid in ace.sids))
