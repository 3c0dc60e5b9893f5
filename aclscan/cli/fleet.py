"""`aclscan fleet FLEET.db INPUT...`: many machines side by side."""

from __future__ import annotations

import sys

import click

from aclscan.cli import cli
from aclscan.cli.options import images_progress
from aclscan.formats.fleet import SECTIONS


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
    from aclscan.fleet import runner_for, update_fleet
    from aclscan.formats.fleet import build_line, render

    if scheduler and jobs:
        raise click.UsageError("--jobs is for local processes; with --scheduler the cluster decides")

    def announce(runner) -> None:
        if not quiet:
            click.echo(runner.describe(), err=True)
            if runner.dashboard_link:
                click.echo(f"Dask dashboard: {runner.dashboard_link}", err=True)

    try:
        runner_context = runner_for(jobs, scheduler, retries=retries, announce=announce)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scheduler") from None
    build, summary = update_fleet(fleet_db, inputs, runner_context=runner_context,
                                  progress_context=images_progress(not quiet and sys.stderr.isatty()),
                                  domain_files=domain_files, scans_dir=scans_dir, rescan=rescan)
    if build is not None:
        for note in build.notes:
            click.echo(f"note: {note}", err=True)
        if not quiet:
            click.echo(build_line(build), err=True)
    render(summary, fmt, sys.stdout, fleet_path=fleet_db, section=section, limit=limit)
    if build is not None and (error := build.partial_error()):
        raise error
    ctx.exit(1 if summary.has_conflicts else 0)
