"""The scan: every in-use MFT record of every NTFS volume of an image, the
security descriptor that applies to it, into one scan database.

Distinct before many: the per-record work is the columnar MFT pass
(:mod:`aclscan.ntfs.mft`); descriptors are parsed once per security id (or once
per distinct per-file descriptor), SIDs counted once per descriptor, and files
joined to descriptors by key.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from aclscan import __version__
from aclscan.errors import Error, ImageError, NotFound
from aclscan.image import ATTR_TYPE_SECURITY_DESCRIPTOR, Image, Volume, VolumeLocation
from aclscan.ntfs.mft import FILE_FILE_NAME_INDEX_PRESENT, NAMESPACE_DOS, BootSector, MftBatch, parse_mft_chunk
from aclscan.ntfs.sds import parse_sds
from aclscan import store
from aclscan.descriptor_rows import DescriptorInfo, describe

ROOT_ENTRY = 5
ORPHAN_PREFIX = "/$OrphanFiles/"
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


@dataclass
class ScanResult:
    database: str
    volumes: list[VolumeResult]
    seconds: float

    @property
    def problems(self) -> list[ScanProblem]:
        return [p for v in self.volumes for p in v.problems]

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
) -> ScanResult:
    """Scan every selected NTFS volume of an image into a new database at ``db_path``."""
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
        try:
            with db.conn:
                for volume_id, (location, volume) in enumerate(opened, start=1):
                    results.append(_scan_volume(image, location, volume, db, volume_id, progress))
                _store_problems(db, None, unopened)
            store.create_indexes(db)
        finally:
            db.conn.close()
    if unopened:
        results[0].problems[:0] = unopened
    return ScanResult(os.fspath(db_path), results, time.perf_counter() - started)


def _store_problems(db, volume_id: int | None, problems: list[ScanProblem]) -> None:
    store.bulk_insert(
        db,
        "scan_errors",
        ("volume_id", "kind", "entry", "security_id", "reason"),
        ((volume_id, p.kind, p.entry, p.security_id, p.reason) for p in problems),
    )


@dataclass
class _Columns:
    """The MFT columns of a whole volume, concatenated from its batches."""

    entry: np.ndarray
    sequence: np.ndarray
    flags: np.ndarray
    base_entry: np.ndarray
    security_id: np.ndarray
    name_owner: np.ndarray
    name_parent: np.ndarray
    name_parent_sequence: np.ndarray
    name_namespace: np.ndarray
    name_start: np.ndarray
    name_length: np.ndarray
    names: str  # every name, decoded once; a name is names[start // 2:(start + length) // 2]
    descriptors: list[tuple[int, bytes | None]]
    problems: list[tuple[int, str]]
    records_total: int


def _read_mft(volume: Volume, boot: BootSector, progress: Progress | None) -> _Columns:
    record_size = boot.mft_record_size
    total = volume.mft_size() // record_size
    batches: list[MftBatch] = []
    blob_parts: list[bytes] = []
    blob_offset = 0
    done = 0
    unreadable: list[tuple[int, str]] = []
    for start, data, bad_ranges in volume.iter_mft(CHUNK_RECORDS * record_size, piece_size=record_size):
        for low, high in bad_ranges:
            unreadable.append((low // record_size, f"MFT records {low // record_size}..{high // record_size - 1}"
                               " unreadable (truncated image or read error)"))
        batch = parse_mft_chunk(data, start // record_size, record_size)
        batch.name_start = batch.name_start + blob_offset
        blob_offset += len(batch.name_blob)
        blob_parts.append(batch.name_blob)
        batch.name_blob = b""
        batches.append(batch)
        done += batch.records_seen
        if progress:
            progress(done, total)

    def cat(attribute: str, dtype) -> np.ndarray:
        parts = [getattr(b, attribute) for b in batches]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)

    return _Columns(
        entry=cat("entry", np.int64),
        sequence=cat("sequence", np.uint16),
        flags=cat("flags", np.uint16),
        base_entry=cat("base_entry", np.int64),
        security_id=cat("security_id", np.uint32),
        name_owner=cat("name_owner", np.int64),
        name_parent=cat("name_parent", np.int64),
        name_parent_sequence=cat("name_parent_sequence", np.uint16),
        name_namespace=cat("name_namespace", np.uint8),
        name_start=cat("name_start", np.int64),
        name_length=cat("name_length", np.int64),
        names=b"".join(blob_parts).decode("utf-16-le", "surrogatepass"),
        descriptors=[d for b in batches for d in b.descriptors],
        problems=unreadable + [p for b in batches for p in b.problems],
        records_total=total,
    )


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


# Preferred $FILE_NAME name space for a file's primary name: Win32 (and the
# Win32+DOS pair), then POSIX, then the DOS 8.3 alias.
_NAMESPACE_RANK = np.array([1, 0, 2, 0], dtype=np.int8)


def _scan_volume(
    image: Image, location: VolumeLocation, volume: Volume, db, volume_id: int, progress: Progress | None
) -> VolumeResult:
    started = time.perf_counter()
    problems: list[ScanProblem] = []
    boot = BootSector.from_bytes(volume.boot_sector())
    columns = _read_mft(volume, boot, progress)
    problems += [ScanProblem("record", reason, entry=entry) for entry, reason in columns.problems]

    # --- security descriptors, once per distinct item -------------------------------
    try:
        sds_entries, sds_problems = parse_sds(volume.read_sds())
    except NotFound:
        sds_entries, sds_problems = {}, []  # NTFS 1.x: no $Secure
    except ImageError as exc:
        sds_entries, sds_problems = {}, []
        problems.append(ScanProblem("sds", f"$Secure:$SDS unreadable: {exc}"))
    problems += [ScanProblem("sds", p.reason, security_id=p.security_id) for p in sds_problems]

    infos: list[DescriptorInfo] = []
    key_of_security_id: dict[int, int] = {}
    next_key = _next_descriptor_key(db)
    for security_id in sorted(sds_entries):
        entry = sds_entries[security_id]
        info = describe(next_key, entry.descriptor, security_id=security_id, source="sds", hash_ok=entry.hash_ok)
        if info.error:
            problems.append(ScanProblem("descriptor", info.error, security_id=security_id))
        infos.append(info)
        key_of_security_id[security_id] = next_key
        next_key += 1

    key_of_bytes: dict[bytes, int] = {}
    own_descriptor: dict[int, int] = {}
    for owner, raw in columns.descriptors:
        if raw is None:  # non-resident: the careful path reads it through the image layer
            try:
                raw = volume.read_attribute(owner, ATTR_TYPE_SECURITY_DESCRIPTOR)
            except Error as exc:
                problems.append(ScanProblem("descriptor", f"$SECURITY_DESCRIPTOR unreadable: {exc}", entry=owner))
                continue
        key = key_of_bytes.get(raw)
        if key is None:
            info = describe(next_key, raw, security_id=None, source="attribute", hash_ok=None)
            if info.error:
                problems.append(ScanProblem("descriptor", info.error, entry=owner))
            infos.append(info)
            key = key_of_bytes[raw] = next_key
            next_key += 1
        own_descriptor[owner] = key

    # --- records: base records are files ---------------------------------------------
    is_base = columns.base_entry < 0
    entry = columns.entry[is_base]
    sequence = columns.sequence[is_base]
    is_dir = (columns.flags[is_base] & FILE_FILE_NAME_INDEX_PRESENT) != 0
    security_id = columns.security_id[is_base]
    _check_extensions(columns, problems)

    # Descriptor key per file: $Secure by security id (NTFS 3.x), else the record's own
    # $SECURITY_DESCRIPTOR (NTFS 1.x and the records Windows still writes that way).
    known, descriptor_key = _lookup(key_of_security_id, security_id)
    known &= security_id != 0
    descriptor_key = np.where(known, descriptor_key, -1)
    for row in np.nonzero((security_id != 0) & ~known)[0]:
        problems.append(
            ScanProblem("record", f"security id {int(security_id[row])} not in $SDS", entry=int(entry[row]),
                        security_id=int(security_id[row]))
        )
    has_own, own_key = _lookup(own_descriptor, entry)
    descriptor_key = np.where(has_own & ~known, own_key, descriptor_key)
    # A record with neither a SecurityId nor its own descriptor (Windows writes a few
    # system files that way) keeps descriptor_key NULL: an observation, not damage.

    # --- names and paths ------------------------------------------------------------
    names = _Names(columns, entry, sequence, is_dir)
    files_per_key = np.bincount(descriptor_key[descriptor_key >= 0], minlength=next_key) if len(entry) else None

    # --- store ------------------------------------------------------------------------
    version, label = _volume_information(volume)
    file_security_id = np.where(known, security_id, 0)
    store.bulk_insert(
        db,
        "files",
        ("volume_id", "entry", "sequence", "path", "name", "parent_entry", "is_dir", "links", "security_id",
         "descriptor_key"),
        zip(
            [volume_id] * len(entry),
            entry.tolist(),
            sequence.tolist(),
            names.paths,
            names.primary,
            names.parent.tolist(),
            is_dir.astype(np.int8).tolist(),
            names.link_count.tolist(),
            [s or None for s in file_security_id.tolist()],
            [k if k >= 0 else None for k in descriptor_key.tolist()],
        ),
    )
    store.bulk_insert(db, "links", ("volume_id", "entry", "parent_entry", "name", "path", "namespace"),
                      ((volume_id, *row) for row in names.links()))
    sid_rows = _store_descriptors(db, volume_id, infos, files_per_key)
    _store_problems(db, volume_id, problems)
    db["volumes"].insert(
        {
            "id": volume_id,
            "image": os.path.abspath(image.path),
            "image_kind": image.kind,
            "partition": location.partition,
            "offset": location.offset,
            "ntfs_version": version,
            "serial": f"{boot.serial_number:016X}",
            "label": label,
            "cluster_size": boot.cluster_size,
            "record_size": boot.mft_record_size,
            "mft_records": columns.records_total,
            "records_in_use": len(columns.entry),
            "files": len(entry),
            "sds_entries": len(sds_entries),
            "scanned_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "aclscan_version": __version__,
            "duration_seconds": round(time.perf_counter() - started, 3),
        }
    )
    return VolumeResult(volume_id, location, len(entry), len(infos), sid_rows, problems)


def _lookup(mapping: dict[int, int], queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``mapping.get``: (found mask, value where found else -1) per query."""
    if not mapping or not len(queries):
        return np.zeros(len(queries), dtype=bool), np.full(len(queries), -1, dtype=np.int64)
    keys = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
    values = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    where = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    found = keys[where] == queries
    return found, np.where(found, values[where], -1)


