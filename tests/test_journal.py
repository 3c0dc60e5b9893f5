"""The fix journal (aclscan.fix.journal) on its own: no volume, no FUSE. What it stores is
read back with Python's sqlite3, not through the journal's own readers, where it matters
(the header, the meta table, the written and restored flags)."""

from __future__ import annotations

import sqlite3

import pytest

from aclscan.errors import DatabaseError, JournalWriteFailed
from aclscan.fix import journal as journal_module
from aclscan.fix.journal import APPLIED, RUNNING, Journal, JournalEntry

# (volume_id, entry, sequence, path, original, replacement, descriptor_key)
ROWS = [(1, 40 + i, 3 + i, f"/Data/f{i}", bytes([1, 0, 4, 0x80, i]), bytes([1, 0, 4, 0x80, 0x40 + i]), 7 + i)
        for i in range(5)]


def _raw(path, sql, params=()):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _journal(tmp_path, **meta) -> Journal:
    return Journal.create(tmp_path / "fix.journal", {"target": "/dev/loop0", "offset": 1048576, **meta})


def test_a_new_journal_says_what_it_is_and_what_it_fixes(tmp_path):
    journal = _journal(tmp_path, plan=None, serial="21FFAFDD05245D50")
    journal.close()
    path = tmp_path / "fix.journal"
    assert _raw(path, "PRAGMA application_id") == [(0x41434C4A,)]  # "ACLJ"
    assert _raw(path, "PRAGMA user_version") == [(2,)]
    meta = dict(_raw(path, "SELECT key, value FROM meta"))
    created = meta.pop("created")
    assert created[:2] == "20" and created[10] == "T"  # an ISO 8601 time
    assert meta == {"target": "/dev/loop0", "offset": "1048576", "plan": None, "serial": "21FFAFDD05245D50",
                    "state": RUNNING}
    assert _raw(path, "SELECT count(*) FROM entries") == [(0,)]
    # Made under another name and renamed: nothing is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fix.journal"]
    again = Journal.open(path)
    assert again.meta == {**meta, "created": created}
    assert again.path == path
    again.close()


def test_an_existing_journal_is_never_overwritten(tmp_path):
    _journal(tmp_path).close()
    before = (tmp_path / "fix.journal").read_bytes()
    with pytest.raises(DatabaseError, match="already exists: undo it or choose another --journal"):
        _journal(tmp_path)
    assert (tmp_path / "fix.journal").read_bytes() == before


def test_a_journal_that_cannot_be_made_leaves_nothing_behind(tmp_path):
    with pytest.raises(DatabaseError, match="cannot create journal"):
        Journal.create(tmp_path / "missing-folder" / "fix.journal", {})
    assert list(tmp_path.iterdir()) == []


def test_open_refuses_what_is_not_a_journal_of_this_format(tmp_path):
    with pytest.raises(DatabaseError, match="no journal at"):
        Journal.open(tmp_path / "absent.journal")
    other = tmp_path / "scan.db"
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA application_id = 1094929235")  # "ACLS": a scan database
    conn.close()
    with pytest.raises(DatabaseError, match="is not an aclscan fix journal"):
        Journal.open(other)
    _journal(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "fix.journal")
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    with pytest.raises(DatabaseError, match="has journal format 3; this aclscan reads formats 1, 2"):
        Journal.open(tmp_path / "fix.journal")


def test_recorded_rows_are_read_back_in_order_as_entries(tmp_path):
    journal = _journal(tmp_path)
    seqs = journal.record(ROWS[:3])
    assert seqs == [1, 2, 3]
    assert journal.record(ROWS[3:], written=seqs[:2]) == [4, 5]
    entries = list(journal.entries())
    assert entries
    assert entries == [JournalEntry(i + 1, 1, 40 + i, 3 + i, f"/Data/f{i}", ROWS[i][4], ROWS[i][5],
                                    written=i < 2, restored=False) for i in range(5)]
    assert all(type(e.original) is bytes and type(e.written) is bool for e in entries)
    # The previous batch's writes were marked in the same commit as the new batch.
    assert _raw(journal.path, "SELECT seq FROM entries WHERE written = 1 ORDER BY seq") == [(1,), (2,)]
    assert _raw(journal.path, "SELECT descriptor_key FROM entries ORDER BY seq") == [(7,), (8,), (9,), (10,), (11,)]
    assert journal.counts() == {"journaled": 5, "written": 2, "restored": 0}
    journal.close()


