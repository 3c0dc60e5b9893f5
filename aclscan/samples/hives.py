"""Builders of SAM, SECURITY, SYSTEM and SOFTWARE key trees from a short description.

Each builder returns a :class:`~aclscan.samples.regf.Key` tree laid out as Windows 10
lays out the hive (key names, value names and types, binary layouts); write it with
:func:`write_hive`, giving the hive's name from :data:`HIVE_NAMES` so that readers
recognise it. The layouts were read from SAM and SECURITY hives written by Windows 7
(STUDENT-PC8) and Windows 10 (CHITONSRV, DESKTOP-M964FJN) and a Windows 10 SYSTEM hive
(../shared/data/windows/hives); the rights and privilege numbers come from [MS-LSAD]
2.2.1.2 and 3.1.1.2.1.

No builder writes a secret: user accounts carry no password hash (only the empty hash
headers Windows writes for an account without a password), the SAM domain key slots
are zero, SECURITY has no Secrets values and no cached logons.

SAM layouts (offsets in bytes; "entry" = (offset, length, extra) as three dwords, the
offset relative to the end of the table)::

    Domains\\Account F   revision, creation time, password and lockout policy, NextRid
                        at 0x48, server state and role, then two key slots (zeroed)
    Domains\\Account V   4 entries (0x30 bytes): security descriptor, domain SID, 2 empty;
                        the machine SID is the last 24 bytes
    Users\\<RID> F       RID at 0x30, primary group at 0x34, ACB flags at 0x38
    Users\\<RID> V       17 entries (0xCC bytes): descriptor, name, full name, comment,
                        ..., logon hours (11), groups (12), LM/NT hashes and histories
                        (13-16, empty headers here)
    Users\\Names\\<name>  default value, no data, type = the RID
    Aliases\\<RID> C     RID, 4 entries (descriptor, name, comment, member SIDs + count)
    Aliases\\Members\\<domain SID>\\<RID>  default value: type = alias count, data = alias RIDs
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aclscan.errors import MalformedData
from aclscan.hives import security as _lsa_tables
from aclscan.hives.sam import SamUser
from aclscan.samples.regf import (
    DEFAULT_TIMESTAMP,
    REG_BINARY,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_MULTI_SZ,
    REG_NONE,
    REG_SZ,
    InvalidHive,
    Key,
    Value,
    filetime,
    upcase,
    write_hive,
)
from aclscan.sd.sddl import from_sddl
from aclscan.sd.sid import SID

__all__ = [
    "ACCOUNT_RIGHTS",
    "ALIAS_DESCRIPTIONS",
    "HIVE_NAMES",
    "LsaAccount",
    "PRIVILEGES",
    "PRODUCT_TYPES",
    "AppId",
    "GROUP_DESCRIPTOR",
    "LSA_ACCOUNT_DESCRIPTOR",
    "Printer",
    "Profile",
    "SamAlias",
    "SamUser",
    "ScheduledTask",
    "Service",
    "Share",
    "alias_descriptor",
    "default_builtin_aliases",
    "default_lsa_accounts",
    "default_users",
    "sam_hive",
    "security_hive",
    "service_sid",
    "software_hive",
    "system_hive",
    "user_descriptor",
    "user_hive",
    "write_hive",
]

# The hive paths Windows records in each base block (write_hive keeps the last 31 characters).
HIVE_NAMES = {
    "SAM": r"\SystemRoot\System32\Config\SAM",
    "SECURITY": r"\SystemRoot\System32\Config\SECURITY",
    "SYSTEM": "SYSTEM",
    "SOFTWARE": r"\SystemRoot\System32\Config\SOFTWARE",
}

# The rights and privilege tables are the hive reader's ([MS-LSAD] 2.2.1.2 and
# 3.1.1.2.1): one table, read and written alike. Here privileges go name -> LUID.
ACCOUNT_RIGHTS = _lsa_tables.ACCOUNT_RIGHTS
PRIVILEGES = {name: luid for luid, name in _lsa_tables.PRIVILEGES.items()}

# ControlSet001\Control\ProductOptions ProductType: workstation, member or stand-alone
# server, domain controller.
PRODUCT_TYPES = ("WinNT", "ServerNT", "LanmanNT")

# The descriptions English Windows gives its builtin aliases (SAM C values).
ALIAS_DESCRIPTIONS = {
    544: "Administrators have complete and unrestricted access to the computer/domain",
    545: "Users are prevented from making accidental or intentional system-wide changes "
    "and can run most applications",
    546: "Guests have the same access as members of the Users group by default, except for "
    "the Guest account which is further restricted",
    547: "Power Users are included for backwards compatibility and possess limited administrative powers",
    551: "Backup Operators can override security restrictions for the sole purpose of backing up or restoring files",
    552: "Supports file replication in a domain",
    555: "Members in this group are granted the right to logon remotely",
    556: "Members in this group can have some administrative privileges to manage configuration of networking features",
    558: "Members of this group can access performance counter data locally and remotely",
    559: "Members of this group may schedule logging of performance counters, enable trace providers, "
    "and collect event traces both locally and via remote access to this computer",
    562: "Members are allowed to launch, activate and use Distributed COM objects on this machine.",
    568: "Built-in group used by Internet Information Services.",
    569: "Members are authorized to perform cryptographic operations.",
    573: "Members of this group can read event logs from local machine",
    578: "Members of this group have complete and unrestricted access to all features of Hyper-V.",
    579: "Members of this group can remotely query authorization attributes and permissions "
    "for resources on this computer.",
    580: "Members of this group can access WMI resources over management protocols (such as WS-Management "
    "via the Windows Remote Management service). This applies only to WMI namespaces that grant access to the user.",
    581: "Members of this group are managed by the system.",
    583: "Members of this group can change system-wide settings.",
}

_BUILTIN_ALIAS_NAMES = {
    544: "Administrators",
    545: "Users",
    546: "Guests",
    547: "Power Users",
    551: "Backup Operators",
    552: "Replicator",
    555: "Remote Desktop Users",
    556: "Network Configuration Operators",
    558: "Performance Monitor Users",
    559: "Performance Log Users",
    562: "Distributed COM Users",
    568: "IIS_IUSRS",
    569: "Cryptographic Operators",
    573: "Event Log Readers",
    578: "Hyper-V Administrators",
    579: "Access Control Assistance Operators",
    580: "Remote Management Users",
    581: "System Managed Accounts Group",
    583: "Device Owners",
}

_USER_DESCRIPTIONS = {
    500: "Built-in account for administering the computer/domain",
    501: "Built-in account for guest access to the computer/domain",
    503: "A user account managed by the system.",
    504: "A user account managed and used by the system for Windows Defender Application Guard scenarios.",
}

# A Windows 10 capability SID that SAM object descriptors grant read access to.
_SAM_CAPABILITY = "S-1-15-3-1024-1730716382-2949791265-2036182297-688374192-553408039-4133924312-4201181712-267922143"

# Account flags (ACB_*) of a user's F value.
ACB_DISABLED = 0x0001
ACB_PWNOTREQ = 0x0004
ACB_NORMAL = 0x0010
ACB_PWNOEXP = 0x0200

_NEVER = 0x7FFFFFFFFFFFFFFF
_MINUTE = 60 * 10_000_000
_DAY = 1440 * _MINUTE


# ---------------------------------------------------------------------------------------
# Descriptions


def _sid(text: str, what: str) -> SID:
    if not isinstance(text, str):
        raise InvalidHive(f"{what}: a SID must be text like 'S-1-5-21-1-2-3', not {type(text).__name__}")
    try:
        return SID.from_string(text)
    except MalformedData as exc:
        raise InvalidHive(f"{what}: {exc}") from exc


def _machine(text: str) -> SID:
    sid = _sid(text, "machine SID")
    if sid.authority != 5 or len(sid.sub_authorities) != 4 or sid.sub_authorities[0] != 21:
        raise InvalidHive(f"machine SID {text!r} is not of the form S-1-5-21-a-b-c")
    return sid


def _rid(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 0xFFFFFFFF:
        raise InvalidHive(f"{what}: RID {value!r} is not a number from 1 to 4294967295")
    return value


def acb_flags(user: SamUser) -> int:
    """The ACB flags the F value stores: the user's own, or (0) NORMAL | PWNOTREQ (no
    password is stored), DISABLED when disabled, PWNOEXP for the builtin accounts (RID < 1000)."""
    if user.acb_flags:
        return user.acb_flags
    flags = ACB_NORMAL | ACB_PWNOTREQ
    if user.disabled:
        flags |= ACB_DISABLED
    if user.rid < 1000:
        flags |= ACB_PWNOEXP
    return flags


@dataclass(frozen=True)
class SamAlias:
    """A local group (alias) and the SIDs of its members."""

    rid: int
    name: str
    members: Sequence[str] = ()
    comment: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.members, str):
            raise InvalidHive(f"alias {self.name!r}: members must be a list of SIDs, not one string")
        object.__setattr__(self, "members", tuple(self.members))


@dataclass(frozen=True)
class LsaAccount:
    """What Policy\\Accounts\\<SID> grants: logon rights (ActSysAc) and privileges (Privilgs)."""

    rights: frozenset[str] = frozenset()
    privileges: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("rights", "privileges"):
            given = getattr(self, name)
            if isinstance(given, str):
                raise InvalidHive(f"LsaAccount {name} must be a set of names, not one string")
            object.__setattr__(self, name, frozenset(given))
        unknown = sorted(self.rights - ACCOUNT_RIGHTS.keys()) + sorted(self.privileges - PRIVILEGES.keys())
        if unknown:
            raise InvalidHive(f"unknown account rights or privileges: {', '.join(unknown)}")

    @property
    def system_access(self) -> int:
        """The ActSysAc flags."""
        flags = 0
        for right in self.rights:
            flags |= ACCOUNT_RIGHTS[right]
        return flags


@dataclass(frozen=True)
class Service:
    """A Win32 service or driver under ControlSet001\\Services.

    ``object_name`` is the logon account (ObjectName): ``LocalSystem``,
    ``NT AUTHORITY\\LocalService``, ``.\\user``, ``DOMAIN\\user``; ``None`` writes none.
    """

    name: str
    object_name: str | None = None
    image_path: str | None = None  # None or "": a svchost command line, or the driver's .sys
    start: int = 2  # 0 boot, 1 system, 2 automatic, 3 manual, 4 disabled
    type: int = 0x10  # 0x1 kernel driver, 0x2 file system driver, 0x10 own process, 0x20 shared
    display_name: str | None = None
    error_control: int = 1
    required_privileges: Sequence[str] = ()
    service_sid_type: int | None = None  # 0 none, 1 unrestricted, 3 restricted
    security: bytes | None = None  # the service's own descriptor (Services\<name>\Security)

    @property
    def is_driver(self) -> bool:
        return bool(self.type & 0x3) and not self.type & 0x30


@dataclass(frozen=True)
class Share:
    """A share of the Server service: its folder and its share permissions (a descriptor)."""

    name: str
    path: str
    security: bytes
    remark: str = ""


@dataclass(frozen=True)
class Printer:
    """A local printer and its descriptor (Control\\Print\\Printers\\<name>\\Security)."""

    name: str
    security: bytes
    port: str = "PORTPROMPT:"
    driver: str = "Microsoft Print To PDF"


@dataclass(frozen=True)
class ScheduledTask:
    """A task's TaskCache entry (Schedule\\TaskCache\\Tasks\\{id} and Tree\\<path>)."""

    guid: str  # "{...}", upper case as Windows writes it
    path: str  # "\\AVScan\\Update"
    security: bytes  # the SD value
    author: str = ""


