"""aclscan.samples.hives: SAM, SECURITY, SYSTEM and SOFTWARE trees, written and read back
by regipy (its own SAM, SECURITY, SYSTEM and SOFTWARE plugins among others) and hivex, and
compared with the layout of real Windows SAM hives."""

from __future__ import annotations

import struct

import pytest
from regipy.plugins.sam.local_sid import LocalSidPlugin
from regipy.plugins.sam.samparse import SAMParsePlugin
from regipy.plugins.security.domain_sid import DomainSidPlugin
from regipy.plugins.software.profilelist import ProfileListPlugin
from regipy.plugins.system.computer_name import ComputerNamePlugin
from regipy.plugins.system.services import ServicesPlugin
from regipy.registry import RegistryHive

from aclscan.errors import Error
from aclscan.samples import hives
from aclscan.samples.hives import (
    ACCOUNT_RIGHTS,
    HIVE_NAMES,
    PRIVILEGES,
    LsaAccount,
    Profile,
    SamAlias,
    SamUser,
    Service,
    default_builtin_aliases,
    default_users,
    sam_hive,
    security_hive,
    service_sid,
    software_hive,
    system_hive,
)
from aclscan.samples.regf import InvalidHive, Value, hive_bytes, write_hive
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import to_sddl
from aclscan.sd.sid import SID
from tests.samples.readers import as_hivex, hivex_dump, hivex_values, regipy_dump, regipy_type, require_hivex
from tests.shared_data import expand

