"""Everything known about who SIDs are, for one machine: its hives, the
well-known catalogue, domain exports or a live directory, and history; and the
references its hives make (LSA rights, alias members, profiles, service logons).

This module only assembles: the hive readers read, the sources answer, the
classifier judges.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from aclscan.accounts.base import PREVIOUS_MACHINE, Account, AccountSource, Authority
from aclscan.accounts.wellknown import WellKnownSource
from aclscan.classify import Classifier, PreviousName, profile_name, split_domain_relative
from aclscan.errors import Error
from aclscan.inputs import check_input_file

HIVE_NAMES = ("SAM", "SECURITY", "SYSTEM", "SOFTWARE")
CONFIG_DIR = "/Windows/System32/config"


@dataclass
class HiveSet:
    """The four hives of one machine (any may be missing), parsed, with where each came from."""

    sam: object | None = None
    security: object | None = None
    system: object | None = None
    software: object | None = None
    origins: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: dict[str, tuple[bytes, str]], *, strict: frozenset[str] = frozenset()) -> "HiveSet":
        """From {"SAM": (bytes, origin), ...}. A hive the user named (in ``strict``)
        must read; one found on the volume that cannot be read is noted instead."""
        from aclscan.hives.sam import read_sam
        from aclscan.hives.security import read_security
        from aclscan.hives.software import read_software
        from aclscan.hives.system import read_system

        readers = {"SAM": read_sam, "SECURITY": read_security, "SYSTEM": read_system, "SOFTWARE": read_software}
        found = cls()
        for name, (data, origin) in raw.items():
            try:
                setattr(found, name.lower(), readers[name](data, label=origin))
                found.origins[name] = origin
            except Error as exc:
                if name in strict:
                    raise
                found.problems.append(f"{name} hive ({origin}) unreadable: {exc}")
        return found

    @property
    def is_empty(self) -> bool:
        return not any((self.sam, self.security, self.system, self.software))


def hives_from_volume(volume) -> dict[str, tuple[bytes, str]]:
    """The hives under Windows/System32/config, in any letter case (NTFS names are
    case-insensitive and The Sleuth Kit looks them up so)."""
    from aclscan.errors import NotFound

    found = {}
    for name in HIVE_NAMES:
        path = f"{CONFIG_DIR}/{name}"
        try:
            found[name] = (volume.open_path(path), f"volume {path}")
        except NotFound:
            continue
    return found


def hives_from_files(paths: dict[str, str | os.PathLike | None]) -> dict[str, tuple[bytes, str]]:
    found = {}
    for name, path in paths.items():
        if path:
            check_input_file(path, f"the {name} hive", Error, devices=False)
            try:
                found[name] = (Path(path).read_bytes(), str(path))
            except OSError as exc:
                raise Error(f"cannot read the {name} hive {path}: {exc.strerror or exc}") from None
    return found


@dataclass(frozen=True)
class Reference:
    """Something in the hives that names a SID (not a file)."""

    sid: str
    kind: str  # lsa_right, alias_member, profile, service_logon, machine
    detail: str


def hive_references(hives: HiveSet, lookup_name) -> list[Reference]:
    refs: list[Reference] = []
    if hives.security is not None:
        for sid, account in sorted(hives.security.accounts.items()):
            names = sorted(set(account.rights) | set(account.privileges))
            refs.append(Reference(sid, "lsa_right", ", ".join(names)))
    if hives.sam is not None:
        for user in hives.sam.users:  # every local account is a reference of its own
            refs.append(Reference(f"{hives.sam.machine_sid}-{user.rid}", "sam_account", user.name))
        for alias in hives.sam.aliases:
            refs.append(Reference(f"{hives.sam.machine_sid}-{alias.rid}", "sam_account", alias.name))
        for alias in list(hives.sam.aliases) + list(hives.sam.builtin_aliases):
            for member in alias.members:
                refs.append(Reference(member, "alias_member", alias.name))
    if hives.software is not None:
        for profile in hives.software.profiles:
            refs.append(Reference(profile.sid, "profile", profile.path))
    if hives.system is not None:
        for service in hives.system.services:
            sid = service_logon_sid(service.object_name, lookup_name)
            if sid:
                refs.append(Reference(sid, "service_logon", f"{service.name} logs on as {service.object_name}"))
    return refs


_SERVICE_ACCOUNTS = {
    "localsystem": "S-1-5-18",
    "nt authority\\system": "S-1-5-18",
    "nt authority\\localservice": "S-1-5-19",
    "nt authority\\local service": "S-1-5-19",
    "nt authority\\networkservice": "S-1-5-20",
    "nt authority\\network service": "S-1-5-20",
}


def service_logon_sid(object_name: str | None, lookup_name) -> str | None:
    """The SID a service's ObjectName stands for (.\\X is a local account)."""
    if not object_name or object_name.startswith(("\\Driver\\", "\\FileSystem\\")):
        return None
    key = object_name.casefold()
    if key in _SERVICE_ACCOUNTS:
        return _SERVICE_ACCOUNTS[key]
    domain, _, name = object_name.rpartition("\\")
    if "@" in name and not domain:
        name, _, domain = name.partition("@")
    account = lookup_name(domain if domain not in ("", ".") else None, name)
    return account.sid if account is not None else None


