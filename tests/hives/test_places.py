"""Descriptors kept in registry values (aclscan.hives.places) on the scenario volumes,
on real Windows hives, and on broken input.

Oracles: each scenario manifest's ``places`` (the builder's own count of what it wrote),
hivex (Debian's python3-hivex, run under /usr/bin/python3) for the bytes of every value,
and the shared data's README for the accounts of the real hives."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from aclscan.hives.places import (
    dcom_places,
    hive_places,
    lsa_account_places,
    printer_places,
    sam_object_places,
    service_places,
    share_places,
    system_places,
    task_cache_places,
)
from aclscan.hives.registry import open_hive
from aclscan.image import Image
from aclscan.places import LSA_ACCOUNT, REGISTRY_KEY, SAM_OBJECT, Place
from aclscan.samples import hives as samples
from aclscan.samples.regf import REG_BINARY, REG_NONE, REG_SZ, Key, Value, hive_bytes
from aclscan.scheduled_tasks import TASKS_DIR, task_file_places
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl
from tests.hives.conftest import HIVES, SAMPLES, SCENARIOS
from tests.hives.hivex_oracle import run_hivex

# Read each value with python3-hivex: stdin a JSON list of [key path, value name],
# stdout a JSON list of [type, hex] (null where hivex finds no such key or value).
_HIVEX_SCRIPT = r"""
import json, sys, hivex
h = hivex.Hivex(sys.argv[1])
out = []
for key_path, value_name in json.load(sys.stdin):
    node = h.root()
    for part in [p for p in key_path.split("\\") if p]:
        node = h.node_get_child(node, part)
        if node is None:
            break
    value = None if node is None else h.node_get_value(node, value_name)
    if value is None:
        out.append(None)
    else:
        kind, data = h.value_value(value)
        out.append([kind, data.hex()])
print(json.dumps(out))
"""


def hivex_values(hive: Path, locations: list[str]) -> list[tuple[int, bytes] | None]:
    """(type, data) hivex reads at each ``"<key path>|<value name>"``."""
    pairs = [location.split("|", 1) for location in locations]
    answers = run_hivex(_HIVEX_SCRIPT, hive, stdin=pairs)
    return [None if item is None else (item[0], bytes.fromhex(item[1])) for item in answers]


def named(place: Place) -> set[str]:
    """The SIDs a place names: its descriptor's and its direct one."""
    sids = {str(s) for s in SecurityDescriptor.from_bytes(place.descriptor).sids} if place.descriptor else set()
    return sids | ({place.sid} if place.sid else set())


# ---------------------------------------------------------------------------------------
# The scenario volumes


@pytest.fixture(scope="module")
def volume_places(tmp_path_factory):
    """``volume_places(name)``: (places, problems, {hive name: path of its bytes}, manifest)
    read by aclscan.hives.places and aclscan.scheduled_tasks from the committed volume."""
    directory = tmp_path_factory.mktemp("places")
    done = {}

    def of(name: str):
        if name not in done:
            manifest = json.loads((SAMPLES / f"{name}.json").read_text())
            places, problems, files = [], [], {}
            task_files = sorted({o["path"][len("task "):] for o in manifest["places"]["objects"]
                                 if o["hive"] == "task file"})
            with Image(SAMPLES / f"{name}.img.gz") as image:
                volume = image.open_volume(image.volumes()[0])
                for hive in HIVES:
                    files[hive] = directory / f"{name}-{hive}"
                    files[hive].write_bytes(volume.open_path(f"/Windows/System32/config/{hive}"))
                    found, wrong = hive_places(open_hive(files[hive]))
                    places += found
                    problems += wrong
                for task in task_files:
                    path = TASKS_DIR + task.replace("\\", "/")
                    found, wrong = task_file_places(volume.open_path(f"/{path}"), path)
                    places += found
                    problems += wrong
            done[name] = (places, problems, files, manifest)
        return done[name]

    return of


@pytest.mark.parametrize("name", SCENARIOS)
def test_places_per_sid_and_kind_equal_the_manifest(volume_places, name):
    places, problems, _files, manifest = volume_places(name)
    assert problems == []
    assert places, name
    found: dict[str, Counter] = {}
    for place in places:
        for sid in named(place):
            found.setdefault(sid, Counter())[place.kind] += 1
    expected = {sid: Counter({k: n for k, n in entry["kinds"].items() if k != REGISTRY_KEY})
                for sid, entry in manifest["places"]["by_sid"].items()}
    expected = {sid: counts for sid, counts in expected.items() if counts}
    assert {sid: dict(c) for sid, c in found.items()} == {sid: dict(c) for sid, c in expected.items()}


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_place_is_the_one_the_builder_wrote(volume_places, name):
    places, _problems, _files, manifest = volume_places(name)
    objects = manifest["places"]["objects"]
    assert objects
    got = Counter((p.kind, p.path, p.hive, tuple(sorted(named(p)))) for p in places)
    wanted = Counter((o["kind"], o["path"], o["hive"], tuple(sorted(o["sids"]))) for o in objects)
    assert got == wanted


