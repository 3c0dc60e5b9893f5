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
* ``add_sid``: with ``mode="add"``, the new SID's ACEs added beside the old SID's (a
  staged migration), owner and group substituted;
* ``refuse``: no safe action (a RID collision with no name match must never become a
  prefix rewrite; an unknown authority; a cloned domain controller).

The administrator's choices (ADMT's translation modes, offline) shape it: a mapping file
(:mod:`aclscan.mapping`) re-points SIDs the tool cannot map by itself; ``mode`` replace
(default), add or remove applies to every re-pointing; ``remove_orphans`` drops the ACEs of
RID collisions without a mapping, as orphans' are, their ownership going to ``owner``.

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
from typing import Iterable, Iterator, NamedTuple, Sequence

from aclscan import classify
from aclscan.errors import MalformedData, PlanMismatch
from aclscan.findings import iter_findings
from aclscan.graph import build_graph, impact, sid_id
from aclscan.mapping import MapRow
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.rewrite import ADMINISTRATORS, Rewrite
from aclscan.store import LIVE_VOLUMES
from aclscan.sd.sddl import to_sddl
from aclscan.sd.sid import SID

PLAN_FORMAT = 1
SCHEMA_PATH = Path(__file__).with_name("plan_schema.json")

REPLACE_SID = "replace_sid"
TRANSLATE_SID_HISTORY = "translate_sid_history"
REMOVE_ACES = "remove_aces"
REASSIGN_OWNER = "reassign_owner"
REASSIGN_GROUP = "reassign_group"
GRANT_LSA_RIGHTS = "grant_lsa_rights"
REPLACE_ALIAS_MEMBER = "replace_alias_member"
REPOINT_SERVICE = "repoint_service"
REPOINT_PROFILE = "repoint_profile"
REMOVE_ALIAS_MEMBER = "remove_alias_member"
REVOKE_LSA_RIGHTS = "revoke_lsa_rights"
DETACH_PROFILE = "detach_profile"
ADD_SID = "add_sid"
REFUSE = "refuse"
ACTION_KINDS = (REPLACE_SID, TRANSLATE_SID_HISTORY, ADD_SID, REMOVE_ACES, REASSIGN_OWNER, REASSIGN_GROUP,
                GRANT_LSA_RIGHTS, REPLACE_ALIAS_MEMBER, REPOINT_SERVICE, REPOINT_PROFILE, REMOVE_ALIAS_MEMBER,
                REVOKE_LSA_RIGHTS, DETACH_PROFILE, REFUSE)
# Actions on the machine's hives themselves (the offline fix writes them through the hive
# editor; the live machine's script does them too).
HIVE_KINDS = frozenset({GRANT_LSA_RIGHTS, REPLACE_ALIAS_MEMBER, REPOINT_PROFILE, REMOVE_ALIAS_MEMBER,
                        REVOKE_LSA_RIGHTS, DETACH_PROFILE})
# Actions on security descriptors (the offline fix applies these); the others change
# the registry, which only the live machine's script does.
DESCRIPTOR_KINDS = frozenset({REPLACE_SID, TRANSLATE_SID_HISTORY, ADD_SID, REMOVE_ACES, REASSIGN_OWNER,
                              REASSIGN_GROUP})
_REPOINTING = (REPLACE_SID, TRANSLATE_SID_HISTORY, ADD_SID)  # actions that hand a SID's access to another