class HistorySource:
    """An earlier state of this machine: the master's SAM or an earlier scan
    database. Its machine SID is a *previous* machine SID; its accounts give the
    names the old SIDs had."""

    def __init__(self, name: str, machine_sid: str, accounts: list[Account]):
        self.name = name
        self.machine_sid = machine_sid
        self._accounts = accounts

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "HistorySource":
        from aclscan.store import is_sqlite_file

        check_input_file(path, "history file", Error, devices=False)
        if is_sqlite_file(path):
            return cls._from_scan(path)
        data = Path(path).read_bytes()
        from aclscan.hives.sam import read_sam

        sam = read_sam(data)
        accounts = [Account(f"{sam.machine_sid}-{u.rid}", u.name, "user", f"history {Path(path).name}")
                    for u in sam.users]
        accounts += [Account(f"{sam.machine_sid}-{a.rid}", a.name, "alias", f"history {Path(path).name}")
                     for a in sam.aliases]
        return cls(f"history {Path(path).name}", sam.machine_sid, accounts)

    @classmethod
    def _from_scan(cls, path) -> "HistorySource":
        from aclscan.store import open_database

        db = open_database(path, index=False)
        machine = db.execute("SELECT sid FROM authorities WHERE kind = 'machine' LIMIT 1").fetchone()
        if machine is None:
            raise Error(f"{path}: an earlier scan without a machine SID cannot serve as history")
        rows = db.execute("SELECT sid, name, kind FROM accounts WHERE sid LIKE ?", (machine[0] + "-%",)).fetchall()
        label = f"history {Path(path).name}"
        return cls(label, machine[0], [Account(sid, name, kind, label) for sid, name, kind in rows])

    def authorities(self):
        return [Authority(self.machine_sid, None, PREVIOUS_MACHINE, False, self.name)]

    def lookup(self, sid: str) -> Account | None:
        return None  # history never resolves a SID: it only names what it was

    def accounts(self):
        return []

    def previous_names(self) -> list[PreviousName]:
        return [PreviousName(a.sid, a.name, self.name) for a in self._accounts]


@dataclass
class Resolution:
    classifier: Classifier
    references: list[Reference]
    sources: list[AccountSource]
    hives: HiveSet
    notes: list[str]


def build_resolution(hives: HiveSet, *, domain_sources: list[AccountSource] = (),
                     history: list[HistorySource] = ()) -> Resolution:
    """The classifier for one machine, and the references its hives make."""
    from aclscan.accounts.volume import VolumeHiveSource

    notes = list(hives.problems)
    sources: list[AccountSource] = []
    volume_source = None
    if not hives.is_empty:
        volume_source = VolumeHiveSource(hives.sam, hives.security, hives.system, hives.software)
        sources.append(volume_source)
        notes += volume_source.inconsistencies()
    services = [s.name for s in hives.system.services] if hives.system is not None else []
    sources.append(WellKnownSource(service_names=services))
    sources += list(domain_sources)
    sources += list(history)

    machine_sid = hives.sam.machine_sid if hives.sam is not None else None
    previous: list[PreviousName] = [name for h in history for name in h.previous_names()]
    previous_machines = {h.machine_sid: h.name for h in history if h.machine_sid != machine_sid}
    # The ProfileList outlives SID changes: profiles under another machine prefix name
    # the accounts that prefix had (C:\Users\Ken was made for Ken).
    domain_prefixes = {a.sid for s in domain_sources for a in s.authorities()}
    if hives.security is not None and hives.security.primary_domain_sid:
        domain_prefixes.add(hives.security.primary_domain_sid)
    computer_names = tuple(n for n in (
        getattr(hives.system, "computer_name", None),
        getattr(hives.security, "primary_domain_name", None)) if n)
    if hives.software is not None:
        for profile in hives.software.profiles:
            parts = split_domain_relative(profile.sid)
            if not parts or parts[0] == machine_sid or parts[0] in domain_prefixes:
                continue
            name = profile_name(profile.path, computer_names)
            if name:
                previous.append(PreviousName(profile.sid, name, "SOFTWARE ProfileList"))
            previous_machines.setdefault(parts[0], "SOFTWARE ProfileList (profiles under another machine prefix)")
    classifier = Classifier(sources, machine_sid=machine_sid, previous_names=previous,
                            previous_machine_sids=previous_machines)

    def lookup_name(domain: str | None, name: str) -> Account | None:
        wanted = name.casefold()
        for source in sources:
            for account in source.accounts():
                if account.name.casefold() != wanted:
                    continue
                local = machine_sid and account.sid.startswith(machine_sid + "-")
                if domain is None and local:
                    return account
                if domain is not None and (account.domain or "").casefold() == domain.casefold():
                    return account
        return None

    references = hive_references(hives, lookup_name)
    return Resolution(classifier, references, sources, hives, notes)
