"""Remediation plans: what to change, computed as data before anything is applied.

A plan is built from a scan database alone. Each problem finding becomes one or
more actions, or a refusal with its reason:

* ``replace_sid``: a stale-prefix SID mapped by name (built-in RIDs by RID) to
  today's account, or a rid_collision whose old *name* exists under another RID;
* ``translate_sid_history``: a SID an account lists in sIDHistory, to that account;
* ``remove_aces``: the ACEs of an orphan (a deleted account of a complete authority);
* ``reassign_owner`` / ``reassign_group``: an orphan that owns files, to the account
  the user names (BUILTIN\\Administrators by default);
* ``grant_lsa_rights``, ``replace_alias_member``, ``repoint_service``: the registry
  side (LSA policy, SAM aliases, services), for the live machine's script;
* ``refuse``: no safe action (a RID collision with no name match must never become a
  prefix rewrite; an unknown authority; a cloned domain controller).

Descriptor actions are applied per *distinct* descriptor: every descriptor that
carries an acted-on SID is rewritten, explicit ACEs and their inherited copies
alike. That equals fixing the ACE where it is explicit and letting inheritance
carry the change down (substituting or dropping a SID commutes with inheritance),
and the plan says how many files hold the explicit ACE and how many only a copy.
The plan's JSON form is a documented, versioned contract (``plan_schema.json``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

from aclscan import classify
from aclscan.errors import MalformedData, PlanMismatch
from aclscan.findings import iter_findings
from aclscan.graph import build_graph, impact, sid_id
from aclscan.sd.acl import ACL
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import to_sddl
from aclscan.sd.sid import SID

PLAN_FORMAT = 1
SCHEMA_PATH = Path(__file__).with_name("plan_schema.json")
ADMINISTRATORS = "S-1-5-32-544"

REPLACE_SID = "replace_sid"
TRANSLATE_SID_HISTORY = "translate_sid_history"
REMOVE_ACES = "remove_aces"
REASSIGN_OWNER = "reassign_owner"
REASSIGN_GROUP = "reassign_group"
GRANT_LSA_RIGHTS = "grant_lsa_rights"
REPLACE_ALIAS_MEMBER = "replace_alias_member"
REPOINT_SERVICE = "repoint_service"
REFUSE = "refuse"
ACTION_KINDS = (REPLACE_SID, TRANSLATE_SID_HISTORY, REMOVE_ACES, REASSIGN_OWNER, REASSIGN_GROUP,
                GRANT_LSA_RIGHTS, REPLACE_ALIAS_MEMBER, REPOINT_SERVICE, REFUSE)
# Actions on security descriptors (the offline fix applies these); the others change
# the registry, which only the live machine's script does.
DESCRIPTOR_KINDS = frozenset({REPLACE_SID, TRANSLATE_SID_HISTORY, REMOVE_ACES, REASSIGN_OWNER, REASSIGN_GROUP})


class InvalidPlan(MalformedData):
    """A plan file that is not a plan this aclscan can read."""


@dataclass(frozen=True)
class Action:
    """One thing to do about one SID (or the reason nothing can be done)."""

    id: str
    kind: str
    sid: str
    verdict: str
    reason: str
    account: str | None = None
    new_sid: str | None = None  # the SID written instead (replace, translate, reassign)
    files: int = 0  # files whose descriptor this action changes
    descriptors: int = 0  # distinct descriptors it changes
    explicit_files: int = 0  # files where the SID is explicit: owner, group or a non-inherited ACE
    inherited_files: int = 0  # files that carry only inherited copies (they follow the source)
    folders: tuple[str, ...] = ()  # directories where the SID's explicit ACEs sit (fix at the source)
    services: tuple[str, ...] = ()
    rights: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @property
    def is_descriptor_action(self) -> bool:
        return self.kind in DESCRIPTOR_KINDS


@dataclass(frozen=True)
class DescriptorChange:
    """One distinct descriptor of the scanned volume and what it becomes."""

    volume_id: int
    descriptor_key: int
    security_id: int | None
    files: int
    old_sddl: str
    new_sddl: str
    old_sha256: str  # of the original bytes: fix refuses a file whose descriptor differs
    new_raw: bytes  # the self-relative bytes to write
    actions: tuple[str, ...]  # ids of the actions that change it


@dataclass(frozen=True)
class Skipped:
    """A descriptor an action would have damaged, left alone with the reason."""

    descriptor_key: int
    action: str
    reason: str


@dataclass(frozen=True)
class Plan:
    scan: dict  # the scanned volume(s) and database the plan was made from
    owner: str  # the account orphans' files are reassigned to
    group: str
    actions: tuple[Action, ...]
    descriptors: tuple[DescriptorChange, ...]
    skipped: tuple[Skipped, ...] = ()
    plan_format: int = PLAN_FORMAT

    @property
    def refusals(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind == REFUSE)

    def action(self, action_id: str) -> Action:
        return next(a for a in self.actions if a.id == action_id)

    def to_dict(self) -> dict:
        return {
            "plan_format": self.plan_format,
            "scan": self.scan,
            "owner": self.owner,
            "group": self.group,
            "summary": {
                "actions": len(self.actions),
                "refusals": len(self.refusals),
                "descriptors": len(self.descriptors),
                "files": sum(c.files for c in self.descriptors),
            },
            "actions": [_action_dict(a) for a in self.actions],
            "descriptors": [_change_dict(c) for c in self.descriptors],
            "skipped": [asdict(s) for s in self.skipped],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _action_dict(action: Action) -> dict:
    item = asdict(action)
    for name in ("folders", "services", "rights", "groups"):
        item[name] = list(item[name])
    return item


def _change_dict(change: DescriptorChange) -> dict:
    item = asdict(change)
    item["new_raw"] = base64.b64encode(change.new_raw).decode("ascii")
    item["actions"] = list(change.actions)
    return item


def plan_from_json(text: str) -> Plan:
    """Read a plan written by :meth:`Plan.to_json`; InvalidPlan (exit 8) if it is not one."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPlan(f"not a plan: not JSON ({exc})") from None
    if not isinstance(data, dict) or "plan_format" not in data:
        raise InvalidPlan("not a plan: no plan_format")
    if data["plan_format"] != PLAN_FORMAT:
        raise InvalidPlan(f"plan format {data['plan_format']!r}; this aclscan reads format {PLAN_FORMAT}")
    try:
        actions = tuple(
            Action(**{**a, **{n: tuple(a.get(n, ())) for n in ("folders", "services", "rights", "groups")}})
            for a in data["actions"])
        changes = tuple(
            DescriptorChange(**{**c, "new_raw": base64.b64decode(c["new_raw"], validate=True),
                                "actions": tuple(c["actions"])})
            for c in data["descriptors"])
        skipped = tuple(Skipped(**s) for s in data.get("skipped", ()))
        plan = Plan(scan=dict(data["scan"]), owner=data["owner"], group=data["group"], actions=actions,
                    descriptors=changes, skipped=skipped)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPlan(f"not a plan: {exc.__class__.__name__}: {exc}") from None
    known = {a.id for a in actions}
    for change in changes:
        if not set(change.actions) <= known:
            raise InvalidPlan(f"descriptor {change.descriptor_key} names an action the plan lacks")
        SecurityDescriptor.from_bytes(change.new_raw)  # a malformed replacement fails here, not mid-fix
    return plan