@dataclass(frozen=True)
class AppId:
    """A DCOM application (Classes\\AppID\\{id}) and its launch and access permissions."""

    guid: str
    name: str
    launch: bytes | None = None
    access: bytes | None = None


@dataclass(frozen=True)
class Profile:
    """A ProfileList entry: the SID whose profile lives at ``path``."""

    sid: str
    path: str
    state: int = 0
    flags: int = 0


def default_users(*, administrator_enabled: bool = False) -> list[SamUser]:
    """The four accounts Windows 10 creates: Administrator, Guest, DefaultAccount,
    WDAGUtilityAccount; all disabled unless ``administrator_enabled``."""
    return [
        SamUser(500, "Administrator", comment=_USER_DESCRIPTIONS[500], disabled=not administrator_enabled),
        SamUser(501, "Guest", comment=_USER_DESCRIPTIONS[501], disabled=True),
        SamUser(503, "DefaultAccount", comment=_USER_DESCRIPTIONS[503], disabled=True),
        SamUser(504, "WDAGUtilityAccount", comment=_USER_DESCRIPTIONS[504], disabled=True),
    ]


def default_builtin_aliases(
    machine_sid: str, users: Iterable[SamUser] = (), *, administrators: Iterable[str] = ()
) -> list[SamAlias]:
    """The BUILTIN aliases of a Windows 10 workstation and their usual members.

    Administrators holds the machine's RID 500 and ``administrators`` (SIDs); Users holds
    INTERACTIVE, Authenticated Users and every user with a RID of 1000 or more; Guests
    holds RID 501; IIS_IUSRS holds IUSR (S-1-5-17); System Managed Accounts Group holds
    DefaultAccount (RID 503) where ``users`` has it.
    """
    machine = str(_machine(machine_sid))
    rids = {u.rid for u in users}
    members: dict[int, list[str]] = {rid: [] for rid in _BUILTIN_ALIAS_NAMES}
    members[544] = [f"{machine}-500", *administrators]
    members[545] = ["S-1-5-4", "S-1-5-11", *(f"{machine}-{u.rid}" for u in users if u.rid >= 1000)]
    members[546] = [f"{machine}-501"]
    members[568] = ["S-1-5-17"]
    if 503 in rids:
        members[581] = [f"{machine}-503"]
    return [
        SamAlias(rid, name, members[rid], ALIAS_DESCRIPTIONS.get(rid, ""))
        for rid, name in _BUILTIN_ALIAS_NAMES.items()
    ]


