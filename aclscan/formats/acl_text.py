"""ACLs as icacls shows them: ``BUILTIN\\Administrators:(OI)(CI)(F)``, one ACE a line.

The notation is icacls's (Microsoft, "icacls" command reference): ``(I)`` inherited,
``(OI)`` object inherit, ``(CI)`` container inherit, ``(IO)`` inherit only,
``(NP)`` no propagation; the simple rights F, M, RX, R, W where the mask is exactly
one of them (or a sum of them), else the specific rights by icacls's abbreviations;
``(DENY)`` for access-denied ACEs. A principal is named through
:class:`aclscan.account_names.AccountNames`, so a SID with a problem verdict reads
``S-1-5-21-...-1000 (was MEMBER\\Ken, rid_collision)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ACE flags (MS-DTYP 2.4.4.1), in the order icacls prints them; INHERITED first.
_FLAGS = ((0x10, "I"), (0x01, "OI"), (0x02, "CI"), (0x08, "IO"), (0x04, "NP"))
_AUDIT_FLAGS = ((0x40, "S"), (0x80, "F"))  # successful / failed access audited

_GENERIC = ((0x10000000, "GA"), (0x80000000, "GR"), (0x40000000, "GW"), (0x20000000, "GE"))
# icacls's simple rights: (name, mask), largest first, each taken where wholly present.
_SIMPLE = (("F", 0x1F01FF), ("M", 0x1301BF), ("RX", 0x1200A9), ("R", 0x120089), ("W", 0x100116))
_SPECIFIC = ((0x10000, "D"), (0x20000, "RC"), (0x40000, "WDAC"), (0x80000, "WO"), (0x100000, "S"),
             (0x1000000, "AS"), (0x2000000, "MA"), (0x1, "RD"), (0x2, "WD"), (0x4, "AD"), (0x8, "REA"),
             (0x10, "WEA"), (0x20, "X"), (0x40, "DC"), (0x80, "RA"), (0x100, "WA"))
_LABEL_POLICY = ((0x1, "NW"), (0x2, "NR"), (0x4, "NX"))
SE_DACL_PRESENT = 0x0004
_NULL_DACL = re.compile(r"D:[A-Z]*NO_ACCESS_CONTROL")


def rights_text(mask: int, ace_type: str = "ACCESS_ALLOWED") -> str:
    """The access mask as icacls writes it: ``(F)``, ``(RX,W)``, ``(GR,GE)``, ``(RD,X,S)``."""
    if ace_type == "SYSTEM_MANDATORY_LABEL":
        return "(" + ",".join(n for bit, n in _LABEL_POLICY if mask & bit) + ")"
    parts = [name for bit, name in _GENERIC if mask & bit]
    rest = mask & 0x0FFFFFFF
    for name, simple in _SIMPLE:
        if rest & simple == simple:
            parts.append(name)
            rest &= ~simple
            if name in ("F", "M"):
                break  # F and M hold the others
    # what no simple right covers, bit by bit as icacls lists it
    parts += [name for bit, name in _SPECIFIC if rest & bit]
    rest &= ~0x31F01FF
    if rest:
        parts.append(f"0x{rest:x}")
    return "(" + ",".join(parts or ["0x0"]) + ")"


def ace_text(principal: str, ace_type: str, flags: int, mask: int) -> str:
    """One ACE: ``principal:(flags)(DENY)(rights)``."""
    shown = "".join(f"({name})" for bit, name in _FLAGS if flags & bit)
    if ace_type.startswith("ACCESS_DENIED"):
        shown += "(DENY)"
    elif ace_type.startswith("SYSTEM_AUDIT") or ace_type.startswith("SYSTEM_ALARM"):
        shown += "(AUDIT:" + ",".join(n for bit, n in _AUDIT_FLAGS if flags & bit) + ")"
    elif ace_type not in ("ACCESS_ALLOWED", "SYSTEM_MANDATORY_LABEL"):
        shown += f"({ace_type.lower()})"  # object, callback, compound, resource attribute, scoped policy
    return f"{principal}:{shown}{rights_text(mask, ace_type)}"


@dataclass(frozen=True)
class AclLines:
    """One descriptor in the icacls view: the owner and group lines and one line per ACE."""

    owner: str | None
    group: str | None
    aces: tuple[str, ...]
    error: str | None = None

    def lines(self) -> list[str]:
        lines = []
        if self.error:
            lines.append(f"(descriptor unreadable: {self.error})")
        if self.owner:
            lines.append(f"Owner: {self.owner}")
        if self.group:
            lines.append(f"Group: {self.group}")
        return lines + list(self.aces)


def descriptor_lines(db, descriptor_key: int, names) -> AclLines:
    """A stored descriptor (its ``descriptors`` row and ``aces``) in the icacls view:
    the DACL, then the SACL's audit ACEs and label."""
    row = db.execute('SELECT owner, "group", error, sddl, control FROM descriptors WHERE key = ?',
                     [descriptor_key]).fetchone()
    if row is None:
        return AclLines(None, None, (), "no such descriptor")
    owner, group, error, sddl, control = row
    aces = db.execute("SELECT acl, type, flags, mask, sid FROM aces WHERE descriptor_key = ?"
                      " ORDER BY acl = 'sacl', position", [descriptor_key]).fetchall()
    lines = tuple(ace_text(names.label(sid) if sid else "?", ace_type, flags or 0, mask or 0)
                  for acl, ace_type, flags, mask, sid in aces)
    if error is None and not any(acl == "dacl" for acl, *_ in aces):
        # MS-DTYP 2.4.6: no DACL (SE_DACL_PRESENT clear) or a NULL one grants everyone everything;
        # an empty DACL grants nothing to anyone.
        if not (control or 0) & SE_DACL_PRESENT or _NULL_DACL.search(sddl or ""):
            lines = ("Everyone:(F) (no DACL: no access control)",) + lines
        else:
            lines = ("(empty DACL: no access for anyone)",) + lines
    return AclLines(names.label(owner) if owner else None, names.label(group) if group else None, lines, error)


def names_summary(acl: AclLines) -> str:
    """A descriptor on one line, for the ``--names`` column of listings."""
    parts = []
    if acl.owner:
        parts.append(f"O:{acl.owner}")
    if acl.group:
        parts.append(f"G:{acl.group}")
    return "  ".join(parts + list(acl.aces))
