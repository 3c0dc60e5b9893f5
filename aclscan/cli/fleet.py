"""`aclscan fleet FLEET.db INPUT...`: many machines side by side."""

from __future__ import annotations

import dataclasses
import json
import sys
from contextlib import contextmanager, nullcontext

import click

from aclscan.cli import cli
from aclscan.errors import PartialScan
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


@contextmanager
def images_progress(enabled: bool):
    """A progress bar over images on stderr (done of total, failed, running), or nothing."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("images"), BarColumn(), MofNCompleteColumn(),
               TextColumn("failed {task.fields[failed]}, running {task.fields[running]}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("images", total=None, failed=0, running=0)

        def update(done: int, failed: int, running: int, total: int) -> None:
            bar.update(task, completed=done, total=total, failed=failed, running=running)

        yield update


@cli.command()
@click.argument("fleet_db", metavar="FLEET.db", type=click.Path(dir_okay=False))
@click.argument("inputs", metavar="INPUT...", nargs=-1, type=click.Path())
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Images scanned at once in local processes "
                                                                "(default: the CPU count). Not with --scheduler.")
@click.option("--scheduler", metavar="ADDRESS|local:N",
              help="Scan on a Dask cluster: a scheduler address (tcp://HOST:8786), or local:N to start a local "
                   "cluster of N workers (with Dask's dashboard).")
@click.option("--scans-dir", type=click.Path(file_okay=False),
              help="Where images' scan databases are written (default: beside FLEET.db). With --scheduler, "
                   "storage the workers and this machine share.")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="With --scheduler: times a scan task that raised is run again (a lost worker's tasks are "
                   "rescheduled by Dask anyway).")
@click.option("--rescan", is_flag=True, help="Scan every image again, even where its scan database is complete "
                                             "and newer than the image.")
@click.option("--domain", "domain_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A domain export (LDIF or CSV) every image is scanned with. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="table for people (long sections cut at --limit); json (versioned, fleet_format 2) and csv "
                   "(one --section) for the full lists.")
@click.option("--section", type=click.Choice(SECTIONS), default="machines", show_default=True,
              help="The list --format csv writes.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Rows per table section (0: all).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, dashboard link or run summary.")
@click.pass_context
def fleet(ctx, fleet_db, inputs, jobs, scheduler, scans_dir, retries, rescan, domain_files, fmt, section, limit,
          quiet):
    """Build or extend FLEET.db from scan databases and images, then report across machines.

    Each INPUT is a scan database, or an image (told apart by the SQLite header) that is
    scanned into NAME.db in --scans-dir (default: beside FLEET.db): --jobs at a time in
    local processes, or on a Dask cluster with --scheduler. An image whose scan database
    is complete and newer than the image is not scanned again (--rescan to force).
    Adding a scan again replaces that machine. With no INPUT, report the fleet as it is.
    Exit 0: no duplicate machine SID and no identity collision; 1: some; 3: an input
    failed; 17: the Dask scheduler is unreachable.
    """
    from aclscan.fleet import LocalRunner, build_fleet, open_fleet, summarise

    if scheduler and jobs:
        raise click.UsageError("--jobs is for local processes; with --scheduler the cluster decides")
    runner_context = nullcontext(LocalRunner(jobs))
    if scheduler:
        from aclscan.fleet_dask import DaskRunner, parse_scheduler

        try:
            parse_scheduler(scheduler)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--scheduler") from None
        def announce(runner) -> None:
            if not quiet:
                click.echo(runner.describe(), err=True)
                if runner.dashboard_link:
                    click.echo(f"Dask dashboard: {runner.dashboard_link}", err=True)

        runner_context = DaskRunner(scheduler, retries=retries, announce=announce)
    failed_now = ()
    if inputs:
        with runner_context as runner:
            with images_progress(not quiet and sys.stderr.isatty()) as progress:
                build = build_fleet(fleet_db, list(inputs), domain_files=domain_files, runner=runner,
                                    scans_dir=scans_dir, rescan=rescan, progress=progress)
            for note in getattr(runner, "notes", ()):
                click.echo(f"note: {note}", err=True)
        failed_now = build.failed
        if not quiet:
            click.echo(f"{len(build.added)} scan(s) added, {len(build.unchanged)} already in the fleet unchanged, "
                       f"{len(build.reused)} image(s) not re-scanned (scan database complete and newer), "
                       f"{len(failed_now)} failed", err=True)
    db = open_fleet(fleet_db, create=False)
    try:
        summary = summarise(db)
    finally:
        db.conn.close()
    if fmt == "json":
        sys.stdout.write(render_json(summary, fleet_db))
    elif fmt == "csv":
        rows, columns = section_rows(summary, section, full=True)
        write_rows(rows, columns, "csv", sys.stdout)
    else:
        render_table(summary, sys.stdout, limit=limit)
    if failed_now:
        first = failed_now[0]
        raise PartialScan(f"{len(failed_now)} input(s) not added (recorded in failed_inputs); first: "
                          f"{first.input}: {first.reason}")
    ctx.exit(1 if summary.has_conflicts else 0)
