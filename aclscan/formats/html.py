"""The auditor's HTML report: one self-contained page (inline style, inline SVG charts,
one small inline script for sorting and filtering; no network).

The first page is for a manager: the machine, READY or NOT READY with the rules that
failed, counts per verdict and per object kind as charts, the top problem SIDs. Then
one card per problem SID in plain language, the readiness rules, a glossary and the
evidence tables. It fits 1,366 px without sideways scrolling and prints on A4.

Every value from the volume or the directory (paths, account names, SDDL) is escaped
with html.escape and has its control characters shown as \\xNN, so a file named
``<script>`` is text on the page, never markup; the only script is the one below.
"""

from __future__ import annotations

import html
from typing import IO, Iterable, Sequence

from aclscan import __version__
from aclscan.audit import FILES, GLOSSARY, AuditReport, build_report, kind_label
from aclscan.classify import PROBLEMS, VERDICTS
from aclscan.formats.rows import terminal_safe

EVIDENCE_ROW_LIMIT = 5000  # a page stays usable; the CSV/JSON exports carry every row
TOP_SIDS = 8

# Verdict colours, as the graph picture draws them (aclscan.graph.VERDICT_COLOURS).
VERDICT_COLOURS = {
    "resolved": "#4d9a4d", "orphan": "#e34a33", "stale_prefix": "#e6731c", "rid_collision": "#b30000",
    "sid_history": "#c9a100", "foreign_machine": "#a15ca0", "unknown_authority": "#6a4c93", "unresolved": "#8a8a8a",
    "placeholder": "#9bb7d4", "transient": "#9bb7d4", "inconsistent_hives": "#662506",
}

