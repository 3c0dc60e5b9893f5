"""The administrator's mapping file (`aclscan plan --map FILE`) and account names -> SIDs.

A mapping file is CSV, UTF-8, one row per SID to re-point: ``old,new[,consent]``. Each side
is a SID (``S-1-5-21-...-1000``) or an account name as the scan knows it (``MEMBER\\Ken``,
``Ken``, ``NETWERKS\\kjones``, ``BUILTIN\\Administrators``). An optional first row
``old,new[,consent]`` is a header; empty rows and rows starting with ``#`` are skipped. The
third column, ``consent`` (or yes/true/1), is the administrator's explicit consent to map an
old SID onto the account that holds its RID today: without it such a row is refused, since it
hands the old account's access to someone else.

:func:`resolve_account` is the one place a name given by the administrator becomes a SID:
today's accounts (the ``accounts`` table and the well-known catalogue) for the new side, the
old names the scan learnt (problem findings' accounts, ``previous_names``) for the old side.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from aclscan.accounts.wellknown import CATALOGUE
from aclscan.errors import MalformedData
from aclscan.sd.sid import SID

__all__ = ["InvalidMapping", "MapRow", "parse_mapping", "read_mapping", "resolve_account"]

CONSENT_WORDS = frozenset({"consent", "yes", "true", "1", "y"})
REFUSAL_WORDS = frozenset({"", "no", "false", "0", "n"})


class InvalidMapping(MalformedData):
    """A mapping file that cannot be used: not CSV text, a bad row, a name the scan does not
    know, an old SID given twice, or a row onto a RID's new holder without consent."""


@dataclass(frozen=True)
class MapRow:
    """One row of a mapping file, both sides resolved to SIDs."""

    line: int
    old: str
    new: str
    consent: bool = False
    old_text: str = ""  # as the file spells it
    new_text: str = ""

    @property
    def source(self) -> str:
        return f"--map line {self.line}"


def _casefold_name(text: str) -> tuple[str | None, str]:
    domain, _, name = text.rpartition("\\")
    return (domain.casefold() or None), name.casefold()


def resolve_account(db, text: str, *, old: bool) -> str:
    """The SID ``text`` names: a SID as it is, or an account name (``DOMAIN\\name`` or
    ``name``) the scan knows: with ``old``, among the old accounts of its problem SIDs first
    (then today's), else among today's accounts and the well-known ones. InvalidMapping when
    no account or more than one has the name."""
    text = text.strip()
    if text.upper().startswith("S-1-"):
        try:
            return str(SID.from_string(text))
        except MalformedData as exc:
            raise InvalidMapping(f"{text!r} is not a valid SID ({exc})") from None
    domain, name = _casefold_name(text)
    if not name:
        raise InvalidMapping(f"{text!r} names no account")
    computer = _computer_name(db)

    def matches(account_domain: str | None, account_name: str) -> bool:
        got_domain, got_name = _casefold_name(account_name)
        got_domain = got_domain or (account_domain.casefold() if account_domain else None)
        if got_name != name:
            return False
        return domain is None or domain == got_domain or (got_domain is None and domain == computer)

    today = {sid for sid, d, n in db.execute("SELECT sid, domain, name FROM accounts") if matches(d, n or "")}
    today |= {e.sid for e in CATALOGUE if matches(e.domain, e.name)}
    before = {sid for sid, n in db.execute("SELECT sid, name FROM previous_names") if matches(None, n or "")}
    before |= {sid for sid, n in db.execute(
        "SELECT sid, account FROM findings WHERE verdict NOT IN ('resolved', 'placeholder', 'transient')")
        if n and matches(None, n)}
    for found in ((before, today) if old else (today,)):
        if len(found) == 1:
            return next(iter(found))
        if len(found) > 1:
            raise InvalidMapping(f"{text!r} names {len(found)} accounts ({', '.join(sorted(found))}): give the SID")
    side = "old or current" if old else "current"
    raise InvalidMapping(f"no {side} account named {text!r} in this scan: give its SID, or re-scan with the "
                         "source that knows it (--history, --domain)")


def _computer_name(db) -> str | None:
    try:
        row = db.execute("SELECT computer_name FROM machine LIMIT 1").fetchone()
    except Exception:  # noqa: BLE001 - a schema-1 database has no machine table
        return None
    return row[0].casefold() if row and row[0] else None


def _machine_sid(db) -> str | None:
    row = db.execute("SELECT sid FROM authorities WHERE kind = 'machine' LIMIT 1").fetchone()
    return row[0] if row else None


def _consent(cell: str, line: int) -> bool:
    word = cell.strip().casefold()
    if word in CONSENT_WORDS:
        return True
    if word in REFUSAL_WORDS:
        return False
    raise InvalidMapping(f"--map line {line}: third column {cell!r}: write 'consent' (or leave it empty)")


def parse_mapping(text: str, db) -> tuple[MapRow, ...]:
    """The rows of a mapping file's text, resolved and checked against the scan ``db``."""
    if "\0" in text:
        raise InvalidMapping("the mapping file is not CSV text (it holds NUL bytes)")
    rows: list[MapRow] = []
    seen: dict[str, int] = {}
    known = dict(db.execute("SELECT sid, verdict FROM findings"))
    holders = {sid: name for sid, name in db.execute("SELECT sid, name FROM accounts")}
    machine = _machine_sid(db)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise InvalidMapping(f"the mapping file is not CSV: {exc}") from None
    for line, record in enumerate(records, 1):
        cells = [c.strip() for c in record]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if not rows and [c.casefold() for c in cells[:2]] == ["old", "new"]:
            continue  # the header
        if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
            raise InvalidMapping(f"--map line {line}: expected old,new[,consent], got {len(cells)} column(s)")
        consent = _consent(cells[2], line) if len(cells) == 3 else False
        try:
            old = resolve_account(db, cells[0], old=True)
            new = resolve_account(db, cells[1], old=False)
        except InvalidMapping as exc:
            raise InvalidMapping(f"--map line {line}: {exc}") from None
        if old == new:
            raise InvalidMapping(f"--map line {line}: {cells[0]} is mapped onto itself")
        if old in seen:
            raise InvalidMapping(f"--map line {line}: {cells[0]} ({old}) is mapped already on line {seen[old]}")
        if old not in known:
            raise InvalidMapping(f"--map line {line}: {cells[0]} ({old}) does not occur in this scan")
        sid = SID.from_string(old)
        holder = f"{machine}-{sid.rid}" if machine and sid.rid is not None else None
        if new == holder and known[old] == "rid_collision" and not consent:
            raise InvalidMapping(
                f"--map line {line}: {new} ({holders.get(new, 'its holder')}) holds {cells[0]}'s RID today, "
                f"and this row would give it {cells[0]}'s access: add a third column 'consent' to mean it")
        seen[old] = line
        rows.append(MapRow(line, old, new, consent, cells[0], cells[1]))
    if not rows:
        raise InvalidMapping("the mapping file has no rows (old,new[,consent])")
    olds = {r.old for r in rows}
    chained = [r for r in rows if r.new in olds]
    if chained:
        raise InvalidMapping(f"--map line {chained[0].line}: {chained[0].new_text} is also mapped away: "
                             "map every old SID straight to its final account")
    return tuple(rows)


def read_mapping(path: str | Path, db) -> tuple[MapRow, ...]:
    """:func:`parse_mapping` of the file at ``path`` (UTF-8, a BOM allowed)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidMapping(f"cannot read the mapping file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidMapping(f"the mapping file {path} is not CSV text (not UTF-8)") from None
    return parse_mapping(text, db)