def _next_descriptor_key(db) -> int:
    row = db.execute("SELECT COALESCE(MAX(key), 0) + 1 FROM descriptors").fetchone()
    return int(row[0])


def _check_extensions(columns: _Columns, problems: list[ScanProblem]) -> None:
    """Extension records must point at an in-use base record of the same sequence."""
    extension = np.nonzero(columns.base_entry >= 0)[0]
    if not len(extension):
        return
    sequence_of = dict(zip(columns.entry.tolist(), columns.sequence.tolist()))
    base_of = dict(zip(columns.entry.tolist(), columns.base_entry.tolist()))
    for row in extension:
        base = int(columns.base_entry[row])
        if base not in sequence_of or base_of.get(base, 0) >= 0:
            problems.append(
                ScanProblem("record", f"extension record of base {base}, which is not an in-use base record",
                            entry=int(columns.entry[row]))
            )


class _Names:
    """Primary name, parent, path and hard links of every file of a volume."""

    def __init__(self, columns: _Columns, entry: np.ndarray, sequence: np.ndarray, is_dir: np.ndarray):
        self.columns = columns
        count = len(entry)
        size = int(max(entry.max() if count else 0, columns.name_parent.max() if len(columns.name_parent) else 0)) + 1
        row_of_entry = np.full(size, -1, dtype=np.int64)
        row_of_entry[entry] = np.arange(count)
        self.row_of_entry = row_of_entry

        # Names whose owner is a file (extension records already point at their base).
        owner_row = row_of_entry[np.minimum(columns.name_owner, size - 1)] if len(columns.name_owner) else columns.name_owner
        usable = owner_row >= 0
        self.name_rows = np.nonzero(usable)[0]
        owner_row = owner_row[usable]
        rank = _NAMESPACE_RANK[columns.name_namespace[self.name_rows] & 3]
        # The first name of each file after sorting by (file, rank) is its primary name.
        order = np.lexsort((rank, owner_row))
        sorted_owner = owner_row[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = sorted_owner[1:] != sorted_owner[:-1]
        primary_name = np.full(count, -1, dtype=np.int64)
        primary_name[sorted_owner[first]] = self.name_rows[order[first]]
        self.primary_name = primary_name

        is_link = columns.name_namespace[self.name_rows] != NAMESPACE_DOS
        self.link_count = np.bincount(owner_row[is_link], minlength=count).astype(np.int64)
        self.link_rows = self.name_rows[is_link]
        self.link_owner_rows = owner_row[is_link]

        has_name = primary_name >= 0
        named = primary_name[has_name]
        parent = np.full(count, -1, dtype=np.int64)
        parent[has_name] = columns.name_parent[named]
        parent_sequence = np.zeros(count, dtype=np.int64)
        parent_sequence[has_name] = columns.name_parent_sequence[named]
        self.parent = parent

        # A parent is sound when it is an in-use directory of the referenced sequence.
        self.dir_of_entry = np.zeros(size, dtype=bool)
        self.dir_of_entry[entry[is_dir]] = True
        self.sequence_of_entry = np.zeros(size, dtype=np.int64)
        self.sequence_of_entry[entry] = sequence
        self.entry = entry
        self.is_dir = is_dir
        self.primary = self.names_at(primary_name)

        # Every directory's '/a/b/' prefix once; then each file is one lookup and one
        # concatenation. Broken parents (gone, reused, not a directory) are orphans.
        self._prefix: dict[int, str] = {ROOT_ENTRY: "/"}
        parent_ok = self._parents_ok(parent, parent_sequence)
        parents = np.unique(parent[parent_ok]).tolist()
        prefix_of = {p: self._dir_prefix(p) for p in parents}
        prefixes = [prefix_of[p] if ok else ORPHAN_PREFIX for p, ok in zip(parent.tolist(), parent_ok.tolist())]
        paths = [prefix + name if name is not None else None for prefix, name in zip(prefixes, self.primary)]
        for row in np.nonzero(primary_name < 0)[0].tolist():
            paths[row] = f"{ORPHAN_PREFIX}OrphanFile-{int(entry[row])}"
        root = np.nonzero(entry == ROOT_ENTRY)[0]
        if len(root):
            paths[int(root[0])] = "/"
        self.paths = paths

    def names_at(self, indexes: np.ndarray) -> list[str | None]:
        """The decoded names of many $FILE_NAME rows (None for index -1), in bulk."""
        valid = indexes >= 0
        safe = np.where(valid, indexes, 0)
        starts = (self.columns.name_start[safe] // 2).tolist() if len(safe) else []
        ends = ((self.columns.name_start[safe] + self.columns.name_length[safe]) // 2).tolist() if len(safe) else []
        text = self.columns.names
        names: list[str | None] = [text[a:b] for a, b in zip(starts, ends)]
        for row in np.nonzero(~valid)[0].tolist():
            names[row] = None
        return names

    def name(self, index: int) -> str:
        start = int(self.columns.name_start[index]) // 2
        return self.columns.names[start : start + int(self.columns.name_length[index]) // 2]

    def _parents_ok(self, parent: np.ndarray, parent_sequence: np.ndarray) -> np.ndarray:
        inside = (parent >= 0) & (parent < len(self.dir_of_entry))
        clipped = np.where(inside, parent, 0)
        return (
            inside
            & self.dir_of_entry[clipped]
            & (self.sequence_of_entry[clipped] == parent_sequence)
        )

    def _dir_prefix(self, directory: int) -> str:
        """'/a/b/' for a directory, resolved once and cached; orphans for broken chains."""
        cached = self._prefix.get(directory)
        if cached is not None:
            return cached
        chain = []
        current = directory
        seen = set()
        while current not in self._prefix:
            if current in seen:  # a loop of parent references: corrupt, treat as orphan
                base = ORPHAN_PREFIX
                break
            seen.add(current)
            chain.append(current)
            row = self.row_of_entry[current]
            name_index = self.primary_name[row] if row >= 0 else -1
            if name_index < 0:
                base = ORPHAN_PREFIX
                break
            parent = int(self.parent[row])
            parent_sequence = int(self.columns.name_parent_sequence[name_index])
            ok = self._parents_ok(np.array([parent]), np.array([parent_sequence]))[0]
            if not ok:
                base = ORPHAN_PREFIX
                break
            current = parent
        else:
            base = self._prefix[current]
        for node in reversed(chain):
            row = self.row_of_entry[node]
            name_index = self.primary_name[row]
            name = self.name(name_index) if name_index >= 0 else f"OrphanFile-{node}"
            base = base + name + "/"
            self._prefix[node] = base
        return self._prefix[directory]

    def links(self):
        """(entry, parent entry, name, path, name space) of every name of files with several."""
        several = self.link_count[self.link_owner_rows] > 1
        for name_index, owner in zip(self.link_rows[several].tolist(), self.link_owner_rows[several].tolist()):
            parent = int(self.columns.name_parent[name_index])
            parent_sequence = int(self.columns.name_parent_sequence[name_index])
            ok = self._parents_ok(np.array([parent]), np.array([parent_sequence]))[0]
            name = self.name(name_index)
            prefix = self._dir_prefix(parent) if ok else ORPHAN_PREFIX
            yield (int(self.entry[owner]), parent, name, prefix + name,
                   int(self.columns.name_namespace[name_index]))


def _store_descriptors(db, volume_id: int, infos: list[DescriptorInfo], files_per_key) -> int:
    """Write descriptors, their ACEs and the per-SID counts; returns the number of SIDs."""
    def files_of(key: int) -> int:
        return int(files_per_key[key]) if files_per_key is not None and key < len(files_per_key) else 0

    store.bulk_insert(
        db,
        "descriptors",
        ("key", "volume_id", "security_id", "source", "sddl", "raw", "owner", "group", "control", "files",
         "hash_ok", "error"),
        (
            (i.key, volume_id, i.security_id, i.source, i.sddl, i.raw, i.owner, i.group, i.control,
             files_of(i.key), None if i.hash_ok is None else int(i.hash_ok), i.error)
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
    counts: dict[str, list[int]] = {}
    for info in infos:
        files = files_of(info.key)
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
