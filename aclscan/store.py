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

import datetime as _dt
import os
import sqlite3
from pathlib import Path
from typing import Callable, Iterable, Sequence

import sqlite_utils

from aclscan.errors import DatabaseError

SCHEMA_VERSION = 3
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
            "snapshot": str,  # schema 3: a shadow copy store's GUID; NULL for the live volume
            "snapshot_created": str,  # when that store was made (UTC)
            "parent_disks": str,  # JSON list: a differencing disk's parents, nearest first (linked clones)
        },
        "pk": "id",
    },
    # One row per file; (volume_id, entry) is unique. Paths live once per directory
    # (see the files view): a volume has millions of files but few directories.
    "file_records": {
        "columns": {
            "volume_id": int,
            "entry": int,
            "sequence": int,
            "parent_entry": int,
            "parent_sequence": int,
            "name": str,
            "is_dir": int,
            "links": int,
            "security_id": int,
            "descriptor_key": int,
        },
        "pk": None,
    },
    "directories": {
        "columns": {"volume_id": int, "entry": int, "sequence": int, "path": str},
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
    "findings": {
        "columns": {
            "sid": str,
            "verdict": str,
            "confidence": str,
            "account": str,
            "mapped_sid": str,
            "files": int,
            "descriptors": int,
            "explicit_aces": int,
            "inherited_aces": int,
            "as_owner": int,
            "as_group": int,
            "hive_references": int,
            "evidence": str,
            "places": str,  # schema 3: JSON object, place kind -> places naming the SID
        },
        "pk": "sid",
    },
    "accounts": {
        "columns": {"sid": str, "name": str, "domain": str, "kind": str, "source": str, "sid_history": str,
                    "members": str, "rights": str, "disabled": int},
        "pk": None,
    },
    "authorities": {
        "columns": {"sid": str, "name": str, "kind": str, "complete": int, "source": str},
        "pk": None,
    },
    "hive_references": {
        "columns": {"sid": str, "kind": str, "detail": str},
        "pk": None,
    },
    "notes": {
        "columns": {"kind": str, "text": str},
        "pk": None,
    },
    # Schema 2. What the hives say about the machine itself, one row per scan (the
    # row's columns are NULL where the hive that holds them was missing): what
    # `aclscan check` and `aclscan fleet` judge a machine by.
    "machine": {
        "columns": {
            "machine_sid": str,  # SAM's account domain SID
            "computer_name": str,  # SYSTEM ComputerName
            "product_type": str,  # SYSTEM ProductOptions: WinNT, ServerNT, LanmanNT
            "account_domain_sid": str,  # SECURITY PolAcDmS (should equal machine_sid)
            "primary_domain_name": str,  # SECURITY PolPrDmN
            "primary_domain_sid": str,  # SECURITY PolPrDmS (NULL in a workgroup)
            "sysprep_generalization_state": int,  # SYSTEM Setup\\Status\\SysprepStatus
            "sysprep_cleanup_state": int,
            "image_state": str,  # SOFTWARE ...\\Setup\\State ImageState
            "clone_tag": str,  # SYSTEM Setup CloneTag
            "hives_found": str,  # JSON object: hive name -> where it was read from
        },
        "pk": None,
    },
    # Schema 2. The names old SIDs had (history: the master's SAM, an earlier scan,
    # ProfileList entries under another machine prefix), as the classifier used them.
    "previous_names": {
        "columns": {"sid": str, "name": str, "source": str},
        "pk": None,
    },
    # Schema 3. Every registry hive the scan read (machine hives, user hives), with
    # where it came from and what reading it found.
    "hives": {
        "columns": {
            "name": str,  # how places name it: SOFTWARE, NTUSER.DAT of S-1-5-21-...-1000
            "kind": str,  # SAM, SECURITY, SYSTEM, SOFTWARE, DEFAULT, NTUSER, USRCLASS
            "root": str,  # the registry path its keys appear under: HKLM\\SOFTWARE, HKU\\<SID>
            "origin": str,  # volume /Windows/System32/config/SOFTWARE, or a file given
            "profile_sid": str,  # user hives: the profile's SID, where known
            "dirty": int,
            "logs_applied": str,  # JSON list
            "keys": int,
            "problems": str,  # JSON list of one-line problems
            "sha256": str,  # of the hive file as the scan read it (before logs): a fix refuses one changed since
        },
        "pk": "name",
    },
    # Schema 3. Every place other than a file that names SIDs: registry keys (one
    # compact row per key, its descriptor shared like $SDS), services, shares,
    # printers, scheduled tasks, DCOM permissions, SAM objects, LSA accounts.
    "places": {
        "columns": {
            "id": int,
            "volume_id": int,
            "kind": str,
            "path": str,  # human path: HKLM\\SOFTWARE\\AVScan, service AVScan, task \\AVScan\\Update
            "hive": str,  # hives.name, or 'task file'
            "location": str,  # where inside the store: key|value, or the file's path
            "descriptor_key": int,  # descriptors.key, or NULL
            "sid": str,  # a SID named directly (a task's principal), or NULL
            "account": str,  # a name named directly, as stored
            "role": str,
        },
        "pk": "id",
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

# The files view: each file's path from its parent directory's path and its name,
# with the same rules as aclscan.ntfs.names.join_path.
FILES_VIEW = """
CREATE VIEW IF NOT EXISTS files AS
SELECT r.volume_id, r.entry, r.sequence,
       CASE WHEN r.entry = 5 THEN '/'
            WHEN r.name IS NULL THEN '/$OrphanFiles/OrphanFile-' || r.entry
            WHEN d.path IS NULL THEN '/$OrphanFiles/' || r.name
            WHEN d.path = '/' THEN '/' || r.name
            ELSE d.path || '/' || r.name END AS path,
       r.name, r.parent_entry, r.parent_sequence, r.is_dir, r.links, r.security_id, r.descriptor_key
FROM file_records r
LEFT JOIN directories d
  ON d.volume_id = r.volume_id AND d.entry = r.parent_entry AND d.sequence = r.parent_sequence
"""

# Indexes on the small tables are built by the scan; those on file_records (a
# million rows cost seconds to index) by the first command that reads the
# database, or by `aclscan index`.
INDEXES: list[tuple[str, tuple[str, ...], bool]] = [
    ("links", ("volume_id", "entry"), False),
    ("directories", ("path",), False),
    ("aces", ("sid",), False),
    ("descriptors", ("volume_id", "security_id"), False),
    ("descriptors", ("owner",), False),
    ("sids", ("sid",), False),
    ("accounts", ("sid",), False),
    ("hive_references", ("sid",), False),
    ("previous_names", ("sid",), False),
    ("places", ("descriptor_key",), False),
    ("places", ("kind",), False),
    ("places", ("sid",), False),
]
FILE_INDEXES: list[tuple[str, tuple[str, ...], bool]] = [
    ("file_records", ("volume_id", "entry"), True),
    ("file_records", ("volume_id", "parent_entry"), False),
    ("file_records", ("descriptor_key",), False),
]



def _add_machine_facts(db: sqlite_utils.Database) -> None:
    """1 -> 2: the machine and previous_names tables. They stay empty in a migrated
    database (the hives are not at hand): `aclscan check` asks for a re-scan."""
    for name in ("machine", "previous_names"):
        spec = TABLES[name]
        db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True)


def _add_places(db: sqlite_utils.Database) -> None:
    """2 -> 3: the hives and places tables (empty: the image is not at hand; re-scan to
    see registry and other places) and findings.places."""
    for name in ("hives", "places"):
        spec = TABLES[name]
        db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True)
    if "places" not in db["findings"].columns_dict:
        db.execute("ALTER TABLE findings ADD COLUMN places TEXT")
    for column in ("snapshot", "snapshot_created", "parent_disks"):
        if column not in db["volumes"].columns_dict:
            db.execute(f"ALTER TABLE volumes ADD COLUMN {column} TEXT")


