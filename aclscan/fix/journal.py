"""The fix journal: every original descriptor, safely on disk before it is replaced.

A journal is a small SQLite file. Its ``meta`` table says what was fixed (target,
volume serial and offset, plan, mount point, state) and ``entries`` holds one row
per file: the MFT entry and path, its original descriptor and the new one, and
whether the new one was written. Descriptors are stored once each in
``descriptors`` (a volume of a million files has a few hundred distinct ones) and
entries point at them: a journal row costs its path and a few integers, not two
copies of the bytes. Format 1 journals (bytes in every row) are still read.

The fixer commits a batch of originals with ``synchronous=FULL`` (SQLite fsyncs
the file and, on creation, its directory) *before* it writes any of them, so a
fix killed at any point leaves a journal that holds the original of every
descriptor it may have changed. Undo restores
every journaled original, written or not: writing back an unchanged original is
harmless, and it is the only safe answer for a write whose outcome is unknown.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from aclscan.errors import DatabaseError, JournalWriteFailed
from aclscan.store import connect_and_identify, utc_now

JOURNAL_FORMAT = 2
READABLE_FORMATS = (1, 2)
APPLICATION_ID = 0x41434C4A  # "ACLJ": an aclscan fix journal

# Journal states (meta "state"): a fix in progress or killed, finished, undone.
RUNNING, APPLIED, UNDONE = "running", "applied", "undone"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE descriptors (id INTEGER PRIMARY KEY, raw BLOB NOT NULL);
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    volume_id INTEGER NOT NULL,
    entry INTEGER NOT NULL,
    sequence INTEGER,  -- the MFT record's sequence number at the scan (NULL in older journals)
    path TEXT NOT NULL,
    original INTEGER NOT NULL REFERENCES descriptors (id),
    replacement INTEGER NOT NULL REFERENCES descriptors (id),
    descriptor_key INTEGER,
    written INTEGER NOT NULL DEFAULT 0,  -- 1 once the new descriptor was set
    restored INTEGER NOT NULL DEFAULT 0  -- 1 once undo wrote the original back
);
"""


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    volume_id: int
    entry: int
    sequence: int  # 0: unknown (an older journal): the entry is taken as it is
    path: str
    original: bytes
    replacement: bytes
    written: bool
    restored: bool