# --mode: how every re-pointing is done (ADMT's security translation modes).
MODE_REPLACE, MODE_ADD, MODE_REMOVE = "replace", "add", "remove"
MODES = (MODE_REPLACE, MODE_ADD, MODE_REMOVE)


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
    places: dict = field(default_factory=dict)  # place kind -> places (keys, shares, ...) whose descriptor it changes
    profiles: tuple[str, ...] = ()  # ProfileList entries (profile folders) it re-points

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
    source: str = "sds"  # sds/attribute (files), registry (sk cell), value (in a registry value), task (task file)
    places: int = 0  # places other than files (keys, services, ...) that use it


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
    choices: dict = field(default_factory=dict)  # mode, remove_orphans, map rows: what the administrator chose

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
                "places": sum(c.places for c in self.descriptors),
            },
            "actions": [_action_dict(a) for a in self.actions],
            "descriptors": [_change_dict(c) for c in self.descriptors],
            "skipped": [asdict(s) for s in self.skipped],
            **({"choices": self.choices} if self.choices else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _action_dict(action: Action) -> dict:
    item = asdict(action)
    for name in ("folders", "services", "rights", "groups", "profiles"):
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
            Action(**{**a, **{n: tuple(a.get(n, ())) for n in ("folders", "services", "rights", "groups",
                                                                  "profiles")},
                      "places": dict(a.get("places") or {})})
            for a in data["actions"])
        changes = tuple(
            DescriptorChange(**{**c, "new_raw": base64.b64decode(c["new_raw"], validate=True),
                                "actions": tuple(c["actions"])})
            for c in data["descriptors"])
        skipped = tuple(Skipped(**s) for s in data.get("skipped", ()))
        plan = Plan(scan=dict(data["scan"]), owner=data["owner"], group=data["group"], actions=actions,
                    descriptors=changes, skipped=skipped, choices=dict(data.get("choices") or {}))
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


# ---------------------------------------------------------------------- planning


def rewrite_of(actions: Iterable[tuple[str, str, str | None]], *, owner: str, group: str) -> Rewrite:
    """The descriptor rewrite that (kind, sid, new_sid) actions call for: planning builds it
    from its intents, the fixer from a plan file's actions, so both rewrite alike."""
    replace_, add, remove = {}, {}, set()
    for kind, sid, new_sid in actions:
        if kind in (REPLACE_SID, TRANSLATE_SID_HISTORY):
            replace_[sid] = new_sid
        elif kind == ADD_SID:
            add[sid] = new_sid
        elif kind == REMOVE_ACES:
            remove.add(sid)
    return Rewrite(replace=replace_, add=add, remove=frozenset(remove), owner=owner, group=group)


@dataclass(frozen=True)
class _Intent:
    """What a finding calls for, before its descriptors are counted."""

    kind: str
    finding: dict
    reason: str
    new_sid: str | None = None


