"""The places of one machine, read into the scan database: every key of every hive
(machine hives and each profile's user hives) with its ``sk`` descriptor, the
descriptors Windows keeps in registry values (services, shares, printers, scheduled
tasks, DCOM, SAM objects, LSA accounts) and the scheduled task files.

Distinct before many, as for files: a hive's ``sk`` cells are its distinct
descriptors, parsed once each; a key is one compact ``places`` row pointing at one.
Descriptors from every hive and value share one table with the files' (``source``
says where each came from) and are stored once per distinct byte string.

This module assembles; the readers it calls (``aclscan.hives``, ``aclscan.tasks``)
parse bytes, and the volume is read only through :class:`aclscan.image.Volume`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from aclscan import store
from aclscan.descriptor_rows import DescriptorInfo, describe
from aclscan.errors import Error, NotFound
from aclscan.hives.places import hive_places
from aclscan.hives.registry import Hive, open_hive, printable
from aclscan.places import REGISTRY_KEY, TASK, Place, PlaceProblem
from aclscan.resolve import CONFIG_DIR
from aclscan.scheduled_tasks import TASKS_DIR as _TASKS, task_file_places

TASKS_DIR = "/" + _TASKS  # as the scan database writes paths
USER_CLASSES = "AppData/Local/Microsoft/Windows/UsrClass.dat"
USER_CLASSES_FOLDER = USER_CLASSES.rsplit("/", 1)[0]  # below a profile folder

# Where each machine hive's keys appear in the registry a person sees.
MACHINE_ROOTS = {
    "SAM": "HKLM\\SAM",
    "SECURITY": "HKLM\\SECURITY",
    "SYSTEM": "HKLM\\SYSTEM",
    "SOFTWARE": "HKLM\\SOFTWARE",
    "DEFAULT": "HKU\\.DEFAULT",
}

# descriptors.source of a place's descriptor
SOURCE_KEY = "registry"  # an sk cell
SOURCE_VALUE = "value"  # a self-relative descriptor stored in a registry value
SOURCE_TASK = "task"  # SDDL in a task file
PLACE_SOURCES = (SOURCE_KEY, SOURCE_VALUE, SOURCE_TASK)


@dataclass
class OpenedHive:
    """One hive of the machine, opened, with what places call it."""

    name: str  # SOFTWARE; NTUSER.DAT of S-1-5-21-...-1000
    kind: str  # SAM, SECURITY, SYSTEM, SOFTWARE, DEFAULT, NTUSER, USRCLASS
    root: str  # HKLM\\SOFTWARE; HKU\\S-1-5-21-...-1000; HKU\\S-..._Classes
    origin: str
    hive: Hive
    profile_sid: str | None = None
    sha256: str | None = None  # of the file as it is on the volume (before any log): a fix checks it


@dataclass
class PlaceScan:
    """What reading the places found: counts per SID and kind, and the bad items."""

    place_counts: dict[str, Counter] = field(default_factory=dict)  # sid -> kind -> places
    problems: list[PlaceProblem] = field(default_factory=list)
    hive_problems: list[str] = field(default_factory=list)  # parts of hives that could not be read
    places: int = 0
    hives: int = 0

    @property
    def sids(self) -> set[str]:
        return set(self.place_counts)


class _DescriptorStore:
    """Place descriptors stored once per distinct byte string, keys after the files'."""

    def __init__(self, db, volume_id: int) -> None:
        self.db = db
        self.volume_id = volume_id
        row = db.execute("SELECT COALESCE(MAX(key), 0) + 1 FROM descriptors").fetchone()
        self.next_key = int(row[0])
        self.keys: dict[bytes, int] = {}
        self.infos: dict[int, DescriptorInfo] = {}

    def key_of(self, raw: bytes, source: str) -> int:
        key = self.keys.get(raw)
        if key is None:
            key = self.keys[raw] = self.next_key
            self.next_key += 1
            self.infos[key] = describe(key, raw, security_id=None, source=source, hash_ok=None)
        return key

    def flush(self) -> None:
        from aclscan.scan import store_descriptor_rows

        # descriptors.files stays 0: these descriptors cover places, counted in `places`
        store_descriptor_rows(self.db, self.volume_id, list(self.infos.values()), {})


def machine_hives(hive_set, volume) -> list[OpenedHive]:
    """The machine hives the resolution opened, and DEFAULT from the volume."""
    found = []
    for name, hive in sorted(getattr(hive_set, "opened", {}).items()):
        found.append(OpenedHive(name, name, MACHINE_ROOTS[name], hive_set.origins.get(name, ""), hive,
                                sha256=hive_set.primary_sha256.get(name)))
    if volume is not None:
        default = _open_on_volume(volume, f"{CONFIG_DIR}/DEFAULT", "DEFAULT")
        if isinstance(default, OpenedHive):
            found.append(default)
    return found


