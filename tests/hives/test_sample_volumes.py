"""The hive readers on the committed sample volumes: what each manifest says the hives
hold (machine SID, accounts, services, LSA rights, profiles, product type)."""

from __future__ import annotations

import pytest

from aclscan.accounts.base import ALIAS, GROUP, USER, AccountSource
from aclscan.accounts.volume import VolumeHiveSource
from aclscan.hives import read_hive, read_sam, read_security, read_software, read_system
from tests.hives.conftest import SAMPLES, SCENARIOS

SYSTEM_PROFILES = {"S-1-5-18", "S-1-5-19", "S-1-5-20"}


def read_all(hives: dict[str, bytes]):
    return (read_sam(hives["SAM"]), read_security(hives["SECURITY"]), read_system(hives["SYSTEM"]),
            read_software(hives["SOFTWARE"]))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_hives_match_the_manifest(sample_hives, scenario):
    hives, manifest = sample_hives(scenario)
    sam, security, system, software = read_all(hives)
    machine = manifest["machine_sid"]

    assert sam.machine_sid == machine
    assert security.account_domain_sid == machine
    assert security.account_domain_name == manifest["computer"]
    assert system.computer_name == manifest["computer"]
    assert system.product_type == manifest["product_type"]
    assert system.is_domain_controller == (manifest["product_type"] == "LanmanNT")
    domain = manifest["primary_domain"]
    if domain is None:
        assert security.primary_domain_sid is None
    else:
        assert (security.primary_domain_name, security.primary_domain_sid) == (domain["name"], domain["sid"])

    expected_users = {a["rid"]: a["name"] for a in manifest["accounts"] if a["kind"] == "user"}
    assert {u.rid: u.name for u in sam.users} == expected_users
    expected_aliases = {a["rid"]: (a["name"], tuple(a["members"]))
                        for a in manifest["accounts"] if a["kind"] == "alias"}
    assert {a.rid: (a.name, a.members) for a in sam.aliases} == expected_aliases
    expected_builtin = {a["rid"]: (a["name"], tuple(a["members"])) for a in manifest["builtin_aliases"]}
    assert {a.rid: (a.name, a.members) for a in sam.builtin_aliases} == expected_builtin
    assert [g.rid for g in sam.groups] == [513]
    assert set(sam.groups[0].member_rids) == set(expected_users)

    expected_services = {s["name"]: s["object_name"] for s in manifest["services"]}
    assert {s.name: s.object_name for s in system.services if s.object_name} == expected_services

    rights = {sid: sorted(account.names) for sid, account in security.accounts.items()}
    assert rights == {sid: sorted(names) for sid, names in manifest["lsa_rights"].items()}

    profiles = {p.sid: p.path for p in software.profiles if p.sid not in SYSTEM_PROFILES}
    assert profiles == manifest["profiles"]
    assert {p.sid for p in software.profiles} >= SYSTEM_PROFILES

    for info in (sam, security, system, software):
        assert info.problems == () and not info.status.dirty


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_volume_source_speaks_for_the_machine(sample_hives, scenario):
    hives, manifest = sample_hives(scenario)
    source = VolumeHiveSource(*read_all(hives))
    assert isinstance(source, AccountSource)
    authorities = {a.sid: a for a in source.authorities()}
    machine = authorities.pop(manifest["machine_sid"])
    domain = manifest["primary_domain"]
    is_dc = manifest["product_type"] == "LanmanNT"
    assert source.is_domain_controller == is_dc
    account_domain = domain["name"] if is_dc else manifest["computer"]
    # A domain controller's SAM is not the list of its (the domain's) accounts.
    assert (machine.name, machine.kind, machine.complete) == (account_domain, "machine", not is_dc)
    if domain is None or is_dc:
        assert authorities == {}
    else:
        [(sid, authority)] = authorities.items()
        got = (sid, authority.name, authority.kind, authority.complete)
        assert got == (domain["sid"], domain["name"], "domain", False)
    for entry in manifest["accounts"]:
        account = source.lookup(entry["sid"])
        assert account is not None and account.name == entry["name"]
        assert account.kind == {"user": USER, "alias": ALIAS}[entry["kind"]]
        assert account.domain == account_domain
        assert list(account.members) == entry["members"]
        assert sorted(account.rights) == sorted(manifest["lsa_rights"].get(entry["sid"], []))
    none_group = source.lookup(f"{manifest['machine_sid']}-513")
    assert none_group.kind == GROUP and none_group.name == "None"
    for entry in manifest["builtin_aliases"]:
        account = source.lookup(entry["sid"])
        assert account.qualified_name == f"BUILTIN\\{entry['name']}" and list(account.members) == entry["members"]
    assert {s.name for s in source.services()} >= {s["name"] for s in manifest["services"]}
    assert set(source.lsa_accounts()) == set(manifest["lsa_rights"])
    assert {p.sid for p in source.profiles()} >= set(manifest["profiles"])
    assert source.inconsistencies() == []


def test_av_service_keeps_the_old_sid_right(sample_hives):
    """The LSA right the antivirus account had still names the master's SID."""
    hives, manifest = sample_hives("av-service")
    [old] = manifest["previous_machine_sids"]
    security = read_security(hives["SECURITY"])
    assert security.accounts[f"{old}-1003"].rights == {"SeServiceLogonRight"}
    assert f"{manifest['machine_sid']}-1003" not in security.accounts
    sam = read_sam(hives["SAM"])
    assert sam.user(1003).name == "AVService"
    assert sam.alias(1004).members == (f"{old}-1003",)
    system = read_system(hives["SYSTEM"])
    assert system.service("AVScan").object_name == ".\\AVService"
    assert system.service("avscan").image_path.endswith("-service")


def test_master_sam_is_the_history(sample_hives):
    _hives, manifest = sample_hives("av-service")
    sam = read_sam(SAMPLES / "av-service.master-SAM")
    assert sam.machine_sid == manifest["previous_machine_sids"][0]
    assert sam.user(1003).name == "AVService" and sam.alias(1004).name == "AV Admins"


def test_read_hive_picks_the_reader(sample_hives):
    hives, _manifest = sample_hives("cloned-dc")
    kinds = {name: type(read_hive(data)).__name__ for name, data in hives.items()}
    assert kinds == {"SAM": "SamInfo", "SECURITY": "SecurityInfo", "SYSTEM": "SystemInfo", "SOFTWARE": "SoftwareInfo"}
    assert read_hive(hives["SYSTEM"]).product_type == "LanmanNT"
