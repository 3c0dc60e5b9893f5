"""What ``aclscan fix`` and ``aclscan undo`` did: text for people, or a versioned JSON
document (``fix_format`` 1, ``undo_format`` 1) for programs."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import IO

from aclscan.formats.rows import terminal_safe

SHOWN = 20  # paths and errors listed in the text; the JSON lists them all


def fix_json(report) -> str:
    return json.dumps({"fix_format": 1, **asdict(report), "clean": report.clean}, indent=2) + "\n"


def undo_json(report) -> str:
    return json.dumps({"undo_format": 1, **asdict(report)}, indent=2) + "\n"


def render_fix_text(plan, report, out: IO[str]) -> None:
    """What a fix did (or, dry, would do) for people; every name from the volume terminal-safe."""
    verb = "rewrote" if report.applied else "would rewrite"
    out.write(f"{terminal_safe(report.target)}: {verb} {report.written if report.applied else report.files_planned} "
              f"files' descriptors ({report.descriptors_planned} distinct descriptors)\n")
    if not report.applied:
        for change in plan.descriptors:
            actions = ", ".join(f"{a} {plan.action(a).kind}" for a in change.actions)
            out.write(f"  descriptor {change.descriptor_key} on {change.files} files ({actions})\n"
                      f"    before {terminal_safe(change.old_sddl)}\n    after  {terminal_safe(change.new_sddl)}\n")
    for action in plan.refusals:
        out.write(f"  refused {action.sid} ({terminal_safe(action.account or '?')}): {terminal_safe(action.reason)}\n")
    stores = report.stores_written if report.applied else report.stores_planned
    if stores:
        verb = "rewrote" if report.applied else "would rewrite"
        out.write(f"  {verb} {len(stores)} hive and task file(s) (journaled whole first): "
                  f"{terminal_safe(', '.join(stores))}\n")
    services = [a for a in plan.actions if a.kind == "repoint_service"]
    if services:
        out.write(f"  {len(services)} service logon(s) named by account name need no change offline; "
                  "check them on the live machine (the plan's PowerShell script lists them)\n")
    if not report.applied:
        out.write("dry run: nothing was written (add --apply)\n")
        return
    out.write(f"  journal {terminal_safe(report.journal or '')}; re-scan {terminal_safe(report.rescan or '')}\n")
    for note in report.rescan_notes:
        out.write(f"  re-scan: {terminal_safe(note)}\n")
    if report.already_fixed:
        out.write(f"  {report.already_fixed} files already carried the new descriptor (an earlier run)\n")
    for path in report.changed_since_scan[:SHOWN]:
        out.write(f"  left alone, changed since the scan: {terminal_safe(path)}\n")
    for error in report.errors[:SHOWN]:
        out.write(f"  error: {terminal_safe(error)}\n")
    for sid, files in report.remaining.items():
        places = report.places_remaining.get(sid, 0)
        if files or places:
            out.write(f"  {sid}: {files} files and {places} other places still carry it\n")
    for sid, left in report.problems_left.items():
        if sid not in report.remaining:
            out.write(f"  {sid}: {left['files']} files and {left['other_places']} other places, not acted on"
                      " (see the plan's refusals)\n")


def render_undo_text(report, out: IO[str]) -> None:
    """What undo restored and what it left alone, for people."""
    out.write(f"{terminal_safe(report.target)}: restored {report.restored} descriptors, "
              f"{report.unchanged} already original, {len(report.changed_since_fix)} changed since the fix, "
              f"{len(report.errors)} errors ({report.entries} journaled)\n")
    if report.stores_restored:
        out.write(f"  restored {len(report.stores_restored)} hive and task file(s) byte for byte: "
                  f"{terminal_safe(', '.join(report.stores_restored))}\n")
    for path in report.changed_since_fix[:SHOWN]:
        out.write(f"  left alone, changed since the fix: {terminal_safe(path)}\n")
    if len(report.changed_since_fix) > SHOWN:
        out.write(f"  ... and {len(report.changed_since_fix) - SHOWN} more (--format json lists them all)\n")
    if report.changed_since_fix:
        out.write("  aclscan undo --force restores them too\n")
    for error in report.errors[:SHOWN]:
        out.write(f"  error: {terminal_safe(error)}\n")
    for note in report.notes:
        out.write(f"  note: {terminal_safe(note)}\n")
