"""`aclscan findings` and `aclscan accounts`: what the scan concluded, and what it knew."""

from __future__ import annotations

import itertools

import click

from aclscan.cli import cli
from aclscan.cli.options import db_argument, format_option, limit_option, output_option, text_output, verdict_option
from aclscan.findings import FINDING_COLUMNS, iter_findings, needs_action, unread_hives
from aclscan.formats.rows import terminal_safe, write_rows
from aclscan.queries import ACCOUNT_COLUMNS, iter_accounts, iter_hive_accounts
from aclscan.store import open_database


@cli.command()
@db_argument
@click.option("--problems", is_flag=True, help="Only findings that need action.")
@verdict_option
@limit_option
@format_option()
@output_option
@click.pass_context
def findings(ctx, database, problems, verdict, limit, fmt, output):
    """The verdict on every distinct SID: exit 1 while problem findings remain (or a
    hive could not be read, so the accounts could not be judged), 0 when clean."""
    db = open_database(database)
    rows = iter_findings(db, problems_only=problems, verdict=verdict)
    if limit is not None:
        rows = itertools.islice(rows, limit)
    with text_output(output) as out:
        write_rows(rows, FINDING_COLUMNS, fmt, out, joined=("evidence",))
    unjudged = unread_hives(db)
    for line in unjudged[:5]:
        click.echo(terminal_safe(f"not judged: {line}"), err=True)
    if unjudged:
        click.echo("the scan could not read every hive: the accounts they hold could not be judged, so this list "
                   "may miss problems (exit 1)", err=True)
    ctx.exit(1 if needs_action(db) else 0)


@cli.command()
@click.argument("database", required=False, type=click.Path(dir_okay=False))
@click.option("--sam", type=click.Path(exists=True, dir_okay=False), help="Read this SAM hive instead of a scan.")
@click.option("--security", type=click.Path(exists=True, dir_okay=False), help="Read this SECURITY hive.")
@click.option("--system", type=click.Path(exists=True, dir_okay=False), help="Read this SYSTEM hive.")
@click.option("--software", type=click.Path(exists=True, dir_okay=False), help="Read this SOFTWARE hive.")
@limit_option
@format_option()
@output_option
def accounts(database, sam, security, system, software, limit, fmt, output):
    """What each account source knows: of a scan database, or of hive files directly."""
    given = {"SAM": sam, "SECURITY": security, "SYSTEM": system, "SOFTWARE": software}
    if database:
        rows = iter_accounts(open_database(database))
    elif any(given.values()):
        rows = iter_hive_accounts(given)
    else:
        raise click.UsageError("give a scan database or at least one hive (--sam, --security, ...)")
    if limit is not None:
        rows = itertools.islice(rows, limit)
    with text_output(output) as out:
        write_rows(rows, ACCOUNT_COLUMNS, fmt, out)
