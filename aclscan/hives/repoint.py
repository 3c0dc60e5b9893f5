"""Re-pointing an old SID to a new one in the machine's hives, offline.

Each function takes a hive's bytes and returns an :class:`~aclscan.hives.editor.EditResult`
(the new bytes and what changed); the hive is read with the project's readers
(``sam``, ``security``) and written through :mod:`aclscan.hives.editor` only.

* :func:`repoint_lsa_account`: ``SECURITY\\Policy\\Accounts\\<old SID>`` becomes the new
  SID's (key name, ``Sid``); where the new SID has an account already, the old one's
  logon rights (ActSysAc bits) and privileges (Privilgs LUIDs) are merged into it and the
  old key is deleted;
* :func:`repoint_alias_member`: every alias whose ``C`` value lists the old SID lists the
  new one instead, and the reverse index ``Aliases\\Members\\<domain SID>\\<RID>`` (the
  aliases a member belongs to, kept by SAM beside each domain's aliases) moves with it;
* :func:`remove_alias_member` and :func:`remove_lsa_account`: the old SID taken out of the
  aliases and the LSA accounts, where its access is removed rather than re-pointed;
* :func:`repoint_profile`: ``ProfileList\\<old SID>`` becomes the new SID's (key name,
  ``Sid``), and ``ProfileGuid\\{GUID}\\SidString`` follows;
* :func:`replace_sids_in_key_security` and :func:`replace_sids_in_value_descriptor`: every
  SID of a mapping replaced in the key descriptors (sk cells) and in a descriptor stored
  in a value, through :class:`~aclscan.sd.rewrite.Rewrite`.

Layouts are those ``sam`` and ``security`` document: an alias ``C`` value is the RID and
4 (offset, length, extra) entries, offsets counted from the table's end, the members
entry's extra being their count; ``Privilgs`` is a PRIVILEGE_SET (count, control, then
LUID_AND_ATTRIBUTES); a reverse-index key's default value has the alias count as its type
and the alias RIDs as its data, its domain key's default value the member count as type.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import datetime

from aclscan.errors import HiveEditError, MalformedData, MissingHiveKey
from aclscan.hives.editor import EditResult, HiveEditor, edit_hive
from aclscan.hives.sam import read_sam
from aclscan.hives.security import read_security
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.rewrite import Rewrite
from aclscan.sd.sid import SID

__all__ = [
    "ACCOUNTS",
    "PROFILE_GUIDS",
    "PROFILE_LIST",
    "SAM_ALIAS_CONTAINERS",
    "remove_alias_member",
    "remove_lsa_account",
    "repoint_alias_member",
    "repoint_lsa_account",
    "repoint_profile",
    "detach_profile",
    "replace_sids_in_key_security",
    "replace_sids_in_value_descriptor",
]

ACCOUNTS = "Policy\\Accounts"
PROFILE_LIST = "Microsoft\\Windows NT\\CurrentVersion\\ProfileList"
PROFILE_GUIDS = "Microsoft\\Windows NT\\CurrentVersion\\ProfileGuid"
SAM_ALIAS_CONTAINERS = ("SAM\\Domains\\Account\\Aliases", "SAM\\Domains\\Builtin\\Aliases")
_ALIAS_C_TABLE, _C_ENTRIES, _C_MEMBERS = 4, 4, 3
REG_NONE = 0


def _sid(text: str, what: str) -> SID:
    try:
        return SID.from_string(text)
    except (MalformedData, TypeError, AttributeError):
        raise HiveEditError(f"{what} {text!r} is not a SID") from None


def _pair(old_sid: str, new_sid: str) -> tuple[SID, SID]:
    old, new = _sid(old_sid, "old SID"), _sid(new_sid, "new SID")
    if old == new:
        raise HiveEditError(f"old and new SID are the same ({old})")
    return old, new


def _edit(data: bytes, edit: Callable[[HiveEditor], None], options: dict) -> EditResult:
    return edit_hive(data, edit, **options)


def _options(logs_applied: bool, timestamp: datetime | int | None, label: str) -> dict:
    return {"logs_applied": logs_applied, "timestamp": timestamp, "label": label}


# --------------------------------------------------------------------------- LSA rights


def _privilege_entries(raw: bytes, what: str) -> tuple[int, list[tuple[int, int, int]]]:
    """(Control, [(LowPart, HighPart, Attributes)]) of a stored PRIVILEGE_SET."""
    if len(raw) < 8:
        raise HiveEditError(f"{what}: {len(raw)} bytes, too short for a PRIVILEGE_SET")
    count, control = struct.unpack_from("<II", raw)
    if 8 + 12 * count > len(raw):
        raise HiveEditError(f"{what}: {count} privileges announced, room for {(len(raw) - 8) // 12}")
    return control, [struct.unpack_from("<IiI", raw, 8 + 12 * i) for i in range(count)]


def _merge_into(ed: HiveEditor, old_key: str, new_key: str) -> list[str]:
    """Merge the old account's ActSysAc bits and Privilgs entries into the new account's."""
    merged = []
    old_bits = _default_of(ed, f"{old_key}\\ActSysAc")
    if old_bits is not None:
        kind, raw = old_bits
        new_bits = _default_of(ed, f"{new_key}\\ActSysAc")
        bits = struct.unpack_from("<I", raw.ljust(4, b"\0"))[0]
        if new_bits is not None:
            kind, have = new_bits
            bits |= struct.unpack_from("<I", have.ljust(4, b"\0"))[0]
        _set_default(ed, f"{new_key}\\ActSysAc", kind, struct.pack("<I", bits))
        merged.append("ActSysAc")
    old_privileges = _default_of(ed, f"{old_key}\\Privilgs")
    if old_privileges is not None:
        kind, raw = old_privileges
        _control, entries = _privilege_entries(raw, f"{old_key}\\Privilgs")
        new_privileges = _default_of(ed, f"{new_key}\\Privilgs")
        control, have = 0, []
        if new_privileges is not None:
            kind, raw_new = new_privileges
            control, have = _privilege_entries(raw_new, f"{new_key}\\Privilgs")
        held = {(low, high) for low, high, _ in have}
        union = have + [e for e in entries if (e[0], e[1]) not in held]
        body = b"".join(struct.pack("<IiI", *e) for e in union)
        _set_default(ed, f"{new_key}\\Privilgs", kind, struct.pack("<II", len(union), control) + body)
        merged.append("Privilgs")
    return merged


def _default_of(ed: HiveEditor, path: str) -> tuple[int, bytes] | None:
    if not ed.has_key(path) or "" not in {n.lower() for n in ed.value_names(path)}:
        return None
    return ed.value(path, "")


def _set_default(ed: HiveEditor, path: str, kind: int, data: bytes) -> None:
    if not ed.has_key(path):
        ed.add_key(path)
    ed.set_value(path, "", kind, data)


def repoint_lsa_account(security: bytes, old_sid: str, new_sid: str, *, keep_old: bool = False,
                        logs_applied: bool = False, timestamp: datetime | int | None = None,
                        label: str = "SECURITY") -> EditResult:
    """``Policy\\Accounts\\<old>`` re-pointed to ``new`` (merged where ``new`` has an account).
    With ``keep_old`` (a staged migration, ``plan --mode add``) the old account keeps its
    rights and ``new`` gets the same."""
    old, new = _pair(old_sid, new_sid)
    old_key, new_key = f"{ACCOUNTS}\\{old}", f"{ACCOUNTS}\\{new}"

    def edit(ed: HiveEditor) -> None:
        # Read after the editor has refused a dirty hive; the reader knows the account layout.
        if str(old) not in read_security(security, label=label).accounts:
            raise MissingHiveKey(f"{label}: no LSA account for {old} (no {old_key})")
        if ed.has_key(new_key):
            _merge_into(ed, old_key, new_key)
            if not keep_old:
                ed.delete_key(old_key, recursive=True)
        else:
            if keep_old:
                ed.copy_key(old_key, new_key)
            else:
                ed.rename_key(old_key, str(new))
            kind = ed.value(f"{new_key}\\Sid", "")[0] if _default_of(ed, f"{new_key}\\Sid") else REG_NONE
            _set_default(ed, f"{new_key}\\Sid", kind, new.to_bytes())
        _rewrite_default_descriptor(ed, f"{new_key}\\SecDesc", Rewrite(replace={str(old): str(new)}))

    return _edit(security, edit, _options(logs_applied, timestamp, label))


def remove_lsa_account(security: bytes, old_sid: str, *, logs_applied: bool = False,
                       timestamp: datetime | int | None = None, label: str = "SECURITY") -> EditResult:
    """``Policy\\Accounts\\<old>`` deleted with its rights and privileges (for ``plan --mode
    remove`` and ``--remove-orphans``)."""
    old = _sid(old_sid, "old SID")
    return _edit(security, lambda ed: ed.delete_key(f"{ACCOUNTS}\\{old}", recursive=True),
                 _options(logs_applied, timestamp, label))


def _rewrite_default_descriptor(ed: HiveEditor, path: str, rewrite: Rewrite) -> None:
    """The descriptor an LSA object keeps in its SecDesc key, where it names a mapped SID."""
    found = _default_of(ed, path)
    if found is None:
        return
    kind, raw = found
    try:
        sd = SecurityDescriptor.from_bytes(raw)
    except MalformedData:
        return  # not ours to judge: the LSA object's descriptor is left as it is
    new = rewrite.apply(sd).to_bytes()
    if new != raw:
        ed.set_value(path, "", kind, new)


# --------------------------------------------------------------------------- SAM aliases


def _alias_c_with(raw: bytes, old: SID, new: SID | None, what: str, keep_old: bool = False) -> bytes | None:
    """The alias C value with ``old`` replaced by ``new`` among its members (``old`` dropped
    where ``new`` is a member already, or ``new`` is None; with ``keep_old``, ``new`` added
    after ``old``); None when there is nothing to change."""
    end = _ALIAS_C_TABLE + 12 * _C_ENTRIES
    if len(raw) < end:
        raise HiveEditError(f"{what}: {len(raw)} bytes, too short for its entry table")
    entries = [list(struct.unpack_from("<III", raw, _ALIAS_C_TABLE + 12 * i)) for i in range(_C_ENTRIES)]
    offset, length, count = entries[_C_MEMBERS]
    blob = raw[end + offset : end + offset + length]
    members, position = [], 0
    for _ in range(count):
        try:
            sid = SID.from_bytes(blob, position)
        except MalformedData as exc:
            raise HiveEditError(f"{what}: member {len(members) + 1}: {exc}") from None
        members.append(sid)
        position += sid.byte_length
    if old not in members or (keep_old and new in members):
        return None
    if keep_old:
        at = members.index(old) + 1
        updated = members[:at] + [new] + members[at:]
    elif new is None or new in members:
        updated = [m for m in members if m != old]
    else:
        updated = [new if m == old else m for m in members]
    new_blob = b"".join(m.to_bytes() for m in updated)
    if len(new_blob) == length:  # same length: the rest of the value keeps its bytes
        entries[_C_MEMBERS][2] = len(updated)
        table = b"".join(struct.pack("<III", *e) for e in entries)
        return raw[:_ALIAS_C_TABLE] + table + raw[end : end + offset] + new_blob + raw[end + offset + length :]
    # Lay the blobs out again in their order, each 4-byte aligned, as SAM writes them.
    blobs = {i: raw[end + e[0] : end + e[0] + e[1]] for i, e in enumerate(entries)}
    blobs[_C_MEMBERS] = new_blob
    entries[_C_MEMBERS][2] = len(updated)
    data = bytearray()
    for i in sorted(range(_C_ENTRIES), key=lambda i: entries[i][0]):
        data += bytes(-len(data) % 4)
        entries[i][0], entries[i][1] = len(data), len(blobs[i])
        data += blobs[i]
    table = b"".join(struct.pack("<III", *e) for e in entries)
    return raw[:_ALIAS_C_TABLE] + table + bytes(data)


def _move_reverse_index(ed: HiveEditor, container: str, old: SID, new: SID | None, keep_old: bool = False) -> bool:
    """Move (with ``keep_old``: copy; with ``new`` None: delete) ``Members\\<old domain>\\<old
    RID>`` to the new SID's key, merging alias RIDs."""
    members = f"{container}\\Members"
    if old.rid is None or (new is not None and new.rid is None):
        return False
    old_domain = f"{members}\\{old.prefix}"
    old_key = f"{old_domain}\\{old.rid:08X}"
    if not ed.has_key(old_key):
        return False
    domains = [old_domain]
    if new is not None:
        new_domain = f"{members}\\{new.prefix}"
        new_key = f"{new_domain}\\{new.rid:08X}"
        domains.append(new_domain)
        rids = _rids(ed, old_key)
        if ed.has_key(new_key):
            rids = list(dict.fromkeys(_rids(ed, new_key) + rids))
        else:
            if not ed.has_key(new_domain):
                ed.add_key(new_domain)
            ed.add_key(new_key)
        ed.set_value(new_key, "", len(rids), struct.pack(f"<{len(rids)}I", *rids))
    if not keep_old:
        ed.delete_key(old_key)
    for domain in domains:
        if not ed.has_key(domain):
            continue
        remaining = len(ed.subkey_names(domain))
        if remaining == 0 and domain == old_domain:
            ed.delete_key(domain)
        else:
            ed.set_value(domain, "", remaining, b"")
    return True