def test_marks_and_counts(tmp_path):
    journal = _journal(tmp_path)
    assert journal.counts() == {"journaled": 0, "written": 0, "restored": 0}
    journal.record(ROWS)
    journal.mark("written", [1, 2, 3, 4])
    journal.mark("restored", [2, 4])
    assert _raw(journal.path, "SELECT seq, written, restored FROM entries ORDER BY seq") == [
        (1, 1, 0), (2, 1, 1), (3, 1, 0), (4, 1, 1), (5, 0, 0)]
    assert journal.counts() == {"journaled": 5, "written": 4, "restored": 2}
    assert [(e.seq, e.written, e.restored) for e in journal.entries()] == [
        (1, True, False), (2, True, True), (3, True, False), (4, True, True), (5, False, False)]
    with pytest.raises(AssertionError):
        journal.mark("original", [1])
    journal.close()


def test_chunks_come_newest_first_and_cover_every_entry_once(tmp_path):
    journal = _journal(tmp_path)
    journal.record(ROWS)
    chunks = [[e.seq for e in chunk] for chunk in journal.chunks_newest_first(2)]
    assert chunks == [[5, 4], [3, 2], [1]]
    assert [[e.seq for e in c] for c in journal.chunks_newest_first(5)] == [[5, 4, 3, 2, 1]]
    # Marking a chunk while walking does not disturb the walk.
    walked = []
    for chunk in journal.chunks_newest_first(3):
        journal.mark("restored", [e.seq for e in chunk])
        walked += [e.path for e in chunk]
    assert walked == [f"/Data/f{i}" for i in (4, 3, 2, 1, 0)]
    assert journal.counts()["restored"] == 5
    journal.close()


def test_set_meta_replaces_and_adds(tmp_path):
    journal = _journal(tmp_path)
    journal.set_meta(state=APPLIED, mount=None, written=12)
    meta = dict(_raw(journal.path, "SELECT key, value FROM meta"))
    assert meta["state"] == "applied" and meta["written"] == "12" and meta["mount"] is None
    assert meta["target"] == "/dev/loop0"
    assert journal.meta == meta
    journal.close()


def test_a_journal_from_before_the_sequence_column_reads_sequence_zero(tmp_path):
    journal = _journal(tmp_path)
    journal.record(ROWS[:2])
    journal.close()
    conn = sqlite3.connect(tmp_path / "fix.journal")
    conn.execute("ALTER TABLE entries DROP COLUMN sequence")
    conn.close()
    older = Journal.open(tmp_path / "fix.journal")
    entries = list(older.entries())
    assert [(e.entry, e.sequence, e.path) for e in entries] == [(40, 0, "/Data/f0"), (41, 0, "/Data/f1")]
    assert [e.sequence for chunk in older.chunks_newest_first(10) for e in chunk] == [0, 0]
    older.close()


def test_a_null_sequence_reads_as_zero(tmp_path):
    journal = _journal(tmp_path)
    journal.record([(1, 40, None, "/Data/old", b"\x01", b"\x02", None)])
    assert [(e.sequence, e.written, e.restored) for e in journal.entries()] == [(0, False, False)]
    journal.close()


def test_a_write_the_journal_cannot_make_is_journal_write_failed(tmp_path):
    journal = _journal(tmp_path)
    journal.conn.execute("PRAGMA query_only = ON")  # as a full disk would: every write fails
    with pytest.raises(JournalWriteFailed, match=r"the journal .*fix\.journal cannot be written \(") as caught:
        journal.record(ROWS[:1])
    assert isinstance(caught.value, DatabaseError)
    with pytest.raises(JournalWriteFailed):
        journal.set_meta(state=APPLIED)
    with pytest.raises(JournalWriteFailed):
        journal.mark("written", [1])
    journal.conn.execute("PRAGMA query_only = OFF")
    assert journal.counts()["journaled"] == 0 and journal.meta["state"] == RUNNING
    journal.close()


def test_the_journal_is_committed_with_full_synchronous_writes(tmp_path):
    journal = _journal(tmp_path)
    assert journal.conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    journal.close()
    again = Journal.open(tmp_path / "fix.journal")
    assert again.conn.execute("PRAGMA synchronous").fetchone() == (2,)
    assert again.conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    again.close()


def test_fsyncing_a_folder_that_cannot_be_opened_is_no_error(tmp_path):
    # The journal is durable already (synchronous=FULL); the folder's fsync is extra care.
    assert journal_module._fsync_directory(tmp_path / "absent") is None