def default_lsa_accounts(machine_sid: str | None = None) -> dict[str, LsaAccount]:
    """The Policy\\Accounts entries of a fresh Windows 10 workstation (read from
    DESKTOP-M964FJN's SECURITY hive); with ``machine_sid``, also the Guest account's
    deny rights."""
    accounts = {
        "S-1-1-0": LsaAccount({"SeNetworkLogonRight"}, {"SeChangeNotifyPrivilege"}),
        "S-1-5-19": LsaAccount(
            (),
            {
                "SeAuditPrivilege",
                "SeChangeNotifyPrivilege",
                "SeImpersonatePrivilege",
                "SeCreateGlobalPrivilege",
                "SeIncreaseQuotaPrivilege",
                "SeAssignPrimaryTokenPrivilege",
                "SeSystemtimePrivilege",
                "SeTimeZonePrivilege",
            },
        ),
        "S-1-5-20": LsaAccount(
            (),
            {
                "SeAuditPrivilege",
                "SeChangeNotifyPrivilege",
                "SeImpersonatePrivilege",
                "SeCreateGlobalPrivilege",
                "SeIncreaseQuotaPrivilege",
                "SeAssignPrimaryTokenPrivilege",
            },
        ),
        "S-1-5-32-544": LsaAccount(
            {
                "SeInteractiveLogonRight",
                "SeNetworkLogonRight",
                "SeBatchLogonRight",
                "SeRemoteInteractiveLogonRight",
            },
            {
                "SeSecurityPrivilege",
                "SeBackupPrivilege",
                "SeRestorePrivilege",
                "SeSystemtimePrivilege",
                "SeShutdownPrivilege",
                "SeRemoteShutdownPrivilege",
                "SeTakeOwnershipPrivilege",
                "SeDebugPrivilege",
                "SeSystemEnvironmentPrivilege",
                "SeSystemProfilePrivilege",
                "SeProfileSingleProcessPrivilege",
                "SeIncreaseBasePriorityPrivilege",
                "SeLoadDriverPrivilege",
                "SeCreatePagefilePrivilege",
                "SeIncreaseQuotaPrivilege",
                "SeUndockPrivilege",
                "SeManageVolumePrivilege",
                "SeImpersonatePrivilege",
                "SeCreateGlobalPrivilege",
                "SeTimeZonePrivilege",
                "SeCreateSymbolicLinkPrivilege",
                "SeChangeNotifyPrivilege",
                "SeDelegateSessionUserImpersonatePrivilege",
            },
        ),
        "S-1-5-32-545": LsaAccount(
            {"SeInteractiveLogonRight", "SeNetworkLogonRight"},
            {
                "SeChangeNotifyPrivilege",
                "SeIncreaseWorkingSetPrivilege",
                "SeShutdownPrivilege",
                "SeUndockPrivilege",
                "SeTimeZonePrivilege",
            },
        ),
        "S-1-5-32-551": LsaAccount(
            {"SeInteractiveLogonRight", "SeNetworkLogonRight", "SeBatchLogonRight"},
            {"SeBackupPrivilege", "SeRestorePrivilege", "SeShutdownPrivilege", "SeChangeNotifyPrivilege"},
        ),
        "S-1-5-32-555": LsaAccount({"SeRemoteInteractiveLogonRight"}),
        "S-1-5-32-559": LsaAccount({"SeBatchLogonRight"}),
        "S-1-5-6": LsaAccount((), {"SeImpersonatePrivilege", "SeCreateGlobalPrivilege"}),
        "S-1-5-80-0": LsaAccount({"SeServiceLogonRight"}),
        service_sid("WdiServiceHost"): LsaAccount((), {"SeSystemProfilePrivilege"}),
        "S-1-5-90-0": LsaAccount((), {"SeIncreaseBasePriorityPrivilege"}),
    }
    if machine_sid is not None:
        accounts[f"{_machine(machine_sid)}-501"] = LsaAccount(
            {"SeInteractiveLogonRight", "SeDenyInteractiveLogonRight", "SeDenyNetworkLogonRight"}
        )
    return accounts