MACHINE = "S-1-5-21-1111111111-2222222222-3333333333"
DOMAIN = "S-1-5-21-444444444-555555555-666666666"
USERS = [
    *default_users(administrator_enabled=True),
    SamUser(1000, "alice", full_name="Alice Example", comment="first user"),
    SamUser(1001, "José Müller", full_name="José Müller"),  # Latin-1: a compressed key name
    SamUser(1002, "Ωmega", disabled=True),  # not Latin-1: a UTF-16 key name
]
ALIASES = [
    SamAlias(1003, "Helpdesk", [f"{MACHINE}-1000", f"{DOMAIN}-1105"], comment="local helpdesk"),
    SamAlias(1004, "Opérateurs", [f"{MACHINE}-1001"]),
]
BUILTIN = default_builtin_aliases(MACHINE, USERS, administrators=[f"{DOMAIN}-512"])
LSA = {
    "S-1-5-80-0": LsaAccount({"SeServiceLogonRight"}),
    f"{MACHINE}-1000": LsaAccount({"SeBatchLogonRight", "SeDenyNetworkLogonRight"}, {"SeBackupPrivilege"}),
    service_sid("AVScan"): LsaAccount({"SeServiceLogonRight"}, {"SeImpersonatePrivilege", "SeChangeNotifyPrivilege"}),
    "S-1-5-32-544": LsaAccount(
        {"SeInteractiveLogonRight", "SeRemoteInteractiveLogonRight"},
        {"SeDebugPrivilege", "SeDelegateSessionUserImpersonatePrivilege", "SeCreateTokenPrivilege"},
    ),
}
SERVICES = [
    Service("AVScan", ".\\alice", '"C:\\Program Files\\AVScan\\avscan.exe" -service', start=2, type=0x10),
    Service("Dhcp", "NT Authority\\LocalService", start=2, type=0x20, required_privileges=["SeChangeNotifyPrivilege"]),
    Service("Tcpip", image_path="System32\\drivers\\tcpip.sys", start=0, type=1),
    Service("SqlAgent", f"CORP\\svc-sql", "C:\\sql\\agent.exe", start=3),
]
PROFILES = [
    Profile(f"{MACHINE}-1000", r"C:\Users\alice"),
    Profile(f"{MACHINE}-1001", r"C:\Users\José"),
    Profile(f"{DOMAIN}-1105", r"C:\Users\bob.CORP"),
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The four hives, written once for the module."""
    out = tmp_path_factory.mktemp("hives")
    trees = {
        "SAM": sam_hive(MACHINE, USERS, ALIASES, BUILTIN),
        "SECURITY": security_hive("PC-01", MACHINE, "CORP", DOMAIN, LSA, primary_domain_dns="corp.example"),
        "SYSTEM": system_hive("PC-01", SERVICES, product_type="ServerNT"),
        "SOFTWARE": software_hive(PROFILES),
    }
    paths = {}
    for name, tree in trees.items():
        paths[name] = out / name
        write_hive(tree, paths[name], name=HIVE_NAMES[name])
    return paths


def plugin(cls, path):
    hive = RegistryHive(str(path))
    run = cls(hive, as_json=True)
    assert run.can_run(), f"regipy does not take {path.name} for a {cls.COMPATIBLE_HIVE} hive"
    run.run()
    return run.entries


def entries(data: bytes, count: int) -> list[bytes]:
    """The items of an (offset, length, extra) table at the start of ``data``."""
    base = 12 * count
    out = []
    for i in range(count):
        offset, length, _ = struct.unpack_from("<III", data, 12 * i)
        out.append(data[base + offset : base + offset + length])
    return out


def alias_members(c_value: bytes) -> tuple[int, str, str, list[str]]:
    """(RID, name, comment, member SIDs) of an alias C value."""
    (rid,) = struct.unpack_from("<I", c_value)
    _, name, comment, members = entries(c_value[4:], 4)
    (count,) = struct.unpack_from("<I", c_value, 4 + 3 * 12 + 8)
    sids, pos = [], 0
    for _ in range(count):
        sid = SID.from_bytes(members, pos)
        sids.append(str(sid))
        pos += sid.byte_length
    assert pos == len(members)
    return rid, name.decode("utf-16-le"), comment.decode("utf-16-le"), sids


# ---------------------------------------------------------------------------------------
# service SIDs


def test_service_sid_of_trusted_installer():
    assert service_sid("TrustedInstaller") == "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
    assert service_sid("trustedinstaller") == service_sid("TrustedInstaller")  # Windows upper-cases the name


@pytest.mark.shared
def test_service_sid_matches_a_real_lsa_account(tmp_path):
    """Windows 10's SECURITY hive grants WdiServiceHost's service SID a privilege."""
    hive = RegistryHive(str(expand("hives", "chitonsrv-SECURITY", tmp_path)))
    names = {k.name for k in hive.get_key(r"\Policy\Accounts").iter_subkeys()}
    assert service_sid("WdiServiceHost") in names


# ---------------------------------------------------------------------------------------
# SAM


def test_sam_machine_sid(written):
    (found,) = plugin(LocalSidPlugin, written["SAM"])
    assert found["machine_sid"] == MACHINE
    v = dict((n, d) for n, _, d in regipy_dump(written["SAM"])[r"\SAM\Domains\Account"].values)["V"]
    assert str(SID.from_bytes(v[-24:])) == MACHINE  # the last 24 bytes, as tools read it
    assert str(SID.from_bytes(entries(v, 4)[1])) == MACHINE  # and the V table's second entry
    require_hivex()
    hv = dict((n, d) for n, _, d in hivex_values(written["SAM"], r"\SAM\Domains\Account"))["V"]
    assert hv == v
    bv = dict((n, d) for n, _, d in hivex_values(written["SAM"], r"\SAM\Domains\Builtin"))["V"]
    assert str(SID.from_bytes(bv[-12:])) == "S-1-5-32"


def test_sam_names_carry_the_rid_as_value_type(written):
    dump = regipy_dump(written["SAM"])
    names = dump[r"\SAM\Domains\Account\Users\Names"]
    assert sorted(names.subkeys) == sorted(u.name for u in USERS)
    for user in USERS:
        key = dump[rf"\SAM\Domains\Account\Users\Names\{user.name}"]
        assert key.compressed == all(ord(c) < 0x100 for c in user.name)
        assert [(n, t) for n, t, _ in key.values] == [("(default)", str(user.rid))]
        assert rf"\SAM\Domains\Account\Users\{user.rid:08X}" in dump
    for alias in ALIASES:
        key = dump[rf"\SAM\Domains\Account\Aliases\Names\{alias.name}"]
        assert key.values[0][1] == str(alias.rid)
    require_hivex()
    for user in USERS:
        assert hivex_values(written["SAM"], rf"\SAM\Domains\Account\Users\Names\{user.name}") == [("", user.rid, b"")]
    for alias in BUILTIN:
        assert hivex_values(written["SAM"], rf"\SAM\Domains\Builtin\Aliases\Names\{alias.name}") == [
            ("", alias.rid, b"")
        ]


def test_sam_user_records(written):
    # regipy's samparse reads F (RID, flags); it reads V trimmed to 128 bytes, so it finds
    # no names even in Windows' own hives: V is parsed here, from both readers' bytes.
    parsed = {e["rid"]: e for e in plugin(SAMParsePlugin, written["SAM"])}
    assert sorted(parsed) == sorted(u.rid for u in USERS)
    dump = regipy_dump(written["SAM"])
    for user in USERS:
        entry = parsed[user.rid]
        assert ("Account Disabled" in entry["account_flags_parsed"]) == user.disabled
        assert entry["account_flags"] == hives.acb_flags(user)
        values = {n: d for n, _, d in dump[rf"\SAM\Domains\Account\Users\{user.rid:08X}"].values}
        f, v = values["F"], values["V"]
        assert len(f) == 80 and struct.unpack_from("<III", f, 0x30) == (user.rid, 513, hives.acb_flags(user))
        items = entries(v, 17)
        assert [i.decode("utf-16-le") for i in items[1:4]] == [user.name, user.full_name, user.comment]
        assert items[12] == struct.pack("<II", 513, 7)  # member of None (RID 513)
        assert f"{MACHINE}-{user.rid})" in to_sddl(SecurityDescriptor.from_bytes(items[0]))  # the user's own ACE
    require_hivex()
    for user in USERS:
        got = hivex_values(written["SAM"], rf"\SAM\Domains\Account\Users\{user.rid:08X}")
        assert [(n, t) for n, t, _ in got] == [("F", 3), ("V", 3)]
        assert entries(got[1][2], 17)[1].decode("utf-16-le") == user.name


def test_sam_holds_no_password_material(written):
    dump = regipy_dump(written["SAM"])
    for user in USERS:
        v = {n: d for n, _, d in dump[rf"\SAM\Domains\Account\Users\{user.rid:08X}"].values}["V"]
        for blob in entries(v, 17)[13:]:  # LM, NT, NT history, LM history
            assert blob == struct.pack("<HHI", 4, 2, 0) + bytes(16)  # the header of "no hash"
    f = {n: d for n, _, d in dump[r"\SAM\Domains\Account"].values}["F"]
    assert len(f) == 0x170
    assert f[0x78:0xE8] == bytes(0x70) and f[0xF8:0x168] == bytes(0x70)  # key slots: headers only


def test_sam_aliases_and_their_members(written):
    dump = regipy_dump(written["SAM"])
    for domain, aliases in (("Account", ALIASES), ("Builtin", BUILTIN)):
        base = rf"\SAM\Domains\{domain}\Aliases"
        assert dump[base].values[0][1] == regipy_type(len(aliases))  # the default value's type counts them
        reverse: dict[str, list[int]] = {}
        for alias in aliases:
            c = {n: d for n, _, d in dump[rf"{base}\{alias.rid:08X}"].values}["C"]
            assert alias_members(c) == (alias.rid, alias.name, alias.comment, list(alias.members))
            for member in alias.members:
                reverse.setdefault(member, []).append(alias.rid)
        # Members\<domain SID>\<RID>: default value typed with the count, data the alias RIDs
        for member, rids in reverse.items():
            sid = SID.from_string(member)
            key = dump[rf"{base}\Members\{sid.prefix}\{sid.rid:08X}"]
            got_type, got_data = key.value("(default)")
            assert got_type == regipy_type(len(rids))
            if len(rids) > 1:  # regipy reads data of a few bytes only for the usual types
                assert got_data == struct.pack(f"<{len(rids)}I", *rids)
    administrators = alias_members({n: d for n, _, d in dump[r"\SAM\Domains\Builtin\Aliases\00000220"].values}["C"])
    assert administrators[3] == [f"{MACHINE}-500", f"{DOMAIN}-512"]
    require_hivex()
    for member, alias_rids in ((f"{MACHINE}-1001", [545, 1004]), (f"{DOMAIN}-1105", [1003])):
        sid = SID.from_string(member)
        domain = "Account" if alias_rids == [1003] else "Builtin"
        rids = [r for r in alias_rids if (r < 1000) == (domain == "Builtin")]
        got = hivex_values(written["SAM"], rf"\SAM\Domains\{domain}\Aliases\Members\{sid.prefix}\{sid.rid:08X}")
        assert got == [as_hivex(Value("", len(rids), struct.pack(f"<{len(rids)}I", *rids)))]


@pytest.mark.parametrize("hive", ["SAM", "SECURITY", "SYSTEM", "SOFTWARE"])
def test_hivex_and_regipy_see_the_same_keys(written, hive):
    require_hivex()
    by_regipy = regipy_dump(written[hive])
    by_hivex = hivex_dump(written[hive], values=False)
    assert set(by_regipy) == set(by_hivex)
    for path, key in by_regipy.items():
        assert by_hivex[path].subkeys == key.subkeys, path


# ---------------------------------------------------------------------------------------
# SECURITY


def unicode_string(data: bytes) -> str:
    length, maximum, offset = struct.unpack_from("<HHI", data)
    assert (maximum, offset, len(data)) == (length + 2, 8, 8 + length + 2)
    return data[8 : 8 + length].decode("utf-16-le")


def test_security_domains(written):
    (found,) = plugin(DomainSidPlugin, written["SECURITY"])
    assert found["domain_name"] == "CORP"
    dump = regipy_dump(written["SECURITY"])
    data = {p.rsplit("\\", 1)[1]: k.value("(default)")[1] for p, k in dump.items() if p.startswith(r"\Policy\Pol")}
    assert unicode_string(data["PolAcDmN"]) == "PC-01"
    assert str(SID.from_bytes(data["PolAcDmS"])) == MACHINE
    assert unicode_string(data["PolPrDmN"]) == "CORP"
    assert str(SID.from_bytes(data["PolPrDmS"])) == DOMAIN
    assert unicode_string(data["PolDnDDN"]) == "corp.example"
    require_hivex()
    assert hivex_values(written["SECURITY"], r"\Policy\PolAcDmS") == [("", 0, SID.from_string(MACHINE).to_bytes())]


def test_security_workgroup():
    tree = security_hive("PC-02", MACHINE, accounts={})
    pr = tree.find(r"Policy\PolPrDmN").value("").raw
    assert unicode_string(pr) == "WORKGROUP"
    assert tree.find(r"Policy\PolPrDmS").value("").raw == b""
    assert tree.find(r"Policy\Accounts").subkeys == []


def decode_privileges(data: bytes) -> set[str]:
    count, control = struct.unpack_from("<II", data)
    assert control == 0 and len(data) == 8 + 12 * count
    names = {luid: name for name, luid in PRIVILEGES.items()}
    return {names[struct.unpack_from("<I", data, 8 + 12 * i)[0]] for i in range(count)}


def decode_rights(flags: int) -> set[str]:
    return {name for name, bit in ACCOUNT_RIGHTS.items() if flags & bit}


def test_security_accounts(written):
    dump = regipy_dump(written["SECURITY"])
    assert sorted(dump[r"\Policy\Accounts"].subkeys) == sorted(LSA)
    for sid, account in LSA.items():
        base = rf"\Policy\Accounts\{sid}"
        assert dump[rf"{base}\Sid"].value("(default)") == ("REG_NONE", SID.from_string(sid).to_bytes())
        if account.rights:
            raw = dump[rf"{base}\ActSysAc"].value("(default)")[1]
            assert decode_rights(struct.unpack("<I", raw)[0]) == account.rights
        else:
            assert rf"{base}\ActSysAc" not in dump
        if account.privileges:
            assert decode_privileges(dump[rf"{base}\Privilgs"].value("(default)")[1]) == account.privileges
    require_hivex()
    assert hivex_values(written["SECURITY"], r"\Policy\Accounts\S-1-5-80-0\ActSysAc") == [("", 0, b"\x10\0\0\0")]
    got = hivex_values(written["SECURITY"], rf"\Policy\Accounts\{MACHINE}-1000\Privilgs")
    assert decode_privileges(got[0][2]) == {"SeBackupPrivilege"}


@pytest.mark.shared
def test_default_lsa_accounts_match_windows_10(tmp_path):
    """The defaults equal what DESKTOP-M964FJN's SECURITY hive grants (read here)."""
    accounts = hives.default_lsa_accounts()
    assert accounts["S-1-5-80-0"].system_access == 0x10
    assert accounts["S-1-5-32-544"].system_access == 0x407
    assert accounts["S-1-5-32-545"].system_access == 0x3
    path = expand("hives", "regipy-SECURITY", tmp_path)
    dump = regipy_dump(path)
    real = {}
    for p in dump:
        parts = p.split("\\")
        if len(parts) == 5 and parts[2] == "Accounts" and parts[4] in ("ActSysAc", "Privilgs"):
            real.setdefault(parts[3], {})[parts[4]] = dump[p].value("(default)")[1]
    for sid, values in real.items():
        if sid.startswith("S-1-5-21-"):
            continue  # the machine's Guest account: its own SID
        ours = accounts[sid]
        if "Privilgs" in values:
            assert decode_privileges(values["Privilgs"]) == ours.privileges, sid
        assert decode_rights(struct.unpack("<I", values.get("ActSysAc", bytes(4)))[0]) == ours.rights, sid


# ---------------------------------------------------------------------------------------
# SYSTEM and SOFTWARE


def test_system(written):
    (name,) = plugin(ComputerNamePlugin, written["SYSTEM"])
    assert name["name"] == "PC-01"
    services = plugin(ServicesPlugin, written["SYSTEM"])[r"\ControlSet001\Services"]["services"]
    found = {s["name"]: {v["name"]: v["value"] for v in s["values"]} for s in services}
    assert sorted(found) == sorted(s.name for s in SERVICES)
    for service in SERVICES:
        values = found[service.name]
        assert values.get("ObjectName") == service.object_name
        assert (values["Start"], values["Type"]) == (service.start, service.type)
        if service.image_path:
            assert values["ImagePath"] == service.image_path
    assert found["Dhcp"]["ImagePath"] == r"%SystemRoot%\System32\svchost.exe -k Dhcp"
    dump = regipy_dump(written["SYSTEM"])
    assert dump[r"\Select"].values == [
        ("Current", "REG_DWORD", 1),
        ("Default", "REG_DWORD", 1),
        ("Failed", "REG_DWORD", 0),
        ("LastKnownGood", "REG_DWORD", 1),
    ]
    assert dump[r"\ControlSet001\Control\ProductOptions"].values == [("ProductType", "REG_SZ", "ServerNT")]
    require_hivex()
    assert hivex_values(written["SYSTEM"], r"\ControlSet001\Control\ProductOptions") == [("ProductType", 1, "ServerNT")]
    avscan = dict((n, (t, d)) for n, t, d in hivex_values(written["SYSTEM"], r"\ControlSet001\Services\AVScan"))
    assert avscan["ObjectName"] == (1, ".\\alice")
    assert avscan["ImagePath"] == (2, SERVICES[0].image_path)
    assert avscan["Start"] == (4, 2)


def test_software_profiles(written):
    found = {e["sid"]: e for e in plugin(ProfileListPlugin, written["SOFTWARE"])}
    assert set(found) == {p.sid for p in PROFILES} | {"S-1-5-18", "S-1-5-19", "S-1-5-20"}
    for profile in PROFILES:
        assert found[profile.sid]["path"] == profile.path
    dump = regipy_dump(written["SOFTWARE"])
    base = r"\Microsoft\Windows NT\CurrentVersion\ProfileList"
    for profile in PROFILES:
        assert dump[rf"{base}\{profile.sid}"].value("Sid") == ("REG_BINARY", SID.from_string(profile.sid).to_bytes())
    require_hivex()
    got = dict((n, (t, d)) for n, t, d in hivex_values(written["SOFTWARE"], rf"{base}\{PROFILES[1].sid}"))
    assert got["ProfileImagePath"] == (2, r"C:\Users\José")


def test_a_given_system_profile_replaces_the_default():
    tree = software_hive([Profile("S-1-5-18", r"D:\system")])
    key = tree.find(r"Microsoft\Windows NT\CurrentVersion\ProfileList\S-1-5-18")
    assert key.value("ProfileImagePath").data == r"D:\system"


# ---------------------------------------------------------------------------------------
# Determinism and impossible descriptions


def test_builders_are_deterministic():
    for build in (
        lambda: sam_hive(MACHINE, USERS, ALIASES, BUILTIN),
        lambda: security_hive("PC-01", MACHINE, "CORP", DOMAIN, LSA),
        lambda: system_hive("PC-01", SERVICES),
        lambda: software_hive(PROFILES),
    ):
        assert hive_bytes(build()) == hive_bytes(build())


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: sam_hive("S-1-5-32", USERS), "S-1-5-21-a-b-c"),
        (lambda: sam_hive("not a sid", USERS), "machine SID"),
        (lambda: sam_hive(MACHINE, [SamUser(1000, "a"), SamUser(1000, "b")]), "RID 1000"),
        (lambda: sam_hive(MACHINE, [SamUser(1000, "a"), SamUser(1001, "A")]), "two users"),
        (lambda: sam_hive(MACHINE, [SamUser(0, "a")]), "RID 0"),
        (lambda: sam_hive(MACHINE, USERS, [SamAlias(1000, "x")]), "used twice"),
        (lambda: sam_hive(MACHINE, USERS, [SamAlias(1010, "x", ["S-1-5-21-x"])]), "member"),
        (lambda: sam_hive(MACHINE, USERS, [SamAlias(1010, "x", ["S-1-5"])]), "no RID"),
        (lambda: sam_hive(MACHINE, USERS, revision=4), "revision"),
        (lambda: SamAlias(1010, "x", "S-1-5-4"), "list of SIDs"),
        (lambda: LsaAccount({"SeFlyRight"}), "SeFlyRight"),
        (lambda: LsaAccount((), {"SeBackupPrivilege", "SeMagicPrivilege"}), "SeMagicPrivilege"),
        (lambda: security_hive("", MACHINE), "name"),
        (lambda: security_hive("PC", MACHINE, primary_domain_sid=DOMAIN), "name"),
        (lambda: system_hive("PC", product_type="Workstation"), "product type"),
        (lambda: system_hive("PC", [Service("a", required_privileges=["SeNope"])]), "SeNope"),
        (lambda: software_hive([Profile(MACHINE + "-1000", "a"), Profile(MACHINE + "-1000", "b")]), "two profiles"),
        (lambda: service_sid(""), "service name"),
    ],
)
def test_impossible_descriptions_raise(build, message):
    with pytest.raises(InvalidHive, match=message) as caught:
        build()
    assert isinstance(caught.value, Error)


