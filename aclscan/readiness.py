"""The readiness check: may this machine image be deployed?

Each rule is data (:data:`RULES`: a name, what it asks, the function that judges
it) and gives a :class:`Rule` result: pass, fail, or skipped with the reason
where the scan cannot tell. The machine is ready iff no rule failed. Rules read
the scan database (distinct SIDs, findings, hive references, the machine row),
never its per-file rows, except for a few example paths per stale SID.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aclscan.classify import split_domain_relative
from aclscan.errors import DatabaseError
from aclscan.queries import descriptors_with_sid_clause

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
STALE_VERDICTS = ("stale_prefix", "rid_collision")
FIRST_LOCAL_RID = 1000  # RIDs below are the built-in accounts Windows creates itself
EXAMPLE_PATHS = 3
# A finding names something: files, places (registry keys, services, ...) or hive entries.
# A $Secure entry no file uses any more (ntfs-3g keeps them after a fix) names nothing.
NAMED = ("(COALESCE(files, 0) > 0 OR COALESCE(hive_references, 0) > 0"
         " OR COALESCE(places, '{}') NOT IN ('{}', ''))")

# SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State ImageState, as Microsoft's
# "Windows Setup States" documents them: True where the image may be deployed.
IMAGE_STATES = {
    "IMAGE_STATE_COMPLETE": (True, "installed; the specialize and oobeSystem passes are complete"),
    "IMAGE_STATE_UNDEPLOYABLE": (False, "a Setup phase did not finish: read offline, the image will never be "
                                        "deployable"),
    "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE": (True, "generalized; continues into OOBE when Setup starts"),
    "IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT": (True, "generalized; continues into audit mode when Setup starts"),
    "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE": (True, "specialized; continues into OOBE when Setup starts"),
    "IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT": (True, "specialized; continues into audit mode when Setup starts"),
}
# SYSTEM\Setup\Status\SysprepStatus GeneralizationState is not documented by Microsoft.
# 7 is what Windows keeps when no sysprep run is pending or failed (and what its support
# articles tell to restore after "A fatal error occurred while trying to sysprep the
# machine"); any other value is a run that did not finish.
GENERALIZATION_DONE = 7


@dataclass(frozen=True)
class Rule:
    """One rule's result."""

    name: str
    status: str  # pass, fail, skipped
    summary: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Readiness:
    machine: dict  # the scan's machine row (aclscan.findings.machine_facts)
    rules: tuple[Rule, ...]
    fleet: str | None = None  # the fleet database consulted, if any
    strict: bool = False  # a rule that could not be judged counts as failed

    @property
    def ready(self) -> bool:
        return not self.failed and not (self.strict and self.unjudged)

    @property
    def failed(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.status == FAIL)

    @property
    def unjudged(self) -> tuple[Rule, ...]:
        """Rules skipped because the scan could not tell: never silent (the headline
        names them), fatal with ``strict``."""
        return tuple(r for r in self.rules if r.status == SKIPPED)

    @property
    def headline(self) -> str:
        """READY / NOT READY, and what was not judged: the first line a person reads."""
        verdict = "READY" if self.ready else "NOT READY"
        if self.failed:
            verdict += ": " + ", ".join(r.name for r in self.failed) + " failed"
        if self.unjudged:
            what = "; ".join(f"{TOPICS.get(r.name, r.name)} ({r.summary.split(':', 1)[0]})" for r in self.unjudged)
            verdict += (", " if self.failed else ", ") + f"not judged: {what}"
            if self.strict and not self.failed:
                verdict += " (--strict)"
        return verdict


