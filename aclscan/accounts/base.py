"""The account-source interface the classifier sees, and the records it returns.

A source knows some *authorities* (a machine's or a domain's SID prefix, with
whether its account list is complete) and some *accounts* (a SID with its name,
kind, and any SID history). The classifier asks every source the same questions
and never knows which kind of source answered; tests use a fake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol, runtime_checkable

# Account kinds.
USER = "user"
GROUP = "group"  # a domain (global/universal) group, or a SAM group such as None (513)
ALIAS = "alias"  # a local group (SAM alias), BUILTIN ones included
COMPUTER = "computer"
WELL_KNOWN = "well_known"
SERVICE = "service"  # NT SERVICE\\..., IIS APPPOOL\\..., virtual accounts

# Authority kinds.
MACHINE = "machine"
DOMAIN = "domain"
PREVIOUS_MACHINE = "previous_machine"  # a machine SID this machine had before a SID change
OTHER_MACHINE = "other_machine"  # another machine of the fleet


@dataclass(frozen=True)
class Authority:
    """A SID prefix that issues accounts (S-1-5-21-a-b-c)."""

    sid: str
    name: str | None
    kind: str  # MACHINE, DOMAIN, PREVIOUS_MACHINE, OTHER_MACHINE
    complete: bool  # the source lists every account it ever issued that still exists
    source: str  # which source said so (e.g. "SAM", "LDIF domain.ldif", "ldaps://dc1")


@dataclass(frozen=True)
class Account:
    """One account as a source knows it."""

    sid: str
    name: str  # as the source spells it (sAMAccountName, SAM name, well-known name)
    kind: str  # USER, GROUP, ALIAS, COMPUTER, WELL_KNOWN, SERVICE
    source: str
    domain: str | None = None  # NETBIOS name of the machine or domain, for DOMAIN\\name
    sid_history: tuple[str, ...] = ()
    disabled: bool = False
    members: tuple[str, ...] = ()  # for aliases and groups: member SIDs
    rights: tuple[str, ...] = ()  # LSA account rights and privileges granted to it
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}\\{self.name}" if self.domain else self.name


@runtime_checkable
class AccountSource(Protocol):
    """What the classifier may ask of any source."""

    name: str

    def authorities(self) -> Iterable[Authority]:
        """The SID prefixes this source speaks for."""

    def lookup(self, sid: str) -> Account | None:
        """The account with exactly this SID, or None."""

    def accounts(self) -> Iterable[Account]:
        """Every account the source knows (for name mapping and SID history)."""
