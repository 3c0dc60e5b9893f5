"""The scan: every in-use MFT record of every NTFS volume of an image, the
security descriptor that applies to it, into one scan database.

Distinct before many: the per-record work is the columnar MFT pass
(:mod:`aclscan.ntfs.mft`); descriptors are parsed once per security id (or once
per distinct per-file descriptor), SIDs counted once per descriptor, and files
joined to descriptors by key.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from aclscan import __version__
from aclscan.errors import Error, ImageError, NotFound
from aclscan.disks import KINDS as VM_DISK_KINDS
from aclscan.image import ATTR_TYPE_SECURITY_DESCRIPTOR, Image, Volume, VolumeLocation
from aclscan.ntfs.mft import FILE_FILE_NAME_INDEX_PRESENT, BootSector, MftBatch, parse_mft_chunk
from aclscan.ntfs.names import NAMESPACE_DOS, DirectoryTree, decode_name, decode_names, join_path, primary_names
from aclscan.ntfs.sds import parse_sds
from aclscan import store
from aclscan.descriptor_rows import DescriptorInfo, describe

FILE_RECORD_COLUMNS = ("volume_id", "entry", "sequence", "parent_entry", "parent_sequence", "name", "is_dir",
                       "links", "security_id", "descriptor_key")
VOLUME_INFORMATION = 0x70
VOLUME_NAME = 0x60
MFT_ENTRY_VOLUME = 3
CHUNK_RECORDS = 16384

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScanProblem:
    """A bad item met during a scan: recorded in ``scan_errors``, never fatal."""

    kind: str  # 'record', 'descriptor', 'sds', 'volume'
    reason: str
    entry: int | None = None
    security_id: int | None = None


@dataclass
class VolumeResult:
    volume_id: int
    location: VolumeLocation
    files: int
    descriptors: int
    sids: int
    problems: list[ScanProblem] = field(default_factory=list)


@dataclass(frozen=True)
class ResolveInputs:
    """What to resolve SIDs against beyond the volume itself."""

    hive_files: dict[str, str] = field(default_factory=dict)  # "SAM" -> path; the volume's own otherwise
    domain_sources: tuple = ()  # AccountSource: domain exports, a live directory
    history: tuple[str, ...] = ()  # the master's SAM or earlier scan databases
    domain_files: tuple[str, ...] = ()  # the files domain_sources came from (noted for a re-scan)
    image_history: bool = True  # the volume's own RegBack and Windows.old SAMs serve as history too


@dataclass
class ScanResult:
    database: str
    volumes: list[VolumeResult]
    seconds: float
    findings: int = 0
    problem_findings: int = 0
    resolution_notes: tuple[str, ...] = ()
    resolution_problems: list[ScanProblem] = field(default_factory=list)
    places: int = 0
    sources_used: tuple[str, ...] = ()
    snapshot_notes: tuple[str, ...] = ()
    snapshot_problems: list[ScanProblem] = field(default_factory=list)

    @property
    def problems(self) -> list[ScanProblem]:
        return [p for v in self.volumes for p in v.problems] + self.snapshot_problems + self.resolution_problems

    @property
    def files(self) -> int:
        return sum(v.files for v in self.volumes)


def scan_image(
    image_path: str | os.PathLike,
    db_path: str | os.PathLike,
    *,
    partition: int | None = None,
    offset: int | None = None,
    progress: Progress | None = None,
    resolve: ResolveInputs | None = ResolveInputs(),
    snapshots: bool = False,
) -> ScanResult:
    """Scan every selected NTFS volume of an image into a new database at ``db_path``,
    then (unless ``resolve`` is None) give every distinct SID its verdict. With
    ``snapshots`` each shadow copy store of a volume is scanned too, as a volume state
    of its own beside the live one; without, the scan notes how many there are."""
    started = time.perf_counter()
    with Image(image_path) as image:
        locations = image.locate(partition=partition, offset=offset)
        # Open every volume before creating the database: a volume that cannot be
        # opened is a bad item when others can, and the error itself when none can.
        opened: list[tuple[VolumeLocation, Volume]] = []
        unopened: list[ScanProblem] = []
        for location in locations:
            try:
                opened.append((location, image.open_volume(location)))
            except ImageError as exc:
                if len(locations) == 1:
                    raise
                where = f"partition {location.partition} at offset {location.offset}"
                unopened.append(ScanProblem("volume", f"{where} skipped: {exc}"))
        db = store.new_database(db_path)
        store.fast_load_pragmas(db)
        results = []
        parents = {}  # volume id -> where its file rows were stored (place_scan.FileParents)
        stores = contextlib.ExitStack()  # shadow copy stores, open until the resolution has read them
        try:
            for volume_id, (location, volume) in enumerate(opened, start=1):
                # One transaction per volume; its file rows come through their own
                # connection first (the RowWriter), so this one holds no lock then.
                db.conn.commit()
                with db.conn:
                    volume_scan = _VolumeScan(image, location, volume, db, volume_id, progress)
                    results.append(volume_scan.run())
                parents[volume_id] = volume_scan.file_parents()
                del volume_scan
            with db.conn:
                _store_problems(db, None, unopened)
            states, snapshot_notes = _scan_snapshots(image, opened, db, progress, scan=snapshots, keep_open=stores)
            with db.conn:
                _store_problems(db, None, [p for _snap, p in states if isinstance(p, ScanProblem)])
            outcome = None
            if resolve is not None:
                with db.conn:
                    outcome = _resolve(db, [(i, v) for i, (_loc, v) in enumerate(opened, start=1)], resolve,
                                       snapshots=[(snap, v) for snap, v in states if not isinstance(v, ScanProblem)],
                                       parents=parents)
            store.create_indexes(db)
        finally:
            stores.close()
            db.conn.close()
    if unopened:
        results[0].problems[:0] = unopened
    result = ScanResult(os.fspath(db_path), results, time.perf_counter() - started)
    result.snapshot_notes = tuple(snapshot_notes)
    result.snapshot_problems = [p for _snap, p in states if isinstance(p, ScanProblem)]
    if outcome is not None:
        result.findings, result.problem_findings = outcome.findings, outcome.problem_findings
        result.resolution_notes, result.resolution_problems = outcome.notes, list(outcome.problems)
        result.places = outcome.places
        result.sources_used = outcome.used
    return result


def _scan_snapshots(image: Image, opened, db, progress, *, scan: bool, keep_open):
    """The shadow copy stores of every live volume: scanned as volume states of their own
    (``scan``), or only counted. Returns ([(Snapshot, Volume) or (Snapshot|None, ScanProblem)],
    notes). A damaged catalog or store is a bad item; the live volume stands. The stores
    stay open (``keep_open``, an ExitStack) for the resolution to read their SAMs."""
    from aclscan.snapshots import ShadowCopies, SnapshotError, has_catalog

    states, notes = [], []
    next_id = len(opened) + 1
    for location, _volume in opened:
        if not has_catalog(image, location):
            continue
        try:
            copies = ShadowCopies(image, location)
        except SnapshotError as exc:
            states.append((None, ScanProblem("snapshot", str(exc))))
            continue
        keep_open.enter_context(copies)
        if not scan:
            notes.append(f"the volume at offset {location.offset} has {len(copies.snapshots)} shadow copy "
                         "store(s): scan with --snapshots to read them as earlier states (and their SAMs "
                         "as history)")
            continue
        for snapshot in copies.snapshots:
            store = copies.image_of(snapshot)
            where = VolumeLocation(None, 0, store.size, snapshot.label)
            try:
                volume = Volume(store, where)
                db.conn.commit()
                with db.conn:
                    _VolumeScan(store, where, volume, db, next_id, progress, snapshot=snapshot).run()
                next_id += 1
                states.append((snapshot, volume))
            except Error as exc:
                states.append((snapshot, ScanProblem("snapshot", f"{snapshot.label}: {exc}")))
    return states, notes


def inconsistent_hives(hives, already: set[str]) -> list:
    """SECURITY's account domain SID should be SAM's machine SID: where it is not, a finding."""
    from aclscan.classify import HIGH, INCONSISTENT_HIVES, Verdict

    sam_sid = getattr(hives.sam, "machine_sid", None)
    lsa_sid = getattr(hives.security, "account_domain_sid", None)
    if not sam_sid or not lsa_sid or sam_sid == lsa_sid:
        return []
    evidence = (f"SECURITY PolAcDmS ({hives.origins.get('SECURITY')}) is {lsa_sid}",
                f"SAM ({hives.origins.get('SAM')}) has machine SID {sam_sid}: the hives are not of one machine, "
                "or one was restored from before a SID change")
    return [Verdict(lsa_sid, INCONSISTENT_HIVES, HIGH, evidence=evidence)] if lsa_sid not in already else []


@dataclass(frozen=True)
class ResolveOutcome:
    findings: int
    problem_findings: int
    notes: tuple[str, ...]
    problems: tuple[ScanProblem, ...]  # unreadable hives and places: the scan is partial
    places: int = 0
    used: tuple[str, ...] = ()  # what the verdicts rest on, one line each, for the summary


def _resolve(db, volumes: list[tuple[int, Volume]], inputs: ResolveInputs, snapshots=(),
             parents=None) -> ResolveOutcome:
    """Verdicts for every SID on the volumes, in the machine's hives and its other places."""
    from aclscan.findings import file_sids, store_resolution
    from aclscan.place_scan import place_problem_text, scan_places
    from aclscan.resolve import (CONFIG_DIR, HistorySource, HiveSet, build_resolution, hives_from_files,
                                 hives_from_volume, history_on_volume)

    raw = hives_from_files(inputs.hive_files)
    system_volume = volumes[0] if volumes else (None, None)
    for volume_id, volume in volumes:  # the machine's hives: from the first volume that has them
        if len(raw) == 4:
            break
        found = hives_from_volume(volume)
        if found and not any(files.label.startswith("volume") for files in raw.values()):
            system_volume = (volume_id, volume)
        for name, each in found.items():
            raw.setdefault(name, each)
    hives = HiveSet.parse(raw, strict=frozenset(n for n, p in inputs.hive_files.items() if p))
    history = [HistorySource.from_file(path) for path in inputs.history]
    problems = [ScanProblem("hive", f"{name} hive {why}: the accounts it holds could not be judged")
                for name, why in sorted(hives.unreadable.items())]
    volume_id, volume = system_volume
    if volume is not None and inputs.image_history:  # what the image remembers of itself: RegBack, Windows.old
        machine_sid = getattr(hives.sam, "machine_sid", None)
        kept, unreadable = history_on_volume(volume, machine_sid)
        for snapshot, state in snapshots:  # the SAM each shadow copy kept
            found, lines = history_on_volume(state, machine_sid, paths=(f"{CONFIG_DIR}/SAM",),
                                             label=f"SAM in {snapshot.label}")
            kept += found
            unreadable += lines
        given = {h.machine_sid for h in history}
        for source in kept:
            if source.machine_sid not in given:
                history.append(source)
                given.add(source.machine_sid)
        problems += [ScanProblem("history", line) for line in unreadable]
    resolution = build_resolution(hives, domain_sources=list(inputs.domain_sources), history=history)
    places = None
    if volume_id is not None:
        places = scan_places(db, volume_id, volume, hives, resolution.sid_of_name,
                             (parents or {}).get(volume_id))
        problems += [ScanProblem("hive", text) for text in places.hive_problems]
        problems += [ScanProblem("place", place_problem_text(p)) for p in places.problems]
    sids = set(file_sids(db)) | {ref.sid for ref in resolution.references} | (places.sids if places else set())
    verdicts = resolution.classifier.classify_all(sorted(sids))
    verdicts += inconsistent_hives(hives, {v.sid for v in verdicts})
    store_resolution(db, resolution, verdicts, place_counts=places.place_counts if places else {})
    _store_problems(db, volume_id, problems)
    from aclscan.scan_inputs import record

    record(db, inputs)  # so that the re-scan after a fix resolves alike
    return ResolveOutcome(len(verdicts), sum(v.is_problem for v in verdicts), tuple(resolution.notes),
                          tuple(problems), places.places if places else 0,
                          _sources_used(hives, inputs, places, history))