def service_sid(name: str) -> str:
    """The NT SERVICE\\<name> SID: S-1-5-80 and the five little-endian dwords of the SHA-1
    of the upper-cased service name in UTF-16LE."""
    if not isinstance(name, str) or not name:
        raise InvalidHive(f"a service name must be non-empty text, not {name!r}")
    digest = hashlib.sha1(upcase(name).encode("utf-16-le", "surrogatepass")).digest()
    return "S-1-5-80-" + "-".join(str(n) for n in struct.unpack("<5I", digest))


# ---------------------------------------------------------------------------------------
# Binary helpers


def _sd(sddl: str) -> bytes:
    return from_sddl(sddl).to_bytes()


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _entry_table(items: Sequence[tuple[bytes, int]]) -> tuple[bytes, bytes]:
    """(table of (offset, length, extra) dwords, data): each item 4-byte aligned."""
    table = bytearray()
    data = bytearray()
    for blob, extra in items:
        data += bytes(_align4(len(data)) - len(data))
        table += struct.pack("<III", len(data), len(blob), extra)
        data += blob
    return bytes(table), bytes(data)


def _rid_key(rid: int) -> str:
    return f"{rid:08X}"


def _default(kind: int, data: bytes = b"") -> Value:
    return Value("", kind, data)


# ---------------------------------------------------------------------------------------
# SAM


def _domain_f(revision: int, *, next_rid: int, created: int, account: bool) -> bytes:
    head = struct.pack(
        "<HHIQQqqqqqQIIHHHHIIII",
        revision,
        1,
        0,
        created,
        1,  # domain modified count
        -42 * _DAY if account else -0x21C000000000,  # maximum password age
        0,  # minimum password age
        -(1 << 63),  # force logoff: never
        -30 * _MINUTE,  # lockout duration
        -30 * _MINUTE,  # lockout observation window
        0,  # modified count at last promotion
        next_rid,
        0,  # password properties
        0,  # minimum password length
        0,  # password history length
        0,  # lockout threshold
        0,
        1,  # server state: enabled
        3,  # server role: primary
        1,  # UAS compatibility required
        0x10000 if account else 0,
    )
    if revision >= 3:
        size = 0x170
        slots = [(0x68, struct.pack("<IIII", 2, 0x70, 0x30, 0x20)), (0xE8, struct.pack("<IIII", 2, 0x70, 0x30, 0x20))]
        last = (0x168, 4)
    else:
        size = 0xF0
        slots = [(0x68, struct.pack("<II", 1, 0x38)), (0xA8, struct.pack("<II", 1, 0x38))]
        last = (0xE8, 3)
    out = bytearray(size)
    out[: len(head)] = head
    if account:  # the key slots keep their headers; the (encrypted) key material stays zero
        for offset, slot in slots:
            out[offset : offset + len(slot)] = slot
        struct.pack_into("<I", out, last[0], last[1])
    return bytes(out)


def _domain_v(revision: int, sd: bytes, sid: SID) -> bytes:
    sid_raw = sid.to_bytes()
    table, data = _entry_table([(sd, 0x10000 | revision), (sid_raw, 0), (b"", 0), (b"", 0)])
    return table + data


def _user_f(revision: int, user: SamUser, timestamp: int) -> bytes:
    return struct.pack(
        "<HHIQQQQQIIIHHHH12x",
        revision,
        1,
        0,
        0,  # last logon: never
        0,  # last logoff
        timestamp,  # password last set
        _NEVER,  # account expires: never
        0,  # last bad password
        user.rid,
        513,  # primary group: None (Domain Users)
        acb_flags(user),
        0,  # country code
        0,  # code page
        0,  # bad password count
        0,  # logon count
    )


def _empty_hash(revision: int) -> bytes:
    # The header Windows writes where an account has no hash: RC4 era (revision 2)
    # PekId 3, revision 1; AES era (revision 3) PekId 4, revision 2, data offset 0, zero salt.
    if revision >= 3:
        return struct.pack("<HHI", 4, 2, 0) + bytes(16)
    return struct.pack("<HH", 3, 1)


def user_descriptor(machine_sid: str, rid: int) -> bytes:
    """The descriptor of a SAM user object (the first entry of its V value): Windows
    grants the user itself read and change-password access."""
    owner_rights = "" if rid < 1000 else "(A;;0xf07ff;;;AO)"
    return _sd(
        f"O:BAG:BAD:(A;;0x2035b;;;WD)(A;;0xf07ff;;;BA){owner_rights}(A;;0x2031b;;;{_SAM_CAPABILITY})"
        f"(A;;0x20044;;;{machine_sid}-{rid})S:(AU;SAFA;0x1050044;;;WD)(AU;SAFA;0x1fffff;;;AN)"
    )


def alias_descriptor(rid: int) -> bytes:
    """The descriptor of a SAM alias object (the first entry of its C value)."""
    owner_rights = "" if rid == 544 else "(A;;0xf001f;;;AO)"
    return _sd(
        f"O:BAG:BAD:(A;;0x2000c;;;WD)(A;;0xf001f;;;BA){owner_rights}(A;;0x2000c;;;{_SAM_CAPABILITY})"
        "S:(AU;SAFA;0x1050013;;;WD)(AU;SAFA;0x1fffff;;;AN)"
    )


GROUP_DESCRIPTOR = from_sddl(
    "O:BAG:BAD:(A;;0x20011;;;WD)(A;;0xf001f;;;BA)(A;;0xf001f;;;AO)S:(AU;SAFA;0x105000e;;;WD)(AU;SAFA;0x1fffff;;;AN)"
).to_bytes()  # a SAM group object's (the first entry of its C value)

# Policy\Accounts\<SID>\SecDesc: Windows 7 and 10 write this one for every LSA account.
LSA_ACCOUNT_DESCRIPTOR = from_sddl("O:BAG:SYD:(A;;0xf000f;;;BA)(A;;0x20000;;;WD)").to_bytes()


