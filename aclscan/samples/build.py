"""Build a scenario (aclscan.samples.scenarios) as a real NTFS volume with real
hives, and write its manifest.

The volume is made with mkntfs and filled through ntfs-3g: every directory and
file gets its final descriptor (its explicit part plus what it inherits, as
Windows computes it) through ``system.ntfs_acl``; the registry hives go to
``Windows/System32/config``. The manifest is computed from the scenario's
definition and the descriptors the builder wrote, never by scanning.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from xml.sax.saxutils import escape

from aclscan import places as kinds
from aclscan.accounts import wellknown
from aclscan.errors import InvalidScenario
from aclscan.fix import ntfs3g
from aclscan.samples import hives, regf
from aclscan.classify import PLACEHOLDER, RESOLVED, TRANSIENT
from aclscan.samples.scenarios import OLE_DEFAULTS, Node, Scenario, Task, UserHive
from aclscan.sd import SID, SecurityDescriptor
from aclscan.sd.inherit import child_descriptor
from aclscan.sd.sddl import from_sddl, to_sddl

MANIFEST_VERSION = 1
MAX_COMPRESSED = 2_000_000  # bytes: the repository's limit per sample volume
HIVE_DIR = "Windows/System32/config"
HIVE_SDDL = "O:SYG:SYD:"  # hives inherit the config folder's protected ACL


@dataclass(frozen=True)
class Built:
    image: Path  # the compressed volume
    manifest: Path
    extras: tuple[Path, ...]  # domain exports and the like


def final_descriptors(nodes: list[Node]) -> dict[str, SecurityDescriptor]:
    """Each node's descriptor as Windows would have written it: explicit part plus
    inheritance from its parent (nodes come parents first)."""
    result: dict[str, SecurityDescriptor] = {}
    for node in nodes:
        explicit = from_sddl(node.sddl)
        if node.path == "":
            result[node.path] = explicit
            continue
        parent = node.path.rpartition("/")[0]
        if parent not in result:
            raise InvalidScenario(f"scenario node {node.path!r} comes before its parent {parent!r}")
        result[node.path] = child_descriptor(result[parent], explicit, is_dir=node.is_dir)
    return result


@dataclass(frozen=True)
class HiveFile:
    """A hive the builder writes: where on the volume, what a place reader calls it
    (``SOFTWARE``, ``NTUSER.DAT of S-1-...``), its key tree (every key's descriptor is
    its ``security`` or, where None, ``default_security``) and its bytes."""

    path: str
    label: str
    tree: regf.Key
    default_security: bytes
    data: bytes


def _sd(sddl: str) -> bytes:
    return from_sddl(sddl).to_bytes()


def apply_key_acls(root: regf.Key, acls: dict[str, str], default: bytes) -> None:
    """Give each key of ``acls`` (path below the root -> SDDL of its explicit part) its
    descriptor, and every key below one what it inherits (CI ACEs, as Windows propagates
    them); other keys keep the hive's ``default``."""

    def visit(key: regf.Key, path: str, parent: SecurityDescriptor, below_explicit: bool) -> None:
        explicit = acls.get(path)
        descriptor = parent
        if explicit is not None:
            descriptor = child_descriptor(parent, from_sddl(explicit), is_dir=True)
        elif below_explicit:
            own = from_sddl(f"O:{parent.owner}G:{parent.group}D:")
            descriptor = child_descriptor(parent, own, is_dir=True)
        if explicit is not None or below_explicit:
            key.security = descriptor.to_bytes()
        for child in key.subkeys:
            visit(child, f"{path}\\{child.name}" if path else child.name, descriptor,
                  below_explicit or explicit is not None)

    visit(root, "", SecurityDescriptor.from_bytes(default), False)


def _keys_with_values(keys) -> dict[str, list[regf.Value]]:
    return {key.path: [regf.Value(name, regf.REG_SZ, text) for name, text in key.values] for key in keys}


def _hive(path: str, label: str, tree: regf.Key, name: str, default: bytes = regf.DEFAULT_SECURITY) -> HiveFile:
    buffer = io.BytesIO()
    regf.write_hive(tree, buffer, name=name, security=default)
    return HiveFile(path, label, tree, default, buffer.getvalue())


