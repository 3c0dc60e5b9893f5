"""The fleet report (``aclscan fleet``): sections of tables for people, one section as CSV,
or the whole summary as a versioned JSON document; and the line that says what a build did."""

from __future__ import annotations

import dataclasses
import json
from typing import IO

from aclscan.formats.rows import terminal_safe, write_rows

FLEET_FORMAT = 2
MACHINE_COLUMNS = ("name", "machine_sid", "product_type", "sids", "problem_sids", "accounts",
                   "duplicate_machine_sid_with", "identity_collisions", "cross_machine_references", "scan_db")
DUPLICATE_COLUMNS = ("machine_sid", "count", "machines")
SHARED_PARENT_COLUMNS = ("parent", "count", "machines")
COLLISION_COLUMNS = ("sid", "accounts")
CROSS_COLUMNS = ("machine", "sid", "verdict", "account", "files", "other", "other_account", "own_previous")
FAILED_COLUMNS = ("input", "reason", "exit_code")
SECTIONS = ("machines", "duplicate-sids", "shared-parents", "collisions", "cross-references", "failed")
FEW = 3  # names shown in a table cell that stands for a longer list


def _few(names, total: int | None = None) -> str:
    total = len(names) if total is None else total
    shown = ", ".join(names[:FEW])
    return shown + (f", ... ({total - FEW} more)" if total > FEW else "")


def _machine_row(machine, *, full: bool) -> dict:
    row = dataclasses.asdict(machine)
    others = list(machine.duplicate_machine_sid_with)
    row["duplicate_machine_sid_with"] = "; ".join(others) if full else _few(others)
    row["identity_collisions"] = len(machine.identity_collisions)
    return row


def _collision_text(collision: dict, *, full: bool) -> str:
    """`Eric on WS1; Stephanie on WS2`: each account once, with its machines."""
    parts = []
    for account in collision["accounts"]:
        machines = account["machines"]
        where = "; ".join(machines) if full else (
            _few(machines) if len(machines) <= FEW else f"{len(machines)} machines: {_few(machines)}")
        parts.append(f"{account['account']} on {where}")
    return " | ".join(parts)


def section_rows(summary, section: str, *, full: bool) -> tuple[list[dict], tuple[str, ...]]:
    """The rows and columns of one section of the report."""
    if section == "machines":
        return [_machine_row(m, full=full) for m in summary.machines], MACHINE_COLUMNS
    if section == "duplicate-sids":
        return [{"machine_sid": d["machine_sid"], "count": d["count"],
                 "machines": "; ".join(d["machines"]) if full else _few(d["machines"])}
                for d in summary.duplicate_machine_sids], DUPLICATE_COLUMNS
    if section == "collisions":
        return [{"sid": c["sid"], "accounts": _collision_text(c, full=full)}
                for c in summary.identity_collisions], COLLISION_COLUMNS
    if section == "shared-parents":
        return [{"parent": d["parent"], "count": d["count"],
                 "machines": "; ".join(d["machines"]) if full else _few(d["machines"])}
                for d in summary.shared_parent_disks], SHARED_PARENT_COLUMNS
    if section == "cross-references":
        return [{**r, "own_previous": "yes" if r["own_previous"] else ""}
                for r in summary.cross_machine_references], CROSS_COLUMNS
    return [dataclasses.asdict(f) for f in summary.failed], FAILED_COLUMNS


def render_json(summary, fleet_path: str) -> str:
    document = {
        "fleet_format": FLEET_FORMAT,
        "fleet": fleet_path,
        "machines": [{**dataclasses.asdict(m), "identity_collisions": list(m.identity_collisions),
                      "duplicate_machine_sid_with": list(m.duplicate_machine_sid_with)} for m in summary.machines],
        "duplicate_machine_sids": list(summary.duplicate_machine_sids),
        "shared_parent_disks": list(summary.shared_parent_disks),
        "identity_collisions": list(summary.identity_collisions),
        "cross_machine_references": [{k: r[k] for k in CROSS_COLUMNS} for r in summary.cross_machine_references],
        "failed": [dataclasses.asdict(f) for f in summary.failed],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


TITLES = {
    "machines": "machines",
    "duplicate-sids": "duplicate machine SIDs (one line per SID)",
    "shared-parents": "parent disks shared by linked clones (they share its machine SID unless each was generalized)",
    "collisions": "identity collisions (one SID, different accounts; one line per SID)",
    "cross-references": "cross-machine references (a SID under another machine's SID)",
    "failed": "failed inputs",
}


def render_table(summary, out, *, limit: int = 0) -> None:
    """Sections of tables, each cut at ``limit`` rows (0: all); write_rows makes every
    cell terminal-safe."""
    for section in SECTIONS:
        rows, columns = section_rows(summary, section, full=False)
        if section in ("failed", "shared-parents") and not rows:
            continue
        out.write(terminal_safe(f"{TITLES[section]} ({len(rows)})") + "\n")
        if rows:
            write_rows(rows[:limit] if limit else rows, columns, "table", out)
            if limit and len(rows) > limit:
                out.write(f"... {len(rows) - limit} more (--limit 0 for all; --format json or "
                          f"--format csv --section {section} for the full list)\n")
        out.write("\n")


def render(summary, fmt: str, out: IO[str], *, fleet_path: str, section: str = "machines", limit: int = 0) -> None:
    """The summary in ``fmt``: json (the whole document), csv (one ``section``, full lists)
    or table (every section, each cut at ``limit`` rows)."""
    if fmt == "json":
        out.write(render_json(summary, fleet_path))
    elif fmt == "csv":
        rows, columns = section_rows(summary, section, full=True)
        write_rows(rows, columns, "csv", out)
    else:
        render_table(summary, out, limit=limit)


def build_line(build) -> str:
    """What a build did, in one line (for stderr)."""
    return (f"{len(build.added)} scan(s) added, {len(build.unchanged)} already in the fleet unchanged, "
            f"{len(build.reused)} image(s) not re-scanned (scan database complete and newer), "
            f"{len(build.failed)} failed")