def _user_v(revision: int, user: SamUser, machine: SID) -> bytes:
    sd = user_descriptor(str(machine), user.rid)
    empty = _empty_hash(revision)
    items = [
        (sd, 0x10000 | revision),
        (_utf16(user.name), 0),
        (_utf16(user.full_name), 0),
        (_utf16(user.comment), 0),
        (b"", 0),  # user comment
        (b"", 0),  # parameters
        (b"", 0),  # home directory
        (b"", 0),  # home directory drive
        (b"", 0),  # logon script
        (b"", 0),  # profile path
        (b"", 0),  # workstations
        (b"\xff" * 21, 168),  # logon hours: every hour of the week's 168
        (struct.pack("<II", 513, 7), 1),  # groups: None, SE_GROUP_MANDATORY | ENABLED(_BY_DEFAULT)
        (empty, 0),  # LM hash
        (empty, 0),  # NT hash
        (empty, 0),  # NT hash history
        (empty, 0),  # LM hash history
    ]
    table, data = _entry_table(items)
    return table + data


def _alias_c(revision: int, alias: SamAlias, members: list[bytes]) -> bytes:
    sd = alias_descriptor(alias.rid)
    table, data = _entry_table(
        [
            (sd, 0x10000 | revision),
            (_utf16(alias.name), 0),
            (_utf16(alias.comment), 0),
            (b"".join(members), len(members)),
        ]
    )
    return struct.pack("<I", alias.rid) + table + data


def _group_c(revision: int, rid: int, name: str, comment: str, member_rids: list[int]) -> bytes:
    sd = GROUP_DESCRIPTOR
    members = struct.pack(f"<{len(member_rids)}I", *member_rids)
    table, data = _entry_table(
        [(sd, 0x10000 | revision), (_utf16(name), 0), (_utf16(comment), 0), (members, len(member_rids))]
    )
    return struct.pack("<IIIII", 0x10000 | revision, rid, 7, 0, 0) + table + data


def _server_c(revision: int) -> bytes:
    sd = _sd(
        f"O:BAG:BAD:(A;;0x20031;;;WD)(A;;0xf003f;;;BA)(A;;0x20031;;;{_SAM_CAPABILITY})"
        "S:(AU;SAFA;0x105000e;;;WD)(AU;SAFA;0x1fffff;;;AN)"
    )
    return struct.pack("<IIII", 0x10000 | (revision + 5), 0, len(sd), 0x10000 | revision) + sd


def _check_unique(items: Sequence, kind: type, what: str, plural: str) -> None:
    """Each item of the right type, with a valid RID, and RIDs and names (case-blind) unique."""
    rids: set[int] = set()
    names: set[str] = set()
    for item in items:
        if not isinstance(item, kind):
            raise InvalidHive(f"{what}: {item!r} is not a {kind.__name__}")
        _rid(item.rid, f"{what} {item.name!r}")
        if item.rid in rids:
            raise InvalidHive(f"{what}: two {plural} have RID {item.rid}")
        if upcase(item.name) in names:
            raise InvalidHive(f"{what}: two {plural} are called {item.name!r}")
        rids.add(item.rid)
        names.add(upcase(item.name))


def _check_aliases(aliases: Sequence[SamAlias], what: str) -> dict[int, list[SID]]:
    members: dict[int, list[SID]] = {}
    _check_unique(aliases, SamAlias, what, "aliases")
    for alias in aliases:
        sids = [_sid(m, f"{what} {alias.name!r} member") for m in alias.members]
        for sid in sids:
            if not sid.sub_authorities:
                raise InvalidHive(f"{what} {alias.name!r}: member {sid} has no RID to file it under")
        if len(set(sids)) != len(sids):
            raise InvalidHive(f"{what} {alias.name!r} lists a member twice")
        members[alias.rid] = sids
    return members


def _aliases_key(revision: int, aliases: Sequence[SamAlias], members: dict[int, list[SID]]) -> Key:
    key = Key("Aliases", [_default(len(aliases))])
    for alias in aliases:
        raw = [sid.to_bytes() for sid in members[alias.rid]]
        key.subkeys.append(Key(_rid_key(alias.rid), [Value("C", REG_BINARY, _alias_c(revision, alias, raw))]))
    # Members\<domain SID>\<RID>: the aliases (of this domain) each member belongs to.
    reverse: dict[str, dict[int, list[int]]] = {}
    for alias in aliases:
        for sid in members[alias.rid]:
            reverse.setdefault(str(sid.prefix), {}).setdefault(sid.rid, []).append(alias.rid)
    members_key = Key("Members", [_default(1 if reverse else 0)])
    for domain, by_rid in reverse.items():
        domain_key = Key(domain, [_default(len(by_rid))])
        for rid, alias_rids in by_rid.items():
            data = struct.pack(f"<{len(alias_rids)}I", *alias_rids)
            domain_key.subkeys.append(Key(_rid_key(rid), [_default(len(alias_rids), data)]))
        members_key.subkeys.append(domain_key)
    names = Key("Names", [_default(REG_NONE)], [Key(a.name, [_default(a.rid)]) for a in aliases])
    key.subkeys += [members_key, names]
    return key


