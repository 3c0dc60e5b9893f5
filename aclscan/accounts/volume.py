"""The account source of one Windows volume: what its own hives say.

The SAM lists every local account of the machine, so the machine SID is an authority
whose account list is *complete*: a RID it lacks is an account that no longer exists.
SECURITY names the primary domain a member belongs to; that domain's accounts are
not in any hive, so it is an authority whose list is *not* complete here.

A domain controller (SYSTEM ProductType LanmanNT; without SYSTEM, a SECURITY whose
primary domain SID is the machine's) is the exception: its machine SID is the
domain's, whose accounts live in the directory, not in the SAM. Its one authority is
then not complete, and named after the domain. Accounts:

- SAM users (USER), with the LSA rights and privileges SECURITY grants them;
- SAM groups (GROUP), None (RID 513) among them, with their members;
- the machine's aliases (ALIAS), with their members;
- the BUILTIN aliases as S-1-5-32-<RID> (ALIAS, domain "BUILTIN").

Besides the interface, it hands out what the hives say that is not an account
(services and their logon accounts, LSA accounts, profiles) and lists where the
hives disagree with one another (:meth:`VolumeHiveSource.inconsistencies`).
"""

from __future__ import annotations

from aclscan.accounts.base import ALIAS, DOMAIN, GROUP, MACHINE, USER, Account, Authority
from aclscan.hives.registry import printable
from aclscan.hives.sam import SamInfo
from aclscan.hives.security import LsaAccount, SecurityInfo
from aclscan.hives.software import Profile, SoftwareInfo
from aclscan.hives.system import Service, SystemInfo

__all__ = ["VolumeHiveSource"]

BUILTIN_DOMAIN = "S-1-5-32"
BUILTIN_NAME = "BUILTIN"


