"""`aclscan files` and `aclscan descriptors`: listings over a scan database."""

from __future__ import annotations

import click

from aclscan import queries
from aclscan.cli import cli
from aclscan.cli.options import (db_argument, format_option, limit_option, output_option, sid_from_user,
                                 text_output)
from aclscan.formats.rows import CountedRows, write_rows
from aclscan.places import PLACE_KINDS
from aclscan.store import open_database

names_option = click.option("--names", is_flag=True,
                            help="Show the descriptor with account names, icacls-style "
                                 "(BUILTIN\\Administrators:(OI)(CI)(F)), instead of SDDL.")
SID_HELP = ("a SID, an SDDL alias (BA) or an account name (AVService, MEMBER\\Jon, 'NT AUTHORITY\\SYSTEM'); "
            "case-insensitive")


def _write_listing(rows, columns, fmt: str, output: str | None, path_prefix: str | None) -> None:
    """Stream the rows out; a --path that matched nothing is said, not silent."""
    counted = CountedRows(rows)
    with text_output(output) as out:
        write_rows(counted, columns, fmt, out)
    if path_prefix and not counted.count:
        click.echo(f"no file at or under '{path_prefix}' in this scan", err=True)


def _with_names(rows, db, key_column: str, sddl_column: str):
    """Rows with the SDDL replaced by the icacls-style view (each distinct descriptor rendered once)."""
    from aclscan.account_names import AccountNames
    from aclscan.formats.acl_text import descriptor_lines, names_summary

    names = AccountNames.of(db)
    rendered: dict[int, str] = {}
    for row in rows:
        key = row[key_column]
        if key is not None and key not in rendered:
            rendered[key] = names_summary(descriptor_lines(db, key, names))
        row[sddl_column] = rendered.get(key)
        yield row


@cli.command()
@db_argument
@click.option("--path", "path_prefix", help="Only files at or under this path ('Program Files\\AVScan' or "
                                            "/Users/Ken), case-insensitive as on Windows.")
@click.option("--sid", help=f"Only files whose descriptor names this account (owner, group or ACE): {SID_HELP}.")
@click.option("--descriptor", "descriptor_key", type=int, help="Only files with this descriptor key.")
@click.option("--dirs/--no-dirs", "dirs_only", default=None, help="Only directories / only non-directories.")
@names_option
@limit_option
@format_option()
@output_option
def files(database, path_prefix, sid, descriptor_key, dirs_only, names, limit, fmt, output):
    """List the files of a scan with their descriptor, folder by folder (streamed)."""
    db = open_database(database)
    rows = queries.iter_files(db, path_prefix=path_prefix, sid=sid_from_user(db, sid, "--sid"),
                              descriptor_key=descriptor_key, dirs_only=dirs_only, limit=limit)
    columns = queries.FILE_COLUMNS
    if names:
        rows = _with_names(rows, db, "descriptor_key", "acl")
        columns = tuple("acl" if c == "sddl" else c for c in columns)
    _write_listing(rows, columns, fmt, output, path_prefix)


@cli.command()
@db_argument
@click.option("--sid", help=f"Only descriptors that name this account (owner, group or ACE): {SID_HELP}.")
@click.option("--path", "path_prefix", help="Only descriptors used by files at or under this path (case-insensitive).")
@names_option
@limit_option
@format_option()
@output_option
def descriptors(database, sid, path_prefix, names, limit, fmt, output):
    """List the distinct security descriptors of a scan, in SDDL (or with names)."""
    db = open_database(database)
    rows = queries.iter_descriptors(db, sid=sid_from_user(db, sid, "--sid"), path_prefix=path_prefix, limit=limit)
    columns = queries.DESCRIPTOR_COLUMNS
    if names:
        rows = _with_names(rows, db, "key", "acl")
        columns = tuple("acl" if c == "sddl" else c for c in columns if c not in ("owner", "group"))
    _write_listing(rows, columns, fmt, output, path_prefix)


@cli.command()
@db_argument
@click.option("--kind", type=click.Choice(PLACE_KINDS), help="Only places of this kind.")
@click.option("--sid", help=f"Only places that name this account (through their descriptor or directly): {SID_HELP}.")
@click.option("--path", "path_prefix", help="Only places at or under this path (HKLM\\SOFTWARE\\AVScan; "
                                            "case-insensitive).")
@click.option("--hive", help="Only places stored in this hive (as `aclscan places` names it: SOFTWARE, ...).")
@limit_option
@format_option()
@output_option
def places(database, kind, sid, path_prefix, hive, limit, fmt, output):
    """List the places other than files that a scan read: registry keys, services, shares,
    printers, scheduled tasks, DCOM permissions, SAM objects and LSA accounts."""
    db = open_database(database)
    rows = queries.iter_places(db, kind=kind, sid=sid_from_user(db, sid, "--sid"), path_prefix=path_prefix,
                               hive=hive, limit=limit)
    with text_output(output) as out:
        write_rows(rows, queries.PLACE_COLUMNS, fmt, out)


@cli.command()
@db_argument
def index(database):
    """Build the file indexes a scan leaves to its first reader (for Datasette and SQL users)."""
    open_database(database, index=True)
    click.echo(f"indexed {database}", err=True)