# Migrations: version N -> N+1, each a function of the open database.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {1: _add_machine_facts, 2: _add_places}


def create_schema(db: sqlite_utils.Database) -> None:
    # One transaction: each statement on its own would be a commit and a sync of its own.
    with db.conn:
        db.conn.execute("BEGIN")
        for name, spec in TABLES.items():
            db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True)
        db.execute(FILES_VIEW)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def create_indexes(db: sqlite_utils.Database, *, files: bool = False) -> None:
    """The small tables' indexes; with ``files`` also those on file_records."""
    for table, columns, unique in INDEXES + (FILE_INDEXES if files else []):
        db[table].create_index(columns, unique=unique, if_not_exists=True)


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


# The volumes as they are now: what findings count and a plan changes. A shadow copy
# store scanned beside them (``scan --snapshots``) is an earlier state: evidence and
# history, never counted as the machine's files nor rewritten.
LIVE_VOLUMES = "(SELECT id FROM volumes WHERE snapshot IS NULL)"
# descriptors.source of files' descriptors ($Secure, a record's own attribute); the other
# sources (aclscan.place_scan.PLACE_SOURCES) are places' descriptors.
FILE_SOURCES = ("sds", "attribute")


def has_table(db, name: str) -> bool:
    """Whether the database has table ``name`` (a database of an older schema that could not
    be migrated, read-only, may lack one)."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None


def utc_now() -> str:
    """The timestamp every aclscan database and journal records: UTC, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite_file(path: str | os.PathLike) -> bool:
    """True for an SQLite database (by its header, whatever the file is called)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def connect_and_identify(target: Path, **connect_options) -> tuple[sqlite3.Connection, int, int]:
    """Connect to an SQLite file and read what it says it is: (connection,
    application_id, user_version). DatabaseError when it is not SQLite at all.
    Scan databases, fleet databases and fix journals tell themselves apart this way."""
    try:
        conn = sqlite3.connect(target, **connect_options)
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{target} is not an SQLite database: {exc}") from None
    return conn, application_id, version


def open_database(path: str | os.PathLike, *, migrate: bool = True, index: bool = True) -> sqlite_utils.Database:
    """Open an existing scan database, checking it is aclscan's, migrating it and
    (unless ``index`` is false) building the file indexes a fresh scan leaves out."""
    target = Path(path)
    if not target.is_file():
        raise DatabaseError(f"no scan database at {target}")
    conn, application_id, version = connect_and_identify(target)
    if application_id != APPLICATION_ID:
        raise DatabaseError(f"{target} is not an aclscan scan database")
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{target} has schema version {version}; this aclscan reads up to {SCHEMA_VERSION}: upgrade aclscan"
        )
    db = sqlite_utils.Database(conn)
    if migrate:
        try:
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](db)
                version += 1
                db.execute(f"PRAGMA user_version = {version}")
        except sqlite3.OperationalError as exc:
            raise DatabaseError(f"{target} has schema version {version} and cannot be migrated to "
                                f"{SCHEMA_VERSION} ({exc}): copy it somewhere writable") from None
    if index:
        try:
            create_indexes(db, files=True)
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise DatabaseError(f"{target}: {exc}") from None
            # A database on read-only media is still read, just without the indexes.
    return db


def insert_sql(table: str, columns: Sequence[str], rows: int = 1) -> str:
    """INSERT of ``rows`` rows of ``columns`` (one placeholder per value)."""
    names = ", ".join(f'"{c}"' for c in columns)
    row = "(" + ", ".join(["?"] * len(columns)) + ")"
    return f'INSERT INTO "{table}" ({names}) VALUES ' + ", ".join([row] * rows)


def next_rowid(db: sqlite_utils.Database, table: str) -> int:
    """The rowid the next row stored in ``table`` gets (no AUTOINCREMENT: the largest plus one)."""
    return int(db.execute(f'SELECT COALESCE(MAX(rowid), 0) + 1 FROM "{table}"').fetchone()[0])


def bulk_insert(db: sqlite_utils.Database, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert many tuples fast (callers hold the transaction)."""
    width = len(columns)
    values: list = []
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} values for the {width} columns of {table}")
        values.extend(row)
    insert_flat(db.conn, table, columns, values)