class VolumeHiveSource:
    """An AccountSource over the SAM, SECURITY, SYSTEM and SOFTWARE of one volume; any
    of them may be None."""

    def __init__(
        self,
        sam: SamInfo | None,
        security: SecurityInfo | None,
        system: SystemInfo | None,
        software: SoftwareInfo | None,
        name: str = "volume hives",
    ) -> None:
        self.name = name
        self.sam = sam
        self.security = security
        self.system = system
        self.software = software
        self._accounts: dict[str, Account] = {}
        for account in self._build():
            self._accounts.setdefault(account.sid, account)

    # -- what the machine is ------------------------------------------------------------

    @property
    def machine_sid(self) -> str | None:
        """SAM's machine SID; SECURITY's PolAcDmS where there is no SAM."""
        if self.sam is not None:
            return self.sam.machine_sid
        return self.security.account_domain_sid if self.security is not None else None

    @property
    def computer_name(self) -> str | None:
        """SYSTEM's ComputerName; SECURITY's PolAcDmN where there is no SYSTEM."""
        if self.system is not None and self.system.computer_name:
            return self.system.computer_name
        if self.security is not None and self.security.account_domain_name:
            return self.security.account_domain_name
        return self.sam.computer_name if self.sam is not None else None

    @property
    def is_domain_controller(self) -> bool:
        if self.system is not None and self.system.product_type:
            return self.system.product_type == "LanmanNT"
        machine = self.machine_sid
        return machine is not None and self.security is not None and self.security.primary_domain_sid == machine

    @property
    def account_domain(self) -> str | None:
        """The name before the backslash of the machine's accounts: the computer's name,
        on a domain controller the domain's."""
        if self.is_domain_controller and self.security is not None and self.security.primary_domain_name:
            return self.security.primary_domain_name
        return self.computer_name

    # -- the AccountSource interface ----------------------------------------------------

    def authorities(self) -> list[Authority]:
        found = []
        machine = self.machine_sid
        if machine is not None:
            origin = "SAM" if self.sam is not None else "SECURITY PolAcDmS"
            complete = self.sam is not None and not self.is_domain_controller
            found.append(Authority(machine, self.account_domain, MACHINE, complete, f"{self.name} {origin}"))
        security = self.security
        if security is not None and security.primary_domain_sid and security.primary_domain_sid != machine:
            found.append(
                Authority(
                    security.primary_domain_sid,
                    security.primary_domain_name,
                    DOMAIN,
                    False,
                    f"{self.name} SECURITY PolPrDmS",
                )
            )
        return found

    def lookup(self, sid: str) -> Account | None:
        return self._accounts.get(sid)

    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    # -- the rest of what the hives say -------------------------------------------------

    def services(self) -> list[Service]:
        return list(self.system.services) if self.system is not None else []

    def lsa_accounts(self) -> dict[str, LsaAccount]:
        return dict(self.security.accounts) if self.security is not None else {}

    def profiles(self) -> list[Profile]:
        return list(self.software.profiles) if self.software is not None else []

    def inconsistencies(self) -> list[str]:
        """Where the hives disagree with one another, then what each could not read;
        one line each."""
        found: list[str] = []
        sam, security, system = self.sam, self.security, self.system
        if sam is not None and security is not None and security.account_domain_sid:
            if security.account_domain_sid != sam.machine_sid:
                found.append(
                    f"SECURITY PolAcDmS {security.account_domain_sid} is not the SAM's machine SID "
                    f"{sam.machine_sid}: the hives are from different machines, or one SID change "
                    "updated only one of them"
                )
        if system is not None and security is not None and system.computer_name and security.account_domain_name:
            if system.computer_name.casefold() != security.account_domain_name.casefold():
                found.append(
                    f"SYSTEM ComputerName {system.computer_name!r} is not SECURITY's account domain name "
                    f"{security.account_domain_name!r}"
                )
        machine = self.machine_sid
        if (security is not None and machine is not None and security.primary_domain_sid == machine
                and system is not None and system.product_type and system.product_type != "LanmanNT"):
            found.append(
                f"SECURITY PolPrDmS is the machine's own SID {machine}, as only on a domain controller, "
                f"but SYSTEM's ProductType is {system.product_type}"
            )
        if sam is not None and system is not None:
            names = {u.name.casefold() for u in sam.users}
            local = {f".\\{n}" for n in names}
            if self.computer_name:
                local |= {f"{self.computer_name.casefold()}\\{n}" for n in names}
            for service in system.services:
                logon = (service.object_name or "").casefold()
                prefix = logon.split("\\", 1)[0] if "\\" in logon else None
                is_local = prefix == "." or (prefix is not None and prefix == (self.computer_name or "").casefold())
                if is_local and logon not in local:
                    found.append(
                        f"service {service.name} logs on as {service.object_name}, which the SAM does not have"
                    )
        for label, info in (("SAM", sam), ("SECURITY", security), ("SYSTEM", system), ("SOFTWARE", self.software)):
            if info is not None:
                found += [f"{label}: {problem}" for problem in info.problems]
        return [printable(line, 500) for line in found]

    def __repr__(self) -> str:
        read = [n for n, h in (("SAM", self.sam), ("SECURITY", self.security), ("SYSTEM", self.system),
                               ("SOFTWARE", self.software)) if h is not None]
        return (f"{type(self).__name__}({self.name!r}, machine={self.computer_name} {self.machine_sid}, "
                f"{len(self._accounts)} accounts, hives={'/'.join(read) or 'none'})")

    # -- building the accounts ----------------------------------------------------------

    def _rights(self, sid: str) -> tuple[str, ...]:
        if self.security is None or sid not in self.security.accounts:
            return ()
        return tuple(sorted(self.security.accounts[sid].names))

    def _build(self) -> list[Account]:
        sam = self.sam
        if sam is None:
            return []
        machine = sam.machine_sid
        domain = self.account_domain
        source = f"{self.name} SAM"
        out: list[Account] = []
        for user in sam.users:
            sid = f"{machine}-{user.rid}"
            extra = {"rid": user.rid, "full_name": user.full_name, "comment": user.comment}
            out.append(Account(sid, user.name, USER, source, domain, disabled=user.disabled,
                               rights=self._rights(sid), extra=extra))
        for group in sam.groups:
            sid = f"{machine}-{group.rid}"
            members = tuple(f"{machine}-{rid}" for rid in group.member_rids)
            out.append(Account(sid, group.name, GROUP, source, domain, members=members, rights=self._rights(sid),
                               extra={"rid": group.rid, "comment": group.comment}))
        for alias in sam.aliases:
            sid = f"{machine}-{alias.rid}"
            out.append(Account(sid, alias.name, ALIAS, source, domain, members=alias.members,
                               rights=self._rights(sid), extra={"rid": alias.rid, "comment": alias.comment}))
        for alias in sam.builtin_aliases:
            sid = f"{BUILTIN_DOMAIN}-{alias.rid}"
            out.append(Account(sid, alias.name, ALIAS, source, BUILTIN_NAME, members=alias.members,
                               rights=self._rights(sid), extra={"rid": alias.rid, "comment": alias.comment}))
        return out
