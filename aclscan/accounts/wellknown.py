"""Well-known SIDs: who they are without asking any machine or domain.

Three kinds of knowledge live here:

* the **fixed catalogue** (:data:`CATALOGUE`): SIDs that mean the same on every
  Windows system (``S-1-1-0`` Everyone, ``S-1-5-18`` NT AUTHORITY\\SYSTEM,
  ``S-1-5-32-544`` BUILTIN\\Administrators, the integrity labels ...), with the
  ``DOMAIN\\Name`` that Windows' ``LookupAccountSid`` gives them in English;
* the **well-known RIDs** (:data:`WELL_KNOWN_RIDS`): relative identifiers every
  domain (or every machine) issues with the same meaning (500 Administrator,
  512 Domain Admins, 513 Domain Users, or "None" on a machine ...);
* the **derived SIDs**: identities Windows computes from a name, so that a SID can
  be recognised once the name is known -- NT SERVICE (``S-1-5-80``), IIS APPPOOL
  (``S-1-5-82``), Hyper-V virtual machines (``S-1-5-83-1``), capabilities
  (``S-1-15-3``) and AppContainer packages (``S-1-15-2``).

:func:`category` sorts any SID into one of the :data:`CATEGORIES`;
:func:`is_never_orphan` says whether a SID can ever be a deleted account; and
:class:`WellKnownSource` answers the account-source interface
(:class:`aclscan.accounts.base.AccountSource`) for all of the above.

Sources (read for facts; no text or code copied):

* [MS-DTYP] 2.4.2.4 "Well-Known SID Structures" (learn.microsoft.com/openspecs,
  81d92bba-d22b-4a8c-908a-554ab29148ab): the table of fixed SIDs and
  domain-relative RIDs.
* learn.microsoft.com "Well-known SIDs" (win32/secauthz/well-known-sids) and
  "Security identifiers" (windows-server/identity/ad-ds/manage/
  understand-security-identifiers): the aliases up to S-1-5-32-582, S-1-5-64-x,
  S-1-5-80-0, S-1-5-83-0, S-1-5-113/114, the label RIDs.
* winnt.h (through its many public copies): DOMAIN_ALIAS_RID_DEVICE_OWNERS (583),
  ..._USER_MODE_HARDWARE_OPERATORS (584), ..._OPENSSH_USERS (585).
* Names as Windows prints them: ``whoami /groups`` output published in many
  write-ups, and the WELL_KNOWN_SID_TYPE comments of JeremyKuhne/WInterop (built
  with CreateWellKnownSid + LookupAccountSid on Windows 10). Where a name could not
  be checked against Windows' own output it is the specification's label; such
  rows say so in a comment.
* Derivations: ntdoc (m417z/ntdoc, RtlDeriveCapabilitySidsFromName) for capability
  SIDs; J. Forshaw, "Windows Security Internals", ch. 4, for package SIDs; each
  derivation is checked in tests/accounts/test_wellknown.py against SIDs that
  Windows itself printed.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

from aclscan.accounts.base import ALIAS, GROUP, SERVICE, USER, WELL_KNOWN, Account, Authority
from aclscan.errors import MalformedData, MalformedSID
from aclscan.sd.sid import SID

__all__ = [
    "APPPOOL",
    "APP_CONTAINER",
    "CAPABILITY",
    "CATALOGUE",
    "CATEGORIES",
    "DOMAIN_RELATIVE",
    "FIXED",
    "INBOX_SERVICES",
    "LABEL",
    "LEGACY_CAPABILITIES",
    "LOGON",
    "PLACEHOLDER",
    "SERVICE_CATEGORY",
    "SOURCE_NAME",
    "UNKNOWN",
    "VIRTUAL_MACHINE",
    "WELL_KNOWN_RIDS",
    "WELL_KNOWN_SIDS",
    "WellKnownRid",
    "WellKnownSid",
    "WellKnownSource",
    "app_container_sid",
    "apppool_sid",
    "capability_group_sid",
    "capability_sid",
    "category",
    "domain_rid_name",
    "is_never_orphan",
    "service_sid",
    "virtual_machine_id",
    "virtual_machine_sid",
]

SOURCE_NAME = "well-known"

# --------------------------------------------------------------------------- categories

FIXED = "fixed"  # in the catalogue: the same on every system
PLACEHOLDER = "placeholder"  # replaced when an ACE is inherited or checked (CREATOR OWNER, OWNER RIGHTS, SELF)
CAPABILITY = "capability"  # S-1-15-3-..., and capability group SIDs S-1-5-32-<8 hash RIDs>
APP_CONTAINER = "app_container"  # S-1-15-2-...
LOGON = "logon"  # S-1-5-5-X-Y: one logon session, transient
LABEL = "label"  # S-1-16-*: mandatory integrity labels
SERVICE_CATEGORY = "service"  # NT SERVICE S-1-5-80-<5>, NT TASK S-1-5-87-<5>, DWM-n / UMFD-n virtual accounts
APPPOOL = "apppool"  # IIS APPPOOL S-1-5-82-<5>
VIRTUAL_MACHINE = "virtual_machine"  # NT VIRTUAL MACHINE S-1-5-83-1-<4>
DOMAIN_RELATIVE = "domain_relative"  # S-1-5-21-a-b-c-RID: an account of some machine or domain
UNKNOWN = "unknown"

CATEGORIES = (FIXED, PLACEHOLDER, CAPABILITY, APP_CONTAINER, LOGON, LABEL, SERVICE_CATEGORY, APPPOOL,
              VIRTUAL_MACHINE, DOMAIN_RELATIVE, UNKNOWN)

# Categories whose SIDs no account list ever issues, so no account list can miss them.
_NEVER_ORPHAN = frozenset(CATEGORIES) - {DOMAIN_RELATIVE, UNKNOWN}


# --------------------------------------------------------------------------- the catalogue

@dataclass(frozen=True)
class WellKnownSid:
    """One fixed SID with the name Windows gives it (``domain`` may be empty)."""

    sid: str
    domain: str
    name: str

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}\\{self.name}" if self.domain else self.name


_NT = "NT AUTHORITY"
_BUILTIN = "BUILTIN"
_LABEL = "Mandatory Label"
_APP = "APPLICATION PACKAGE AUTHORITY"

CATALOGUE: tuple[WellKnownSid, ...] = tuple(WellKnownSid(*row) for row in (
    # Universal SIDs (null, world, local, creator authorities).
    ("S-1-0-0", "", "NULL SID"),
    ("S-1-1-0", "", "Everyone"),
    ("S-1-2-0", "", "LOCAL"),
    ("S-1-2-1", "", "CONSOLE LOGON"),
    ("S-1-3-0", "", "CREATOR OWNER"),
    ("S-1-3-1", "", "CREATOR GROUP"),
    ("S-1-3-2", "", "CREATOR OWNER SERVER"),
    ("S-1-3-3", "", "CREATOR GROUP SERVER"),
    ("S-1-3-4", "", "OWNER RIGHTS"),
    # The authorities and domains themselves (they name no account; MS-DTYP lists them).
    ("S-1-5", "", "NT Pseudo Domain"),
    ("S-1-5-32", "", "BUILTIN"),
    ("S-1-5-80", "", "NT SERVICE"),
    # NT AUTHORITY well-known groups and accounts.
    ("S-1-5-1", _NT, "DIALUP"),
    ("S-1-5-2", _NT, "NETWORK"),
    ("S-1-5-3", _NT, "BATCH"),
    ("S-1-5-4", _NT, "INTERACTIVE"),
    ("S-1-5-6", _NT, "SERVICE"),
    ("S-1-5-7", _NT, "ANONYMOUS LOGON"),
    ("S-1-5-8", _NT, "PROXY"),
    ("S-1-5-9", _NT, "ENTERPRISE DOMAIN CONTROLLERS"),
    ("S-1-5-10", _NT, "SELF"),
    ("S-1-5-11", _NT, "Authenticated Users"),
    ("S-1-5-12", _NT, "RESTRICTED"),
    ("S-1-5-13", _NT, "TERMINAL SERVER USER"),
    ("S-1-5-14", _NT, "REMOTE INTERACTIVE LOGON"),
    ("S-1-5-15", _NT, "This Organization"),
    ("S-1-5-17", _NT, "IUSR"),
    ("S-1-5-18", _NT, "SYSTEM"),
    ("S-1-5-19", _NT, "LOCAL SERVICE"),
    ("S-1-5-20", _NT, "NETWORK SERVICE"),
    ("S-1-5-22", _NT, "ENTERPRISE READ-ONLY DOMAIN CONTROLLERS BETA"),
    ("S-1-5-33", _NT, "WRITE RESTRICTED"),
    ("S-1-5-64-10", _NT, "NTLM Authentication"),
    ("S-1-5-64-14", _NT, "SChannel Authentication"),
    ("S-1-5-64-21", _NT, "Digest Authentication"),
    ("S-1-5-64-36", _NT, "Cloud Account Authentication"),
    ("S-1-5-65-1", _NT, "This Organization Certificate"),
    ("S-1-5-84-0-0-0-0-0", _NT, "USER MODE DRIVERS"),
    ("S-1-5-113", _NT, "Local account"),
    ("S-1-5-114", _NT, "Local account and member of Administrators group"),
    ("S-1-5-1000", _NT, "Other Organization"),
    # MS-DTYP's COMPOUNDED_AUTHENTICATION and CLAIMS_VALID: fixed SIDs under a null
    # "domain" 0-0-0. Names are the specification's labels (not checked against Windows).
    ("S-1-5-21-0-0-0-496", "", "Compounded Authentication"),
    ("S-1-5-21-0-0-0-497", "", "Claims Valid"),
    # BUILTIN aliases.
    ("S-1-5-32-544", _BUILTIN, "Administrators"),
    ("S-1-5-32-545", _BUILTIN, "Users"),
    ("S-1-5-32-546", _BUILTIN, "Guests"),
    ("S-1-5-32-547", _BUILTIN, "Power Users"),
    ("S-1-5-32-548", _BUILTIN, "Account Operators"),
    ("S-1-5-32-549", _BUILTIN, "Server Operators"),
    ("S-1-5-32-550", _BUILTIN, "Print Operators"),
    ("S-1-5-32-551", _BUILTIN, "Backup Operators"),
    ("S-1-5-32-552", _BUILTIN, "Replicator"),
    ("S-1-5-32-554", _BUILTIN, "Pre-Windows 2000 Compatible Access"),
    ("S-1-5-32-555", _BUILTIN, "Remote Desktop Users"),
    ("S-1-5-32-556", _BUILTIN, "Network Configuration Operators"),
    ("S-1-5-32-557", _BUILTIN, "Incoming Forest Trust Builders"),
    ("S-1-5-32-558", _BUILTIN, "Performance Monitor Users"),
    ("S-1-5-32-559", _BUILTIN, "Performance Log Users"),
    ("S-1-5-32-560", _BUILTIN, "Windows Authorization Access Group"),
    ("S-1-5-32-561", _BUILTIN, "Terminal Server License Servers"),
    ("S-1-5-32-562", _BUILTIN, "Distributed COM Users"),
    ("S-1-5-32-568", _BUILTIN, "IIS_IUSRS"),
    ("S-1-5-32-569", _BUILTIN, "Cryptographic Operators"),
    ("S-1-5-32-573", _BUILTIN, "Event Log Readers"),
    ("S-1-5-32-574", _BUILTIN, "Certificate Service DCOM Access"),
    ("S-1-5-32-575", _BUILTIN, "RDS Remote Access Servers"),
    ("S-1-5-32-576", _BUILTIN, "RDS Endpoint Servers"),
    ("S-1-5-32-577", _BUILTIN, "RDS Management Servers"),
    ("S-1-5-32-578", _BUILTIN, "Hyper-V Administrators"),
    ("S-1-5-32-579", _BUILTIN, "Access Control Assistance Operators"),
    ("S-1-5-32-580", _BUILTIN, "Remote Management Users"),
    ("S-1-5-32-581", _BUILTIN, "System Managed Accounts Group"),
    ("S-1-5-32-582", _BUILTIN, "Storage Replica Administrators"),
    ("S-1-5-32-583", _BUILTIN, "Device Owners"),
    ("S-1-5-32-584", _BUILTIN, "User Mode Hardware Operators"),
    ("S-1-5-32-585", _BUILTIN, "OpenSSH Users"),
    # Service, virtual machine and window-manager groups.
    ("S-1-5-80-0", "NT SERVICE", "ALL SERVICES"),
    ("S-1-5-83-0", "NT VIRTUAL MACHINE", "Virtual Machines"),
    ("S-1-5-90-0", "Window Manager", "Window Manager Group"),
    # Application packages and the legacy (Windows 8) capabilities.
    ("S-1-15-2-1", _APP, "ALL APPLICATION PACKAGES"),
    ("S-1-15-2-2", _APP, "ALL RESTRICTED APPLICATION PACKAGES"),
    ("S-1-15-3-1", _APP, "Your Internet connection"),
    ("S-1-15-3-2", _APP, "Your Internet connection, including incoming connections from the Internet"),
    ("S-1-15-3-3", _APP, "Your home or work networks"),
    ("S-1-15-3-4", _APP, "Your pictures library"),
    ("S-1-15-3-5", _APP, "Your videos library"),
    ("S-1-15-3-6", _APP, "Your music library"),
    ("S-1-15-3-7", _APP, "Your documents library"),
    ("S-1-15-3-8", _APP, "Your Windows credentials"),
    ("S-1-15-3-9", _APP, "Software and hardware certificates or a smart card"),
    ("S-1-15-3-10", _APP, "Removable storage"),
    # 11, 12 and 4096 as J. Forshaw's "Windows Security Internals" (table 4-4) lists
    # them, not checked against Windows' own output.
    ("S-1-15-3-11", _APP, "Your appointments"),
    ("S-1-15-3-12", _APP, "Your contacts"),
    ("S-1-15-3-4096", _APP, "Internet Explorer"),
    # Mandatory integrity labels.
    ("S-1-16-0", _LABEL, "Untrusted Mandatory Level"),
    ("S-1-16-4096", _LABEL, "Low Mandatory Level"),
    ("S-1-16-8192", _LABEL, "Medium Mandatory Level"),
    ("S-1-16-8448", _LABEL, "Medium Plus Mandatory Level"),
    ("S-1-16-12288", _LABEL, "High Mandatory Level"),
    ("S-1-16-16384", _LABEL, "System Mandatory Level"),
    ("S-1-16-20480", _LABEL, "Protected Process Mandatory Level"),
    ("S-1-16-28672", _LABEL, "Secure Process Mandatory Level"),
    # Authentication authority (S-1-18). 1 and 2 as Windows prints them; 3-6 are the
    # specification's descriptions shortened (not checked against Windows).
    ("S-1-18-1", "", "Authentication authority asserted identity"),
    ("S-1-18-2", "", "Service asserted identity"),
    ("S-1-18-3", "", "Fresh public key identity"),
    ("S-1-18-4", "", "Key trust identity"),
    ("S-1-18-5", "", "Key property multi-factor authentication"),
    ("S-1-18-6", "", "Key property attestation"),
))

WELL_KNOWN_SIDS: dict[str, WellKnownSid] = {entry.sid: entry for entry in CATALOGUE}


# --------------------------------------------------------------------------- well-known RIDs

@dataclass(frozen=True)
class WellKnownRid:
    """A RID with the same meaning in every domain (and, where ``machine_name`` is
    set, on every machine's SAM)."""

    rid: int
    name: str  # the name Active Directory gives it
    kind: str  # USER, GROUP or ALIAS (a domain local group)
    machine_name: str | None = None  # the name in a workstation's or member server's SAM, if machines have it
    domain: bool = True  # a domain has it
    forest_root: bool = False  # only the forest root domain has it

    @property
    def on_machine(self) -> bool:
        return self.machine_name is not None


WELL_KNOWN_RIDS: dict[int, WellKnownRid] = {r.rid: r for r in (
    WellKnownRid(498, "Enterprise Read-only Domain Controllers", GROUP, forest_root=True),
    WellKnownRid(500, "Administrator", USER, "Administrator"),
    WellKnownRid(501, "Guest", USER, "Guest"),
    WellKnownRid(502, "krbtgt", USER),
    WellKnownRid(503, "DefaultAccount", USER, "DefaultAccount"),  # domains too, since Windows Server 2016
    WellKnownRid(504, "WDAGUtilityAccount", USER, "WDAGUtilityAccount", domain=False),
    WellKnownRid(512, "Domain Admins", GROUP),
    WellKnownRid(513, "Domain Users", GROUP, "None"),
    WellKnownRid(514, "Domain Guests", GROUP),
    WellKnownRid(515, "Domain Computers", GROUP),
    WellKnownRid(516, "Domain Controllers", GROUP),
    WellKnownRid(517, "Cert Publishers", ALIAS),
    WellKnownRid(518, "Schema Admins", GROUP, forest_root=True),
    WellKnownRid(519, "Enterprise Admins", GROUP, forest_root=True),
    WellKnownRid(520, "Group Policy Creator Owners", GROUP),
    WellKnownRid(521, "Read-only Domain Controllers", GROUP),
    WellKnownRid(522, "Cloneable Domain Controllers", GROUP),
    WellKnownRid(525, "Protected Users", GROUP),
    WellKnownRid(526, "Key Admins", GROUP),
    WellKnownRid(527, "Enterprise Key Admins", GROUP, forest_root=True),
    WellKnownRid(553, "RAS and IAS Servers", ALIAS),
    WellKnownRid(571, "Allowed RODC Password Replication Group", ALIAS),
    WellKnownRid(572, "Denied RODC Password Replication Group", ALIAS),
)}


def domain_rid_name(rid: int, *, machine: bool = False) -> str | None:
    """The name RID ``rid`` has in every domain (``machine=True``: on every
    machine's SAM), or None where it is not a well-known RID there."""
    entry = WELL_KNOWN_RIDS.get(rid)
    if entry is None:
        return None
    if machine:
        return entry.machine_name
    return entry.name if entry.domain else None


# --------------------------------------------------------------------------- derivations

def _per_unit(text: str, convert) -> str:
    """Case-map ``text`` one UTF-16 unit at a time, as RtlUpcaseUnicodeString and
    RtlDowncaseUnicodeString do: a character whose mapping would change its length
    (German sharp s, ligatures) and characters outside the BMP stay as they are."""
    out = []
    for ch in text:
        mapped = convert(ch)
        out.append(mapped if len(mapped) == 1 and ord(ch) <= 0xFFFF else ch)
    return "".join(out)


def _name_digest(name: str, what: str, algorithm: str, case: str) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"a {what} name must be str, not {type(name).__name__}")
    if not name:
        raise MalformedData(f"a {what} name must not be empty")
    text = _per_unit(name, str.upper if case == "upper" else str.lower)
    return hashlib.new(algorithm, text.encode("utf-16-le", "surrogatepass")).digest()


