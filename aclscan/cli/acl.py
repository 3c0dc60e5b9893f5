"""`aclscan acl`: one file's descriptor as icacls shows it, with account names."""

from __future__ import annotations

import itertools
import json

import click

from aclscan import queries
from aclscan.account_names import AccountNames
from aclscan.cli import cli
from aclscan.cli.options import db_argument, format_option, limit_option, output_option, text_output
from aclscan.formats.acl_text import descriptor_lines
from aclscan.formats.rows import terminal_safe


@cli.command()
@db_argument
@click.argument("path")
@click.option("-r", "--recurse", is_flag=True, help="Also every file and folder under PATH (icacls /T).")
@limit_option
@format_option(("text", "json"), "text", "text, icacls-style; json, one object per file.")
@output_option
def acl(database, path, recurse, limit, fmt, output):
    """The ACL of PATH like icacls: owner, group, one ACE a line (BUILTIN\\Administrators:(OI)(CI)(F)),
    inherited ACEs marked (I), and the verdict beside any SID with a problem
    (S-1-5-21-...-1000 (was MEMBER\\Ken, rid_collision)). PATH is case-insensitive, with / or \\."""
    from aclscan.store import open_database

    db = open_database(database)
    names = AccountNames.of(db)
    rows = queries.iter_files(db, path_prefix=path, limit=None)
    wanted = queries.ntfs_upper(queries.normalise_path_prefix(path))
    if not recurse:  # PATH itself: the first row whose path is PATH (its folder lists it before anything under it)
        rows = itertools.islice((r for r in rows if queries.ntfs_upper(r["path"]) == wanted), 1)
    shown = 0
    with text_output(output) as out:
        for row in rows:
            if limit is not None and shown >= limit:
                break
            shown += 1
            lines = descriptor_lines(db, row["descriptor_key"], names) if row["descriptor_key"] is not None else None
            if fmt == "json":
                out.write(json.dumps({"path": row["path"], "volume_id": row["volume_id"], "entry": row["entry"],
                                      "owner": lines.owner if lines else None, "group": lines.group if lines else None,
                                      "aces": list(lines.aces) if lines else [], "error": lines.error if lines else
                                      "no descriptor"}, ensure_ascii=False) + "\n")
                continue
            body = lines.lines() if lines else ["(no descriptor)"]
            out.write(terminal_safe(row["path"]) + "\n")
            out.write("".join(f"    {terminal_safe(line)}\n" for line in body))
    if not shown:
        raise click.BadParameter(f"no file '{path}' in this scan", param_hint="'PATH'")