def user_hive_files(scenario: Scenario) -> list[HiveFile]:
    """Each profile's NTUSER.DAT (and UsrClass.dat), its keys' ACLs set."""
    out = []
    for user in scenario.user_hives:
        base = f"Users/{user.folder}"
        acls = {"": user.root_sddl} | {key.path: key.sddl for key in user.keys}
        tree = hives.user_hive(_keys_with_values(user.keys))
        apply_key_acls(tree, acls, _sd(user.root_sddl))
        out.append(_hive(f"{base}/NTUSER.DAT", f"NTUSER.DAT of {user.sid}", tree,
                         f"\\??\\C:\\Users\\{user.folder}\\ntuser.dat", _sd(user.root_sddl)))
        if user.usrclass:
            tree = hives.user_hive({"Local Settings\\Software\\Microsoft\\Windows\\Shell\\BagMRU": [],
                                    "CLSID": []})
            apply_key_acls(tree, {"": user.root_sddl}, _sd(user.root_sddl))
            out.append(_hive(f"{base}/{USRCLASS_DIR}/UsrClass.dat", f"UsrClass.dat of {user.sid}", tree,
                             f"\\??\\C:\\Users\\{user.folder}\\AppData\\Local\\Microsoft\\Windows\\UsrClass.dat",
                             _sd(user.root_sddl)))
    return out


def hive_files(scenario: Scenario) -> dict[str, bytes]:
    """SAM, SECURITY, SYSTEM and SOFTWARE of the scenario's machine, as hive bytes."""
    return {name: hive.data for name, hive in machine_hives(scenario).items()}


def machine_hives(scenario: Scenario) -> dict[str, HiveFile]:
    """SAM, SECURITY, SYSTEM and SOFTWARE of the scenario's machine."""
    users = [hives.SamUser(a.rid, a.name, full_name=a.full_name) for a in scenario.accounts if a.kind == "user"]
    aliases = [hives.SamAlias(a.rid, a.name, list(a.members)) for a in scenario.accounts if a.kind == "alias"]
    builtin = [hives.SamAlias(a.rid, a.name, list(a.members)) for a in scenario.builtin_aliases]
    lsa = {sid: hives.LsaAccount(rights=frozenset(r for r in names if r.endswith("Right")),
                                 privileges=frozenset(p for p in names if p.endswith("Privilege")))
           for sid, names in lsa_rights(scenario).items()}
    domain_name, domain_sid = scenario.primary_domain or (None, None)
    trees = {
        "SAM": hives.sam_hive(scenario.machine_sid, users, aliases, builtin, computer_name=scenario.computer),
        "SECURITY": hives.security_hive(scenario.computer, scenario.machine_sid, primary_domain_name=domain_name,
                                        primary_domain_sid=domain_sid, accounts=lsa),
        "SYSTEM": hives.system_hive(
            scenario.computer,
            [hives.Service(s.name, object_name=s.object_name, image_path=s.image_path,
                           security=_sd(s.sddl) if s.sddl else None) for s in scenario.services],
            product_type=scenario.product_type,
            shares=[hives.Share(s.name, s.path, _sd(s.sddl)) for s in scenario.shares],
            printers=[hives.Printer(p.name, _sd(p.sddl)) for p in scenario.printers],
        ),
        "SOFTWARE": hives.software_hive(
            [hives.Profile(sid, path) for sid, path in scenario.profiles.items()],
            tasks=[hives.ScheduledTask(t.guid, t.path, _sd(t.cache_sddl), t.author) for t in scenario.tasks],
            appids=[hives.AppId(a.guid, a.name, _sd(a.launch_sddl), _sd(a.access_sddl) if a.access_sddl else None)
                    for a in scenario.appids],
            ole={name: _sd(sddl) for name, sddl in OLE_DEFAULTS.items()} if scenario.ole_defaults else None,
        ),
    }
    software = trees["SOFTWARE"]
    for path, values in _keys_with_values(scenario.software_keys).items():
        software.ensure(path).values.extend(values)
    apply_key_acls(software, {key.path: key.sddl for key in scenario.software_keys}, regf.DEFAULT_SECURITY)
    return {name: _hive(f"{HIVE_DIR}/{name}", name, tree, hives.HIVE_NAMES[name]) for name, tree in trees.items()}


