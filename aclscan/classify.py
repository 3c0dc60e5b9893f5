"""Verdicts: for each distinct SID, who it is today or exactly why not.

The classifier sees account sources only through aclscan.accounts.base's
interface. It never calls an account deleted when it is merely unknown: a SID
is an ``orphan`` only where the authority that issued it is known and its
account list is complete. It maps an old machine's SIDs by *name* to today's
accounts (built-in RIDs by RID), and where the RID now belongs to someone else
it says so (``rid_collision``): a naive prefix rewrite would hand that person
the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from aclscan.accounts import wellknown
from aclscan.accounts.base import (
    MACHINE,
    OTHER_MACHINE,
    PREVIOUS_MACHINE,
    Account,
    AccountSource,
    Authority,
)

# Verdicts (DESIGN.md), plus "unresolved" (authority known, account list not) and
# "inconsistent_hives" (the volume's own hives disagree about the machine SID).
RESOLVED = "resolved"
ORPHAN = "orphan"
STALE_PREFIX = "stale_prefix"
RID_COLLISION = "rid_collision"
SID_HISTORY = "sid_history"
FOREIGN_MACHINE = "foreign_machine"
UNKNOWN_AUTHORITY = "unknown_authority"
UNRESOLVED = "unresolved"
PLACEHOLDER = "placeholder"
TRANSIENT = "transient"
INCONSISTENT_HIVES = "inconsistent_hives"

VERDICTS = (RESOLVED, ORPHAN, STALE_PREFIX, RID_COLLISION, SID_HISTORY, FOREIGN_MACHINE, UNKNOWN_AUTHORITY,
            UNRESOLVED, PLACEHOLDER, TRANSIENT, INCONSISTENT_HIVES)
# Verdicts that mean something needs doing (aclscan findings exits 1 while any remain).
PROBLEMS = frozenset({ORPHAN, STALE_PREFIX, RID_COLLISION, SID_HISTORY, FOREIGN_MACHINE, UNKNOWN_AUTHORITY,
                      UNRESOLVED, INCONSISTENT_HIVES})

HIGH, MEDIUM, LOW = "high", "medium", "low"

# RIDs a machine's SAM always has (or that mean the same on every machine), so an old
# machine's SID maps to today's by RID: Administrator, Guest, DefaultAccount,
# WDAGUtilityAccount, and the None group.
BUILT_IN_RIDS = frozenset({500, 501, 503, 504, 513})
_DOMAIN_RELATIVE = re.compile(r"^(S-1-5-21-\d+-\d+-\d+)-(\d+)$")


@dataclass(frozen=True)
class Verdict:
    """What is known about one SID, with the evidence for it."""

    sid: str
    verdict: str
    confidence: str
    account: str | None = None  # who it is (today), or who it was
    mapped_sid: str | None = None  # the SID to use instead, where a safe mapping exists
    evidence: tuple[str, ...] = ()

    @property
    def is_problem(self) -> bool:
        return self.verdict in PROBLEMS


@dataclass(frozen=True)
class PreviousName:
    """An old machine's account name, from history (master SAM, ProfileList, earlier scan)."""

    sid: str
    name: str
    source: str


def split_domain_relative(sid: str) -> tuple[str, int] | None:
    match = _DOMAIN_RELATIVE.match(sid)
    return (match.group(1), int(match.group(2))) if match else None


def profile_name(path: str | None, suffixes: tuple[str, ...] = ()) -> str | None:
    """'C:\\Users\\Ken' -> 'Ken': the folder is named for the account it was made for.
    Where that name was taken Windows appends '.000', '.001', ... or '.COMPUTER' /
    '.DOMAIN' (give those names as ``suffixes``); other dots belong to the name. None
    where the path is missing (a ProfileImagePath that could not be read)."""
    if not path:
        return None
    tail = path.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1]
    if not tail or tail.startswith("%"):
        return None
    stem, dot, suffix = tail.rpartition(".")
    if dot and stem and (re.fullmatch(r"\d{3}", suffix) or suffix.casefold() in {s.casefold() for s in suffixes}):
        return stem
    return tail


# How a verdict's evidence says that its previous machine SID is only inferred
# (named in the machine's own SAM, LSA or ProfileList, known to no history).
INFERRED_PREVIOUS_MACHINE = "is probably a previous machine SID"


