"""The SECURITY hive: the account and primary domains, and LSA account rights.

Layouts (checked on SECURITY hives written by Windows 7 and 10 in
../shared/data/windows; each item is the default value of a key under ``Policy``)::

    PolAcDmN, PolPrDmN, PolDnDDN   a stored UNICODE_STRING: Length (bytes), MaximumLength,
                                   buffer offset (8), then the UTF-16LE text
    PolAcDmS, PolPrDmS             a binary SID; PolPrDmS is empty in a workgroup
    Accounts\\<SID>\\Sid            the account's binary SID
    Accounts\\<SID>\\ActSysAc       POLICY_SYSTEM_ACCESS_MODE, a dword of logon-right bits
    Accounts\\<SID>\\Privilgs       a PRIVILEGE_SET: PrivilegeCount, Control, then
                                   LUID_AND_ATTRIBUTES (LowPart, HighPart, Attributes)

PolAcDmN is the account domain's name, i.e. the computer's NetBIOS name, and PolAcDmS
its SID, i.e. the machine SID SAM also holds. The bit and LUID tables are those of
[MS-LSAD] 2.2.1.2 / 3.1.1.2.2 and winnt.h (SE_*_PRIVILEGE). Secrets and Cache are never
read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from aclscan.errors import HiveError, MalformedData
from aclscan.hives.registry import Hive, HiveSource, HiveStatus, RegKey, open_hive, printable
from aclscan.sd.sid import SID

__all__ = [
    "ACCOUNT_RIGHTS",
    "PRIVILEGES",
    "LsaAccount",
    "SecurityInfo",
    "read_security",
    "rights_from_bits",
    "security_from_hive",
]

# [MS-LSAD] 2.2.1.2 POLICY_SYSTEM_ACCESS_MODE and 3.1.1.2.2: right name -> ActSysAc bit.
# 0x08 is reserved and 0x20 is SECURITY_ACCESS_PROXY_LOGON, which has no right name.
ACCOUNT_RIGHTS = {
    "SeInteractiveLogonRight": 0x0001,
    "SeNetworkLogonRight": 0x0002,
    "SeBatchLogonRight": 0x0004,
    "SeServiceLogonRight": 0x0010,
    "SeDenyInteractiveLogonRight": 0x0040,
    "SeDenyNetworkLogonRight": 0x0080,
    "SeDenyBatchLogonRight": 0x0100,
    "SeDenyServiceLogonRight": 0x0200,
    "SeRemoteInteractiveLogonRight": 0x0400,
    "SeDenyRemoteInteractiveLogonRight": 0x0800,
}

# winnt.h SE_*_PRIVILEGE: the LUID low part (high part 0) -> privilege name.
PRIVILEGES = {
    2: "SeCreateTokenPrivilege",
    3: "SeAssignPrimaryTokenPrivilege",
    4: "SeLockMemoryPrivilege",
    5: "SeIncreaseQuotaPrivilege",
    6: "SeMachineAccountPrivilege",
    7: "SeTcbPrivilege",
    8: "SeSecurityPrivilege",
    9: "SeTakeOwnershipPrivilege",
    10: "SeLoadDriverPrivilege",
    11: "SeSystemProfilePrivilege",
    12: "SeSystemtimePrivilege",
    13: "SeProfileSingleProcessPrivilege",
    14: "SeIncreaseBasePriorityPrivilege",
    15: "SeCreatePagefilePrivilege",
    16: "SeCreatePermanentPrivilege",
    17: "SeBackupPrivilege",
    18: "SeRestorePrivilege",
    19: "SeShutdownPrivilege",
    20: "SeDebugPrivilege",
    21: "SeAuditPrivilege",
    22: "SeSystemEnvironmentPrivilege",
    23: "SeChangeNotifyPrivilege",
    24: "SeRemoteShutdownPrivilege",
    25: "SeUndockPrivilege",
    26: "SeSyncAgentPrivilege",
    27: "SeEnableDelegationPrivilege",
    28: "SeManageVolumePrivilege",
    29: "SeImpersonatePrivilege",
    30: "SeCreateGlobalPrivilege",
    31: "SeTrustedCredManAccessPrivilege",
    32: "SeRelabelPrivilege",
    33: "SeIncreaseWorkingSetPrivilege",
    34: "SeTimeZonePrivilege",
    35: "SeCreateSymbolicLinkPrivilege",
    36: "SeDelegateSessionUserImpersonatePrivilege",
}


@dataclass(frozen=True)
class LsaAccount:
    """What ``Policy\\Accounts\\<SID>`` grants a SID."""

    rights: frozenset[str] = frozenset()  # logon rights, "SeServiceLogonRight" ...
    privileges: frozenset[str] = frozenset()  # "SeBackupPrivilege" ...
    system_access: int = 0  # the ActSysAc dword as stored (bits without a name included)
    unknown_privileges: tuple[int, ...] = ()  # LUIDs no name is known for

    @property
    def names(self) -> frozenset[str]:
        """Rights and privileges together, as ``secedit`` and the manifests list them."""
        return self.rights | self.privileges


@dataclass(frozen=True)
class SecurityInfo:
    """What a SECURITY hive says about the machine's domains and LSA accounts."""

    account_domain_name: str | None  # PolAcDmN: the computer's NetBIOS name
    account_domain_sid: str | None  # PolAcDmS: the machine SID
    primary_domain_name: str | None  # PolPrDmN: the domain, or the workgroup's name
    primary_domain_sid: str | None  # PolPrDmS: None in a workgroup
    primary_domain_dns: str | None = None  # PolDnDDN, where a domain member has one
    accounts: dict[str, LsaAccount] = field(default_factory=dict, hash=False)
    status: HiveStatus | None = None
    problems: tuple[str, ...] = ()  # the hive's problems and the records skipped, one line each

    @property
    def is_domain_member(self) -> bool:
        return self.primary_domain_sid is not None