def sam_hive(
    machine_sid: str,
    users: Sequence[SamUser] | None = None,
    aliases: Sequence[SamAlias] = (),
    builtin_aliases: Sequence[SamAlias] | None = None,
    *,
    revision: int = 3,
    timestamp: datetime | int = DEFAULT_TIMESTAMP,
    none_group_name: str = "None",
    computer_name: str | None = None,
) -> Key:
    """The SAM tree of a machine whose account domain is ``machine_sid``.

    ``users`` default to :func:`default_users`; ``aliases`` are the machine's own local
    groups (RIDs from 1000); ``builtin_aliases`` default to
    :func:`default_builtin_aliases`. ``revision`` 3 writes Windows 10's layouts (AES era),
    2 Windows 7's. Every user is a member of the group ``none_group_name`` (RID 513).
    ``computer_name`` is accepted so one description feeds every builder, but Windows
    keeps the account domain's name in SECURITY (PolAcDmN), not in SAM: it is not stored.
    """
    machine = _machine(machine_sid)
    if computer_name is not None and (not isinstance(computer_name, str) or not computer_name):
        raise InvalidHive("the computer name must be non-empty text")
    if revision not in (2, 3):
        raise InvalidHive(f"SAM revision {revision!r} is not 2 (Windows 7) or 3 (Windows 10)")
    users = default_users() if users is None else list(users)
    _check_unique(users, SamUser, "SAM", "users")
    rids = {user.rid for user in users}
    aliases = list(aliases)
    if builtin_aliases is None:
        builtin_aliases = default_builtin_aliases(machine_sid, users)
    builtin_aliases = list(builtin_aliases)
    account_members = _check_aliases(aliases, "alias")
    builtin_members = _check_aliases(builtin_aliases, "builtin alias")
    taken = rids & set(account_members) | ({513} & (rids | set(account_members)))
    if taken:
        raise InvalidHive(f"RIDs used twice in the account domain: {sorted(taken)}")
    stamp = filetime(timestamp)
    used = [1000 - 1, *rids, *account_members]

    account = Key(
        "Account",
        [
            Value("F", REG_BINARY, _domain_f(revision, next_rid=max(used) + 1, created=stamp, account=True)),
            Value(
                "V",
                REG_BINARY,
                _domain_v(
                    revision,
                    _sd(
                        "O:BAG:BAD:(A;;0x20385;;;WD)(A;;0x20385;;;BU)(A;;0xf07df;;;BA)(A;;0x20385;;;PU)"
                        f"(A;;0x203d5;;;AO)(A;;0x20385;;;{_SAM_CAPABILITY})(D;;0x50;;;PU)"
                        "S:(AU;SAFA;0x105047a;;;WD)(AU;SAFA;0xf07ff;;;AN)"
                    ),
                    machine,
                ),
            ),
        ],
    )
    account.subkeys.append(_aliases_key(revision, aliases, account_members))
    user_rids = [u.rid for u in users]
    account.subkeys.append(
        Key(
            "Groups",
            [_default(1)],
            [
                Key(
                    _rid_key(513),
                    [Value("C", REG_BINARY, _group_c(revision, 513, none_group_name, "Ordinary users", user_rids))],
                ),
                Key("Names", [_default(REG_NONE)], [Key(none_group_name, [_default(513)])]),
            ],
        )
    )
    users_key = Key("Users", [_default(len(users))])
    for user in users:
        users_key.subkeys.append(
            Key(
                _rid_key(user.rid),
                [
                    Value("F", REG_BINARY, _user_f(revision, user, stamp)),
                    Value("V", REG_BINARY, _user_v(revision, user, machine)),
                ],
            )
        )
    users_key.subkeys.append(Key("Names", [_default(REG_NONE)], [Key(u.name, [_default(u.rid)]) for u in users]))
    account.subkeys.append(users_key)

    builtin = Key(
        "Builtin",
        [
            Value("F", REG_BINARY, _domain_f(revision, next_rid=1000, created=stamp, account=False)),
            Value(
                "V",
                REG_BINARY,
                _domain_v(
                    revision,
                    _sd(
                        f"O:BAG:BAD:(A;;0x20385;;;WD)(A;;0x207c5;;;BA)(A;;0x20385;;;{_SAM_CAPABILITY})"
                        "S:(AU;SAFA;0x105047a;;;WD)(AU;SAFA;0x1fffff;;;AN)"
                    ),
                    SID(1, 5, (32,)),
                ),
            ),
        ],
        [
            _aliases_key(revision, builtin_aliases, builtin_members),
            Key("Groups", [_default(REG_NONE)], [Key("Names", [_default(REG_NONE)])]),
            Key("Users", [_default(REG_NONE)], [Key("Names", [_default(REG_NONE)])]),
        ],
    )
    sam = Key(
        "SAM",
        [
            Value("C", REG_BINARY, _server_c(revision)),
            Value("ServerDomainUpdates", REG_BINARY, b"\xfe\xff\x01" if revision >= 3 else b"\xfe\x0f"),
        ],
        [
            Key("Domains", [_default(REG_NONE)], [account, builtin]),
            Key("LastSkuUpgrade", [_default(REG_DWORD, struct.pack("<I", 0x30))]),
            Key("RXACT", [_default(REG_NONE, struct.pack("<III", 1, 0, 0))]),
        ],
    )
    return Key("ROOT", subkeys=[sam])


# ---------------------------------------------------------------------------------------
# SECURITY


def _unicode_string(text: str) -> bytes:
    """LSA's stored UNICODE_STRING: Length, MaximumLength, buffer offset 8, text, NUL."""
    raw = _utf16(text)
    if len(raw) + 2 > 0xFFFF:
        raise InvalidHive(f"name {text[:40]!r}... is too long for a UNICODE_STRING")
    return struct.pack("<HHI", len(raw), len(raw) + 2, 8) + raw + b"\0\0"


def _privilege_set(names: Iterable[str]) -> bytes:
    luids = sorted(PRIVILEGES[name] for name in names)
    body = b"".join(struct.pack("<IiI", luid, 0, 0) for luid in luids)
    return struct.pack("<II", len(luids), 0) + body


