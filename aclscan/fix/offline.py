"""Apply a plan to an image or device offline, through ntfs-3g; undo it from the journal.

The order of things is the safety argument:

1. The target must be the scanned volume: same serial number at the same offset,
   same number of MFT records, a writable raw image or device, not mounted and
   not held by a loop device (compared by device and inode, not by path). The
   plan must be what the scan calls for: each new descriptor is recomputed from
   the scanned original and the plan's actions (``plan.verify_plan``).
2. A dry run (the default) reads nothing but the boot sector and $MFT size and
   says what would change.
3. With ``apply`` the volume is opened through ntfs-3g's own code (which keeps
   ``$Secure`` consistent): libntfs-3g in-process by MFT entry, or a FUSE mount
   (``backends``). Files are taken in batches: each file's *current* descriptor is
   read; if it is not the one the plan was made from (its hash), the file is left
   alone and reported. The originals of a batch are committed to the journal
   (fsynced) before any of them is replaced through ``system.ntfs_acl``. Only
   descriptors are written, never file contents.
4. The volume is unmounted (ntfs-3g flushes and exits) and re-scanned with the
   original scan's account sources (``scan_inputs``), so the after-database has
   verdicts: the report says how many files still carry each SID the plan acted on.

``undo`` mounts the target again and writes back every journaled original whose
file still carries exactly what the fix wrote (a later change by anyone is left
alone and listed, unless forced), then reads each back to prove it byte for byte. A fix
killed with SIGKILL leaves its ntfs-3g driver serving the mount; undo takes that
mount down first (the journal names it).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import shlex
import sqlite3
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from aclscan.errors import Error, Interrupted, JournalWriteFailed, MountError, TargetMismatch
from aclscan.findings import iter_findings
from aclscan.fix import backends, ntfs3g
from aclscan.fix.backends import DEFAULT_BACKEND, FUSE
from aclscan.fix.libntfs3g import RecordReused
from aclscan.fix.holders import Identity, holders, is_mounted, loop_devices_of, mounted_at
from aclscan.fix.journal import APPLIED, UNDONE, Journal, JournalEntry
from aclscan.fix.registry import (PLACE_SOURCES, compute_writes, has_stores, journal_and_write, mounted_path,
                                  plan_store_edits, undo_writes)
from aclscan.image import Image
from aclscan.ntfs.mft import BootSector
from aclscan.plan import Plan, PlannedFile, iter_plan_files, require_same_scan, verify_plan
from aclscan.store import utc_now

BLKROGET = 0x125E  # <linux/fs.h>: is this block device read-only?
ORPHAN_FILES = "/$OrphanFiles/"  # records whose parent is gone: no path reaches them through ntfs-3g
# Files per journal commit: one fsync per batch, not per file. A commit (SQLite's rollback
# journal and the file, each fsynced) costs about as much as writing 500 descriptors through
# libntfs-3g, so batches are large; the originals of a batch are durable before any of them
# is written whatever its size. A batch's files stay open from their read to their write:
# 16,384 open MFT records cost libntfs-3g about 20 MiB.
BATCH = 16384


@dataclass(frozen=True)
class TargetVolume:
    target: str
    offset: int
    serial: str
    volume_id: int


@dataclass
class FixReport:
    target: str
    applied: bool
    journal: str | None = None
    files_planned: int = 0
    descriptors_planned: int = 0
    written: int = 0
    already_fixed: int = 0  # a re-run after an interrupted fix: the new descriptor is already there
    changed_since_scan: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rescan: str | None = None
    remaining: dict[str, int] = field(default_factory=dict)  # acted-on SID -> files still carrying it
    # problem SID (any) -> {"files": n, "other_places": places and hive references}, after the fix
    problems_left: dict[str, dict[str, int]] = field(default_factory=dict)
    rescan_notes: list[str] = field(default_factory=list)  # account sources the re-scan could not use again
    stores_planned: list[str] = field(default_factory=list)  # hives and task files the plan changes
    stores_written: list[str] = field(default_factory=list)
    places_remaining: dict[str, int] = field(default_factory=dict)  # acted-on SID -> places still naming it

    @property
    def clean(self) -> bool:
        return self.applied and not self.errors and not self.changed_since_scan and not any(
            self.remaining.values()) and not any(self.places_remaining.values()) and not self.problems_left

    def did_all_asked(self, plan: Plan) -> bool:
        """A dry run, always; an applied fix when it is clean and the plan refused nothing
        (only what is left unfixed counts: leftovers on files and places, and refusals)."""
        return not self.applied or (self.clean and not plan.refusals)


@dataclass
class UndoReport:
    target: str
    journal: str
    entries: int = 0
    restored: int = 0
    unchanged: int = 0  # already carried the original (never written, or undone before)
    changed_since_fix: list[str] = field(default_factory=list)  # neither the fix's bytes nor the original: kept
    stores_restored: list[str] = field(default_factory=list)  # hives and task files written back
    forced: bool = False  # --force: restored those too
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every journaled descriptor is the original again: no error, none left alone."""
        return not self.errors and not self.changed_since_fix


