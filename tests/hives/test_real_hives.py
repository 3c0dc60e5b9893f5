"""The hive readers on hives Windows wrote (../shared/data/windows/hives): every fact its
README states, and a few values read a second time with hivex."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from aclscan.accounts.base import AccountSource
from aclscan.accounts.volume import VolumeHiveSource
from aclscan.hives import open_hive, read_sam, read_security, read_system
from aclscan.sd.sid import SID
from tests.samples.readers import hivex_values, require_hivex

pytestmark = pytest.mark.shared

STUDENT = "S-1-5-21-4070822719-3404542230-2541167049"
INTERNAL = "S-1-5-21-226059406-2984137831-1201299043"
CHITON = "S-1-5-21-3656677704-2377210397-1510584988"
REGIPY_SAM = "S-1-5-21-1760460187-1592185332-161725925"
REGIPY_SECURITY = "S-1-5-21-1786693902-1815088602-2777321892"


def users(sam) -> dict[int, str]:
    return {u.rid: u.name for u in sam.users}


def hivexsh_ls(path, key: str) -> list[str]:
    """The subkey names hivexsh lists (it reads its commands from stdin)."""
    script = f"cd {key}\nls\n".encode("utf-8")
    result = subprocess.run(["hivexsh", str(path)], input=script, capture_output=True, check=True)
    return result.stdout.decode("utf-8").splitlines()


# --- studentpc8 (Windows 7, member of INTERNAL) ------------------------------------------


def test_studentpc8_sam(real_hive):
    sam = read_sam(real_hive("studentpc8-SAM"))
    assert sam.machine_sid == STUDENT
    assert users(sam) == {500: "Administrator", 501: "Guest", 1001: "gold_administrator"}
    assert [(a.rid, a.name, a.members) for a in sam.aliases] == [(1000, "WinRMRemoteWMIUsers__", ())]
    administrators = sam.builtin_alias(544)
    assert administrators.name == "Administrators"
    assert f"{INTERNAL}-512" in administrators.members
    assert administrators.members == (f"{STUDENT}-500", f"{STUDENT}-1001", f"{INTERNAL}-512")
    assert sam.builtin_alias(545).members == ("S-1-5-4", "S-1-5-11", f"{INTERNAL}-513")
    assert [(g.rid, g.name, g.member_rids) for g in sam.groups] == [(513, "None", (500, 501, 1001))]
    assert sam.user(500).disabled and sam.user(501).disabled and not sam.user(1001).disabled
    assert sam.user(500).comment == "Built-in account for administering the computer/domain"
    assert len(sam.builtin_aliases) == 17
    assert sam.next_rid == 1002
    assert sam.problems == () and not sam.status.dirty


def test_studentpc8_security(real_hive):
    security = read_security(real_hive("studentpc8-SECURITY"))
    assert security.account_domain_name == "STUDENT-PC8"
    assert security.account_domain_sid == STUDENT
    assert security.primary_domain_name == "INTERNAL"
    assert security.primary_domain_sid == INTERNAL
    assert security.primary_domain_dns == "internal.greendale.edu"
    assert security.is_domain_member
    assert len(security.accounts) == 13
    service = security.accounts["S-1-5-80-0"]
    assert service.system_access == 0x10 and service.rights == {"SeServiceLogonRight"} and not service.privileges
    guest = security.accounts[f"{STUDENT}-501"]
    assert guest.system_access == 0xC1
    assert guest.rights == {"SeInteractiveLogonRight", "SeDenyInteractiveLogonRight", "SeDenyNetworkLogonRight"}
    administrators = security.accounts["S-1-5-32-544"]
    assert {"SeBackupPrivilege", "SeRestorePrivilege", "SeDebugPrivilege"} <= administrators.privileges
    assert administrators.rights == {"SeInteractiveLogonRight", "SeNetworkLogonRight", "SeBatchLogonRight",
                                     "SeRemoteInteractiveLogonRight"}
    assert security.accounts["S-1-1-0"].names == {"SeNetworkLogonRight", "SeChangeNotifyPrivilege"}
    assert all(not a.unknown_privileges for a in security.accounts.values())
    assert security.problems == ()


def test_studentpc8_volume_source(real_hive):
    source = VolumeHiveSource(read_sam(real_hive("studentpc8-SAM")), read_security(real_hive("studentpc8-SECURITY")),
                              None, None)
    assert isinstance(source, AccountSource)
    machine, domain = source.authorities()
    assert (machine.sid, machine.name, machine.kind, machine.complete) == (STUDENT, "STUDENT-PC8", "machine", True)
    assert (domain.sid, domain.name, domain.kind, domain.complete) == (INTERNAL, "INTERNAL", "domain", False)
    assert source.lookup(f"{STUDENT}-1001").qualified_name == "STUDENT-PC8\\gold_administrator"
    assert source.lookup(f"{STUDENT}-513").kind == "group"
    builtin = source.lookup("S-1-5-32-544")
    assert builtin.qualified_name == "BUILTIN\\Administrators" and f"{INTERNAL}-512" in builtin.members
    assert "SeBackupPrivilege" in builtin.rights
    assert "SeDenyNetworkLogonRight" in source.lookup(f"{STUDENT}-501").rights
    assert source.inconsistencies() == []


# --- chitonsrv (Spanish Windows 10, workgroup) -------------------------------------------


def test_chitonsrv_sam(real_hive):
    sam = read_sam(real_hive("chitonsrv-SAM"))
    assert sam.machine_sid == CHITON
    assert users(sam) == {
        500: "Administrador",
        501: "Invitado",
        503: "DefaultAccount",
        1000: "pepe.contento.secret",
        1001: "maria.feliz.secret",
        1004: "SuperSecretAdmin",
    }
    assert sam.user(500).comment == "Cuenta integrada para la administración del equipo o dominio"
    assert sam.builtin_alias(544).name == "Administradores"
    assert sam.builtin_alias(556).name == "Operadores de configuración de red"
    assert sam.groups[0].name == "Ninguno"
    # Names\<name> agrees with every V / C value: the Latin-1 key names decode right.
    assert sam.problems == ()


def test_chitonsrv_key_names_are_latin1(real_hive):
    path = real_hive("chitonsrv-SAM")
    names = open_hive(path).key("SAM\\Domains\\Builtin\\Aliases\\Names")
    got = [k.name for k in names.subkeys()]
    assert "Operadores de configuración de red" in got and "Operadores criptográficos" in got
    raw = path.read_bytes()
    assert b"Operadores criptogr\xe1ficos" in raw  # the key name: one Latin-1 byte per character
    if shutil.which("hivexsh"):
        assert sorted(got) == sorted(hivexsh_ls(path, "\\SAM\\Domains\\Builtin\\Aliases\\Names"))


def test_chitonsrv_security(real_hive):
    security = read_security(real_hive("chitonsrv-SECURITY"))
    assert (security.account_domain_name, security.account_domain_sid) == ("CHITONSRV", CHITON)
    assert (security.primary_domain_name, security.primary_domain_sid) == ("WORKGROUP", None)
    assert not security.is_domain_member
    assert len(security.accounts) == 11
    assert security.accounts["S-1-5-80-0"].rights == {"SeServiceLogonRight"}
    assert "SeDelegateSessionUserImpersonatePrivilege" in security.accounts["S-1-5-32-544"].privileges


# --- regipy's hives ----------------------------------------------------------------------


def test_regipy_sam(real_hive):
    sam = read_sam(real_hive("regipy-SAM"))
    assert sam.machine_sid == REGIPY_SAM
    assert users(sam) == {500: "Administrator", 501: "Guest", 1000: "Preston"}
    assert sam.builtin_alias(544).members == (f"{REGIPY_SAM}-500", f"{REGIPY_SAM}-1000")


def test_regipy_security_is_dirty_and_still_read(real_hive):
    path = real_hive("regipy-SECURITY")
    raw = path.read_bytes()
    assert raw[4:8] != raw[8:12]  # PrimarySequenceNumber != SecondarySequenceNumber
    security = read_security(path)
    assert security.status.dirty and security.status.logs_applied == ()
    assert any("dirty" in p for p in security.problems)
    assert security.account_domain_sid == REGIPY_SECURITY
    assert security.account_domain_name == "DESKTOP-M964FJN"
    assert (security.primary_domain_name, security.primary_domain_sid) == ("WORKGROUP", None)
    assert len(security.accounts) == 13
    assert security.accounts[f"{REGIPY_SECURITY}-501"].system_access == 0xC1


def test_regipy_system(real_hive):
    path = real_hive("regipy-SYSTEM_WIN_10_1709")
    system = read_system(path)
    assert system.status.dirty
    assert system.computer_name == "DESKTOP-2KGM189"
    assert system.current_control_set == 1
    assert system.product_type == "WinNT" and not system.is_domain_controller
    assert len(system.services) == 737
    with_logon = [s for s in system.services if s.object_name]
    assert len(with_logon) == 272
    logons = {s.object_name.casefold() for s in with_logon}
    assert {"localsystem", "nt authority\\localservice", "nt authority\\networkservice"} <= logons
    assert any(name.startswith("\\driver\\") for name in logons)
    spooler = system.service("Spooler")
    assert (spooler.object_name, spooler.start, spooler.type) == ("LocalSystem", 2, 0x110)
    assert spooler.image_path == "%SystemRoot%\\System32\\spoolsv.exe"
    assert system.sysprep_generalization_state == 7
    assert system.clone_tag and "2019" in system.clone_tag


def test_sam_and_security_of_different_machines_disagree(real_hive):
    """regipy's SAM and SECURITY come from different machines: a finding."""
    source = VolumeHiveSource(read_sam(real_hive("regipy-SAM")), read_security(real_hive("regipy-SECURITY")),
                              read_system(real_hive("regipy-SYSTEM_WIN_10_1709")), None)
    found = source.inconsistencies()
    assert any(REGIPY_SECURITY in line and REGIPY_SAM in line and "PolAcDmS" in line for line in found)
    assert any("ComputerName" in line for line in found)
    assert any(line.startswith("SECURITY: dirty hive") for line in found)
    assert [a.sid for a in source.authorities()] == [REGIPY_SAM]  # the SAM's SID is the machine's
    assert all("\n" not in line for line in found)


