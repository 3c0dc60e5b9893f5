"""Domain accounts from an export: LDIF as ``ldifde`` writes it, or CSV as
``Get-ADUser | Export-Csv`` (or ``Get-ADObject``) writes it.

Both readers return a :class:`DomainExport`: the accounts (users, groups,
computers) with their SID, sAMAccountName and sIDHistory, and the domain SID,
taken from the domain object where the export has it and otherwise from the
accounts (the prefix most of them share). :class:`DomainSource` answers the
classifier's questions from an export (and from a live directory, see
:mod:`aclscan.accounts.ldap`).

LDIF (RFC 2849, as ldifde writes it):

    dn: CN=dave,CN=Users,DC=netwerks,DC=example
    changetype: add
    objectClass: user
    sAMAccountName: dave
    objectSid:: AQUAAAAAAAUVAAAAjS7qw7CRaSe2K5X7VAQAAA==
    sIDHistory:: AQUAAAAAAAUVAAAAnb7aUluyrEfjE7pA0gQAAA==

Records are separated by blank lines; a line that starts with one space (or
tab) continues the previous one; ``::`` marks a base64 value. objectSid and
sIDHistory are accepted in binary (base64) or string (``S-1-5-...``) form.
``ldifde -u`` writes UTF-16: a byte order mark selects the encoding.

CSV, as Windows PowerShell's Export-Csv writes it: an optional first line
``#TYPE <type name>``, a header row, every value quoted, CRLF line ends; UTF-8
with or without a byte order mark, or UTF-16 with one (``-Encoding Unicode``).
The columns used are SID (or objectSid), SamAccountName, SIDHistory,
ObjectClass, Enabled and DistinguishedName, matched without regard to case.
SIDHistory holds the values separated by spaces (or ``;``), as
``@{n='SIDHistory';e={$_.SIDHistory -join ' '}}`` writes them. Export-Csv
writes a multi-valued property it was not told how to join as its type name,
``Microsoft.ActiveDirectory.Management.ADPropertyValueCollection``: such a row's
history is *unknown*, not empty, and the export says so in ``warnings``.

Completeness: a source's account list is complete when it lists every account
of the domain that exists, so that a missing RID is a deleted account. An
export that lists users but no groups (Get-ADUser) cannot say that of a group
RID, so by default (``complete=None``) :class:`DomainSource` takes the
export's own word: complete when it lists both users and groups.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from aclscan.accounts.base import ALIAS, COMPUTER, DOMAIN, GROUP, USER, Account, Authority
from aclscan.errors import DirectoryError, MalformedExport, MalformedSID
from aclscan.inputs import check_input_file
from aclscan.sd.sid import SID

__all__ = ["DomainEntry", "DomainExport", "DomainSource", "read_csv", "read_ldif", "entries_to_export",
           "kind_of", "netbios_from_dn", "ADPROPERTYVALUECOLLECTION"]

ADPROPERTYVALUECOLLECTION = "Microsoft.ActiveDirectory.Management.ADPropertyValueCollection"

# groupType bits (MS-ADTS 2.2.12): created by the system (BUILTIN), global,
# domain local, universal. A domain-local group is what the SAM calls an alias.
_GROUP_TYPE_BUILTIN = 0x1
_GROUP_TYPE_DOMAIN_LOCAL = 0x4
_UF_ACCOUNTDISABLE = 0x2

# Bounds on an export: a directory of a million accounts exports well under 2 GiB,
# and a line (or CSV cell) of 16 Mi characters holds a sIDHistory of 300,000 SIDs.
MAX_EXPORT_BYTES = 2 << 30
MAX_LINE_CHARS = 16 << 20


@dataclass(frozen=True)
class DomainEntry:
    """One account of an export."""

    sid: str
    name: str  # sAMAccountName (or cn where the export has none)
    kind: str  # USER, GROUP, ALIAS or COMPUTER
    dn: str | None = None
    sid_history: tuple[str, ...] | None = ()  # None: the export does not say (history unknown)
    disabled: bool = False
    line: int | None = None  # where the record starts in the file


@dataclass(frozen=True)
class DomainExport:
    """The accounts of one domain, as an export (or a directory search) lists them."""

    domain_sid: str
    entries: tuple[DomainEntry, ...]
    origin: str  # "LDIF domain.ldif", "CSV users.csv", "ldaps://dc1.example"
    netbios_name: str | None = None
    dns_name: str | None = None
    complete: bool = False  # lists users and groups alike: a missing RID is a deleted account
    deleted: tuple[DomainEntry, ...] = ()  # entries marked isDeleted (ldifde -x, or a deleted-objects search)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def history_known(self) -> bool:
        """False where some entry's sIDHistory could not be read from the export."""
        return all(e.sid_history is not None for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)