def _sources_used(hives, inputs: ResolveInputs, places, history) -> tuple[str, ...]:
    """What the verdicts rest on, for the scan's summary: a person must see at once
    when they rest on little (no hives at all)."""
    lines = []
    machine = ("SAM", "SECURITY", "SYSTEM", "SOFTWARE")
    found = [f"{name} ({hives.origins[name]})" for name in machine if name in hives.origins]
    missing = [name for name in machine if name not in hives.origins]
    lines.append("hives: " + (", ".join(found) if found else "none"))
    if missing:
        lines.append("missing hives: " + ", ".join(missing))
    if places is not None and places.hives:
        lines.append(f"registry and other places: {places.places:,} place(s) in {places.hives} hive(s)")
    used = list(inputs.history) + [h.name for h in history if h.name not in {f"history {os.path.basename(p)}"
                                                                              for p in inputs.history}]
    lines.append("history: " + (", ".join(used) if used else "none (--history FILE: the master's SAM or an "
                                                             "earlier scan)"))
    if inputs.domain_sources:
        lines.append("domain: " + ", ".join(getattr(s, "name", type(s).__name__) for s in inputs.domain_sources))
    if not found:
        lines.append("warning: no registry hive was found or given: verdicts rest on the well-known catalogue "
                     "alone, and local accounts cannot be told from deleted ones (give --sam/--system/...)")
    return tuple(lines)