def _rids(digest: bytes, count: int) -> str:
    return "-".join(str(v) for v in struct.unpack_from(f"<{count}I", digest))


def service_sid(name: str) -> str:
    """The NT SERVICE\\<name> SID: S-1-5-80 and the SHA-1 of the upper-cased
    service name (UTF-16LE) as five little-endian 32-bit RIDs."""
    return "S-1-5-80-" + _rids(_name_digest(name, "service", "sha1", "upper"), 5)


def apppool_sid(name: str) -> str:
    """The IIS APPPOOL\\<name> SID: S-1-5-82 and the SHA-1 of the *lower*-cased
    application pool name (UTF-16LE) as five little-endian RIDs.

    IIS hashes the lower-cased name, not the upper-cased one as the service
    controller does: 'DefaultAppPool' gives the S-1-5-82-3006700770-... that
    ``whoami`` prints for IIS APPPOOL\\DefaultAppPool only that way."""
    return "S-1-5-82-" + _rids(_name_digest(name, "application pool", "sha1", "lower"), 5)


# Windows 8's capabilities, which keep their short SIDs S-1-15-3-<n> when derived
# from their names (names compare without regard to case).
LEGACY_CAPABILITIES: dict[str, int] = {
    "internetClient": 1,
    "internetClientServer": 2,
    "privateNetworkClientServer": 3,
    "picturesLibrary": 4,
    "videosLibrary": 5,
    "musicLibrary": 6,
    "documentsLibrary": 7,
    "enterpriseAuthentication": 8,
    "sharedUserCertificates": 9,
    "removableStorage": 10,
    "appointments": 11,
    "contacts": 12,
}
_LEGACY_BY_FOLDED = {name.casefold(): rid for name, rid in LEGACY_CAPABILITIES.items()}


