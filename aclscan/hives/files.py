"""Read a hive file and its transaction logs from disk, once, at the edge.

The hive parser (:mod:`aclscan.hives.registry`) takes bytes; this is where a path
given on the command line becomes bytes: the hive itself and ``NAME.LOG1``,
``NAME.LOG2`` and ``NAME.LOG`` beside it, in any letter case (hives copied off an NTFS
volume keep whatever case Windows gave them). Files are opened read-only; nothing is
written beside the evidence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aclscan.errors import HiveError
from aclscan.hives.recovery import is_dirty

__all__ = ["LOG_SUFFIXES", "HiveFiles", "read_hive_files"]

# In the order Windows uses them: the new format's two logs, then the old format's one.
LOG_SUFFIXES = (".LOG1", ".LOG2", ".LOG")


@dataclass(frozen=True)
class HiveFiles:
    """A hive's bytes, what to call it in messages, its transaction logs as
    (file name, bytes) in :data:`LOG_SUFFIXES` order, and what could not be read."""

    data: bytes
    label: str
    logs: tuple[tuple[str, bytes], ...] = ()
    problems: tuple[str, ...] = ()


def _read(path: Path) -> bytes:
    with open(path, "rb") as handle:  # read-only: never written
        return handle.read()


def read_hive_files(path: str | os.PathLike) -> HiveFiles:
    """The hive at ``path`` and, when it is dirty, the logs beside it (a clean hive
    needs none). :class:`HiveError` when the hive itself cannot be read; a log that
    cannot be read is one of ``problems``."""
    path = Path(path)
    try:
        data = _read(path)
    except IsADirectoryError:
        raise HiveError(f"{path}: a directory, not a registry hive") from None
    except OSError as exc:
        raise HiveError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not is_dirty(data):
        return HiveFiles(data, str(path))
    try:
        beside = {entry.name.upper(): entry for entry in path.parent.iterdir()}
    except OSError:
        beside = {}
    logs, problems = [], []
    for suffix in LOG_SUFFIXES:
        log = beside.get((path.name + suffix).upper())
        if log is None or not log.is_file():
            continue
        try:
            logs.append((log.name, _read(log)))
        except OSError as exc:
            problems.append(f"{log.name}: cannot read: {exc.strerror or exc}")
    return HiveFiles(data, str(path), tuple(logs), tuple(problems))