def build_plan(db, *, owner: str = ADMINISTRATORS, group: str | None = None, database: str | None = None,
               mapping: Sequence[MapRow] = (), mode: str = MODE_REPLACE, remove_orphans: bool = False) -> Plan:
    """The plan for a scan database (sqlite-utils Database from store.open_database).

    ``mapping`` (rows of :func:`aclscan.mapping.read_mapping`) re-points the SIDs it names,
    overriding what the tool would do; ``mode`` says how every re-pointing is done
    (replace, add beside, remove); ``remove_orphans`` removes the ACEs of RID collisions
    left without a mapping (orphans' are removed in any case)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    owner = str(SID.from_string(owner))
    group = str(SID.from_string(group)) if group else owner
    findings = list(iter_findings(db, problems_only=True))
    rows = {row.old: row for row in mapping}
    listed = {f["sid"] for f in findings}
    # A mapped SID the classifier found no problem with (a domain move): planned all the same.
    findings += [f for f in iter_findings(db) if f["sid"] in rows and f["sid"] not in listed]
    dc_reason = _domain_controller(db)
    intents: list[_Intent] = []
    if dc_reason:
        intents.append(_Intent(REFUSE, {"sid": _machine_sid(db) or "", "verdict": "domain_controller",
                                        "account": None}, dc_reason))
    else:
        names = _account_names(db)
        for finding in findings:
            row = rows.get(finding["sid"])
            found = [_mapped_intent(finding, row, names)] if row else _intents_for(finding)
            if remove_orphans:
                found = [_removed_collision(i) for i in found]
            intents.extend(_in_mode(i, mode, owner) for i in found)
    actions: list[Action] = []
    numbered = [(f"A{i}", intent) for i, intent in enumerate(intents, 1)]
    rewrite = rewrite_of(((i.kind, i.finding["sid"], i.new_sid) for _, i in numbered), owner=owner, group=group)
    action_of = {}
    for action_id, intent in numbered:
        sid = intent.finding["sid"]
        if intent.kind in _REPOINTING + (REMOVE_ACES,):
            action_of.setdefault(sid, []).append(action_id)
    reassign_ids: dict[tuple[str, str], str] = {}
    next_id = len(numbered) + 1
    # SIDs whose ACEs go that own or group files get their reassignment actions too.
    for action_id, intent in list(numbered):
        if intent.kind != REMOVE_ACES:
            continue
        for role, column, target, kind, remedy in (
                ("owner", "as_owner", owner, REASSIGN_OWNER, f"give the files' ownership to {owner}"),
                ("group", "as_group", group, REASSIGN_GROUP, f"make {group} the files' primary group")):
            if intent.finding.get(column):
                new_id = f"A{next_id}"
                next_id += 1
                reassign_ids[(intent.finding["sid"], role)] = new_id
                why = (f"the {role} is an orphan" if intent.finding["verdict"] == classify.ORPHAN
                       else f"the {role}'s ACEs are removed")
                numbered.append((new_id, _Intent(kind, intent.finding, f"{why}: {remedy}", target)))
    refused = {i.finding["sid"] for _, i in numbered if i.kind == REFUSE}
    changes, skipped, counts, left = _descriptor_changes(db, rewrite, action_of, reassign_ids, refused)
    graph = build_graph(db)
    impacts = {f["sid"]: impact(graph, f["sid"]) for f in findings if sid_id(f["sid"]) in graph}
    folders = {sid: i.folders for sid, i in impacts.items()}
    places_of = _action_places(db, changes)
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
            places=dict(sorted(places_of.get(action_id, {}).items())),
        ))
    targets = {i.finding["sid"]: i.new_sid for _, i in numbered if i.kind in _REPOINTING}
    removed = {i.finding["sid"] for _, i in numbered if i.kind == REMOVE_ACES}
    actions.extend(_registry_actions(db, findings, impacts, targets, start=next_id, removed=removed))
    choices = {}
    if mapping or mode != MODE_REPLACE or remove_orphans:
        choices = {"mode": mode, "remove_orphans": remove_orphans,
                   "map": [{"line": r.line, "old": r.old, "new": r.new, "consent": r.consent} for r in mapping]}
    return Plan(scan=_scan_identity(db, database), owner=owner, group=group, actions=tuple(actions),
                descriptors=tuple(changes), skipped=tuple(skipped), choices=choices)


def _account_names(db) -> dict[str, str]:
    """SID -> DOMAIN\\name of today's accounts, to say who gains what."""
    return {sid: f"{domain}\\{name}" if domain else name
            for sid, name, domain in db.execute("SELECT sid, name, domain FROM accounts") if name}


def _mapped_intent(finding: dict, row: MapRow, names: dict[str, str]) -> _Intent:
    who = f'"{finding["account"]}"' if finding["account"] else finding["sid"]
    heir = names.get(row.new, row.new)
    reason = f"mapped by the administrator ({row.source}): {heir} gains {who}'s access"
    if row.consent:
        reason += f" (with consent: {heir} may hold {who}'s RID today)"
    if row.new not in names:
        reason += f"; {row.new} is no account this scan knows"
    kind = TRANSLATE_SID_HISTORY if finding["verdict"] == classify.SID_HISTORY else REPLACE_SID
    return _Intent(kind, finding, reason, row.new)


def _removed_collision(intent: _Intent) -> _Intent:
    """--remove-orphans: a refused RID collision loses its ACEs, as an orphan does."""
    if intent.kind != REFUSE or intent.finding["verdict"] != classify.RID_COLLISION:
        return intent
    who = f'"{intent.finding["account"]}"' if intent.finding["account"] else "its old account"
    return _Intent(REMOVE_ACES, intent.finding, f"--remove-orphans: no account today is named {who} and its RID "
                                                f"belongs to another account: its ACEs are removed")


def _in_mode(intent: _Intent, mode: str, owner: str) -> _Intent:
    """A re-pointing as --mode asks: replace (as planned), add beside, or remove."""
    if intent.kind not in (REPLACE_SID, TRANSLATE_SID_HISTORY) or mode == MODE_REPLACE:
        return intent
    if mode == MODE_ADD:
        return replace(intent, kind=ADD_SID, reason=f"{intent.reason}; --mode add: the old SID keeps its ACEs "
                                                    f"and {intent.new_sid} gets the same beside them")
    return _Intent(REMOVE_ACES, intent.finding, f"{intent.reason}; --mode remove: its ACEs are removed instead "
                                                f"(ownership to {owner})")