def capability_sid(name: str) -> str:
    """The capability SID DeriveCapabilitySidsFromName gives ``name``: S-1-15-3-<n>
    for the twelve legacy capabilities, otherwise S-1-15-3-1024 and the SHA-256 of
    the upper-cased name (UTF-16LE) as eight little-endian RIDs.

    (Windows 11 22H2 derives names starting 'isolatedWin32-' under
    S-1-15-3-65536 instead; that form is not produced here.)"""
    legacy = _LEGACY_BY_FOLDED.get(name.casefold()) if isinstance(name, str) else None
    if legacy is not None:
        return f"S-1-15-3-{legacy}"
    return "S-1-15-3-1024-" + _rids(_name_digest(name, "capability", "sha256", "upper"), 8)


def capability_group_sid(name: str) -> str:
    """The capability *group* SID DeriveCapabilitySidsFromName gives ``name``:
    S-1-5-32 and the same eight SHA-256 RIDs (for legacy capabilities too)."""
    return "S-1-5-32-" + _rids(_name_digest(name, "capability", "sha256", "upper"), 8)


def app_container_sid(name: str) -> str:
    """The AppContainer (package) SID of a package family name: S-1-15-2 and the
    first seven little-endian RIDs of the SHA-256 of the lower-cased name."""
    return "S-1-15-2-" + _rids(_name_digest(name, "package", "sha256", "lower"), 7)