def rights_from_bits(bits: int) -> frozenset[str]:
    """The logon-right names of an ActSysAc value."""
    return frozenset(name for name, bit in ACCOUNT_RIGHTS.items() if bits & bit)


def _default(policy: RegKey, name: str) -> bytes | None:
    key = policy.subkey(name)
    if key is None:
        return None
    value = key.value("")
    return None if value is None else value.raw


def _unicode_string(raw: bytes | None, what: str) -> str | None:
    if not raw:
        return None
    if len(raw) < 8:
        raise HiveError(f"{what}: {len(raw)} bytes, too short for a UNICODE_STRING")
    length, _maximum, offset = struct.unpack_from("<HHI", raw)
    if offset + length > len(raw):
        raise HiveError(f"{what}: its text runs past the end of the value")
    return raw[offset : offset + length].decode("utf-16-le", "replace") or None


def _sid(raw: bytes | None, what: str) -> str | None:
    if not raw:
        return None
    try:
        return str(SID.from_bytes(raw))
    except MalformedData as exc:
        raise HiveError(f"{what}: {exc}") from None


def _privileges(raw: bytes, what: str) -> tuple[frozenset[str], tuple[int, ...]]:
    if len(raw) < 8:
        raise HiveError(f"{what}: {len(raw)} bytes, too short for a PRIVILEGE_SET")
    count, _control = struct.unpack_from("<II", raw)
    if 8 + 12 * count > len(raw):
        raise HiveError(f"{what}: {count} privileges announced, room for {(len(raw) - 8) // 12}")
    names, unknown = set(), []
    for i in range(count):
        low, high, _attributes = struct.unpack_from("<IiI", raw, 8 + 12 * i)
        name = PRIVILEGES.get(low) if high == 0 else None
        if name is None:
            unknown.append((high << 32) | low)
        else:
            names.add(name)
    return frozenset(names), tuple(unknown)


def _account(key: RegKey, problems: list[str]) -> tuple[str, LsaAccount]:
    what = f"Policy\\Accounts\\{key.name}"
    sid_key = key.subkey("Sid")
    raw_sid = sid_key.value("").raw if sid_key is not None and sid_key.value("") is not None else None
    sid = _sid(raw_sid, f"{what}\\Sid")
    if sid is None:
        try:
            sid = str(SID.from_string(key.name))
        except MalformedData:
            raise HiveError(f"{what}: no Sid, and the key name is no SID") from None
        problems.append(f"{what}: no Sid value; the key name is taken for the SID")
    elif sid.upper() != key.name.upper():
        problems.append(f"{what}: its Sid value says {sid}")
    bits = 0
    act = key.subkey("ActSysAc")
    if act is not None and act.value("") is not None:
        raw = act.value("").raw
        if len(raw) < 4:
            raise HiveError(f"{what}\\ActSysAc: {len(raw)} bytes, not a dword")
        bits = struct.unpack_from("<I", raw)[0]
    privileges: frozenset[str] = frozenset()
    unknown: tuple[int, ...] = ()
    priv = key.subkey("Privilgs")
    if priv is not None and priv.value("") is not None:
        privileges, unknown = _privileges(priv.value("").raw, f"{what}\\Privilgs")
    return sid, LsaAccount(rights_from_bits(bits), privileges, bits, unknown)


def security_from_hive(hive: Hive) -> SecurityInfo:
    """:func:`read_security` over a hive already open."""
    hive.require("SECURITY")
    policy = hive.key("Policy")
    problems: list[str] = []

    def item(reader, name):
        try:
            return reader(_default(policy, name), f"Policy\\{name}")
        except HiveError as exc:
            problems.append(f"Policy\\{name} skipped: {exc}")
            return None

    accounts: dict[str, LsaAccount] = {}
    container = policy.subkey("Accounts")
    for key in container.subkeys() if container is not None else ():
        try:
            sid, account = _account(key, problems)
        except HiveError as exc:
            problems.append(f"Policy\\Accounts\\{key.name} skipped: {exc}")
            continue
        accounts[sid] = account
    status = hive.status
    return SecurityInfo(
        account_domain_name=item(_unicode_string, "PolAcDmN"),
        account_domain_sid=item(_sid, "PolAcDmS"),
        primary_domain_name=item(_unicode_string, "PolPrDmN"),
        primary_domain_sid=item(_sid, "PolPrDmS"),
        primary_domain_dns=item(_unicode_string, "PolDnDDN"),
        accounts=accounts,
        status=status,
        problems=tuple(status.problems) + tuple(printable(p) for p in problems),
    )


def read_security(source: HiveSource | Hive, **open_args) -> SecurityInfo:
    """The domains and LSA accounts of a SECURITY hive (a path, bytes, a binary file or
    an open :class:`Hive`). Raises :class:`~aclscan.errors.HiveError` /
    :class:`~aclscan.errors.WrongHive`; an account that cannot be read is skipped and
    named in ``problems``."""
    hive = source if isinstance(source, Hive) else open_hive(source, expect="SECURITY", **open_args)
    return security_from_hive(hive)