# --- hivex as a second opinion -----------------------------------------------------------


def test_hivex_agrees(real_hive):
    require_hivex()
    security = real_hive("studentpc8-SECURITY")
    [(_, kind, data)] = hivex_values(security, "\\Policy\\PolAcDmS")
    assert kind == 0 and str(SID.from_bytes(data)) == read_security(security).account_domain_sid
    sam = real_hive("studentpc8-SAM")
    for user in read_sam(sam).users:
        [(name, kind, data)] = hivex_values(sam, f"\\SAM\\Domains\\Account\\Users\\Names\\{user.name}")
        assert (name, kind, data) == ("", user.rid, b"")  # the RID is the value's type
    system_path = real_hive("regipy-SYSTEM_WIN_10_1709")
    system = read_system(system_path)
    names = hivexsh_ls(system_path, "\\ControlSet001\\Services")
    assert sorted(names) == sorted(s.name for s in system.services)
    computer = dict((n, d) for n, _k, d in hivex_values(
        system_path, "\\ControlSet001\\Control\\ComputerName\\ComputerName"))
    assert computer["ComputerName"] == system.computer_name
    for service in ("Spooler", "Dnscache", "WudfPf"):
        values = {n: d for n, _k, d in hivex_values(system_path, f"\\ControlSet001\\Services\\{service}")}
        assert values.get("ObjectName") == system.service(service).object_name
        assert values.get("Start") == system.service(service).start


@pytest.mark.parametrize("machine, sid", [("studentpc8", STUDENT), ("chitonsrv", CHITON), ("regipy", REGIPY_SAM)])
def test_machine_sid_is_the_v_entry_and_the_last_24_bytes(real_hive, machine, sid):
    """Domains\\Account V: entry 1 is the domain SID, and it ends the value."""
    v = open_hive(real_hive(f"{machine}-SAM")).key("SAM\\Domains\\Account").value("V").raw
    assert str(SID.from_bytes(v[-24:])) == sid == read_sam(real_hive(f"{machine}-SAM")).machine_sid
