"""`aclscan report`: the auditor's export of findings with their evidence."""

from __future__ import annotations

import sys

import click

from aclscan.cli import cli
from aclscan.cli.options import db_argument
from aclscan.findings import EVIDENCE_COLUMNS, iter_evidence
from aclscan.formats.rows import RowFormat, write_rows
from aclscan.store import open_database

REPORT_FORMATS = ["html"] + [f.value for f in RowFormat]


@cli.command()
@db_argument
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="html", show_default=True,
              help="html: one self-contained page; the others: one row per problem SID and place it sits.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option("--all", "everything", is_flag=True, help="Rows for every SID, not only problem verdicts.")
@click.option("--title", default="aclscan report", show_default=True, help="The HTML page's title.")
def report(database, fmt, output, everything, title):
    """Findings with their evidence (path, SDDL, ACE position, account, verdict, confidence)."""
    db = open_database(database)
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if fmt == "html":
            from aclscan.formats.html import write_html_report

            write_html_report(db, out, title=title)
        else:
            write_rows(iter_evidence(db, problems_only=not everything), EVIDENCE_COLUMNS, fmt, out)
    finally:
        if output:
            out.close()
