"""Apply a plan to an image or device offline, through ntfs-3g; undo it from the journal.

The order of things is the safety argument:

1. The target must be the scanned volume: same serial number at the same offset,
   same number of MFT records, a writable raw image or device, not mounted.
2. A dry run (the default) reads nothing but the boot sector and $MFT size and
   says what would change.
3. With ``apply`` the volume is mounted with ntfs-3g (which keeps ``$Secure``
   consistent). Files are taken in batches: each file's *current* descriptor is
   read; if it is not the one the plan was made from (its hash), the file is left
   alone and reported. The originals of a batch are committed to the journal
   (fsynced) before any of them is replaced through ``system.ntfs_acl``. Only
   descriptors are written, never file contents.
4. The volume is unmounted (ntfs-3g flushes and exits) and re-scanned: the report
   says how many files still carry each SID the plan acted on.

``undo`` mounts the target again and writes back every journaled original whose
file no longer carries it, then reads each back to prove it byte for byte. A fix
killed with SIGKILL leaves its ntfs-3g driver serving the mount; undo takes that
mount down first (the journal names it).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from aclscan.errors import Error, MountError, TargetMismatch
from aclscan.findings import iter_findings
from aclscan.fix import ntfs3g
from aclscan.fix.journal import APPLIED, UNDONE, Journal, JournalEntry
from aclscan.image import Image
from aclscan.ntfs.mft import BootSector
from aclscan.plan import Plan, PlannedFile, iter_plan_files
from aclscan.store import utc_now

ORPHAN_FILES = "/$OrphanFiles/"  # records whose parent is gone: no path reaches them through ntfs-3g
BATCH = 256  # files per journal commit: one fsync per batch, not per file
# ntfs-3g answers one request at a time, but the FUSE round trips of several threads
# overlap: with 4 threads about twice the rate of one (8 gain little more on 2 cores).
IO_THREADS = 4


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
    problems_left: dict[str, int] = field(default_factory=dict)  # problem SID (any) -> files, after the fix

    @property
    def clean(self) -> bool:
        return self.applied and not self.errors and not self.changed_since_scan and not any(
            self.remaining.values()) and not self.problems_left


@dataclass
class UndoReport:
    target: str
    journal: str
    entries: int = 0
    restored: int = 0
    unchanged: int = 0  # already carried the original (never written, or undone before)
    errors: list[str] = field(default_factory=list)


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
    _check_plan_matches_scan(db, plan)
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
    mounts = mounted_at(path)
    if mounts:
        raise TargetMismatch(f"{path} is mounted at {', '.join(mounts)}: unmount it first")


def _check_plan_matches_scan(db, plan: Plan) -> None:
    # Clones share serial numbers; the scan's time tells two scans of them apart.
    scanned = {(v, s, t) for v, s, t in db.execute("SELECT id, serial, scanned_at FROM volumes")}
    planned = {(v["id"], v["serial"], v.get("scanned_at")) for v in plan.scan.get("volumes", ())}
    if planned and not planned <= scanned:
        raise TargetMismatch("the plan was made from another scan (volume serial or scan time differs)")


def _check_writable(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise TargetMismatch(f"cannot use {path}: {exc.strerror}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise TargetMismatch(f"{path} is neither an image file nor a block device")
    if not os.access(path, os.W_OK):
        raise TargetMismatch(f"{path} is not writable")


def mounted_at(path: str) -> list[str]:
    """Mount points where ``path`` (an image file or block device) is mounted: directly
    (ntfs-3g shows the image as the source), or through a loop device backed by it."""
    real = os.path.realpath(path)
    sources = {real}
    try:
        info = os.stat(real)
        device = info.st_rdev if stat.S_ISBLK(info.st_mode) else None
    except OSError:
        device = None
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if os.path.realpath(backing.read_text().strip()) == real:
                sources.add(f"/dev/{backing.parent.parent.name}")
        except OSError:
            continue
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if " - " not in line:
            continue
        after = line.split(" - ", 1)[1].split()
        source = _unescape(after[1]) if len(after) > 1 else ""
        major_minor = fields[2]
        if os.path.realpath(source) in sources or source in sources or (
                device is not None and major_minor == f"{os.major(device)}:{os.minor(device)}"):
            found.append(_unescape(fields[4]))
    return found


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit() and len(text[i + 1:i + 4]) == 3:
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# ------------------------------------------------------------------------ fix


def fix(db, plan: Plan, target: str | os.PathLike, *, apply: bool = False, journal_path: str | None = None,
        rescan_path: str | None = None, progress: Callable[[int, int], None] | None = None,
        on_journal: Callable[[str], None] | None = None) -> FixReport:
    """Dry run (default) or apply ``plan`` to ``target``; see the module notes.
    ``on_journal`` hears the journal's path before anything is written."""
    volume = locate_target(target, db, plan)
    changes = [c for c in plan.descriptors if c.volume_id == volume.volume_id]
    report = FixReport(target=volume.target, applied=apply, files_planned=sum(c.files for c in changes),
                       descriptors_planned=len(changes))
    if not apply or not changes:
        return report
    journal_path = journal_path or default_journal_path(volume.target)
    journal = Journal.create(journal_path, {
        "target": volume.target, "offset": volume.offset, "serial": volume.serial,
        "plan_sha256": hashlib.sha256(plan.to_json().encode()).hexdigest(),
        "scan_database": plan.scan.get("database"),
    })
    report.journal = str(journal.path)
    if on_journal:
        on_journal(report.journal)
    try:
        with ntfs3g.mounted(volume.target, offset=volume.offset) as mount_point:
            journal.set_meta(mount_point=mount_point)
            _apply(db, plan, volume, Path(mount_point), journal, report, progress)
        journal.set_meta(state=APPLIED, finished=utc_now())
    finally:
        journal.close()
    report.rescan = rescan_path or f"{journal_path}.after.db"
    _rescan(db, plan, volume, report)
    return report