def security_hive(
    account_domain_name: str,
    machine_sid: str,
    primary_domain_name: str | None = None,
    primary_domain_sid: str | None = None,
    accounts: Mapping[str, LsaAccount] | None = None,
    *,
    primary_domain_dns: str | None = None,
    machine_account_sid: str | None = None,
) -> Key:
    """The SECURITY tree: the account domain (computer name and machine SID), the primary
    domain (a workgroup when ``primary_domain_sid`` is None; its name defaults to
    WORKGROUP) and the LSA accounts with their rights and privileges (default:
    :func:`default_lsa_accounts`)."""
    machine = _machine(machine_sid)
    if not isinstance(account_domain_name, str) or not account_domain_name:
        raise InvalidHive("the account domain (computer) name must be non-empty text")
    if primary_domain_name is None:
        if primary_domain_sid is not None:
            raise InvalidHive("a primary domain SID needs the domain's name")
        primary_domain_name = "WORKGROUP"
    domain_sid = b"" if primary_domain_sid is None else _sid(primary_domain_sid, "primary domain SID").to_bytes()
    member_sid = b"" if machine_account_sid is None else _sid(machine_account_sid, "machine account SID").to_bytes()
    if accounts is None:
        accounts = default_lsa_accounts(machine_sid)
    account_sd = LSA_ACCOUNT_DESCRIPTOR
    accounts_key = Key("Accounts", [_default(REG_NONE)])
    for text, account in accounts.items():
        if not isinstance(account, LsaAccount):
            raise InvalidHive(f"account {text!r}: {account!r} is not an LsaAccount")
        sid = _sid(text, "LSA account")
        key = Key(str(sid), [_default(REG_BINARY)])
        if account.rights:
            key.subkeys.append(Key("ActSysAc", [_default(REG_NONE, struct.pack("<I", account.system_access))]))
        if account.privileges:
            key.subkeys.append(Key("Privilgs", [_default(REG_NONE, _privilege_set(account.privileges))]))
        key.subkeys.append(Key("SecDesc", [_default(REG_NONE, account_sd)]))
        key.subkeys.append(Key("Sid", [_default(REG_NONE, sid.to_bytes())]))
        accounts_key.subkeys.append(key)
    dns = b"" if primary_domain_dns is None else _unicode_string(primary_domain_dns)
    policy = Key(
        "Policy",
        [_default(REG_SZ)],
        [
            accounts_key,
            Key("Domains", [_default(REG_NONE)]),
            Key("PolAcDmN", [_default(REG_NONE, _unicode_string(account_domain_name))]),
            Key("PolAcDmS", [_default(REG_NONE, machine.to_bytes())]),
            Key("PolDnDDN", [_default(REG_NONE, dns)]),
            Key("PolDnDmG", [_default(REG_NONE, bytes(16))]),
            Key("PolDnTrN", [_default(REG_NONE, dns)]),
            Key("PolMachineAccountS", [_default(REG_NONE, member_sid)]),
            Key("PolPrDmN", [_default(REG_NONE, _unicode_string(primary_domain_name))]),
            Key("PolPrDmS", [_default(REG_NONE, domain_sid)]),
            Key("PolRevision", [_default(REG_NONE, struct.pack("<HH", 0x12, 1))]),
            Key(
                "SecDesc",
                [
                    _default(
                        REG_NONE,
                        _sd(
                            "O:BAG:SYD:(D;;0x800;;;AN)(A;;0xf1fff;;;BA)(A;;0x20801;;;WD)(A;;0x801;;;AN)"
                            "(A;;0x1000;;;LS)(A;;0x1000;;;NS)(A;;0x1000;;;S-1-5-17)(A;;0x801;;;AC)"
                        ),
                    )
                ],
            ),
            Key("Secrets", [_default(REG_NONE)]),  # never any secret here
        ],
    )
    return Key(
        "ROOT",
        subkeys=[Key("Cache"), policy, Key("RXACT", [_default(REG_NONE, struct.pack("<III", 1, 0, 0))])],
    )


# ---------------------------------------------------------------------------------------
# SYSTEM and SOFTWARE


def _service_key(service: Service) -> Key:
    if not isinstance(service, Service):
        raise InvalidHive(f"{service!r} is not a Service")
    image = service.image_path
    if not image:
        if service.is_driver:
            image = rf"\SystemRoot\System32\drivers\{service.name}.sys"
        else:
            image = rf"%SystemRoot%\System32\svchost.exe -k {service.name}"
    values = [
        Value("DisplayName", REG_SZ, service.display_name or service.name),
        Value("ErrorControl", REG_DWORD, service.error_control),
        Value("ImagePath", REG_EXPAND_SZ, image),
    ]
    if service.object_name is not None:
        values.append(Value("ObjectName", REG_SZ, service.object_name))
    if service.required_privileges:
        unknown = sorted(set(service.required_privileges) - PRIVILEGES.keys())
        if unknown:
            raise InvalidHive(f"service {service.name!r}: unknown privileges {', '.join(unknown)}")
        values.append(Value("RequiredPrivileges", REG_MULTI_SZ, list(service.required_privileges)))
    if service.service_sid_type is not None:
        values.append(Value("ServiceSidType", REG_DWORD, service.service_sid_type))
    values += [Value("Start", REG_DWORD, service.start), Value("Type", REG_DWORD, service.type)]
    subkeys = [] if service.security is None else [Key("Security", [Value("Security", REG_BINARY, service.security)])]
    return Key(service.name, values, subkeys)


def _lanman_server(shares: Sequence[Share]) -> Key:
    """Services\\LanmanServer\\Shares: one REG_MULTI_SZ per share, its permissions under Security."""
    listed = []
    security = []
    for share in shares:
        if not isinstance(share, Share):
            raise InvalidHive(f"{share!r} is not a Share")
        listed.append(Value(share.name, REG_MULTI_SZ, ["CSCFlags=0", "MaxUses=4294967295", f"Path={share.path}",
                                                       "Permissions=0", f"Remark={share.remark}", "Type=0"]))
        security.append(Value(share.name, REG_BINARY, share.security))
    shares_key = Key("Shares", listed, [Key("Security", security)])
    # No ObjectName: the service's logon account is the scenario's to declare (a
    # Service), the key here only holds the shares.
    return Key("LanmanServer", [Value("ImagePath", REG_EXPAND_SZ, r"%SystemRoot%\system32\svchost.exe -k netsvcs"),
                                Value("Start", REG_DWORD, 2), Value("Type", REG_DWORD, 0x20)], [shares_key])


def _printer_key(printer: Printer) -> Key:
    if not isinstance(printer, Printer):
        raise InvalidHive(f"{printer!r} is not a Printer")
    return Key(printer.name, [
        Value("Name", REG_SZ, printer.name),
        Value("Port", REG_SZ, printer.port),
        Value("Printer Driver", REG_SZ, printer.driver),
        Value("Security", REG_BINARY, printer.security),
    ])