def _store_problems(db, volume_id: int | None, problems: list[ScanProblem]) -> None:
    store.bulk_insert(
        db,
        "scan_errors",
        ("volume_id", "kind", "entry", "security_id", "reason"),
        ((volume_id, p.kind, p.entry, p.security_id, p.reason) for p in problems),
    )


@dataclass(frozen=True)
class FileRows:
    """One chunk's file rows as columns: cheap to hand to the row writer process,
    which builds the rows' values there (see store.RowWriter)."""

    volume_id: int
    entry: np.ndarray
    sequence: np.ndarray
    parent: np.ndarray  # -1: no name
    parent_sequence: np.ndarray
    name_start: np.ndarray  # UTF-16 code units into name_blob, -1: no name
    name_end: np.ndarray
    name_blob: bytes
    is_dir: np.ndarray
    links: np.ndarray
    security_id: np.ndarray  # 0: none
    descriptor_key: np.ndarray  # -1: none

    def __len__(self) -> int:
        return len(self.entry)

    def names(self, rows: np.ndarray | None = None) -> list[str | None]:
        starts = (self.name_start if rows is None else self.name_start[rows]).tolist()
        ends = (self.name_end if rows is None else self.name_end[rows]).tolist()
        return decode_names(self.name_blob, starts, ends)

    def flat_values(self) -> list:
        """Every row's values in FILE_RECORD_COLUMNS order, row after row, with None
        for the -1/0 that mean "none" (see store.insert_flat)."""
        columns = (
            [self.volume_id] * len(self.entry),
            self.entry.tolist(),
            self.sequence.tolist(),
            _none_where(self.parent, self.parent < 0),
            self.parent_sequence.tolist(),
            self.names(),
            self.is_dir.tolist(),
            self.links.tolist(),
            _none_where(self.security_id, self.security_id == 0),
            _none_where(self.descriptor_key, self.descriptor_key < 0),
        )
        width = len(columns)
        values: list = [None] * (len(self.entry) * width)
        for position, column in enumerate(columns):
            values[position::width] = column
        return values


