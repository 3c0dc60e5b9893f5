"""Rows out, in the format the user asked for: table, json, ndjson, csv.

Every listing command renders through :func:`write_rows`, so the safety rules
live in one place: CSV cells that a spreadsheet would run as a formula are
neutralised, and text meant for a terminal or a CSV file has its control
characters and line/paragraph separators escaped (a file name can hold an
escape sequence). JSON needs neither: the encoder
escapes control characters itself.
"""

from __future__ import annotations

import csv
import enum
import json
import re
from typing import IO, Iterable, Sequence

from aclscan.formats.table import terminal_width, write_table


class RowFormat(str, enum.Enum):
    TABLE = "table"
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


# C0 and C1 controls, and the line and paragraph separators (a table or a log
# reader may break a line at them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def terminal_safe(text: str) -> str:
    """Control characters shown as \\xNN escapes (U+2028, U+2029 as \\u2028,
    \\u2029), so a name cannot drive the terminal or break a line."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def csv_safe(value):
    """A cell a spreadsheet would treat as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _plain(value):
    if isinstance(value, bytes):
        return value.hex()
    return value


def _write_table(rows: Iterable[dict], columns: Sequence[str], out: IO[str]) -> None:
    # Streamed, fitted to a terminal's width, unpadded when piped: see aclscan.formats.table.
    write_table(rows, columns, out, _table_cell, terminal_width(out))


def _table_cell(value) -> str:
    return "" if value is None else terminal_safe(str(_plain(value)))


def _write_json(rows: Iterable[dict], columns: Sequence[str], out: IO[str]) -> None:
    # Streamed: one object per line inside the list, never the whole list in memory.
    out.write("[")
    first = True
    for row in rows:
        out.write("\n" if first else ",\n")
        out.write(json.dumps({c: _plain(row.get(c)) for c in columns}, ensure_ascii=False))
        first = False
    out.write("\n]\n" if not first else "]\n")


def _write_ndjson(rows: Iterable[dict], columns: Sequence[str], out: IO[str]) -> None:
    for row in rows:
        out.write(json.dumps({c: _plain(row.get(c)) for c in columns}, ensure_ascii=False))
        out.write("\n")


def _csv_text(value):
    """A text cell with its control characters and line separators escaped as on a
    terminal: a cell must not carry ESC, BEL or CR to whoever opens the file."""
    return terminal_safe(value) if isinstance(value, str) else value


def _write_csv(rows: Iterable[dict], columns: Sequence[str], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_safe(_csv_text(_plain(row.get(c)))) for c in columns])


WRITERS = {
    RowFormat.TABLE: _write_table,
    RowFormat.JSON: _write_json,
    RowFormat.NDJSON: _write_ndjson,
    RowFormat.CSV: _write_csv,
}


def write_rows(rows: Iterable[dict], columns: Sequence[str], fmt: RowFormat | str, out: IO[str], *,
               joined: Sequence[str] = ()) -> None:
    """``rows`` in ``fmt``; the list cells of the ``joined`` columns, kept as lists in JSON,
    are one cell of ``a | b`` in a table or CSV."""
    fmt = RowFormat(fmt)
    if joined and fmt in (RowFormat.TABLE, RowFormat.CSV):
        rows = ({**r, **{c: " | ".join(r[c]) for c in joined}} for r in rows)
    WRITERS[fmt](rows, columns, out)


class CountedRows:
    """Rows passed through as they stream, counted: a command can then say that nothing
    matched, or exit by whether anything did, without holding the rows."""

    def __init__(self, rows):
        self.rows, self.count = rows, 0

    def __iter__(self):
        for row in self.rows:
            self.count += 1
            yield row