# --- shared helpers ------------------------------------------------------------------

def kind_of(object_classes: Iterable[str], group_type: int | None = None) -> str | None:
    """USER, GROUP, ALIAS or COMPUTER from an entry's objectClass values (None: not an account).

    computer derives from user in the AD schema, so it is tested first.
    """
    classes = {c.strip().casefold() for c in object_classes}
    if "foreignsecurityprincipal" in classes:
        return None
    if "computer" in classes:
        return COMPUTER
    if "user" in classes or "inetorgperson" in classes:
        return USER
    if "group" in classes:
        if group_type is not None and group_type & (_GROUP_TYPE_DOMAIN_LOCAL | _GROUP_TYPE_BUILTIN):
            return ALIAS
        return GROUP
    return None


def netbios_from_dn(dn: str | None) -> str | None:
    """The usual NetBIOS name of a domain from a DN under it: its first DC= label, upper case.

    A guess (the NetBIOS name is the crossRef's nETBIOSName and may differ): used
    only where the export does not carry it.
    """
    labels = _dc_labels(dn)
    return labels[0].upper() if labels else None


def _dc_labels(dn: str | None) -> list[str]:
    if not dn:
        return []
    return [m.group(1) for m in re.finditer(r"(?:^|,)\s*DC=([^,]+)", dn, re.IGNORECASE)]


def _dns_from_dn(dn: str | None) -> str | None:
    labels = _dc_labels(dn)
    return ".".join(labels).lower() if labels else None


def entries_to_export(entries: list[DomainEntry], origin: str, *, domain_sid: str | None = None,
                      netbios_name: str | None = None, dns_name: str | None = None,
                      complete: bool | None = None, deleted: Iterable[DomainEntry] = (),
                      warnings: Iterable[str] = ()) -> DomainExport:
    """A DomainExport from parsed entries: the domain SID derived where not given.

    Raises MalformedExport when there is no domain account at all.
    """
    warnings = list(warnings)
    _refuse_shared_sids(entries, origin)
    relative = [e for e in entries if SID.from_string(e.sid).is_domain_relative]
    if domain_sid is None:
        prefixes = Counter(str(SID.from_string(e.sid).prefix) for e in relative)
        if not prefixes:
            raise MalformedExport(f"{origin}: no domain account (objectSid S-1-5-21-...) in the export")
        domain_sid, count = prefixes.most_common(1)[0]
        others = sorted(p for p in prefixes if p != domain_sid)
        if others:
            warnings.append(f"{origin}: {len(relative) - count} account(s) of other domains "
                            f"({', '.join(others)}); the domain is taken to be {domain_sid}")
    # Accounts that are not a domain's (BUILTIN aliases of the DC, S-1-5-32-*) are the
    # DC's own local groups, not the member's: they are left out.
    kept = [e for e in entries if SID.from_string(e.sid).is_domain_relative]
    dropped = len(entries) - len(kept)
    if dropped:
        warnings.append(f"{origin}: {dropped} entr{'y' if dropped == 1 else 'ies'} outside any domain "
                        "(BUILTIN groups of the domain controller) left out")
    if not any(str(SID.from_string(e.sid).prefix) == domain_sid for e in kept):
        raise MalformedExport(f"{origin}: no account of domain {domain_sid} in the export")
    unknown = [e.name for e in kept if e.sid_history is None]
    if unknown:
        warnings.append(f"{origin}: sIDHistory unknown for {len(unknown)} account(s) (the export holds "
                        f"the type name {ADPROPERTYVALUECOLLECTION}, not the values); export it with "
                        "@{n='SIDHistory';e={$_.SIDHistory -join ' '}}")
    if complete is None:
        kinds = {e.kind for e in kept}
        complete = USER in kinds and bool(kinds & {GROUP, ALIAS})
        if not complete:
            warnings.append(f"{origin}: lists {' and '.join(sorted(kinds)) or 'nothing'} only, not users and "
                            "groups: not treated as the domain's complete account list")
    first_dn = next((e.dn for e in kept if e.dn), None)
    if dns_name is None:
        dns_name = _dns_from_dn(first_dn)
    if netbios_name is None:
        netbios_name = netbios_from_dn(first_dn)
    return DomainExport(domain_sid, tuple(kept), origin, netbios_name, dns_name, complete,
                        tuple(deleted), tuple(warnings))


