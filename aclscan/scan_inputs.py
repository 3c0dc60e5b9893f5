"""What a scan resolved its SIDs against, kept in its own database.

The scan that follows a fix (``JOURNAL.after.db``) must judge SIDs the way the
original scan did, or a database without verdicts looks clean. So every resolving
scan notes its inputs in the ``notes`` table (kind ``resolve_inputs``, the text a
JSON object): the hive files it was given, its domain exports and history files,
as absolute paths, and the names of sources that cannot be opened again without
the user (a live directory needs its password). The volume's own hives are not
noted: a later scan reads them again from the volume, as it is then.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

NOTE_KIND = "resolve_inputs"


@dataclass(frozen=True)
class Recalled:
    inputs: object | None  # a scan.ResolveInputs, or None: the scan did not resolve
    notes: tuple[str, ...]  # what could not be reused, and why


def record(db, inputs) -> None:
    """Note ``inputs`` (a scan.ResolveInputs) in the scan database ``db``."""
    from_files = {_source_name(p) for p in inputs.domain_files}
    text = json.dumps({
        "hive_files": {name: os.path.abspath(path) for name, path in inputs.hive_files.items()},
        "domain_files": [os.path.abspath(p) for p in inputs.domain_files],
        "history": [os.path.abspath(p) for p in inputs.history],
        "image_history": inputs.image_history,
        "not_reusable": [getattr(s, "name", type(s).__name__) for s in inputs.domain_sources
                         if getattr(s, "name", None) not in from_files],
    }, sort_keys=True)
    db.execute("DELETE FROM notes WHERE kind = ?", [NOTE_KIND])
    db.execute("INSERT INTO notes (kind, text) VALUES (?, ?)", [NOTE_KIND, text])


def domain_sources(paths) -> list:
    """An account source per domain export file (LDIF, or CSV by its name)."""
    from aclscan.accounts.domain import DomainSource, read_csv, read_ldif

    sources = []
    for path in paths:
        export = read_csv(path) if path.lower().endswith(".csv") else read_ldif(path)
        sources.append(DomainSource(export, name=_source_name(path)))
    return sources


def _source_name(path: str) -> str:
    return f"domain export {path}"


def recall(db) -> Recalled:
    """The inputs a scan database's scan resolved against, ready for another scan. A
    database that has verdicts but no note (an older aclscan) gets the volume's own
    hives and the well-known catalogue, and says so."""
    from aclscan.scan import ResolveInputs

    row = db.execute("SELECT text FROM notes WHERE kind = ? LIMIT 1", [NOTE_KIND]).fetchone()
    if row is None:
        if db.execute("SELECT 1 FROM findings LIMIT 1").fetchone() is None:
            return Recalled(None, ())
        return Recalled(ResolveInputs(), ("the scan did not note its account sources (an older aclscan): "
                                          "verdicts from the volume's hives and the well-known catalogue only",))
    noted = json.loads(row[0])
    notes = [f"{name} is not used again (give it to aclscan scan yourself)" for name in noted.get("not_reusable", [])]

    def present(path: str, what: str) -> bool:
        if os.path.isfile(path):
            return True
        notes.append(f"{what} {path} is gone: verdicts without it")
        return False

    hive_files = {name: path for name, path in noted.get("hive_files", {}).items() if present(path, name)}
    history = tuple(p for p in noted.get("history", []) if present(p, "history"))
    domain_files = tuple(p for p in noted.get("domain_files", []) if present(p, "domain export"))
    inputs = ResolveInputs(hive_files, tuple(domain_sources(domain_files)), history, domain_files,
                           bool(noted.get("image_history", True)))
    return Recalled(inputs, tuple(notes))
