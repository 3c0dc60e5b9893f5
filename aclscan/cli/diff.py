"""`aclscan diff`: what changed between two scan databases."""

from __future__ import annotations


import click

from aclscan.cli import cli
from aclscan.cli.options import format_option, output_option, sid_from_user, text_output
from aclscan.diff import DIFF_COLUMNS, DIFF_KINDS, SUMMARY_COLUMNS, ScanDiff
from aclscan.formats.rows import CountedRows, write_rows


@cli.command()
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False))
@click.option("--sid", help="Only what concerns this SID (S-1-... or an SDDL alias such as BA).")
@click.option("--kind", type=click.Choice(DIFF_KINDS), help="Only files, or only places of this kind.")
@click.option("--summary", is_flag=True, help="One row per SID: files and places that gained, lost or changed it.")
@output_option
@format_option()
@click.pass_context
def diff(ctx, before, after, sid, kind, summary, output, fmt):
    """What changed from scan BEFORE to scan AFTER (e.g. before and after `fix --apply`):
    per file and place, each SID added, removed or changed as owner, group or ACE.
    Exit 0 when nothing differs, 1 when something does."""
    with ScanDiff(before, after) as scans:
        sid = sid_from_user(scans.db, sid, "--sid") if sid else None
        for side, serial in scans.unmatched_volumes():
            # Volumes are matched by serial: one without a partner is worth saying aloud.
            listed = "removed" if side == "before" else "added"
            click.echo(f"note: volume {serial} of {side} has no volume of that serial in the other scan: "
                       f"its files are listed as {listed}", err=True)
        if summary:
            rows, columns = scans.summary(sid=sid, kind=kind), SUMMARY_COLUMNS
        else:
            rows, columns = scans.iter_changes(sid=sid, kind=kind), DIFF_COLUMNS
        seen = CountedRows(rows)
        with text_output(output) as out:
            write_rows(seen, columns, fmt, out)
    ctx.exit(1 if seen.count else 0)