def _refuse_shared_sids(entries: list[DomainEntry], origin: str) -> None:
    """Two accounts with one objectSid: the export cannot say who the SID is, and
    keeping either would be a guess."""
    first_of: dict[str, DomainEntry] = {}
    for entry in entries:
        earlier = first_of.setdefault(entry.sid, entry)
        if earlier is not entry:
            raise MalformedExport(f"{origin}: objectSid {entry.sid} belongs to two accounts: "
                                  f"{_account_label(earlier)} and {_account_label(entry)}")


def _account_label(entry: DomainEntry) -> str:
    where = [f"line {entry.line}"] if entry.line else []
    if entry.dn:
        where.insert(0, entry.dn)
    return f"{entry.name} ({', '.join(where)})" if where else entry.name


def _decode(data: bytes, what: str) -> str:
    """Text from bytes: a byte order mark names the encoding, otherwise UTF-8."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
                          (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            break
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1 if encoding == "utf-8" else None
        where = f"line {line}" if line else f"byte {exc.start}"
        raise MalformedExport(f"{what}: {where}: not {encoding.upper().replace('-SIG', '')} text "
                              "(save it as UTF-8, or UTF-16 with a byte order mark)") from None


def _read_bytes(path: str | Path) -> bytes:
    """The export's bytes: a regular file of at most MAX_EXPORT_BYTES (a FIFO or
    /dev/zero is refused before it is opened, so it cannot block or grow forever)."""
    info = check_input_file(path, "domain export", DirectoryError, devices=False)
    if info.st_size > MAX_EXPORT_BYTES:
        raise DirectoryError(f"domain export {path} holds {info.st_size:,} bytes, more than the "
                             f"{MAX_EXPORT_BYTES:,} an export may hold")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_EXPORT_BYTES + 1)
    except OSError as exc:
        raise DirectoryError(f"cannot read domain export {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_EXPORT_BYTES:
        raise DirectoryError(f"domain export {path} grew past {MAX_EXPORT_BYTES:,} bytes while read")
    return data


def _check_line_length(line: str, number: int, origin: str) -> None:
    if len(line) > MAX_LINE_CHARS:
        raise MalformedExport(f"{origin}: line {number}: {len(line):,} characters, more than the "
                              f"{MAX_LINE_CHARS:,} a line of an export may hold")


def _parse_sid(value: bytes | str, what: str) -> str:
    """A SID in binary or S-1-... form, as text."""
    try:
        if isinstance(value, str):
            return str(SID.from_string(value))
        text = value.strip()
        if text[:2] in (b"S-", b"s-") and text[2:3].isdigit():
            return str(SID.from_string(text.decode("ascii")))
        sid = SID.from_bytes(value)
        if sid.byte_length != len(value):
            raise MalformedSID(f"{len(value) - sid.byte_length} bytes after the SID")
        return str(sid)
    except (MalformedSID, UnicodeDecodeError) as exc:
        raise MalformedExport(f"{what}: not a SID ({exc})") from None


# --- LDIF ----------------------------------------------------------------------------

_LDIF_LINE = re.compile(r"([A-Za-z0-9][A-Za-z0-9;.\-]*)\s*(::|:<|:)\s*(.*)", re.DOTALL)


def read_ldif(path_or_text: str | Path | bytes) -> DomainExport:
    """The accounts of an LDIF export (a path, the file's bytes, or its text).

    A ``str`` is taken as LDIF text when it has a line break or starts like LDIF
    (``dn:``, ``version:``, ``#``), as a path otherwise.
    """
    if isinstance(path_or_text, bytes):
        origin, text = "LDIF", _decode(path_or_text, "LDIF")
    elif isinstance(path_or_text, str) and ("\n" in path_or_text or not path_or_text.strip() or
                                            re.match(r"\s*(dn|version)\s*:|#", path_or_text, re.I)):
        origin, text = "LDIF", path_or_text
    else:
        origin = f"LDIF {Path(path_or_text).name}"
        text = _decode(_read_bytes(path_or_text), origin)
    if text.startswith("\ufeff"):
        text = text[1:]
    entries: list[DomainEntry] = []
    deleted: list[DomainEntry] = []
    domain_sids: list[str] = []
    netbios: dict[str, str] = {}  # nCName (casefolded) -> nETBIOSName, from crossRef records
    for start, record in _ldif_records(text, origin):
        found = _ldif_account(start, record, origin)
        if found is None:
            continue
        tag, value = found
        if tag == "entry":
            entries.append(value)
        elif tag == "deleted":
            deleted.append(value)
        elif tag == "domain":
            domain_sids.append(value)
        elif tag == "crossref":
            netbios[value[0].casefold()] = value[1]
    if not entries:
        raise MalformedExport(f"{origin}: no user, group or computer with an objectSid")
    domain_sid = domain_sids[0] if len(set(domain_sids)) == 1 else None
    first_dn = next((e.dn for e in entries if e.dn), None)
    name = None
    if first_dn:
        for nc, nb in netbios.items():
            if first_dn.casefold().endswith(nc):
                name = nb
    return entries_to_export(entries, origin, domain_sid=domain_sid, netbios_name=name, deleted=deleted)


def _ldif_records(text: str, origin: str):
    """(line number, [[line number, None, None, line]]) per record, folded lines joined."""
    record: list[list] = []
    start = 0
    in_comment = False
    # Lines end in LF or CRLF; str.splitlines would also split at characters such as U+2028.
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        _check_line_length(line, number, origin)
        if not line.strip():  # a blank (or blank-looking) line ends the record
            if record:
                yield start, record
            record, in_comment = [], False
            continue
        if line[0] in " \t":
            # RFC 2849: a line starting with one space (ldifde: or a tab) continues the previous one.
            if in_comment:
                continue
            if not record:
                raise MalformedExport(f"{origin}: line {number}: a continuation line with nothing to continue")
            record[-1][3] += line[1:]
            _check_line_length(record[-1][3], record[-1][0], origin)
            continue
        in_comment = line.startswith("#")
        if in_comment:
            continue
        if not record:
            start = number
        record.append([number, None, None, line])
    if record:
        yield start, record


def _ldif_account(start: int, record: list[list], origin: str):
    """What a record is: ("entry", DomainEntry), ("deleted", DomainEntry), ("domain", sid),
    ("crossref", (nCName, nETBIOSName)) or None (anything else)."""
    values: dict[str, list[tuple[int, str, str, str]]] = {}  # folded name -> (line, separator, value, name)
    first = True
    for number, _, _, raw in record:
        if raw.strip() == "-":  # the end of one modification in a change record
            continue
        match = _LDIF_LINE.fullmatch(raw)
        if match is None:
            raise MalformedExport(f"{origin}: line {number}: not 'attribute: value' ({_shorten(raw)})")
        spelled, separator, value = match.groups()
        spelled = spelled.split(";", 1)[0]  # options (;binary, ;range=) do not matter here
        attribute = spelled.casefold()
        if first and attribute == "version":  # version: 1, at the top of the file
            continue
        if first and attribute != "dn":
            raise MalformedExport(f"{origin}: line {number}: a record must start with 'dn:', not '{spelled}:'")
        first = False
        values.setdefault(attribute, []).append((number, separator, value.rstrip() if separator == ":" else value,
                                                 spelled))
    if not values:
        return None
    change = values.get("changetype")
    if change and change[0][2].strip().lower() != "add":
        number, _, kind, _ = change[0]
        raise MalformedExport(f"{origin}: line {number}: changetype {kind.strip()} is a change, not an export "
                              "(ldifde -f writes changetype: add)")

    def text(attribute: str) -> list[str]:
        result = []
        for number, separator, value, spelled in values.get(attribute, []):
            if separator == ":<":
                raise MalformedExport(f"{origin}: line {number}: {spelled} given by URL (:<), not supported")
            if separator == "::":
                try:
                    result.append(base64.b64decode("".join(value.split()), validate=True).decode("utf-8"))
                except (binascii.Error, ValueError):
                    raise MalformedExport(f"{origin}: line {number}: {spelled}:: is not base64 UTF-8 text") from None
            else:
                result.append(value)
        return result

    def sids(attribute: str) -> list[str]:
        result = []
        for number, separator, value, spelled in values.get(attribute, []):
            what = f"{origin}: line {number}: {spelled}"
            if separator == "::":
                try:
                    raw = base64.b64decode("".join(value.split()), validate=True)
                except (binascii.Error, ValueError):
                    raise MalformedExport(f"{what}:: is not base64") from None
                result.append(_parse_sid(raw, what))
            elif separator == ":<":
                raise MalformedExport(f"{what} given by URL (:<), not supported")
            else:
                result.append(_parse_sid(value, what))
        return result

    dn = text("dn")[0]
    classes = text("objectclass")
    folded = {c.casefold() for c in classes}
    if "crossref" in folded:
        nc, nb = text("ncname"), text("netbiosname")
        return ("crossref", (nc[0], nb[0])) if nc and nb else None
    object_sids = sids("objectsid")
    if not object_sids:
        return None
    if len(object_sids) > 1:
        raise MalformedExport(f"{origin}: line {values['objectsid'][1][0]}: a second objectSid for {dn}")
    sid = object_sids[0]
    if folded & {"domaindns", "domain"} and SID.from_string(sid).is_domain:
        return "domain", sid
    group_type = None
    for number, _, value, spelled in values.get("grouptype", []):
        group_type = _int(value, f"{origin}: line {number}: {spelled}")
    kind = kind_of(classes, group_type)
    if kind is None:
        if not classes:
            raise MalformedExport(f"{origin}: line {start}: {dn} has an objectSid but no objectClass")
        return None
    name = (text("samaccountname") or text("cn") or [_rdn_value(dn)])[0]
    if not name:
        raise MalformedExport(f"{origin}: line {start}: {dn} has no sAMAccountName")
    disabled = False
    for number, _, value, spelled in values.get("useraccountcontrol", []):
        disabled = bool(_int(value, f"{origin}: line {number}: {spelled}") & _UF_ACCOUNTDISABLE)
    entry = DomainEntry(sid, name, kind, dn, tuple(sids("sidhistory")), disabled, start)
    if any(v.strip().upper() == "TRUE" for v in text("isdeleted")):
        return "deleted", entry
    return "entry", entry


def _int(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise MalformedExport(f"{what}: not a number ({_shorten(value)})") from None


def _rdn_value(dn: str) -> str:
    first = re.split(r"(?<!\\),", dn, maxsplit=1)[0]
    return first.split("=", 1)[1].strip() if "=" in first else ""


def _shorten(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- CSV -----------------------------------------------------------------------------

_CSV_COLUMNS = {
    "sid": ("sid", "objectsid"),
    "name": ("samaccountname",),
    "history": ("sidhistory",),
    "class": ("objectclass",),
    "enabled": ("enabled",),
    "dn": ("distinguishedname",),
    "cn": ("name", "cn"),
    "group_type": ("grouptype",),
}


def read_csv(path: str | Path) -> DomainExport:
    """The accounts of a CSV export as PowerShell's Export-Csv writes it."""
    origin = f"CSV {Path(path).name}"
    text = _decode(_read_bytes(path), origin)
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = io.StringIO(text, newline="")
    first = lines.readline()
    offset = 0
    type_name = None
    if first.startswith("#"):
        offset = 1
        if first[1:5].upper() == "TYPE":
            type_name = first[5:].strip()
        header_line = lines.readline()
    else:
        header_line = first
    if not header_line.strip():
        raise MalformedExport(f"{origin}: line {offset + 1}: no header row")
    delimiter = max((",", ";", "\t"), key=lambda d: header_line.count(d))
    reader = csv.reader(io.StringIO(header_line + lines.read(), newline=""), delimiter=delimiter, strict=True)
    # The csv module's cell limit is process-wide (131,072 by default): raised while this export is read.
    saved_limit = csv.field_size_limit(MAX_LINE_CHARS)
    try:
        header = [h.strip().casefold() for h in next(reader)]
        columns = {key: next((header.index(n) for n in names if n in header), None)
                   for key, names in _CSV_COLUMNS.items()}
        if columns["sid"] is None:
            raise MalformedExport(f"{origin}: line {offset + 1}: no SID column in the header "
                                  f"({_shorten(header_line)})")
        if columns["name"] is None and columns["cn"] is None:
            raise MalformedExport(f"{origin}: line {offset + 1}: no SamAccountName column in the header")
        entries: list[DomainEntry] = []
        previous = reader.line_num
        for row in reader:
            line = offset + previous + 1  # the row's first line in the file
            previous = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise MalformedExport(f"{origin}: line {line}: {len(row)} fields, the header has {len(header)}")
            entry = _csv_entry(row, columns, type_name, f"{origin}: line {line}", line)
            if entry is not None:
                entries.append(entry)
    except csv.Error as exc:
        raise MalformedExport(f"{origin}: line {offset + reader.line_num}: {exc}") from None
    finally:
        csv.field_size_limit(saved_limit)
    if not entries:
        raise MalformedExport(f"{origin}: no account rows")
    return entries_to_export(entries, origin)


def _csv_entry(row: list[str], columns: dict, type_name: str | None, what: str, line: int) -> DomainEntry | None:
    def cell(key: str) -> str:
        index = columns[key]
        return row[index].strip() if index is not None else ""

    sid_text = cell("sid")
    if not sid_text:
        raise MalformedExport(f"{what}: empty SID")
    sid = _parse_sid(sid_text, f"{what}: SID")
    name = cell("name") or cell("cn")
    if not name:
        raise MalformedExport(f"{what}: empty SamAccountName")
    group_type = None
    if cell("group_type"):
        group_type = _int(cell("group_type"), f"{what}: GroupType")
    classes = cell("class")
    if classes:
        kind = kind_of(re.split(r"[\s;,{}]+", classes), group_type)
        if kind is None:
            return None
    elif type_name and "group" in type_name.casefold():
        kind = GROUP
    elif type_name and "computer" in type_name.casefold():
        kind = COMPUTER
    else:
        kind = USER  # Get-ADUser
    history_text = cell("history")
    history: tuple[str, ...] | None
    if history_text.casefold() == ADPROPERTYVALUECOLLECTION.casefold() or history_text.startswith("System."):
        history = None  # Export-Csv wrote the collection's type name: the values are not in the file
    else:
        history = tuple(_parse_sid(part, f"{what}: SIDHistory")
                        for part in re.split(r"[\s;,{}]+", history_text) if part)
    disabled = cell("enabled").casefold() == "false"
    return DomainEntry(sid, name, kind, cell("dn") or None, history, disabled, line)


# --- the source ----------------------------------------------------------------------

class DomainSource:
    """An AccountSource over a DomainExport.

    ``name`` labels the source in evidence (default: the export's origin).
    ``complete``: True when the export lists every account of the domain that
    exists (a missing RID is then a deleted account); None (the default) takes
    the export's word (:attr:`DomainExport.complete`). ``netbios_name`` overrides
    the domain's NetBIOS name (for DOMAIN\\name), which an LDIF export without the
    crossRef only lets us guess from the DN.
    """

    def __init__(self, export: DomainExport, name: str | None = None, complete: bool | None = None, *,
                 netbios_name: str | None = None):
        self.export = export
        self.name = name or export.origin
        self.complete = export.complete if complete is None else bool(complete)
        self.netbios_name = netbios_name or export.netbios_name
        self._accounts: dict[str, Account] = {}
        for entry in export.entries:
            prefix = str(SID.from_string(entry.sid).prefix)
            extra = {"dn": entry.dn} if entry.dn else {}
            if entry.sid_history is None:
                extra["sid_history_unknown"] = True
            self._accounts.setdefault(entry.sid, Account(
                sid=entry.sid, name=entry.name, kind=entry.kind, source=self.name,
                domain=self.netbios_name if prefix == export.domain_sid else None,
                sid_history=entry.sid_history or (), disabled=entry.disabled, extra=extra))

    @property
    def domain_sid(self) -> str:
        return self.export.domain_sid

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.export.warnings

    def authorities(self) -> list[Authority]:
        return [Authority(self.export.domain_sid, self.netbios_name, DOMAIN, self.complete, self.name)]

    def lookup(self, sid: str) -> Account | None:
        return self._accounts.get(sid)

    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, domain={self.netbios_name} {self.domain_sid}, "
                f"{len(self._accounts)} accounts, complete={self.complete})")