def _intents_for(finding: dict) -> list[_Intent]:
    verdict, mapped = finding["verdict"], finding["mapped_sid"]
    # Quoted: account names can be ordinary words ("None" is the name of RID 513's group).
    who = f'"{finding["account"]}"' if finding["account"] else "the old account"
    if verdict == classify.STALE_PREFIX and mapped:
        return [_Intent(REPLACE_SID, finding, f"previous machine SID of {who}: today's account of that name "
                                              f"is {mapped}{_if_inferred(finding)}", mapped)]
    if verdict == classify.RID_COLLISION and mapped:
        return [_Intent(REPLACE_SID, finding, f"{who}'s RID now belongs to another account, but the name {who} "
                                              f"exists today as {mapped}: map by name{_if_inferred(finding)}",
                        mapped)]
    if verdict == classify.SID_HISTORY and mapped:
        return [_Intent(TRANSLATE_SID_HISTORY, finding, f"{who} lists it in sIDHistory", mapped)]
    if verdict == classify.ORPHAN:
        return [_Intent(REMOVE_ACES, finding, "a deleted account of a complete authority: its ACEs grant nothing")]
    return [_Intent(REFUSE, finding, _refusal(finding))]


def _if_inferred(finding: dict) -> str:
    """What a reason adds where the old prefix is only inferred to be a previous machine SID."""
    if not classify.rests_on_inferred_prefix(finding["evidence"]):
        return ""
    return (f"; that the old prefix was this machine's SID is inferred (only the machine's own SAM, LSA or "
            f"ProfileList name it, no history does): confidence {finding['confidence']}, check before applying")


def _refusal(finding: dict) -> str:
    verdict = finding["verdict"]
    # The evidence that says who holds the RID now comes first; then the latest facts.
    lines = finding["evidence"]
    evidence = "; ".join([e for e in lines if "now belongs" in e][:1] or lines[-2:])
    way_out = "or map it to an account with --map FILE"
    if verdict == classify.RID_COLLISION:
        who = f'"{finding["account"]}"' if finding["account"] else "its old account"
        why = f"no account today is named {who}, and its RID belongs to another account now"
        create = f"create {finding['account']} and scan again" if finding["account"] else "create the account"
        way_out = f"way out: {create}; or --map FILE; or --remove-orphans (drops its ACEs)"
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
    return f"{why} ({evidence}); {way_out}" if evidence else f"{why}; {way_out}"


def _descriptor_changes(db, rewrite: Rewrite, action_of: dict[str, list[str]],
                        reassign_ids: dict[tuple[str, str], str], refused: set[str]):
    """Every distinct descriptor that carries an acted-on SID, rewritten; per-action counts
    (files, descriptors, explicit files) and the same per refused SID (what stays)."""
    changing = set(rewrite.replace) | set(rewrite.add) | set(rewrite.remove)
    acted = changing | refused
    if not acted:
        return [], [], {}, {}
    left: dict[str, list[int]] = {}
    marks = ", ".join("?" for _ in acted)
    params = sorted(acted)
    rows = db.execute(
        f"SELECT key, volume_id, security_id, raw, files, source FROM descriptors WHERE (key IN "
        f"(SELECT descriptor_key FROM aces WHERE sid IN ({marks})) OR owner IN ({marks}) OR \"group\" IN ({marks})) "
        f"AND volume_id IN {LIVE_VOLUMES} ORDER BY key", params * 3).fetchall()
    place_uses = _place_uses(db, [row[0] for row in rows])
    changes, skipped = [], []
    counts: dict[str, list[int]] = {}
    for key, volume_id, security_id, raw, files, source in rows:
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
            new_raw=new_raw, actions=tuple(dict.fromkeys(ids)), source=source or "sds",
            places=sum(place_uses.get(key, {}).values())))
    return changes, skipped, {k: tuple(v) for k, v in counts.items()}, {k: tuple(v) for k, v in left.items()}


