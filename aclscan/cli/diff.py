"""`aclscan diff`: what changed between two scan databases, or two volume states of one."""

from __future__ import annotations


import click

from aclscan.cli import cli
from aclscan.cli.options import format_option, output_option, sid_from_user, text_output
from aclscan.diff import DIFF_COLUMNS, DIFF_KINDS, LIVE, SUMMARY_COLUMNS, ScanDiff
from aclscan.formats.rows import CountedRows, write_rows

STATE_HELP = ("live (the live volume), a volume id (volumes.id) or a shadow copy store's GUID (a unique "
              "prefix will do)")


@cli.command()
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False), required=False)
@click.option("--from-volume", "from_volume", metavar="STATE",
              help=f"Compare from this volume state of BEFORE: {STATE_HELP}.")
@click.option("--to-volume", "to_volume", metavar="STATE",
              help=f"Compare to this volume state of AFTER (of BEFORE when AFTER is not given; default {LIVE}).")
@click.option("--sid", help="Only what concerns this SID (S-1-... or an SDDL alias such as BA).")
@click.option("--kind", type=click.Choice(DIFF_KINDS), help="Only files, or only places of this kind.")
@click.option("--summary", is_flag=True, help="One row per SID: files and places that gained, lost or changed it.")
@output_option
@format_option()
@click.pass_context
def diff(ctx, before, after, from_volume, to_volume, sid, kind, summary, output, fmt):
    """What changed from scan BEFORE to scan AFTER (e.g. before and after `fix --apply`), or,
    with one scan and --from-volume, from one of its volume states to another (a shadow copy
    and the live volume): per file and place, each SID added, removed or changed as owner,
    group or ACE. Exit 0 when nothing differs, 1 when something does, 2 for a volume state
    the scan does not hold."""
    if after is None:
        if from_volume is None:
            raise click.UsageError("give AFTER.db, or --from-volume STATE to compare two volume states of BEFORE")
        to_volume = to_volume or LIVE
    with ScanDiff(before, after, before_volume=from_volume, after_volume=to_volume) as scans:
        sid = sid_from_user(scans.db, sid, "--sid") if sid else None
        for note in scans.notes():
            click.echo(f"note: {note}", err=True)
        if summary:
            rows, columns = scans.summary(sid=sid, kind=kind), SUMMARY_COLUMNS
        else:
            rows, columns = scans.iter_changes(sid=sid, kind=kind), DIFF_COLUMNS
        seen = CountedRows(rows)
        with text_output(output) as out:
            write_rows(seen, columns, fmt, out)
    ctx.exit(1 if seen.count else 0)
