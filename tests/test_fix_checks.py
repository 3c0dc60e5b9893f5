"""The fix's checks that need no volume (aclscan.fix.offline): the re-scan's check that
every written file carries its new descriptor, the report's verdicts, the journal's
default name and what an interrupted fix says. Fast: a real scan database of a sample
volume (read with sqlite3 for the expectations) and a journal, no FUSE, no libntfs-3g."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3

from aclscan.fix.journal import Journal
from aclscan.fix.offline import FixReport, UndoReport, _changed_so_far, _chunks, _writes_not_kept, \
    default_journal_path

LOST = "written, but the volume does not carry the new descriptor after the fix"


def _files_now(db) -> list[tuple[int, str, bytes]]:
    """(MFT entry, a path for the journal, descriptor bytes) of the scanned volume's files, by sqlite3."""
    conn = sqlite3.connect(db)
    try:
        return [(entry, f"/{entry}/{name}", bytes(raw)) for entry, name, raw in conn.execute(
            "SELECT f.entry, f.name, d.raw FROM file_records f JOIN descriptors d ON d.key = f.descriptor_key "
            "WHERE f.volume_id = 1 AND d.raw IS NOT NULL ORDER BY f.entry")]
    finally:
        conn.close()


def test_writes_the_rescan_does_not_show_are_named(scenario_db, tmp_path):
    after = tmp_path / "after.db"
    shutil.copyfile(scenario_db("av-service"), after)
    files = _files_now(after)
    distinct = sorted({raw for _e, _p, raw in files})
    assert len(files) > 30 and len(distinct) > 2
    kept = files[:20] + files[-1:]  # written, and the re-scan shows the new bytes (the last entry too): fine
    other = [(e, p, next(r for r in distinct if r != raw)) for e, p, raw in files[20:23]]  # another existing one
    unknown = [(e, p, raw + b"\0") for e, p, raw in files[23:25]]  # bytes the re-scan never saw
    not_written = [(e, p, raw + b"\1") for e, p, raw in files[25:27]]
    journal = Journal.create(tmp_path / "fix.journal", {})
    rows = [(1, e, 1, p, b"original", raw, None) for e, p, raw in kept + other + unknown + not_written]
    conn = sqlite3.connect(after)
    (key_1,) = conn.execute("SELECT raw FROM descriptors WHERE key = 1").fetchone()
    conn.close()
    # no such file now; its new bytes are the re-scan's descriptor 1 (a file missing is no key)
    rows.append((1, 10**9, 1, "/gone since the fix", b"original", bytes(key_1), None))
    seqs = journal.record(rows)
    written = len(kept + other + unknown)
    journal.mark("written", seqs[:written] + seqs[written + len(not_written):])
    journal.close()
    lost_paths = [p for _e, p, _r in other + unknown] + ["/gone since the fix"]
    assert _writes_not_kept(str(after), str(journal.path)) == [f"{p}: {LOST}" for p in lost_paths] + [
        "6 files written do not carry their new descriptor in the re-scan: the volume did not keep the writes"]
    assert _writes_not_kept(str(after), str(journal.path), shown=2) == [f"{p}: {LOST}" for p in lost_paths[:2]] + [
        "6 files written do not carry their new descriptor in the re-scan: the volume did not keep the writes"]
    # every write kept: nothing to say
    kept_only = Journal.create(tmp_path / "kept.journal", {})
    kept_only.mark("written", kept_only.record([(1, e, 1, p, b"original", raw, None) for e, p, raw in kept]))
    kept_only.close()
    assert _writes_not_kept(str(after), str(kept_only.path)) == []
    # a re-scan that found no file at all: every write is lost
    conn = sqlite3.connect(after)
    conn.execute("DELETE FROM file_records")
    conn.commit()
    conn.close()
    assert _writes_not_kept(str(after), str(kept_only.path), shown=1) == [f"{kept[0][1]}: {LOST}"] + [
        "21 files written do not carry their new descriptor in the re-scan: the volume did not keep the writes"]


def test_twenty_lost_writes_are_named_and_the_rest_counted(scenario_db, tmp_path):
    after = tmp_path / "after.db"
    shutil.copyfile(scenario_db("av-service"), after)
    files = _files_now(after)
    assert len(files) > 21
    journal = _journal_file(tmp_path / "fix.journal", descriptors=[(i + 1, raw + b"\0") for i, (_e, _p, raw)
                                                                     in enumerate(files)],
                            entries=[(i + 1, e, p, i + 1, 1) for i, (e, p, _raw) in enumerate(files)])
    assert _writes_not_kept(str(after), str(journal)) == [f"{p}: {LOST}" for _e, p, _r in files[:20]] + [
        f"{len(files)} files written do not carry their new descriptor in the re-scan: the volume did not keep the "
        "writes"]