def default_journal_path(target: str) -> str:
    """Beside an image file; in the working directory for a device."""
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    base = Path(target)
    if stat.S_ISREG(os.stat(target).st_mode):
        return str(base.with_name(f"{base.name}.aclscan-journal-{stamp}.db"))
    return f"aclscan-journal-{base.name}-{stamp}.db"


def _apply(db, plan: Plan, volume: TargetVolume, mount_point: Path, journal: Journal, report: FixReport,
           progress) -> None:
    done = 0
    with ThreadPoolExecutor(IO_THREADS) as pool:
        for chunk in _chunks(iter_plan_files(db, plan, volume_id=volume.volume_id), BATCH):
            batch = []
            for planned, on_mount, current, inode, error in pool.map(lambda p: _probe(mount_point, p), chunk):
                change = planned.change
                if error is not None:
                    report.errors.append(error)
                elif inode != planned.entry:
                    # ntfs-3g gives the MFT entry as the inode number: another file now has this path.
                    report.changed_since_scan.append(planned.path)
                elif current == change.new_raw:
                    report.already_fixed += 1
                elif hashlib.sha256(current).hexdigest() != change.old_sha256:
                    report.changed_since_scan.append(planned.path)
                else:
                    batch.append((planned, on_mount, current))
            if batch:
                _write_batch(batch, journal, report, pool)
            done += len(chunk)
            if progress:
                progress(done, report.files_planned)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _probe(mount_point: Path, planned: PlannedFile) -> tuple:
    """(planned, path on the mount, current descriptor, inode, error) of one file."""
    if planned.path.startswith(ORPHAN_FILES):
        return planned, None, None, None, f"{planned.path}: an orphaned record has no path on the volume: not fixed"
    on_mount = _mounted_path(mount_point, planned.path)
    try:
        current = ntfs3g.get_ntfs_acl(on_mount)
        inode = os.lstat(on_mount).st_ino
    except OSError as exc:
        return planned, on_mount, None, None, f"{planned.path}: cannot read its descriptor: {exc.strerror}"
    return planned, on_mount, current, inode, None


def _write_batch(batch: list[tuple], journal: Journal, report: FixReport, pool: ThreadPoolExecutor) -> None:
    # The originals are durable before the first of them is replaced.
    seqs = journal.record((p.volume_id, p.entry, p.path, current, p.change.new_raw, p.change.descriptor_key)
                          for p, _m, current in batch)

    def write(item):
        planned, on_mount, _current = item
        try:
            ntfs3g.set_ntfs_acl(on_mount, planned.change.new_raw)
        except OSError as exc:
            return f"{planned.path}: ntfs-3g refused the new descriptor: {exc.strerror}"
        return None

    written = []
    for seq, error in zip(seqs, pool.map(write, batch)):
        if error:
            report.errors.append(error)
        else:
            written.append(seq)
    journal.mark("written", written)
    report.written += len(written)


