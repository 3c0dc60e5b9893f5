"""The plan for a person: each action with its reason and counts, refusals loudly.

Everything that comes from the scanned volume (account names, folders, reasons
quoting evidence) goes through :func:`terminal_safe`, so a file or account name
cannot drive the terminal it is printed on.
"""

from __future__ import annotations

from aclscan import classify
from aclscan.formats.plans import PlanContext, PlanOutput, sections_changed
from aclscan.formats.rows import terminal_safe
from aclscan.plan import (
    HIVE_KINDS,
    REASSIGN_GROUP,
    REASSIGN_OWNER,
    REFUSE,
    REPOINT_SERVICE,
    Action,
    Plan,
)

FOLDERS_SHOWN = 10


def _safe(value) -> str:
    return terminal_safe(str(value))


def _who(action: Action) -> str:
    return _safe(action.account) if action.account else "(no name known)"


def _counts(action: Action, verb: str) -> str:
    return (f"{verb} {action.files} file(s) in {action.descriptors} descriptor(s): {action.explicit_files} where the "
            f"SID is explicit (owner, group or an own ACE), {action.inherited_files} with inherited copies only")


def _rid_holder(action: Action, plan: Plan, context: PlanContext) -> str | None:
    """Who a naive prefix rewrite of a RID collision would hand the files to."""
    machine = plan.scan.get("machine_sid")
    if not machine or action.verdict != classify.RID_COLLISION:
        return None
    heir = f"{machine}-{action.sid.rsplit('-', 1)[-1]}"
    name = context.account_name(heir)
    return f"{heir} ({_safe(name)})" if name else heir


def _action_lines(action: Action, plan: Plan, context: PlanContext) -> list[str]:
    refused = action.kind == REFUSE
    head = f"{'REFUSED ' if refused else ''}{action.id}  {action.kind}  {action.verdict}  {_who(action)}"
    lines = [head, f"    SID: {_safe(action.sid)}" + (f" -> {_safe(action.new_sid)}" if action.new_sid else "")]
    lines.append(f"    why: {_safe(action.reason)}")
    if refused:
        heir = _rid_holder(action, plan, context)
        if heir:
            lines.append(f"    !!! a prefix rewrite would hand these files to {heir}: not done")
        if action.files:
            lines.append("    " + _counts(action, "left as they are:"))
    elif action.is_descriptor_action:
        lines.append("    " + _counts(action, "changes"))
    if action.folders:
        shown = ", ".join(_safe(f) for f in action.folders[:FOLDERS_SHOWN])
        more = len(action.folders) - FOLDERS_SHOWN
        label = "explicit at (fix at the source)" if not refused else "explicit at"
        lines.append(f"    {label}: {shown}" + (f" and {more} more" if more > 0 else ""))
    if action.rights:
        lines.append(f"    rights: {', '.join(_safe(r) for r in action.rights)}")
    if action.groups:
        lines.append(f"    groups: {', '.join(_safe(g) for g in action.groups)}")
    if action.services:
        lines.append(f"    services: {', '.join(_safe(s) for s in action.services)}")
    if action.profiles:
        lines.append(f"    profiles: {', '.join(_safe(p) for p in action.profiles)}")
    if action.places:
        named = ", ".join(f"{n} {k.replace('_', ' ')}{'s' if n != 1 else ''}" for k, n in action.places.items())
        lines.append(f"    also changes the descriptors of: {named} (aclscan places lists them)")
    return lines


def _script_only(plan: Plan) -> tuple[list[str], list[str]]:
    """(actions the icacls file cannot carry, actions only the live machine's script can do)."""
    registry = [a.id for a in plan.actions if a.kind in HIVE_KINDS | {REPOINT_SERVICE}]
    beyond_dacl = {a.id for a in plan.actions if a.kind in (REASSIGN_OWNER, REASSIGN_GROUP)}
    for change in plan.descriptors:
        if sections_changed(change) & {"owner", "group", "sacl"}:
            beyond_dacl.update(change.actions)
    return sorted(beyond_dacl, key=_action_order), registry


def _action_order(action_id: str) -> int:
    return int(action_id[1:]) if action_id[1:].isdigit() else 0


def plan_text(plan: Plan, context: PlanContext) -> str:
    files = sum(c.files for c in plan.descriptors)
    volumes = ", ".join(_safe(v.get("image") or v.get("id")) for v in plan.scan.get("volumes", ()))
    lines = [
        f"Plan for {volumes or 'a scan'} (machine SID {_safe(plan.scan.get('machine_sid') or 'unknown')})",
        f"{len(plan.actions)} action(s), {len(plan.refusals)} refusal(s); {len(plan.descriptors)} descriptor(s) "
        f"to rewrite, {files} file(s)",
        f"Orphans' ownership goes to {_safe(plan.owner)}, their group role to {_safe(plan.group)}.",
        "",
    ]
    acting = [a for a in plan.actions if a.kind != REFUSE]
    if acting:
        lines.append("Actions")
        for action in acting:
            lines.extend("  " + line for line in _action_lines(action, plan, context))
        lines.append("")
    if plan.refusals:
        lines.append(f"REFUSALS: {len(plan.refusals)} problem(s) with no safe action; nothing is changed for them")
        for action in plan.refusals:
            lines.extend("  " + line for line in _action_lines(action, plan, context))
        lines.append("")
    if plan.skipped:
        lines.append(f"SKIPPED: {len(plan.skipped)} descriptor(s) an action would have damaged, left as they are")
        for skipped in plan.skipped:
            lines.append(f"  descriptor {skipped.descriptor_key} ({skipped.action}): {_safe(skipped.reason)}")
        lines.append("")
    beyond_dacl, registry = _script_only(plan)
    if beyond_dacl or registry:
        lines.append("Which output can do what")
        if beyond_dacl:
            lines.append(f"  {', '.join(beyond_dacl)} change owners, groups or SACLs: icacls /restore sets DACLs only; "
                         "use the PowerShell script (--format powershell) or SetACL (--format setacl)")
        if registry:
            lines.append(f"  {', '.join(registry)} change the registry (LSA rights, groups, profiles, services): "
                         "aclscan fix --apply does that offline (services aside: their logon names need no change), "
                         "the PowerShell script on the live machine; icacls and SetACL files cannot")
        lines.append("")
    if not plan.actions:
        lines.append("Nothing to do: the scan found no problem.")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_text(plan: Plan, context: PlanContext, out: PlanOutput) -> None:
    out.write(plan_text(plan, context).encode("utf-8"))