@dataclass
class _Context:
    db: object
    machine: dict
    fleet: object | None
    scan_path: str | None

    @property
    def machine_sid(self) -> str | None:
        return self.machine.get("machine_sid")

    def stale_findings(self) -> list[tuple]:
        marks = ", ".join("?" for _ in STALE_VERDICTS)
        return self.db.execute(
            f"SELECT sid, verdict, account, mapped_sid, files, descriptors, hive_references FROM findings"
            f" WHERE verdict IN ({marks}) AND {NAMED} ORDER BY files DESC, sid", STALE_VERDICTS).fetchall()

    def still_named(self, sid: str) -> bool:
        """Whether anything on the machine (a file, a place, a hive entry) names ``sid``."""
        return self.db.execute(f"SELECT 1 FROM findings WHERE sid = ? AND {NAMED}", [sid]).fetchone() is not None

    def local_accounts(self) -> list[tuple[str, str, int]]:
        """(sid, name, rid) of the machine's own accounts at RID 1000 and up, once each."""
        sid = self.machine_sid
        if not sid:
            return []
        rows = self.db.execute("SELECT DISTINCT sid, name FROM accounts WHERE substr(sid, 1, ?) = ? ORDER BY sid",
                               (len(sid) + 1, sid + "-")).fetchall()
        found = []
        for account_sid, name in rows:
            parts = split_domain_relative(account_sid)
            if parts and parts[0] == sid and parts[1] >= FIRST_LOCAL_RID:
                found.append((account_sid, name, parts[1]))
        return sorted(found, key=lambda a: a[2])

    def previous_machine_sids(self) -> dict[str, str]:
        """Previous machine SIDs of this machine -> where the scan learnt them."""
        found = {sid: source for sid, source in
                 self.db.execute("SELECT sid, source FROM authorities WHERE kind = 'previous_machine'")}
        for sid, source in self.db.execute("SELECT sid, source FROM previous_names"):
            parts = split_domain_relative(sid)
            if parts and parts[0] != self.machine_sid:
                found.setdefault(parts[0], source)
        return found

    def fleet_duplicates(self) -> list[dict]:
        """The fleet's other machines with this machine SID (this machine itself left out)."""
        from aclscan.fleet import same_sid_machines

        if self.fleet is None or not self.machine_sid:
            return []
        volumes = self.db.execute("SELECT image, serial FROM volumes ORDER BY id").fetchall()
        image = volumes[0][0] if volumes else None
        serials = [v[1] for v in volumes]
        others = []
        for machine in same_sid_machines(self.fleet, self.machine_sid):
            itself = (
                (self.scan_path is not None and machine["scan_db"] == self.scan_path)
                or (image is not None and machine["image"] == image)
                or (machine["computer_name"] == self.machine.get("computer_name")
                    and json.loads(machine["volume_serials"] or "[]") == serials)
            )
            if not itself:
                others.append(machine)
        return others


def _example_paths(db, sid: str) -> list[str]:
    """A few files naming ``sid`` (owner, group or ACE): where to look first."""
    clause, params = descriptors_with_sid_clause(sid, "descriptor_key")
    rows = db.execute(f"SELECT path FROM files WHERE {clause} LIMIT ?", [*params, EXAMPLE_PATHS]).fetchall()
    return sorted(r[0] for r in rows)


# --- the rules ---------------------------------------------------------------------

def unique_machine_sid(ctx: _Context) -> tuple[str, str, list[str]]:
    sid = ctx.machine_sid
    if not sid:
        return SKIPPED, "no SAM hive: the machine SID is unknown", []
    evidence = []
    history = {s: source for s, source in
               ctx.db.execute("SELECT sid, source FROM authorities WHERE kind = 'previous_machine'")}
    if sid in history:
        evidence.append(f"{history[sid]} had this machine SID {sid} before: the SID was never changed")
    duplicates = ctx.fleet_duplicates()
    for machine in duplicates:
        evidence.append(f"{machine['name']} ({machine['scan_db']}) has machine SID {sid}")
    if evidence:
        what = (f"machine SID {sid} shared with {len(duplicates)} other machine(s) of the fleet" if duplicates
                else f"machine SID {sid} is the one the history had")
        return FAIL, what, evidence
    if ctx.fleet is None:
        return (SKIPPED, "no --fleet given: uniqueness cannot be judged (aclscan fleet FLEET.db ..., then "
                         "check --fleet FLEET.db)", [])
    return PASS, f"machine SID {sid} is unique in the fleet", []


