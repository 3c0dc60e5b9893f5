"""The well-known catalogue, the SIDs Windows derives from names, categories, and
WellKnownSource. Every derivation is checked against a SID that Windows itself
printed (the source of each value is named next to it)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aclscan.accounts import wellknown
from aclscan.accounts.base import SERVICE, WELL_KNOWN, AccountSource
from aclscan.accounts.wellknown import (
    APP_CONTAINER, APPPOOL, CAPABILITY, CATALOGUE, CATEGORIES, DOMAIN_RELATIVE, FIXED, LABEL, LOGON, PLACEHOLDER,
    SERVICE_CATEGORY, UNKNOWN, VIRTUAL_MACHINE, WELL_KNOWN_RIDS, WELL_KNOWN_SIDS, WellKnownSource, app_container_sid,
    apppool_sid, capability_group_sid, capability_sid, category, domain_rid_name, is_never_orphan, service_sid,
    virtual_machine_id, virtual_machine_sid,
)
from aclscan.errors import MalformedData, MalformedSID
from aclscan.sd import sddl
from aclscan.sd.sid import SID

# --- derivations, each against a published value -------------------------------------

SERVICES = [
    # The brief's check value; Windows Server docs: system files are owned by it.
    ("TrustedInstaller", "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"),
    # MS-DTYP / Outurnate/win-sid NT_SERVICE_WDISERVICEHOST; `rpcclient lsaenumsid` output.
    ("WdiServiceHost", "S-1-5-80-3139157870-2983391045-3678747466-658725712-1809340420"),
    # Outurnate/win-sid NT_SERVICE_DPS (from the MS-DTYP table).
    ("DPS", "S-1-5-80-2970612574-78537857-698502321-558674196-1451644582"),
    # `whoami /groups` of a SQL Server process: "NT SERVICE\MSSQLSERVER".
    ("MSSQLSERVER", "S-1-5-80-3880718306-3832830129-1677859214-2598158968-1052248003"),
    # LookupAccountSid output quoted in a public write-up: "NT SERVICE\WinDefend".
    ("WinDefend", "S-1-5-80-1913148863-3492339771-4165695881-2087618961-4109116736"),
]


@pytest.mark.parametrize(("name", "sid"), SERVICES)
def test_service_sid_matches_windows(name, sid):
    assert service_sid(name) == sid
    assert service_sid(name.lower()) == sid == service_sid(name.upper())  # the name is upper-cased first


APPPOOLS = [
    # `whoami /all` as IIS APPPOOL\DefaultAppPool (the brief's check value, many write-ups).
    ("DefaultAppPool", "S-1-5-82-3006700770-424185619-1745488364-794895919-4004696415"),
    # `whoami /groups` of a worker process: "IIS APPPOOL\.NET v4.5".
    (".NET v4.5", "S-1-5-82-271721585-897601226-2024613209-625570482-296978595"),
]


@pytest.mark.parametrize(("name", "sid"), APPPOOLS)
def test_apppool_sid_matches_windows(name, sid):
    assert apppool_sid(name) == sid
    assert apppool_sid(name.upper()) == sid


def test_apppool_hashes_the_lowercase_name_unlike_services():
    # The same name gives different RIDs under the service rule (upper case).
    assert apppool_sid("DefaultAppPool")[len("S-1-5-82"):] != service_sid("DefaultAppPool")[len("S-1-5-80"):]


CAPABILITIES = [
    # Windows' own WINCAP_* macros (a capability-rule macro file) and the SAM's ACL.
    ("userSigninSupport",
     "S-1-15-3-1024-1730716382-2949791265-2036182297-688374192-553408039-4133924312-4201181712-267922143"),
    ("windowsHelloCredentialAccess",
     "S-1-15-3-1024-1902118268-936929782-3474333872-803346623-1872623265-3899080591-2872335817-3963487957"),
    ("packageManagement",
     "S-1-15-3-1024-734518492-402359323-2580938124-1419864735-4212787651-2727913556-228323224-564805089"),
    ("inputInjection",
     "S-1-15-3-1024-918685303-2392273179-1242551144-2277013827-3453391213-358261840-2217007564-611397587"),
    # Legacy capabilities keep their short SIDs (Chromium base/win sid tests; ntdoc).
    ("internetClient", "S-1-15-3-1"),
    ("InternetClient", "S-1-15-3-1"),
    ("contacts", "S-1-15-3-12"),
]


@pytest.mark.parametrize(("name", "sid"), CAPABILITIES)
def test_capability_sid_matches_windows(name, sid):
    assert capability_sid(name) == sid
    assert category(sid) == CAPABILITY


def test_capability_group_sid_shares_the_hash_rids():
    # Windows Security Internals, listing 4-20: registryRead's capability and group SIDs.
    assert capability_sid("registryRead") == (
        "S-1-15-3-1024-1065365936-1281604716-3511738428-1654721687-432734479-3232135806-4053264122-3456934681")
    group = capability_group_sid("registryRead")
    assert group.startswith("S-1-5-32-") and group.split("-")[4:] == capability_sid("registryRead").split("-")[5:]
    assert category(group) == CAPABILITY
    assert capability_group_sid("internetClient").count("-") == 11  # legacy names get a hash group SID too


def test_app_container_sid_matches_windows():
    # Microsoft's loopback-exemption docs: the legacy Edge package SID.
    assert app_container_sid("Microsoft.MicrosoftEdge_8wekyb3d8bbwe") == (
        "S-1-15-2-3624051433-2125758914-1423191267-1740899205-1073925389-3782572162-737981194")
    assert app_container_sid("MICROSOFT.MICROSOFTEDGE_8WEKYB3D8BBWE") == app_container_sid(
        "microsoft.microsoftedge_8wekyb3d8bbwe")


def test_virtual_machine_sid_matches_windows():
    # A Hyper-V-Worker-Admin event: VmId D9E0EB0A-... logged with this Security UserID.
    vm = "D9E0EB0A-5B37-508E-9173-67E9ADE83ACF"
    sid = "S-1-5-83-1-3655396106-1351506743-3915871121-3476744365"
    assert virtual_machine_sid(vm) == sid == virtual_machine_sid(uuid.UUID(vm.lower()))
    assert virtual_machine_id(sid) == uuid.UUID(vm)
    assert virtual_machine_id("S-1-5-83-0") is None and virtual_machine_id("not a sid") is None
    with pytest.raises(MalformedData):
        virtual_machine_sid("not-a-guid")


def test_derivation_errors():
    with pytest.raises(MalformedData):
        service_sid("")
    with pytest.raises(ValueError):  # MalformedData is a ValueError
        apppool_sid("")
    with pytest.raises(TypeError):
        service_sid(None)
    with pytest.raises(TypeError):
        capability_sid(42)


def test_case_mapping_is_per_utf16_unit():
    # RtlUpcaseUnicodeString maps unit by unit: the sharp s stays, it does not become "SS".
    assert service_sid("Straße") == service_sid("STRAßE") != service_sid("STRASSE")


@given(st.text(min_size=1, max_size=40))
def test_derived_sids_are_well_formed(name):
    for derive, count, cat in ((service_sid, 6, SERVICE_CATEGORY), (apppool_sid, 6, APPPOOL)):
        sid = derive(name)
        parsed = SID.from_string(sid)
        assert str(parsed) == sid and len(parsed.sub_authorities) == count
        assert category(sid) == cat and is_never_orphan(sid)


# --- the catalogue ---------------------------------------------------------------------

def test_no_two_catalogue_entries_share_a_sid():
    sids = [entry.sid for entry in CATALOGUE]
    assert len(sids) == len(set(sids))
    assert len(WELL_KNOWN_SIDS) == len(CATALOGUE)


def test_catalogue_sids_are_canonical():
    for entry in CATALOGUE:
        assert str(SID.from_string(entry.sid)) == entry.sid
        assert entry.name and "\\" not in entry.name and "\\" not in entry.domain


def test_every_sddl_alias_of_a_fixed_sid_is_in_the_catalogue():
    for alias, sid in sddl._FIXED_ALIASES.items():
        assert sid in WELL_KNOWN_SIDS, (alias, sid)


WINDOWS_NAMES = {
    # As whoami /groups, icacls or LookupAccountSid print them (English Windows).
    "S-1-1-0": "Everyone",
    "S-1-2-0": "LOCAL",
    "S-1-2-1": "CONSOLE LOGON",
    "S-1-3-0": "CREATOR OWNER",
    "S-1-3-1": "CREATOR GROUP",
    "S-1-3-4": "OWNER RIGHTS",
    "S-1-5-4": "NT AUTHORITY\\INTERACTIVE",
    "S-1-5-7": "NT AUTHORITY\\ANONYMOUS LOGON",
    "S-1-5-11": "NT AUTHORITY\\Authenticated Users",
    "S-1-5-15": "NT AUTHORITY\\This Organization",
    "S-1-5-18": "NT AUTHORITY\\SYSTEM",
    "S-1-5-19": "NT AUTHORITY\\LOCAL SERVICE",
    "S-1-5-20": "NT AUTHORITY\\NETWORK SERVICE",
    "S-1-5-64-36": "NT AUTHORITY\\Cloud Account Authentication",
    "S-1-5-113": "NT AUTHORITY\\Local account",
    "S-1-5-114": "NT AUTHORITY\\Local account and member of Administrators group",
    "S-1-5-32-544": "BUILTIN\\Administrators",
    "S-1-5-32-545": "BUILTIN\\Users",
    "S-1-5-32-554": "BUILTIN\\Pre-Windows 2000 Compatible Access",
    "S-1-5-32-559": "BUILTIN\\Performance Log Users",
    "S-1-5-32-568": "BUILTIN\\IIS_IUSRS",
    "S-1-5-80-0": "NT SERVICE\\ALL SERVICES",
    "S-1-5-83-0": "NT VIRTUAL MACHINE\\Virtual Machines",
    "S-1-5-84-0-0-0-0-0": "NT AUTHORITY\\USER MODE DRIVERS",
    "S-1-5-90-0": "Window Manager\\Window Manager Group",
    "S-1-15-2-1": "APPLICATION PACKAGE AUTHORITY\\ALL APPLICATION PACKAGES",
    "S-1-15-2-2": "APPLICATION PACKAGE AUTHORITY\\ALL RESTRICTED APPLICATION PACKAGES",
    "S-1-15-3-1": "APPLICATION PACKAGE AUTHORITY\\Your Internet connection",
    "S-1-15-3-8": "APPLICATION PACKAGE AUTHORITY\\Your Windows credentials",
    "S-1-16-8192": "Mandatory Label\\Medium Mandatory Level",
    "S-1-16-12288": "Mandatory Label\\High Mandatory Level",
    "S-1-16-16384": "Mandatory Label\\System Mandatory Level",
    "S-1-18-1": "Authentication authority asserted identity",
}


@pytest.mark.parametrize(("sid", "name"), sorted(WINDOWS_NAMES.items()))
def test_names_as_windows_prints_them(sid, name):
    assert WELL_KNOWN_SIDS[sid].qualified_name == name
    assert WellKnownSource().lookup(sid).qualified_name == name


# --- well-known RIDs -------------------------------------------------------------------

def test_well_known_rids():
    assert [r for r, e in WELL_KNOWN_RIDS.items() if e.on_machine] == [500, 501, 503, 504, 513]
    assert domain_rid_name(513) == "Domain Users" and domain_rid_name(513, machine=True) == "None"
    assert domain_rid_name(512) == "Domain Admins" and domain_rid_name(512, machine=True) is None
    assert domain_rid_name(502) == "krbtgt" and domain_rid_name(502, machine=True) is None
    assert domain_rid_name(504) is None and domain_rid_name(504, machine=True) == "WDAGUtilityAccount"
    assert domain_rid_name(1000) is None
    assert {r for r, e in WELL_KNOWN_RIDS.items() if e.forest_root} == {498, 518, 519, 527}
    for rid in (521, 522, 525, 526, 553, 571, 572):
        assert rid in WELL_KNOWN_RIDS
    # Every domain-relative SDDL alias names a RID of the table.
    for rid in list(sddl._DOMAIN_ALIASES.values()) + list(sddl._ROOT_DOMAIN_ALIASES.values()):
        assert rid in WELL_KNOWN_RIDS, rid


# --- categories ------------------------------------------------------------------------

M = "S-1-5-21-801928374-234567815-1434823459"

CATEGORY_CASES = {
    "S-1-1-0": FIXED,
    "S-1-5-18": FIXED,
    "S-1-5-32-544": FIXED,
    "S-1-5-80-0": FIXED,
    "S-1-5-83-0": FIXED,
    "S-1-5-90-0": FIXED,
    "S-1-5-21-0-0-0-496": FIXED,
    "S-1-3-0": PLACEHOLDER,
    "S-1-3-1": PLACEHOLDER,
    "S-1-3-2": PLACEHOLDER,
    "S-1-3-3": PLACEHOLDER,
    "S-1-3-4": PLACEHOLDER,
    "S-1-5-10": PLACEHOLDER,
    "S-1-15-3-1": CAPABILITY,
    "S-1-15-3-1024-1-2-3-4-5-6-7-8": CAPABILITY,
    "S-1-5-32-1-2-3-4-5-6-7-8": CAPABILITY,
    "S-1-15-2-1": APP_CONTAINER,
    "S-1-15-2-2": APP_CONTAINER,
    "S-1-15-2-1-2-3-4-5-6-7": APP_CONTAINER,
    "S-1-5-5-0-123456": LOGON,
    "S-1-16-0": LABEL,
    "S-1-16-12288": LABEL,
    "S-1-16-1234": LABEL,
    "S-1-5-80-1-2-3-4-5": SERVICE_CATEGORY,
    "S-1-5-87-1-2-3-4-5": SERVICE_CATEGORY,
    "S-1-5-90-0-1": SERVICE_CATEGORY,
    "S-1-5-96-0-0": SERVICE_CATEGORY,
    "S-1-5-82-1-2-3-4-5": APPPOOL,
    "S-1-5-83-1-1-2-3-4": VIRTUAL_MACHINE,
    f"{M}-500": DOMAIN_RELATIVE,
    f"{M}-1001": DOMAIN_RELATIVE,
    M: UNKNOWN,
    "S-1-5-32-999": UNKNOWN,
    "S-1-5-80-1-2": UNKNOWN,
    "S-1-3-9": UNKNOWN,
    "S-1-99-1": UNKNOWN,
}


@pytest.mark.parametrize(("sid", "expected"), sorted(CATEGORY_CASES.items()))
def test_category(sid, expected):
    assert category(sid) == expected
    assert category(SID.from_string(sid)) == expected
    assert is_never_orphan(sid) is (expected not in (DOMAIN_RELATIVE, UNKNOWN))


def test_every_category_is_exercised():
    assert set(CATEGORY_CASES.values()) == set(CATEGORIES)


def test_category_normalises_and_rejects_text():
    assert category(" s-1-5-5-0-1 ") == LOGON
    with pytest.raises(MalformedSID):
        category("Everyone")
    assert is_never_orphan("Everyone") is False


def test_design_principle_never_orphans():
    # DESIGN.md: placeholders, capability and AppContainer SIDs, logon SIDs, labels.
    for sid in ("S-1-3-0", "S-1-3-1", "S-1-3-4", "S-1-15-3-1", "S-1-15-2-1", "S-1-5-5-0-999", "S-1-16-8192",
                service_sid("AVScan")):
        assert is_never_orphan(sid), sid
    assert not is_never_orphan(f"{M}-1000")


# --- the source ------------------------------------------------------------------------

def test_source_implements_the_interface():
    source = WellKnownSource()
    assert isinstance(source, AccountSource)
    assert source.name == "well-known"
    assert list(source.authorities()) == []


def test_lookup_of_fixed_sids():
    source = WellKnownSource()
    system = source.lookup("S-1-5-18")
    assert (system.name, system.domain, system.kind, system.source) == ("SYSTEM", "NT AUTHORITY", WELL_KNOWN,
                                                                       "well-known")
    everyone = source.lookup("S-1-1-0")
    assert everyone.domain is None and everyone.qualified_name == "Everyone"
    for entry in CATALOGUE:
        assert source.lookup(entry.sid).qualified_name == entry.qualified_name
    assert source.lookup(f"{M}-500") is None
    assert source.lookup("garbage") is None


def test_lookup_of_a_derived_service_sid():
    avscan = service_sid("AVScan")
    source = WellKnownSource(service_names=["AVScan"])
    account = source.lookup(avscan)
    assert account is not None
    assert (account.name, account.domain, account.kind, account.qualified_name) == (
        "AVScan", "NT SERVICE", SERVICE, "NT SERVICE\\AVScan")
    assert account.extra["service_name"] == "AVScan"
    assert WellKnownSource(service_names=[]).lookup(avscan) is None  # a service this machine lacks
    assert source.lookup(service_sid("Removed")) is None


def test_inbox_services_resolve_without_a_system_hive():
    trusted = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
    assert WellKnownSource().lookup(trusted).qualified_name == "NT SERVICE\\TrustedInstaller"
    assert WellKnownSource(inbox_services=()).lookup(trusted) is None
    # The hive's spelling wins over the inbox list's.
    assert WellKnownSource(["trustedinstaller"]).lookup(trusted).name == "trustedinstaller"


def test_lookup_of_apppools_capabilities_and_vms():
    vm = "D9E0EB0A-5B37-508E-9173-67E9ADE83ACF"
    source = WellKnownSource(apppool_names=["DefaultAppPool"], capability_names=["registryRead", "internetClient"],
                             virtual_machines=[vm])
    pool = source.lookup("S-1-5-82-3006700770-424185619-1745488364-794895919-4004696415")
    assert pool.qualified_name == "IIS APPPOOL\\DefaultAppPool" and pool.kind == SERVICE
    assert source.lookup(capability_sid("registryRead")).qualified_name == "NAMED CAPABILITIES\\registryRead"
    # A legacy name maps onto the catalogue's entry, not a second account.
    assert source.lookup("S-1-15-3-1").qualified_name == "APPLICATION PACKAGE AUTHORITY\\Your Internet connection"
    assert source.lookup(virtual_machine_sid(vm)).qualified_name == f"NT VIRTUAL MACHINE\\{vm}"
    assert source.lookup("S-1-5-83-1-1-2-3-4") is None


def test_lookup_names_session_accounts_from_the_sid():
    source = WellKnownSource()
    assert source.lookup("S-1-5-90-0-2").qualified_name == "Window Manager\\DWM-2"
    assert source.lookup("S-1-5-96-0-1").qualified_name == "Font Driver Host\\UMFD-1"
    assert source.lookup("S-1-5-5-0-996").qualified_name == "NT AUTHORITY\\LogonSessionId_0_996"


def test_accounts_lists_the_catalogue_and_the_derived_once_each():
    source = WellKnownSource(["AVScan", "avscan", "TrustedInstaller"], ["DefaultAppPool"])
    accounts = list(source.accounts())
    sids = [a.sid for a in accounts]
    assert len(sids) == len(set(sids))
    assert set(WELL_KNOWN_SIDS) <= set(sids)
    derived = {a.qualified_name for a in accounts if a.sid not in WELL_KNOWN_SIDS}
    assert derived == {"NT SERVICE\\AVScan", "NT SERVICE\\TrustedInstaller", "NT SERVICE\\WdiServiceHost",
                       "IIS APPPOOL\\DefaultAppPool"}
    assert all(a.source == "well-known" for a in accounts)


def test_module_exports_exist():
    for name in wellknown.__all__:
        assert hasattr(wellknown, name), name
