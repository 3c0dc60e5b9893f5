"""Everything known about who SIDs are, for one machine: its hives, the
well-known catalogue, domain exports or a live directory, and history; and the
references its hives make (LSA rights, alias members, profiles, service logons).

This module only assembles: the hive readers read, the sources answer, the
classifier judges.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from aclscan.accounts.base import PREVIOUS_MACHINE, Account, AccountSource, Authority
from aclscan.accounts.wellknown import WellKnownSource
from aclscan.classify import Classifier, PreviousName, profile_name, split_domain_relative
from aclscan.errors import Error, HiveError
from aclscan.hives.files import LOG_SUFFIXES, HiveFiles, read_hive_files
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
    opened: dict = field(default_factory=dict)  # name -> the open registry Hive, for the places scan
    unreadable: dict[str, str] = field(default_factory=dict)  # name -> why it could not be read
    primary_sha256: dict[str, str] = field(default_factory=dict)  # name -> hash of the file as read (before logs)

    @classmethod
    def parse(cls, raw: dict[str, HiveFiles], *, strict: frozenset[str] = frozenset()) -> "HiveSet":
        """From {"SAM": HiveFiles, ...} (each hive's bytes, where it came from, its
        transaction logs). A hive the user named (in ``strict``) must read; one found on
        the volume that cannot be read is noted instead."""
        from aclscan.hives.sam import read_sam
        from aclscan.hives.security import read_security
        from aclscan.hives.software import read_software
        from aclscan.hives.registry import open_hive
        from aclscan.hives.system import read_system

        readers = {"SAM": read_sam, "SECURITY": read_security, "SYSTEM": read_system, "SOFTWARE": read_software}
        found = cls()
        for name, files in raw.items():
            try:
                hive = open_hive(files, expect=name)  # applies the logs to a dirty hive
                setattr(found, name.lower(), readers[name](hive))
                found.origins[name] = files.label
                found.opened[name] = hive
                found.primary_sha256[name] = hashlib.sha256(files.data).hexdigest()
            except Error as exc:
                if name in strict:
                    raise
                found.problems.append(f"{name} hive ({files.label}) unreadable: {exc}")
                found.unreadable[name] = f"{files.label}: {exc}"
        return found

    @property
    def is_empty(self) -> bool:
        return not any((self.sam, self.security, self.system, self.software))


def hives_from_volume(volume) -> dict[str, HiveFiles]:
    """The hives under Windows/System32/config and, for a dirty one, its transaction
    logs (``NAME.LOG1``, ``.LOG2``, ``.LOG``), in any letter case (NTFS names are
    case-insensitive and The Sleuth Kit looks them up so)."""
    from aclscan.errors import NotFound

    found = {}
    for name in HIVE_NAMES:
        try:
            found[name] = hive_on_volume(volume, f"{CONFIG_DIR}/{name}")
        except NotFound:
            continue
    return found


# Earlier states of the machine's SAM that the image itself keeps: the backup Windows made
# (RegBack; empty files since Windows 10 1803) and a previous installation (Windows.old).
HISTORY_ON_VOLUME = (f"{CONFIG_DIR}/RegBack/SAM", f"/Windows.old{CONFIG_DIR}/SAM")


def history_on_volume(volume, machine_sid: str | None, *, paths: tuple[str, ...] = HISTORY_ON_VOLUME,
                      label: str | None = None) -> tuple[list["HistorySource"], list[str]]:
    """History the image keeps of itself (RegBack, Windows.old), used like --history: the
    SAMs whose machine SID is not today's (a SAM of this very SID adds nothing). Returns
    the sources and one line per file that is there but cannot be read."""
    from aclscan.errors import NotFound

    found, problems = [], []
    for path in paths:
        try:
            files = hive_on_volume(volume, path)
        except NotFound:
            continue
        except Error as exc:
            problems.append(f"history {path}: cannot read: {exc}")
            continue
        if not files.data:
            continue  # Windows 10 1803 and later leave RegBack's files empty
        try:
            source = HistorySource.from_sam(files, label or f"SAM in {path.rsplit('/', 1)[0].lstrip('/')}")
        except Error as exc:
            problems.append(f"history {path}: {exc}")
            continue
        if source.machine_sid != machine_sid:
            found.append(source)
    return found, problems


def hive_on_volume(volume, path: str) -> HiveFiles:
    """One hive file on the volume and, if it is dirty, its transaction logs beside it
    (any letter case); NotFound where there is no such file."""
    from aclscan.errors import NotFound
    from aclscan.hives.recovery import is_dirty

    data = volume.open_path(path)
    name = path.rsplit("/", 1)[-1]
    logs, problems = [], []
    for suffix in LOG_SUFFIXES if is_dirty(data) else ():  # a clean hive needs no logs
        try:
            logs.append((f"{name}{suffix}", volume.open_path(path + suffix)))
        except NotFound:
            continue
        except Error as exc:
            problems.append(f"{name}{suffix}: cannot read: {exc}")
    return HiveFiles(data, f"volume {path}", tuple(logs), tuple(problems))


def hives_from_files(paths: dict[str, str | os.PathLike | None]) -> dict[str, HiveFiles]:
    """The hives given on the command line, each with the logs beside it."""
    found = {}
    for name, path in paths.items():
        if path:
            check_input_file(path, f"the {name} hive", Error, devices=False)
            try:
                found[name] = read_hive_files(path)
            except HiveError as exc:  # "PATH: cannot read: REASON"
                raise Error(f"the {name} hive {exc}") from None
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
            refs.append(Reference(profile.sid, "profile", profile.path or "(ProfileImagePath unreadable)"))
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
        from aclscan.hives.files import read_hive_files

        return cls.from_sam(read_hive_files(path), f"history {Path(path).name}")  # its logs applied

    @classmethod
    def from_sam(cls, source, label: str) -> "HistorySource":
        """From a SAM hive (bytes or HiveFiles: a master's SAM, a RegBack copy, a shadow
        copy's): its machine SID and the names its accounts had."""
        from aclscan.hives.sam import read_sam

        sam = read_sam(source)
        accounts = [Account(f"{sam.machine_sid}-{u.rid}", u.name, "user", label) for u in sam.users]
        accounts += [Account(f"{sam.machine_sid}-{a.rid}", a.name, "alias", label) for a in sam.aliases]
        return cls(label, sam.machine_sid, accounts)

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


def _own_places_prefixes(hives: HiveSet) -> dict[str, set[str]]:
    """Domain-relative prefixes named in the SAM's alias members and the LSA accounts ->
    where they were seen."""
    found: dict[str, set[str]] = {}
    if hives.sam is not None:
        for alias in list(hives.sam.aliases) + list(hives.sam.builtin_aliases):
            for member in alias.members:
                parts = split_domain_relative(member)
                if parts:
                    found.setdefault(parts[0], set()).add(f"alias {alias.name}'s members")
    if hives.security is not None:
        for sid in hives.security.accounts:
            parts = split_domain_relative(sid)
            if parts:
                found.setdefault(parts[0], set()).add("LSA accounts (rights and privileges)")
    return found


def _listed(parts: set[str]) -> str:
    """'a, b and c'."""
    ordered = sorted(parts)
    return ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " and " + ordered[-1]


def _is_domain_controller(hives: HiveSet) -> bool:
    system, security, sam = hives.system, hives.security, hives.sam
    if system is not None and getattr(system, "product_type", None):
        return system.product_type == "LanmanNT"
    return (security is not None and sam is not None and security.primary_domain_sid is not None
            and security.primary_domain_sid == sam.machine_sid)


@dataclass
class Resolution:
    classifier: Classifier
    references: list[Reference]
    sources: list[AccountSource]
    hives: HiveSet
    notes: list[str]
    lookup_name: object = None  # (domain or None, name) -> Account or None, through every source

    def sid_of_name(self, name: str) -> str | None:
        """The SID an account name stands for as a service or task names it
        (``LocalSystem``, ``NT AUTHORITY\\SYSTEM``, ``.\\AVService``, ``AVHOST\\AVService``,
        ``S-1-5-18``), or None."""
        text = name.strip()
        if text.upper().startswith("S-1-"):
            return text.upper()
        sid = service_logon_sid(text, self.lookup_name)
        if sid is None and "\\" not in text and "@" not in text:
            # a bare name (a task's "SYSTEM", "Users"): whichever one account has it
            wanted = text.casefold()
            found = {a.sid for s in self.sources for a in s.accounts() if a.name.casefold() == wanted}
            sid = found.pop() if len(found) == 1 else None
        return sid


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
    # Prefixes no history knows -> the places of this machine's own that name them.
    seen_in: dict[str, set[str]] = {}
    if hives.software is not None:
        for profile in hives.software.profiles:
            parts = split_domain_relative(profile.sid)
            if not parts or parts[0] == machine_sid or parts[0] in domain_prefixes:
                continue
            name = profile_name(profile.path, computer_names)
            if name:
                previous.append(PreviousName(profile.sid, name, "SOFTWARE ProfileList"))
            if parts[0] not in previous_machines:
                seen_in.setdefault(parts[0], set()).add("SOFTWARE ProfileList")
    if not _is_domain_controller(hives):  # a DC's SAM and LSA name the domain's and trusted domains' SIDs
        for prefix, where in _own_places_prefixes(hives).items():
            # Only this machine writes its SAM's alias members and its LSA accounts: a prefix
            # there that no source knows is most likely what this machine's SID used to be.
            if prefix != machine_sid and prefix not in domain_prefixes and prefix not in previous_machines:
                seen_in.setdefault(prefix, set()).update(where)
    # A prefix some source knows (a domain export, another machine of the fleet) is not
    # inferred; a profile under it still says where its name came from.
    known = {a.sid for s in sources for a in s.authorities()}
    inferred = set(seen_in) - known
    for prefix, where in seen_in.items():
        if prefix in inferred:  # every place that names it, so each of its SIDs' evidence says why
            previous_machines[prefix] = f"inferred: named in this machine's {_listed(where)}, which no source knows"
        elif "SOFTWARE ProfileList" in where:
            previous_machines[prefix] = "SOFTWARE ProfileList (profiles under another machine prefix)"
    classifier = Classifier(sources, machine_sid=machine_sid, previous_names=previous,
                            previous_machine_sids=previous_machines, inferred_prefixes=frozenset(inferred))

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
    return Resolution(classifier, references, sources, hives, notes, lookup_name)
