"""`aclscan fleet FLEET.db INPUT...`: many machines side by side."""

from __future__ import annotations

import dataclasses
import json
import sys

import click

from aclscan.cli import cli
from aclscan.errors import PartialScan
from aclscan.formats.rows import terminal_safe, write_rows

MACHINE_COLUMNS = ("name", "machine_sid", "product_type", "sids", "problem_sids", "accounts",
                   "duplicate_machine_sid_with", "identity_collisions", "cross_machine_references", "scan_db")
COLLISION_COLUMNS = ("sid", "here", "there")
CROSS_COLUMNS = ("machine", "sid", "verdict", "account", "files", "other", "other_account", "own_previous")
FAILED_COLUMNS = ("input", "reason", "exit_code")


def _machine_row(machine) -> dict:
    row = dataclasses.asdict(machine)
    row["duplicate_machine_sid_with"] = ", ".join(machine.duplicate_machine_sid_with)
    row["identity_collisions"] = len(machine.identity_collisions)
    return row


def render_json(summary, fleet_path: str) -> str:
    document = {
        "fleet_format": 1,
        "fleet": fleet_path,
        "machines": [{**dataclasses.asdict(m), "identity_collisions": list(m.identity_collisions),
                      "duplicate_machine_sid_with": list(m.duplicate_machine_sid_with)} for m in summary.machines],
        "duplicate_machine_sids": list(summary.duplicate_machine_sids),
        "identity_collisions": [{"sid": c["sid"], "here": f"{c['machine']}\\{c['account']}",
                                 "there": f"{c['other']}\\{c['other_account']}"} for c in summary.identity_collisions],
        "cross_machine_references": [{k: r[k] for k in CROSS_COLUMNS} for r in summary.cross_machine_references],
        "failed": [dataclasses.asdict(f) for f in summary.failed],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def render_table(summary, out) -> None:
    """Sections of tables; write_rows makes every cell terminal-safe."""
    def section(title: str, rows: list[dict], columns) -> None:
        out.write(terminal_safe(f"{title} ({len(rows)})") + "\n")
        if rows:
            write_rows(rows, columns, "table", out)
        out.write("\n")

    section("machines", [_machine_row(m) for m in summary.machines], MACHINE_COLUMNS)
    section("duplicate machine SIDs",
            [{"machine_sid": d["machine_sid"], "machines": ", ".join(d["machines"])}
             for d in summary.duplicate_machine_sids], ("machine_sid", "machines"))
    section("identity collisions (same SID, different account)",
            [{"sid": c["sid"], "here": f"{c['machine']}\\{c['account']}",
              "there": f"{c['other']}\\{c['other_account']}"} for c in summary.identity_collisions],
            COLLISION_COLUMNS)
    section("cross-machine references (a SID under another machine's SID)",
            [{**r, "own_previous": "yes" if r["own_previous"] else ""} for r in summary.cross_machine_references],
            CROSS_COLUMNS)
    if summary.failed:
        section("failed inputs", [dataclasses.asdict(f) for f in summary.failed], FAILED_COLUMNS)


@cli.command()
@click.argument("fleet_db", metavar="FLEET.db", type=click.Path(dir_okay=False))
@click.argument("inputs", metavar="INPUT...", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Images scanned at once (default: the CPU count).")
@click.option("--domain", "domain_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A domain export (LDIF or CSV) every image is scanned with. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people; json (versioned, fleet_format 1) for programs.")
@click.pass_context
def fleet(ctx, fleet_db, inputs, jobs, domain_files, fmt):
    """Build or extend FLEET.db from scan databases and images, then report across machines.

    Each INPUT is a scan database, or an image (told apart by the SQLite header) that is
    scanned, --jobs at a time in parallel processes, into NAME.db beside FLEET.db. Adding
    a scan again replaces that machine. With no INPUT, report the fleet as it is.
    Exit 0: no duplicate machine SID and no identity collision; 1: some; 3: an input failed.
    """
    from aclscan.fleet import build_fleet, open_fleet, summarise

    if inputs:
        build = build_fleet(fleet_db, list(inputs), jobs=jobs, domain_files=domain_files)
        failed_now = build.failed
    else:
        failed_now = ()
    db = open_fleet(fleet_db, create=False)
    try:
        summary = summarise(db)
    finally:
        db.conn.close()
    if fmt == "json":
        sys.stdout.write(render_json(summary, fleet_db))
    else:
        render_table(summary, sys.stdout)
    if failed_now:
        first = failed_now[0]
        raise PartialScan(f"{len(failed_now)} input(s) not added (recorded in failed_inputs); first: "
                          f"{first.input}: {first.reason}")
    ctx.exit(1 if summary.has_conflicts else 0)