def virtual_machine_sid(vm_id: uuid.UUID | str) -> str:
    """The NT VIRTUAL MACHINE\\<VM id> SID: S-1-5-83-1 and the VM's GUID, in its
    Windows byte order, as four little-endian RIDs."""
    try:
        guid = vm_id if isinstance(vm_id, uuid.UUID) else uuid.UUID(str(vm_id))
    except ValueError:
        raise MalformedData(f"not a virtual machine GUID: {vm_id!r}") from None
    return "S-1-5-83-1-" + _rids(guid.bytes_le, 4)


def virtual_machine_id(sid: str) -> uuid.UUID | None:
    """The GUID of the virtual machine a S-1-5-83-1-a-b-c-d SID stands for, or None."""
    parsed = _parse(sid)
    if parsed is None or parsed.authority != 5:
        return None
    subs = parsed.sub_authorities
    if len(subs) != 6 or subs[:2] != (83, 1):
        return None
    return uuid.UUID(bytes_le=struct.pack("<4I", *subs[2:]))


# --------------------------------------------------------------------------- categories

def _parse(sid: str | SID) -> SID | None:
    if isinstance(sid, SID):
        return sid
    try:
        return SID.from_string(sid)
    except MalformedSID:
        return None


def category(sid: str | SID) -> str:
    """Which of :data:`CATEGORIES` ``sid`` belongs to.

    The families come first, so catalogue entries inside them keep their family:
    S-1-3-0 is a ``placeholder``, S-1-15-2-1 an ``app_container``, S-1-16-12288 a
    ``label``. Raises :class:`MalformedSID` for text that is not a SID.
    """
    if isinstance(sid, SID):
        return _category(str(sid))
    return _category(sid)