def _none_where(column: np.ndarray, missing: np.ndarray) -> list:
    """``column`` as Python values, None where ``missing`` (few rows: set one by one)."""
    values = column.tolist()
    for row in np.flatnonzero(missing).tolist():
        values[row] = None
    return values


class _VolumeScan:
    """One volume: the MFT pass streams file rows to the database as it goes;
    what needs the whole volume (directory paths, files whose names sit in
    extension records, descriptor counts) is finished at the end."""

    def __init__(self, image: Image, location: VolumeLocation, volume: Volume, db, volume_id: int,
                 progress: Progress | None, snapshot=None):
        self.image, self.location, self.volume, self.db = image, location, volume, db
        self.snapshot = snapshot  # a shadow copy store (aclscan.snapshots.Snapshot), or None: the live volume
        self.database_path = db.execute("PRAGMA database_list").fetchone()[2]
        self.volume_id = volume_id
        self.progress = progress
        self.problems: list[ScanProblem] = []
        self.infos: list[DescriptorInfo] = []  # descriptors this state stores
        # A shadow copy state shares every descriptor an earlier state of the scan stored
        # with the same bytes (and source): its files point at that row, and only bytes
        # no earlier state had are stored (README, "Shadow copies").
        self.shared_keys = _stored_file_descriptors(db) if snapshot else {}
        self.reused: list[DescriptorInfo] = []  # descriptors this state uses from earlier states
        self.next_key = _next_descriptor_key(db)
        self.key_of_security_id: dict[int, int] = {}
        self.key_of_bytes: dict[bytes, int] = {}
        self.files_per_key: dict[int, int] = {}
        self.files = 0
        # Every in-use record (for the extension record checks at the end).
        self.record_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        # Directories (entry, sequence, parent, parent sequence, name), for paths.
        self.directories: list[tuple[int, int, int, int, str | None]] = []
        # Hard links: (entry, parent, parent sequence, name, name space).
        self.links: list[tuple[int, int, int, str, int]] = []
        # Files with an $ATTRIBUTE_LIST, finished once every extension record is read:
        # (entry, sequence, is_dir, security_id, key via security id or -1).
        self.deferred: list[tuple[int, int, bool, int, int]] = []
        self.deferred_names: list[tuple[int, int, int, int, str]] = []
        self.deferred_descriptor: dict[int, int] = {}
        # Per stored file row, in order: (parent, parent sequence, named file); the rowid
        # and the entries of the first and last (see place_scan.FileParents).
        self.parent_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.first_rowid = 0
        self.first_entry: int | None = None
        self.last_entry: int | None = None

    def run(self) -> VolumeResult:
        started = time.perf_counter()
        boot = BootSector.from_bytes(self.volume.boot_sector())
        self._load_sds()
        self.first_rowid = store.next_rowid(self.db, "file_records")
        writer = store.RowWriter(self.database_path, "file_records", FILE_RECORD_COLUMNS)
        try:
            records_total = self._walk_mft(boot, writer)
        finally:
            writer.close()
        self._finish_deferred()
        self._store_directories_and_links()
        self._check_extensions()
        sid_count = _store_descriptors(self.db, self.volume_id, self.infos, self.files_per_key, self.reused)
        _store_problems(self.db, self.volume_id, self.problems)
        version, label = _volume_information(self.volume)
        self.db["volumes"].insert(
            {
                "id": self.volume_id,
                "image": os.path.abspath(self.image.path),
                "image_kind": self.image.kind,
                "partition": self.location.partition,
                "offset": self.location.offset,
                "ntfs_version": version,
                "serial": f"{boot.serial_number:016X}",
                "label": label,
                "cluster_size": boot.cluster_size,
                "record_size": boot.mft_record_size,
                "mft_records": records_total,
                "records_in_use": sum(len(part[0]) for part in self.record_parts),
                "files": self.files,
                "sds_entries": len(self.key_of_security_id),
                "scanned_at": store.utc_now(),
                "aclscan_version": __version__,
                "duration_seconds": round(time.perf_counter() - started, 3),
                "snapshot": self.snapshot.identifier if self.snapshot else None,
                # a differencing VM disk's chain (aclscan.disks: the disk, then its parents)
                "parent_disks": json.dumps([os.path.abspath(p) for p in self.image.segments[1:]])
                if getattr(self.image, "kind", None) in VM_DISK_KINDS else None,
                "snapshot_created": self.snapshot.created if self.snapshot else None,
            }
        )
        return VolumeResult(self.volume_id, self.location, self.files, len(self.infos), sid_count, self.problems)

    # --- descriptors: once per distinct item ------------------------------------------

    def _load_sds(self) -> None:
        try:
            entries, sds_problems = parse_sds(self.volume.read_sds())
        except NotFound:
            entries, sds_problems = {}, []  # NTFS 1.x: no $Secure
        except ImageError as exc:
            entries, sds_problems = {}, []
            self.problems.append(ScanProblem("sds", f"$Secure:$SDS unreadable: {exc}"))
        self.problems += [ScanProblem("sds", p.reason, security_id=p.security_id) for p in sds_problems]
        for security_id in sorted(entries):
            entry = entries[security_id]
            info = self._describe(entry.descriptor, security_id=security_id, source="sds", hash_ok=entry.hash_ok)
            self.key_of_security_id[security_id] = info.key
        ids = sorted(self.key_of_security_id)
        self._sds_ids = np.array(ids, dtype=np.int64)
        self._sds_keys = np.array([self.key_of_security_id[i] for i in ids], dtype=np.int64)

    def _describe(self, raw: bytes, *, security_id: int | None, source: str, hash_ok: bool | None,
                  entry: int | None = None) -> DescriptorInfo:
        shared = self.shared_keys.get((source, raw))
        info = describe(self.next_key if shared is None else shared, raw, security_id=security_id, source=source,
                        hash_ok=hash_ok)
        if info.error:
            self.problems.append(ScanProblem("descriptor", info.error, entry=entry, security_id=security_id))
        if shared is None:
            self.next_key += 1
            self.infos.append(info)
        else:
            self.reused.append(info)
        return info

    def _own_descriptor_key(self, owner: int, raw: bytes | None) -> int | None:
        """The key of a record's own $SECURITY_DESCRIPTOR, de-duplicated by bytes."""
        if raw is None:  # non-resident: the careful path reads it through the image layer
            try:
                raw = self.volume.read_attribute(owner, ATTR_TYPE_SECURITY_DESCRIPTOR)
            except Error as exc:
                self.problems.append(ScanProblem("descriptor", f"$SECURITY_DESCRIPTOR unreadable: {exc}", entry=owner))
                return None
        key = self.key_of_bytes.get(raw)
        if key is None:
            key = self._describe(raw, security_id=None, source="attribute", hash_ok=None, entry=owner).key
            self.key_of_bytes[raw] = key
        return key

    def _keys_of_security_ids(self, security_id: np.ndarray) -> np.ndarray:
        """Descriptor key per security id (vectorised), -1 where $SDS lacks it."""
        if not len(self._sds_ids):
            return np.full(len(security_id), -1, dtype=np.int64)
        where = np.minimum(np.searchsorted(self._sds_ids, security_id), len(self._sds_ids) - 1)
        found = (self._sds_ids[where] == security_id) & (security_id != 0)
        return np.where(found, self._sds_keys[where], -1)

    # --- the MFT pass ---------------------------------------------------------------

    def _walk_mft(self, boot: BootSector, writer: store.RowWriter) -> int:
        record_size = boot.mft_record_size
        total = self.volume.mft_size() // record_size
        done = 0
        for start, data, bad_ranges in self.volume.iter_mft(CHUNK_RECORDS * record_size, piece_size=record_size):
            for low, high in bad_ranges:
                self.problems.append(ScanProblem(
                    "record",
                    f"MFT records {low // record_size}..{high // record_size - 1} unreadable"
                    " (truncated image or read error)",
                    entry=low // record_size,
                ))
            batch = parse_mft_chunk(data, start // record_size, record_size)
            del data
            writer.put(self._file_rows_of(batch))
            done += batch.records_seen
            if self.progress:
                self.progress(done, total)
        return total

    def _file_rows_of(self, batch: MftBatch) -> "FileRows":
        """File rows of one chunk's base records; the rest is kept for the end."""
        self.problems += [ScanProblem("record", reason, entry=entry) for entry, reason in batch.problems]
        count = len(batch.entry)
        self.record_parts.append((batch.entry, batch.sequence, batch.base_entry, batch.base_sequence))
        is_base = batch.base_entry < 0
        simple = is_base & ~batch.has_attribute_list
        is_dir = (batch.flags & FILE_FILE_NAME_INDEX_PRESENT) != 0

        own_key = np.full(count, -1, dtype=np.int64)
        for owner, raw in batch.descriptors:
            key = self._own_descriptor_key(owner, raw)
            if key is None:
                continue
            row = int(np.searchsorted(batch.entry, owner))
            if row < count and batch.entry[row] == owner and simple[row]:
                own_key[row] = key
            else:
                self.deferred_descriptor[owner] = key

        security_id = batch.security_id.astype(np.int64)
        sds_key = self._keys_of_security_ids(security_id)
        for row in np.nonzero(is_base & (security_id != 0) & (sds_key < 0))[0].tolist():
            self.problems.append(ScanProblem(
                "record", f"security id {int(security_id[row])} not in $SDS",
                entry=int(batch.entry[row]), security_id=int(security_id[row])))
        # $Secure by security id (NTFS 3.x), else the record's own descriptor (NTFS 1.x,
        # and the records Windows still writes that way). A record with neither keeps
        # descriptor_key NULL: Windows writes a few system files so.
        key = np.where(sds_key >= 0, sds_key, own_key)
        shown_security_id = np.where((sds_key >= 0) | (own_key < 0), security_id, 0)

        # Names of the simple records; names in extension records or of files with an
        # attribute list wait for the end.
        in_simple = simple[batch.name_record]
        local = np.nonzero(in_simple)[0]
        primary, links = primary_names(batch.name_record[local], batch.name_namespace[local], count)
        primary = np.where(primary >= 0, local[np.maximum(primary, 0)], -1)
        def name_of(index: int) -> str:
            start = int(batch.name_start[index])
            return decode_name(batch.name_blob[start : start + int(batch.name_length[index])])

        rows_index = np.nonzero(simple)[0]
        chosen = primary[rows_index]
        has_name = chosen >= 0
        safe = np.maximum(chosen, 0)
        file_keys = key[rows_index]
        rows = FileRows(
            volume_id=self.volume_id,
            entry=batch.entry[rows_index],
            sequence=batch.sequence[rows_index],
            parent=np.where(has_name, batch.name_parent[safe], -1),
            # Narrow types where the values allow: every batch is pickled to the row writer.
            parent_sequence=np.where(has_name, batch.name_parent_sequence[safe], 0).astype(np.uint16),
            name_start=np.where(has_name, batch.name_start[safe] // 2, -1).astype(np.int32),
            name_end=np.where(has_name, (batch.name_start[safe] + batch.name_length[safe]) // 2, -1).astype(np.int32),
            name_blob=batch.name_blob,
            is_dir=is_dir[rows_index].astype(np.int8),
            links=links[rows_index].astype(np.uint16),
            security_id=shown_security_id[rows_index].astype(np.uint32),
            descriptor_key=file_keys,
        )
        self.files += len(rows_index)
        self._track_parents(rows.entry, rows.parent, rows.parent_sequence, has_name & (rows.is_dir == 0))
        counted = file_keys[file_keys >= 0]
        if len(counted):
            keys, counts = np.unique(counted, return_counts=True)
            for k, c in zip(keys.tolist(), counts.tolist()):
                self.files_per_key[k] = self.files_per_key.get(k, 0) + c

        dirs = np.nonzero(rows.is_dir)[0]
        if len(dirs):
            dir_names = rows.names(dirs)
            self.directories += zip(rows.entry[dirs].tolist(), rows.sequence[dirs].tolist(),
                                    rows.parent[dirs].tolist(), rows.parent_sequence[dirs].tolist(), dir_names)
        linked = set(np.nonzero(simple & (links > 1))[0].tolist())
        if linked:
            for index in local.tolist():
                record = int(batch.name_record[index])
                if record in linked and batch.name_namespace[index] != NAMESPACE_DOS:
                    self.links.append((int(batch.entry[record]), int(batch.name_parent[index]),
                                       int(batch.name_parent_sequence[index]), name_of(index),
                                       int(batch.name_namespace[index])))

        for row in np.nonzero(is_base & batch.has_attribute_list)[0].tolist():
            self.deferred.append((int(batch.entry[row]), int(batch.sequence[row]), bool(is_dir[row]),
                                  int(shown_security_id[row]), int(sds_key[row])))
        for index in np.nonzero(~in_simple)[0].tolist():
            self.deferred_names.append((int(batch.name_owner[index]), int(batch.name_parent[index]),
                                        int(batch.name_parent_sequence[index]), int(batch.name_namespace[index]),
                                        name_of(index)))
        return rows

    # --- what needs the whole volume -----------------------------------------------

    def _finish_deferred(self) -> None:
        """Files whose attributes spread over extension records, now that all are read."""
        if not self.deferred:
            return
        wanted = {entry for entry, *_ in self.deferred}
        names_of: dict[int, list[tuple[int, int, int, str]]] = {}
        for owner, parent, parent_sequence, namespace, name in self.deferred_names:
            if owner in wanted:
                names_of.setdefault(owner, []).append((namespace, parent, parent_sequence, name))
        rows = []
        for entry, sequence, is_dir, security_id, sds_key in self.deferred:
            names = names_of.get(entry, [])
            primary, links = primary_names(np.zeros(len(names), dtype=np.int64),
                                           np.array([n[0] for n in names], dtype=np.uint8), 1)
            own = self.deferred_descriptor.get(entry, -1)
            key = sds_key if sds_key >= 0 else own
            if own >= 0 and sds_key < 0:
                security_id = 0
            if primary[0] >= 0:
                _namespace, parent, parent_sequence, name = names[int(primary[0])]
            else:
                parent, parent_sequence, name = -1, 0, None
            rows.append((self.volume_id, entry, sequence, parent if parent >= 0 else None, parent_sequence, name,
                         int(is_dir), int(links[0]), security_id or None, key if key >= 0 else None))
            if key >= 0:
                self.files_per_key[key] = self.files_per_key.get(key, 0) + 1
            if is_dir:
                self.directories.append((entry, sequence, parent, parent_sequence, name))
            if links[0] > 1:
                self.links += [(entry, p, ps, n, ns) for ns, p, ps, n in names if ns != NAMESPACE_DOS]
        self.files += len(rows)
        store.bulk_insert(self.db, "file_records", FILE_RECORD_COLUMNS, rows)
        if rows:
            _volume, entries, _sequences, parents, parent_sequences, names, dirs, *_rest = zip(*rows)
            self._track_parents(np.array(entries, dtype=np.int64),
                                np.array([-1 if p is None else p for p in parents], dtype=np.int64),
                                np.array(parent_sequences, dtype=np.int64),
                                np.array([n is not None and not d for n, d in zip(names, dirs)], dtype=bool))

    def _track_parents(self, entry: np.ndarray, parent: np.ndarray, parent_sequence: np.ndarray,
                       named_file: np.ndarray) -> None:
        """Note the parents of file rows as they are stored, in the order they are stored."""
        if not len(entry):
            return
        self.parent_parts.append((parent, parent_sequence.astype(np.uint16, copy=False), named_file))
        if self.first_entry is None:
            self.first_entry = int(entry[0])
        self.last_entry = int(entry[-1])

    def file_parents(self) -> "FileParents | None":
        """Where the scan stored each file row, for place_scan.files_in (None: no rows)."""
        from aclscan.place_scan import FileParents

        if not self.parent_parts:
            return None
        return FileParents(self.first_rowid, np.concatenate([p[0] for p in self.parent_parts]),
                           np.concatenate([p[1] for p in self.parent_parts]),
                           np.concatenate([p[2] for p in self.parent_parts]),
                           first_entry=self.first_entry, last_entry=self.last_entry)

    def _store_directories_and_links(self) -> None:
        columns = list(zip(*self.directories)) if self.directories else [[]] * 5
        tree = DirectoryTree(*columns)
        store.bulk_insert(self.db, "directories", ("volume_id", "entry", "sequence", "path"),
                          ((self.volume_id, entry, sequence, path) for entry, sequence, path in tree.items()))
        store.bulk_insert(
            self.db, "links", ("volume_id", "entry", "parent_entry", "name", "path", "namespace"),
            ((self.volume_id, entry, parent, name, join_path(tree.parent_path(parent, parent_sequence), name, entry),
              namespace) for entry, parent, parent_sequence, name, namespace in self.links),
        )

    def _check_extensions(self) -> None:
        """Extension records must point at an in-use base record of the same sequence."""
        entry = np.concatenate([p[0] for p in self.record_parts]) if self.record_parts else np.zeros(0, np.int64)
        sequence = np.concatenate([p[1] for p in self.record_parts]) if self.record_parts else entry
        base = np.concatenate([p[2] for p in self.record_parts]) if self.record_parts else entry
        base_sequence = np.concatenate([p[3] for p in self.record_parts]) if self.record_parts else entry
        extension = np.nonzero(base >= 0)[0]
        if not len(extension):
            return
        where = np.minimum(np.searchsorted(entry, base[extension]), len(entry) - 1)
        sound = (entry[where] == base[extension]) & (base[where] < 0) & (sequence[where] == base_sequence[extension])
        for row in extension[~sound].tolist():
            self.problems.append(ScanProblem(
                "record", f"extension record of base {int(base[row])}, which is not an in-use base record"
                          " of that sequence", entry=int(entry[row])))


def _volume_information(volume: Volume) -> tuple[str | None, str | None]:
    """(NTFS version "3.1", volume label) from `$Volume`."""
    version = label = None
    try:
        info = volume.read_attribute(MFT_ENTRY_VOLUME, VOLUME_INFORMATION)
        if len(info) >= 10:
            version = f"{info[8]}.{info[9]}"
    except Error:
        pass
    try:
        label = volume.read_attribute(MFT_ENTRY_VOLUME, VOLUME_NAME).decode("utf-16-le", "replace")
    except Error:
        pass
    return version, label


def _stored_file_descriptors(db) -> dict[tuple[str, bytes], int]:
    """(source, bytes) -> key of every file descriptor the scan has stored so far."""
    return {(source, raw): key for key, source, raw in db.execute(
        f"SELECT key, source, raw FROM descriptors WHERE source IN {store.FILE_SOURCES} AND raw IS NOT NULL "
        "ORDER BY key DESC")}


def _next_descriptor_key(db) -> int:
    row = db.execute("SELECT COALESCE(MAX(key), 0) + 1 FROM descriptors").fetchone()
    return int(row[0])


def store_descriptor_rows(db, volume_id: int, infos: list[DescriptorInfo], uses: dict[int, int]) -> None:
    """Distinct descriptors and their ACEs. ``uses``: descriptor key -> files (for a
    file descriptor) or places (for a registry or task descriptor) using it."""
    store.bulk_insert(
        db,
        "descriptors",
        ("key", "volume_id", "security_id", "source", "sddl", "raw", "owner", "group", "control", "files",
         "hash_ok", "error"),
        (
            (i.key, volume_id, i.security_id, i.source, i.sddl, i.raw, i.owner, i.group, i.control,
             uses.get(i.key, 0), None if i.hash_ok is None else int(i.hash_ok), i.error)
            for i in infos
        ),
    )
    store.bulk_insert(
        db,
        "aces",
        ("descriptor_key", "acl", "position", "type", "type_code", "flags", "mask", "sid", "inherited",
         "object_type", "inherited_object_type", "sddl"),
        (row for i in infos for row in i.ace_rows),
    )


def _store_descriptors(db, volume_id: int, infos: list[DescriptorInfo], files_per_key: dict[int, int],
                       reused: list[DescriptorInfo] = ()) -> int:
    """Write descriptors, their ACEs and the per-SID counts of this volume state (over the
    descriptors it stores and those it ``reused`` from an earlier state); returns the number
    of SIDs."""
    store_descriptor_rows(db, volume_id, infos, files_per_key)
    counts: dict[str, list[int]] = {}
    for info in [*infos, *reused]:
        files = files_per_key.get(info.key, 0)
        for sid, roles in info.sid_roles.items():
            row = counts.setdefault(sid, [0, 0, 0, 0, 0, 0])
            row[0] += 1
            row[1] += files
            for index, role in enumerate(("owner", "group", "dacl", "sacl"), start=2):
                if role in roles:
                    row[index] += files
    store.bulk_insert(
        db,
        "sids",
        ("volume_id", "sid", "descriptors", "files", "as_owner", "as_group", "in_dacl", "in_sacl"),
        ((volume_id, sid, *row) for sid, row in sorted(counts.items())),
    )
    return len(counts)
