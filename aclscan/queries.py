"""Read-side queries over a scan database, shared by every listing command (and
usable from Python: the CLI only renders what these yield)."""

from __future__ import annotations

from typing import Iterator

import sqlite_utils

FILE_COLUMNS = ("volume_id", "entry", "sequence", "path", "is_dir", "links", "security_id", "descriptor_key", "sddl")
DESCRIPTOR_COLUMNS = ("key", "volume_id", "security_id", "source", "files", "owner", "group", "control", "sddl", "error")
PLACE_COLUMNS = ("kind", "path", "hive", "location", "sid", "account", "descriptor_key", "sddl")


def normalise_path_prefix(prefix: str) -> str:
    """'Users\\Ken\\' or 'Users/Ken' -> '/Users/Ken' (paths are stored with '/')."""
    text = prefix.replace("\\", "/").rstrip("/")
    if len(text) >= 2 and text[1] == ":":  # a drive letter names the volume root
        text = text[2:]
    return "/" + text.lstrip("/") if text else "/"


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _path_clause(prefix: str | None, alias: str = "f") -> tuple[str, list]:
    """Files at or under a path. Paths are stored per directory, so this looks the
    directories up (indexed) and takes the files whose parent is one of them."""
    if not prefix:
        return "", []
    norm = normalise_path_prefix(prefix)
    if norm == "/":
        return "", []
    parent, _, name = norm.rpartition("/")
    under = (
        f"(({alias}.volume_id, {alias}.parent_entry, {alias}.parent_sequence) IN"
        " (SELECT volume_id, entry, sequence FROM directories WHERE path = ? OR path GLOB ?))"
    )
    itself = (
        f"(({alias}.volume_id, {alias}.parent_entry, {alias}.parent_sequence) IN"
        f" (SELECT volume_id, entry, sequence FROM directories WHERE path = ?) AND {alias}.name = ?)"
    )
    return f"({under} OR {itself})", [norm, _glob_escape(norm) + "/*", parent or "/", name]


def descriptors_with_sid_clause(sid: str | None, column: str) -> tuple[str, list]:
    """``column`` (a descriptor key) names a descriptor that carries ``sid`` as owner, group or in an ACE."""
    if not sid:
        return "", []
    return (
        f"{column} IN (SELECT key FROM descriptors WHERE owner = ? OR \"group\" = ?"
        " UNION SELECT descriptor_key FROM aces WHERE sid = ?)",
        [sid, sid, sid],
    )


def _where(*clauses: tuple[str, list]) -> tuple[str, list]:
    parts = [c for c, _ in clauses if c]
    params = [p for _, ps in clauses for p in ps]
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def iter_files(
    db: sqlite_utils.Database,
    *,
    path_prefix: str | None = None,
    sid: str | None = None,
    descriptor_key: int | None = None,
    dirs_only: bool | None = None,
    limit: int | None = None,
) -> Iterator[dict]:
    where, params = _where(
        _path_clause(path_prefix, "f"),
        descriptors_with_sid_clause(sid, "f.descriptor_key"),
        ("f.descriptor_key = ?", [descriptor_key]) if descriptor_key is not None else ("", []),
        ("f.is_dir = ?", [int(dirs_only)]) if dirs_only is not None else ("", []),
    )
    sql = (
        "SELECT f.volume_id, f.entry, f.sequence, f.path, f.is_dir, f.links, f.security_id,"
        " f.descriptor_key, d.sddl FROM files f LEFT JOIN descriptors d ON d.key = f.descriptor_key"
        f"{where} ORDER BY f.volume_id, f.path"
    )
    return _dict_rows(db, sql, params, limit)


def iter_descriptors(
    db: sqlite_utils.Database,
    *,
    sid: str | None = None,
    path_prefix: str | None = None,
    limit: int | None = None,
) -> Iterator[dict]:
    path_clause, path_params = _path_clause(path_prefix, "f")
    in_path = (
        (f"key IN (SELECT f.descriptor_key FROM files f WHERE {path_clause})", path_params) if path_clause else ("", [])
    )
    where, params = _where(descriptors_with_sid_clause(sid, "key"), in_path)
    sql = (
        'SELECT key, volume_id, security_id, source, files, owner, "group", control, sddl, error'
        f" FROM descriptors{where} ORDER BY key"
    )
    return _dict_rows(db, sql, params, limit)


def _dict_rows(db: sqlite_utils.Database, sql: str, params: list, limit: int | None) -> Iterator[dict]:
    """Run a query (with an optional LIMIT) and stream its rows as dicts."""
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cursor = db.execute(sql, params)
    names = [c[0] for c in cursor.description]
    for row in cursor:
        yield dict(zip(names, row))


def iter_places(
    db: sqlite_utils.Database,
    *,
    kind: str | None = None,
    sid: str | None = None,
    path_prefix: str | None = None,
    hive: str | None = None,
    limit: int | None = None,
) -> Iterator[dict]:
    """Places other than files (registry keys, services, shares, printers, tasks, DCOM,
    SAM objects, LSA accounts): those naming ``sid`` (through their descriptor, or
    directly as a task's principal), of one ``kind``, under a registry or place path
    (compared case-insensitively, as Windows compares them), of one hive."""
    sid_clause, sid_params = descriptors_with_sid_clause(sid, "p.descriptor_key")
    clauses = [
        (f"(({sid_clause}) OR p.sid = ?)", [*sid_params, sid]) if sid else ("", []),
        ("p.kind = ?", [kind]) if kind else ("", []),
        ("p.hive = ?", [hive]) if hive else ("", []),
    ]
    if path_prefix:
        prefix = path_prefix.rstrip("\\")
        clauses.append(("(p.path = ? COLLATE NOCASE OR p.path LIKE ? ESCAPE '!')",
                        [prefix, _like_escape(prefix) + "\\%"]))
    where, params = _where(*clauses)
    sql = (
        "SELECT p.kind, p.path, p.hive, p.location, p.sid, p.account, p.descriptor_key, d.sddl"
        f" FROM places p LEFT JOIN descriptors d ON d.key = p.descriptor_key{where} ORDER BY p.kind, p.path"
    )
    return _dict_rows(db, sql, params, limit)


def _like_escape(text: str) -> str:
    return "".join(f"!{c}" if c in "%_!" else c for c in text)