# ------------------------------------------------------------------ the target


def locate_target(target: str | os.PathLike, db, plan: Plan) -> TargetVolume:
    """The scanned volume inside ``target``; TargetMismatch unless it is really that volume."""
    path = os.path.realpath(target)
    volume_ids = sorted({c.volume_id for c in plan.descriptors}) or [v["id"] for v in plan.scan["volumes"]][:1]
    if len(volume_ids) > 1:
        raise TargetMismatch("the plan changes several volumes: fix one at a time (one scan per volume)")
    volume_id = volume_ids[0] if volume_ids else 1
    row = db.execute("SELECT serial, offset, mft_records FROM volumes WHERE id = ?", [volume_id]).fetchone()
    if row is None:
        raise TargetMismatch(f"the scan database has no volume {volume_id}")
    serial, offset, mft_records = row
    require_same_scan(plan, db, TargetMismatch)
    _check_writable(path)
    with Image(path) as image:
        if image.kind not in ("raw",):
            raise TargetMismatch(f"{target} is a {image.kind} image: {image.how_to_write()}")
        boot = _boot_sector(image, target, offset)
        found = f"{boot.serial_number:016X}"
        if found != serial:
            raise TargetMismatch(f"{target} is not the scanned volume: serial {found} at offset {offset}, "
                                 f"the scan's is {serial}")
        volume = image.open_volume(next(loc for loc in image.locate(offset=offset)))
        records = volume.mft_size() // boot.mft_record_size
    if records != mft_records:
        # Clones share serial numbers: the MFT's size tells the scanned volume from its siblings.
        raise TargetMismatch(f"{target} is not the scanned volume or has changed since: $MFT holds {records} records, "
                             f"the scan saw {mft_records}")
    _refuse_if_mounted(path)
    return TargetVolume(path, offset, serial, volume_id)


def _boot_sector(image: Image, target: str | os.PathLike, offset: int) -> BootSector:
    try:
        return BootSector.from_bytes(image.read(offset, 512))
    except Error as exc:
        raise TargetMismatch(f"{target} has no NTFS volume at offset {offset}: {exc}") from None


def _refuse_if_mounted(path: str) -> None:
    """TargetMismatch when anything else holds the target: a mount (also through a hard
    link or a loop device), a loop device (mounted or not), another process."""
    held = holders(path)
    if held.mounts:
        raise TargetMismatch(f"{path} is mounted at {', '.join(held.mounts)}: unmount it first")
    if held.loop_devices:
        raise TargetMismatch(f"{path} is attached to {', '.join(held.loop_devices)}: detach it first "
                             f"(losetup -d {held.loop_devices[0]})")
    if held.processes:
        raise TargetMismatch(f"{path} is open in process {', '.join(held.processes)}: stop it first")


