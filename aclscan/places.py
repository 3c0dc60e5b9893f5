"""Places: everywhere other than a file's own descriptor that a SID lives on a volume.

DESIGN.md's "one model for every place a SID lives": a file is one kind of place; a
registry key, a service's own descriptor, a share, a printer, a scheduled task, a DCOM
permission, a SAM object, an LSA account are others. A place has a kind, a human path
(``HKLM\\SOFTWARE\\AVScan``, ``service AVScan``, ``share Finance (D:\\Finance)``), where it
is stored (the hive and key/value, or the task file), and either a self-relative
security descriptor (stored once per distinct descriptor, like ``$SDS`` entries and
``sk`` cells) or a direct SID reference (a task's principal).

Readers of a store (a hive, task XML) produce :class:`Place` objects without I/O; the
scan stores them in the ``places`` table, with descriptors shared through the
``descriptors`` table.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kinds of place. ``file`` places are the file_records table itself, never Place rows.
REGISTRY_KEY = "registry_key"
SERVICE = "service"
SHARE = "share"
PRINTER = "printer"
TASK = "task"
DCOM = "dcom"
SAM_OBJECT = "sam_object"
LSA_ACCOUNT = "lsa_account"

PLACE_KINDS = (REGISTRY_KEY, SERVICE, SHARE, PRINTER, TASK, DCOM, SAM_OBJECT, LSA_ACCOUNT)


@dataclass(frozen=True)
class Place:
    """One place a SID can live, other than a file.

    ``kind``: one of :data:`PLACE_KINDS`.
    ``path``: what a person reads (``HKLM\\SOFTWARE\\AVScan``, ``task \\AVScan\\Update``).
    ``hive``: which store holds it (``SOFTWARE``, ``NTUSER.DAT of S-1-5-21-...-1000``, or
    ``task file``), and ``location`` where inside it (key path and value name, or the
    file's path on the volume), so a writer can find it again.
    ``descriptor``: the self-relative security descriptor bytes, or None.
    ``sid``: a SID the place names directly (a task's principal), or None.
    ``account``: an account *name* the place names directly where the store keeps a name,
    not a SID (a task's ``UserId`` of ``AVHOST\\AVService``); the scan resolves it.
    ``role``: what a direct SID or name is there for (``principal``), "" otherwise.
    """

    kind: str
    path: str
    hive: str
    location: str
    descriptor: bytes | None = None
    sid: str | None = None
    account: str | None = None
    role: str = ""


@dataclass(frozen=True)
class PlaceProblem:
    """Something a place reader could not read: recorded in ``scan_errors``, never fatal."""

    kind: str  # the place kind it was reading
    where: str  # hive and key/value, or the file
    reason: str
