"""The registry side of an offline fix: the machine's hives (and its scheduled task
files) changed through the hive editor, journaled whole before the first write, and
restored by undo only where they still hold what the fix wrote.

What a plan asks of the registry:

- descriptor changes of places: an ``sk`` cell's descriptor (every key sharing it
  follows), a descriptor kept in a registry value (a service's, a share's, a printer's,
  a task's ``SD``, DCOM's), the ``SecurityDescriptor`` SDDL of a task file;
- hive actions: LSA rights re-pointed (``grant_lsa_rights``) or revoked, alias members
  replaced or removed, ProfileList entries re-pointed;
- a task file's principal naming an old SID directly.

Every new hive is computed in memory from the bytes on the target before anything is
written (a hive that changed since the scan, or is dirty, refuses the whole fix), so a
fix either has every registry change it needs or writes none.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from xml.sax.saxutils import escape as _escape, unescape as _unescape
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aclscan.errors import Error, JournalWriteFailed, TargetMismatch
from aclscan.hives import repoint
from aclscan.hives.editor import EditResult, HiveEditor, edit_hive
from aclscan.place_scan import PLACE_SOURCES
from aclscan.plan import (ADD_SID, DETACH_PROFILE, GRANT_LSA_RIGHTS, REMOVE_ALIAS_MEMBER, REPLACE_ALIAS_MEMBER,
                          REPOINT_PROFILE, REVOKE_LSA_RIGHTS, Plan)
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl, to_sddl
from aclscan.store import has_table

HIVE_OF_ACTION = {GRANT_LSA_RIGHTS: "SECURITY", REVOKE_LSA_RIGHTS: "SECURITY", REPLACE_ALIAS_MEMBER: "SAM",
                  REMOVE_ALIAS_MEMBER: "SAM", REPOINT_PROFILE: "SOFTWARE", DETACH_PROFILE: "SOFTWARE"}

_JOURNAL_TABLE = """
CREATE TABLE IF NOT EXISTS stores (
    seq INTEGER PRIMARY KEY,
    store TEXT NOT NULL,          -- a hive's name, or 'task file'
    path TEXT NOT NULL,           -- on the volume
    original BLOB NOT NULL,
    original_sha256 TEXT NOT NULL,
    replacement_sha256 TEXT NOT NULL,
    written INTEGER NOT NULL DEFAULT 0,
    restored INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass
class StoreEdit:
    """Everything the plan changes in one file on the volume (a hive or a task file)."""

    store: str  # hives.name, or "task file"
    path: str  # on the volume: /Windows/System32/config/SAM
    scan_sha256: str | None  # the file as the scan read it (hives); None for task files
    steps: list[tuple[str, Callable[[bytes], bytes]]] = field(default_factory=list)  # (what, bytes -> bytes)

    def apply(self, data: bytes) -> bytes:
        for _what, step in self.steps:
            data = step(data)
        return data


@dataclass
class StoreWrite:
    """A computed change of one file, ready to journal and write."""

    edit: StoreEdit
    original: bytes
    replacement: bytes


def plan_store_edits(db, plan: Plan, volume_id: int) -> list[StoreEdit]:
    """The hives and task files the plan changes on one volume, each with its edits."""
    edits: dict[str, StoreEdit] = {}
    hives = {name: (origin, sha256, dirty) for name, origin, sha256, dirty in db.execute(
        "SELECT name, origin, sha256, dirty FROM hives")} if has_table(db, "hives") else {}

    def hive_edit(name: str) -> StoreEdit | None:
        if name not in hives:
            return None
        origin, sha256, _dirty = hives[name]
        if not origin.startswith("volume "):
            raise TargetMismatch(f"the {name} hive was read from {origin}, not from the volume: the fix cannot "
                                 "write it (scan the image with its own hives)")
        return edits.setdefault(name, StoreEdit(name, origin[len("volume "):], sha256))

    changes = [c for c in plan.descriptors if c.volume_id == volume_id and c.source in PLACE_SOURCES]
    raws = _descriptor_raws(db, [c.descriptor_key for c in changes])
    key_rewrites: dict[str, dict[bytes, bytes]] = {}
    value_rewrites: dict[str, list[tuple[str, str, bytes, bytes]]] = {}
    task_rewrites: dict[str, list[tuple[str, str, str]]] = {}
    for change in changes:
        old_raw = raws[change.descriptor_key]
        for kind, hive, location in db.execute(
                "SELECT DISTINCT kind, hive, CASE WHEN kind = 'registry_key' THEN NULL ELSE location END FROM places"
                " WHERE descriptor_key = ? AND volume_id = ?", [change.descriptor_key, volume_id]):
            if change.source == "registry":
                key_rewrites.setdefault(hive, {})[old_raw] = change.new_raw
            elif change.source == "value":
                key, _, value = location.rpartition("|")
                value_rewrites.setdefault(hive, []).append((key, value, old_raw, change.new_raw))
            elif change.source == "task":
                file_path, _, element = location.partition("|")
                task_rewrites.setdefault(file_path, []).append(
                    ("SecurityDescriptor", to_sddl(SecurityDescriptor.from_bytes(old_raw)),
                     to_sddl(SecurityDescriptor.from_bytes(change.new_raw))))
    for hive in sorted(set(key_rewrites) | set(value_rewrites)):
        edit = hive_edit(hive)
        if edit is None:
            continue
        edit.steps.append((f"descriptors of {hive}", _descriptor_step(
            key_rewrites.get(hive, {}), value_rewrites.get(hive, []), hive)))
    keep_old = {a.sid for a in plan.actions if a.kind == ADD_SID}
    for action in plan.actions:
        hive = HIVE_OF_ACTION.get(action.kind)
        if hive is None:
            continue
        edit = hive_edit(hive)
        if edit is None:
            raise TargetMismatch(f"plan action {action.id} ({action.kind}) needs the {hive} hive, which the scan "
                                 "did not read from the volume")
        edit.steps.append((f"{action.id} {action.kind}", _action_step(action, action.sid in keep_old, hive)))
    # Task principals that name a re-pointed SID directly.
    targets = {a.sid: a.new_sid for a in plan.actions if a.new_sid and a.kind in ("replace_sid",
                                                                                   "translate_sid_history")}
    if targets and has_table(db, "places"):
        marks = ", ".join("?" for _ in targets)
        for location, sid in db.execute(
                f"SELECT location, sid FROM places WHERE kind = 'task' AND hive = 'task file' AND volume_id = ?"
                f" AND sid IN ({marks})", [volume_id, *targets]):
            file_path, _, element = location.partition("|")
            tag = element.rsplit("/", 1)[-1]  # UserId or GroupId
            task_rewrites.setdefault(file_path, []).append((tag, sid, targets[sid]))
    for file_path, rewrites in sorted(task_rewrites.items()):
        edit = edits.setdefault(f"task {file_path}", StoreEdit("task file", file_path, None))
        edit.steps.append((f"task file {file_path}", _task_step(rewrites, file_path)))
    return list(edits.values())


def _descriptor_raws(db, keys: list[int]) -> dict[int, bytes]:
    return {key: raw for key, raw in db.execute(
        "SELECT key, raw FROM descriptors WHERE key IN (SELECT value FROM json_each(?))", [json.dumps(keys)])}


def _descriptor_step(keys: dict[bytes, bytes], values: list[tuple[str, str, bytes, bytes]], label: str):
    """sk cells whose descriptor is an old one get the new one (the keys sharing a cell go on
    sharing it); a value holding the scanned descriptor gets the new one, and one holding
    anything else has changed since the scan."""
    def step(data: bytes) -> bytes:
        def edit(ed: HiveEditor) -> None:
            if keys:
                ed.rewrite_descriptors(lambda raw: keys.get(raw))
            for key, value, old, new in values:
                kind, current = ed.value(key, value)
                if current == new:
                    continue  # a re-run: already there
                if current != old:
                    raise TargetMismatch(f"{label} {key}\\{value or '(default)'} changed since the scan: refusing")
                ed.set_value(key, value, kind, new)
        return edit_hive(data, edit, label=label).data
    return step


def _action_step(action, keep_old: bool, label: str):
    def step(data: bytes) -> bytes:
        result: EditResult
        if action.kind == GRANT_LSA_RIGHTS:
            result = repoint.repoint_lsa_account(data, action.sid, action.new_sid, keep_old=keep_old, label=label)
        elif action.kind == REVOKE_LSA_RIGHTS:
            result = repoint.remove_lsa_account(data, action.sid, label=label)
        elif action.kind == REPLACE_ALIAS_MEMBER:
            result = repoint.repoint_alias_member(data, action.sid, action.new_sid, keep_old=keep_old, label=label)
        elif action.kind == REMOVE_ALIAS_MEMBER:
            result = repoint.remove_alias_member(data, action.sid, label=label)
        elif action.kind == DETACH_PROFILE:
            result = repoint.detach_profile(data, action.sid, label=label)
        else:
            result = repoint.repoint_profile(data, action.sid, action.new_sid, label=label)
        return result.data
    return step


def _task_step(rewrites: list[tuple[str, str, str]], file_path: str):
    """A task file's text (UTF-16 with its BOM, as Windows writes it, or UTF-8) with each
    element's old text replaced by the new; the file's encoding and everything else kept."""
    def step(data: bytes) -> bytes:
        if data.startswith(b"\xff\xfe"):
            text, encode = data[2:].decode("utf-16-le"), (lambda t: b"\xff\xfe" + t.encode("utf-16-le"))
        else:
            text, encode = data.decode("utf-8"), (lambda t: t.encode("utf-8"))
        for tag, old, new in rewrites:
            pattern = re.compile(rf"(<{tag}>)\s*([^<]*?)\s*(</{tag}>)")
            replaced = False

            def swap(match: re.Match) -> str:
                nonlocal replaced
                current = _unescape(match.group(2))
                if _same(tag, current, old) or _same(tag, current, new):
                    replaced = True
                    return f"{match.group(1)}{_escape(new)}{match.group(3)}"
                return match.group(0)
            text = pattern.sub(swap, text)
            if not replaced:
                raise TargetMismatch(f"task file {file_path}: its {tag} changed since the scan: refusing")
        return encode(text)
    return step


def _same(tag: str, current: str, expected: str) -> bool:
    if tag == "SecurityDescriptor":
        try:
            return from_sddl(current).to_bytes() == from_sddl(expected).to_bytes()
        except Error:
            return False
    return current.strip().upper() == expected.upper()


# --------------------------------------------------------------- computing, writing


def compute_writes(edits: list[StoreEdit], read: Callable[[str], bytes]) -> list[StoreWrite]:
    """Every file's new bytes, from what ``read(path)`` gives now; refuses (TargetMismatch)
    a hive changed since the scan, a dirty hive, an edit that cannot be made: before
    anything is written."""
    writes = []
    for edit in edits:
        original = read(edit.path)
        if edit.scan_sha256 and hashlib.sha256(original).hexdigest() != edit.scan_sha256:
            raise TargetMismatch(f"{edit.store} ({edit.path}) changed since the scan: scan again, plan again")
        try:
            replacement = edit.apply(original)
        except TargetMismatch:
            raise
        except Error as exc:
            raise TargetMismatch(f"{edit.store} ({edit.path}) cannot be changed: {exc}") from None
        if replacement != original:
            writes.append(StoreWrite(edit, original, replacement))
    return writes


def journal_and_write(conn: sqlite3.Connection, writes: list[StoreWrite], mount_point: Path,
                      on_written: Callable[[StoreWrite], None] | None = None) -> None:
    """Each file's original goes into the journal (committed, synchronous=FULL) before the
    file is replaced on the mounted volume (written, truncated, fsynced)."""
    try:
        conn.execute(_JOURNAL_TABLE)
    except sqlite3.Error as exc:
        raise JournalWriteFailed(f"the journal cannot be written ({exc})") from None
    for write in writes:
        try:
            with conn:
                cursor = conn.execute(
                    "INSERT INTO stores (store, path, original, original_sha256, replacement_sha256) VALUES (?, ?, ?,"
                    " ?, ?)", (write.edit.store, write.edit.path, write.original,
                               hashlib.sha256(write.original).hexdigest(),
                               hashlib.sha256(write.replacement).hexdigest()))
            seq = cursor.lastrowid
        except sqlite3.Error as exc:
            raise JournalWriteFailed(f"the journal cannot be written ({exc})") from None
        _replace_file(mounted_path(mount_point, write.edit.path), write.replacement)
        with conn:
            conn.execute("UPDATE stores SET written = 1 WHERE seq = ?", (seq,))
        if on_written:
            on_written(write)


def mounted_path(mount_point: Path, path: str) -> Path:
    return Path(mount_point) / path.lstrip("/")


def _replace_file(path: Path, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate(len(data))
        handle.flush()
        os.fsync(handle.fileno())


@dataclass
class StoreUndo:
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed_since_fix: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def has_stores(conn: sqlite3.Connection) -> bool:
    """Whether a journal holds hive or task files the fix wrote (or began to write)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'stores'").fetchone() is not None and \
        conn.execute("SELECT 1 FROM stores LIMIT 1").fetchone() is not None


def undo_writes(conn: sqlite3.Connection, mount_point: Path, *, force: bool = False) -> StoreUndo:
    """Write back every journaled file (newest first) that still holds exactly what the fix
    wrote, and read it back; one changed since the fix is left alone and listed unless
    ``force``."""
    outcome = StoreUndo()
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'stores'").fetchone() is None:
        return outcome  # a journal of a fix that wrote no hive
    rows = conn.execute("SELECT seq, store, path, original, original_sha256, replacement_sha256, written FROM stores"
                        " ORDER BY seq DESC").fetchall()
    for seq, store, path, original, original_sha256, replacement_sha256, written in rows:
        where = mounted_path(mount_point, path)
        try:
            current = hashlib.sha256(where.read_bytes()).hexdigest()
            if current == original_sha256:
                outcome.unchanged.append(path)
                continue
            # A file the fix never marked written may hold a write the fix was killed in the
            # middle of: it is the fix's own doing, restored; one it finished writing and that
            # no longer holds what it wrote was changed since by someone else.
            if written and current != replacement_sha256 and not force:
                outcome.changed_since_fix.append(f"{store} {path}")
                continue
            _replace_file(where, original)
            if hashlib.sha256(where.read_bytes()).hexdigest() != original_sha256:
                outcome.errors.append(f"{path}: read back differs from the original")
                continue
        except OSError as exc:
            outcome.errors.append(f"{path}: {exc.strerror or exc}")
            continue
        outcome.restored.append(path)
        try:
            with conn:
                conn.execute("UPDATE stores SET restored = 1 WHERE seq = ?", (seq,))
        except sqlite3.Error:
            pass  # a full disk: the file is restored all the same (read back above)
    return outcome
