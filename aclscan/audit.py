"""The auditor's report as data: what a manager reads first (readiness, counts, the top
problem SIDs) and one card per problem SID in plain language (what it was, why it is
a problem, what the plan does or why it refuses, how far a fix got).

Everything comes from the scan database, the readiness rules
(:func:`aclscan.readiness.check`), the plan (:func:`aclscan.plan.build_plan`) and,
where one is given, a fix journal (:mod:`aclscan.fix.journal`). The formats render
it (``aclscan.formats.html``); nothing here writes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aclscan.account_names import AccountNames
from aclscan.classify import PROBLEMS
from aclscan.errors import DatabaseError
from aclscan.findings import iter_evidence, iter_findings, machine_facts

FILES = "file"  # the object kind of NTFS files and folders (the places table holds the others)
# What each object kind is called, one and many ("1 service", "2 services").
KIND_LABELS = {
    FILES: ("file or folder", "files and folders"), "registry_key": ("registry key", "registry keys"),
    "service": ("service", "services"), "share": ("share", "shares"), "printer": ("printer", "printers"),
    "task": ("scheduled task", "scheduled tasks"), "dcom": ("DCOM permission", "DCOM permissions"),
    "sam_object": ("SAM object", "SAM objects"), "sam_account": ("SAM account", "SAM accounts"),
    "lsa_account": ("LSA account", "LSA accounts"),
    "lsa_right": ("LSA right", "LSA rights"), "alias_member": ("group membership", "group memberships"),
    "profile": ("user profile", "user profiles"), "service_logon": ("service logon", "service logons"),
}


def kind_label(kind: str, count: int | None = None) -> str:
    """The name of an object kind, singular for a count of one (the kind itself if unknown)."""
    one, many = KIND_LABELS.get(kind, (kind, kind))
    return one if count == 1 else many

# What each verdict means, for a person who is not a Windows security specialist.
GLOSSARY = {
    "resolved": "A well-known, local, domain or service account that exists now. Nothing to do.",
    "orphan": "A deleted account: the machine or domain that issued it is known and has a complete account "
              "list, and no such account is in it. Its entries grant nothing to anyone; they are clutter, and a "
              "file it owns has no living owner.",
    "stale_prefix": "An account of this machine under its previous machine SID (before the clone's SID was "
                    "changed). Windows no longer recognises it: whoever it was has lost this access.",
    "rid_collision": "A previous-machine-SID account whose number (RID) now belongs to a different account. "
                     "Rewriting only the prefix, as simple tools do, would hand its access to that other account.",
    "sid_history": "An old SID that a migrated domain account still carries in its sIDHistory. It works today "
                   "through SID history; it should be replaced by the account's current SID.",
    "foreign_machine": "An account of another machine of the fleet: a reference across machines, or a "
                       "machine SID that two machines share.",
    "unknown_authority": "An account of a machine or domain that no source knows. It cannot be told apart from a "
                         "deleted account: give the domain export or the earlier scan, and scan again.",
    "unresolved": "The issuing domain is known but its accounts are not (no export given), or a service SID no "
                  "service on the machine matches.",
    "placeholder": "CREATOR OWNER, integrity labels, capabilities and similar: stand-ins Windows fills in. "
                   "Never a problem.",
    "transient": "A logon-session SID: exists only while someone is logged on. Never a problem.",
    "inconsistent_hives": "The machine's own registry hives disagree about its SID: resolve that before anything "
                          "else.",
}

ACTION_TEXT = {
    "replace_sid": "Rewrite it to {new} wherever it appears",
    "translate_sid_history": "Replace it by the current SID of {new}",
    "remove_aces": "Remove its access entries (the account is gone)",
    "reassign_owner": "Give ownership of its files to {owner}",
    "reassign_group": "Make {group} the primary group where it was",
    "grant_lsa_rights": "Move its user rights ({rights}) to {new}",
    "replace_alias_member": "Replace it in the local group(s) {groups} by {new}",
    "repoint_service": "Reconfigure the service(s) {services} that log on as it (password needed)",
}


@dataclass(frozen=True)
class PlanStep:
    kind: str
    text: str  # in plain language
    refused: bool
    files: int = 0
    descriptors: int = 0
    folders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Remediation:
    """How far a fix got for one SID, from the journal (and the re-scan beside it)."""

    state: str  # not_fixed, fixed, partly_fixed, undone, interrupted, refused
    text: str


@dataclass(frozen=True)
class ProblemCard:
    sid: str
    label: str  # S-1-5-21-...-1000 (was MEMBER\Ken, rid_collision)
    name: str | None  # MEMBER\Ken
    verdict: str
    confidence: str
    what_it_was: str
    why: str
    places: dict[str, int]  # object kind -> places naming it (files: files)
    descriptors: int
    steps: tuple[PlanStep, ...]
    remediation: Remediation
    evidence: tuple[str, ...]
    rid_holder: str | None = None  # who holds its RID today (rid_collision): "MEMBER\\Jon (S-1-5-21-...-1000)"


@dataclass
class AuditReport:
    title: str
    machine: dict
    volumes: list[dict]
    ready: bool | None
    readiness_headline: str
    rules: list[dict]
    verdict_counts: Counter  # distinct SIDs per verdict
    kind_counts: dict[str, int]  # object kind -> places naming a problem SID
    cards: list[ProblemCard]
    findings: list[dict]  # every SID, with its name
    evidence: list[dict]  # where the problem SIDs sit, one row per descriptor and place
    evidence_total: int
    journal: dict | None = None
    places_table: bool = False
    names: dict[str, str] = field(default_factory=dict)  # SID -> name, for every SID the report shows
    notes: list[str] = field(default_factory=list)
    # Since an earlier scan (aclscan.remediation.remediation_status): its problem SIDs,
    # what is fixed, remains, is new; and that scan's path.
    remediation: list | None = None
    earlier: str | None = None


def has_places(db) -> bool:
    """Whether the scan has the ``places`` table and ``findings.places`` (schema 3): registry keys,
    services, shares and other non-file places. The one place this is checked."""
    from aclscan.store import has_table

    if not has_table(db, "places"):
        return False
    return any(row[1] == "places" for row in db.execute("PRAGMA table_info(findings)"))


def _places_of(db, findings: list[dict], with_places: bool) -> dict[str, dict[str, int]]:
    """Per SID: object kind -> how many places name it; files from the findings, registry keys,
    services, tasks and the like from ``findings.places`` (schema 3), and the direct references
    of the hives (user rights, group memberships, profiles, service logons), whose kinds are
    not places."""
    result = {f["sid"]: ({FILES: f["files"]} if f["files"] else {}) for f in findings}
    if with_places:
        for sid, places in db.execute("SELECT sid, places FROM findings WHERE places IS NOT NULL"):
            for kind, count in (json.loads(places) or {}).items():
                if count and kind != FILES:
                    result.setdefault(sid, {})[kind] = count
    for sid, kind, count in db.execute("SELECT sid, kind, COUNT(*) FROM hive_references GROUP BY sid, kind"):
        result.setdefault(sid, {})[kind] = count
    return result


def build_report(db, *, title: str = "aclscan report", journal_path: str | None = None,
                 evidence_limit: int = 5000, remediation: list | None = None,
                 earlier: str | None = None) -> AuditReport:
    from aclscan import plan as planning
    from aclscan import readiness

    names = AccountNames.of(db)
    machine = machine_facts(db) or {}
    volumes = [dict(zip(("image", "serial", "label", "files", "scanned_at"), row)) for row in
               db.execute("SELECT image, serial, label, files, scanned_at FROM volumes ORDER BY id")]
    findings = list(iter_findings(db))
    for finding in findings:
        finding["name"] = names.name_of(finding["sid"])
    with_places = has_places(db)
    places = _places_of(db, findings, with_places)

    notes = []
    try:
        result = readiness.check(db)
        ready = result.ready
        rules = [{"name": r.name, "status": r.status, "summary": r.summary, "evidence": list(r.evidence)}
                 for r in result.rules]
        not_judged = [r["name"] for r in rules if r["status"] not in ("pass", "fail")]
        failed = [r["name"] for r in rules if r["status"] == "fail"]
        if not ready:
            headline = "NOT READY"
        elif not_judged:
            headline = "READY, not judged: " + ", ".join(not_judged)
        else:
            headline = "READY"
        if failed:
            headline += " (failed: " + ", ".join(failed) + ")"
    except DatabaseError as exc:
        ready, rules, headline = None, [], f"NOT JUDGED: {exc}"

    the_plan = planning.build_plan(db)
    journal = _read_journal(journal_path, the_plan) if journal_path else None

    cards = []
    for finding in findings:
        if finding["verdict"] not in PROBLEMS:
            continue
        steps = tuple(_step(action, names, the_plan) for action in the_plan.actions if action.sid == finding["sid"])
        cards.append(ProblemCard(
            sid=finding["sid"], label=names.label(finding["sid"]), name=finding["name"],
            verdict=finding["verdict"], confidence=finding["confidence"],
            what_it_was=_what_it_was(finding, names, db), why=_why(finding, names),
            places=places.get(finding["sid"], {}), descriptors=finding["descriptors"] or 0, steps=steps,
            remediation=_remediation(finding["sid"], steps, the_plan, journal),
            evidence=tuple(finding["evidence"]), rid_holder=_holder(finding, names),
        ))
    cards.sort(key=lambda c: (-sum(c.places.values()), c.sid))
    kind_counts: Counter = Counter()
    for card in cards:
        kind_counts.update(card.places)

    evidence, total = _evidence(db, names, evidence_limit)
    return AuditReport(
        title=title, machine=machine, volumes=volumes, ready=ready, readiness_headline=headline, rules=rules,
        verdict_counts=Counter(f["verdict"] for f in findings), kind_counts=dict(kind_counts), cards=cards,
        findings=findings, evidence=evidence, evidence_total=total, journal=journal, places_table=with_places,
        names={sid: name for sid in {f["mapped_sid"] for f in findings if f["mapped_sid"]}
               if (name := names.name_of(sid))},
        notes=notes, remediation=remediation, earlier=earlier,
    )


def _holder(finding: dict, names: AccountNames) -> str | None:
    holder = names.rid_holder(finding["sid"]) if finding["verdict"] == "rid_collision" else None
    return f"{names.name_of(holder)} ({holder})" if holder else None


def _what_it_was(finding: dict, names: AccountNames, db) -> str:
    verdict, name = finding["verdict"], names.name_of(finding["sid"])
    if verdict in ("stale_prefix", "rid_collision"):
        source = db.execute("SELECT source FROM previous_names WHERE sid = ? LIMIT 1", [finding["sid"]]).fetchone()
        who = name or "an unnamed account"
        told = f" (the name comes from {source[0]})" if source else ""
        return f"{who}, an account of this machine under its previous machine SID{told}."
    if verdict == "orphan":
        return f"{name or 'An account'} of a machine or domain whose account list is complete, that no longer has it."
    if verdict == "sid_history":
        return f"An earlier SID of {name or 'a migrated account'}, kept in its sIDHistory."
    if verdict == "foreign_machine":
        return f"{name or 'An account'} of another machine of the fleet."
    if name:
        return f"{name}."
    return "An account no source of this scan knows."


def _why(finding: dict, names: AccountNames) -> str:
    verdict = finding["verdict"]
    files = finding["files"] or 0
    if verdict == "rid_collision":
        holder = names.rid_holder(finding["sid"])
        rid = finding["sid"].rsplit("-", 1)[1]
        if holder:
            return (f"Its number, RID {rid}, now belongs to {names.name_of(holder)}. A tool that only rewrites the "
                    f"machine prefix would give {names.name_of(holder)} this account's access to {files:,} file(s).")
        return f"Its RID {rid} now belongs to another account: a prefix rewrite would hand that account its access."
    if verdict == "stale_prefix" and finding["mapped_sid"]:
        return (f"Windows no longer recognises it, so the access it grants on {files:,} file(s) is lost. Today's "
                f"account of the same name is {names.name_of(finding['mapped_sid']) or finding['mapped_sid']}.")
    return GLOSSARY.get(verdict, verdict)


def _step(action, names: AccountNames, the_plan) -> PlanStep:
    if action.kind == "refuse":
        return PlanStep(action.kind, f"{action.reason}.", True, action.files,
                        action.descriptors, action.folders)
    new = (names.name_of(action.new_sid) or action.new_sid) if action.new_sid else "?"
    text = ACTION_TEXT.get(action.kind, action.kind).format(
        new=new, owner=names.name_of(the_plan.owner) or the_plan.owner,
        group=names.name_of(the_plan.group) or the_plan.group, rights=", ".join(action.rights),
        groups=", ".join(action.groups), services=", ".join(action.services))
    if action.files:
        text += (f": {action.files:,} file(s) in {action.descriptors} distinct descriptor(s), "
                 f"{action.explicit_files:,} where it is explicit")
    return PlanStep(action.kind, text + ".", False, action.files, action.descriptors, action.folders)


def _read_journal(path: str, the_plan) -> dict:
    """What a fix journal says: its state and, per descriptor, files journaled, written, restored;
    and the re-scan after the fix (JOURNAL.after.db) where it exists."""
    from aclscan.fix.journal import Journal
    from aclscan.store import open_database

    journal = Journal.open(path)
    try:
        meta = journal.meta
        per_descriptor = {key: (total, written or 0, restored or 0) for key, total, written, restored in
                          journal.conn.execute("SELECT descriptor_key, COUNT(*), SUM(written), SUM(restored) "
                                               "FROM entries GROUP BY descriptor_key")}
        counts = journal.counts()
    finally:
        journal.close()
    after = Path(f"{path}.after.db")
    remaining = None
    if after.is_file():
        after_db = open_database(after, index=False)
        remaining = dict(after_db.execute("SELECT sid, SUM(files) FROM sids GROUP BY sid"))
        after_db.conn.close()
    return {"path": str(path), "meta": meta, "per_descriptor": per_descriptor, "counts": counts,
            "remaining": remaining}


def _remediation(sid: str, steps: tuple[PlanStep, ...], the_plan, journal: dict | None) -> Remediation:
    if steps and all(s.refused for s in steps):
        return Remediation("refused", "Not fixed: the plan refuses (see above); a person must decide.")
    if journal is None:
        return Remediation("not_fixed", "Not fixed yet (no fix journal given: aclscan report --journal FILE).")
    ids = {a.id for a in the_plan.actions if a.sid == sid}
    keys = [c.descriptor_key for c in the_plan.descriptors if ids & set(c.actions)]
    journaled = [journal["per_descriptor"].get(k, (0, 0, 0)) for k in keys]
    total, written, restored = (sum(j[i] for j in journaled) for i in range(3))
    state = journal["meta"].get("state")
    remaining = (journal["remaining"] or {}).get(sid) if journal["remaining"] is not None else None
    after = f" The re-scan after the fix finds it on {remaining or 0:,} file(s)." if remaining is not None else ""
    if not keys:
        return Remediation("not_fixed", "Nothing of it is fixed offline (registry actions run with the PowerShell "
                                        "script on the live machine)." + after)
    if state == "undone" or (total and restored == total):
        return Remediation("undone", f"Fixed on {written:,} file(s), then undone ({journal['meta'].get('undone', '')})."
                                     " The files are as they were.")
    if state != "applied":
        return Remediation("interrupted", f"A fix started ({written:,} of {total:,} file(s) written) and did not "
                                          "finish: run it again, or undo it.")
    if not total:
        return Remediation("not_fixed", "The journal holds none of its files: the fix did not reach them." + after)
    finished = journal["meta"].get("finished", "")
    if written < total:
        return Remediation("partly_fixed", f"Partly fixed offline: {written:,} of {total:,} file(s) rewritten "
                                           f"({finished})." + after)
    return Remediation("fixed", f"Fixed offline: {written:,} file(s) rewritten ({finished})." + after)


def _evidence(db, names: AccountNames, limit: int) -> tuple[list[dict], int]:
    """Where each problem SID sits, with the ACE in the icacls view."""
    from aclscan.formats.acl_text import ace_text

    problem = sorted(PROBLEMS)
    marks = ", ".join("?" for _ in problem)
    aces = {(key, acl, position): (ace_type, flags, mask) for key, acl, position, ace_type, flags, mask in db.execute(
        "SELECT a.descriptor_key, a.acl, a.position, a.type, a.flags, a.mask FROM aces a JOIN findings f "
        f"ON f.sid = a.sid WHERE f.verdict IN ({marks})", problem)}
    rows, total = [], 0
    for row in iter_evidence(db):
        total += 1
        if len(rows) >= limit:
            continue
        name = names.name_of(row["sid"])
        where = row["role"].upper() if row["role"] in ("dacl", "sacl") else row["role"].capitalize()
        entry = ""
        if row["position"] is not None:
            where += f" #{row['position'] + 1}"
            ace = aces.get((row["descriptor_key"], row["role"], row["position"]))
            if ace:
                entry = ace_text(name or row["sid"], ace[0], ace[1] or 0, ace[2] or 0)
        rows.append({**row, "name": name, "where": where, "entry": entry})
    return rows, total
