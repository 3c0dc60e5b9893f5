"""The scenario volumes: definitions complete, committed volumes true to their
manifests (checked by scanning them), hives in place and readable, rebuilds
reproducing the manifests."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from aclscan.samples.build import final_descriptors, manifest_of
from aclscan.samples.scenarios import (
    MASTER, RESEALED, RID_COLLISION, SCENARIOS, SID_HISTORY, ORPHAN, STALE_PREFIX,
)
from aclscan.scan import scan_image
from aclscan.sd import SID

SAMPLES = Path(__file__).resolve().parents[2] / "sample_volumes"
NAMES = sorted(SCENARIOS)


def committed_manifest(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_definition_gives_every_sid_a_verdict(name):
    scenario = SCENARIOS[name]()
    manifest = manifest_of(scenario, scenario.nodes, final_descriptors(scenario.nodes), [])
    assert manifest["expected"], name
    for sid, entry in manifest["expected"].items():
        assert entry["verdict"], sid


@pytest.mark.parametrize("name", NAMES)
def test_committed_volume_is_small_and_has_its_manifest(name):
    image = SAMPLES / f"{name}.img.gz"
    assert image.is_file() and image.stat().st_size <= 2_000_000
    manifest = committed_manifest(name)
    assert manifest["scenario"] == name and manifest["image"] == image.name


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    directory = tmp_path_factory.mktemp("samples")
    done = {}

    def scanned(name):
        if name not in done:
            image = SAMPLES / f"{name}.img.gz"
            before = hashlib.sha256(image.read_bytes()).hexdigest()
            result = scan_image(image, directory / f"{name}.db")
            assert hashlib.sha256(image.read_bytes()).hexdigest() == before
            done[name] = (result, sqlite3.connect(directory / f"{name}.db"))
        return done[name]

    return scanned


@pytest.mark.parametrize("name", NAMES)
def test_scan_finds_what_the_manifest_says(scans, name):
    """Files and distinct descriptors per SID over the files the scenario made."""
    result, db = scans(name)
    assert result.problems == []
    rows = db.execute("""
        SELECT x.sid, COUNT(DISTINCT f.entry), COUNT(DISTINCT f.descriptor_key)
        FROM files f JOIN (SELECT key AS k, owner AS sid FROM descriptors
                           UNION SELECT key, "group" FROM descriptors
                           UNION SELECT descriptor_key, sid FROM aces) x ON x.k = f.descriptor_key
        WHERE f.path NOT GLOB '/$*' GROUP BY x.sid""").fetchall()
    found = {sid: (files, descriptors) for sid, files, descriptors in rows}
    expected = {sid: (e["files"], e["descriptors"]) for sid, e in committed_manifest(name)["expected"].items()
                if e["files"]}
    assert found == expected
    made = db.execute("SELECT COUNT(*) FROM files WHERE path NOT GLOB '/$*'").fetchone()[0]
    assert made == committed_manifest(name)["files_made"]


@pytest.mark.parametrize("name", NAMES)
def test_hives_are_in_place_and_name_the_machine(name, tmp_path):
    from regipy.registry import RegistryHive

    from aclscan.image import Image

    manifest = committed_manifest(name)
    with Image(SAMPLES / f"{name}.img.gz") as image:
        volume = image.open_volume(image.volumes()[0])
        for hive in ("SAM", "SECURITY", "SYSTEM", "SOFTWARE"):
            (tmp_path / hive).write_bytes(volume.open_path(f"/Windows/System32/config/{hive}"))
    # SAM: the machine SID is the last 24 bytes of Domains\Account's V value.
    account = RegistryHive(str(tmp_path / "SAM")).get_key("\\SAM\\Domains\\Account")
    v = next(value.value for value in account.iter_values(trim_values=False) if value.name == "V")
    v = bytes.fromhex(v) if isinstance(v, str) else v
    assert str(SID.from_bytes(v[-24:])) == manifest["machine_sid"]
    names = RegistryHive(str(tmp_path / "SAM")).get_key("\\SAM\\Domains\\Account\\Users\\Names")
    assert {k.name for k in names.iter_subkeys()} == {a["name"] for a in manifest["accounts"] if a["kind"] == "user"}
    if shutil.which("hivexget"):
        product = subprocess.run(["hivexget", str(tmp_path / "SYSTEM"), "\\ControlSet001\\Control\\ProductOptions",
                                  "ProductType"], capture_output=True, text=True, check=True).stdout.strip()
        assert product == manifest["product_type"]
        script = "cd \\Microsoft\\Windows NT\\CurrentVersion\\ProfileList\nls\n"
        profiles = subprocess.run(["hivexsh", str(tmp_path / "SOFTWARE")], input=script, capture_output=True,
                                  text=True, check=True)
        assert set(manifest["profiles"]) <= set(profiles.stdout.split())


def test_member_after_tells_the_rid_collision_story():
    expected = committed_manifest("member-after")["expected"]
    accounts = {a["rid"]: a["name"] for a in committed_manifest("member-after")["accounts"]}
    assert accounts[1000] == "Jon"
    ken = expected[f"{MASTER}-1000"]
    assert (ken["verdict"], ken["account"], ken["mapped_sid"]) == (RID_COLLISION, "Ken", None)
    assert ken["files"] > 900  # Ken's profile and his project files: thousands of files in all
    assert expected[f"{MASTER}-500"]["verdict"] == STALE_PREFIX
    assert expected[f"{MASTER}-500"]["mapped_sid"] == f"{RESEALED}-500"
    assert committed_manifest("member-after")["files_made"] > 2000


def test_av_service_story():
    manifest = committed_manifest("av-service")
    old = f"{MASTER}-1003"
    assert manifest["lsa_rights"][old] == ["SeServiceLogonRight"]
    assert manifest["expected"][old]["verdict"] == STALE_PREFIX
    assert manifest["expected"][old]["mapped_sid"] == f"{RESEALED}-1003"
    assert "SECURITY Policy\\Accounts" in manifest["expected"][old]["hive_references"]
    assert {"name": "AVScan", "object_name": ".\\AVService"} in manifest["services"]
    avscan = [sid for sid, e in manifest["expected"].items() if e.get("account") == "NT SERVICE\\AVScan"]
    assert avscan and avscan[0].startswith("S-1-5-80-") and manifest["expected"][avscan[0]]["files"] > 0


def test_domain_member_exports():
    manifest = committed_manifest("domain-member")
    ldif = (SAMPLES / "domain-member.ldif").read_text()
    sids, history = set(), set()
    for line in ldif.splitlines():
        if line.startswith("objectSid:: "):
            sids.add(str(SID.from_bytes(base64.b64decode(line.split(":: ")[1]))))
        if line.startswith("sIDHistory:: "):
            history.add(str(SID.from_bytes(base64.b64decode(line.split(":: ")[1]))))
    deleted = set(manifest["deleted_domain_users"])
    assert deleted and not deleted & sids
    expected = manifest["expected"]
    assert {sid for sid, e in expected.items() if e["verdict"] == SID_HISTORY} == history
    assert {sid for sid, e in expected.items() if e["verdict"] == ORPHAN} == deleted
    with open(SAMPLES / "domain-member.csv", newline="", encoding="utf-8") as fh:
        assert fh.readline().strip() == "#TYPE Microsoft.ActiveDirectory.Management.ADUser"
        users = list(csv.DictReader(fh))
    assert {u["SID"] for u in users} <= sids and all(u["SamAccountName"] for u in users)


def test_readiness_expectations():
    ready = {name: committed_manifest(name)["readiness"]["ready"] for name in NAMES}
    assert ready == {"av-service": False, "clean": True, "cloned-dc": False, "domain-member": False,
                     "member-after": False, "member-before": False, "no-history": False, "ws1": False,
                     "ws2": False}
    assert committed_manifest("cloned-dc")["product_type"] == "LanmanNT"


@pytest.mark.ntfs3g
@pytest.mark.parametrize("name", ["clean", "av-service", "no-history"])
def test_rebuild_reproduces_the_manifest(ntfs3g, name, tmp_path):
    from aclscan.samples.build import build

    built = build(SCENARIOS[name](), tmp_path)
    assert json.loads(built.manifest.read_text()) == committed_manifest(name)
    result = scan_image(built.image, tmp_path / "rebuilt.db")
    assert result.problems == []


def _regipy_keys(path: Path):
    """Every key of a hive, the root included, as regipy walks it."""
    from regipy.registry import RegistryHive

    pending = [RegistryHive(str(path)).root]
    while pending:
        key = pending.pop()
        yield key
        pending.extend(key.iter_subkeys() or ())


@pytest.mark.parametrize("name", ["av-service", "member-after", "clean", "no-history"])
def test_key_descriptors_on_the_volume_are_the_manifests(name, tmp_path):
    """The builder's registry_key counts, checked key by key with regipy's reading of
    each key's sk cell in the hives of the committed volume (user hives included)."""
    from aclscan.image import Image

    places = committed_manifest(name)["places"]
    assert places["hives"]
    total: dict[str, int] = {}
    with Image(SAMPLES / f"{name}.img.gz") as image:
        volume = image.open_volume(image.volumes()[0])
        for hive_path, expected in places["hives"].items():
            target = tmp_path / hive_path.replace("/", "_")
            target.write_bytes(volume.open_path(f"/{hive_path}"))
            keys, by_sid = 0, {}
            for key in _regipy_keys(target):
                keys += 1
                info = key.get_security_key_info()
                aces = (info["dacl"] or []) + (info["sacl"] or [])
                sids = {info["owner"], info["group"]} | {ace["sid"] for ace in aces}
                for sid in sids:
                    by_sid[sid] = by_sid.get(sid, 0) + 1
            assert (keys, by_sid) == (expected["keys"], expected["by_sid"]), hive_path
            for sid, n in by_sid.items():
                total[sid] = total.get(sid, 0) + n
    assert total == {sid: e["kinds"]["registry_key"] for sid, e in places["by_sid"].items()
                     if "registry_key" in e["kinds"]}
    user_hives = committed_manifest(name)["user_hives"]
    assert set(user_hives) <= set(places["hives"])
    if name != "av-service":
        assert user_hives
        assert all(label.split(" of ")[0] in ("NTUSER.DAT", "UsrClass.dat") for label in user_hives.values())


def test_member_after_user_hives_name_the_old_sids():
    places = committed_manifest("member-after")["places"]
    for rid, name in ((1000, "Ken"), (1001, "Arianne"), (1002, "Ron")):
        hive = places["hives"][f"Users/{name}/NTUSER.DAT"]
        assert hive["hive"] == f"NTUSER.DAT of {MASTER}-{rid}"
        assert hive["by_sid"][f"{MASTER}-{rid}"] == hive["keys"]  # every key's ACL names its owner's old SID
    assert "Users/Ken/AppData/Local/Microsoft/Windows/UsrClass.dat" in places["hives"]
    kinds = places["by_sid"][f"{MASTER}-1000"]["kinds"]
    assert kinds["share"] == 1 and kinds["registry_key"] > 0
    assert places["by_sid"][f"{MASTER}-1001"]["kinds"]["printer"] == 1


def test_clean_places_are_all_resolved():
    by_sid = committed_manifest("clean")["places"]["by_sid"]
    assert {e["verdict"] for e in by_sid.values()} <= {"resolved", "placeholder"}
    kinds = {kind for e in by_sid.values() for kind in e["kinds"]}
    assert kinds == {"registry_key", "service", "share", "printer", "task", "dcom", "sam_object", "lsa_account"}
