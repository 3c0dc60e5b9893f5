"""The SAM hive: the machine SID, local users, groups and aliases (local groups).

Layouts (checked on SAM hives written by Windows 7 and 10 in ../shared/data/windows;
an "entry" is three dwords, (offset, length, extra), the offset counted from the end
of its table)::

    SAM\\Domains\\Account F   revision at 0, NextRid at 0x48 (what follows is key
                             material: never read)
    SAM\\Domains\\Account V   4 entries at 0: security descriptor, domain SID, 2 empty
                             (the machine SID is also the value's last 24 bytes)
    Users\\<RID hex> F        RID at 0x30, primary group RID at 0x34, ACB flags at 0x38
    Users\\<RID hex> V        17 entries at 0 (0xCC bytes): descriptor, name, full name,
                             comment, ..., 13-16 the password hashes and histories
    Users\\Names\\<name>      default value: no data, its *type* is the RID
    Groups\\<RID hex> C       revision, RID, attributes, 2 dwords, then 4 entries at
                             0x14: descriptor, name, comment, member RIDs (extra = count)
    Aliases\\<RID hex> C      RID, then 4 entries at 4: descriptor, name, comment,
                             member SIDs one after another (extra = count)

Users' V entries 13 to 16 hold the password hashes: this module never reads them, and
no record it returns has a field that could hold one. Names are kept as Windows wrote
them: V strings are UTF-16LE, key names Latin-1 where Windows compressed them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from aclscan.errors import HiveError, MalformedData
from aclscan.hives.registry import Hive, HiveSource, HiveStatus, RegKey, open_hive, printable
from aclscan.sd.sid import SID

__all__ = ["ACB_DISABLED", "SamAlias", "SamGroup", "SamInfo", "SamUser", "read_sam", "sam_from_hive"]

ACB_DISABLED = 0x0001  # user F value, account control bits

_USER_V_ENTRIES = 17
_USER_V_NAME, _USER_V_FULL_NAME, _USER_V_COMMENT = 1, 2, 3  # never beyond: 13-16 are hashes
_GROUP_C_TABLE = 0x14
_ALIAS_C_TABLE = 0x04
_C_ENTRIES = 4


@dataclass(frozen=True)
class SamUser:
    """A local user account. There is deliberately no field for any password data."""

    rid: int
    name: str
    full_name: str = ""
    comment: str = ""
    disabled: bool = False
    acb_flags: int = 0  # USER_ACCOUNT_CONTROL bits of the F value (ACB_DISABLED = 1, ...)
    primary_group: int | None = None  # RID, 513 (None / Domain Users) as a rule


@dataclass(frozen=True)
class SamGroup:
    """A SAM group of the account domain (on a workstation only None, RID 513)."""

    rid: int
    name: str
    comment: str = ""
    member_rids: tuple[int, ...] = ()


@dataclass(frozen=True)
class SamAlias:
    """A local group (alias) and the SIDs of its members."""

    rid: int
    name: str
    comment: str = ""
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamInfo:
    """What a SAM hive says about the machine's accounts."""

    machine_sid: str
    # SAM does not record the computer's name (SECURITY's PolAcDmN and SYSTEM's
    # ComputerName do); read_sam leaves it None and VolumeHiveSource fills it in.
    computer_name: str | None
    users: tuple[SamUser, ...]
    groups: tuple[SamGroup, ...]
    aliases: tuple[SamAlias, ...]  # the account domain's own local groups (RID >= 1000)
    builtin_aliases: tuple[SamAlias, ...]  # S-1-5-32-<RID>
    next_rid: int | None = None
    status: HiveStatus | None = None
    problems: tuple[str, ...] = ()  # the hive's problems and the records skipped, one line each

    def user(self, rid: int) -> SamUser | None:
        return next((u for u in self.users if u.rid == rid), None)

    def alias(self, rid: int) -> SamAlias | None:
        return next((a for a in self.aliases if a.rid == rid), None)

    def builtin_alias(self, rid: int) -> SamAlias | None:
        return next((a for a in self.builtin_aliases if a.rid == rid), None)


# ---------------------------------------------------------------------------------------
# Binary helpers