def _rids(ed: HiveEditor, path: str) -> list[int]:
    found = _default_of(ed, path)
    raw = found[1] if found else b""
    return list(struct.unpack(f"<{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))


def repoint_alias_member(sam: bytes, old_sid: str, new_sid: str, *, keep_old: bool = False,
                         logs_applied: bool = False, timestamp: datetime | int | None = None,
                         label: str = "SAM") -> EditResult:
    """Every alias (local group, account domain and Builtin) that lists ``old`` lists ``new``
    instead (with ``keep_old``: as well), and the reverse index follows."""
    old, new = _pair(old_sid, new_sid)
    return _edit(sam, lambda ed: _edit_aliases(ed, sam, old, new, keep_old, label),
                 _options(logs_applied, timestamp, label))


def remove_alias_member(sam: bytes, old_sid: str, *, logs_applied: bool = False,
                        timestamp: datetime | int | None = None, label: str = "SAM") -> EditResult:
    """``old`` taken out of every alias that lists it, and out of the reverse index (for
    ``plan --mode remove`` and ``--remove-orphans``)."""
    old = _sid(old_sid, "old SID")
    return _edit(sam, lambda ed: _edit_aliases(ed, sam, old, None, False, label),
                 _options(logs_applied, timestamp, label))


def _edit_aliases(ed: HiveEditor, sam: bytes, old: SID, new: SID | None, keep_old: bool, label: str) -> None:
    # Read after the editor has refused a dirty hive; the reader knows the C layout.
    info = read_sam(sam, label=label)
    listing = [(SAM_ALIAS_CONTAINERS[0], a.rid) for a in info.aliases if str(old) in a.members]
    listing += [(SAM_ALIAS_CONTAINERS[1], a.rid) for a in info.builtin_aliases if str(old) in a.members]
    for container, rid in listing:
        path = f"{container}\\{rid:08X}"
        kind, raw = ed.value(path, "C")
        updated = _alias_c_with(raw, old, new, f"{label}: {path}\\C", keep_old)
        if updated is not None:
            ed.set_value(path, "C", kind, updated)
    moved = [_move_reverse_index(ed, container, old, new, keep_old) for container in SAM_ALIAS_CONTAINERS
             if ed.has_key(f"{container}\\Members")]
    if not listing and not any(moved):
        raise MissingHiveKey(f"{label}: no alias lists {old}")


# --------------------------------------------------------------------------- profiles


def _profile_guids_of(ed: HiveEditor, sid: SID) -> list[str]:
    """The ProfileGuid keys whose SidString names ``sid``."""
    found = []
    if ed.has_key(PROFILE_GUIDS):
        for guid in ed.subkey_names(PROFILE_GUIDS):
            path = f"{PROFILE_GUIDS}\\{guid}"
            if "sidstring" not in {n.lower() for n in ed.value_names(path)}:
                continue
            _kind, raw = ed.value(path, "SidString")
            if raw.decode("utf-16-le", "replace").rstrip("\0").upper() == str(sid).upper():
                found.append(path)
    return found


def repoint_profile(software: bytes, old_sid: str, new_sid: str, *, logs_applied: bool = False,
                    timestamp: datetime | int | None = None, label: str = "SOFTWARE") -> EditResult:
    """``ProfileList\\<old>`` re-pointed to ``new`` (key name, ``Sid`` value, ProfileGuid's
    SidString). Refused where ``new`` has a profile already: two profiles are not merged."""
    old, new = _pair(old_sid, new_sid)

    def edit(ed: HiveEditor) -> None:
        old_key, new_key = f"{PROFILE_LIST}\\{old}", f"{PROFILE_LIST}\\{new}"
        ed.key(old_key)  # MissingHiveKey names it
        if ed.has_key(new_key):
            raise HiveEditError(f"{label}: {new} has a profile already ({new_key}): merge the two profiles by hand")
        ed.rename_key(old_key, str(new))
        if "sid" in {n.lower() for n in ed.value_names(new_key)}:
            ed.set_value(new_key, "Sid", ed.value(new_key, "Sid")[0], new.to_bytes())
        for path in _profile_guids_of(ed, old):
            kind, _raw = ed.value(path, "SidString")
            ed.set_value(path, "SidString", kind, (str(new) + "\0").encode("utf-16-le"))

    return _edit(software, edit, _options(logs_applied, timestamp, label))


def detach_profile(software: bytes, old_sid: str, *, logs_applied: bool = False,
                   timestamp: datetime | int | None = None, label: str = "SOFTWARE") -> EditResult:
    """``ProfileList\\<old>`` (and the ProfileGuid entry naming it) deleted: the profile of an
    account whose access is removed no longer belongs to anyone. The folder and its files
    stay on the volume; only the registry's claim that the old SID owns it goes."""
    old = _sid(old_sid, "old SID")

    def edit(ed: HiveEditor) -> None:
        key = f"{PROFILE_LIST}\\{old}"
        ed.key(key)  # MissingHiveKey names it
        ed.delete_key(key, recursive=True)
        for path in _profile_guids_of(ed, old):
            ed.delete_key(path, recursive=True)

    return _edit(software, edit, _options(logs_applied, timestamp, label))


# --------------------------------------------------------------------------- descriptors


def _rewrite_of(mapping: Mapping[str, str]) -> Rewrite:
    if not mapping:
        raise HiveEditError("no SIDs to replace")
    pairs = {str(_sid(o, "old SID")): str(_sid(n, "new SID")) for o, n in mapping.items()}
    chained = set(pairs) & set(pairs.values())
    if chained:
        raise HiveEditError(f"{sorted(chained)[0]} is both an old and a new SID in the mapping")
    return Rewrite(replace=pairs)


def _rewritten(rewrite: Rewrite, raw: bytes, what: str) -> bytes | None:
    try:
        sd = SecurityDescriptor.from_bytes(raw)
    except MalformedData as exc:
        raise HiveEditError(f"{what}: {exc}") from None
    new = rewrite.apply(sd).to_bytes()
    return None if new == raw else new


def replace_sids_in_key_security(data: bytes, mapping: Mapping[str, str], *, path: str = "",
                                 logs_applied: bool = False, timestamp: datetime | int | None = None,
                                 label: str = "hive") -> EditResult:
    """Every SID of ``mapping`` (old -> new) replaced in the descriptors of the keys at and
    below ``path`` (the whole hive by default); keys that shared an sk cell go on sharing one."""
    rewrite = _rewrite_of(mapping)

    def edit(ed: HiveEditor) -> None:
        ed.rewrite_descriptors(lambda raw: _rewritten(rewrite, raw, f"{label}: an sk cell"), path=path)

    return _edit(data, edit, _options(logs_applied, timestamp, label))


def replace_sids_in_value_descriptor(data: bytes, key_path: str, value_name: str, mapping: Mapping[str, str], *,
                                     logs_applied: bool = False, timestamp: datetime | int | None = None,
                                     label: str = "hive") -> EditResult:
    """Every SID of ``mapping`` replaced in the self-relative descriptor stored in the value
    ``value_name`` of ``key_path`` (a service's Security, a share's, a task's SD)."""
    rewrite = _rewrite_of(mapping)

    def edit(ed: HiveEditor) -> None:
        kind, raw = ed.value(key_path, value_name)
        new = _rewritten(rewrite, raw, f"{label}: {key_path}\\{value_name or '(default)'}")
        if new is not None:
            ed.set_value(key_path, value_name, kind, new)

    return _edit(data, edit, _options(logs_applied, timestamp, label))
