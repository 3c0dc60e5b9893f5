"""Findings: the verdict on every distinct SID of a scan, with its counts and
evidence, written to and read from the scan database."""

from __future__ import annotations

import json
from typing import Iterator

from aclscan import store
from aclscan.classify import PROBLEMS, Verdict
from aclscan.resolve import Resolution

FINDING_COLUMNS = ("sid", "verdict", "confidence", "account", "mapped_sid", "files", "descriptors", "explicit_aces",
                   "inherited_aces", "as_owner", "as_group", "hive_references", "evidence", "places")

# Per SID, over every volume of the scan: files and distinct descriptors naming it,
# ACE uses by kind (an ACE in a descriptor counts once per file using it), owner and
# group uses.
_FILE_COUNTS = f"""
SELECT sid, SUM(files), SUM(descriptors), SUM(as_owner), SUM(as_group) FROM sids
WHERE volume_id IN {store.LIVE_VOLUMES} GROUP BY sid
"""
_ACE_COUNTS = f"""
SELECT a.sid, SUM(CASE WHEN a.inherited = 0 THEN d.files ELSE 0 END),
       SUM(CASE WHEN a.inherited = 1 THEN d.files ELSE 0 END)
FROM aces a JOIN descriptors d ON d.key = a.descriptor_key WHERE d.volume_id IN {store.LIVE_VOLUMES} GROUP BY a.sid
"""


def file_sids(db) -> list[str]:
    """The SIDs the live volumes' descriptors name (not shadow copies': earlier states)."""
    return [row[0] for row in db.execute(
        f"SELECT DISTINCT sid FROM sids WHERE volume_id IN {store.LIVE_VOLUMES} ORDER BY sid")]


def store_resolution(db, resolution: Resolution, verdicts: list[Verdict], *,
                     place_counts: dict[str, dict[str, int]] | None = None) -> None:
    """Findings, the accounts and authorities the sources knew, hive references, notes.
    ``place_counts``: SID -> place kind -> how many places (other than files) name it."""
    place_counts = place_counts or {}
    counts = {sid: [f or 0, d or 0, o or 0, g or 0, 0, 0] for sid, f, d, o, g in db.execute(_FILE_COUNTS)}
    for sid, explicit, inherited in db.execute(_ACE_COUNTS):
        row = counts.setdefault(sid, [0, 0, 0, 0, 0, 0])
        row[4], row[5] = explicit or 0, inherited or 0
    references: dict[str, list[str]] = {}
    for ref in resolution.references:
        references.setdefault(ref.sid, []).append(f"{ref.kind}: {ref.detail}")
    rows = []
    for verdict in verdicts:
        files, descriptors, owner, group, explicit, inherited = counts.get(verdict.sid, [0] * 6)
        evidence = list(verdict.evidence) + [f"hive reference {r}" for r in references.get(verdict.sid, [])]
        kinds = place_counts.get(verdict.sid) or {}
        if kinds:
            named = ", ".join(f"{n} {k.replace('_', ' ')}{'s' if n != 1 else ''}" for k, n in sorted(kinds.items()))
            evidence.append(f"named by {named} (aclscan places lists them)")
        rows.append((verdict.sid, verdict.verdict, verdict.confidence, verdict.account, verdict.mapped_sid, files,
                     descriptors, explicit, inherited, owner, group, len(references.get(verdict.sid, [])),
                     json.dumps(evidence, ensure_ascii=False), json.dumps(dict(sorted(kinds.items())))))
    store.bulk_insert(db, "findings", FINDING_COLUMNS, rows)
    accounts = []
    authorities = []
    for source in resolution.sources:
        if source.__class__.__name__ == "WellKnownSource":
            continue  # the catalogue is the same for every machine: not worth a copy per scan
        for account in source.accounts():
            accounts.append((account.sid, account.name, account.domain, account.kind, account.source,
                             json.dumps(list(account.sid_history)), json.dumps(list(account.members)),
                             json.dumps(list(account.rights)), int(account.disabled)))
        for authority in source.authorities():
            authorities.append((authority.sid, authority.name, authority.kind, int(authority.complete),
                                authority.source))
    store.bulk_insert(db, "accounts", ("sid", "name", "domain", "kind", "source", "sid_history", "members",
                                       "rights", "disabled"), accounts)
    store.bulk_insert(db, "authorities", ("sid", "name", "kind", "complete", "source"), authorities)
    store.bulk_insert(db, "hive_references", ("sid", "kind", "detail"),
                      [(r.sid, r.kind, r.detail) for r in resolution.references])
    store.bulk_insert(db, "notes", ("kind", "text"), [("resolution", n) for n in resolution.notes])
    store.bulk_insert(db, "previous_names", ("sid", "name", "source"),
                      [(p.sid, p.name, p.source) for p in resolution.classifier.previous_names])
    store_machine(db, resolution.hives)