def no_stale_prefix(ctx: _Context) -> tuple[str, str, list[str]]:
    evidence: list[str] = []
    stale = ctx.stale_findings()
    files = 0
    references: dict[str, list[tuple[str, str]]] = {}
    stale_sids = [row[0] for row in stale]
    for sid in stale_sids:
        for kind, detail in ctx.db.execute("SELECT kind, detail FROM hive_references WHERE sid = ? ORDER BY kind,"
                                           " detail", (sid,)):
            references.setdefault(sid, []).append((kind, detail))
    place_kinds: set[str] = set()
    for sid, verdict, account, mapped_sid, sid_files, descriptors, _refs in stale:
        files += sid_files or 0
        who = f" ({account})" if account else ""
        now = f", today {mapped_sid}" if mapped_sid else ""
        line = f"{sid}{who} {verdict}{now}: {sid_files or 0} file(s), {descriptors or 0} descriptor(s)"
        if sid_files:
            line += "; e.g. " + ", ".join(_example_paths(ctx.db, sid))
        evidence.append(line)
        for kind, count, examples in places_naming(ctx.db, sid):
            place_kinds.add(kind)
            evidence.append(f"{kind}: {sid}{who} is named by {count} {kind.replace('_', ' ')}(s); e.g. "
                            + ", ".join(examples))
        for kind, detail in references.get(sid, []):
            if kind != "sam_account":
                evidence.append(f"{kind}: {sid}{who} {_describe_reference(kind, detail)}")
    # A service logging on as today's account whose rights are still held by its old SID.
    held = {sid for sid, refs in references.items() if any(k == "lsa_right" for k, _ in refs)}
    for sid, verdict, account, mapped_sid, *_ in stale:
        if sid in held and mapped_sid:
            for (detail,) in ctx.db.execute("SELECT detail FROM hive_references WHERE kind = 'service_logon'"
                                            " AND sid = ?", (mapped_sid,)):
                rights = next(d for k, d in references[sid] if k == "lsa_right")
                evidence.append(f"service_logon: {detail} ({mapped_sid}), but {rights} is granted to the old "
                                f"SID {sid}")
    # Profiles under a prefix that is neither this machine's, a domain's nor well-known.
    known = {ctx.machine_sid, ctx.machine.get("primary_domain_sid")}
    known |= {s for (s,) in ctx.db.execute("SELECT sid FROM authorities WHERE kind = 'domain'")}
    reported = set(stale_sids)
    stale_profiles = 0
    for sid, path in ctx.db.execute("SELECT sid, detail FROM hive_references WHERE kind = 'profile' ORDER BY sid"):
        parts = split_domain_relative(sid)
        if parts and parts[0] not in known:
            stale_profiles += 1
            if sid not in reported:
                evidence.append(f"profile: {sid} {path} is under {parts[0]}, neither this machine's SID nor a "
                                "domain's")
    if not evidence:
        return PASS, "no file or hive entry names a previous machine SID", []
    where = []
    if files:
        where.append(f"{files} file reference(s)")
    kinds = sorted({k for refs in references.values() for k, _ in refs if k != "sam_account"})
    where += kinds + sorted(place_kinds - set(kinds))
    if stale_profiles and "profile" not in kinds:
        where.append("profile")
    return FAIL, (f"{len(stale)} stale SID(s) still named: " + ", ".join(where)) if stale else \
        f"{stale_profiles} profile(s) under another machine prefix", evidence


def places_naming(db, sid: str) -> list[tuple[str, int, list[str]]]:
    """(kind, how many, a few example paths) of the places other than files that name
    ``sid``: through their descriptor (owner, group, an ACE) or directly."""
    from aclscan.queries import descriptors_with_sid_clause
    from aclscan.store import has_table

    if not has_table(db, "places"):
        return []
    clause, params = descriptors_with_sid_clause(sid, "descriptor_key")
    rows = db.execute(
        f"SELECT kind, COUNT(*), MIN(path) FROM places WHERE ({clause}) OR sid = ? GROUP BY kind ORDER BY kind",
        [*params, sid]).fetchall()
    found = []
    for kind, count, _first in rows:
        examples = [r[0] for r in db.execute(
            f"SELECT DISTINCT path FROM places WHERE kind = ? AND (({clause}) OR sid = ?) ORDER BY length(path), path"
            " LIMIT ?",
            [kind, *params, sid, EXAMPLE_PATHS])]
        found.append((kind, count, examples))
    return found


