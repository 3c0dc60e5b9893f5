"""Options shared by several commands (one decorator each, used everywhere)."""

from __future__ import annotations

import click

from aclscan.formats.rows import RowFormat

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in RowFormat]),
    default=RowFormat.TABLE.value,
    show_default=True,
    help="Output format: table for people; json, ndjson, csv for programs (streamed).",
)
db_argument = click.argument("database", type=click.Path(dir_okay=False))