def read_plan(path: str | Path) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidPlan(f"no plan file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPlan(f"cannot read plan {path}: {exc}") from None
    return plan_from_json(text)


# --------------------------------------------------------------------- rewriting


@dataclass(frozen=True)
class Rewrite:
    """SIDs to substitute and SIDs to drop, applied to any descriptor."""

    replace: dict[str, str] = field(default_factory=dict)
    remove: frozenset[str] = frozenset()
    owner: str = ADMINISTRATORS  # a removed SID that owns the file gives way to this
    group: str = ADMINISTRATORS

    def owner_of(self, sid: SID | None) -> SID | None:
        return self._principal(sid, self.owner)

    def group_of(self, sid: SID | None) -> SID | None:
        return self._principal(sid, self.group)

    def _principal(self, sid: SID | None, fallback: str) -> SID | None:
        if sid is None:
            return None
        text = str(sid)
        if text in self.replace:
            return SID.from_string(self.replace[text])
        if text in self.remove:
            return SID.from_string(fallback)
        return sid

    def acl(self, acl: ACL | None) -> ACL | None:
        if acl is None:
            return None
        aces = []
        changed = False
        for ace in acl.aces:
            sid = str(ace.sid) if ace.sid is not None else None
            if sid in self.remove:
                changed = True
                continue
            updates = {}
            if sid in self.replace:
                updates["sid"] = SID.from_string(self.replace[sid])
            server = str(ace.server_sid) if ace.server_sid is not None else None
            if server in self.replace:
                updates["server_sid"] = SID.from_string(self.replace[server])
            if updates:
                changed = True
                ace = replace(ace, **updates)
            aces.append(ace)
        return ACL(revision=acl.revision, aces=tuple(aces)) if changed else acl

    def apply(self, sd: SecurityDescriptor) -> SecurityDescriptor:
        return SecurityDescriptor(revision=sd.revision, control=sd.control, owner=self.owner_of(sd.owner),
                                  group=self.group_of(sd.group), dacl=self.acl(sd.dacl), sacl=self.acl(sd.sacl),
                                  sbz1=sd.sbz1)

    @classmethod
    def of(cls, actions: Iterable[tuple[str, str, str | None]], *, owner: str, group: str) -> "Rewrite":
        """The rewrite that (kind, sid, new_sid) actions call for: planning builds it from
        its intents, the fixer from a plan file's actions, so both rewrite alike."""
        replace_, remove = {}, set()
        for kind, sid, new_sid in actions:
            if kind in (REPLACE_SID, TRANSLATE_SID_HISTORY):
                replace_[sid] = new_sid
            elif kind == REMOVE_ACES:
                remove.add(sid)
        return cls(replace=replace_, remove=frozenset(remove), owner=owner, group=group)

    def rewritten(self, old: SecurityDescriptor) -> tuple[SecurityDescriptor, bool]:
        """(the new descriptor, whether removals were held back). Dropping an orphan's ACEs
        must not leave an empty DACL, which denies everyone: then only the substitutions apply."""
        new = self.apply(old)
        if self.remove and old.dacl is not None and old.dacl.aces and new.dacl is not None and not new.dacl.aces:
            return replace(self, remove=frozenset()).apply(old), True
        return new, False


# ---------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Intent:
    """What a finding calls for, before its descriptors are counted."""

    kind: str
    finding: dict
    reason: str
    new_sid: str | None = None


def build_plan(db, *, owner: str = ADMINISTRATORS, group: str | None = None, database: str | None = None) -> Plan:
    """The plan for a scan database (sqlite-utils Database from store.open_database)."""
    owner = str(SID.from_string(owner))
    group = str(SID.from_string(group)) if group else owner
    findings = list(iter_findings(db, problems_only=True))
    dc_reason = _domain_controller(db)
    intents: list[_Intent] = []
    if dc_reason:
        intents.append(_Intent(REFUSE, {"sid": _machine_sid(db) or "", "verdict": "domain_controller",
                                        "account": None}, dc_reason))
    else:
        for finding in findings:
            intents.extend(_intents_for(finding))
    actions: list[Action] = []
    numbered = [(f"A{i}", intent) for i, intent in enumerate(intents, 1)]
    rewrite = Rewrite.of(((i.kind, i.finding["sid"], i.new_sid) for _, i in numbered), owner=owner, group=group)
    action_of = {}
    for action_id, intent in numbered:
        sid = intent.finding["sid"]
        if intent.kind in (REPLACE_SID, TRANSLATE_SID_HISTORY, REMOVE_ACES):
            action_of.setdefault(sid, []).append(action_id)
    reassign_ids: dict[tuple[str, str], str] = {}
    next_id = len(numbered) + 1
    # Orphans that own or group files get their reassignment actions too.
    for action_id, intent in list(numbered):
        if intent.kind != REMOVE_ACES:
            continue
        for role, column, target, kind in (("owner", "as_owner", owner, REASSIGN_OWNER),
                                           ("group", "as_group", group, REASSIGN_GROUP)):
            if intent.finding.get(column):
                new_id = f"A{next_id}"
                next_id += 1
                reassign_ids[(intent.finding["sid"], role)] = new_id
                numbered.append((new_id, _Intent(kind, intent.finding, f"the {role} is an orphan: "
                                                 f"give the files' {role}ship to {target}", target)))
    refused = {i.finding["sid"] for _, i in numbered if i.kind == REFUSE}
    changes, skipped, counts, left = _descriptor_changes(db, rewrite, action_of, reassign_ids, refused)
    graph = build_graph(db)
    impacts = {f["sid"]: impact(graph, f["sid"]) for f in findings if sid_id(f["sid"]) in graph}
    folders = {sid: i.folders for sid, i in impacts.items()}
    for action_id, intent in numbered:
        finding = intent.finding
        # A refusal counts what it leaves as it is; the others what they change.
        files, descriptors, explicit = (left if intent.kind == REFUSE else counts).get(
            finding["sid"] if intent.kind == REFUSE else action_id, (0, 0, 0))
        actions.append(Action(
            id=action_id, kind=intent.kind, sid=finding["sid"], verdict=finding["verdict"], reason=intent.reason,
            account=finding.get("account"), new_sid=intent.new_sid, files=files, descriptors=descriptors,
            explicit_files=explicit, inherited_files=files - explicit,
            folders=tuple(folders.get(finding["sid"], ())) if intent.kind not in (REASSIGN_OWNER, REASSIGN_GROUP)
            else (),
        ))
    actions.extend(_registry_actions(db, findings, impacts, start=next_id))
    return Plan(scan=_scan_identity(db, database), owner=owner, group=group, actions=tuple(actions),
                descriptors=tuple(changes), skipped=tuple(skipped))


def _intents_for(finding: dict) -> list[_Intent]:
    verdict, mapped = finding["verdict"], finding["mapped_sid"]
    # Quoted: account names can be ordinary words ("None" is the name of RID 513's group).
    who = f'"{finding["account"]}"' if finding["account"] else "the old account"
    if verdict == classify.STALE_PREFIX and mapped:
        return [_Intent(REPLACE_SID, finding, f"previous machine SID of {who}: today's account of that name "
                                              f"is {mapped}", mapped)]
    if verdict == classify.RID_COLLISION and mapped:
        return [_Intent(REPLACE_SID, finding, f"{who}'s RID now belongs to another account, but the name {who} "
                                              f"exists today as {mapped}: map by name", mapped)]
    if verdict == classify.SID_HISTORY and mapped:
        return [_Intent(TRANSLATE_SID_HISTORY, finding, f"{who} lists it in sIDHistory", mapped)]
    if verdict == classify.ORPHAN:
        return [_Intent(REMOVE_ACES, finding, "a deleted account of a complete authority: its ACEs grant nothing")]
    return [_Intent(REFUSE, finding, _refusal(finding))]


def _refusal(finding: dict) -> str:
    verdict = finding["verdict"]
    # The evidence that says who holds the RID now comes first; then the latest facts.
    lines = finding["evidence"]
    evidence = "; ".join([e for e in lines if "now belongs" in e][:1] or lines[-2:])
    if verdict == classify.RID_COLLISION:
        who = f'"{finding["account"]}"' if finding["account"] else "its old account"
        why = f"no account today is named {who}, and its RID belongs to another account now"
    elif verdict == classify.STALE_PREFIX:
        why = "a previous machine SID with no name mapping: give the master's SAM or an earlier scan (--history)"
    elif verdict == classify.SID_HISTORY:
        why = "listed in sIDHistory, but the account that lists it is unknown"
    elif verdict in (classify.UNKNOWN_AUTHORITY, classify.UNRESOLVED):
        why = "no source knows this account: give a domain export, --ldap or --history and scan again"
    elif verdict == classify.FOREIGN_MACHINE:
        why = "another machine's SID: decide per machine (see aclscan fleet)"
    elif verdict == classify.INCONSISTENT_HIVES:
        why = "the volume's own hives disagree about the machine SID: resolve that first"
    else:
        why = f"no safe action for verdict {verdict}"
    return f"{why} ({evidence})" if evidence else why


def _descriptor_changes(db, rewrite: Rewrite, action_of: dict[str, list[str]],
                        reassign_ids: dict[tuple[str, str], str], refused: set[str]):
    """Every distinct descriptor that carries an acted-on SID, rewritten; per-action counts
    (files, descriptors, explicit files) and the same per refused SID (what stays)."""
    changing = set(rewrite.replace) | set(rewrite.remove)
    acted = changing | refused
    if not acted:
        return [], [], {}, {}
    left: dict[str, list[int]] = {}
    marks = ", ".join("?" for _ in acted)
    params = sorted(acted)
    rows = db.execute(
        f"SELECT key, volume_id, security_id, raw, files FROM descriptors WHERE key IN "
        f"(SELECT descriptor_key FROM aces WHERE sid IN ({marks})) OR owner IN ({marks}) OR \"group\" IN ({marks}) "
        f"ORDER BY key", params * 3)
    changes, skipped = [], []
    counts: dict[str, list[int]] = {}
    for key, volume_id, security_id, raw, files in rows:
        if raw is None:
            continue  # unparsed descriptors are in scan_errors; nothing to rewrite safely
        files = files or 0
        old = SecurityDescriptor.from_bytes(raw)
        touched, explicit_here = _sids_in(old, acted)
        for sid in touched & refused:
            _tally(left, sid, files, sid in explicit_here)
        touched -= refused
        new, held_back = rewrite.rewritten(old)
        if held_back:
            for sid in touched & rewrite.remove:
                for action_id in action_of.get(sid, ()):
                    skipped.append(Skipped(key, action_id, "removing the orphan's ACEs would leave an empty DACL "
                                                           "(no access for anyone): left as it is"))
            touched -= rewrite.remove
        ids = []
        for sid in sorted(touched):
            for action_id in action_of.get(sid, ()):
                ids.append(action_id)
                _tally(counts, action_id, files, sid in explicit_here)
            if sid in rewrite.remove:
                for role, principal in (("owner", old.owner), ("group", old.group)):
                    if principal is not None and str(principal) == sid and (sid, role) in reassign_ids:
                        ids.append(reassign_ids[(sid, role)])
                        _tally(counts, reassign_ids[(sid, role)], files, True)
        new_raw = new.to_bytes()
        if not ids or new_raw == raw:
            continue
        changes.append(DescriptorChange(
            volume_id=volume_id, descriptor_key=key, security_id=security_id, files=files,
            old_sddl=to_sddl(old), new_sddl=to_sddl(new), old_sha256=hashlib.sha256(raw).hexdigest(),
            new_raw=new_raw, actions=tuple(dict.fromkeys(ids))))
    return changes, skipped, {k: tuple(v) for k, v in counts.items()}, {k: tuple(v) for k, v in left.items()}


def _tally(table: dict, key: str, files: int, explicit: bool) -> None:
    """Count one descriptor under ``key``: [files, descriptors, files where it is explicit]."""
    count = table.setdefault(key, [0, 0, 0])
    count[0] += files
    count[1] += 1
    count[2] += files if explicit else 0


def _sids_in(sd: SecurityDescriptor, wanted: set[str]) -> tuple[set[str], set[str]]:
    """(acted-on SIDs the descriptor carries, those of them that are explicit here)."""
    touched, explicit = set(), set()
    for principal in (sd.owner, sd.group):
        if principal is not None and str(principal) in wanted:
            touched.add(str(principal))
            explicit.add(str(principal))
    for acl in (sd.dacl, sd.sacl):
        for ace in acl.aces if acl is not None else ():
            for sid in ace.sids:
                text = str(sid)
                if text in wanted:
                    touched.add(text)
                    if not ace.is_inherited:
                        explicit.add(text)
    return touched, explicit


def _registry_actions(db, findings: list[dict], impacts: dict, start: int) -> list[Action]:
    """LSA rights, alias memberships and service logons that name a mapped SID (from the
    graph's impact of each finding)."""
    actions = []
    number = start
    for finding in findings:
        new_sid = finding["mapped_sid"]
        found = impacts.get(finding["sid"])
        if not new_sid or found is None or finding["verdict"] not in (
                classify.STALE_PREFIX, classify.RID_COLLISION, classify.SID_HISTORY):
            continue
        # Alias names as this machine's SAM spells them (hive_references), not the graph's SIDs.
        groups = sorted({detail for (detail,) in db.execute(
            "SELECT detail FROM hive_references WHERE sid = ? AND kind = 'alias_member'", [finding["sid"]])})
        who = finding["account"] or finding["sid"]
        common = {"sid": finding["sid"], "verdict": finding["verdict"], "account": finding["account"],
                  "new_sid": new_sid}
        if found.lsa_rights:
            reason = f"the old SID of {who} holds these rights; today's {new_sid} needs them"
            if found.mapped_services:
                reason += f" (services logging on as it: {', '.join(found.mapped_services)})"
            actions.append(Action(id=f"A{number}", kind=GRANT_LSA_RIGHTS, reason=reason, rights=found.lsa_rights,
                                  services=found.mapped_services, **common))
            number += 1
        if groups:
            actions.append(Action(id=f"A{number}", kind=REPLACE_ALIAS_MEMBER, groups=tuple(groups),
                                  reason=f"these groups list the old SID of {who}", **common))
            number += 1
        if found.services:
            actions.append(Action(id=f"A{number}", kind=REPOINT_SERVICE, services=found.services,
                                  reason=f"these services log on as the old SID of {who}", **common))
            number += 1
    return actions


def _domain_controller(db) -> str | None:
    """Why no plan can be made (the machine is a domain controller), or None."""
    row = db.execute("SELECT product_type FROM machine LIMIT 1").fetchone()
    if row is not None and row[0] == "LanmanNT":
        return ("ProductType LanmanNT: a domain controller; cloning one is unsupported and its SIDs are the "
                "domain's: restore it from backup or demote it, do not rewrite its ACLs")
    return None


def _machine_sid(db) -> str | None:
    row = db.execute("SELECT sid FROM authorities WHERE kind = 'machine' LIMIT 1").fetchone()
    return row[0] if row else None


def _scan_identity(db, database: str | None) -> dict:
    volumes = [
        {"id": v, "image": image, "serial": serial, "mft_records": mft_records, "scanned_at": scanned_at}
        for v, image, serial, mft_records, scanned_at in db.execute(
            "SELECT id, image, serial, mft_records, scanned_at FROM volumes ORDER BY id")
    ]
    return {"database": database, "machine_sid": _machine_sid(db), "volumes": volumes}


# ------------------------------------------------------------------ checking a plan


def verify_plan(db, plan: Plan) -> None:
    """PlanMismatch unless the plan is what its scan calls for: every descriptor action is
    the one the scan's finding gives (same kind, same new SID), and every descriptor
    change is the scanned original (``old_sha256``) rewritten by the plan's actions
    (``new_raw``, and the SDDL shown to people). Nothing of the plan's bytes is trusted."""
    _verify_actions(db, plan)
    rewrite = Rewrite.of(((a.kind, a.sid, a.new_sid) for a in plan.actions), owner=plan.owner, group=plan.group)
    originals = {key: (volume_id, raw) for key, volume_id, raw in db.execute(
        "SELECT key, volume_id, raw FROM descriptors WHERE key IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted({c.descriptor_key for c in plan.descriptors}))])}
    for change in plan.descriptors:
        volume_id, raw = originals.get(change.descriptor_key, (None, None))
        if raw is None or volume_id != change.volume_id:
            raise PlanMismatch(f"plan descriptor {change.descriptor_key}: the scan has no such descriptor on "
                               f"volume {change.volume_id}")
        if hashlib.sha256(raw).hexdigest() != change.old_sha256:
            raise PlanMismatch(f"plan descriptor {change.descriptor_key}: old_sha256 is not the scanned descriptor's")
        old = SecurityDescriptor.from_bytes(raw)
        new, _held_back = rewrite.rewritten(old)
        if new.to_bytes() != change.new_raw:
            raise PlanMismatch(f"plan descriptor {change.descriptor_key}: new_raw is not the scanned descriptor "
                               "with the plan's actions applied: refusing the plan")
        if change.old_sddl != to_sddl(old) or change.new_sddl != to_sddl(new):
            raise PlanMismatch(f"plan descriptor {change.descriptor_key}: its SDDL is not the descriptor's")


def _verify_actions(db, plan: Plan) -> None:
    findings = {f["sid"]: f for f in iter_findings(db, problems_only=True)}
    removed = {a.sid for a in plan.actions if a.kind == REMOVE_ACES}
    refusing_all = _domain_controller(db) is not None
    for action in plan.actions:
        if not action.is_descriptor_action:
            continue
        if action.kind in (REASSIGN_OWNER, REASSIGN_GROUP):
            expected = plan.owner if action.kind == REASSIGN_OWNER else plan.group
            agrees = action.sid in removed and action.new_sid == expected
        else:
            finding = findings.get(action.sid)
            intents = _intents_for(finding) if finding is not None and not refusing_all else []
            agrees = any(i.kind == action.kind and i.new_sid == action.new_sid for i in intents)
        if not agrees:
            raise PlanMismatch(f"plan action {action.id} ({action.kind} {action.sid} -> {action.new_sid}) is not "
                               "what the scan's findings call for: refusing the plan")


# ------------------------------------------------------------------ files of a plan


@dataclass(frozen=True)
class PlannedFile:
    path: str
    is_dir: bool
    volume_id: int
    entry: int
    change: DescriptorChange
    sequence: int = 0  # the MFT record's sequence number at the scan


def iter_plan_files(db, plan: Plan, *, volume_id: int | None = None) -> Iterator[PlannedFile]:
    """Every file whose descriptor the plan changes, by path (streamed: there may be millions)."""
    by_key = {c.descriptor_key: c for c in plan.descriptors if volume_id is None or c.volume_id == volume_id}
    if not by_key:
        return
    cursor = db.execute(
        "SELECT path, is_dir, volume_id, entry, descriptor_key, sequence FROM files "
        "WHERE descriptor_key IN (SELECT value FROM json_each(?)) ORDER BY volume_id, path",
        [json.dumps(sorted(by_key))])
    for path, is_dir, vol, entry, key, sequence in cursor:
        yield PlannedFile(path, bool(is_dir), vol, entry, by_key[key], sequence or 0)