def _open_on_volume(volume, path: str, name: str, *, kind: str | None = None, root: str | None = None,
                    profile_sid: str | None = None):
    """An OpenedHive (its logs applied), None where there is no such file, or a PlaceProblem."""
    from aclscan.resolve import hive_on_volume

    try:
        files = hive_on_volume(volume, path)
        hive = open_hive(files)
    except NotFound:
        return None
    except Error as exc:
        return PlaceProblem(REGISTRY_KEY, f"volume {path}", str(exc))
    return OpenedHive(name, kind or name, root or MACHINE_ROOTS.get(name, name), files.label, hive, profile_sid,
                      hashlib.sha256(files.data).hexdigest())


def volume_path(windows_path: str) -> str | None:
    """``C:\\Users\\Ken`` or ``%SystemDrive%\\Users\\Ken`` -> ``/Users/Ken`` (the system
    volume); None for a path on another drive or a share."""
    text = windows_path.replace("/", "\\").strip()
    lowered = text.casefold()
    for prefix in ("%systemdrive%", "c:"):
        if lowered.startswith(prefix):
            rest = text[len(prefix):]
            return "/" + "/".join(p for p in rest.split("\\") if p)
    return None


@dataclass
class FileParents:
    """The parent of every file row one volume's scan stored, in the order it stored
    them (rowids ``first_rowid`` onwards, one transaction, nothing between): lets
    files_in find the files of a few folders by rowid instead of a pass over a million
    rows. ``first_entry``/``last_entry`` are the MFT entries of the first and last rows,
    so a table that does not hold the rows where they are expected is noticed."""

    first_rowid: int
    parent: np.ndarray  # -1: no parent
    parent_sequence: np.ndarray
    named_file: np.ndarray  # bool: not a directory, and has a name
    first_entry: int
    last_entry: int

    def rowids_under(self, entries: Iterable[int]) -> list[int]:
        wanted = np.fromiter(entries, dtype=np.int64)
        rows = np.flatnonzero(np.isin(self.parent, wanted) & self.named_file)
        return (rows + self.first_rowid).tolist()

    def holds_rows_of(self, db, volume_id: int) -> bool:
        """Whether the rows sit where this expects them."""
        if not len(self.parent):
            return False
        last = self.first_rowid + len(self.parent) - 1
        found = {rowid: (volume, entry) for rowid, volume, entry in db.execute(
            "SELECT rowid, volume_id, entry FROM file_records WHERE rowid IN (?, ?)", [self.first_rowid, last])}
        return (found.get(self.first_rowid) == (volume_id, self.first_entry)
                and found.get(last) == (volume_id, self.last_entry))


def files_in(db, volume_id: int, folders: dict[tuple[int, int], str],
             parents: FileParents | None = None) -> list[tuple[str, str]]:
    """(folder path, name) of every file directly in ``folders`` ((entry, sequence) ->
    path). While a scan runs file_records has no index on parents (it is built on first
    use): with the scan's ``parents`` the rows are read by rowid, else this is one pass
    over the table, never a join that would make SQLite build an index of a million
    rows for a handful of folders."""
    if not folders:
        return []
    entries = sorted({entry for entry, _sequence in folders})
    rows = None
    if parents is not None and parents.holds_rows_of(db, volume_id):
        rowids = parents.rowids_under(entries)
        rows = db.execute(
            "SELECT parent_entry, parent_sequence, name FROM file_records"
            " WHERE rowid IN (SELECT value FROM json_each(?))"
            " AND volume_id = ? AND is_dir = 0 AND name IS NOT NULL ORDER BY rowid",
            [json.dumps(rowids), volume_id]).fetchall()
        if len(rows) != len(rowids):  # not the rows expected: the pass decides
            rows = None
    if rows is None:
        rows = db.execute(
            "SELECT parent_entry, parent_sequence, name FROM file_records WHERE volume_id = ? AND is_dir = 0"
            " AND name IS NOT NULL AND parent_entry IN (SELECT value FROM json_each(?))",
            [volume_id, json.dumps(entries)],
        )
    return [(folders[(entry, sequence)], name) for entry, sequence, name in rows if (entry, sequence) in folders]


def _directories(db, volume_id: int, where: str, params: list) -> dict[tuple[int, int], str]:
    return {(entry, sequence): path for entry, sequence, path in db.execute(
        f"SELECT entry, sequence, path FROM directories WHERE volume_id = ? AND ({where})", [volume_id, *params])}


