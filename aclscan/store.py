"""The scan database: one SQLite file per scan, the result document every later
command reads. Its schema is a documented contract (README, "The database") and
is versioned: ``PRAGMA user_version`` holds the schema version, and
:func:`open_database` migrates an older database forward before use.

Tables are created through sqlite-utils. The per-file rows (a volume can hold
millions) are written with plain ``executemany`` over tuples inside one
transaction, with indexes built afterwards: that is several times faster than
building a dict per row.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Callable, Iterable, Sequence

import sqlite_utils

from aclscan.errors import DatabaseError

SCHEMA_VERSION = 1
APPLICATION_ID = 0x41434C53  # "ACLS": marks the file as an aclscan database

TABLES: dict[str, dict] = {
    "volumes": {
        "columns": {
            "id": int,
            "image": str,
            "image_kind": str,
            "partition": int,
            "offset": int,
            "ntfs_version": str,
            "serial": str,
            "label": str,
            "cluster_size": int,
            "record_size": int,
            "mft_records": int,
            "records_in_use": int,
            "files": int,
            "sds_entries": int,
            "scanned_at": str,
            "aclscan_version": str,
            "duration_seconds": float,
        },
        "pk": "id",
    },
    "files": {
        "columns": {
            "volume_id": int,
            "entry": int,
            "sequence": int,
            "path": str,
            "name": str,
            "parent_entry": int,
            "is_dir": int,
            "links": int,
            "security_id": int,
            "descriptor_key": int,
        },
        "pk": ("volume_id", "entry"),
    },
    "links": {
        "columns": {"volume_id": int, "entry": int, "parent_entry": int, "name": str, "path": str, "namespace": int},
        "pk": None,
    },
    "descriptors": {
        "columns": {
            "key": int,
            "volume_id": int,
            "security_id": int,
            "source": str,
            "sddl": str,
            "raw": bytes,
            "owner": str,
            "group": str,
            "control": int,
            "files": int,
            "hash_ok": int,
            "error": str,
        },
        "pk": "key",
    },
    "aces": {
        "columns": {
            "descriptor_key": int,
            "acl": str,
            "position": int,
            "type": str,
            "type_code": int,
            "flags": int,
            "mask": int,
            "sid": str,
            "inherited": int,
            "object_type": str,
            "inherited_object_type": str,
            "sddl": str,
        },
        "pk": ("descriptor_key", "acl", "position"),
    },
    "sids": {
        "columns": {
            "volume_id": int,
            "sid": str,
            "descriptors": int,
            "files": int,
            "as_owner": int,
            "as_group": int,
            "in_dacl": int,
            "in_sacl": int,
        },
        "pk": ("volume_id", "sid"),
    },
    "scan_errors": {
        "columns": {
            "id": int,
            "volume_id": int,
            "kind": str,
            "entry": int,
            "security_id": int,
            "reason": str,
        },
        "pk": "id",
    },
}

INDEXES: list[tuple[str, tuple[str, ...]]] = [
    ("files", ("descriptor_key",)),
    ("files", ("path",)),
    ("files", ("volume_id", "parent_entry")),
    ("links", ("volume_id", "entry")),
    ("aces", ("sid",)),
    ("descriptors", ("volume_id", "security_id")),
    ("descriptors", ("owner",)),
    ("sids", ("sid",)),
]

# Migrations: version N -> N+1, each a function of the open database.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {}


def create_schema(db: sqlite_utils.Database) -> None:
    for name, spec in TABLES.items():
        db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def create_indexes(db: sqlite_utils.Database) -> None:
    for table, columns in INDEXES:
        db[table].create_index(columns, if_not_exists=True)


def new_database(path: str | os.PathLike) -> sqlite_utils.Database:
    """A fresh scan database at ``path`` (an existing file there is replaced)."""
    target = Path(path)
    for suffix in ("", "-journal", "-wal", "-shm"):
        candidate = Path(str(target) + suffix)
        if candidate.exists():
            candidate.unlink()
    try:
        conn = sqlite3.connect(target)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot create database {target}: {exc}") from None
    db = sqlite_utils.Database(conn)
    create_schema(db)
    return db


def open_database(path: str | os.PathLike, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open an existing scan database, checking it is aclscan's and migrating it."""
    target = Path(path)
    if not target.is_file():
        raise DatabaseError(f"no scan database at {target}")
    try:
        conn = sqlite3.connect(target)
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{target} is not an SQLite database: {exc}") from None
    if application_id != APPLICATION_ID:
        raise DatabaseError(f"{target} is not an aclscan scan database")
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{target} has schema version {version}; this aclscan reads up to {SCHEMA_VERSION}: upgrade aclscan"
        )
    db = sqlite_utils.Database(conn)
    if migrate:
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](db)
            version += 1
            db.execute(f"PRAGMA user_version = {version}")
    return db


def bulk_insert(db: sqlite_utils.Database, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert many tuples fast (callers hold the transaction)."""
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    db.conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)


def fast_load_pragmas(db: sqlite_utils.Database) -> None:
    """While a new database is loaded: no journal, no fsync (a crash just means re-scan)."""
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -131072")