def system_hive(
    computer_name: str,
    services: Sequence[Service] = (),
    product_type: str = "WinNT",
    *,
    shares: Sequence[Share] = (),
    printers: Sequence[Printer] = (),
) -> Key:
    """The SYSTEM tree: Select (current control set 1), the computer name, the product
    type (WinNT, ServerNT or LanmanNT), ``services`` in ControlSet001, and where given
    the Server service's ``shares`` and the spooler's ``printers``."""
    if product_type not in PRODUCT_TYPES:
        raise InvalidHive(f"product type {product_type!r} is not one of {', '.join(PRODUCT_TYPES)}")
    if not isinstance(computer_name, str) or not computer_name:
        raise InvalidHive("the computer name must be non-empty text")
    control = Key(
        "Control",
        subkeys=[
            Key(
                "ComputerName",
                subkeys=[
                    # Windows' ComputerName key carries this odd default value too.
                    Key("ComputerName", [Value("", REG_SZ, "mnmsrvc"), Value("ComputerName", REG_SZ, computer_name)])
                ],
            ),
            Key("ProductOptions", [Value("ProductType", REG_SZ, product_type)]),
        ],
    )
    if printers:
        control.subkeys.append(Key("Print", subkeys=[Key("Printers", subkeys=[_printer_key(p) for p in printers])]))
    services_key = Key("Services", subkeys=[_service_key(s) for s in services])
    if shares:
        services_key.subkeys.append(_lanman_server(shares))
    select = Key(
        "Select",
        [
            Value("Current", REG_DWORD, 1),
            Value("Default", REG_DWORD, 1),
            Value("Failed", REG_DWORD, 0),
            Value("LastKnownGood", REG_DWORD, 1),
        ],
    )
    return Key("ROOT", subkeys=[Key("ControlSet001", subkeys=[control, services_key]), select])


_SYSTEM_PROFILES = (
    ("S-1-5-18", r"%systemroot%\system32\config\systemprofile", 12),
    ("S-1-5-19", r"%systemroot%\ServiceProfiles\LocalService", 0),
    ("S-1-5-20", r"%systemroot%\ServiceProfiles\NetworkService", 0),
)


def software_hive(
    profiles: Sequence[Profile] = (),
    *,
    system_profiles: bool = True,
    timestamp: datetime | int = DEFAULT_TIMESTAMP,
    tasks: Sequence[ScheduledTask] = (),
    appids: Sequence[AppId] = (),
    ole: Mapping[str, bytes] | None = None,
) -> Key:
    """The SOFTWARE tree down to Microsoft\\Windows NT\\CurrentVersion\\ProfileList:
    ``profiles`` and, unless ``system_profiles`` is false, SYSTEM, LOCAL SERVICE and
    NETWORK SERVICE as Windows lists them (a profile given for one of them replaces it).
    ``tasks`` go to the TaskCache, ``appids`` to Classes\\AppID, ``ole`` (value name ->
    descriptor: DefaultLaunchPermission, ...) to Microsoft\\Ole."""
    stamp = filetime(timestamp)
    profile_list = Key(
        "ProfileList",
        [
            Value("Default", REG_EXPAND_SZ, r"%SystemDrive%\Users\Default"),
            Value("ProfilesDirectory", REG_EXPAND_SZ, r"%SystemDrive%\Users"),
            Value("ProgramData", REG_EXPAND_SZ, r"%SystemDrive%\ProgramData"),
            Value("Public", REG_EXPAND_SZ, r"%SystemDrive%\Users\Public"),
        ],
    )
    given = {_sid(p.sid, "profile") for p in profiles if isinstance(p, Profile)}
    seen: set[SID] = set()
    if system_profiles:
        for text, path, flags in _SYSTEM_PROFILES:
            sid = SID.from_string(text)
            if sid in given:  # the caller's entry for SYSTEM (and friends) wins
                continue
            values = [Value("Flags", REG_DWORD, flags), Value("ProfileImagePath", REG_EXPAND_SZ, path)]
            if text == "S-1-5-18":
                values += [Value("RefCount", REG_DWORD, 1), Value("Sid", REG_BINARY, sid.to_bytes())]
            values.append(Value("State", REG_DWORD, 0))
            profile_list.subkeys.append(Key(text, values))
    for profile in profiles:
        if not isinstance(profile, Profile):
            raise InvalidHive(f"{profile!r} is not a Profile")
        sid = _sid(profile.sid, "profile")
        if sid in seen:
            raise InvalidHive(f"two profiles for {sid}")
        seen.add(sid)
        profile_list.subkeys.append(
            Key(
                str(sid),
                [
                    Value("Flags", REG_DWORD, profile.flags),
                    Value("FullProfile", REG_DWORD, 1),
                    Value("LocalProfileLoadTimeHigh", REG_DWORD, stamp >> 32),
                    Value("LocalProfileLoadTimeLow", REG_DWORD, stamp & 0xFFFFFFFF),
                    Value("ProfileImagePath", REG_EXPAND_SZ, profile.path),
                    Value("Sid", REG_BINARY, sid.to_bytes()),
                    Value("State", REG_DWORD, profile.state),
                ],
            )
        )
    root = Key("ROOT")
    current = root.ensure(r"Microsoft\Windows NT\CurrentVersion")
    current.subkeys.append(profile_list)
    for task in tasks:
        if not isinstance(task, ScheduledTask):
            raise InvalidHive(f"{task!r} is not a ScheduledTask")
        cache = current.ensure(r"Schedule\TaskCache")
        cache.ensure("Tasks").subkeys.append(Key(task.guid, [
            Value("Path", REG_SZ, task.path),
            Value("Author", REG_SZ, task.author),
            Value("SD", REG_BINARY, task.security),
        ]))
        cache.ensure("Tree\\" + task.path.strip("\\")).values.extend(
            [Value("Id", REG_SZ, task.guid), Value("Index", REG_DWORD, 3)])
    for appid in appids:
        if not isinstance(appid, AppId):
            raise InvalidHive(f"{appid!r} is not an AppId")
        values = [Value("", REG_SZ, appid.name)]
        values += [Value(name, REG_BINARY, sd) for name, sd in (("AccessPermission", appid.access),
                                                                  ("LaunchPermission", appid.launch)) if sd is not None]
        root.ensure(r"Classes\AppID").subkeys.append(Key(appid.guid, values))
    if ole:
        root.ensure(r"Microsoft\Ole").values.extend(Value(name, REG_BINARY, sd) for name, sd in ole.items())
    return root


def user_hive(keys: Mapping[str, Sequence[Value]]) -> Key:
    """A user hive (NTUSER.DAT or UsrClass.dat): ``keys`` maps each key path to its
    values; keys on the way are made. Descriptors are set on the tree's keys by the caller."""
    root = Key("ROOT")
    for path, values in keys.items():
        root.ensure(path).values.extend(values)
    return root
