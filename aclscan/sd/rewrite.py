"""SIDs substituted, added and dropped in a security descriptor: the one rewrite every
writer (the plan's descriptors, the hive editor's sk cells and stored descriptors) applies.

``replace`` substitutes a SID everywhere; ``add`` keeps each ACE of the old SID and puts a
copy naming the new SID right after it (a staged migration: both work), the owner and
group being substituted as with ``replace`` (a descriptor has one owner); ``remove`` drops
the SID's ACEs and gives its ownership (primary group) to ``owner`` (``group``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from aclscan.sd.acl import ACL
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sid import SID

__all__ = ["ADMINISTRATORS", "Rewrite"]

ADMINISTRATORS = "S-1-5-32-544"


@dataclass(frozen=True)
class Rewrite:
    """SIDs to substitute, to add beside, and to drop, applied to any descriptor."""

    replace: dict[str, str] = field(default_factory=dict)
    remove: frozenset[str] = frozenset()
    add: dict[str, str] = field(default_factory=dict)
    owner: str = ADMINISTRATORS  # a removed SID that owns the file gives way to this
    group: str = ADMINISTRATORS

    def owner_of(self, sid: SID | None) -> SID | None:
        return self._principal(sid, self.owner)

    def group_of(self, sid: SID | None) -> SID | None:
        return self._principal(sid, self.group)

    def _principal(self, sid: SID | None, fallback: str) -> SID | None:
        if sid is None:
            return None
        text = str(sid)
        if text in self.replace or text in self.add:
            return SID.from_string(self.replace.get(text) or self.add[text])
        if text in self.remove:
            return SID.from_string(fallback)
        return sid

    def acl(self, acl: ACL | None) -> ACL | None:
        if acl is None:
            return None
        aces = []
        changed = False
        for ace in acl.aces:
            sid = str(ace.sid) if ace.sid is not None else None
            if sid in self.remove:
                changed = True
                continue
            updates = {}
            if sid in self.replace:
                updates["sid"] = SID.from_string(self.replace[sid])
            server = str(ace.server_sid) if ace.server_sid is not None else None
            if server in self.replace:
                updates["server_sid"] = SID.from_string(self.replace[server])
            if updates:
                changed = True
                ace = replace(ace, **updates)
            aces.append(ace)
            if sid in self.add:
                twin = replace(ace, sid=SID.from_string(self.add[sid]))
                if twin not in acl.aces:  # already granted to the new SID: nothing to add
                    aces.append(twin)
                    changed = True
        return ACL(revision=acl.revision, aces=tuple(aces)) if changed else acl

    def apply(self, sd: SecurityDescriptor) -> SecurityDescriptor:
        return SecurityDescriptor(revision=sd.revision, control=sd.control, owner=self.owner_of(sd.owner),
                                  group=self.group_of(sd.group), dacl=self.acl(sd.dacl), sacl=self.acl(sd.sacl),
                                  sbz1=sd.sbz1)

    def rewritten(self, old: SecurityDescriptor) -> tuple[SecurityDescriptor, bool]:
        """(the new descriptor, whether removals were held back). Dropping an orphan's ACEs
        must not leave an empty DACL, which denies everyone: then only the substitutions apply."""
        new = self.apply(old)
        if self.remove and old.dacl is not None and old.dacl.aces and new.dacl is not None and not new.dacl.aces:
            return replace(self, remove=frozenset()).apply(old), True
        return new, False
