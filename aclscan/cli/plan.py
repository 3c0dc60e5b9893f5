"""`aclscan plan`: what to change, as JSON, text, a PowerShell script, an icacls or a SetACL file."""

from __future__ import annotations

import sys

import click

from aclscan.cli import cli
from aclscan.cli.options import db_argument, sid_from_user
from aclscan.formats.plans import PlanContext, PlanFormat, PlanOutput, render
from aclscan.mapping import read_mapping
from aclscan.plan import ADMINISTRATORS, MODE_REPLACE, MODES, build_plan, read_plan, require_same_scan
from aclscan.store import open_database

BINARY_FORMATS = (PlanFormat.ICACLS, PlanFormat.SETACL)


@cli.command()
@db_argument
@click.option("--format", "fmt", type=click.Choice([f.value for f in PlanFormat]), default=PlanFormat.TEXT.value,
              show_default=True,
              help="text for people; json (the documented plan); powershell (a script for the live machine); "
                   "icacls (a file for icacls C:\\ /restore); setacl (a file for SetACL -actn restore).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write here (created only when there is something to write); default: stdout.")
@click.option("--owner", default=ADMINISTRATORS, show_default=True,
              help="Who gets orphans' ownership: a SID, an SDDL alias (BA, SY) or an account name "
                   "(Administrators, 'NT AUTHORITY\\SYSTEM').")
@click.option("--group", help="Who replaces an orphan primary group (default: the --owner account).")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False),
              help="Render this saved JSON plan (made from this scan) instead of planning again.")
@click.option("--volume", "volume_id", type=int, help="Only this volume's files (a scan of several volumes).")
@click.option("--drive", default="C:", show_default=True, help="The volume's drive on the live machine (setacl).")
@click.option("--map", "map_file", type=click.Path(exists=True, dir_okay=False),
              help="CSV of old,new[,consent]: SIDs or account names (MEMBER\\Ken); re-points what the tool cannot "
                   "map itself. 'consent' allows mapping onto the account that holds the old RID today.")
@click.option("--mode", type=click.Choice(MODES), default=MODE_REPLACE, show_default=True,
              help="How SIDs are re-pointed: replace them; add the new beside the old (staged migration); "
                   "remove the old ACEs (ownership to --owner).")
@click.option("--remove-orphans", is_flag=True,
              help="Also remove the ACEs of RID collisions without a mapping (ownership to --owner).")
@click.pass_context
def plan(ctx, database, fmt, output, owner, group, plan_file, volume_id, drive, map_file, mode, remove_orphans):
    """The remediation plan of a scan: exit 0 when it acts on every problem, 1 when refusals remain."""
    db = open_database(database)
    fmt = PlanFormat(fmt)
    if plan_file:
        if map_file or mode != MODE_REPLACE or remove_orphans:
            raise click.UsageError("--map, --mode and --remove-orphans make a new plan: not with --plan")
        result = read_plan(plan_file)
        require_same_scan(result, db)
    else:
        mapping = read_mapping(map_file, db) if map_file else ()
        result = build_plan(db, owner=sid_from_user(db, owner, "--owner"), group=sid_from_user(db, group, "--group"),
                            database=str(database), mapping=mapping, mode=mode, remove_orphans=remove_orphans)
    volumes = [row[0] for row in db.execute("SELECT id FROM volumes ORDER BY id")]
    if volume_id is None and len(volumes) > 1 and fmt in (PlanFormat.ICACLS, PlanFormat.SETACL, PlanFormat.POWERSHELL):
        raise click.UsageError(f"the scan has {len(volumes)} volumes: choose one with --volume")
    if volume_id is not None and volume_id not in volumes:
        raise click.UsageError(f"no volume {volume_id} in this scan (it has {', '.join(map(str, volumes))})")
    notes: list[str] = []
    context = PlanContext(db=db, volume_id=volume_id, drive=drive, note=notes.append)
    if output:
        out = PlanOutput(lambda: open(output, "wb"))
    else:
        if fmt in BINARY_FORMATS and sys.stdout.isatty():
            raise click.UsageError(f"{fmt.value} writes UTF-16: give -o FILE or redirect stdout")
        sys.stdout.flush()
        out = PlanOutput(lambda: sys.stdout.buffer)
    try:
        render(result, fmt, context, out)
    finally:
        if output:
            out.close()
        else:
            sys.stdout.buffer.flush()
    for note in notes:
        click.echo(note, err=True)
    files = sum(c.files for c in result.descriptors)
    click.echo(f"plan: {len(result.actions)} action(s), {len(result.refusals)} refusal(s), "
               f"{len(result.skipped)} skipped descriptor(s), {len(result.descriptors)} descriptor(s), "
               f"{files} file(s)" + (f"; {context.omitted} path(s) left out of the {fmt.value} output"
                                     if context.omitted else ""), err=True)
    ctx.exit(1 if result.refusals or result.skipped else 0)