def profile_folders(db, volume_id: int, profiles: Iterable) -> tuple[dict[tuple[int, int], str], dict[str, str]]:
    """The folders that may hold a profile's user hives, with the folder of its
    UsrClass.dat: every folder directly under /Users (old profiles of deleted or
    re-SIDed accounts too) and every folder ProfileList names; and the profile SID of
    each folder ProfileList names (by case-folded path)."""
    owners: dict[str, str] = {}
    for profile in profiles:
        folder = volume_path(profile.path) if getattr(profile, "path", None) else None
        if folder and not getattr(profile, "backup", False):
            owners.setdefault(folder.casefold(), profile.sid)
    named = json.dumps(sorted(owners))
    folders = _directories(db, volume_id, "(path LIKE '/Users/%' AND path NOT LIKE '/Users/%/%')"
                           " OR lower(path) IN (SELECT value FROM json_each(?))", [named])
    class_folders = json.dumps(sorted(f"{path}/{USER_CLASSES_FOLDER}".casefold() for path in folders.values()))
    folders.update(_directories(db, volume_id, "lower(path) IN (SELECT value FROM json_each(?))", [class_folders]))
    return folders, owners


def user_hive_paths(files: Iterable[tuple[str, str]], owners: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """(volume path, kind, profile SID) of every NTUSER.DAT and UsrClass.dat among
    ``files`` (folder, name) of the profile folders."""
    class_suffix = f"/{USER_CLASSES_FOLDER}".casefold()
    found = []
    for directory, name in files:
        if name.upper() == "NTUSER.DAT" and not directory.casefold().endswith(class_suffix):
            folder, kind = directory, "NTUSER"
        elif name.upper() == "USRCLASS.DAT" and directory.casefold().endswith(class_suffix):
            folder, kind = directory[: -len(class_suffix)], "USRCLASS"
        else:
            continue
        found.append((f"{directory}/{name}", kind, owners.get(folder.casefold())))
    return sorted(found)


def user_hives(volume, hive_paths: Iterable[tuple[str, str, str | None]]) -> tuple[list[OpenedHive], list[PlaceProblem]]:
    opened, problems = [], []
    for path, kind, sid in hive_paths:
        folder = path.rsplit("/", 1)[0] if kind == "NTUSER" else path.rsplit("/", 5)[0]
        who = sid or f"profile {folder}"
        file_name = "NTUSER.DAT" if kind == "NTUSER" else "UsrClass.dat"
        root = f"HKU\\{sid or folder}" + ("_Classes" if kind == "USRCLASS" else "")
        result = _open_on_volume(volume, path, f"{file_name} of {who}", kind=kind, root=root, profile_sid=sid)
        if isinstance(result, OpenedHive):
            opened.append(result)
        elif result is not None:
            problems.append(result)
    return opened, problems


def task_folders(db, volume_id: int) -> dict[tuple[int, int], str]:
    """Windows/System32/Tasks (any letter case) and every folder under it."""
    return _directories(db, volume_id, "path = ? COLLATE NOCASE OR path LIKE ?", [TASKS_DIR, TASKS_DIR + "/%"])


class _PlaceWriter:
    """Places rows, written in batches; counts per SID and kind as they go."""

    COLUMNS = ("volume_id", "kind", "path", "hive", "location", "descriptor_key", "sid", "account", "role")

    def __init__(self, db, volume_id: int, descriptors: _DescriptorStore, result: PlaceScan) -> None:
        self.db = db
        self.volume_id = volume_id
        self.descriptors = descriptors
        self.result = result
        self.rows: list[tuple] = []
        self.per_descriptor: Counter = Counter()  # (descriptor key, kind) -> places
        self.direct: list[tuple[str, str]] = []  # (sid, kind)

    def add(self, place: Place, source: str, resolve_name: Callable[[str], str | None]) -> None:
        key = self.descriptors.key_of(place.descriptor, source) if place.descriptor is not None else None
        sid = place.sid
        if sid is None and place.account:
            sid = resolve_name(place.account)
        self.rows.append((self.volume_id, place.kind, place.path, place.hive, place.location, key, sid,
                          place.account, place.role))
        if key is not None:
            self.per_descriptor[(key, place.kind)] += 1
        if sid is not None:
            self.direct.append((sid, place.kind))
        if len(self.rows) >= 50_000:
            self._write()

    def add_keys(self, opened: OpenedHive, keys: Iterable[tuple[str, int]], cells: dict[int, bytes]) -> int:
        """Every key of a hive, as (path in the hive, sk offset): one row each; returns
        how many."""
        sk_keys: dict[int, int | None] = {}
        rows = self.rows
        count = 0
        for key_path, sk in keys:
            key = sk_keys.get(sk, -1)
            if key == -1:
                raw = cells.get(sk)
                if raw is None:  # an sk cell cut off from the hive's sk list: read it where the key points
                    try:
                        raw = opened.hive.security_descriptor(sk)
                    except Error:
                        raw = None  # the hive's problems say why
                key = sk_keys[sk] = self.descriptors.key_of(raw, SOURCE_KEY) if raw is not None else None
            path = f"{opened.root}\\{key_path}" if key_path else opened.root
            rows.append((self.volume_id, REGISTRY_KEY, path, opened.name, key_path, key, None, None, ""))
            count += 1
            if key is not None:
                self.per_descriptor[(key, REGISTRY_KEY)] += 1
            if len(rows) >= 50_000:
                self._write()
                rows = self.rows
        return count

    def _write(self) -> None:
        store.bulk_insert(self.db, "places", self.COLUMNS, self.rows)
        self.result.places += len(self.rows)
        self.rows = []

    def finish(self) -> None:
        self._write()
        counts = self.result.place_counts
        infos = self.descriptors.infos
        for (key, kind), places in self.per_descriptor.items():
            for sid in infos[key].sid_roles:
                counts.setdefault(sid, Counter())[kind] += places
        for sid, kind in self.direct:
            counts.setdefault(sid, Counter())[kind] += 1


def _value_places(opened: OpenedHive) -> tuple[list[Place], list[PlaceProblem]]:
    """The descriptors a machine hive keeps in values (user hives keep none)."""
    if opened.kind not in MACHINE_ROOTS:
        return [], []
    return hive_places(opened.hive, opened.name)


def _task_places(volume, path: str) -> tuple[list[Place], list[PlaceProblem]]:
    try:
        data = volume.open_path(path)
    except Error as exc:
        return [], [PlaceProblem(TASK, f"volume {path}", f"cannot read: {exc}")]
    return task_file_places(data, path)


def scan_places(db, volume_id: int, volume, hive_set, resolve_name: Callable[[str], str | None],
                parents: FileParents | None = None) -> PlaceScan:
    """Read every place of the machine into ``places`` (and their descriptors into
    ``descriptors``/``aces``), the hives into ``hives``; bad items into the result."""
    result = PlaceScan()
    descriptors = _DescriptorStore(db, volume_id)
    writer = _PlaceWriter(db, volume_id, descriptors, result)
    opened = machine_hives(hive_set, volume)
    tasks = []
    if volume is not None:
        software = getattr(hive_set, "software", None)
        folders, owners = profile_folders(db, volume_id, getattr(software, "profiles", ()))
        in_tasks = task_folders(db, volume_id)
        files = files_in(db, volume_id, {**folders, **in_tasks}, parents)  # one lookup for both
        task_paths = set(in_tasks.values())
        tasks = sorted(f"{folder}/{name}" for folder, name in files if folder in task_paths)
        users, problems = user_hives(volume, user_hive_paths([f for f in files if f[0] not in task_paths], owners))
        opened += users
        result.hive_problems += [printable(f"{p.where}: {p.reason}", 500) for p in problems]
    hive_rows = []
    for each in opened:
        keys = None
        try:
            keys = writer.add_keys(each, each.hive.key_security(), each.hive.security_cells())
        except Error as exc:
            result.hive_problems.append(printable(f"{each.name} hive ({each.origin}): keys not read: {exc}", 500))
        places, problems = _value_places(each)
        for place in places:
            writer.add(place, SOURCE_VALUE, resolve_name)
        result.problems += problems
        status = each.hive.status
        result.hive_problems += [printable(f"{each.name} hive ({each.origin}): {p}", 500) for p in status.problems]
        hive_rows.append((each.name, each.kind, each.root, each.origin, each.profile_sid, int(status.dirty),
                          json.dumps(list(status.logs_applied)), keys,
                          json.dumps(list(status.problems), ensure_ascii=False), each.sha256))
    if volume is not None:
        for path in tasks:
            places, problems = _task_places(volume, path)
            for place in places:
                writer.add(place, SOURCE_TASK, resolve_name)
            result.problems += problems
    writer.finish()
    descriptors.flush()
    store.bulk_insert(db, "hives", ("name", "kind", "root", "origin", "profile_sid", "dirty", "logs_applied", "keys",
                                    "problems", "sha256"), hive_rows)
    result.hives = len(hive_rows)
    return result


def place_problem_text(problem: PlaceProblem) -> str:
    return printable(f"{problem.kind} {problem.where}: {problem.reason}", 500)
