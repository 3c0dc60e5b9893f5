"""Account names for people: SIDs shown as names, names typed instead of SIDs.

Everything a person reads shows ``BUILTIN\\Administrators`` rather than
``S-1-5-32-544``, and a SID with a problem verdict stands out as a bare SID with
what it was (``S-1-5-21-...-1000 (was MEMBER\\Ken, rid_collision)``); everything a
person types may be a name. Both directions read the same three things of a scan
database: the accounts its sources knew (``accounts``), the verdicts and the
names they carry (``findings``, ``previous_names``), and the well-known catalogue.
:func:`resolve_account` is the one place a typed account becomes a SID.
"""

from __future__ import annotations

import difflib
import sqlite3
from dataclasses import dataclass, field
from functools import lru_cache

from aclscan.accounts.wellknown import CATALOGUE, WellKnownSource
from aclscan.classify import PROBLEMS
from aclscan.errors import NotFound, SDDLError
from aclscan.sd.sddl import sid_from_sddl


class UnknownAccount(NotFound):
    """A typed account name that no source of the scan (nor the catalogue) knows.

    ``suggestions`` are the nearest names, for "did you mean"."""

    def __init__(self, message: str, suggestions: tuple[str, ...] = ()):
        super().__init__(message)
        self.suggestions = suggestions


class AmbiguousAccount(UnknownAccount):
    """A bare name that several accounts share (``Administrator`` of a machine and of its domain)."""


def _key(text: str) -> str:
    return text.strip().casefold()


