"""Read-side queries over a scan database, shared by every listing command (and
usable from Python: the CLI only renders what these yield)."""

from __future__ import annotations

import itertools
import json
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


def ntfs_upper(text: str | None) -> str | None:
    """Upper case as NTFS compares names on Windows: one character for one (its $UpCase
    table maps characters singly, so 'ß' stays 'ß' where str.upper() would make 'SS')."""
    if text is None:
        return None
    return "".join(u if len(u := c.upper()) == 1 else c for c in text)


def register_functions(db: sqlite_utils.Database) -> None:
    """The SQL functions the path clauses use (``ntfs_upper``), on this connection."""
    db.conn.create_function("ntfs_upper", 1, ntfs_upper, deterministic=True)


def _path_clause(prefix: str | None, alias: str = "f") -> tuple[str, list]:
    """Files at or under a path, case-insensitive as NTFS is on Windows. Paths are stored
    per directory, so this looks the directories up (a few thousand, even on a large
    volume) and takes the files whose parent is one of them. Needs
    :func:`register_functions` on the connection."""
    if not prefix:
        return "", []
    norm = ntfs_upper(normalise_path_prefix(prefix))
    if norm == "/":
        return "", []
    parent, _, name = norm.rpartition("/")
    under = (
        f"(({alias}.volume_id, {alias}.parent_entry, {alias}.parent_sequence) IN"
        " (SELECT volume_id, entry, sequence FROM directories WHERE ntfs_upper(path) = ? OR ntfs_upper(path) GLOB ?))"
    )
    itself = (
        f"(({alias}.volume_id, {alias}.parent_entry, {alias}.parent_sequence) IN"
        f" (SELECT volume_id, entry, sequence FROM directories WHERE ntfs_upper(path) = ?)"
        f" AND ntfs_upper({alias}.name) = ?)"
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
    """Files with their descriptor, folder by folder (folders in path order, each one's
    entries by name), then the files with no folder (``/$OrphanFiles``).

    Streamed: folders come from the path index and each one's entries from the
    parent index, so the first row arrives at once on a volume of millions of files
    and memory stays flat (an ORDER BY over the computed path would sort every file
    before the first row)."""
    register_functions(db)
    filters = (
        descriptors_with_sid_clause(sid, "r.descriptor_key"),
        ("r.descriptor_key = ?", [descriptor_key]) if descriptor_key is not None else ("", []),
        ("r.is_dir = ?", [int(dirs_only)]) if dirs_only is not None else ("", []),
    )
    rows = itertools.chain.from_iterable(_files_of_volume(db, volume, filters, path_prefix)
                                         for volume in _volume_ids(db))
    return itertools.islice(rows, limit) if limit is not None else rows


def _folder_path_clause(prefix: str | None) -> tuple[str, list]:
    """For a walk over folders ``p`` and their entries ``r``: the entries at or under a path
    (case-insensitive). The folder-only condition comes first, so folders outside the path are
    skipped without reading their entries."""
    if not prefix:
        return "", []
    norm = ntfs_upper(normalise_path_prefix(prefix))
    if norm == "/":
        return "", []
    parent = norm.rpartition("/")[0] or "/"
    under = "(ntfs_upper(p.path) = ? OR ntfs_upper(p.path) GLOB ?)"
    return (f"(ntfs_upper(p.path) IN (?, ?) OR ntfs_upper(p.path) GLOB ?) AND ({under} OR ntfs_upper(r.name) = ?)",
            [norm, parent, _glob_escape(norm) + "/*", norm, _glob_escape(norm) + "/*", norm.rpartition("/")[2]])


_FILE_SELECT = (
    "SELECT r.volume_id, r.entry, r.sequence, {path} AS path, r.is_dir, r.links, r.security_id, r.descriptor_key,"
    " d.sddl FROM {source} LEFT JOIN descriptors d ON d.key = r.descriptor_key"
)
# The path as the files view computes it, for a record r under its folder p.
_PATH_IN_FOLDER = "CASE WHEN r.entry = 5 THEN '/' WHEN p.path = '/' THEN '/' || r.name ELSE p.path || '/' || r.name END"
_PATH_WITHOUT_FOLDER = ("CASE WHEN r.name IS NULL THEN '/$OrphanFiles/OrphanFile-' || r.entry"
                        " ELSE '/$OrphanFiles/' || r.name END")
_NO_FOLDER = ("(r.name IS NULL OR NOT EXISTS (SELECT 1 FROM directories p WHERE p.volume_id = r.volume_id"
              " AND p.entry = r.parent_entry AND p.sequence = r.parent_sequence))")


def _volume_ids(db: sqlite_utils.Database) -> list[int]:
    return [row[0] for row in db.execute("SELECT id FROM volumes ORDER BY id")]


def _files_of_volume(db: sqlite_utils.Database, volume_id: int, filters, path_prefix: str | None) -> Iterator[dict]:
    # The path index drives the folders in order (CROSS JOIN keeps them outside); SQLite then
    # sorts only each folder's entries ("TEMP B-TREE FOR RIGHT PART OF ORDER BY").
    indexed = " INDEXED BY idx_directories_path" if _has_index(db, "idx_directories_path") else ""
    where, params = _where(("+p.volume_id = ? AND r.name IS NOT NULL", [volume_id]), _folder_path_clause(path_prefix),
                           *filters)
    in_folders = _FILE_SELECT.format(
        path=_PATH_IN_FOLDER,
        source=f"directories p{indexed} CROSS JOIN file_records r ON r.volume_id = p.volume_id"
               " AND r.parent_entry = p.entry AND r.parent_sequence = p.sequence",
    ) + f"{where} ORDER BY p.path, r.entry != 5, r.name"
    yield from _dict_rows(db, in_folders, params, None)
    where, params = _where((f"r.volume_id = ? AND {_NO_FOLDER}", [volume_id]), _path_clause(path_prefix, "r"), *filters)
    without_folder = _FILE_SELECT.format(path=_PATH_WITHOUT_FOLDER, source="file_records r") + f"{where} ORDER BY 4"
    yield from _dict_rows(db, without_folder, params, None)


def _has_index(db: sqlite_utils.Database, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", [name]).fetchone() is not None


def iter_descriptors(
    db: sqlite_utils.Database,
    *,
    sid: str | None = None,
    path_prefix: str | None = None,
    limit: int | None = None,
) -> Iterator[dict]:
    register_functions(db)
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


ACCOUNT_COLUMNS = ("sid", "name", "domain", "kind", "source", "sid_history", "members", "rights")


def iter_accounts(db: sqlite_utils.Database) -> Iterator[dict]:
    """What each account source of the scan knew, source by source."""
    return _dict_rows(db, f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM accounts ORDER BY source, sid", [], None)


def iter_hive_accounts(hive_files: dict[str, str | None]) -> Iterator[dict]:
    """What hive files (SAM, SECURITY, SYSTEM, SOFTWARE: path or None) know of accounts, as
    rows of :data:`ACCOUNT_COLUMNS`: every source built from them but the well-known
    catalogue. The hives are read before the first row is asked for (a bad hive raises here)."""
    from aclscan.accounts.wellknown import WellKnownSource
    from aclscan.resolve import HiveSet, build_resolution, hives_from_files

    hives = HiveSet.parse(hives_from_files(hive_files), strict=frozenset(k for k, v in hive_files.items() if v))
    sources = [s for s in build_resolution(hives).sources if not isinstance(s, WellKnownSource)]
    return ({"sid": a.sid, "name": a.name, "domain": a.domain, "kind": a.kind, "source": a.source,
             "sid_history": json.dumps(list(a.sid_history)), "members": json.dumps(list(a.members)),
             "rights": json.dumps(list(a.rights))}
            for source in sources for a in source.accounts())