def _entries(data: bytes, at: int, count: int, what: str) -> tuple[list[tuple[int, int, int]], int]:
    """The (offset, length, extra) entries of a table at ``at`` and where their data starts."""
    end = at + 12 * count
    if len(data) < end:
        raise HiveError(f"{what}: {len(data)} bytes, too short for its {count}-entry table")
    return [struct.unpack_from("<III", data, at + 12 * i) for i in range(count)], end


def _blob(data: bytes, base: int, entry: tuple[int, int, int], what: str) -> bytes:
    offset, length, _extra = entry
    start = base + offset
    if start + length > len(data):
        raise HiveError(f"{what}: an entry runs past the end of the value")
    return data[start : start + length]


def _utf16(raw: bytes) -> str:
    return raw[: len(raw) // 2 * 2].decode("utf-16-le", "replace")


def _rid_of(key: RegKey) -> int | None:
    try:
        rid = int(key.name, 16)
    except ValueError:
        return None
    return rid if len(key.name) == 8 else None


def _sids(raw: bytes, count: int, what: str) -> tuple[str, ...]:
    out = []
    position = 0
    for _ in range(count):
        if position >= len(raw):
            raise HiveError(f"{what}: {count} members announced, {len(out)} stored")
        try:
            sid = SID.from_bytes(raw, position)
        except MalformedData as exc:
            raise HiveError(f"{what}: member {len(out) + 1}: {exc}") from None
        out.append(str(sid))
        position += sid.byte_length
    return tuple(out)


# ---------------------------------------------------------------------------------------
# Records


def _machine_sid(account: RegKey, problems: list[str]) -> str:
    value = account.value("V")
    if value is None:
        raise HiveError("SAM\\Domains\\Account has no V value: no machine SID")
    data = value.raw
    try:
        entries, base = _entries(data, 0, 4, "SAM\\Domains\\Account V")
        sid = SID.from_bytes(_blob(data, base, entries[1], "SAM\\Domains\\Account V"))
    except (HiveError, MalformedData) as exc:
        problems.append(f"SAM\\Domains\\Account V: {exc}; the machine SID is taken from its last 24 bytes")
        try:
            sid = SID.from_bytes(data[-24:])
        except MalformedData:
            raise HiveError("SAM\\Domains\\Account V holds no machine SID") from None
    return str(sid)


def _next_rid(account: RegKey) -> int | None:
    value = account.value("F")
    if value is None or len(value.raw) < 0x4C:
        return None
    return struct.unpack_from("<I", value.raw, 0x48)[0]


def _names(container: RegKey) -> dict[int, str]:
    """RID -> name from ``Names\\<name>`` keys (the default value's type is the RID)."""
    names_key = container.subkey("Names")
    found: dict[int, str] = {}
    if names_key is None:
        return found
    for key in names_key.subkeys():
        value = key.value("")
        if value is not None:
            found[value.type] = key.name
    return found


def _user(key: RegKey, rid: int, names: dict[int, str]) -> SamUser:
    what = f"user {key.name}"
    v = key.value("V")
    if v is None:
        raise HiveError(f"{what}: no V value")
    # Only the first four entries are looked at; the data starts after all 17.
    if len(v.raw) < 12 * _USER_V_ENTRIES:
        raise HiveError(f"{what} V: {len(v.raw)} bytes, too short for its {_USER_V_ENTRIES}-entry table")
    entries, _end = _entries(v.raw, 0, _USER_V_COMMENT + 1, f"{what} V")
    base = 12 * _USER_V_ENTRIES
    name = _utf16(_blob(v.raw, base, entries[_USER_V_NAME], f"{what} V")) or names.get(rid, "")
    full_name = _utf16(_blob(v.raw, base, entries[_USER_V_FULL_NAME], f"{what} V"))
    comment = _utf16(_blob(v.raw, base, entries[_USER_V_COMMENT], f"{what} V"))
    flags, group = 0, None
    f = key.value("F")
    if f is not None and len(f.raw) >= 0x3A:
        f_rid, group, flags = struct.unpack_from("<IIH", f.raw, 0x30)
        if f_rid != rid:
            raise HiveError(f"{what}: its F value says RID {f_rid}")
    if not name:
        raise HiveError(f"{what}: no name")
    return SamUser(rid, name, full_name, comment, bool(flags & ACB_DISABLED), flags, group)


def _group(key: RegKey, rid: int, names: dict[int, str]) -> SamGroup:
    what = f"group {key.name}"
    c = key.value("C")
    if c is None:
        raise HiveError(f"{what}: no C value")
    entries, base = _entries(c.raw, _GROUP_C_TABLE, _C_ENTRIES, f"{what} C")
    name = _utf16(_blob(c.raw, base, entries[1], f"{what} C"))
    comment = _utf16(_blob(c.raw, base, entries[2], f"{what} C"))
    members = _blob(c.raw, base, entries[3], f"{what} C")
    count = entries[3][2]
    if count * 4 > len(members):
        raise HiveError(f"{what}: {count} members announced, room for {len(members) // 4}")
    return SamGroup(rid, name, comment, struct.unpack_from(f"<{count}I", members))


def _alias(key: RegKey, rid: int, names: dict[int, str]) -> SamAlias:
    what = f"alias {key.name}"
    c = key.value("C")
    if c is None:
        raise HiveError(f"{what}: no C value")
    entries, base = _entries(c.raw, _ALIAS_C_TABLE, _C_ENTRIES, f"{what} C")
    name = _utf16(_blob(c.raw, base, entries[1], f"{what} C"))
    comment = _utf16(_blob(c.raw, base, entries[2], f"{what} C"))
    members = _sids(_blob(c.raw, base, entries[3], f"{what} C"), entries[3][2], what)
    return SamAlias(rid, name, comment, members)


def _walk(container: RegKey | None, read, where: str, problems: list[str]) -> list:
    """Every ``<RID hex>`` subkey of ``container`` read with ``read``; a broken one is skipped."""
    if container is None:
        return []
    names = _names(container)
    found = []
    broken: set[int] = set()
    for key in container.subkeys():
        rid = _rid_of(key)
        if rid is None:
            continue
        try:
            record = read(key, rid, names)
        except HiveError as exc:
            problems.append(f"{where}\\{key.name} skipped: {exc}")
            broken.add(rid)
            continue
        if rid in names and names[rid].casefold() != record.name.casefold():
            problems.append(f"{where}\\{key.name}: named {record.name!r}, but Names lists {names[rid]!r}")
        found.append(record)
    listed = {r.rid for r in found}
    for rid, name in sorted(names.items()):
        if rid not in listed and rid not in broken:
            problems.append(f"{where}\\Names\\{name} names RID {rid}, which has no {where}\\{rid:08X} key")
    return sorted(found, key=lambda r: r.rid)


def sam_from_hive(hive: Hive) -> SamInfo:
    """:func:`read_sam` over a hive already open."""
    hive.require("SAM")
    problems: list[str] = []
    account = hive.key("SAM\\Domains\\Account")
    if account is None:
        raise HiveError(f"{hive.label}: no SAM\\Domains\\Account key: no machine SID")
    machine = _machine_sid(account, problems)
    users = _walk(account.subkey("Users"), _user, "Account\\Users", problems)
    groups = _walk(account.subkey("Groups"), _group, "Account\\Groups", problems)
    aliases = _walk(account.subkey("Aliases"), _alias, "Account\\Aliases", problems)
    builtin = hive.key("SAM\\Domains\\Builtin")
    builtin_aliases = _walk(builtin.subkey("Aliases") if builtin else None, _alias, "Builtin\\Aliases", problems)
    status = hive.status
    return SamInfo(
        machine_sid=machine,
        computer_name=None,
        users=tuple(users),
        groups=tuple(groups),
        aliases=tuple(aliases),
        builtin_aliases=tuple(builtin_aliases),
        next_rid=_next_rid(account),
        status=status,
        problems=tuple(status.problems) + tuple(printable(p) for p in problems),
    )


def read_sam(source: HiveSource | Hive, **open_args) -> SamInfo:
    """The accounts of a SAM hive (a path, bytes, a binary file or an open :class:`Hive`).

    ``open_args`` go to :func:`~aclscan.hives.registry.open_hive` (``logs``, ``label``).
    Raises :class:`~aclscan.errors.HiveError` for what is no hive and
    :class:`~aclscan.errors.WrongHive` for another kind of hive; a user, group or alias
    that cannot be read is skipped and named in ``problems``.
    """
    hive = source if isinstance(source, Hive) else open_hive(source, expect="SAM", **open_args)
    return sam_from_hive(hive)
