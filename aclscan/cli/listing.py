"""`aclscan files` and `aclscan descriptors`: listings over a scan database."""

from __future__ import annotations

import sys

import click

from aclscan import queries
from aclscan.cli import cli
from aclscan.cli.options import db_argument, format_option
from aclscan.formats.rows import write_rows
from aclscan.places import PLACE_KINDS
from aclscan.sd.sddl import sid_from_sddl
from aclscan.store import open_database


def _sid_text(value: str | None) -> str | None:
    """Accept 'S-1-5-32-544' or an SDDL alias such as 'BA'."""
    return str(sid_from_sddl(value)) if value else None


@cli.command()
@db_argument
@click.option("--path", "path_prefix", help="Only files under this path (e.g. 'Users\\Ken' or /Users/Ken).")
@click.option("--sid", help="Only files whose descriptor names this SID (owner, group or ACE); aliases like BA work.")
@click.option("--descriptor", "descriptor_key", type=int, help="Only files with this descriptor key.")
@click.option("--dirs/--no-dirs", "dirs_only", default=None, help="Only directories / only non-directories.")
@click.option("--limit", type=int, help="At most this many rows.")
@format_option
def files(database, path_prefix, sid, descriptor_key, dirs_only, limit, fmt):
    """List the files of a scan with their descriptor."""
    db = open_database(database)
    rows = queries.iter_files(
        db, path_prefix=path_prefix, sid=_sid_text(sid), descriptor_key=descriptor_key, dirs_only=dirs_only, limit=limit
    )
    write_rows(rows, queries.FILE_COLUMNS, fmt, sys.stdout)


@cli.command()
@db_argument
@click.option("--sid", help="Only descriptors that name this SID (owner, group or ACE).")
@click.option("--path", "path_prefix", help="Only descriptors used by files under this path.")
@click.option("--limit", type=int, help="At most this many rows.")
@format_option
def descriptors(database, sid, path_prefix, limit, fmt):
    """List the distinct security descriptors of a scan, in SDDL."""
    db = open_database(database)
    rows = queries.iter_descriptors(db, sid=_sid_text(sid), path_prefix=path_prefix, limit=limit)
    write_rows(rows, queries.DESCRIPTOR_COLUMNS, fmt, sys.stdout)


@cli.command()
@db_argument
@click.option("--kind", type=click.Choice(PLACE_KINDS), help="Only places of this kind.")
@click.option("--sid", help="Only places that name this SID (through their descriptor or directly).")
@click.option("--path", "path_prefix", help="Only places at or under this path (HKLM\\SOFTWARE\\AVScan; "
                                            "case-insensitive).")
@click.option("--hive", help="Only places stored in this hive (as `aclscan places` names it: SOFTWARE, ...).")
@click.option("--limit", type=int, help="At most this many rows.")
@format_option
def places(database, kind, sid, path_prefix, hive, limit, fmt):
    """List the places other than files that a scan read: registry keys, services, shares,
    printers, scheduled tasks, DCOM permissions, SAM objects and LSA accounts."""
    db = open_database(database)
    rows = queries.iter_places(db, kind=kind, sid=_sid_text(sid), path_prefix=path_prefix, hive=hive, limit=limit)
    write_rows(rows, queries.PLACE_COLUMNS, fmt, sys.stdout)


@cli.command()
@db_argument
def index(database):
    """Build the file indexes a scan leaves to its first reader (for Datasette and SQL users)."""
    open_database(database, index=True)
    click.echo(f"indexed {database}", err=True)
