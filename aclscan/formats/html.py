"""The auditor's HTML report: one self-contained page (no scripts, inline style).

Every value from the volume or the directory (paths, account names, SDDL) is
escaped with html.escape and has its control characters shown as \\xNN, so a file
named ``<script>`` is text on the page, never markup.
"""

from __future__ import annotations

import html
from collections import Counter
from typing import IO, Iterable, Sequence

from aclscan import __version__
from aclscan.classify import PROBLEMS
from aclscan.findings import EVIDENCE_COLUMNS, iter_evidence, iter_findings
from aclscan.formats.rows import terminal_safe

EVIDENCE_ROW_LIMIT = 5000  # a page stays readable; the CSV/JSON exports carry every row

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:90%}
th,td{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;text-align:left}
th{background:#f0f0f0} td.sddl{font-family:monospace;word-break:break-all;max-width:40em}
.problem{background:#fff3f0} .v-rid_collision,.v-orphan{color:#a00;font-weight:bold}
.v-stale_prefix,.v-sid_history{color:#a60;font-weight:bold}
"""


def text(value) -> str:
    """A value as safe HTML text."""
    return "" if value is None else html.escape(terminal_safe(str(value)), quote=True)


def _table(columns: Sequence[str], rows: Iterable[Sequence], row_class=None) -> str:
    head = "".join(f"<th>{text(c)}</th>" for c in columns)
    body = []
    for row in rows:
        css = f' class="{row_class(row)}"' if row_class else ""
        cells = "".join(f'<td class="sddl">{text(v)}</td>' if c in ("sddl", "ace", "evidence") else f"<td>{text(v)}</td>"
                        for c, v in zip(columns, row))
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_html_report(db, out: IO[str], *, title: str = "aclscan report") -> None:
    volumes = db.execute("SELECT image, serial, label, ntfs_version, files, scanned_at FROM volumes ORDER BY id").fetchall()
    machine = db.execute("SELECT sid, name FROM authorities WHERE kind = 'machine' LIMIT 1").fetchone()
    findings = list(iter_findings(db))
    verdicts = Counter(f["verdict"] for f in findings)
    out.write(f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{text(title)}</title>"
              f"<style>{_STYLE}</style></head><body>\n<h1>{text(title)}</h1>\n")
    out.write(f"<p>aclscan {text(__version__)}. Machine: {text(machine[1] if machine else '?')} "
              f"({text(machine[0] if machine else 'no SAM')}).</p>\n")
    out.write("<h2>Volumes</h2>\n" + _table(("image", "serial", "label", "NTFS", "files", "scanned at"), volumes))
    out.write("<h2>Verdicts</h2>\n" + _table(("verdict", "SIDs"), sorted(verdicts.items())))
    columns = ("sid", "verdict", "confidence", "account", "mapped_sid", "files", "descriptors", "hive_references",
               "evidence")
    out.write("<h2>Findings</h2>\n" + _table(
        columns, ([f[c] if c != "evidence" else " | ".join(f["evidence"]) for c in columns] for f in findings),
        row_class=lambda row: f"problem v-{row[1]}" if row[1] in PROBLEMS else f"v-{row[1]}"))
    out.write("<h2>Where the problem SIDs sit</h2>\n<p>One row per distinct descriptor and place (owner, group, "
              "ACE position); <em>files</em> counts the files sharing that descriptor.</p>\n")
    shown = []
    total = 0
    for row in iter_evidence(db):
        total += 1
        if len(shown) < EVIDENCE_ROW_LIMIT:
            shown.append([row[c] for c in EVIDENCE_COLUMNS])
    out.write(_table(EVIDENCE_COLUMNS, shown))
    if total > len(shown):
        out.write(f"<p>{total - len(shown)} more rows: export them with "
                  f"<code>aclscan report SCAN.db --format csv</code>.</p>\n")
    out.write("</body></html>\n")