def _mounted_path(mount_point: Path, path: str) -> Path:
    return mount_point if path == "/" else mount_point / path.lstrip("/")


def _rescan(db, plan: Plan, volume: TargetVolume, report: FixReport) -> None:
    """Scan the fixed volume (descriptors only: the hives did not change) and count, per
    SID, the files that still carry it; verdicts come from the original scan."""
    from aclscan.scan import scan_image
    from aclscan.store import open_database

    if os.path.exists(report.rescan):
        os.unlink(report.rescan)
    scan_image(volume.target, report.rescan, offset=volume.offset, resolve=None)
    after = open_database(report.rescan)
    files_of = dict(after.execute("SELECT sid, files FROM sids WHERE volume_id = 1"))  # the one volume scanned
    acted = {a.sid for a in plan.actions if a.is_descriptor_action}
    report.remaining = {sid: files_of.get(sid, 0) for sid in sorted(acted)}
    for finding in iter_findings(db, problems_only=True):
        if files_of.get(finding["sid"]):
            report.problems_left[finding["sid"]] = files_of[finding["sid"]]
    after.conn.close()


# ----------------------------------------------------------------------- undo


def undo(journal_path: str | os.PathLike, *, progress: Callable[[int, int], None] | None = None) -> UndoReport:
    """Write back every journaled original; each is read back and compared byte for byte."""
    journal = Journal.open(journal_path)
    try:
        meta = journal.meta
        target, offset, serial = meta["target"], int(meta["offset"]), meta["serial"]
        report = UndoReport(target=target, journal=str(journal.path))
        _release_interrupted_mounts(target, meta)
        with Image(target) as image:
            found = f"{_boot_sector(image, target, offset).serial_number:016X}"
        if found != serial:
            raise TargetMismatch(f"{target} is not the journal's volume: serial {found}, the journal's is {serial}")
        _refuse_if_mounted(target)
        report.entries = journal.counts()["journaled"]
        with ntfs3g.mounted(target, offset=offset) as mount_point, ThreadPoolExecutor(IO_THREADS) as pool:
            journal.set_meta(mount_point=mount_point)
            done = 0
            for chunk in journal.chunks_newest_first(BATCH):
                restored = []
                for item, outcome in zip(chunk, pool.map(lambda e: _restore(Path(mount_point), e), chunk)):
                    if outcome == "restored":
                        report.restored += 1
                    elif outcome == "unchanged":
                        report.unchanged += 1
                    else:
                        report.errors.append(outcome)
                        continue
                    restored.append(item.seq)
                journal.mark("restored", restored)
                done += len(chunk)
                if progress:
                    progress(done, report.entries)
        if not report.errors:
            journal.set_meta(state=UNDONE, undone=utc_now())
        return report
    finally:
        journal.close()


def _restore(mount_point: Path, item: JournalEntry) -> str:
    """Write one journaled original back and read it back: "restored", "unchanged" or the error."""
    on_mount = _mounted_path(mount_point, item.path)
    try:
        if ntfs3g.get_ntfs_acl(on_mount) == item.original:
            return "unchanged"
        ntfs3g.set_ntfs_acl(on_mount, item.original)
        if ntfs3g.get_ntfs_acl(on_mount) != item.original:
            return f"{item.path}: read back differs from the original"
    except OSError as exc:
        return f"{item.path}: {exc.strerror}"
    return "restored"


def _release_interrupted_mounts(target: str, meta: dict[str, str]) -> None:
    """A fix killed while mounted leaves its ntfs-3g driver serving the volume: the mount
    the journal names, or (killed before it was noted) one of aclscan's own temporary
    mount points of this target. Anyone else's mount is left for the user."""
    ours = {meta["mount_point"]} if meta.get("mount_point") else set()
    ours |= {m for m in mounted_at(target) if Path(m).name == "mnt"
             and Path(m).parent.name.startswith(ntfs3g.MOUNT_PREFIX)}
    for mount_point in sorted(ours):
        if os.path.ismount(mount_point) and not ntfs3g.release_mount(mount_point):
            raise MountError(f"the interrupted fix's mount {mount_point} cannot be released: unmount it by hand")



__all__ = ["FixReport", "TargetMismatch", "TargetVolume", "UndoReport", "fix", "locate_target", "mounted_at",
           "undo"]