def no_problem_sids(ctx: _Context) -> tuple[str, str, list[str]]:
    """Whatever `aclscan findings` calls a problem (beyond stale prefixes, judged above)
    must not be named anywhere: an unknown authority holding a right is as broken as a
    stale one."""
    from aclscan.classify import PROBLEMS

    others = sorted(PROBLEMS - set(STALE_VERDICTS))
    marks = ", ".join("?" for _ in others)
    rows = ctx.db.execute(
        f"SELECT sid, verdict, account, files, hive_references FROM findings WHERE verdict IN ({marks})"
        f" AND {NAMED} ORDER BY verdict, files DESC, sid", others).fetchall()
    if not rows:
        return PASS, "no other problem SID (orphan, unknown authority, unresolved, ...) is named anywhere", []
    evidence = []
    for sid, verdict, account, files, _refs in rows:
        who = f" ({account})" if account else ""
        line = f"{sid}{who} {verdict}: {files or 0} file(s)"
        if files:
            line += "; e.g. " + ", ".join(_example_paths(ctx.db, sid))
        evidence.append(line)
        for kind, detail in ctx.db.execute("SELECT kind, detail FROM hive_references WHERE sid = ? AND kind !="
                                           " 'sam_account' ORDER BY kind, detail", (sid,)):
            evidence.append(f"{kind}: {sid}{who} {_describe_reference(kind, detail)}")
        for kind, count, examples in places_naming(ctx.db, sid):
            evidence.append(f"{kind}: {sid}{who} is named by {count} {kind.replace('_', ' ')}(s); e.g. "
                            + ", ".join(examples))
    verdicts = sorted({r[1] for r in rows})
    return FAIL, f"{len(rows)} problem SID(s) still named ({', '.join(verdicts)}): see aclscan findings", evidence


def scan_complete(ctx: _Context) -> tuple[str, str, list[str]]:
    """A scan that could not read a hive (or a part of one, a task file, a record) cannot
    say that nothing stale is left there."""
    rows = ctx.db.execute("SELECT kind, COUNT(*), MIN(reason) FROM scan_errors GROUP BY kind ORDER BY kind").fetchall()
    if not rows:
        return PASS, "every record, descriptor, hive and place was read", []
    evidence = [f"{count} {kind} item(s) unread; e.g. {reason}" for kind, count, reason in rows]
    unread = ", ".join(f"{count} {kind}" for kind, count, _r in rows)
    hives = any(kind == "hive" for kind, _c, _r in rows)
    summary = (f"the scan is partial ({unread}): " +
               ("the accounts could not be judged" if hives else "what was not read cannot be judged"))
    return FAIL, summary, evidence


def _describe_reference(kind: str, detail: str) -> str:
    return {
        "lsa_right": f"holds {detail}",
        "alias_member": f"is a member of {detail}",
        "profile": f"has the profile {detail}",
        "service_logon": f"is the logon of service {detail}",
    }.get(kind, detail)


def no_account_predates_sid_change(ctx: _Context) -> tuple[str, str, list[str]]:
    if not ctx.machine_sid:
        return SKIPPED, "no SAM hive: the local accounts are unknown", []
    local = ctx.local_accounts()
    evidence = []
    previous = ctx.previous_machine_sids()
    old_names: dict[str, list[tuple[str, str]]] = {}
    for sid, name, source in ctx.db.execute("SELECT sid, name, source FROM previous_names ORDER BY sid"):
        parts = split_domain_relative(sid)
        if parts and parts[0] != ctx.machine_sid and parts[0] in previous:
            old_names.setdefault(name.casefold(), []).append((sid, source))
    predating = []
    repointed = []
    for sid, name, _rid in local:
        for old_sid, source in old_names.get(name.casefold(), []):
            if not ctx.still_named(old_sid):
                # Made before the SID change, but nothing names its old SID any more (a fix
                # re-pointed everything): what is left is judged, not the history.
                repointed.append(f"{name} ({sid}) was {old_sid} ({source}); nothing names the old SID any more")
                continue
            predating.append(name)
            evidence.append(f"{name} ({sid}) was {old_sid} under the previous machine SID ({source}), which is "
                            "still named")
    duplicates = ctx.fleet_duplicates()
    if duplicates and local:
        names = ", ".join(name for _sid, name, _rid in local)
        others = ", ".join(m["name"] for m in duplicates)
        evidence.append(f"machine SID {ctx.machine_sid} is shared with {others}: local account(s) {names} will "
                        "predate the SID change it needs")
        predating += [name for _sid, name, _rid in local if name not in predating]
    if evidence:
        return FAIL, f"local account(s) {', '.join(dict.fromkeys(predating))} predate the SID change", evidence
    if repointed:
        return PASS, f"{len(repointed)} local account(s) predate the SID change, all re-pointed", repointed
    if not previous and not duplicates:
        return PASS, f"{len(local)} local account(s) at RID {FIRST_LOCAL_RID}+; none known under another machine SID", []
    return PASS, "no local account is known under a previous machine SID", []