def test_each_distinct_descriptor_is_stored_once_and_entries_point_at_it(tmp_path):
    journal = _journal(tmp_path)
    shared = b"\x01\x00\x04\x80shared"
    rows = [(1, 40, 3, "/a", shared, b"new-a", None), (1, 41, 3, "/b", shared, b"new-b", None),
            (1, 42, 3, "/c", b"own", shared, None)]
    journal.record(rows)
    # numbered 1, 2, ... in the order each is first journaled; every entry names two of them
    assert _raw(journal.path, "SELECT id, raw FROM descriptors ORDER BY id") == [
        (1, shared), (2, b"new-a"), (3, b"new-b"), (4, b"own")]
    assert _raw(journal.path, "SELECT seq, original, replacement FROM entries ORDER BY seq") == [
        (1, 1, 2), (2, 1, 3), (3, 4, 1)]
    journal.close()
    # Reopened, it goes on where it stopped: the next entry and the next new descriptor.
    again = Journal.open(tmp_path / "fix.journal")
    assert again.version == 2
    assert again.record([(1, 43, 3, "/d", b"own", b"newest", 5)]) == [4]
    assert _raw(again.path, "SELECT id, raw FROM descriptors WHERE id > 4") == [(5, b"newest")]
    assert _raw(again.path, "SELECT original, replacement, descriptor_key FROM entries WHERE seq = 4") == [(4, 5, 5)]
    assert [(e.seq, e.path, e.original, e.replacement) for e in again.entries()] == [
        (1, "/a", shared, b"new-a"), (2, "/b", shared, b"new-b"), (3, "/c", b"own", shared),
        (4, "/d", b"own", b"newest")]
    again.close()


def _format_1_journal(path) -> None:
    """A journal as aclscan wrote them before December 2026: each row carries its bytes."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE entries (seq INTEGER PRIMARY KEY, volume_id INTEGER NOT NULL, entry INTEGER NOT NULL,
            sequence INTEGER, path TEXT NOT NULL, original BLOB NOT NULL, replacement BLOB NOT NULL,
            descriptor_key INTEGER, written INTEGER NOT NULL DEFAULT 0, restored INTEGER NOT NULL DEFAULT 0);
        INSERT INTO meta VALUES ('state', 'applied');
        INSERT INTO entries VALUES (1, 1, 40, 3, '/a', x'0100', x'0200', NULL, 1, 0);
        INSERT INTO entries VALUES (2, 1, 41, NULL, '/b', x'0300', x'0100', 7, 0, 1);
        PRAGMA application_id = 1094929482;
        PRAGMA user_version = 1;
    """)
    conn.close()


def test_a_format_1_journal_is_read_and_never_added_to(tmp_path):
    path = tmp_path / "old.journal"
    _format_1_journal(path)
    journal = Journal.open(path)
    assert journal.version == 1 and journal.meta == {"state": "applied"}
    expected = [JournalEntry(1, 1, 40, 3, "/a", b"\x01\x00", b"\x02\x00", written=True, restored=False),
                JournalEntry(2, 1, 41, 0, "/b", b"\x03\x00", b"\x01\x00", written=False, restored=True)]
    assert list(journal.entries()) == expected
    assert all(type(e.original) is bytes and type(e.replacement) is bytes for e in journal.entries())
    assert [e for chunk in journal.chunks_newest_first(1) for e in chunk] == expected[::-1]
    assert journal.counts() == {"journaled": 2, "written": 1, "restored": 1}
    with pytest.raises(DatabaseError, match=r"old\.journal has journal format 1: it is read, never added to$"):
        journal.record([(1, 42, 3, "/c", b"x", b"y", None)])
    journal.mark("restored", [1])  # undo still marks what it restored
    assert _raw(path, "SELECT seq, restored FROM entries ORDER BY seq") == [(1, 1), (2, 1)]
    journal.close()


def test_marks_are_set_on_exactly_the_entries_named(tmp_path):
    journal = _journal(tmp_path)
    journal.record(ROWS + [(2, 50 + i, 1, f"/E/{i}", b"o", b"n", None) for i in range(5)])
    journal.mark("written", [9, 1, 3, 2, 7, 8])  # unsorted, runs 1-3 and 7-9 with gaps
    assert _raw(journal.path, "SELECT seq FROM entries WHERE written = 1 ORDER BY seq") == [
        (1,), (2,), (3,), (7,), (8,), (9,)]
    journal.mark("restored", [])
    journal.mark("restored", iter([10]))
    assert _raw(journal.path, "SELECT seq FROM entries WHERE restored = 1") == [(10,)]
    journal.close()


def test_a_journal_being_made_has_a_temporary_name_and_no_meta_beyond_what_was_given(tmp_path, monkeypatch):
    import os

    made = []
    real_replace = os.replace

    def spy(source, target):
        made.append((os.path.basename(source), sorted(_raw(source, "SELECT key FROM meta"))))
        return real_replace(source, target)

    monkeypatch.setattr(journal_module.os, "replace", spy)
    Journal.create(tmp_path / "fix.journal", {"target": "t", "state": "ignored"}).close()
    assert made == [(f".fix.journal.{os.getpid()}.making", [("created",), ("state",), ("target",)])]
    assert dict(_raw(tmp_path / "fix.journal", "SELECT key, value FROM meta"))["state"] == RUNNING
    assert _raw(tmp_path / "fix.journal", "PRAGMA journal_mode") == [("delete",)]