def test_chunks():
    assert list(_chunks(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(_chunks(iter(range(4)), 2)) == [[0, 1], [2, 3]]
    assert list(_chunks([], 3)) == []
    assert list(_chunks("ab", 5)) == [["a", "b"]]


def test_what_an_interrupted_fix_says():
    report = FixReport("/images/disk.img", True, journal="/tmp/my journal.db", written=3)
    assert _changed_so_far(report) == "3 files were already changed; aclscan undo '/tmp/my journal.db' restores them"
    assert _changed_so_far(FixReport("t", True)) == "0 files were already changed; aclscan undo '' restores them"


def test_default_journal_path(tmp_path, monkeypatch):
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    beside = default_journal_path(str(image))
    assert re.fullmatch(re.escape(str(tmp_path)) + r"/disk\.img\.aclscan-journal-\d{8}T\d{6}\.db", beside)
    # a device: in the working directory, named after it
    assert re.fullmatch(r"aclscan-journal-null-\d{8}T\d{6}\.db", default_journal_path("/dev/null"))


def test_a_fix_is_clean_only_when_nothing_is_left():
    assert not FixReport("t", False).clean  # a dry run changed nothing
    assert FixReport("t", True).clean
    assert FixReport("t", True, remaining={"S-1-5-21-1": 0}, places_remaining={"S-1-5-21-1": 0}).clean
    for left in ({"errors": ["x"]}, {"changed_since_scan": ["/a"]}, {"remaining": {"S-1-5-21-1": 2}},
                 {"places_remaining": {"S-1-5-21-1": 1}}, {"problems_left": {"S-1-5-21-2": {"files": 1, "other_places": 0}}}):
        assert not FixReport("t", True, **left).clean, left


def test_an_undo_is_complete_only_without_errors_or_files_left_alone():
    assert UndoReport("t", "j").complete
    assert UndoReport("t", "j", notes=["a note"], unchanged=3).complete
    assert not UndoReport("t", "j", errors=["x"]).complete
    assert not UndoReport("t", "j", changed_since_fix=["/a"]).complete


def test_a_write_not_kept_is_named_whatever_keys_the_rescan_holds_beyond_its_files(scenario_db, tmp_path):
    """The re-scan's descriptors table holds keys no file has (registry keys' descriptors):
    a write whose file now has another descriptor is still named, never taken for kept
    because (replacement, key now) of one file and (replacement, key) of another coincide."""
    after = tmp_path / "after.db"
    shutil.copyfile(scenario_db("av-service"), after)
    conn = sqlite3.connect(after)
    highest, raw_highest = conn.execute("SELECT key, raw FROM descriptors WHERE raw IS NOT NULL "
                                        "ORDER BY key DESC LIMIT 1").fetchone()
    file_keys = [k for (k,) in conn.execute("SELECT DISTINCT descriptor_key FROM file_records WHERE volume_id = 1 "
                                            "AND descriptor_key IS NOT NULL ORDER BY descriptor_key DESC")]
    conn.close()
    assert file_keys and highest > file_keys[0] + 1  # keys beyond every file's
    files = _files_now(after)
    assert files
    for entry, path, raw in files:  # each file written with bytes it does not carry now, one journal each
        journal = _journal_file(tmp_path / f"fix-{entry}.journal",
                                # 1: the highest key's bytes, never written; 2: this file's new bytes
                                descriptors=[(1, bytes(raw_highest)), (2, raw + b"\0")],
                                entries=[(1, 10**8, "/never written", 1, 0), (2, entry, path, 2, 1)])
        assert _writes_not_kept(str(after), str(journal)) == [f"{path}: {LOST}", (
            "1 files written do not carry their new descriptor in the re-scan: the volume did not keep the writes")]


def _journal_file(path, descriptors: list[tuple[int, bytes]], entries: list[tuple[int, str, str, int, int]]):
    """The tables of a format 2 journal the check reads (descriptors; entries: seq, entry,
    path, replacement id, written), written with sqlite3 alone and no fsync: the check,
    not the journal, is under test."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.executescript("CREATE TABLE descriptors (id INTEGER PRIMARY KEY, raw BLOB NOT NULL);"
                       "CREATE TABLE entries (seq INTEGER PRIMARY KEY, entry INTEGER, path TEXT, "
                       "replacement INTEGER, written INTEGER);")
    conn.executemany("INSERT INTO descriptors VALUES (?, ?)", descriptors)
    conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", entries)
    conn.commit()
    conn.close()
    return path


def test_a_write_to_a_file_gone_since_is_named_whatever_the_highest_key_holds(scenario_db, tmp_path):
    after = tmp_path / "after.db"
    shutil.copyfile(scenario_db("av-service"), after)
    conn = sqlite3.connect(after)
    (raw_highest,) = conn.execute("SELECT raw FROM descriptors WHERE raw IS NOT NULL ORDER BY key DESC LIMIT 1"
                                  ).fetchone()
    conn.close()
    # 1: the bytes of the re-scan's highest key, never written; 2: the new bytes of a file gone since
    journal = _journal_file(tmp_path / "fix.journal", descriptors=[(1, bytes(raw_highest)), (2, b"new")],
                            entries=[(1, 10**8, "/never written", 1, 0), (2, 10**9, "/gone", 2, 1)])
    assert _writes_not_kept(str(after), str(journal)) == [f"/gone: {LOST}", (
        "1 files written do not carry their new descriptor in the re-scan: the volume did not keep the writes")]


def test_a_refused_sid_left_is_reported_with_its_files_and_other_places():
    from aclscan.formats.fix_text import fix_json, render_fix_text
    from aclscan.plan import Plan

    left = {"S-1-5-21-9-9-9-1001": {"files": 7, "other_places": 1}}
    report = FixReport("t", True, problems_left=left)
    assert json.loads(fix_json(report))["problems_left"] == left
    out = io.StringIO()
    render_fix_text(Plan(scan={}, owner="BA", group="SY", actions=(), descriptors=()), report, out)
    assert "  S-1-5-21-9-9-9-1001: 7 files and 1 other places, not acted on (see the plan's refusals)\n" \
        in out.getvalue()