@lru_cache(maxsize=1 << 12)
def _category(text: str) -> str:
    sid = SID.from_string(text)
    authority, subs = sid.authority, sid.sub_authorities
    n = len(subs)
    if authority == 3 and n == 1 and subs[0] <= 4:
        return PLACEHOLDER  # CREATOR OWNER, CREATOR GROUP, ... SERVER, OWNER RIGHTS
    if authority == 16 and n == 1:
        return LABEL
    if authority == 15 and n >= 2 and subs[0] == 2:
        return APP_CONTAINER
    if authority == 15 and n >= 2 and subs[0] == 3:
        return CAPABILITY
    if authority == 5:
        if subs == (10,):
            return PLACEHOLDER  # PRINCIPAL SELF: replaced by the object's own SID
        if n == 9 and subs[0] == 32:
            return CAPABILITY  # capability group SID
        if n == 3 and subs[0] == 5:
            return LOGON
    if str(sid) in WELL_KNOWN_SIDS:
        return FIXED
    if authority == 5:
        if n == 6 and subs[0] in (80, 87):
            return SERVICE_CATEGORY  # NT SERVICE\<service>, NT TASK\<task>
        if n == 6 and subs[0] == 82:
            return APPPOOL
        if n == 6 and subs[:2] == (83, 1):
            return VIRTUAL_MACHINE
        if n == 3 and subs[:2] in ((90, 0), (96, 0)):
            return SERVICE_CATEGORY  # Window Manager\DWM-n, Font Driver Host\UMFD-n
        if sid.is_domain_relative:
            return DOMAIN_RELATIVE
    return UNKNOWN