# Rows per INSERT of insert_flat: binding a row's values costs little, but each
# statement step from Python costs about a microsecond: a million file rows one
# per statement spend more there than SQLite spends storing them (bench/bench_row_writer.py).
ROWS_PER_STATEMENT = 50


def insert_flat(conn, table: str, columns: Sequence[str], values: list) -> None:
    """Insert rows given as one flat list of values, row after row (None for NULL),
    ROWS_PER_STATEMENT rows per statement. ``conn``: an sqlite3 or APSW connection."""
    width = len(columns)
    if len(values) % width:
        raise ValueError(f"{len(values)} values do not make rows of {width}")
    step = ROWS_PER_STATEMENT * width
    whole = len(values) // step
    if whole:
        conn.executemany(insert_sql(table, columns, ROWS_PER_STATEMENT),
                         (values[i * step : (i + 1) * step] for i in range(whole)))
    rest = values[whole * step :]
    if rest:
        conn.execute(insert_sql(table, columns, len(rest) // width), rest)


class RowWriter:
    """Stores batches of rows from a process of its own while the scan goes on.

    A scan's bulk table (file_records: one row per file) is written by a forked
    child with an APSW connection of its own: the child turns each batch into
    one flat list of values (``batch.flat_values()``: batches travel as compact
    columns, so building and binding a million rows happens on the other core,
    free of the scan's GIL) and stores them with :func:`insert_flat`, many rows
    per statement, faster than the sqlite3 module does. Its transaction commits
    in :meth:`close`; until then the caller's connection must not write (call it
    with no transaction open). A failure in the child is raised by :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, table: str, columns: Sequence[str]):
        import multiprocessing

        context = multiprocessing.get_context("fork")  # the child needs nothing re-imported
        self._pipe, child_end = context.Pipe()
        _widen_socket_buffers(self._pipe, child_end)
        self._process = context.Process(
            target=_row_writer_main,
            args=(os.fspath(path), table, tuple(columns), child_end, self._pipe),
            name="aclscan-row-writer", daemon=True,
        )
        self._process.start()
        child_end.close()
        self._closed = False

    def put(self, batch) -> None:
        """Hand over a batch: anything picklable whose ``flat_values()`` gives its
        rows' values in column order, row after row."""
        try:
            self._pipe.send(batch)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child stopped; close() reports why

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._pipe.send(None)
            status, detail = self._pipe.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            status, detail = "error", "the row writer process ended unexpectedly"
        finally:
            self._process.join()
            self._pipe.close()
        if status != "ok":
            raise DatabaseError(f"cannot store rows: {detail}")


# A batch is about 1.6 MB: with the default 208 KiB socket buffers, every send waits
# for the writer to finish the batch before; a buffer that holds two batches lets the
# scan go on parsing meanwhile.
SOCKET_BUFFER_BYTES = 4 << 20


def _widen_socket_buffers(parent_end, child_end) -> None:
    """Best effort: the kernel caps the size (net.core.wmem_max, rmem_max)."""
    import socket

    for end, option in ((parent_end, socket.SO_SNDBUF), (child_end, socket.SO_RCVBUF)):
        try:
            sock = socket.socket(fileno=end.fileno())
        except OSError:
            continue  # not a socket (a platform whose Pipe is an os.pipe)
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        except OSError:
            pass
        finally:
            sock.detach()


def _row_writer_main(path: str, table: str, columns: tuple[str, ...], pipe, parent_end) -> None:
    """The row writer child: rows from the pipe into SQLite, one transaction."""
    import apsw

    # The fork left the child a copy of the parent's end: closed, a parent killed
    # mid-scan is seen as EOF and the child leaves, instead of waiting for ever with
    # the scanned image still open (which makes fix and undo refuse the image).
    parent_end.close()
    try:
        conn = apsw.Connection(path)
        # A small page cache: full pages go to the file while the scan still parses
        # (this process has time to spare then), not all at the commit it waits for.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16384"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN")
        while True:
            batch = pipe.recv()
            if batch is None:
                break
            insert_flat(conn, table, columns, batch.flat_values())
        conn.execute("COMMIT")
        conn.close()
        pipe.send(("ok", None))
    except BaseException as exc:  # reported to the scan through the pipe
        try:
            pipe.send(("error", " ".join(str(exc).split()) or exc.__class__.__name__))
        except OSError:
            pass
    finally:
        pipe.close()
        os._exit(0)  # leave without running the parent's atexit handlers or finalisers


def fast_load_pragmas(db: sqlite_utils.Database) -> None:
    """While a new database is loaded: no journal, no fsync (a crash just means re-scan)."""
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -131072")