# ---------------------------------------------------------------------------------------
# The layout of real SAM hives


def read_real_sam(path) -> dict:
    """What a real SAM describes: machine SID, users, aliases and members, read with
    regipy (never a password-bearing value: names, RIDs and alias C values only)."""
    dump = regipy_dump(path)
    (found,) = plugin(LocalSidPlugin, path)

    def named(base: str) -> dict[str, int]:
        return {n: int(dump[rf"{base}\Names\{n}"].values[0][1]) for n in dump[rf"{base}\Names"].subkeys}

    def aliases(base: str) -> list[SamAlias]:
        out = []
        for name, rid in named(base).items():
            c = dump[rf"{base}\{rid:08X}"].value("C")[1]
            crid, cname, comment, members = alias_members(c)
            assert (crid, cname) == (rid, name)
            out.append(SamAlias(rid, name, members, comment))
        return out

    return {
        "machine_sid": found["machine_sid"],
        "users": [SamUser(rid, name) for name, rid in named(r"\SAM\Domains\Account\Users").items()],
        "aliases": aliases(r"\SAM\Domains\Account\Aliases"),
        "builtin": aliases(r"\SAM\Domains\Builtin\Aliases"),
        "none_group": dump[r"\SAM\Domains\Account\Groups\Names"].subkeys[0],
        "dump": dump,
    }


