"""`aclscan report`: the auditor's report (HTML or PDF) and the export of findings with their evidence."""

from __future__ import annotations

import itertools

import click

from aclscan.cli import cli
from aclscan.cli.options import db_argument, format_option, limit_option, output_option, refuse_terminal, text_output
from aclscan.findings import EVIDENCE_COLUMNS, iter_evidence
from aclscan.formats.rows import RowFormat, write_rows
from aclscan.store import open_database

REPORT_FORMATS = ("html", "pdf") + tuple(f.value for f in RowFormat)


@cli.command()
@db_argument
@format_option(REPORT_FORMATS, "html", "html: the auditor's page; pdf: the same, printed by Chromium (A4); "
                                       "csv, json, ndjson, table: one row per problem SID and place it sits "
                                       "(with --before: one row per problem SID of the earlier scan).")
@output_option
@limit_option
@click.option("--all", "everything", is_flag=True, help="Rows for every SID, not only problem verdicts (rows formats).")
@click.option("--title", default="aclscan report", show_default=True, help="The report's title.")
@click.option("--journal", type=click.Path(dir_okay=False),
              help="A fix journal (from aclscan fix --apply): the report shows how far the fix got per SID.")
@click.option("--before", "earlier", type=click.Path(dir_okay=False), metavar="EARLIER.db",
              help="An earlier scan of this machine (e.g. the one a plan was made from): a Remediation section "
                   "says, per problem SID of that scan, how many files and places are fixed, remain and are new.")
def report(database, fmt, output, limit, everything, title, journal, earlier):
    """The auditor's report: readiness, counts, one card per problem SID, evidence (HTML or PDF);
    or the evidence rows (path, SDDL, ACE position, account, verdict, confidence)."""
    if fmt in ("html", "pdf"):
        refuse_terminal(f"--format {fmt}", output)
    db = open_database(database)
    remediation = None
    if earlier:
        from aclscan.remediation import remediation_status

        remediation = remediation_status(earlier, database)
    if fmt == "html":
        from aclscan.formats.html import write_html_report

        with text_output(output) as out:
            write_html_report(db, out, title=title, journal=journal, remediation=remediation, earlier=earlier)
    elif fmt == "pdf":
        from aclscan.formats.pdf import write_pdf_report

        write_pdf_report(db, output, title=title, journal=journal, remediation=remediation, earlier=earlier)
    else:
        if remediation is not None:
            from aclscan.remediation import REMEDIATION_COLUMNS

            rows, columns = (r.as_row() for r in remediation), REMEDIATION_COLUMNS
        else:
            rows, columns = iter_evidence(db, problems_only=not everything), EVIDENCE_COLUMNS
        if limit is not None:
            rows = itertools.islice(rows, limit)
        with text_output(output) as out:
            write_rows(rows, columns, fmt, out)
