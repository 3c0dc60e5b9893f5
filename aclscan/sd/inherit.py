"""The descriptor Windows gives a new file or directory: its explicit ACEs plus
the ACEs it inherits from its parent (MS-DTYP 2.5.3.4, CreatePrivateObjectSecurity
with automatic inheritance, as NTFS does).

What a child inherits from each inheritable parent ACE:

* a file takes ACEs marked OBJECT_INHERIT as effective ACEs;
* a directory takes CONTAINER_INHERIT ACEs as effective ACEs that stay inheritable
  (NO_PROPAGATE_INHERIT makes them effective only), and OBJECT_INHERIT-only ACEs as
  inherit-only ones, to hand on to its files;
* every inherited copy carries INHERITED_ACE;
* CREATOR OWNER / CREATOR GROUP become the child's owner / group in the effective
  copy, and generic rights are mapped to file rights (GENERIC_ALL -> FILE_ALL_ACCESS);
  where that changes the ACE and it must also stay inheritable, Windows writes two
  ACEs: the effective, mapped one and an INHERIT_ONLY copy of the original;
* a protected DACL (SE_DACL_PROTECTED) inherits nothing.

Explicit ACEs come first, inherited ones after, in the parent's order.
"""

from __future__ import annotations

from aclscan.sd.ace import ACE, AceFlags
from aclscan.sd.acl import ACL
from aclscan.sd.descriptor import Control, SecurityDescriptor
from aclscan.sd.sid import SID

CREATOR_OWNER = SID.from_string("S-1-3-0")
CREATOR_GROUP = SID.from_string("S-1-3-1")

GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
GENERIC_EXECUTE = 0x20000000
GENERIC_ALL = 0x10000000
# The generic mapping of files and directories (FILE_GENERIC_* in winnt.h).
FILE_GENERIC_MAPPING = {
    GENERIC_READ: 0x00120089,
    GENERIC_WRITE: 0x00120116,
    GENERIC_EXECUTE: 0x001200A0,
    GENERIC_ALL: 0x001F01FF,
}
INHERITANCE_FLAGS = (
    AceFlags.OBJECT_INHERIT_ACE
    | AceFlags.CONTAINER_INHERIT_ACE
    | AceFlags.NO_PROPAGATE_INHERIT_ACE
    | AceFlags.INHERIT_ONLY_ACE
)


def map_generic(mask: int) -> int:
    """Generic rights replaced by the file rights they stand for."""
    mapped = mask & ~(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL)
    for generic, specific in FILE_GENERIC_MAPPING.items():
        if mask & generic:
            mapped |= specific
    return mapped


def _with(ace: ACE, *, flags: int, mask: int | None = None, sid: SID | None = None) -> ACE:
    return ACE(
        ace.ace_type,
        flags=flags,
        mask=ace.mask if mask is None else mask,
        sid=ace.sid if sid is None else sid,
        object_type=ace.object_type,
        inherited_object_type=ace.inherited_object_type,
        object_flags=ace.object_flags,
        application_data=ace.application_data,
        server_sid=ace.server_sid,
        compound_type=ace.compound_type,
        raw_body=ace.raw_body,
    )


def inherited_aces(parent: ACL | None, *, is_dir: bool, owner: SID | None, group: SID | None) -> list[ACE]:
    """The ACEs a new child inherits from its parent's ACL, in order."""
    if parent is None:
        return []
    out: list[ACE] = []
    inherited = int(AceFlags.INHERITED_ACE)
    for ace in parent.aces:
        flags = int(ace.flags)
        object_inherit = bool(flags & AceFlags.OBJECT_INHERIT_ACE)
        container_inherit = bool(flags & AceFlags.CONTAINER_INHERIT_ACE)
        no_propagate = bool(flags & AceFlags.NO_PROPAGATE_INHERIT_ACE)
        other_flags = flags & ~INHERITANCE_FLAGS & ~inherited  # audit success/failure and the like
        if not is_dir:
            if object_inherit:
                out.append(_effective(ace, other_flags | inherited, owner, group))
            continue
        if container_inherit:
            if no_propagate:
                out.append(_effective(ace, other_flags | inherited, owner, group))
                continue
            keep = flags & (AceFlags.OBJECT_INHERIT_ACE | AceFlags.CONTAINER_INHERIT_ACE)
            effective = _effective(ace, other_flags | inherited, owner, group)
            if effective.sid == ace.sid and effective.mask == ace.mask:
                out.append(_with(ace, flags=other_flags | keep | inherited))
            else:
                out.append(effective)
                out.append(_with(ace, flags=other_flags | keep | AceFlags.INHERIT_ONLY_ACE | inherited))
        elif object_inherit and not no_propagate:
            out.append(_with(ace, flags=other_flags | AceFlags.OBJECT_INHERIT_ACE | AceFlags.INHERIT_ONLY_ACE
                             | inherited))
    return out


def _effective(ace: ACE, flags: int, owner: SID | None, group: SID | None) -> ACE:
    sid = ace.sid
    if sid == CREATOR_OWNER and owner is not None:
        sid = owner
    elif sid == CREATOR_GROUP and group is not None:
        sid = group
    return _with(ace, flags=flags, mask=map_generic(ace.mask), sid=sid)


def child_descriptor(parent: SecurityDescriptor, explicit: SecurityDescriptor, *, is_dir: bool) -> SecurityDescriptor:
    """``explicit`` (the child's own owner, group and explicit ACEs) with what it
    inherits from ``parent`` appended, unless its DACL or SACL is protected."""
    control = int(explicit.control) | Control.SE_SELF_RELATIVE
    owner, group = explicit.owner, explicit.group

    def merged(own: ACL | None, theirs: ACL | None, protected: int, auto: int) -> tuple[ACL | None, int]:
        nonlocal control
        if control & protected:
            return own, control
        inherited = inherited_aces(theirs, is_dir=is_dir, owner=owner, group=group)
        if not inherited:
            return own, control
        control |= auto
        return ACL(aces=tuple(own.aces if own is not None else ()) + tuple(inherited)), control

    dacl, control = merged(explicit.dacl, parent.dacl, Control.SE_DACL_PROTECTED, Control.SE_DACL_AUTO_INHERITED)
    sacl, control = merged(explicit.sacl, parent.sacl, Control.SE_SACL_PROTECTED, Control.SE_SACL_AUTO_INHERITED)
    if dacl is not None:
        control |= Control.SE_DACL_PRESENT
    if sacl is not None:
        control |= Control.SE_SACL_PRESENT
    return SecurityDescriptor(control=Control(control), owner=owner, group=group, dacl=dacl, sacl=sacl)