_STYLE = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d0d7de;--soft:#f6f8fa;--bad:#b42318;--ok:#1a7f37;--warn:#9a6700;
--accent:#0b5cad}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{font:14px/1.45 "Segoe UI",system-ui,-apple-system,"DejaVu Sans",sans-serif;color:var(--ink);margin:0;
background:#eef1f4}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:0 0 2px}
h2{font-size:18px;margin:32px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:0}
p{margin:6px 0}
.sub{color:var(--muted);font-size:13px}
.mono,code{font-family:"Cascadia Mono",Consolas,"DejaVu Sans Mono",monospace;font-size:12px}
.wrap{overflow-wrap:anywhere;word-break:normal}
.verdict-banner{display:flex;gap:16px;align-items:center;border-radius:8px;padding:14px 18px;margin:16px 0;
border:1px solid}
.verdict-banner .big{font-size:26px;font-weight:700;letter-spacing:.5px;white-space:nowrap}
.verdict-banner.bad{background:#fff1f0;border-color:#f5c2bf;color:var(--bad)}
.verdict-banner.ok{background:#eefbf1;border-color:#b7e4c2;color:var(--ok)}
.verdict-banner.warn{background:#fff8e6;border-color:#f0d68a;color:var(--warn)}
.verdict-banner ul{margin:0;padding-left:18px;color:var(--ink)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:14px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 14px;background:var(--soft);min-width:0}
.tile .n{font-size:26px;font-weight:700}
.tile .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:18px;margin-top:14px}
.chart{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:0}
.chart svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px;table-layout:fixed}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top;
overflow-wrap:anywhere;word-break:normal}
th{background:var(--soft);font-weight:600;font-size:12px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
.facts dt{color:var(--muted)} .facts dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;
white-space:nowrap}
.status{font-weight:600} .status.fail{color:var(--bad)} .status.pass{color:var(--ok)} .status.skipped{color:var(--warn)}
.status.bad{color:var(--bad)} .status.ok{color:var(--ok)} .status.warn{color:var(--warn)}
.card{border:1px solid var(--line);border-left:6px solid var(--bad);border-radius:8px;padding:12px 16px;
margin:14px 0;break-inside:avoid}
.card header{display:flex;flex-wrap:wrap;gap:8px 12px;align-items:baseline;margin-bottom:6px}
.card .sid{color:var(--muted)}
.card dl{display:grid;grid-template-columns:170px 1fr;gap:4px 14px;margin:6px 0 0}
.card dt{font-weight:600;color:var(--muted)} .card dd{margin:0;min-width:0}
.card ul{margin:0;padding-left:18px}
.refused{color:var(--bad)} .refused strong{font-weight:700}
.rem-fixed{color:var(--ok);font-weight:600} .rem-refused,.rem-interrupted{color:var(--bad);font-weight:600}
.rem-not_fixed,.rem-partly_fixed,.rem-undone{color:var(--warn);font-weight:600}
.filter{margin:6px 0;display:flex;gap:10px;align-items:center}
.filter input{font:inherit;padding:4px 8px;border:1px solid var(--line);border-radius:6px;width:320px;max-width:100%}
.filter .count{color:var(--muted);font-size:12px}
details summary{cursor:pointer;color:var(--accent)}
dl.glossary{display:grid;grid-template-columns:190px 1fr;gap:6px 16px}
dl.glossary dt{font-weight:600} dl.glossary dd{margin:0}
footer{margin-top:36px;color:var(--muted);font-size:12px}
@media screen and (max-width:900px){.charts{grid-template-columns:1fr}.card dl{grid-template-columns:1fr}}
@media print{
  @page{size:A4;margin:12mm 11mm}
  body{background:#fff;font-size:9pt;line-height:1.3}
  main{max-width:none;padding:0;min-height:0}
  h1{font-size:16pt} h2{font-size:12pt;margin:14pt 0 5pt;break-after:avoid} h3{font-size:10pt}
  .first-page{break-after:page}
  .verdict-banner{padding:8px 12px;margin:8px 0} .verdict-banner .big{font-size:16pt}
  .grid{grid-template-columns:repeat(4,1fr);gap:8px} .tile{padding:5px 8px} .tile .n{font-size:15pt}
  .charts{grid-template-columns:1fr 1fr;gap:10px} .chart{padding:4px 8px}
  .badge{font-size:6.5pt;padding:0 4px}
  table{font-size:7.5pt} th,td{padding:2px 4px}
  thead{display:table-header-group} tr{break-inside:avoid}
  .filter,.noprint{display:none}
  .card{padding:6px 10px;margin:6px 0}
  .card dl{grid-template-columns:120px 1fr;gap:2px 10px}
  .mono,code{font-size:7.5pt}
  a{color:inherit;text-decoration:none}
  details>summary{display:none}
  tr.print-hidden{display:none}
}
"""

# Sorting (click a column head) and filtering (type in the box above a table). Plain DOM,
# no network, no eval; rows are moved, never rebuilt from text, so escaping stays intact.
_SCRIPT = """
(function(){
function cellValue(row,i){var c=row.cells[i];return c?(c.getAttribute('data-v')||c.textContent):'';}
document.querySelectorAll('table.sortable').forEach(function(table){
  var heads=table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads,function(th,i){
    th.addEventListener('click',function(){
      var asc=th.getAttribute('aria-sort')!=='ascending';
      Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',asc?'ascending':'descending');
      var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      var numeric=rows.every(function(r){var v=cellValue(r,i);return v===''||!isNaN(Number(v));});
      rows.sort(function(a,b){var x=cellValue(a,i),y=cellValue(b,i);
        var d=numeric?(Number(x)-Number(y)):x.localeCompare(y);return asc?d:-d;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
document.querySelectorAll('input[data-filter]').forEach(function(input){
  var table=document.getElementById(input.getAttribute('data-filter'));
  var count=input.parentNode.querySelector('.count');
  input.addEventListener('input',function(){
    var q=input.value.toLowerCase(),shown=0,rows=table.tBodies[0].rows;
    Array.prototype.forEach.call(rows,function(r){
      var hit=r.textContent.toLowerCase().indexOf(q)>=0;r.style.display=hit?'':'none';if(hit)shown++;});
    count.textContent=shown+' of '+rows.length+' rows';
  });
});
})();
"""


def text(value) -> str:
    """A value as safe HTML text."""
    return "" if value is None else html.escape(terminal_safe(str(value)), quote=True)


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#777")
    return f'<span class="badge" style="background:{colour}">{text(verdict)}</span>'


def bar_chart(title: str, items: Sequence[tuple[str, int, str]], *, unit: str) -> str:
    """A horizontal bar chart as inline SVG: (label, value, colour) per bar."""
    if not items:
        return f'<div class="chart"><h3>{text(title)}</h3><p class="sub">Nothing to show.</p></div>'
    width, label_w, bar_h, gap = 520, 170, 18, 6
    top = 6
    height = top + len(items) * (bar_h + gap)
    biggest = max(v for _, v, _ in items) or 1
    room = width - label_w - 70
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{text(title)}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value, colour) in enumerate(items):
        y = top + i * (bar_h + gap)
        length = max(2, round(room * value / biggest)) if value else 0
        parts.append(f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end" font-size="12" fill="#1f2328">'
                     f'{text(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{length}" height="{bar_h}" rx="3" fill="{colour}">'
                     f'<title>{text(label)}: {value:,} {text(unit)}</title></rect>'
                     f'<text x="{label_w + length + 6}" y="{y + 13}" font-size="12" fill="#1f2328">{value:,}</text>')
    parts.append("</svg>")
    return f'<div class="chart"><h3>{text(title)}</h3>{"".join(parts)}</div>'


def _table(table_id: str, columns: Sequence[tuple[str, str, str]], rows: Iterable[Sequence], *,
           filterable: bool = True, row_class=None) -> str:
    """A sortable table; ``columns`` are (heading, css class, width) and each row holds
    (html, sort value) pairs or plain values (escaped here)."""
    head = "".join(f'<th class="{css}" style="width:{w}">{text(h)}</th>' for h, css, w in columns)
    body = []
    count = 0
    for row in rows:
        count += 1
        cells = []
        for (heading, css, _), value in zip(columns, row):
            if isinstance(value, tuple):
                shown, sort = value
                cells.append(f'<td class="{css}" data-v="{text(sort)}">{shown}</td>')
            elif isinstance(value, int):  # shown as 1,804; sorted as 1804
                cells.append(f'<td class="{css}" data-v="{value}">{value:,}</td>')
            else:
                cells.append(f'<td class="{css}">{text(value)}</td>')
        css_row = f' class="{row_class(row)}"' if row_class else ""
        body.append(f"<tr{css_row}>{''.join(cells)}</tr>")
    control = (f'<div class="filter noprint"><input type="search" placeholder="Filter rows" '
               f'data-filter="{table_id}" aria-label="Filter rows"><span class="count">{count} rows</span></div>'
               if filterable else "")
    return (f'{control}<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _first_page(report: AuditReport) -> str:
    machine = report.machine
    ready = report.ready
    css = "bad" if ready is False or ready is None else ("warn" if "not judged" in report.readiness_headline else "ok")
    word = "NOT READY" if ready is False else ("READY" if ready else "NOT JUDGED")
    failed = [r for r in report.rules if r["status"] == "fail"]
    unjudged = [r for r in report.rules if r["status"] not in ("pass", "fail")]
    reasons = "".join(f"<li><strong>{text(r['name'])}</strong>: {text(r['summary'])}</li>" for r in failed)
    if ready and unjudged:
        reasons += "".join(f"<li>not judged: <strong>{text(r['name'])}</strong>: {text(r['summary'])}</li>"
                           for r in unjudged)
    if not report.rules:
        reasons = f"<li>{text(report.readiness_headline)}</li>"
    banner = (f'<div class="verdict-banner {css}"><div class="big">{word}</div>'
              f'<div><div>{"Rules that failed:" if failed else "Deployment readiness"}</div>'
              f'<ul>{reasons}</ul></div></div>')
    name = machine.get("computer_name") or "(unknown machine)"
    facts = [("Machine", name), ("Machine SID", machine.get("machine_sid")),
             ("Product", machine.get("product_type")),
             ("Domain", machine.get("primary_domain_name") or "workgroup")]
    for volume in report.volumes:
        facts.append(("Image", volume["image"]))
        facts.append(("Volume", f"serial {volume['serial']}, {volume['files']:,} files, scanned {volume['scanned_at']}"))
    facts_html = "".join(f"<dt>{text(k)}</dt><dd class=\"wrap\">{text(v)}</dd>" for k, v in facts if v)
    problem_sids = len(report.cards)
    files = sum(c.places.get(FILES, 0) for c in report.cards)
    other = sum(v for c in report.cards for k, v in c.places.items() if k != FILES)
    refused = sum(1 for c in report.cards if c.steps and all(s.refused for s in c.steps))
    fixed = sum(1 for c in report.cards if c.remediation.state == "fixed")
    tiles = [
        (f"{problem_sids:,}", "problem SIDs"),
        (f"{files:,}", "file references to them"),
        (f"{other:,}", "registry and other places"),
        (f"{problem_sids - refused:,} / {refused:,}", "plan: fixable / refused"),
    ]
    if report.journal is not None:
        tiles.append((f"{fixed:,}", "fixed (fix journal)"))
    tiles_html = "".join(f'<div class="tile"><div class="n">{n}</div><div class="l">{text(l)}</div></div>'
                         for n, l in tiles)
    verdict_items = [(v, report.verdict_counts[v], VERDICT_COLOURS.get(v, "#777"))
                     for v in VERDICTS if report.verdict_counts.get(v)]
    kind_items = [(kind_label(k), n, "#3b6ea8") for k, n in
                  sorted(report.kind_counts.items(), key=lambda kv: (kv[0] != FILES, -kv[1]))]
    kind_title = "Where the problem SIDs are named"
    charts = (bar_chart("Distinct SIDs per verdict", verdict_items, unit="SIDs")
              + bar_chart(kind_title, kind_items, unit="places"))
    top = report.cards[:TOP_SIDS]
    top_rows = []
    for card in top:
        outcome = ("refused" if card.steps and all(s.refused for s in card.steps)
                   else ("planned" if card.steps else "no action"))
        keys = sum(v for k, v in card.places.items() if k != FILES)
        top_rows.append((
            (f'<strong>{text(card.name or "(unknown account)")}</strong><br><span class="mono sub">{text(card.sid)}</span>',
             card.name or card.sid),
            (_badge(card.verdict), card.verdict),
            card.places.get(FILES, 0), keys,
            (f'<span class="{"refused" if outcome == "refused" else ""}">{text(outcome)}</span>', outcome),
        ))
    top_table = (_table("top-sids", (("Account (was)", "", "44%"), ("Verdict", "", "16%"), ("Files", "num", "12%"),
                                     ("Registry & other", "num", "14%"), ("Plan", "", "14%")), top_rows,
                        filterable=False)
                 if top_rows else "<p>No SID with a problem verdict: nothing needs remediation.</p>")
    more = (f'<p class="sub">{len(report.cards) - len(top)} more problem SID(s) below.</p>'
            if len(report.cards) > len(top) else "")
    return (f'<section class="first-page"><h1>{text(report.title)}</h1>'
            f'<p class="sub">Permissions audit of {text(name)} after disk cloning, by aclscan {text(__version__)}.</p>'
            f"{banner}<div class=\"grid\">{tiles_html}</div>"
            f'<div class="charts">{charts}</div>'
            f'<h2>Top problem SIDs</h2>{top_table}{more}'
            f'<h2>Machine</h2><dl class="facts">{facts_html}</dl></section>')


def _card(card) -> str:
    title = card.name or "An unnamed account"
    places = ", ".join(f"{n:,} {kind_label(k, n)}" for k, n in
                       sorted(card.places.items(), key=lambda kv: (kv[0] != FILES, -kv[1]))) or "no file or key"
    where = f"{places}; {card.descriptors:,} distinct descriptor(s)" if card.descriptors else places
    steps = "".join(
        ('<li class="refused"><strong>Refused</strong>, nothing is changed: ' if s.refused else "<li>") + text(s.text)
        + (f'<br><span class="sub">Fix at the source: </span><span class="mono wrap">'
           f'{text(", ".join(s.folders))}</span>' if s.folders else "") + "</li>"
        for s in card.steps) or "<li>No plan action (the plan does not cover this verdict).</li>"
    holder = (f"<dt>Would go to</dt><dd>a prefix rewrite would hand its access to <strong>{text(card.rid_holder)}"
              f"</strong></dd>" if card.rid_holder else "")
    evidence = "".join(f"<li>{text(e)}</li>" for e in card.evidence)
    return (f'<article class="card" style="border-left-color:{VERDICT_COLOURS.get(card.verdict, "#777")}">'
            f'<header><h3>{text(title)}</h3>{_badge(card.verdict)}'
            f'<span class="mono sid wrap">{text(card.sid)}</span>'
            f'<span class="sub">confidence {text(card.confidence)}</span></header><dl>'
            f"<dt>What it was</dt><dd>{text(card.what_it_was)}</dd>"
            f"<dt>Why it is a problem</dt><dd>{text(card.why)}</dd>{holder}"
            f"<dt>Where</dt><dd>{text(where)}</dd>"
            f"<dt>What the plan does</dt><dd><ul>{steps}</ul></dd>"
            f'<dt>Remediation</dt><dd class="rem-{text(card.remediation.state)}">{text(card.remediation.text)}</dd>'
            f'<dt class="noprint">Evidence</dt><dd class="noprint"><details><summary>{len(card.evidence)} '
            f"statement(s) from the sources</summary><ul>{evidence}</ul></details></dd>"
            f"</dl></article>")


def _rules(report: AuditReport) -> str:
    if not report.rules:
        return f"<p>{text(report.readiness_headline)}</p>"
    rows = []
    for rule in report.rules:
        detail = ""
        if rule["evidence"]:
            items = "".join(f"<li>{text(e)}</li>" for e in rule["evidence"])
            detail = (f'<details><summary>{len(rule["evidence"])} detail(s)</summary>'
                      f'<ul class="wrap">{items}</ul></details>')
        rows.append(((f"<strong>{text(rule['name'])}</strong>", rule["name"]),
                     (f'<span class="status {text(rule["status"])}">{text(rule["status"].upper())}</span>',
                      rule["status"]),
                     (f"{text(rule['summary'])}{detail}", rule["summary"])))
    return _table("rules", (("Rule", "", "26%"), ("Result", "", "10%"), ("What the scan shows", "", "64%")), rows,
                  filterable=False)


def _glossary() -> str:
    items = "".join(f"<dt>{_badge(v)}</dt><dd>{text(GLOSSARY[v])}</dd>" for v in VERDICTS if v in GLOSSARY)
    return f'<dl class="glossary">{items}</dl>'


def _findings_table(report: AuditReport) -> str:
    rows = []
    for f in report.findings:
        mapped = f["mapped_sid"] or ""
        mapped_name = report.names.get(mapped) or mapped
        rows.append(((text(f["name"] or ""), f["name"] or ""), (f'<span class="mono">{text(f["sid"])}</span>', f["sid"]),
                     (_badge(f["verdict"]), f["verdict"]), f["confidence"], f["files"] or 0, f["descriptors"] or 0,
                     f["hive_references"] or 0,
                     (f'<span title="{text(mapped)}">{text(mapped_name)}</span>', mapped_name)))
    # At 1,366 px: room for every heading's longest word ("Confidence", "Registry") and a machine SID on one line.
    return _table("findings", (("Account", "", "17%"), ("SID", "", "30%"), ("Verdict", "", "11%"),
                               ("Confidence", "", "10%"), ("Files", "num", "6%"), ("Descr.", "num", "6%"),
                               ("Registry", "num", "8%"), ("Maps to", "", "12%")), rows,
                  row_class=lambda row: "" if row[2][1] in PROBLEMS else "print-hidden")


def _evidence_table(report: AuditReport) -> str:
    rows = []
    for r in report.evidence:
        rows.append(((text(r["name"] or r["sid"]), r["name"] or r["sid"]), (_badge(r["verdict"]), r["verdict"]),
                     r["where"], (f'<span class="mono">{text(r["entry"])}</span>', r["entry"]),
                     "yes" if r["inherited"] else ("" if r["inherited"] is None else "no"),
                     r["descriptor_key"], r["files"] or 0,
                     (f'<span class="mono">{text(r["example_path"] or "")}</span>', r["example_path"] or "")))
    table = _table("evidence", (("Account", "", "15%"), ("Verdict", "", "12%"), ("Where", "", "9%"),
                                ("Entry (icacls)", "", "25%"), ("Inh.", "", "5%"), ("Descr.", "num", "6%"),
                                ("Files", "num", "6%"), ("Example path", "", "22%")), rows)
    if report.evidence_total > len(report.evidence):
        table += (f"<p>{report.evidence_total - len(report.evidence):,} more rows: export them with "
                  f"<code>aclscan report SCAN.db --format csv</code>.</p>")
    return table


REMEDIATION_STATUS = {"fixed": ("ok", "fixed"), "partly_fixed": ("warn", "partly fixed"),
                      "not_fixed": ("bad", "not fixed")}


def _remediation_section(report: AuditReport) -> str:
    """Per problem SID of the earlier scan: files and places fixed, remaining, new."""
    if report.remediation is None:
        return ""
    rows = []
    for r in report.remediation:
        css, word = REMEDIATION_STATUS.get(r.status, ("", r.status))
        rows.append(((f'<strong>{text(r.account or "(unknown account)")}</strong><br>'
                      f'<span class="mono sub">{text(r.sid)}</span>', r.account or r.sid),
                     (_badge(r.verdict), r.verdict), (f'<span class="status {css}">{text(word)}</span>', r.status),
                     r.files_fixed, r.files_remaining, r.files_new, r.places_fixed, r.places_remaining, r.places_new))
    table = _table("remediation", (("Account (earlier scan)", "", "28%"), ("Verdict then", "", "12%"),
                                   ("Status", "", "12%"), ("Files fixed", "num", "8%"), ("Files remain", "num", "8%"),
                                   ("Files new", "num", "8%"), ("Places fixed", "num", "8%"),
                                   ("Places remain", "num", "8%"), ("Places new", "num", "8%")), rows)
    fixed = sum(1 for r in report.remediation if r.status == "fixed")
    return (f'<section><h2>Remediation</h2><p class="sub">Since the earlier scan '
            f'<span class="mono wrap">{text(report.earlier or "")}</span>: each of its '
            f"{len(report.remediation):,} problem SID(s), the files and places (registry, services, tasks, "
            f"rights, group members) that named it then and no longer do (fixed), still do (remain), or name "
            f"it now and did not then (new). {fixed:,} fixed.</p>"
            f"{table if rows else '<p>The earlier scan had no SID with a problem verdict.</p>'}</section>\n")


def render_html(report: AuditReport) -> str:
    cards = "".join(_card(c) for c in report.cards) or "<p>No SID with a problem verdict.</p>"
    journal = ""
    if report.journal is not None:
        meta = report.journal["meta"]
        counts = report.journal["counts"]
        journal = (f'<p>Fix journal <span class="mono wrap">{text(report.journal["path"])}</span>: state '
                   f'{text(meta.get("state", "?"))}, {counts["written"]:,} of {counts["journaled"]:,} file(s) '
                   f'written, {counts["restored"]:,} restored.</p>')
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(report.title)}</title><style>{_STYLE}</style></head><body><main>\n"
        f"{_first_page(report)}\n"
        f"{_remediation_section(report)}"
        f"<section><h2>Problem SIDs, one by one</h2>{journal}{cards}</section>\n"
        f"<section><h2>Readiness rules</h2>{_rules(report)}</section>\n"
        f"<section><h2>What the verdicts mean</h2>{_glossary()}</section>\n"
        f'<section><h2>Every SID of the scan</h2><p class="sub noprint">Click a column to sort; type to filter. '
        f"Printed, only the problem SIDs are listed.</p>{_findings_table(report)}</section>\n"
        f'<section><h2>Where the problem SIDs sit</h2><p class="sub">One row per distinct descriptor and place '
        f"(owner, group, ACE position); <em>Files</em> counts the files sharing that descriptor.</p>"
        f"{_evidence_table(report)}</section>\n"
        f"<footer>aclscan {text(__version__)}; the scan database is the full record "
        f"(<code>aclscan findings</code>, <code>aclscan report --format csv</code>).</footer>"
        f"</main><script>{_SCRIPT}</script></body></html>\n"
    )


def write_html_report(db, out: IO[str], *, title: str = "aclscan report", journal: str | None = None,
                      remediation: list | None = None, earlier: str | None = None) -> None:
    """The auditor's page; ``remediation`` (aclscan.remediation.remediation_status against the
    ``earlier`` scan) adds its Remediation section."""
    out.write(render_html(build_report(db, title=title, journal_path=journal, evidence_limit=EVIDENCE_ROW_LIMIT,
                                       remediation=remediation, earlier=earlier)))