def _check_writable(path: str) -> None:
    """Refuse a target that would not take the writes: opened for writing here (root's
    permission bits do not stop it; an immutable file or a read-only file system does),
    and a block device the kernel marks read-only (``losetup -r``, ``blockdev --setro``),
    which opens for writing but fails every write: ntfs-3g does not always report that."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise TargetMismatch(f"cannot use {path}: {exc.strerror}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise TargetMismatch(f"{path} is neither an image file nor a block device")
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise TargetMismatch(f"{path} is not writable: {exc.strerror}") from None
    try:
        if stat.S_ISBLK(mode) and struct.unpack("i", fcntl.ioctl(fd, BLKROGET, b"\0" * 4))[0]:
            raise TargetMismatch(f"{path} is a read-only block device (blockdev --setrw, or a loop device "
                                 "attached without -r)")
    finally:
        os.close(fd)


# ------------------------------------------------------------------------ fix


def fix(db, plan: Plan, target: str | os.PathLike, *, apply: bool = False, journal_path: str | None = None,
        rescan_path: str | None = None, progress: Callable[[int, int], None] | None = None,
        on_journal: Callable[[str], None] | None = None, backend: str = DEFAULT_BACKEND,
        batch: int | None = None) -> FixReport:
    """Dry run (default) or apply ``plan`` to ``target`` through ``backend`` (``lib`` or
    ``fuse``, see ``backends``); see the module notes. ``on_journal`` hears the journal's
    path before anything is written."""
    volume = locate_target(target, db, plan)
    verify_plan(db, plan)  # the plan file's bytes are recomputed from the scan, never trusted
    changes = [c for c in plan.descriptors if c.volume_id == volume.volume_id and c.source not in PLACE_SOURCES]
    store_edits = plan_store_edits(db, plan, volume.volume_id)
    report = FixReport(target=volume.target, applied=apply, files_planned=sum(c.files for c in changes),
                       descriptors_planned=len(changes))
    # Every hive's new bytes are computed before anything is written (read-only here):
    # a hive changed since the scan, dirty, or that cannot take an edit refuses the fix.
    writes = compute_writes(store_edits, _volume_reader(volume))
    report.stores_planned = [w.edit.path for w in writes]
    if not apply or not (changes or writes):
        return report
    journal_path = journal_path or default_journal_path(volume.target)
    journal = Journal.create(journal_path, {
        "target": volume.target, "offset": volume.offset, "serial": volume.serial,
        "plan_sha256": hashlib.sha256(plan.to_json().encode()).hexdigest(),
        "scan_database": plan.scan.get("database"), "backend": backend,
    })
    report.journal = str(journal.path)
    if on_journal:
        on_journal(report.journal)
    try:
        if writes:  # hives and task files are whole files: written through a FUSE mount
            with backends.opened(FUSE, volume.target, volume.offset, _noting(journal)) as mounted:
                root = Path(mounted.mount_point)
                # Read again through the mount: what is written is computed from what is there.
                writes = compute_writes(store_edits, lambda path: mounted_path(root, path).read_bytes())
                journal_and_write(journal.conn, writes, root,
                                  on_written=lambda w: report.stores_written.append(w.edit.path))
        if changes:
            with backends.opened(backend, volume.target, volume.offset, _noting(journal)) as opened:
                _apply(db, plan, volume, opened, journal, report, progress, batch or BATCH)
        journal.set_meta(state=APPLIED, finished=utc_now())
    except JournalWriteFailed as exc:
        raise JournalWriteFailed(f"{exc}: {_changed_so_far(report)}") from None
    except Interrupted as exc:
        raise Interrupted(f"{exc}: {_changed_so_far(report)}", exc.signum) from None
    finally:
        journal.close()
    report.rescan = rescan_path or f"{journal_path}.after.db"
    _rescan(db, plan, volume, report)
    return report


def _volume_reader(volume: TargetVolume) -> Callable[[str], bytes]:
    """Read a file of the target volume by path, read-only (for the dry run's hive edits)."""
    def read(path: str) -> bytes:
        with Image(volume.target) as image:
            [location] = image.locate(offset=volume.offset)
            return image.open_volume(location).open_path(path)
    return read


def _changed_so_far(report: FixReport) -> str:
    """How far an interrupted fix got, and the one command that takes it back (the volume
    is unmounted by then: the journal holds the original of every file it may have changed)."""
    return (f"{report.written} files were already changed; "
            f"aclscan undo {shlex.quote(report.journal or '')} restores them")


def default_journal_path(target: str) -> str:
    """Beside an image file; in the working directory for a device."""
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    base = Path(target)
    if stat.S_ISREG(os.stat(target).st_mode):
        return str(base.with_name(f"{base.name}.aclscan-journal-{stamp}.db"))
    return f"aclscan-journal-{base.name}-{stamp}.db"


def _apply(db, plan: Plan, volume: TargetVolume, opened, journal: Journal, report: FixReport, progress,
           batch: int) -> None:
    done = 0
    pending: list[int] = []  # written, not yet marked: marked with the next batch's commit
    verified: dict[int, bytes] = {}  # per change, the original bytes once their SHA-256 matched the plan's
    # The lib backend opens files by MFT entry: in entry order its reads walk $MFT forwards.
    order = "entry" if opened.name == backends.LIB else "path"
    for chunk in _chunks(iter_plan_files(db, plan, volume_id=volume.volume_id, order=order), batch):
        batch = []
        try:
            for planned, outcome in zip(chunk, opened.map(lambda p: _probe(opened, p), chunk)):
                change = planned.change
                if outcome is _MOVED:
                    report.changed_since_scan.append(planned.path)
                    continue
                if isinstance(outcome, str):
                    report.errors.append(outcome)
                    continue
                handle, current = outcome
                if current == change.new_raw:
                    report.already_fixed += 1
                elif current != verified.get(change.descriptor_key) and (
                        hashlib.sha256(current).hexdigest() != change.old_sha256):
                    report.changed_since_scan.append(planned.path)
                else:
                    verified[change.descriptor_key] = current
                    batch.append((planned, current, handle))
                    continue
                handle.close()
            if batch:
                pending = _write_batch(batch, opened, journal, report, pending)
        finally:
            for _planned, _current, handle in batch:
                handle.close()  # a file left open by an interruption: closed unchanged
        done += len(chunk)
        if progress:
            progress(done, report.files_planned)
    journal.mark("written", pending)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_MOVED = object()  # the path or the MFT entry holds another file than the scan's


def _probe(opened, planned: PlannedFile):
    """(the planned file opened, its current descriptor), _MOVED, or the error (a str).
    The file stays open for the write: the caller closes it."""
    if planned.path.startswith(ORPHAN_FILES):
        return f"{planned.path}: an orphaned record has no path on the volume: not fixed"
    handle = None
    try:
        handle = opened.open(planned.path, planned.entry, planned.sequence)
        return handle, handle.read()
    except RecordReused:
        return _MOVED
    except OSError as exc:
        if handle is not None:
            handle.close()
        return f"{planned.path}: cannot read its descriptor: {exc.strerror}"


def _write_batch(batch: list[tuple], opened, journal: Journal, report: FixReport, pending: list[int]) -> list[int]:
    """Journal a batch's originals (and mark the previous batch written), then write the
    batch; returns the journal entries written, to be marked with the next commit. The
    marks are for people reading the journal: undo restores every journaled entry."""
    # The originals are durable before the first of them is replaced.
    seqs = journal.record(((p.volume_id, p.entry, p.sequence, p.path, current, p.change.new_raw,
                            p.change.descriptor_key) for p, current, _handle in batch), written=pending)

    def write(item):
        planned, _current, handle = item
        try:
            handle.write(planned.change.new_raw)
            handle.close()
        except OSError as exc:
            return f"{planned.path}: ntfs-3g refused the new descriptor: {exc.strerror}"
        return None

    written = []
    for seq, error in zip(seqs, opened.map(write, batch)):
        if error:
            report.errors.append(error)
        else:
            written.append(seq)
            report.written += 1  # counted as it happens: an interruption reports it
    return written


def _rescan(db, plan: Plan, volume: TargetVolume, report: FixReport) -> None:
    """Scan the fixed volume with the account sources the original scan used (its hives
    read again from the volume), so the after-database has verdicts of its own; count,
    per SID the plan acted on, the files that still carry it, and the problem SIDs left."""
    from aclscan.scan import scan_image
    from aclscan.scan_inputs import recall
    from aclscan.store import open_database

    if os.path.exists(report.rescan):
        os.unlink(report.rescan)
    recalled = recall(db)
    report.rescan_notes = list(recalled.notes)
    scan_image(volume.target, report.rescan, offset=volume.offset, resolve=recalled.inputs)
    after = open_database(report.rescan, index=False)  # its file indexes wait for the first command that reads it
    if report.journal:
        report.errors += _writes_not_kept(report.rescan, report.journal)
    files_of = dict(after.execute("SELECT sid, files FROM sids WHERE volume_id = 1"))  # the one volume scanned
    acted = {a.sid for a in plan.actions if a.is_descriptor_action}
    report.remaining = {sid: files_of.get(sid, 0) for sid in sorted(acted)}
    report.places_remaining = {sid: _places_naming(after, sid) for sid in sorted(acted)}
    judged = after if recalled.inputs is not None else db  # no verdicts after: the original's
    for finding in iter_findings(judged, problems_only=True):
        files = files_of.get(finding["sid"], 0)
        others = sum((finding.get("places") or {}).values()) + (finding.get("hive_references") or 0)
        if files or others:
            report.problems_left[finding["sid"]] = {"files": files, "other_places": others}
    after.conn.close()


def _writes_not_kept(after_path: str, journal_path: str, shown: int = 20) -> list[str]:
    """Every file the journal says was written, checked in the re-scan: it must now carry
    the journal's replacement bytes. A volume that did not keep the writes (a device that
    drops them, a driver that reported success wrongly) is an error, never "rewrote N".

    Distinct before many: the few distinct replacements are matched by bytes to the
    re-scan's descriptor keys once; the million files are then compared as integer pairs
    (replacement id, key now), with no index on the re-scan's file rows."""
    after = sqlite3.connect(Path(after_path).resolve().as_uri() + "?mode=ro", uri=True)
    journal = sqlite3.connect(Path(journal_path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        keys_of_raw: dict[bytes, list[int]] = {}
        for key, raw in after.execute("SELECT key, raw FROM descriptors WHERE raw IS NOT NULL"):
            keys_of_raw.setdefault(bytes(raw), []).append(key)
        kept_pairs = [(replacement, key) for replacement, raw in journal.execute("SELECT id, raw FROM descriptors")
                      for key in keys_of_raw.get(bytes(raw), ())]
        pair_dtype = [("first", np.int64), ("second", np.int64)]
        written = np.fromiter(journal.execute("SELECT entry, replacement FROM entries WHERE written = 1"),
                              dtype=pair_dtype)
        now = np.fromiter(after.execute(
            "SELECT entry, coalesce(descriptor_key, -1) FROM file_records WHERE volume_id = 1"), dtype=pair_dtype)
        now.sort(order="first")
        key_now = np.full(len(written), -1, dtype=np.int64)  # -1: no such file now, or no descriptor
        if len(now):
            where = np.minimum(np.searchsorted(now["first"], written["first"]), len(now) - 1)
            key_now = np.where(now["first"][where] == written["first"], now["second"][where], -1)
        # Above every key either side names (the re-scan's descriptors include keys no file
        # of the volume has now, hive keys' among them): no (replacement, key) pair can pass
        # for another's.
        span = max([int(now["second"].max(initial=0))] + [key for _replacement, key in kept_pairs]) + 2
        pairs = written["second"] * span + (key_now + 1)
        kept = np.array([replacement * span + key + 1 for replacement, key in kept_pairs], dtype=np.int64)
        lost = written["first"][~np.isin(pairs, kept)]
        examples = [path for (path,) in journal.execute(
            "SELECT path FROM entries WHERE entry IN (SELECT value FROM json_each(?)) ORDER BY seq",
            [json.dumps(lost[:shown].tolist())])][:shown]
    finally:
        after.close()
        journal.close()
    if not len(lost):
        return []
    return [f"{path}: written, but the volume does not carry the new descriptor after the fix" for path in examples] + [
        f"{len(lost)} files written do not carry their new descriptor in the re-scan: the volume did not keep the writes"]


def _places_naming(db, sid: str) -> int:
    """Places (registry keys, services, shares, tasks, ...) that still name ``sid``."""
    from aclscan.queries import descriptors_with_sid_clause
    from aclscan.store import has_table

    if not has_table(db, "places"):
        return 0
    clause, params = descriptors_with_sid_clause(sid, "descriptor_key")
    return db.execute(f"SELECT COUNT(*) FROM places WHERE ({clause}) OR sid = ?", [*params, sid]).fetchone()[0]


# ----------------------------------------------------------------------- undo


def undo(journal_path: str | os.PathLike, *, force: bool = False, backend: str | None = None,
         progress: Callable[[int, int], None] | None = None) -> UndoReport:
    """Write back every journaled original whose file still carries exactly what the fix
    wrote; each is read back and compared byte for byte. A descriptor changed since the
    fix (by anyone) is left alone and listed, unless ``force``."""
    journal = Journal.open(journal_path)
    try:
        meta = journal.meta
        target, offset, serial = meta["target"], int(meta["offset"]), meta["serial"]
        report = UndoReport(target=target, journal=str(journal.path), forced=force)
        _release_interrupted_mounts(target, meta)
        with Image(target) as image:
            found = f"{_boot_sector(image, target, offset).serial_number:016X}"
        if found != serial:
            raise TargetMismatch(f"{target} is not the journal's volume: serial {found}, the journal's is {serial}")
        _check_writable(os.path.realpath(target))
        _refuse_if_mounted(target)
        report.entries = journal.counts()["journaled"]
        backend = backend or meta.get("backend") or FUSE  # journals before the lib backend: fuse
        with backends.opened(backend, target, offset, _noting(journal, report)) as opened:
            done = 0
            for chunk in journal.chunks_newest_first(BATCH):
                restored = []
                for item, outcome in zip(chunk, opened.map(lambda e: _restore(opened, e, force), chunk)):
                    if outcome == "restored":
                        report.restored += 1
                    elif outcome == "unchanged":
                        report.unchanged += 1
                    elif outcome == "changed":
                        report.changed_since_fix.append(item.path)
                        continue
                    else:
                        report.errors.append(outcome)
                        continue
                    restored.append(item.seq)
                _bookkeeping(report, journal.mark, "restored", restored)
                done += len(chunk)
                if progress:
                    progress(done, report.entries)
        if has_stores(journal.conn):  # hives and task files, written back whole through a FUSE mount
            with backends.opened(FUSE, target, offset, _noting(journal, report)) as mounted:
                stores = undo_writes(journal.conn, Path(mounted.mount_point), force=force)
            report.stores_restored = stores.restored
            report.changed_since_fix += stores.changed_since_fix
            report.errors += stores.errors
        if not report.errors and not report.changed_since_fix:
            _bookkeeping(report, journal.set_meta, state=UNDONE, undone=utc_now())
        return report
    finally:
        journal.close()


def _bookkeeping(report: UndoReport, write: Callable, *args, **kwargs) -> None:
    """Undo's own notes in the journal (mount point, restored marks, state) help a later
    run but are not needed for this one: on a disk that is still full, undo restores
    every descriptor anyway (each is read back) and says the notes were not kept."""
    try:
        write(*args, **kwargs)
    except JournalWriteFailed as exc:
        if not report.notes:
            report.notes.append(f"{exc}: its notes of what was restored were not updated")


def _restore(opened, item: JournalEntry, force: bool = False) -> str:
    """Write one journaled original back and read it back: "restored", "unchanged",
    "changed" (it carries neither the fix's bytes nor the original: someone changed it
    since; left alone unless ``force``) or the error."""
    try:
        with contextlib.closing(opened.open(item.path, item.entry, item.sequence)) as handle:
            current = handle.read()
            if current == item.original:
                return "unchanged"
            if current != item.replacement and not force:
                return "changed"
            handle.write(item.original)
            if handle.read() != item.original:
                return f"{item.path}: read back differs from the original"
    except RecordReused:
        return f"{item.path}: the file is no longer there (its MFT record holds another file): not restored"
    except OSError as exc:  # closing, the record written back, included
        return f"{item.path}: {exc.strerror}"
    return "restored"


def _noting(journal: Journal, report: UndoReport | None = None) -> Callable[[str | None, str | None], None]:
    """Tell the journal where the volume is mounted and through which loop device, so that
    undo can take both down should this process be killed (for undo itself: best effort)."""
    def note(mount_point: str | None, loop_device: str | None) -> None:
        if report is None:
            journal.set_meta(mount_point=mount_point, loop_device=loop_device)
        else:
            _bookkeeping(report, journal.set_meta, mount_point=mount_point, loop_device=loop_device)
    return note


def _release_interrupted_mounts(target: str, meta: dict[str, str]) -> None:
    """A fix killed while mounted leaves its ntfs-3g driver serving the volume (or, the
    driver killed too, a dead mount: "Transport endpoint is not connected"), its work
    folder and maybe its loop device: the ones the journal names, or (killed before
    they were noted) aclscan's own temporary mount points of this target. Anyone
    else's mount or loop device is left for the user."""
    ours = {meta["mount_point"]} if meta.get("mount_point") else set()
    ours |= {m for m in mounted_at(target) if Path(m).name == "mnt"
             and Path(m).parent.name.startswith(ntfs3g.MOUNT_PREFIX)}
    for mount_point in sorted(ours):
        if is_mounted(mount_point) and not ntfs3g.release_mount(mount_point):
            raise MountError(f"the interrupted fix's mount {mount_point} cannot be released: unmount it by hand")
        ntfs3g.remove_work_folder(Path(mount_point))
    loop, me = meta.get("loop_device"), Identity.of(target)
    if loop and me is not None and loop in loop_devices_of(me) and not holders(loop, processes=False).mounts:
        ntfs3g.detach_loop_device(loop)


__all__ = ["FixReport", "TargetMismatch", "TargetVolume", "UndoReport", "fix", "locate_target", "mounted_at",
           "undo"]