# The first entry of a SAM object's table, where its descriptor lies (the entries' data
# starts after the table): user V 17 entries from 0, alias C 4 from 4, group C 4 from 0x14.
SAM_DESCRIPTOR_AT = {"Users": 17 * 12, "Aliases": 4 + 4 * 12, "Groups": 0x14 + 4 * 12}


def _same_as_hivex(places: list[Place], files: dict[str, Path]) -> int:
    compared = 0
    for hive, path in files.items():
        mine = [p for p in places if p.hive == hive]
        if not mine:
            continue
        for place, read in zip(mine, hivex_values(path, [p.location for p in mine])):
            assert read is not None, place.location
            kind, data = read
            if place.kind == SAM_OBJECT:
                container = place.location.split("\\")[-2]
                at = SAM_DESCRIPTOR_AT[container]
                assert kind == REG_BINARY and data[at : at + len(place.descriptor)] == place.descriptor, place.location
            else:
                assert kind in (REG_BINARY, REG_NONE) and data == place.descriptor, place.location
            compared += 1
    return compared


@pytest.mark.parametrize("name", ["av-service", "member-after", "clean"])
def test_descriptors_are_the_bytes_hivex_reads(volume_places, name):
    places, _problems, files, _manifest = volume_places(name)
    assert _same_as_hivex(places, files) == sum(1 for p in places if p.hive in HIVES)


def test_av_service_story(volume_places):
    places, _problems, _files, manifest = volume_places("av-service")
    old_service, old_admins = (f"S-1-5-21-191058668-193157475-1542849698-{rid}" for rid in (1003, 1004))
    by_path = {}
    for place in places:
        by_path.setdefault(place.path, []).append(place)
    assert old_admins in named(by_path["service AVScan"][0])
    assert old_admins in named(by_path["share AVLogs (C:\\ProgramData\\AVScan\\Logs)"][0])
    principal = [p for p in by_path["task \\AVScan\\Update"] if p.role == "principal"]
    assert [(p.sid, p.hive) for p in principal] == [(old_service, "task file")]
    launch = next(p for path, found in by_path.items() if path.endswith("(AVScan Scanner) LaunchPermission")
                  for p in found)
    assert old_admins in named(launch)
    assert manifest["places"]["by_sid"][old_admins]["kinds"][REGISTRY_KEY] >= 4


def test_member_after_story(volume_places):
    places, _problems, _files, _manifest = volume_places("member-after")
    ken, arianne = "S-1-5-21-191058668-193157475-1542849698-1000", "S-1-5-21-191058668-193157475-1542849698-1001"
    share = next(p for p in places if p.path == "share Finance (C:\\Data\\Finance)")
    printer = next(p for p in places if p.path == "printer Finance Laser")
    assert ken in named(share) and arianne in named(printer)
    assert share.location == "ControlSet001\\Services\\LanmanServer\\Shares\\Security|Finance"


# ---------------------------------------------------------------------------------------
# Real hives written by Windows (../shared/data/windows/hives)

# The README's accounts: SAM users, and which of them their own descriptor grants access.
REAL_SAM_USERS = {
    "studentpc8-SAM": ("S-1-5-21-4070822719-3404542230-2541167049", {"Administrator": 500, "Guest": 501,
                                                                       "gold_administrator": 1001}),
    "chitonsrv-SAM": ("S-1-5-21-3656677704-2377210397-1510584988", {
        "Administrador": 500, "Invitado": 501, "DefaultAccount": 503, "pepe.contento.secret": 1000,
        "maria.feliz.secret": 1001, "SuperSecretAdmin": 1004}),
    "regipy-SAM": ("S-1-5-21-1760460187-1592185332-161725925", {"Administrator": 500, "Guest": 501, "Preston": 1000}),
}
REAL_ADMINISTRATORS = {"studentpc8-SAM": "Administrators", "chitonsrv-SAM": "Administradores",
                       "regipy-SAM": "Administrators"}  # CHITONSRV is a Spanish Windows


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(REAL_SAM_USERS))
def test_real_sam_objects(real_hive, name):
    machine, users = REAL_SAM_USERS[name]
    path = real_hive(name)
    places, problems = sam_object_places(open_hive(path))
    assert problems == [] and places
    user_places = {p.path[len("SAM user "):]: p for p in places if p.path.startswith("SAM user ")}
    assert set(user_places) == set(users)
    for user, rid in users.items():
        if rid != 501:  # Windows lets every account but Guest read its own object
            assert f"{machine}-{rid}" in named(user_places[user]), user
    assert f"SAM alias {REAL_ADMINISTRATORS[name]}" in {p.path for p in places}
    assert all(p.kind == SAM_OBJECT and p.hive == "SAM" for p in places)
    assert _same_as_hivex(places, {"SAM": path}) == len(places)