@dataclass
class AccountNames:
    """The names of one scan's SIDs, both ways. Build it with :meth:`of`."""

    machine_name: str | None = None
    machine_sid: str | None = None
    names: dict[str, str] = field(default_factory=dict)  # sid -> DOMAIN\name as a person reads it
    verdicts: dict[str, str] = field(default_factory=dict)  # sid -> verdict (findings)
    mapped: dict[str, str] = field(default_factory=dict)  # sid -> mapped_sid (findings)
    # typed key (casefolded) -> SIDs, by preference: today's accounts and the catalogue first,
    # then the names old SIDs had (a stale SID is found by its old name when no account has it now).
    _current: dict[str, set[str]] = field(default_factory=dict)
    _previous: dict[str, set[str]] = field(default_factory=dict)
    _spellings: dict[str, str] = field(default_factory=dict)  # typed key -> a spelling to suggest

    @classmethod
    def of(cls, db) -> "AccountNames":
        self = cls()
        machine = _first(db, "SELECT computer_name, machine_sid FROM machine")
        if machine is None or machine[1] is None:
            machine = _first(db, "SELECT name, sid FROM authorities WHERE kind = 'machine'")
        if machine is not None:
            self.machine_name, self.machine_sid = machine
        for entry in CATALOGUE:
            self._add_name(entry.sid, entry.qualified_name, current=True)
        for sid, name, domain in db.execute("SELECT sid, name, domain FROM accounts WHERE name IS NOT NULL"):
            self._add_name(sid, f"{domain}\\{name}" if domain else name, current=True)
        for sid, verdict, account, mapped in db.execute("SELECT sid, verdict, account, mapped_sid FROM findings"):
            self.verdicts[sid] = verdict
            if mapped:
                self.mapped[sid] = mapped
            if account:
                self._add_name(sid, self._qualified_old_name(sid, account) if verdict in PROBLEMS else account,
                               current=verdict not in PROBLEMS)
        if _has_table(db, "previous_names"):
            for sid, name in db.execute("SELECT sid, name FROM previous_names"):
                self._add_name(sid, self._qualified_old_name(sid, name), current=False)
        return self

    def _qualified_old_name(self, sid: str, name: str) -> str:
        """An old SID's name with its machine: a previous machine SID of this machine
        named the accounts of this computer (``Ken`` -> ``MEMBER\\Ken``)."""
        if "\\" in name or not self.machine_name or self.verdicts.get(sid) not in ("stale_prefix", "rid_collision"):
            return name
        return f"{self.machine_name}\\{name}"

    def _add_name(self, sid: str, name: str, *, current: bool) -> None:
        if current or sid not in self.names:
            self.names[sid] = name
        index = self._current if current else self._previous
        keys = {_key(name)}
        if "\\" in name:
            keys.add(_key(name.rsplit("\\", 1)[1]))
        for key in keys:
            index.setdefault(key, set()).add(sid)
            self._spellings.setdefault(key, name if key == _key(name) else name.rsplit("\\", 1)[1])

    # ------------------------------------------------------------------ SID -> name

    def name_of(self, sid: str) -> str | None:
        """DOMAIN\\name of a SID (its old name for a problem SID), or None."""
        name = self.names.get(sid)
        if name is None:
            account = _catalogue().lookup(sid)  # names Windows builds from the SID (logon, DWM-n, ...)
            name = account.qualified_name if account is not None else None
        return name

    def is_problem(self, sid: str) -> bool:
        return self.verdicts.get(sid) in PROBLEMS

    def label(self, sid: str) -> str:
        """The principal as icacls shows it: a name, or, for a SID with a problem verdict or
        no name, the bare SID, with what it was and its verdict beside it."""
        name = self.name_of(sid)
        verdict = self.verdicts.get(sid)
        if verdict in PROBLEMS:
            was = f"was {name}, " if name else ""
            return f"{sid} ({was}{verdict})"
        return name or sid

    def rid_holder(self, sid: str) -> str | None:
        """The SID that holds an old machine SID's RID on this machine today: the account a naive
        prefix rewrite would hand its access to (rid_collision)."""
        if not self.machine_sid or not sid.startswith("S-1-5-21-"):
            return None
        candidate = f"{self.machine_sid}-{sid.rsplit('-', 1)[1]}"
        return candidate if candidate != sid and candidate in self.names else None

    # ------------------------------------------------------------------ typed -> SID

    def resolve(self, text: str) -> str:
        """See :func:`resolve_account`."""
        typed = text.strip()
        if typed[:2].upper() == "S-":
            return str(sid_from_sddl(typed.upper()))  # a malformed SID is malformed data (exit 8)
        if len(typed) == 2 and typed.isupper():
            try:
                return str(sid_from_sddl(typed, domain_sid=self.machine_sid))
            except SDDLError:
                pass  # not an alias: perhaps a two-letter account name
        key = _key(typed)
        if key.startswith(".\\") and self.machine_name:  # .\Name: an account of this machine, as services write it
            key = _key(f"{self.machine_name}\\{typed[2:]}")
        for index in (self._current, self._previous):
            sids = index.get(key)
            if sids and len(sids) == 1:
                return next(iter(sids))
            if sids:
                choices = tuple(sorted(self.names.get(s, s) for s in sids))
                raise AmbiguousAccount(f"'{text}' names {len(sids)} accounts: {', '.join(choices)}; "
                                       "give DOMAIN\\name or the SID", choices)
        near = tuple(self._spellings[k] for k in difflib.get_close_matches(key, list(self._spellings), n=3, cutoff=0.6))
        quoted = " or ".join("'" + n + "'" for n in near)
        hint = f"; did you mean {quoted}?" if near else ""
        raise UnknownAccount(f"no account '{text}' in this scan or the well-known catalogue{hint}", near)


def resolve_account(db, text: str) -> str:
    """A SID from what a person typed: ``S-1-...``, an SDDL alias (``BA``, ``SY``, ``LA``), or an
    account name (``AVService``, ``MEMBER\\Jon``, ``BUILTIN\\Administrators``,
    ``NT AUTHORITY\\SYSTEM``, ``.\\Jon``), case-insensitive, through the scan's accounts, the
    names its old SIDs had, and the well-known catalogue. Raises :class:`UnknownAccount` (with
    the nearest names) or :class:`AmbiguousAccount`."""
    return AccountNames.of(db).resolve(text)


@lru_cache(maxsize=1)
def _catalogue() -> WellKnownSource:
    return WellKnownSource()


def _first(db, sql: str):
    try:
        return db.execute(sql).fetchone()
    except sqlite3.OperationalError:  # an old schema without the table
        return None


def _has_table(db, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [name]).fetchone() is not None