class Journal:
    """An open journal. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, version: int = JOURNAL_FORMAT):
        self.path = path
        self.conn = conn
        self.version = version
        # The journal's descriptors both ways (numbered 1, 2, ... as they are first journaled).
        self._raw_of_id: dict[int, bytes] = {}
        self._next_seq = 1
        if version == JOURNAL_FORMAT:
            self._next_seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM entries").fetchone()[0]
            self._raw_of_id = {id_: bytes(raw) for id_, raw in conn.execute("SELECT id, raw FROM descriptors")}
        self._descriptor_ids = {raw: id_ for id_, raw in self._raw_of_id.items()}

    @classmethod
    def create(cls, path: str | os.PathLike, meta: dict[str, object]) -> "Journal":
        """A new journal at ``path``, made whole (schema, format, meta) under a temporary
        name and renamed into place: a fix killed while it is being made leaves no
        half-made journal that undo would refuse, only a temporary file beside it."""
        target = Path(path)
        if target.exists():
            raise DatabaseError(f"journal {target} already exists: undo it or choose another --journal")
        making = target.with_name(f".{target.name}.{os.getpid()}.making")
        try:
            conn = sqlite3.connect(making, isolation_level=None)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {JOURNAL_FORMAT}")
            created = utc_now()
            with conn:
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                 [(k, _text(v)) for k, v in {**meta, "created": created, "state": RUNNING}.items()])
            conn.close()
            os.replace(making, target)  # the journal appears whole, or not at all
            conn = sqlite3.connect(target, isolation_level=None)
            conn.execute("PRAGMA synchronous = FULL")
        except (sqlite3.Error, OSError) as exc:
            making.unlink(missing_ok=True)
            raise DatabaseError(f"cannot create journal {target}: {exc}") from None
        _fsync_directory(target.parent)
        return cls(target, conn)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Journal":
        target = Path(path)
        if not target.is_file():
            raise DatabaseError(f"no journal at {target}")
        conn, application_id, version = connect_and_identify(target, isolation_level=None)
        if application_id != APPLICATION_ID:
            raise DatabaseError(f"{target} is not an aclscan fix journal")
        if version not in READABLE_FORMATS:
            raise DatabaseError(f"{target} has journal format {version}; this aclscan reads formats "
                                f"{', '.join(map(str, READABLE_FORMATS))}")
        conn.execute("PRAGMA synchronous = FULL")
        return cls(target, conn, version)

    # ------------------------------------------------------------------ meta

    @property
    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta"))

    @contextlib.contextmanager
    def _writing(self):
        """A write that fails (disk full, I/O error) is JournalWriteFailed, never sqlite3's."""
        try:
            yield
        except sqlite3.Error as exc:
            raise JournalWriteFailed(f"the journal {self.path} cannot be written ({exc})") from None

    def set_meta(self, **values: object) -> None:
        with self._writing(), self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [(k, _text(v)) for k, v in values.items()])

    # --------------------------------------------------------------- entries

    def record(self, rows: Iterable[tuple[int, int, int, str, bytes, bytes, int | None]],
               written: Iterable[int] = ()) -> list[int]:
        """Journal (volume_id, entry, sequence, path, original, replacement, descriptor_key) rows;
        returns their sequence numbers once they are durably on disk. ``written`` marks the
        previous batch's entries in the same commit (one fsync per batch, not two)."""
        if self.version != JOURNAL_FORMAT:
            raise DatabaseError(f"{self.path} has journal format {self.version}: it is read, never added to")
        new_descriptors: list[tuple[int, bytes]] = []

        def descriptor_id(raw: bytes) -> int:
            found = self._descriptor_ids.get(raw)
            if found is None:
                found = self._descriptor_ids[raw] = len(self._raw_of_id) + 1
                self._raw_of_id[found] = raw
                new_descriptors.append((found, raw))
            return found

        entries = []
        for volume_id, entry, sequence, path, original, replacement, key in rows:
            entries.append((self._next_seq + len(entries), volume_id, entry, sequence, path, descriptor_id(original),
                            descriptor_id(replacement), key))
        with self._writing(), self.conn:
            self.conn.execute("BEGIN")
            self._mark_runs("written", written)
            self.conn.executemany("INSERT INTO descriptors (id, raw) VALUES (?, ?)", new_descriptors)
            self.conn.executemany(
                "INSERT INTO entries (seq, volume_id, entry, sequence, path, original, replacement, descriptor_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", entries)
        self._next_seq += len(entries)
        return [row[0] for row in entries]  # committed with synchronous=FULL: fsynced before we return

    def mark(self, column: str, seqs: Iterable[int]) -> None:
        with self._writing(), self.conn:
            self.conn.execute("BEGIN")
            self._mark_runs(column, seqs)

    def _mark_runs(self, column: str, seqs: Iterable[int]) -> None:
        """Set ``column`` on entries ``seqs``, one statement per run of consecutive numbers
        (a batch is mostly one run)."""
        assert column in ("written", "restored")
        runs: list[list[int]] = []
        for seq in sorted(seqs):
            if runs and seq == runs[-1][1] + 1:
                runs[-1][1] = seq
            else:
                runs.append([seq, seq])
        self.conn.executemany(f"UPDATE entries SET {column} = 1 WHERE seq BETWEEN ? AND ?", runs)

    def chunks_newest_first(self, size: int) -> Iterator[list[JournalEntry]]:
        """Every entry, the last journaled first, ``size`` at a time (a journal of millions
        of files is never held in memory; each chunk is read before the next is marked)."""
        below = None
        columns = self._columns()
        while True:
            rows = self.conn.execute(
                f"SELECT {columns} FROM entries " + ("WHERE seq < ? " if below is not None else "")
                + "ORDER BY seq DESC LIMIT ?", ([below] if below is not None else []) + [size]).fetchall()
            if not rows:
                return
            below = rows[-1][0]
            yield [self._entry(row) for row in rows]

    def entries(self) -> Iterator[JournalEntry]:
        for row in self.conn.execute(f"SELECT {self._columns()} FROM entries ORDER BY seq"):
            yield self._entry(row)

    def _columns(self) -> str:
        has_sequence = any(c[1] == "sequence" for c in self.conn.execute("PRAGMA table_info(entries)"))
        sequence = "coalesce(sequence, 0)" if has_sequence else "0"
        return f"seq, volume_id, entry, {sequence}, path, original, replacement, written, restored"

    def _entry(self, row: tuple) -> JournalEntry:
        seq, volume_id, entry, sequence, path, original, replacement, written, restored = row
        if self.version == 1:  # the bytes themselves
            original, replacement = bytes(original), bytes(replacement)
        else:  # ids of the journal's few distinct descriptors, read once when it was opened
            original, replacement = self._raw_of_id[original], self._raw_of_id[replacement]
        return JournalEntry(seq, volume_id, entry, sequence, path, original, replacement, bool(written),
                            bool(restored))

    def counts(self) -> dict[str, int]:
        total, written, restored = self.conn.execute(
            "SELECT count(*), coalesce(sum(written), 0), coalesce(sum(restored), 0) FROM entries").fetchone()
        return {"journaled": total, "written": written, "restored": restored}

    def close(self) -> None:
        self.conn.close()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _fsync_directory(directory: Path) -> None:
    """Make the journal's directory entry durable too (a new file's name lives there)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