REAL_LSA = {
    "studentpc8-SECURITY": 13,
    "regipy-SECURITY": 13,
    "chitonsrv-SECURITY": None,
}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(REAL_LSA))
def test_real_lsa_account_descriptors(real_hive, name):
    path = real_hive(name)
    places, problems = lsa_account_places(open_hive(path))
    assert problems == [] and places
    if REAL_LSA[name] is not None:
        assert len(places) == REAL_LSA[name]
    if name == "studentpc8-SECURITY":
        assert "LSA account S-1-5-80-0" in {p.path for p in places}
    for place in places:
        assert place.kind == LSA_ACCOUNT and place.location.endswith("\\SecDesc|")
        assert {"S-1-5-32-544", "S-1-1-0"} <= named(place)  # Administrators manage it, Everyone reads it
    assert _same_as_hivex(places, {"SECURITY": path}) == len(places)


@pytest.mark.shared
def test_real_system_service_descriptors(real_hive):
    path = real_hive("regipy-SYSTEM_WIN_10_1709")
    hive = open_hive(path)
    places, problems = system_places(hive)
    assert problems == [] and places
    services = {p.path for p in places if p.kind == "service"}
    assert "service Appinfo" in services
    assert all(p.location.startswith("ControlSet001\\Services\\") for p in places if p.kind == "service")
    assert _same_as_hivex(places, {"SYSTEM": path}) == len(places)


# ---------------------------------------------------------------------------------------
# Broken values: a problem each, the rest still read

GOOD = from_sddl("O:BAG:SYD:(A;;FA;;;BA)").to_bytes()


def _system(tmp_path: Path, services: list[Key], shares: list[Value], printers: list[Key]) -> Path:
    root = Key("ROOT", subkeys=[
        Key("ControlSet001", subkeys=[
            Key("Control", subkeys=[Key("Print", subkeys=[Key("Printers", subkeys=printers)])]),
            Key("Services", subkeys=services + [Key("LanmanServer", subkeys=[
                Key("Shares", [Value(v.name, 7, [f"Path=C:\\{v.name}"]) for v in shares],
                    [Key("Security", shares)])])]),
        ]),
        Key("Select", [Value("Current", 4, 1)]),
    ])
    path = tmp_path / "SYSTEM"
    path.write_bytes(hive_bytes(root, name="SYSTEM"))
    return path


def test_bad_values_are_problems_and_the_rest_is_read(tmp_path):
    services = [
        Key("Good", subkeys=[Key("Security", [Value("Security", REG_BINARY, GOOD)])]),
        Key("Text", subkeys=[Key("Security", [Value("Security", REG_SZ, "O:BAG:SY")])]),
        Key("Short", subkeys=[Key("Security", [Value("Security", REG_BINARY, GOOD[:30])])]),
    ]
    shares = [Value("Fine", REG_BINARY, GOOD), Value("Junk", REG_BINARY, b"\x07" * 40)]
    printers = [Key("Empty", [Value("Security", REG_BINARY, b"")]), Key("Ok", [Value("Security", REG_BINARY, GOOD)])]
    hive = open_hive(_system(tmp_path, services, shares, printers))
    places, problems = system_places(hive)
    assert sorted(p.path for p in places) == ["printer Ok", "service Good", "share Fine (C:\\Fine)"]
    where = sorted(p.where for p in problems)
    assert where == [
        "SYSTEM ControlSet001\\Control\\Print\\Printers\\Empty|Security",
        "SYSTEM ControlSet001\\Services\\LanmanServer\\Shares\\Security|Junk",
        "SYSTEM ControlSet001\\Services\\Short\\Security|Security",
        "SYSTEM ControlSet001\\Services\\Text\\Security|Security",
    ]
    reasons = {p.where.split("\\")[-2]: p.reason for p in problems}
    assert "type 1" in reasons["Text"] and "outside the 30-byte descriptor" in reasons["Short"]
    assert {p.kind for p in problems} == {"service", "share", "printer"}
    # each reader alone gives its share of the same
    assert [p.path for p in service_places(hive)[0]] == ["service Good"]
    assert [p.path for p in share_places(hive)[0]] == ["share Fine (C:\\Fine)"]
    assert [p.path for p in printer_places(hive)[0]] == ["printer Ok"]


