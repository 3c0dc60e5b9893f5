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

from aclscan.accounts import wellknown
from aclscan.errors import InvalidScenario
from aclscan.fix import ntfs3g
from aclscan.samples import hives, regf
from aclscan.classify import PLACEHOLDER, RESOLVED, TRANSIENT
from aclscan.samples.scenarios import Node, Scenario
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


def hive_files(scenario: Scenario) -> dict[str, bytes]:
    """SAM, SECURITY, SYSTEM and SOFTWARE of the scenario's machine, as hive bytes."""
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
            [hives.Service(s.name, object_name=s.object_name, image_path=s.image_path) for s in scenario.services],
            product_type=scenario.product_type,
        ),
        "SOFTWARE": hives.software_hive([hives.Profile(sid, path) for sid, path in scenario.profiles.items()]),
    }
    out = {}
    for name, tree in trees.items():
        buffer = io.BytesIO()
        regf.write_hive(tree, buffer, name=hives.HIVE_NAMES[name])
        out[name] = buffer.getvalue()
    return out


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


def all_nodes(scenario: Scenario, hive_bytes: dict[str, bytes]) -> list[Node]:
    return list(scenario.nodes) + [Node(f"{HIVE_DIR}/{name}", False, HIVE_SDDL, data)
                                   for name, data in hive_bytes.items()]


def build(scenario: Scenario, out_dir: str | os.PathLike) -> Built:
    """Make ``OUT/NAME.img.gz`` and ``OUT/NAME.json`` (and domain exports)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hive_bytes = hive_files(scenario)
    nodes = all_nodes(scenario, hive_bytes)
    descriptors = final_descriptors(nodes)
    manifest_of(scenario, nodes, descriptors, [])  # an incomplete definition fails before any work
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
    manifest.write_text(json.dumps(manifest_of(scenario, nodes, descriptors, extras), indent=2, ensure_ascii=False)
                        + "\n")
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


def manifest_of(scenario: Scenario, nodes: list[Node], descriptors: dict[str, SecurityDescriptor],
                extras: list[Path]) -> dict:
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
        "counted": "files and directories the scenario made (NTFS metadata files $MFT..$Extend excluded), "
                   "the root directory and the four hives included",
        "files_made": len(nodes),
        "distinct_descriptors": len({d.to_bytes() for d in descriptors.values()}),
        "expected": expected,
        "readiness": scenario.readiness,
        "fleet": scenario.fleet,
        "domain_exports": [p.name for p in extras if p.suffix in (".ldif", ".csv")],
        "history": [p.name for p in extras if p.name.endswith(".master-SAM")],
        "deleted_domain_users": list(scenario.deleted_domain_users),
        "paths": {node.path or "/": to_sddl(descriptors[node.path]) for node in nodes
                  if node.is_dir or not _bulk(node)},
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


def write_master_sam(scenario: Scenario, out: Path) -> list[Path]:
    """The master's SAM from before the SID change, where the scenario has one."""
    if not scenario.master_accounts or not scenario.previous_machine_sids:
        return []
    master = scenario.previous_machine_sids[0]
    users = [hives.SamUser(a.rid, a.name, full_name=a.full_name) for a in scenario.master_accounts if a.kind == "user"]
    aliases = [hives.SamAlias(a.rid, a.name, list(a.members)) for a in scenario.master_accounts if a.kind == "alias"]
    path = out / f"{scenario.name}.master-SAM"
    regf.write_hive(hives.sam_hive(master, users, aliases), path, name=hives.HIVE_NAMES["SAM"])
    return [path]


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