def _place_uses(db, keys: list[int]) -> dict[int, dict[str, int]]:
    """descriptor key -> place kind -> places using it (none for file descriptors)."""
    from aclscan.store import has_table

    found: dict[int, dict[str, int]] = {}
    if not has_table(db, "places"):
        return found
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        for key, kind, count in db.execute(
                f"SELECT descriptor_key, kind, COUNT(*) FROM places WHERE descriptor_key IN ({marks})"
                " GROUP BY descriptor_key, kind", chunk):
            found.setdefault(key, {})[kind] = count
    return found


def _action_places(db, changes: list[DescriptorChange]) -> dict[str, dict[str, int]]:
    """action id -> place kind -> places whose descriptor the action changes."""
    uses = _place_uses(db, [c.descriptor_key for c in changes if c.places])
    found: dict[str, dict[str, int]] = {}
    for change in changes:
        for action_id in change.actions:
            for kind, count in uses.get(change.descriptor_key, {}).items():
                per = found.setdefault(action_id, {})
                per[kind] = per.get(kind, 0) + count
    return found


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


def _registry_actions(db, findings: list[dict], impacts: dict, targets: dict[str, str], start: int,
                      removed: set[str] = frozenset()) -> list[Action]:
    """LSA rights, alias memberships, profiles and service logons that name a re-pointed
    SID (from the graph's impact of each finding); ``targets``: old SID -> the SID it goes
    to; ``removed``: SIDs whose access is removed (their memberships and rights go too)."""
    actions = []
    number = start
    for finding in findings:
        new_sid = targets.get(finding["sid"])
        found = impacts.get(finding["sid"])
        if finding["sid"] in removed:
            for action in _removal_actions(db, finding, f"A{number}"):
                actions.append(replace(action, id=f"A{number}"))
                number += 1
            continue
        if not new_sid or found is None:
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
        profiles = _profiles_of(db, finding["sid"])
        if profiles:
            actions.append(Action(id=f"A{number}", kind=REPOINT_PROFILE, profiles=profiles,
                                  reason=f"ProfileList keeps the profile of {who} under the old SID: today's "
                                         f"{new_sid} must find it", **common))
            number += 1
    return actions


def _profiles_of(db, sid: str) -> tuple[str, ...]:
    return tuple(sorted({d for (d,) in db.execute(
        "SELECT detail FROM hive_references WHERE sid = ? AND kind = 'profile'", [sid])}))


def _removal_actions(db, finding: dict, first_id: str) -> list[Action]:
    """A SID whose access is removed: out of the groups that list it, and its LSA rights gone."""
    sid = finding["sid"]
    who = finding["account"] or sid
    common = {"sid": sid, "verdict": finding["verdict"], "account": finding["account"], "new_sid": None}
    found = []
    groups = tuple(sorted({d for (d,) in db.execute(
        "SELECT detail FROM hive_references WHERE sid = ? AND kind = 'alias_member'", [sid])}))
    if groups:
        found.append(Action(id=first_id, kind=REMOVE_ALIAS_MEMBER, groups=groups,
                            reason=f"{who}'s access is removed: out of the groups that list it", **common))
    rights = tuple(sorted({r.strip() for (d,) in db.execute(
        "SELECT detail FROM hive_references WHERE sid = ? AND kind = 'lsa_right'", [sid]) for r in d.split(",")
        if r.strip()}))
    if rights:
        found.append(Action(id=first_id, kind=REVOKE_LSA_RIGHTS, rights=rights,
                            reason=f"{who}'s access is removed: its LSA rights and privileges go", **common))
    profiles = _profiles_of(db, sid)
    if profiles:
        found.append(Action(id=first_id, kind=DETACH_PROFILE, profiles=profiles,
                            reason=f"{who}'s access is removed: ProfileList no longer ties its profile to the old "
                                   "SID (the folder and its files stay; their ownership goes to the owner given)",
                            **common))
    return found


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


def require_same_scan(plan: Plan, db, error: type = None) -> None:
    """The one check that a saved plan was made from this scan database: every live volume
    alike (id, serial, $MFT size and scan time: clones share serials, and the scan time
    tells two scans of one clone apart). ``error`` (InvalidPlan by default) says it."""
    error = error or InvalidPlan
    ours = {(v, s, m, t) for v, s, m, t in db.execute(
        f"SELECT id, serial, mft_records, scanned_at FROM volumes WHERE id IN {LIVE_VOLUMES}")}
    theirs = {(v.get("id"), v.get("serial"), v.get("mft_records"), v.get("scanned_at"))
              for v in plan.scan.get("volumes", ())}
    if not theirs:
        raise error("the plan names no scanned volume: it cannot be matched to this scan")
    if theirs != ours:
        raise error("the plan was made from another scan (its volumes' serial, size or scan time differ from "
                    "this database's)")


