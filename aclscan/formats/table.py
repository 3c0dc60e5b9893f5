"""Tables for people, streamed: the first rows fix the column widths, every row is
written as it comes (a listing of a million files starts at once, in flat memory).

On a terminal the table fits its width: short columns keep their width, long ones
(paths, SDDL, evidence) share what is left and wrap, preferring to break after a
separator; where even that cannot fit (many columns, a narrow terminal) each row
becomes a vertical record, one ``column  value`` line each. Piped, nothing wraps and
no column is padded beyond :data:`PIPED_MAX_PAD` characters, nor the last at all,
so ``grep`` and ``cut`` see each row on one line without trailing spaces.
"""

from __future__ import annotations

import itertools
import re
import shutil
from typing import IO, Callable, Iterable, Iterator, Sequence

from rich.cells import cell_len as _rich_cell_len

SAMPLE_ROWS = 50  # rows read before the first is written, to size the columns
GAP = 2  # spaces between columns
FLEX_MIN = 16  # a wrapping column narrower than this makes the row a vertical record instead
PIPED_MAX_PAD = 60
_BREAK_AFTER = " ,;)/\\|-"
_SOLID = re.compile(r"^(S-1-[0-9-]+|-?[0-9][0-9.,]*)$")


def cell_len(text: str) -> int:
    """Terminal cells ``text`` takes (wide characters take two); fast for ASCII."""
    return len(text) if text.isascii() else _rich_cell_len(text)


def terminal_width(out: IO[str]) -> int | None:
    """The width to fit, or None where the output is not a terminal."""
    try:
        if not out.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return max(20, shutil.get_terminal_size().columns)


def write_table(rows: Iterable[dict], columns: Sequence[str], out: IO[str], cell: Callable[[object], str],
                width: int | None = None) -> None:
    """Write ``rows`` as a table; ``cell`` turns a value into safe text; ``width`` is the
    terminal's (None: piped)."""
    iterator = iter(rows)
    sample = [[cell(row.get(c)) for c in columns] for row in itertools.islice(iterator, SAMPLE_ROWS)]
    rest = ([cell(row.get(c)) for c in columns] for row in iterator)
    natural = [max([cell_len(c)] + [cell_len(r[i]) for r in sample]) for i, c in enumerate(columns)]
    all_rows = itertools.chain(sample, rest)
    if width is None:
        _write_piped(all_rows, columns, natural, out)
        return
    # SIDs and numbers are never broken: a column of them keeps its width or the rows become records
    solid = [all(_SOLID.match(r[i]) for r in sample if r[i]) for i in range(len(columns))]
    headers = [max(cell_len(c), n if whole else 0) for c, n, whole in zip(columns, natural, solid)]
    widths = fit_widths(natural, headers, width)
    if widths is None:
        _write_records(all_rows, columns, width, out)
    else:
        _write_wrapped(all_rows, columns, widths, out)


def fit_widths(natural: list[int], headers: list[int], width: int) -> list[int] | None:
    """Column widths that fit ``width``: every column is capped at one common width, the
    largest that fits, so short columns keep theirs and the long ones share the rest; none
    goes below ``headers`` (its heading, or all of it for a column that must not break) or
    FLEX_MIN. None where even that cannot fit."""
    budget = width - GAP * (len(natural) - 1)
    floors = [max(h, min(n, FLEX_MIN)) for h, n in zip(headers, natural)]
    if sum(floors) > budget:
        return None

    def capped(cap: int) -> list[int]:
        return [min(n, max(cap, f)) for n, f in zip(natural, floors)]

    low, high = 0, max(natural)
    while low < high:  # the largest cap whose widths fit
        middle = (low + high + 1) // 2
        if sum(capped(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return capped(low)


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken after a separator where one is
    in the last third of the line, else anywhere."""
    if cell_len(text) <= width:
        return [text]
    lines = []
    while text:
        cut, used, last_break = 0, 0, 0
        for i, ch in enumerate(text):
            used += cell_len(ch)
            if used > width:
                break
            cut = i + 1
            if ch in _BREAK_AFTER:
                last_break = i + 1
        if cut >= len(text):
            lines.append(text)
            break
        if last_break and last_break > cut * 2 // 3:
            cut = last_break
        lines.append(text[:max(cut, 1)])
        text = text[max(cut, 1):]
    return lines


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - cell_len(text))


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return (" " * GAP).join(_pad(c, w) for c, w in zip(cells, widths)).rstrip()


def _write_piped(rows: Iterator[list[str]], columns: Sequence[str], natural: list[int], out: IO[str]) -> None:
    widths = [min(w, PIPED_MAX_PAD) for w in natural]
    out.write(_line(columns, widths) + "\n")
    for row in rows:
        out.write(_line(row, widths) + "\n")


def _write_wrapped(rows: Iterator[list[str]], columns: Sequence[str], widths: list[int], out: IO[str]) -> None:
    out.write(_line(columns, widths) + "\n")
    out.write(_line(["-" * w for w in widths], widths) + "\n")
    for row in rows:
        wrapped = [wrap(value, w) for value, w in zip(row, widths)]
        for parts in itertools.zip_longest(*wrapped, fillvalue=""):
            out.write(_line(parts, widths) + "\n")


def _write_records(rows: Iterator[list[str]], columns: Sequence[str], width: int, out: IO[str]) -> None:
    label = max(cell_len(c) for c in columns)
    value_width = max(10, width - label - GAP)
    for number, row in enumerate(rows, 1):
        heading = f"-[ {number} ]"
        out.write(heading + "-" * max(0, min(width, 60) - len(heading)) + "\n")
        for column, value in zip(columns, row):
            parts = wrap(value, value_width) if value else [""]
            out.write(_pad(column, label) + " " * GAP + parts[0] + "\n")
            for part in parts[1:]:
                out.write(" " * (label + GAP) + part + "\n")
