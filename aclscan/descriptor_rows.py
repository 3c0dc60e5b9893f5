"""One distinct security descriptor, parsed once, turned into the rows the scan
database stores for it: its SDDL, owner, group, control, ACE rows and the roles
each SID plays in it. A descriptor that does not parse is kept (raw bytes and
the reason) so an auditor still sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aclscan.errors import MalformedData
from aclscan.sd import AceType, SecurityDescriptor
from aclscan.sd.sddl import ace_to_sddl, to_sddl


@dataclass(frozen=True)
class DescriptorInfo:
    key: int
    raw: bytes
    security_id: int | None
    source: str  # 'sds' ($Secure) or 'attribute' (the record's own $SECURITY_DESCRIPTOR)
    hash_ok: bool | None
    sddl: str | None = None
    owner: str | None = None
    group: str | None = None
    control: int | None = None
    error: str | None = None
    ace_rows: tuple[tuple, ...] = ()
    sid_roles: dict[str, frozenset[str]] = field(default_factory=dict)


def _type_name(ace) -> str:
    try:
        return AceType(ace.ace_type).name.removesuffix("_ACE_TYPE")
    except ValueError:
        return f"UNKNOWN_{ace.ace_type:#04x}"


def describe(key: int, raw: bytes, *, security_id: int | None, source: str, hash_ok: bool | None) -> DescriptorInfo:
    try:
        descriptor = SecurityDescriptor.from_bytes(raw)
    except MalformedData as exc:
        return DescriptorInfo(key, raw, security_id, source, hash_ok, error=f"malformed descriptor: {exc}")
    roles: dict[str, set[str]] = {}
    if descriptor.owner is not None:
        roles.setdefault(str(descriptor.owner), set()).add("owner")
    if descriptor.group is not None:
        roles.setdefault(str(descriptor.group), set()).add("group")
    rows = []
    for acl_name, acl in (("dacl", descriptor.dacl), ("sacl", descriptor.sacl)):
        if acl is None:
            continue
        for position, ace in enumerate(acl.aces):
            sid = ace.sid
            for each in ace.sids:
                roles.setdefault(str(each), set()).add(acl_name)
            object_type = getattr(ace, "object_type", None)
            inherited_object_type = getattr(ace, "inherited_object_type", None)
            rows.append(
                (
                    key,
                    acl_name,
                    position,
                    _type_name(ace),
                    ace.ace_type,
                    int(ace.flags),
                    int(ace.mask) if ace.mask is not None else None,
                    str(sid) if sid is not None else None,
                    int(ace.is_inherited),
                    str(object_type) if object_type else None,
                    str(inherited_object_type) if inherited_object_type else None,
                    _ace_sddl(ace),
                )
            )
    try:
        sddl = to_sddl(descriptor)
        error = None
    except MalformedData as exc:
        sddl, error = None, f"no SDDL form: {exc}"
    return DescriptorInfo(
        key,
        raw,
        security_id,
        source,
        hash_ok,
        sddl=sddl,
        owner=str(descriptor.owner) if descriptor.owner is not None else None,
        group=str(descriptor.group) if descriptor.group is not None else None,
        control=int(descriptor.control),
        error=error,
        ace_rows=tuple(rows),
        sid_roles={sid: frozenset(r) for sid, r in roles.items()},
    )


def _ace_sddl(ace) -> str | None:
    try:
        return ace_to_sddl(ace)
    except MalformedData:
        return None