def is_never_orphan(sid: str | SID) -> bool:
    """True where no account list issues the SID, so none can lack it: every
    category but ``domain_relative`` and ``unknown`` (placeholders, capabilities,
    AppContainers, logon SIDs, labels, service/apppool/VM identities and the fixed
    catalogue). Malformed text is not a SID and gives False."""
    if _parse(sid) is None:
        return False
    return category(sid) in _NEVER_ORPHAN


# --------------------------------------------------------------------------- the source

# Services on every Windows since Vista whose SIDs default ACLs and rights name:
# TrustedInstaller owns the system files, WdiServiceHost holds SeSystemProfilePrivilege.
INBOX_SERVICES = ("TrustedInstaller", "WdiServiceHost")


@lru_cache(maxsize=1)
def _fixed_accounts() -> dict[str, Account]:
    return {entry.sid: Account(entry.sid, entry.name, WELL_KNOWN, SOURCE_NAME, entry.domain or None,
                               extra={"category": _category(entry.sid)})
            for entry in CATALOGUE}


class WellKnownSource:
    """The well-known catalogue as an AccountSource, plus the identities derived
    from the names it is given.

    ``service_names`` are the services of the machine (its SYSTEM hive) and
    ``apppool_names`` its IIS application pools: their NT SERVICE and IIS APPPOOL
    SIDs resolve, other SIDs of those forms do not (a removed service's SID stays
    unresolved). The :data:`INBOX_SERVICES` are always included unless
    ``inbox_services`` says otherwise. ``capability_names`` and
    ``virtual_machines`` (VM GUIDs) do the same for named capabilities and Hyper-V
    VMs. Session virtual accounts (Window Manager\\DWM-n, Font Driver
    Host\\UMFD-n) and logon SIDs are named from the SID itself.
    """

    name = SOURCE_NAME

    def __init__(self, service_names: Iterable[str] = (), apppool_names: Iterable[str] = (), *,
                 capability_names: Iterable[str] = (), virtual_machines: Iterable[uuid.UUID | str] = (),
                 inbox_services: Iterable[str] = INBOX_SERVICES):
        self._fixed = _fixed_accounts()
        self._derived: dict[str, Account] = {}
        for service in list(service_names) + list(inbox_services):
            self._add(service_sid(service), service, "NT SERVICE", SERVICE, {"service_name": service})
        for pool in apppool_names:
            self._add(apppool_sid(pool), pool, "IIS APPPOOL", SERVICE, {"apppool_name": pool})
        for capability in capability_names:
            self._add(capability_sid(capability), capability, "NAMED CAPABILITIES", WELL_KNOWN,
                      {"capability_name": capability})
        for vm in virtual_machines:
            sid = virtual_machine_sid(vm)
            guid = str(virtual_machine_id(sid)).upper()
            self._add(sid, guid, "NT VIRTUAL MACHINE", SERVICE, {"vm_id": guid})

    def _add(self, sid: str, name: str, domain: str, kind: str, extra: dict) -> None:
        if sid in self._fixed or sid in self._derived:
            return  # the first spelling wins (the hive's, before the inbox list)
        self._derived[sid] = Account(sid, name, kind, SOURCE_NAME, domain,
                                     extra={"category": _category(sid), **extra})

    def authorities(self) -> list[Authority]:
        return []  # well-known SIDs have no issuing machine or domain

    def lookup(self, sid: str) -> Account | None:
        parsed = _parse(sid)
        if parsed is None:
            return None
        text = str(parsed)
        account = self._fixed.get(text) or self._derived.get(text)
        if account is not None:
            return account
        return _from_pattern(parsed, text)

    def accounts(self) -> Iterator[Account]:
        yield from self._fixed.values()
        yield from self._derived.values()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self._fixed)} fixed, {len(self._derived)} derived)"


def _from_pattern(sid: SID, text: str) -> Account | None:
    """Accounts whose name Windows builds from the SID itself."""
    if sid.authority != 5 or len(sid.sub_authorities) != 3:
        return None
    first, second, third = sid.sub_authorities
    if first == 5:
        return Account(text, f"LogonSessionId_{second}_{third}", WELL_KNOWN, SOURCE_NAME, _NT,
                       extra={"category": LOGON})
    if (first, second) == (90, 0):
        return Account(text, f"DWM-{third}", SERVICE, SOURCE_NAME, "Window Manager",
                       extra={"category": SERVICE_CATEGORY, "session": third})
    if (first, second) == (96, 0):
        return Account(text, f"UMFD-{third}", SERVICE, SOURCE_NAME, "Font Driver Host",
                       extra={"category": SERVICE_CATEGORY, "session": third})
    return None
