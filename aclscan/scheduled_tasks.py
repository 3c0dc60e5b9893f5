"""Scheduled task files (``Windows/System32/Tasks/...``): who a task runs as, and its descriptor.

The Task Scheduler keeps every task as an XML file of the Task Scheduler schema
(namespace ``http://schemas.microsoft.com/windows/2004/02/mit/task``), written in
UTF-16 LE with a byte order mark; tasks imported by hand may be UTF-8 with an XML
declaration. The file's path below ``Tasks`` is the task's path: the file
``Windows/System32/Tasks/AVScan/Update`` is the task ``\\AVScan\\Update``.

What is read::

    Task/Principals/Principal/UserId    the account it runs as: a SID (S-1-5-18) or a
                                        name (AVHOST\\AVService) the scan resolves
    Task/Principals/Principal/GroupId   a group whose members may run it
    Task/RegistrationInfo/SecurityDescriptor   the task's own descriptor, in SDDL

Each becomes a :class:`~aclscan.places.Place` of kind ``task``, hive ``task file``,
``location`` ``"<file path>|<element path>"`` (``Principals/Principal[Author]/UserId``,
the Principal's id in brackets; ``RegistrationInfo/SecurityDescriptor``). A file that
cannot be read as a task (neither UTF-16 LE with a BOM nor UTF-8 with a declaration,
not well-formed XML, a DOCTYPE or entity declaration, SDDL that does not parse) gives
a :class:`~aclscan.places.PlaceProblem`, never an exception. Task files never carry a
DOCTYPE, so any is refused before an entity could be expanded; expat never fetches
external entities.
"""

from __future__ import annotations

import codecs
import re
from xml.parsers import expat

from aclscan.errors import MalformedData
from aclscan.hives.registry import printable
from aclscan.places import TASK, Place, PlaceProblem
from aclscan.sd.sddl import from_sddl
from aclscan.sd.sid import SID

__all__ = ["TASKS_DIR", "TASK_FILE", "TASK_NAMESPACE", "task_file_places", "task_path"]

TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
TASKS_DIR = "Windows/System32/Tasks"
TASK_FILE = "task file"  # Place.hive of every place read from a task file

ROLE_USER = "principal"
ROLE_GROUP = "principal group"

_DECLARATION = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_SEPARATOR = "}"


class _Refused(Exception):
    """Raised from an expat handler: the document declares what a task file never does."""


def task_path(file_path: str) -> str:
    """The task path of a file under ``Windows/System32/Tasks`` (``\\AVScan\\Update``);
    any other path is given back with backslashes."""
    parts = [p for p in file_path.replace("\\", "/").split("/") if p]
    lowered = [p.casefold() for p in parts]
    tasks = [p.casefold() for p in TASKS_DIR.split("/")]
    for start in range(len(parts) - len(tasks) + 1):
        if lowered[start : start + len(tasks)] == tasks:
            parts = parts[start + len(tasks) :]
            break
    return "\\" + "\\".join(parts)


def _text(data: bytes) -> str:
    """The document as text: UTF-16 LE with a BOM, or UTF-8 (BOM optional) with an XML
    declaration naming UTF-8; MalformedData otherwise."""
    if data.startswith(codecs.BOM_UTF16_LE):
        try:
            return data[2:].decode("utf-16-le")
        except UnicodeDecodeError as exc:
            raise MalformedData(f"not UTF-16 LE text: {exc.reason} at byte {exc.start + 2}") from None
    body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    declared = _DECLARATION.match(body)
    if declared is None:
        head = data[:8].hex() or "nothing"
        raise MalformedData(f"neither UTF-16 LE with a byte order mark nor UTF-8 with an XML declaration "
                            f"(starts with {head})")
    if declared.group(1).decode().lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise MalformedData(f"declared encoding {declared.group(1).decode()!r} without a UTF-16 byte order mark")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedData(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


class _Collector:
    """Collects the text of the elements read, with each Principal's id."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.principal_id = ""
        self.found: list[tuple[str, str, str]] = []  # (element path, principal id, text)
        self.text: list[str] = []

    def start(self, name: str, attributes: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(_SEPARATOR)
        self.stack.append(local if namespace == TASK_NAMESPACE else name)
        if self.stack[-2:] == ["Principals", "Principal"]:
            self.principal_id = attributes.get("id", "")
        self.text = []

    def end(self, _name: str) -> None:
        path = "/".join(self.stack[1:]) if self.stack[:1] == ["Task"] else None
        if path in ("Principals/Principal/UserId", "Principals/Principal/GroupId",
                    "RegistrationInfo/SecurityDescriptor"):
            self.found.append((path, self.principal_id, "".join(self.text).strip()))
        self.stack.pop()
        self.text = []

    def data(self, text: str) -> None:
        self.text.append(text)


def _refuse(what: str):
    def handler(*_args):
        raise _Refused(f"{what}: task files never carry one, so the file is not read")

    return handler


def _parse(text: str) -> list[tuple[str, str, str]]:
    collector = _Collector()
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=_SEPARATOR)
    parser.StartDoctypeDeclHandler = _refuse("a DOCTYPE")
    parser.EntityDeclHandler = _refuse("an entity declaration")
    parser.ExternalEntityRefHandler = _refuse("an external entity")
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.data
    try:
        parser.Parse(text.encode("utf-8"), True)
    except expat.ExpatError as exc:
        raise MalformedData(f"not well-formed XML: {expat.errors.messages[exc.code]} "
                            f"(line {exc.lineno}, column {exc.offset})") from None
    except _Refused as exc:
        raise MalformedData(str(exc)) from None
    return collector.found


def task_file_places(data: bytes, file_path: str) -> tuple[list[Place], list[PlaceProblem]]:
    """The places of one task file: its bytes and its path on the volume
    (``Windows/System32/Tasks/AVScan/Update``)."""
    human = f"task {task_path(file_path)}"
    try:
        found = _parse(_text(bytes(data)))
    except MalformedData as exc:
        return [], [PlaceProblem(TASK, printable(file_path), printable(str(exc)))]
    places: list[Place] = []
    problems: list[PlaceProblem] = []
    for element, principal, text in found:
        where = element.replace("Principal/", f"Principal[{principal}]/") if principal else element
        location = f"{file_path}|{where}"
        if not text:
            continue
        if element == "RegistrationInfo/SecurityDescriptor":
            try:
                descriptor = from_sddl(text).to_bytes()
            except MalformedData as exc:
                problems.append(PlaceProblem(TASK, printable(location), printable(f"SDDL that does not parse: {exc}")))
                continue
            places.append(Place(TASK, human, TASK_FILE, location, descriptor))
            continue
        role = ROLE_USER if element.endswith("UserId") else ROLE_GROUP
        sid = account = None
        if text.upper().startswith("S-1-"):
            try:
                sid = str(SID.from_string(text))
            except MalformedData as exc:
                problems.append(PlaceProblem(TASK, printable(location), printable(f"a SID that does not parse: {exc}")))
                continue
        else:
            account = text
        places.append(Place(TASK, human, TASK_FILE, location, sid=sid, account=account, role=role))
    return places, problems