def lsa_rights(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    """Policy\\Accounts: a fresh Windows' entries plus the scenario's own, by SID."""
    merged: dict[str, set[str]] = {}
    for sid, account in hives.default_lsa_accounts(scenario.machine_sid).items():
        merged.setdefault(sid, set()).update(account.rights, account.privileges)
    for sid, names in scenario.lsa_rights.items():
        merged.setdefault(sid, set()).update(names)
    return {sid: tuple(sorted(names)) for sid, names in merged.items()}


# The profiles Windows lists for its service accounts beside the users' (the
# SOFTWARE hive writer adds them).
SYSTEM_PROFILES = ("S-1-5-18", "S-1-5-19", "S-1-5-20")


TASKS_DIR = "Windows/System32/Tasks"
TASKS_SDDL = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
USRCLASS_DIR = "AppData/Local/Microsoft/Windows"


def task_xml(task: Task) -> bytes:
    """The task's file as the Task Scheduler writes it: UTF-16 LE with a BOM, CRLF."""
    command, _, arguments = task.command.partition(" -")
    lines = [
        '<?xml version="1.0" encoding="UTF-16"?>',
        '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">',
        "  <RegistrationInfo>",
        f"    <Author>{escape(task.author)}</Author>",
        f"    <URI>{escape(task.path)}</URI>",
        f"    <SecurityDescriptor>{escape(task.sddl)}</SecurityDescriptor>",
        "  </RegistrationInfo>",
        "  <Triggers>",
        "    <CalendarTrigger>",
        "      <StartBoundary>2023-06-01T03:00:00</StartBoundary>",
        "      <Enabled>true</Enabled>",
        "      <ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>",
        "    </CalendarTrigger>",
        "  </Triggers>",
        "  <Principals>",
        '    <Principal id="Author">',
        f"      <UserId>{escape(task.user_id)}</UserId>",
        "      <LogonType>Password</LogonType>",
        "      <RunLevel>HighestAvailable</RunLevel>",
        "    </Principal>",
        "  </Principals>",
        "  <Settings>",
        "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
        "    <Enabled>true</Enabled>",
        "  </Settings>",
        '  <Actions Context="Author">',
        "    <Exec>",
        f"      <Command>{escape(command)}</Command>",
    ]
    if arguments:
        lines.append(f"      <Arguments>-{escape(arguments)}</Arguments>")
    lines += ["    </Exec>", "  </Actions>", "</Task>", ""]
    return b"\xff\xfe" + "\r\n".join(lines).encode("utf-16-le")


def _task_nodes(scenario: Scenario) -> list[Node]:
    if not scenario.tasks:
        return []
    nodes = [Node(TASKS_DIR, True, TASKS_SDDL)]
    made = {TASKS_DIR}
    for task in scenario.tasks:
        parts = task.path.strip("\\").split("\\")
        for depth in range(1, len(parts)):
            folder = "/".join([TASKS_DIR, *parts[:depth]])
            if folder not in made:
                made.add(folder)
                nodes.append(Node(folder, True, "O:BAG:SYD:"))
        nodes.append(Node("/".join([TASKS_DIR, *parts]), False, "O:BAG:SYD:", task_xml(task)))
    return nodes


def _user_hive_nodes(user: UserHive, files: dict[str, HiveFile]) -> list[Node]:
    base = f"Users/{user.folder}"
    owner = f"O:{user.sid}G:{user.sid}D:"
    nodes = [Node(f"{base}/NTUSER.DAT", False, owner, files[f"{base}/NTUSER.DAT"].data)]
    if user.usrclass:
        folder = base
        for part in USRCLASS_DIR.split("/"):
            folder = f"{folder}/{part}"
            nodes.append(Node(folder, True, owner))
        nodes.append(Node(f"{folder}/UsrClass.dat", False, owner, files[f"{folder}/UsrClass.dat"].data))
    return nodes


def all_hives(scenario: Scenario) -> list[HiveFile]:
    """Every hive the volume gets: the machine's four, then the profiles' user hives."""
    return list(machine_hives(scenario).values()) + user_hive_files(scenario)


def all_nodes(scenario: Scenario, hive_list: list[HiveFile]) -> list[Node]:
    """The scenario's files and folders, its task files, its user hives, then the machine hives."""
    by_path = {hive.path: hive for hive in hive_list}
    nodes = list(scenario.nodes) + _task_nodes(scenario)
    for user in scenario.user_hives:
        nodes += _user_hive_nodes(user, by_path)
    return nodes + [Node(hive.path, False, HIVE_SDDL, hive.data) for hive in hive_list
                    if hive.path.startswith(HIVE_DIR)] + _regback_nodes(scenario)


def build(scenario: Scenario, out_dir: str | os.PathLike) -> Built:
    """Make ``OUT/NAME.img.gz`` and ``OUT/NAME.json`` (and domain exports)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hive_list = all_hives(scenario)
    nodes = all_nodes(scenario, hive_list)
    descriptors = final_descriptors(nodes)
    manifest_of(scenario, nodes, descriptors, [], hive_list)  # an incomplete definition fails before any work
    with tempfile.TemporaryDirectory(prefix="aclscan-sample-") as scratch:
        image = Path(scratch) / f"{scenario.name}.img"
        ntfs3g.make_image(image, scenario.size, label=scenario.computer)
        with ntfs3g.mounted(image) as mount:
            for node in nodes:
                target = mount / node.path if node.path else mount
                if node.path and node.is_dir:
                    target.mkdir()
                elif node.path:
                    target.write_bytes(node.data)
                ntfs3g.set_ntfs_acl(target, descriptors[node.path].to_bytes())
        packed = out / f"{scenario.name}.img.gz"
        with open(image, "rb") as src, gzip.GzipFile(packed, "wb", compresslevel=9, mtime=0) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    if packed.stat().st_size > MAX_COMPRESSED:
        raise InvalidScenario(f"{packed} is {packed.stat().st_size} bytes, over {MAX_COMPRESSED}")
    extras = write_domain_exports(scenario, out) + write_master_sam(scenario, out)
    manifest = out / f"{scenario.name}.json"
    manifest.write_text(json.dumps(manifest_of(scenario, nodes, descriptors, extras, hive_list), indent=2,
                                   ensure_ascii=False) + "\n")
    return Built(packed, manifest, tuple(extras))


# --- the manifest ---------------------------------------------------------------

def well_known_verdict(sid: str) -> str | None:
    """The verdict of SIDs that are never a machine's or domain's accounts (None
    for those the scenario's truth must state), by the catalogue's categories."""
    category = wellknown.category(sid)
    if category in ("placeholder", "capability", "app_container", "label"):
        return PLACEHOLDER
    if category == "logon":
        return TRANSIENT
    if category in ("domain_relative", "unknown"):
        return None
    return RESOLVED


def sids_of(descriptor: SecurityDescriptor) -> set[str]:
    return {str(s) for s in descriptor.sids}


def hive_references(scenario: Scenario) -> dict[str, list[str]]:
    """SIDs the hives name, and where."""
    refs: dict[str, list[str]] = {}

    def add(sid: str, where: str) -> None:
        refs.setdefault(sid, []).append(where)

    for account in scenario.accounts + scenario.builtin_aliases:
        for member in account.members:
            add(member, f"SAM alias {account.name}")
    for sid in lsa_rights(scenario):
        add(sid, "SECURITY Policy\\Accounts")
    for sid in list(scenario.profiles) + [s for s in SYSTEM_PROFILES if s not in scenario.profiles]:
        add(sid, "SOFTWARE ProfileList")
    for account in scenario.accounts:
        if account.rid >= 1000 or account.rid in (500, 501):
            add(f"{scenario.machine_sid}-{account.rid}", "SAM account")
    return refs


def _places(scenario: Scenario, hive_list: list[HiveFile]) -> tuple[list[dict], dict[str, dict]]:
    """What the builder wrote, as places: (the value and task-file places, each with the
    SIDs it names; per hive, its key count and the keys naming each SID)."""
    objects: list[dict] = []

    def add(kind: str, path: str, hive: str, descriptor: bytes | None = None, sid: str | None = None) -> None:
        sids = sids_of(SecurityDescriptor.from_bytes(descriptor)) if descriptor is not None else set()
        if sid is not None:
            sids.add(sid)
        objects.append({"kind": kind, "path": path, "hive": hive, "sids": sorted(sids, key=_sid_key)})

    for service in scenario.services:
        if service.sddl:
            add(kinds.SERVICE, f"service {service.name}", "SYSTEM", _sd(service.sddl))
    for share in scenario.shares:
        add(kinds.SHARE, f"share {share.name} ({share.path})", "SYSTEM", _sd(share.sddl))
    for printer in scenario.printers:
        add(kinds.PRINTER, f"printer {printer.name}", "SYSTEM", _sd(printer.sddl))
    for task in scenario.tasks:
        add(kinds.TASK, f"task {task.path}", "SOFTWARE", _sd(task.cache_sddl))
        add(kinds.TASK, f"task {task.path}", "task file", _sd(task.sddl))
        add(kinds.TASK, f"task {task.path}", "task file", sid=task.user_id)
    for appid in scenario.appids:
        add(kinds.DCOM, f"dcom AppID {appid.guid} ({appid.name}) LaunchPermission", "SOFTWARE", _sd(appid.launch_sddl))
        if appid.access_sddl:
            add(kinds.DCOM, f"dcom AppID {appid.guid} ({appid.name}) AccessPermission", "SOFTWARE",
                _sd(appid.access_sddl))
    if scenario.ole_defaults:
        for name, sddl in OLE_DEFAULTS.items():
            add(kinds.DCOM, f"dcom Ole {name}", "SOFTWARE", _sd(sddl))
    for account in scenario.accounts:
        if account.kind == "user":
            add(kinds.SAM_OBJECT, f"SAM user {account.name}", "SAM",
                hives.user_descriptor(scenario.machine_sid, account.rid))
    add(kinds.SAM_OBJECT, "SAM group None", "SAM", hives.GROUP_DESCRIPTOR)
    for account in [a for a in scenario.accounts if a.kind == "alias"] + list(scenario.builtin_aliases):
        add(kinds.SAM_OBJECT, f"SAM alias {account.name}", "SAM", hives.alias_descriptor(account.rid))
    for sid in lsa_rights(scenario):
        add(kinds.LSA_ACCOUNT, f"LSA account {sid}", "SECURITY", hives.LSA_ACCOUNT_DESCRIPTOR)

    keys: dict[str, dict] = {}
    for hive in hive_list:
        count, by_sid = 0, {}
        for _path, key in hive.tree.walk():
            count += 1
            for sid in sids_of(SecurityDescriptor.from_bytes(key.security or hive.default_security)):
                by_sid[sid] = by_sid.get(sid, 0) + 1
        keys[hive.path] = {"hive": hive.label, "keys": count,
                           "by_sid": {sid: by_sid[sid] for sid in sorted(by_sid, key=_sid_key)}}
    return objects, keys


def places_of(scenario: Scenario, hive_list: list[HiveFile]) -> dict:
    """The manifest's ``places``: every place other than a file that the builder wrote,
    counted per SID and kind (see sample_volumes/README.md)."""
    objects, keys = _places(scenario, hive_list)
    counts: dict[str, dict[str, int]] = {}
    for hive in keys.values():
        for sid, n in hive["by_sid"].items():
            counts.setdefault(sid, {}).setdefault(kinds.REGISTRY_KEY, 0)
            counts[sid][kinds.REGISTRY_KEY] += n
    for place in objects:
        for sid in place["sids"]:
            counts.setdefault(sid, {}).setdefault(place["kind"], 0)
            counts[sid][place["kind"]] += 1
    by_sid = {}
    for sid in sorted(counts, key=_sid_key):
        verdict = scenario.truth[sid].verdict if sid in scenario.truth else well_known_verdict(sid)
        if verdict is None:
            raise InvalidScenario(f"scenario {scenario.name}: no expected verdict for {sid}, named by a place")
        by_sid[sid] = {"verdict": verdict,
                       "kinds": {kind: counts[sid][kind] for kind in kinds.PLACE_KINDS if kind in counts[sid]}}
    return {
        "counted": "places other than files the builder wrote: every key of every hive (registry_key), and "
                   "the descriptors kept in values and task files; a place counts once for each SID its "
                   "descriptor (owner, group, DACL, SACL) or its direct reference names",
        "by_sid": by_sid,
        "hives": keys,
        "objects": objects,
    }


def manifest_of(scenario: Scenario, nodes: list[Node], descriptors: dict[str, SecurityDescriptor],
                extras: list[Path], hive_list: list[HiveFile] | None = None) -> dict:
    files: dict[str, int] = {}
    distinct: dict[str, set[bytes]] = {}
    for node in nodes:
        descriptor = descriptors[node.path]
        raw = descriptor.to_bytes()
        for sid in sids_of(descriptor):
            files[sid] = files.get(sid, 0) + 1
            distinct.setdefault(sid, set()).add(raw)
    hive_refs = hive_references(scenario)
    expected = {}
    for sid in sorted(set(files) | set(hive_refs), key=_sid_key):
        truth = scenario.truth.get(sid)
        if truth is None:
            verdict = well_known_verdict(sid)
            if verdict is None:
                raise InvalidScenario(f"scenario {scenario.name}: no expected verdict for {sid}")
            entry = {"verdict": verdict}
        else:
            entry = {"verdict": truth.verdict, "account": truth.account, "mapped_sid": truth.mapped_sid}
            if truth.note:
                entry["note"] = truth.note
            if truth.confidence:
                entry["confidence"] = truth.confidence
        entry["files"] = files.get(sid, 0)
        entry["descriptors"] = len(distinct.get(sid, ()))
        if sid in hive_refs:
            entry["hive_references"] = hive_refs[sid]
        expected[sid] = entry
    return {
        "manifest_version": MANIFEST_VERSION,
        "scenario": scenario.name,
        "title": scenario.title,
        "whitepaper": scenario.whitepaper,
        "image": f"{scenario.name}.img.gz",
        "computer": scenario.computer,
        "product_type": scenario.product_type,
        "machine_sid": scenario.machine_sid,
        "previous_machine_sids": list(scenario.previous_machine_sids),
        "primary_domain": ({"name": scenario.primary_domain[0], "sid": scenario.primary_domain[1]}
                           if scenario.primary_domain else None),
        "accounts": [{"rid": a.rid, "name": a.name, "kind": a.kind, "sid": f"{scenario.machine_sid}-{a.rid}",
                      "members": list(a.members)} for a in scenario.accounts],
        "builtin_aliases": [{"rid": a.rid, "name": a.name, "sid": f"S-1-5-32-{a.rid}", "members": list(a.members)}
                            for a in scenario.builtin_aliases],
        "services": [{"name": s.name, "object_name": s.object_name} for s in scenario.services],
        "lsa_rights": {sid: list(names) for sid, names in lsa_rights(scenario).items()},
        "profiles": scenario.profiles,
        "hives": [f"{HIVE_DIR}/{name}" for name in ("SAM", "SECURITY", "SYSTEM", "SOFTWARE")],
        "user_hives": {hive.path: hive.label for hive in (hive_list or all_hives(scenario))
                       if not hive.path.startswith(HIVE_DIR)},
        "counted": "files and directories the scenario made (NTFS metadata files $MFT..$Extend excluded), "
                   "the root directory and the four hives included",
        "files_made": len(nodes),
        "distinct_descriptors": len({d.to_bytes() for d in descriptors.values()}),
        "expected": expected,
        "readiness": scenario.readiness,
        "fleet": scenario.fleet,
        "domain_exports": [p.name for p in extras if p.suffix in (".ldif", ".csv")],
        "history": [p.name for p in extras if p.name.endswith(".master-SAM")],
        # History the volume keeps of itself (aclscan reads it without --history).
        "image_history": [REGBACK_SAM] if scenario.regback and scenario.master_accounts else [],
        "deleted_domain_users": list(scenario.deleted_domain_users),
        "paths": {node.path or "/": to_sddl(descriptors[node.path]) for node in nodes
                  if node.is_dir or not _bulk(node)},
        "places": places_of(scenario, all_hives(scenario) if hive_list is None else hive_list),
    }


def _bulk(node: Node) -> bool:
    """Files of the bulk folders are many; the manifest lists directories and the rest."""
    return node.path.count("/") >= 2 and node.path.rsplit("/", 1)[0].startswith(("Data/", "Users/"))


def _sid_key(sid: str):
    return [int(p) if p.isdigit() else 0 for p in sid.split("-")[1:]]


# --- domain exports ------------------------------------------------------------

def _dn(name: str, export: dict, container: str = "CN=Users") -> str:
    dc = ",".join(f"DC={part}" for part in export["dns"].split("."))
    return f"CN={name},{container},{dc}"


REGBACK_SAM = f"{HIVE_DIR}/RegBack/SAM"


def master_sam(scenario: Scenario) -> bytes | None:
    """The master's SAM from before the SID change, where the scenario has one."""
    if not scenario.master_accounts or not scenario.previous_machine_sids:
        return None
    master = scenario.previous_machine_sids[0]
    users = [hives.SamUser(a.rid, a.name, full_name=a.full_name) for a in scenario.master_accounts if a.kind == "user"]
    aliases = [hives.SamAlias(a.rid, a.name, list(a.members)) for a in scenario.master_accounts if a.kind == "alias"]
    return regf.hive_bytes(hives.sam_hive(master, users, aliases), name=hives.HIVE_NAMES["SAM"])


def write_master_sam(scenario: Scenario, out: Path) -> list[Path]:
    data = master_sam(scenario)
    if data is None:
        return []
    path = out / f"{scenario.name}.master-SAM"
    path.write_bytes(data)
    return [path]


def _regback_nodes(scenario: Scenario) -> list[Node]:
    """RegBack/SAM: the master's SAM, where the image keeps its own backup of it."""
    data = master_sam(scenario) if scenario.regback else None
    if data is None:
        return []
    return [Node(f"{HIVE_DIR}/RegBack", True, HIVE_SDDL), Node(REGBACK_SAM, False, HIVE_SDDL, data)]


def write_domain_exports(scenario: Scenario, out: Path) -> list[Path]:
    """The domain as ldifde exports it (objectSid and sIDHistory base64) and as
    ``Get-ADUser -Properties SID,SIDHistory | Export-Csv`` writes it."""
    export = scenario.domain_export
    if not export:
        return []
    domain_sid = export["sid"]
    ldif = io.StringIO()
    for user in export["users"]:
        sid = SID.from_string(f"{domain_sid}-{user['rid']}")
        ldif.write(f"dn: {_dn(user['name'], export)}\nchangetype: add\nobjectClass: top\nobjectClass: person\n"
                   f"objectClass: organizationalPerson\nobjectClass: user\ncn: {user['name']}\n"
                   f"sAMAccountName: {user['name']}\n"
                   f"objectSid:: {base64.b64encode(sid.to_bytes()).decode()}\n")
        for old in user["sid_history"]:
            ldif.write(f"sIDHistory:: {base64.b64encode(SID.from_string(old).to_bytes()).decode()}\n")
        ldif.write("\n")
    for group in export["groups"]:
        sid = SID.from_string(f"{domain_sid}-{group['rid']}")
        ldif.write(f"dn: {_dn(group['name'], export)}\nchangetype: add\nobjectClass: top\nobjectClass: group\n"
                   f"cn: {group['name']}\nsAMAccountName: {group['name']}\n"
                   f"objectSid:: {base64.b64encode(sid.to_bytes()).decode()}\n\n")
    ldif_path = out / f"{scenario.name}.ldif"
    ldif_path.write_text(ldif.getvalue(), newline="\r\n")

    rows = io.StringIO()
    rows.write("#TYPE Microsoft.ActiveDirectory.Management.ADUser\r\n")
    writer = csv.writer(rows, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(["DistinguishedName", "Enabled", "GivenName", "Name", "ObjectClass", "ObjectGUID",
                     "SamAccountName", "SID", "SIDHistory", "Surname", "UserPrincipalName"])
    for user in export["users"]:
        writer.writerow([_dn(user["name"], export), "True", user["name"].title(), user["name"], "user",
                         _guid(domain_sid, user["rid"]), user["name"], f"{domain_sid}-{user['rid']}",
                         " ".join(user["sid_history"]), "", f"{user['name']}@{export['dns']}"])
    csv_path = out / f"{scenario.name}.csv"
    csv_path.write_bytes(rows.getvalue().encode("utf-8"))
    return [ldif_path, csv_path]


def _guid(domain_sid: str, rid: int) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{domain_sid}-{rid}"))
