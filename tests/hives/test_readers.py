"""The four readers on hives written by aclscan.samples from a description: what goes in
comes back out (names in every encoding Windows uses, flags, members, rights, services,
profiles), for examples and for generated descriptions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aclscan.hives import (
    ACCOUNT_RIGHTS,
    PRIVILEGES,
    SamAlias,
    SamGroup,
    SamInfo,
    SamUser,
    LsaAccount,
    Profile,
    SecurityInfo,
    Service,
    SoftwareInfo,
    SystemInfo,
    read_sam,
    read_security,
    read_software,
    read_system,
)
from aclscan.hives.security import rights_from_bits
from aclscan.samples import hives as samples
from aclscan.samples.regf import hive_bytes

MACHINE = "S-1-5-21-1111111111-2222222222-3333333333"
DOMAIN = "S-1-5-21-444444444-555555555-666666666"


def written(kind: str, tree, **kwargs) -> bytes:
    return hive_bytes(tree, name=samples.HIVE_NAMES[kind], **kwargs)


def test_tables_agree_with_the_sample_writer():
    assert ACCOUNT_RIGHTS == samples.ACCOUNT_RIGHTS
    assert {name: luid for luid, name in PRIVILEGES.items()} == samples.PRIVILEGES
    assert rights_from_bits(0xC1) == {"SeInteractiveLogonRight", "SeDenyInteractiveLogonRight",
                                      "SeDenyNetworkLogonRight"}
    assert rights_from_bits(0x28) == frozenset()  # reserved and proxy bits have no right name


@pytest.mark.parametrize("revision", [2, 3])
def test_sam_round_trip(revision):
    users = [
        *samples.default_users(administrator_enabled=True),
        samples.SamUser(1000, "alice", full_name="Alice Example", comment="first user"),
        samples.SamUser(1001, "José Müller", full_name="José Müller"),  # a Latin-1 key name
        samples.SamUser(1002, "Ωmega", disabled=True),  # a UTF-16 key name
    ]
    aliases = [samples.SamAlias(1003, "Opérateurs", [f"{MACHINE}-1001", f"{DOMAIN}-1105"], comment="ops")]
    builtin = samples.default_builtin_aliases(MACHINE, users, administrators=[f"{DOMAIN}-512"])
    sam = read_sam(written("SAM", samples.sam_hive(MACHINE, users, aliases, builtin, revision=revision)))
    assert sam.machine_sid == MACHINE and sam.computer_name is None
    assert [(u.rid, u.name, u.full_name, u.comment, u.disabled) for u in sam.users] == [
        (u.rid, u.name, u.full_name, u.comment, u.disabled) for u in users]
    assert all(u.primary_group == 513 for u in sam.users)
    assert sam.aliases == (SamAlias(1003, "Opérateurs", "ops", (f"{MACHINE}-1001", f"{DOMAIN}-1105")),)
    assert [(a.rid, a.name, list(a.members)) for a in sam.builtin_aliases] == [
        (a.rid, a.name, list(a.members)) for a in sorted(builtin, key=lambda a: a.rid)]
    assert sam.groups == (SamGroup(513, "None", "Ordinary users", (500, 501, 503, 504, 1000, 1001, 1002)),)
    assert sam.next_rid == 1004
    assert sam.problems == ()


def test_security_round_trip():
    accounts = {
        "S-1-5-80-0": samples.LsaAccount({"SeServiceLogonRight"}),
        f"{MACHINE}-1000": samples.LsaAccount(set(samples.ACCOUNT_RIGHTS), set(samples.PRIVILEGES)),
        f"{DOMAIN}-512": samples.LsaAccount((), {"SeBackupPrivilege", "SeRestorePrivilege"}),
    }
    tree = samples.security_hive("PC1", MACHINE, "CORP", DOMAIN, accounts, primary_domain_dns="corp.example")
    security = read_security(written("SECURITY", tree))
    assert (security.account_domain_name, security.account_domain_sid) == ("PC1", MACHINE)
    assert (security.primary_domain_name, security.primary_domain_sid) == ("CORP", DOMAIN)
    assert security.primary_domain_dns == "corp.example"
    assert set(security.accounts) == set(accounts)
    for sid, given_account in accounts.items():
        got = security.accounts[sid]
        assert (got.rights, got.privileges, got.system_access) == (
            given_account.rights, given_account.privileges, given_account.system_access)
    workgroup = read_security(written("SECURITY", samples.security_hive("PC2", MACHINE)))
    assert (workgroup.primary_domain_name, workgroup.primary_domain_sid) == ("WORKGROUP", None)
    assert set(workgroup.accounts) == set(samples.default_lsa_accounts(MACHINE))


@pytest.mark.parametrize("product", ["WinNT", "ServerNT", "LanmanNT"])
def test_system_round_trip(product):
    services = [
        samples.Service("AVScan", ".\\alice", '"C:\\AV\\avscan.exe" -service', start=2, type=0x10),
        samples.Service("Dhcp", "NT Authority\\LocalService", start=2, type=0x20, service_sid_type=1),
        samples.Service("Tcpip", image_path="System32\\drivers\\tcpip.sys", start=0, type=1),
        samples.Service("Sql Agent", "CORP\\svc-sql", "C:\\sql\\agent.exe", start=3, display_name="SQL Agent"),
    ]
    system = read_system(written("SYSTEM", samples.system_hive("SRV-01", services, product)))
    assert (system.computer_name, system.current_control_set, system.product_type) == ("SRV-01", 1, product)
    assert system.is_domain_controller == (product == "LanmanNT")
    assert system.services == (
        Service("AVScan", ".\\alice", '"C:\\AV\\avscan.exe" -service', 2, 0x10, "AVScan", None),
        Service("Dhcp", "NT Authority\\LocalService", "%SystemRoot%\\System32\\svchost.exe -k Dhcp", 2, 0x20,
                "Dhcp", 1),
        Service("Sql Agent", "CORP\\svc-sql", "C:\\sql\\agent.exe", 3, 0x10, "SQL Agent", None),
        Service("Tcpip", None, "System32\\drivers\\tcpip.sys", 0, 1, "Tcpip", None),
    )
    assert system.service("tcpip").is_driver and not system.service("AVScan").is_driver
    assert system.sysprep_generalization_state is None and system.clone_tag is None


def test_software_round_trip():
    profiles = [samples.Profile(f"{MACHINE}-1000", "C:\\Users\\alice", state=0x100),
                samples.Profile(f"{DOMAIN}-1105", "C:\\Users\\bob.CORP")]
    software = read_software(written("SOFTWARE", samples.software_hive(profiles)))
    assert [p.sid for p in software.profiles] == ["S-1-5-18", "S-1-5-19", "S-1-5-20", f"{MACHINE}-1000",
                                                  f"{DOMAIN}-1105"]
    alice = software.profile(f"{MACHINE}-1000")
    assert (alice.path, alice.state, alice.folder_name, alice.backup) == ("C:\\Users\\alice", 0x100, "alice", False)
    assert software.profiles_directory == "%SystemDrive%\\Users"
    assert software.image_state is None and software.problems == ()


def test_profile_backup_keys_and_setup_state():
    from aclscan.samples.regf import REG_SZ, Key, Value

    tree = samples.software_hive([samples.Profile(f"{MACHINE}-1000", "C:\\Users\\alice")])
    profile_list = tree.find("Microsoft\\Windows NT\\CurrentVersion\\ProfileList")
    backup = Key(f"{MACHINE}-1000.bak", [Value("ProfileImagePath", 2, "C:\\Users\\alice.OLD")])
    profile_list.subkeys += [backup, Key("not-a-sid", [Value("ProfileImagePath", 2, "C:\\x")])]
    tree.ensure("Microsoft\\Windows\\CurrentVersion\\Setup\\State").values.append(
        Value("ImageState", REG_SZ, "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"))
    software = read_software(written("SOFTWARE", tree))
    assert software.image_state == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    copies = [p for p in software.profiles if p.sid == f"{MACHINE}-1000"]
    assert [(p.path, p.backup) for p in copies] == [("C:\\Users\\alice", False), ("C:\\Users\\alice.OLD", True)]
    assert software.profile(f"{MACHINE}-1000").path == "C:\\Users\\alice"
    assert any("not-a-sid" in p and "skipped" in p for p in software.problems)


def test_records_are_frozen():
    for cls in (SamUser, SamGroup, SamAlias, SamInfo, LsaAccount, SecurityInfo, Service, SystemInfo, Profile,
                SoftwareInfo):
        assert cls.__dataclass_params__.frozen, cls
    user = SamUser(1000, "x")
    with pytest.raises(AttributeError):
        user.name = "y"  # type: ignore[misc]


# --- generated descriptions ---------------------------------------------------------------

names = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\\\x7f"),
                min_size=1, max_size=20).filter(lambda s: s.strip() == s and s.strip())
rid_users = st.dictionaries(st.integers(1000, 100_000), st.tuples(names, names, st.booleans()), max_size=8)


@settings(max_examples=25, deadline=None)
@given(rid_users, st.sets(st.sampled_from(sorted(samples.ACCOUNT_RIGHTS)), max_size=5),
       st.sets(st.sampled_from(sorted(samples.PRIVILEGES)), max_size=8))
def test_generated_sam_and_security_round_trip(users, rights, privileges):
    folded = {}
    for rid, (name, _full, _disabled) in users.items():
        folded.setdefault(samples.upcase(name), rid)
    users = {rid: users[rid] for rid in folded.values()}  # the SAM keeps names unique
    given_users = [samples.SamUser(rid, name, full_name=full, disabled=disabled)
                   for rid, (name, full, disabled) in sorted(users.items())]
    sam = read_sam(written("SAM", samples.sam_hive(MACHINE, given_users, builtin_aliases=[])))
    assert [(u.rid, u.name, u.full_name, u.disabled) for u in sam.users] == [
        (u.rid, u.name, u.full_name, u.disabled) for u in given_users]
    assert sam.problems == ()
    accounts = {f"{MACHINE}-{rid}": samples.LsaAccount(rights, privileges) for rid in users}
    security = read_security(written("SECURITY", samples.security_hive("PC", MACHINE, accounts=accounts)))
    assert {sid: (a.rights, a.privileges) for sid, a in security.accounts.items()} == {
        sid: (frozenset(rights), frozenset(privileges)) for sid in accounts}