def verify_plan(db, plan: Plan) -> None:
    """PlanMismatch unless the plan is what its scan calls for. The plan is made again from
    the scan database with the choices it records (owner, group, mode, mapping rows,
    --remove-orphans): every action must be one the scan calls for (same kind, SID and new
    SID), and every descriptor change the scanned original (``old_sha256``) rewritten by
    those actions (``new_raw``, and the SDDL shown to people). Nothing of the plan's bytes
    is trusted: a plan is a file that travels between people."""
    from aclscan.mapping import MapRow

    choices = plan.choices or {}
    try:
        rows = [MapRow(line=int(r["line"]), old=r["old"], new=r["new"], consent=bool(r.get("consent")))
                for r in choices.get("map", ())]
        again = build_plan(db, owner=plan.owner, group=plan.group, mapping=rows,
                           mode=choices.get("mode", MODE_REPLACE), remove_orphans=bool(choices.get("remove_orphans")))
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanMismatch(f"the plan's choices cannot be made again from the scan ({exc}): refusing the plan") from None
    expected = {(a.kind, a.sid, a.new_sid) for a in again.actions}
    for action in plan.actions:
        if (action.kind, action.sid, action.new_sid) not in expected:
            raise PlanMismatch(f"plan action {action.id} ({action.kind} {action.sid} -> {action.new_sid}) is not "
                               "what the scan's findings call for: refusing the plan")
    wanted = {c.descriptor_key: c for c in again.descriptors}
    for change in plan.descriptors:
        right = wanted.get(change.descriptor_key)
        if right is None or right.volume_id != change.volume_id:
            raise PlanMismatch(f"plan descriptor {change.descriptor_key}: the scan calls for no change of it on "
                               f"volume {change.volume_id}")
        if change.old_sha256 != right.old_sha256:
            raise PlanMismatch(f"plan descriptor {change.descriptor_key}: old_sha256 is not the scanned descriptor's")
        if change.new_raw != right.new_raw:
            raise PlanMismatch(f"plan descriptor {change.descriptor_key}: new_raw is not the scanned descriptor "
                               "with the plan's actions applied: refusing the plan")
        if (change.old_sddl, change.new_sddl) != (right.old_sddl, right.new_sddl):
            raise PlanMismatch(f"plan descriptor {change.descriptor_key}: its SDDL is not the descriptor's")


# ------------------------------------------------------------------ files of a plan


class PlannedFile(NamedTuple):
    """One file a plan rewrites (a tuple: a plan of a million files makes a million)."""

    path: str
    is_dir: bool
    volume_id: int
    entry: int
    change: DescriptorChange
    sequence: int = 0  # the MFT record's sequence number at the scan


def iter_plan_files(db, plan: Plan, *, volume_id: int | None = None, order: str = "path") -> Iterator[PlannedFile]:
    """Every file whose descriptor the plan changes, by path or by MFT ``entry`` (streamed:
    there may be millions)."""
    assert order in ("path", "entry")
    by_key = {c.descriptor_key: c for c in plan.descriptors if volume_id is None or c.volume_id == volume_id}
    if not by_key:
        return
    # A descriptor row is shared by the shadow copy states of its volume (same bytes): only
    # the files of the volume the change is for are the plan's.
    cursor = db.execute(
        "SELECT path, is_dir, volume_id, entry, descriptor_key, sequence FROM files "
        "WHERE descriptor_key IN (SELECT value FROM json_each(?)) AND volume_id IN (SELECT value FROM json_each(?)) "
        f"ORDER BY volume_id, {order}",
        [json.dumps(sorted(by_key)), json.dumps(sorted({c.volume_id for c in by_key.values()}))])
    for path, is_dir, vol, entry, key, sequence in cursor:
        if vol == by_key[key].volume_id:
            yield PlannedFile(path, bool(is_dir), vol, entry, by_key[key], sequence or 0)