# Values some real accounts have and the builder does not write.
OPTIONAL_VALUES = {("ForcePasswordReset", "REG_BINARY"), ("UserPasswordHint", "REG_BINARY")}
# CHITONSRV counts one user and one builtin alias fewer than it has (a default value's
# type holds the count); STUDENT-PC8 and regipy's SAM count exactly, as the builder does.
UNCOUNTED = {("chitonsrv-SAM", r"\SAM\Domains\Account\Users"), ("chitonsrv-SAM", r"\SAM\Domains\Builtin\Aliases")}


@pytest.mark.shared
@pytest.mark.parametrize(
    "hive, revision, machine_sid, rids",
    [
        ("studentpc8-SAM", 2, "S-1-5-21-4070822719-3404542230-2541167049", {"Administrator": 500, "Guest": 501,
                                                                            "gold_administrator": 1001}),
        ("chitonsrv-SAM", 3, "S-1-5-21-3656677704-2377210397-1510584988", {"Administrador": 500, "Invitado": 501,
                                                                           "DefaultAccount": 503,
                                                                           "pepe.contento.secret": 1000,
                                                                           "maria.feliz.secret": 1001,
                                                                           "SuperSecretAdmin": 1004}),
    ],
)
def test_layout_matches_a_real_sam(tmp_path, hive, revision, machine_sid, rids):
    real = read_real_sam(expand("hives", hive, tmp_path))
    assert real["machine_sid"] == machine_sid  # the data's README states these facts
    assert {u.name: u.rid for u in real["users"]} == rids
    real_dump = real["dump"]
    for user in real["users"]:  # the RID sits at 0x30 of F in real hives too
        f = real_dump[rf"\SAM\Domains\Account\Users\{user.rid:08X}"].value("F")[1]
        assert struct.unpack_from("<I", f, 0x30)[0] == user.rid
    path = tmp_path / "ours"
    tree = sam_hive(
        real["machine_sid"], real["users"], real["aliases"], real["builtin"],
        revision=revision, none_group_name=real["none_group"],
    )
    write_hive(tree, path, name=HIVE_NAMES["SAM"])
    ours = regipy_dump(path)
    (found,) = plugin(LocalSidPlugin, path)
    assert found["machine_sid"] == machine_sid
    assert set(ours) == set(real_dump)  # the same keys, Latin-1 names included
    for key_path, key in real_dump.items():
        real_values = {(n, t) for n, t, _ in key.values}
        our_values = {(n, t) for n, t, _ in ours[key_path].values}
        if (hive, key_path) in UNCOUNTED:
            real_values, our_values = {(n, "?") for n, _ in real_values}, {(n, "?") for n, _ in our_values}
        assert our_values <= real_values, key_path
        assert real_values - our_values <= OPTIONAL_VALUES, key_path
        assert ours[key_path].subkeys == key.subkeys, key_path  # and Windows' order
        assert ours[key_path].compressed == key.compressed, key_path  # Latin-1 names stored as Windows does
    for key_path in (r"\SAM\Domains\Account", r"\SAM\Domains\Builtin", r"\SAM\Domains\Account\Users\000001F4"):
        assert len(ours[key_path].value("F")[1]) == len(real_dump[key_path].value("F")[1]), key_path
