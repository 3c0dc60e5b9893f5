"""aclscan.accounts.volume: the account source over one volume's hives, from records
written out by hand."""

from __future__ import annotations

from aclscan.accounts.base import ALIAS, DOMAIN, GROUP, MACHINE, USER, AccountSource
from aclscan.accounts.volume import VolumeHiveSource
from aclscan.hives import LsaAccount, Profile, SamAlias, SamGroup, SamInfo, SamUser, SecurityInfo, Service, SystemInfo
from aclscan.hives.software import SoftwareInfo

M = "S-1-5-21-1111111111-2222222222-3333333333"
OLD = "S-1-5-21-7-8-9"
D = "S-1-5-21-444444444-555555555-666666666"


def sam(machine: str = M, problems: tuple[str, ...] = ()) -> SamInfo:
    return SamInfo(
        machine_sid=machine,
        computer_name=None,
        users=(SamUser(500, "Administrator", disabled=True), SamUser(1000, "svc-av", "AV service")),
        groups=(SamGroup(513, "None", "Ordinary users", (500, 1000)),),
        aliases=(SamAlias(1001, "AV Admins", members=(f"{OLD}-1000",)),),
        builtin_aliases=(SamAlias(544, "Administrators", members=(f"{machine}-500", f"{D}-512")),),
        problems=problems,
    )


def security(machine: str = M, domain: str | None = D, name: str = "PC1") -> SecurityInfo:
    return SecurityInfo(
        account_domain_name=name,
        account_domain_sid=machine,
        primary_domain_name="CORP" if domain else "WORKGROUP",
        primary_domain_sid=domain,
        accounts={f"{M}-1000": LsaAccount(frozenset({"SeServiceLogonRight"})),
                  "S-1-5-32-544": LsaAccount(frozenset(), frozenset({"SeBackupPrivilege"}))},
    )


def system(product: str = "WinNT", name: str = "PC1", logon: str = ".\\svc-av") -> SystemInfo:
    return SystemInfo(name, 1, product, (Service("AVScan", logon), Service("Tcpip", None, type=1)))


def test_a_member_workstation():
    source = VolumeHiveSource(sam(), security(), system(), SoftwareInfo((Profile(f"{M}-1000", "C:\\Users\\svc-av"),)))
    assert isinstance(source, AccountSource) and source.name == "volume hives"
    machine, domain = source.authorities()
    assert (machine.sid, machine.name, machine.kind, machine.complete) == (M, "PC1", MACHINE, True)
    assert (domain.sid, domain.name, domain.kind, domain.complete) == (D, "CORP", DOMAIN, False)
    kinds = {a.sid: a.kind for a in source.accounts()}
    assert kinds == {f"{M}-500": USER, f"{M}-1000": USER, f"{M}-513": GROUP, f"{M}-1001": ALIAS,
                     "S-1-5-32-544": ALIAS}
    svc = source.lookup(f"{M}-1000")
    assert (svc.qualified_name, svc.rights, svc.extra["full_name"]) == ("PC1\\svc-av", ("SeServiceLogonRight",),
                                                                         "AV service")
    assert source.lookup(f"{M}-500").disabled
    assert source.lookup(f"{M}-513").members == (f"{M}-500", f"{M}-1000")
    assert source.lookup(f"{M}-1001").members == (f"{OLD}-1000",)
    admins = source.lookup("S-1-5-32-544")
    assert admins.qualified_name == "BUILTIN\\Administrators" and admins.rights == ("SeBackupPrivilege",)
    assert source.lookup(f"{M}-999") is None
    assert [s.name for s in source.services()] == ["AVScan", "Tcpip"]
    assert set(source.lsa_accounts()) == {f"{M}-1000", "S-1-5-32-544"}
    assert [p.sid for p in source.profiles()] == [f"{M}-1000"]
    assert source.inconsistencies() == []


def test_a_domain_controller_s_sam_is_not_the_domain_s_account_list():
    source = VolumeHiveSource(sam(D), security(D, D, "DC01"), system("LanmanNT", "DC01", "LocalSystem"), None)
    assert source.is_domain_controller
    [authority] = source.authorities()
    assert (authority.sid, authority.name, authority.kind, authority.complete) == (D, "CORP", MACHINE, False)
    assert source.lookup(f"{D}-500").qualified_name == "CORP\\Administrator"
    assert source.inconsistencies() == []
    without_system = VolumeHiveSource(sam(D), security(D, D, "DC01"), None, None)
    assert without_system.is_domain_controller and not without_system.authorities()[0].complete


def test_only_security():
    source = VolumeHiveSource(None, security(domain=None), None, None)
    [authority] = source.authorities()
    assert (authority.sid, authority.name, authority.complete) == (M, "PC1", False)  # no SAM: not complete
    assert authority.source == "volume hives SECURITY PolAcDmS"
    assert source.accounts() == [] and source.services() == [] and source.profiles() == []


def test_nothing():
    source = VolumeHiveSource(None, None, None, None, name="empty")
    assert source.authorities() == [] and source.accounts() == [] and source.inconsistencies() == []
    assert source.machine_sid is None and source.computer_name is None


def test_inconsistencies():
    source = VolumeHiveSource(sam(problems=("Account\\Users\\000003E9 skipped: no V value",)),
                              security(machine=OLD, name="OTHER\nNAME"), system(logon=".\\gone"), None)
    found = source.inconsistencies()
    assert found[0].startswith(f"SECURITY PolAcDmS {OLD} is not the SAM's machine SID {M}")
    assert "SYSTEM ComputerName 'PC1' is not SECURITY's account domain name 'OTHER\\nNAME'" in found[1]
    assert found[2] == "service AVScan logs on as .\\gone, which the SAM does not have"
    assert found[3] == "SAM: Account\\Users\\000003E9 skipped: no V value"
    assert all("\n" not in line for line in found)
    not_a_dc = VolumeHiveSource(sam(), security(M, M), system("ServerNT"), None)
    assert any("only on a domain controller" in line and "ServerNT" in line for line in not_a_dc.inconsistencies())
    domain_logon = VolumeHiveSource(sam(), security(), system(logon="PC1\\svc-av"), None)
    assert domain_logon.inconsistencies() == []