MACHINE_COLUMNS = ("machine_sid", "computer_name", "product_type", "account_domain_sid", "primary_domain_name",
                   "primary_domain_sid", "sysprep_generalization_state", "sysprep_cleanup_state", "image_state",
                   "clone_tag", "hives_found")


def store_machine(db, hives) -> None:
    """The machine row: what the hives say about the machine itself (NULL where the hive
    holding a fact was not found)."""
    sam, security, system, software = hives.sam, hives.security, hives.system, hives.software
    row = (
        getattr(sam, "machine_sid", None),
        getattr(system, "computer_name", None),
        getattr(system, "product_type", None),
        getattr(security, "account_domain_sid", None),
        getattr(security, "primary_domain_name", None),
        getattr(security, "primary_domain_sid", None),
        getattr(system, "sysprep_generalization_state", None),
        getattr(system, "sysprep_cleanup_state", None),
        getattr(software, "image_state", None),
        getattr(system, "clone_tag", None),
        json.dumps(dict(sorted(hives.origins.items())), ensure_ascii=False),
    )
    store.bulk_insert(db, "machine", MACHINE_COLUMNS, [row])


def machine_facts(db) -> dict | None:
    """The machine row as a dict (hives_found decoded), or None where the scan has none:
    a database from before schema 2, or a scan made with --no-resolve."""
    cursor = db.execute(f"SELECT {', '.join(MACHINE_COLUMNS)} FROM machine LIMIT 1")
    row = cursor.fetchone()
    if row is None:
        return None
    facts = dict(zip(MACHINE_COLUMNS, row))
    facts["hives_found"] = json.loads(facts["hives_found"] or "{}")
    return facts


def iter_findings(db, *, problems_only: bool = False, verdict: str | None = None) -> Iterator[dict]:
    sql = f"SELECT {', '.join(FINDING_COLUMNS)} FROM findings"
    clauses, params = [], []
    if problems_only:
        clauses.append(f"verdict IN ({', '.join('?' for _ in PROBLEMS)})")
        params += sorted(PROBLEMS)
    if verdict:
        clauses.append("verdict = ?")
        params.append(verdict)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY CASE WHEN verdict IN ('resolved', 'placeholder', 'transient') THEN 1 ELSE 0 END, files DESC, sid"
    cursor = db.execute(sql, params)
    names = [c[0] for c in cursor.description]
    for row in cursor:
        item = dict(zip(names, row))
        item["evidence"] = json.loads(item["evidence"] or "[]")
        item["places"] = json.loads(item["places"] or "{}")
        yield item


def unread_hives(db) -> list[str]:
    """What the scan could not read of the machine's hives (whole hives, or parts of
    them): while any, the findings cannot be called complete."""
    return [r[0] for r in db.execute("SELECT reason FROM scan_errors WHERE kind = 'hive' ORDER BY id")]


def has_problems(db) -> bool:
    marks = ", ".join("?" for _ in PROBLEMS)
    return db.execute(f"SELECT 1 FROM findings WHERE verdict IN ({marks}) LIMIT 1", sorted(PROBLEMS)).fetchone() is not None


def needs_action(db) -> bool:
    """Whether problem findings remain or a hive could not be read (its accounts could not
    be judged, so the findings may miss problems): ``aclscan findings`` exits 1."""
    return has_problems(db) or bool(unread_hives(db))