def not_domain_controller(ctx: _Context) -> tuple[str, str, list[str]]:
    product = ctx.machine.get("product_type")
    if product is None:
        return SKIPPED, "no SYSTEM hive (or no ProductType): the machine's role is unknown", []
    if product == "LanmanNT":
        return FAIL, "ProductType LanmanNT: a domain controller; cloning one is unsupported", [
            "SYSTEM ControlSet\\Control\\ProductOptions ProductType = LanmanNT"]
    from aclscan.hives.system import PRODUCT_TYPES

    return PASS, f"ProductType {product} ({PRODUCT_TYPES.get(product, 'unknown role')})", []


def sysprep_state(ctx: _Context) -> tuple[str, str, list[str]]:
    image_state = ctx.machine.get("image_state")
    generalization = ctx.machine.get("sysprep_generalization_state")
    if image_state is None and generalization is None:
        return SKIPPED, "no ImageState or SysprepStatus in the hives", []
    failures, notes = [], []
    if image_state is not None:
        deployable, meaning = IMAGE_STATES.get(image_state.replace(" ", ""),
                                               (False, "not a state Microsoft documents"))
        (notes if deployable else failures).append(f"SOFTWARE Setup\\State ImageState = {image_state}: {meaning}")
    if generalization is not None:
        cleanup = ctx.machine.get("sysprep_cleanup_state")
        extra = f", CleanupState = {cleanup}" if cleanup is not None else ""
        generalized = image_state is not None and "GENERALIZE_RESEAL" in image_state.replace(" ", "")
        if generalization == GENERALIZATION_DONE:
            notes.append(f"SYSTEM Setup\\Status\\SysprepStatus GeneralizationState = {generalization}{extra}: "
                         "no sysprep run pending or failed")
        elif generalized:
            # A sealed, generalized image: the value is undocumented, and ImageState (which
            # Microsoft documents) already says sysprep /generalize completed.
            notes.append(f"SYSTEM Setup\\Status\\SysprepStatus GeneralizationState = {generalization}{extra}: "
                         f"not {GENERALIZATION_DONE}, but ImageState says the image was generalized and sealed")
        else:
            failures.append(f"SYSTEM Setup\\Status\\SysprepStatus GeneralizationState = {generalization}{extra}: "
                            f"a sysprep run did not finish (Windows keeps {GENERALIZATION_DONE} otherwise)")
    if failures:
        return FAIL, "sysprep left the image undeployable", failures + notes
    return PASS, "sysprep state allows deployment", notes


def hives_present(ctx: _Context) -> tuple[str, str, list[str]]:
    found = ctx.machine.get("hives_found") or {}
    missing = [name for name in ("SAM", "SYSTEM") if name not in found]
    evidence = [f"{name}: {origin}" for name, origin in sorted(found.items())]
    if missing:
        return FAIL, f"no {' or '.join(missing)} hive: the machine cannot be judged", evidence
    return PASS, f"{len(found)} hive(s) read", evidence


RuleCheck = Callable[[_Context], tuple[str, str, list[str]]]

# What each rule judges, in a word or two, for the headline's "not judged: ..."
TOPICS = {
    "hives_present": "hives",
    "scan_complete": "completeness",
    "unique_machine_sid": "uniqueness",
    "no_stale_prefix": "stale prefixes",
    "no_problem_sids": "problem SIDs",
    "no_account_predates_sid_change": "local accounts",
    "not_domain_controller": "role",
    "sysprep_state": "sysprep state",
}