def rests_on_inferred_prefix(evidence: Iterable[str]) -> bool:
    """Whether a verdict with this evidence rests on an inferred previous machine SID."""
    return any(INFERRED_PREVIOUS_MACHINE in line for line in evidence)


def _less_sure_if(inferred: bool, confidence: str) -> str:
    """One confidence step down where the previous machine SID itself is only inferred."""
    if not inferred:
        return confidence
    return MEDIUM if confidence == HIGH else LOW


@dataclass
class Classifier:
    """Classifies SIDs against a set of sources.

    ``machine_sid`` is this machine's SID (from its SAM), ``previous`` names that
    old machine SIDs' accounts had (history), ``other_machines`` maps SID prefixes
    of other machines of the fleet to their names.
    """

    sources: list[AccountSource]
    machine_sid: str | None = None
    previous_names: list[PreviousName] = field(default_factory=list)
    previous_machine_sids: dict[str, str] = field(default_factory=dict)  # prefix -> where it is known from
    other_machines: dict[str, str] = field(default_factory=dict)
    # Previous machine SIDs inferred, not known: prefixes no source knows that the machine's
    # own SAM, LSA or ProfileList name (places only this machine writes). Lower confidence.
    inferred_prefixes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._authorities: dict[str, Authority] = {}
        for source in self.sources:
            for authority in source.authorities():
                known = self._authorities.get(authority.sid)
                # A complete listing outranks an incomplete one for the same prefix.
                if known is None or (authority.complete and not known.complete):
                    self._authorities[authority.sid] = authority
                if authority.kind == PREVIOUS_MACHINE:
                    self.previous_machine_sids.setdefault(authority.sid, authority.source)
                if authority.kind == OTHER_MACHINE:
                    self.other_machines.setdefault(authority.sid, authority.name or authority.source)
                if authority.kind == MACHINE and self.machine_sid is None:
                    self.machine_sid = authority.sid
        self._history: dict[str, Account] = {}
        self._by_name: dict[tuple[str, str], Account] = {}
        for source in self.sources:
            for account in source.accounts():
                for old in account.sid_history:
                    self._history.setdefault(old, account)
                parts = split_domain_relative(account.sid)
                if parts:
                    self._by_name.setdefault((parts[0], account.name.casefold()), account)
        self._old_name = {p.sid: p for p in self.previous_names}
        for previous in self.previous_names:
            parts = split_domain_relative(previous.sid)
            if parts and parts[0] != self.machine_sid:
                self.previous_machine_sids.setdefault(parts[0], previous.source)

    # --- lookups ----------------------------------------------------------------

    def lookup(self, sid: str) -> Account | None:
        for source in self.sources:
            account = source.lookup(sid)
            if account is not None:
                return account
        return None

    def classify_all(self, sids: Iterable[str]) -> list[Verdict]:
        return [self.classify(sid) for sid in sids]

    def classify(self, sid: str) -> Verdict:
        category = wellknown.category(sid)
        if category in ("placeholder", "capability", "app_container", "label"):
            account = self.lookup(sid)
            return Verdict(sid, PLACEHOLDER, HIGH, account.qualified_name if account else None,
                           evidence=(f"{category} SID: never an account of its own",))
        if category == "logon":
            return Verdict(sid, TRANSIENT, HIGH, evidence=("logon session SID: exists only while the session does",))

        account = self.lookup(sid)
        if account is not None:
            return Verdict(sid, RESOLVED, HIGH, account.qualified_name,
                           evidence=(f"{account.source}: {account.qualified_name}",))

        history = self._history.get(sid)
        if history is not None:
            return Verdict(sid, SID_HISTORY, HIGH, history.qualified_name, history.sid,
                           (f"{history.source}: sIDHistory of {history.qualified_name} ({history.sid}) lists it",))

        parts = split_domain_relative(sid)
        if parts is None:
            if category in ("service", "apppool", "virtual_machine"):
                return Verdict(sid, UNRESOLVED, MEDIUM, evidence=(
                    f"{category} SID derived from a name no source lists (a removed service or pool?)",))
            return Verdict(sid, UNKNOWN_AUTHORITY, LOW, evidence=("not a well-known SID and no source knows it",))
        prefix, rid = parts

        if prefix == self.machine_sid:
            return self._missing_local(sid, prefix, rid)
        if prefix in self.previous_machine_sids:
            return self._stale(sid, prefix, rid)
        if prefix in self.other_machines:
            return Verdict(sid, FOREIGN_MACHINE, HIGH, evidence=(
                f"prefix {prefix} is machine {self.other_machines[prefix]} of the fleet",))
        authority = self._authorities.get(prefix)
        if authority is not None:
            return self._missing_in_authority(sid, authority, rid)
        return Verdict(sid, UNKNOWN_AUTHORITY, MEDIUM, evidence=(
            f"no source knows prefix {prefix} (not this machine, a known domain, history or the fleet)",))

    # --- the cases --------------------------------------------------------------

    def _missing_local(self, sid: str, prefix: str, rid: int) -> Verdict:
        authority = self._authorities.get(prefix)
        if authority is None:
            return Verdict(sid, UNRESOLVED, MEDIUM, evidence=(
                "this machine's prefix, but its account list is not available (no SAM)",))
        if authority.complete:
            return Verdict(sid, ORPHAN, HIGH, evidence=(
                f"{authority.source}: this machine's account list is complete and has no RID {rid} "
                "(a deleted account)",))
        # A domain controller's SAM is not its account list (the directory is).
        return self._missing_in_authority(sid, authority, rid)

    def _missing_in_authority(self, sid: str, authority: Authority, rid: int) -> Verdict:
        label = authority.name or authority.sid
        if authority.complete:
            name = wellknown.domain_rid_name(rid)
            if name is not None:
                return Verdict(sid, RESOLVED, MEDIUM, f"{label}\\{name}", evidence=(
                    f"well-known RID {rid} of {label} ({authority.source} does not list it)",))
            return Verdict(sid, ORPHAN, HIGH, evidence=(
                f"{authority.source}: the account list of {label} is complete and has no RID {rid} "
                "(a deleted account)",))
        name = wellknown.domain_rid_name(rid)
        if name is not None:
            return Verdict(sid, RESOLVED, MEDIUM, f"{label}\\{name}",
                           evidence=(f"well-known RID {rid} of {label} ({authority.source})",))
        return Verdict(sid, UNRESOLVED, MEDIUM, evidence=(
            f"{authority.source} names {label} but not its accounts: give --domain or --ldap to decide",))

    def _stale(self, sid: str, prefix: str, rid: int) -> Verdict:
        """A SID of a machine SID this machine had before its SID change."""
        inferred = prefix in self.inferred_prefixes
        said = INFERRED_PREVIOUS_MACHINE if inferred else "is a previous machine SID"
        evidence = [f"prefix {prefix} {said} of this machine ({self.previous_machine_sids[prefix]})"]
        current = self.machine_sid
        holder = self.lookup(f"{current}-{rid}") if current else None
        old = self._old_name.get(sid)
        old_name = old.name if old else None
        if old:
            evidence.append(f"{old.source}: it was {old.name}")
        mapped: Account | None = None
        if rid in BUILT_IN_RIDS and current:
            mapped = holder
            if mapped is not None:
                evidence.append(f"built-in RID {rid} maps RID to RID: {mapped.qualified_name}")
        elif old_name and current:
            mapped = self._by_name.get((current, old_name.casefold()))
            if mapped is not None:
                evidence.append(f"today's {mapped.qualified_name} ({mapped.sid}) has the same name")
        collision = (holder is not None and rid not in BUILT_IN_RIDS
                     and (old_name is None or holder.name.casefold() != old_name.casefold()))
        if collision:
            evidence.append(f"RID {rid} now belongs to {holder.qualified_name}: a prefix rewrite would give it "
                            f"{old_name or 'the old account'}'s access")
            return Verdict(sid, RID_COLLISION, _less_sure_if(inferred, HIGH if old_name else MEDIUM), old_name,
                           mapped.sid if mapped is not None and mapped.sid != holder.sid else None, tuple(evidence))
        if mapped is None:
            evidence.append("no account of that name exists today: nothing to map to" if old_name else
                            "its old name is unknown: nothing to map to; give the master's SAM with --history, "
                            "or map it with plan --map")
        return Verdict(sid, STALE_PREFIX, _less_sure_if(inferred, HIGH if mapped or old_name else MEDIUM),
                       old_name or (mapped.name if mapped else None), mapped.sid if mapped else None, tuple(evidence))