EVIDENCE_COLUMNS = ("sid", "verdict", "confidence", "account", "mapped_sid", "kind", "role", "position", "ace",
                    "inherited", "descriptor_key", "files", "places", "example_path", "sddl")


def iter_evidence(db, *, problems_only: bool = True) -> Iterator[dict]:
    """Where each (problem) SID sits, one row per distinct descriptor and place in it:
    owner, group, or an ACE (DACL/SACL position and SDDL), with the kind of place (``file``,
    ``registry_key``, ``service``, ``share``, ``task``, ...), how many files or places use
    that descriptor and one example path (``/Users/Ken``, ``HKLM\\SOFTWARE\\AVScan``, ``share
    AVLogs (...)``); then the places that name the SID directly (a task's principal). An
    auditor's view, distinct before many: never one row per file or key."""
    where = ""
    params: list = []
    if problems_only:
        where = f" WHERE f.verdict IN ({', '.join('?' for _ in PROBLEMS)})"
        params = sorted(PROBLEMS)
    sql = f"""
        SELECT f.sid, f.verdict, f.confidence, f.account, f.mapped_sid, p.role, p.position, p.ace, p.inherited,
               d.key, d.files, d.sddl
        FROM findings f
        JOIN (SELECT sid, descriptor_key, acl AS role, position, sddl AS ace, inherited FROM aces
              UNION ALL SELECT owner, key, 'owner', NULL, NULL, NULL FROM descriptors WHERE owner IS NOT NULL
              UNION ALL SELECT "group", key, 'group', NULL, NULL, NULL FROM descriptors WHERE "group" IS NOT NULL)
             p ON p.sid = f.sid
        JOIN descriptors d ON d.key = p.descriptor_key{where}
        ORDER BY f.files DESC, f.sid, d.key, p.role, p.position"""
    cursor = db.execute(sql, params)
    names = [c[0] for c in cursor.description]
    uses: dict[int, list[tuple[str, int, str | None]]] = {}
    with_places = store.has_table(db, "places")
    for row in cursor:
        item = dict(zip(names, row))
        key = item.pop("key")
        if key not in uses:
            uses[key] = _uses_of(db, key, item["files"], with_places)
        for kind, count, path in uses[key]:
            yield {**item, "kind": kind, "descriptor_key": key, "files": item["files"] if kind == "file" else 0,
                   "places": count if kind != "file" else 0, "example_path": path}
    if with_places:
        yield from _direct_place_evidence(db, where, params)


def _uses_of(db, key: int, files: int | None, with_places: bool) -> list[tuple[str, int, str | None]]:
    """(kind, how many, an example path) of what uses one descriptor: its files, or the
    places of each kind (registry keys, services, ...) whose descriptor it is."""
    if files:
        found = db.execute(f"SELECT path FROM files WHERE descriptor_key = ? AND volume_id IN {store.LIVE_VOLUMES} "
                           "ORDER BY path LIMIT 1", [key]).fetchone()
        return [("file", files, found[0] if found else None)]
    if with_places:
        rows = db.execute("SELECT kind, COUNT(*), MIN(path) FROM places WHERE descriptor_key = ? GROUP BY kind"
                          " ORDER BY kind", [key]).fetchall()
        if rows:
            return [(kind, count, path) for kind, count, path in rows]
    return [("file", 0, None)]  # a $Secure entry no file uses (kept by ntfs-3g after a fix)


def _direct_place_evidence(db, where: str, params: list) -> Iterator[dict]:
    sql = f"""
        SELECT f.sid, f.verdict, f.confidence, f.account, f.mapped_sid, p.kind, p.role, p.path, p.account AS named
        FROM findings f JOIN places p ON p.sid = f.sid{where} ORDER BY f.sid, p.kind, p.path"""
    for sid, verdict, confidence, account, mapped, kind, role, path, named in db.execute(sql, params):
        yield {"sid": sid, "verdict": verdict, "confidence": confidence, "account": account, "mapped_sid": mapped,
               "kind": kind, "role": role or "principal", "position": None, "ace": named, "inherited": None,
               "descriptor_key": None, "files": 0, "places": 1, "example_path": path, "sddl": None}