def test_a_missing_control_set_is_a_problem(tmp_path):
    root = Key("ROOT", subkeys=[Key("Select", [Value("Current", 4, 7)]), Key("ControlSet001")])
    hive = open_hive(hive_bytes(root, name="SYSTEM"))
    places, problems = system_places(hive)
    assert places == [] and len(problems) == 3
    assert all("ControlSet007" in p.reason for p in problems)


def test_software_bad_values(tmp_path):
    root = samples.software_hive(
        tasks=[samples.ScheduledTask("{1}", "\\Good", GOOD), samples.ScheduledTask("{2}", "\\Bad", b"\x01\x00")],
        appids=[samples.AppId("{A}", "App", launch=GOOD, access=GOOD[:-3])],
        ole={"DefaultLaunchPermission": GOOD},
    )
    root.find("Microsoft\\Ole").values.append(Value("MachineAccessRestriction", REG_SZ, "D:"))
    hive = open_hive(hive_bytes(root, name=samples.HIVE_NAMES["SOFTWARE"]))
    tasks, task_problems = task_cache_places(hive)
    assert [p.path for p in tasks] == ["task \\Good"]
    assert [p.where for p in task_problems] == [
        "SOFTWARE Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tasks\\{2}|SD"]
    dcom, dcom_problems = dcom_places(hive)
    assert sorted(p.path for p in dcom) == ["dcom AppID {A} (App) LaunchPermission", "dcom Ole DefaultLaunchPermission"]
    assert sorted(p.where for p in dcom_problems) == ["SOFTWARE Classes\\AppID\\{A}|AccessPermission",
                                                       "SOFTWARE Microsoft\\Ole|MachineAccessRestriction"]


def test_sam_and_lsa_bad_values():
    tree = samples.sam_hive("S-1-5-21-1-2-3", [samples.SamUser(500, "Administrator"), samples.SamUser(1000, "Eve")])
    users = tree.find("SAM\\Domains\\Account\\Users")
    eve = users.subkey("000003E8")
    eve.values[1] = Value("V", REG_BINARY, eve.value("V").raw[:100])  # the table cut short
    admin = users.subkey("000001F4")
    raw = bytearray(admin.value("V").raw)
    raw[17 * 12] = 9  # the descriptor's revision
    admin.values[1] = Value("V", REG_BINARY, bytes(raw))
    hive = open_hive(hive_bytes(tree, name=samples.HIVE_NAMES["SAM"]))
    places, problems = sam_object_places(hive)
    assert not any(p.path.startswith("SAM user") for p in places)
    assert any(p.path == "SAM alias Administrators" for p in places)
    assert sorted(p.where for p in problems) == ["SAM SAM\\Domains\\Account\\Users\\000001F4|V",
                                                 "SAM SAM\\Domains\\Account\\Users\\000003E8|V"]

    security = samples.security_hive("PC", "S-1-5-21-1-2-3", accounts={"S-1-5-32-544": samples.LsaAccount()})
    secdesc = security.find("Policy\\Accounts\\S-1-5-32-544\\SecDesc")
    secdesc.values[0] = Value("", REG_NONE, samples.LSA_ACCOUNT_DESCRIPTOR[:25])
    places, problems = lsa_account_places(open_hive(hive_bytes(security, name=samples.HIVE_NAMES["SECURITY"])))
    assert places == [] and [p.where for p in problems] == ["SECURITY Policy\\Accounts\\S-1-5-32-544\\SecDesc|"]


def test_other_hives_have_no_value_places():
    user = open_hive(hive_bytes(Key("ROOT", subkeys=[Key("Software")]), name="ntuser.dat"))
    assert hive_places(user) == ([], [])


@pytest.mark.skipif(not shutil.which("hivexget"), reason="hivex (Debian package libhivex-bin) is not installed")
def test_hivexget_agrees_on_a_share_path(volume_places):
    _places, _problems, files, _manifest = volume_places("member-after")
    got = subprocess.run(["hivexget", str(files["SYSTEM"]), "\\ControlSet001\\Services\\LanmanServer\\Shares",
                          "Finance"], capture_output=True, text=True, check=True).stdout
    assert "Path=C:\\Data\\Finance" in got