# (name, what it asks, how it is judged), in the order reported.
RULES: tuple[tuple[str, str, RuleCheck], ...] = (
    ("hives_present", "the machine's SAM and SYSTEM hives were read", hives_present),
    ("scan_complete", "nothing on the volume (hive, record, descriptor, task) was left unread", scan_complete),
    ("unique_machine_sid", "no other machine of the fleet (nor the history) has this machine SID",
     unique_machine_sid),
    ("no_stale_prefix", "no file, registry key, LSA right, service, share, task, profile or alias member names a "
                        "previous machine SID", no_stale_prefix),
    ("no_problem_sids", "nothing names another problem SID (orphan, unknown authority, unresolved, SID history, ...)",
     no_problem_sids),
    ("no_account_predates_sid_change", "no local account was made before the machine SID changed (or will be)",
     no_account_predates_sid_change),
    ("not_domain_controller", "the machine is not a domain controller (cloned DCs are unsupported)",
     not_domain_controller),
    ("sysprep_state", "sysprep's state, where the hives show it, allows deployment", sysprep_state),
)


def check(db, fleet=None, *, scan_path: str | None = None, fleet_path: str | None = None,
          strict: bool = False) -> Readiness:
    """Judge the scan database ``db`` (optionally against a fleet database); with
    ``strict`` a rule that could not be judged fails the machine. Raises
    DatabaseError for a scan that has no machine facts."""
    from aclscan.findings import machine_facts

    machine = machine_facts(db)
    if machine is None:
        if db.execute("SELECT 1 FROM findings LIMIT 1").fetchone() is not None:
            raise DatabaseError("the scan predates machine facts (schema 1): re-scan the image with this aclscan")
        raise DatabaseError("the scan has no verdicts or machine facts (scanned with --no-resolve?): re-scan "
                            "without --no-resolve")
    ctx = _Context(db, machine, fleet, scan_path)
    results = []
    for name, _question, judge in RULES:
        status, summary, evidence = judge(ctx)
        results.append(Rule(name, status, summary, tuple(evidence)))
    return Readiness(machine, tuple(results), fleet_path, strict)


def is_scan_database(target: str) -> bool:
    """Whether ``aclscan check``'s TARGET is a scan database (by its SQLite header, not its
    name) rather than an image; ImageError for a target that is no regular file or block
    device (checked first: reading a FIFO's header would block)."""
    from aclscan.errors import ImageError
    from aclscan.inputs import check_input_file
    from aclscan.store import is_sqlite_file

    check_input_file(target, "IMAGE", ImageError)
    return is_sqlite_file(target)


def check_target(target: str, *, image_source=None, resolve=None, fleet_path: str | None = None,
                 strict: bool = False) -> tuple[Readiness, str | None, str | None]:
    """Judge ``target``: a scan database as it is, or an image (``image_source``, an
    :class:`aclscan.image.ImageInput`) scanned first with the account sources ``resolve``
    into a temporary database, removed after. Returns the judgement, the scan database
    (None for an image) and the image (None for a database)."""
    import tempfile

    from aclscan.fleet import open_fleet
    from aclscan.store import open_database

    fleet = open_fleet(fleet_path, create=False) if fleet_path else None
    try:
        with tempfile.TemporaryDirectory(prefix="aclscan-check-") as scratch:
            if is_scan_database(target):
                image, database = None, str(Path(target).resolve())
            else:
                from aclscan.scan import scan_image

                image, database = str(Path(target).resolve()), str(Path(scratch) / "check.db")
                scan_image(image_source, database, resolve=resolve)
            db = open_database(database, index=False)
            try:
                result = check(db, fleet, scan_path=None if image else database, fleet_path=fleet_path,
                               strict=strict)
            finally:
                db.conn.close()
    finally:
        if fleet is not None:
            fleet.conn.close()  # the fleet is only read here
    return result, None if image else database, image


def to_json(result: Readiness, *, database: str | None = None, image: str | None = None) -> dict:
    """The versioned JSON document of `aclscan check --format json`."""
    questions = {name: question for name, question, _ in RULES}
    machine = {k: v for k, v in result.machine.items()}
    return {
        "check_format": 1,
        "ready": result.ready,
        "database": database,
        "image": image,
        "fleet": result.fleet,
        "machine": machine,
        "headline": result.headline,
        "strict": result.strict,
        "failed": [r.name for r in result.failed],
        "not_judged": [r.name for r in result.unjudged],
        "rules": [{"name": r.name, "checks": questions.get(r.name), "status": r.status, "summary": r.summary,
                   "evidence": list(r.evidence)} for r in result.rules],
    }
