"""The fleet: many machines' scans side by side, in one SQLite "fleet database".

Each machine is one scan database (its rows are copied in: the fleet database
stands alone once built). What only a fleet shows is derived by SQL views, so it
is never stale after a machine is added or replaced:

* ``duplicate_machine_sids``: two machines with one machine SID (clones never
  re-SIDed);
* ``identity_collisions``: one SID, different local accounts on different
  machines (WS1\\Eric and WS2\\Stephanie are both ``<image SID>-1000``);
* ``cross_machine_references``: a SID on one machine whose prefix is another
  machine's machine SID, marked ``own_previous`` where that prefix is also this
  machine's previous machine SID (a stale prefix that names another live
  machine's accounts).

Images are scanned first, each into a scan database of its own, by a runner: local
processes (:class:`LocalRunner`) or a Dask cluster (:mod:`aclscan.fleet_dask`); the
fleet only ever reads scan databases, and ingests each as its scan completes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import glob
import itertools
import json
import os
import sqlite3
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import sqlite_utils

from aclscan.classify import split_domain_relative
from aclscan.errors import DatabaseError, Error, ImageError, PartialScan
from aclscan.store import connect_and_identify, is_sqlite_file, utc_now

FLEET_SCHEMA_VERSION = 1
FLEET_APPLICATION_ID = 0x41434C46  # "ACLF": an aclscan fleet database (scan databases are "ACLS")
STALE_VERDICTS = ("stale_prefix", "rid_collision")

FLEET_TABLES: dict[str, dict] = {
    "machines": {
        "columns": {"id": int, "name": str, "computer_name": str, "scan_db": str, "image": str, "machine_sid": str,
                    "product_type": str, "primary_domain_name": str, "volume_serials": str, "scanned_at": str,
                    "added_at": str, "parent_disks": str, "scan_db_mtime_ns": int},
        "pk": "id",
    },
    # Every distinct SID of the machine's scan, with its verdict (findings), split into
    # domain prefix and RID where it is domain-relative (joins by prefix stay indexed).
    "machine_sids": {
        "columns": {"machine_id": int, "sid": str, "prefix": str, "rid": int, "verdict": str, "account": str,
                    "mapped_sid": str, "files": int, "descriptors": int, "hive_references": int},
        "pk": None,
    },
    # The machine's local accounts (SAM users, groups and aliases under its machine SID).
    "machine_accounts": {
        "columns": {"machine_id": int, "sid": str, "name": str, "kind": str},
        "pk": None,
    },
    # Machine SIDs this machine had before (history, ProfileList under another prefix).
    "machine_previous_sids": {
        "columns": {"machine_id": int, "sid": str, "source": str},
        "pk": None,
    },
    "failed_inputs": {
        "columns": {"input": str, "scan_db": str, "reason": str, "exit_code": int, "failed_at": str},
        "pk": None,
    },
}

FLEET_VIEWS = (
    """
CREATE VIEW IF NOT EXISTS duplicate_machine_sids AS
SELECT m.id AS machine_id, m.name AS machine, m.machine_sid, o.id AS other_id, o.name AS other
FROM machines m JOIN machines o ON o.machine_sid = m.machine_sid AND o.id != m.id
""",
    """
CREATE VIEW IF NOT EXISTS identity_collisions AS
SELECT a.sid, a.machine_id, m.name AS machine, a.name AS account,
       b.machine_id AS other_id, o.name AS other, b.name AS other_account
FROM machine_accounts a
JOIN machine_accounts b ON b.sid = a.sid AND b.machine_id != a.machine_id AND b.name != a.name COLLATE NOCASE
JOIN machines m ON m.id = a.machine_id
JOIN machines o ON o.id = b.machine_id
""",
    """
CREATE VIEW IF NOT EXISTS cross_machine_references AS
SELECT s.machine_id, m.name AS machine, s.sid, s.verdict, s.account, s.files, s.hive_references,
       o.id AS other_id, o.name AS other, oa.name AS other_account,
       (s.verdict IN ('stale_prefix', 'rid_collision') OR EXISTS (
           SELECT 1 FROM machine_previous_sids p WHERE p.machine_id = s.machine_id AND p.sid = s.prefix
       )) AS own_previous
FROM machine_sids s
JOIN machines m ON m.id = s.machine_id
JOIN machines o ON o.machine_sid = s.prefix AND o.id != s.machine_id
LEFT JOIN machine_accounts oa ON oa.machine_id = o.id AND oa.sid = s.sid
WHERE m.machine_sid IS NOT s.prefix
""",
)

FLEET_INDEXES = (
    ("machines", ("scan_db",), True),
    ("machines", ("machine_sid",), False),
    ("machine_sids", ("machine_id",), False),
    ("machine_sids", ("prefix",), False),
    ("machine_accounts", ("sid",), False),
    ("machine_accounts", ("machine_id", "sid"), False),
    ("machine_previous_sids", ("machine_id", "sid"), False),
    ("failed_inputs", ("input",), False),
    ("failed_inputs", ("scan_db",), False),
)


# --- the fleet database --------------------------------------------------------------

def open_fleet(path: str | os.PathLike, *, create: bool = True) -> sqlite_utils.Database:
    """The fleet database at ``path`` (created when absent and ``create``)."""
    target = Path(path)
    exists = target.is_file() and target.stat().st_size > 0
    if not exists and not create:
        raise DatabaseError(f"no fleet database at {target}")
    if exists and not is_sqlite_file(target):
        raise DatabaseError(f"{target} is not an SQLite database")
    conn, application_id, version = connect_and_identify(target)
    if exists:
        from aclscan.store import APPLICATION_ID

        if application_id == APPLICATION_ID:
            raise DatabaseError(f"{target} is a scan database, not a fleet database")
        if application_id != FLEET_APPLICATION_ID:
            raise DatabaseError(f"{target} is not an aclscan fleet database")
        if version > FLEET_SCHEMA_VERSION:
            raise DatabaseError(f"{target} has fleet schema version {version}; this aclscan reads up to "
                                f"{FLEET_SCHEMA_VERSION}: upgrade aclscan")
    db = sqlite_utils.Database(conn)
    if not exists:
        for name, spec in FLEET_TABLES.items():
            db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True)
        for view in FLEET_VIEWS:
            db.execute(view)
        db.execute(f"PRAGMA application_id = {FLEET_APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {FLEET_SCHEMA_VERSION}")
    columns = db["machines"].columns_dict  # columns added since: a fleet built before lacks them
    if "parent_disks" not in columns:
        db.execute("ALTER TABLE machines ADD COLUMN parent_disks TEXT")
    if "scan_db_mtime_ns" not in columns:
        db.execute("ALTER TABLE machines ADD COLUMN scan_db_mtime_ns INTEGER")
    try:  # a fleet built by an older aclscan gains the indexes added since
        for table, columns, unique in FLEET_INDEXES:
            db[table].create_index(columns, unique=unique, if_not_exists=True)
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            raise
    conn.commit()
    return db


def add_scan(fleet: sqlite_utils.Database, scan_db: str | os.PathLike) -> int:
    """Copy one scan database's machine into the fleet; a scan added before (same
    path) is replaced. Returns the machine's id."""
    with fleet.conn:
        machine_id, touched = _ingest(fleet, scan_db)
        name_machines(fleet, touched)
    return machine_id


def _read_scan(path: str) -> tuple[dict, list, list, list, list]:
    """What the fleet keeps of one scan: (machine facts and volumes, findings,
    local accounts, previous machine SIDs, volumes). Only the small tables."""
    from aclscan.findings import machine_facts
    from aclscan.store import open_database

    scan = open_database(path, index=False)
    try:
        facts = machine_facts(scan) or {}
        if facts.get("machine_sid") is None:  # a scan from before schema 2 still names its machine SID
            row = scan.execute("SELECT sid FROM authorities WHERE kind = 'machine' LIMIT 1").fetchone()
            facts["machine_sid"] = row[0] if row else None
        machine_sid = facts["machine_sid"]
        volumes = scan.execute("SELECT image, serial, scanned_at, parent_disks FROM volumes"
                               " WHERE snapshot IS NULL ORDER BY id").fetchall()
        sids = scan.execute(
            "SELECT sid, verdict, account, mapped_sid, files, descriptors, hive_references FROM findings"
        ).fetchall()
        accounts = []
        if machine_sid:
            accounts = scan.execute(
                "SELECT DISTINCT sid, name, kind FROM accounts WHERE substr(sid, 1, ?) = ?",
                (len(machine_sid) + 1, machine_sid + "-"),
            ).fetchall()
        previous = scan.execute("SELECT DISTINCT sid, source FROM authorities WHERE kind = 'previous_machine'"
                                ).fetchall()
        previous += [(parts[0], source) for sid, source in
                     scan.execute("SELECT DISTINCT sid, source FROM previous_names")
                     if (parts := split_domain_relative(sid)) and parts[0] != machine_sid]
    except sqlite3.Error as exc:
        raise DatabaseError(f"{path}: cannot read the scan: {' '.join(str(exc).split())}") from None
    finally:
        scan.conn.close()
    return facts, sids, accounts, previous, volumes


def _ingest(fleet: sqlite_utils.Database, scan_db: str | os.PathLike) -> tuple[int, set[str]]:
    """add_scan without its transaction (the caller commits, so many scans can share
    one). Returns the machine id and the computer names whose machines to rename."""
    path = str(Path(scan_db).resolve())
    facts, sids, accounts, previous, volumes = _read_scan(path)
    machine_sid = facts["machine_sid"]
    image = volumes[0][0] if volumes else None
    scanned_at = min((v[2] for v in volumes if v[2]), default=None)
    computer_name = facts.get("computer_name")
    touched = {_name_key(computer_name)}
    old = fleet.execute("SELECT id, computer_name FROM machines WHERE scan_db = ?", (path,)).fetchone()
    if old is not None:
        for table in ("machine_sids", "machine_accounts", "machine_previous_sids"):
            fleet.execute(f"DELETE FROM {table} WHERE machine_id = ?", (old[0],))
        fleet.execute("DELETE FROM machines WHERE id = ?", (old[0],))
        touched.add(_name_key(old[1]))
    fleet.execute("DELETE FROM failed_inputs WHERE scan_db = ?", (path,))
    fleet.execute("DELETE FROM failed_inputs WHERE input = ?", (path,))
    cursor = fleet.execute(
        "INSERT INTO machines (name, computer_name, scan_db, image, machine_sid, product_type,"
        " primary_domain_name, volume_serials, scanned_at, added_at, parent_disks, scan_db_mtime_ns)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (computer_name or Path(path).stem, computer_name, path, image, machine_sid, facts.get("product_type"),
         facts.get("primary_domain_name"), json.dumps([v[1] for v in volumes]), scanned_at, utc_now(),
         json.dumps(sorted({p for v in volumes for p in json.loads(v[3] or "[]")})), _mtime_ns(path)),
    )
    machine_id = cursor.lastrowid
    rows = []
    for sid, verdict, account, mapped_sid, files, descriptors, references in sids:
        parts = split_domain_relative(sid)
        rows.append((machine_id, sid, parts[0] if parts else None, parts[1] if parts else None, verdict,
                     account, mapped_sid, files, descriptors, references))
    fleet.conn.executemany(
        "INSERT INTO machine_sids (machine_id, sid, prefix, rid, verdict, account, mapped_sid, files,"
        " descriptors, hive_references) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    fleet.conn.executemany("INSERT INTO machine_accounts (machine_id, sid, name, kind) VALUES (?, ?, ?, ?)",
                           [(machine_id, *a) for a in accounts])
    fleet.conn.executemany("INSERT INTO machine_previous_sids (machine_id, sid, source) VALUES (?, ?, ?)",
                           [(machine_id, sid, source) for sid, source in sorted(set(previous))])
    return machine_id, touched


def _name_key(computer_name: str | None) -> str:
    return (computer_name or "").casefold()


def name_machines(fleet: sqlite_utils.Database, computer_names: Iterable[str]) -> None:
    """Give every machine of these computer names (casefolded keys) a name unique in
    the fleet: the computer name alone where it is the only one, else the computer
    name with its image's name (``MEMBER (member-before)``), or its scan database's
    name where images share a name too."""
    keys = set(computer_names)
    if not keys:
        return
    groups: dict[str, list[tuple]] = {}
    for row in fleet.execute("SELECT id, computer_name, image, scan_db FROM machines ORDER BY id"):
        key = _name_key(row[1])
        if key in keys:
            groups.setdefault(key, []).append(row)
    for rows in groups.values():
        fleet.conn.executemany("UPDATE machines SET name = ? WHERE id = ? AND name IS NOT ?",
                               [(name, id_, name) for id_, name in _unique_names(rows).items()])


def _unique_names(rows: Sequence[tuple]) -> dict[int, str]:
    """id -> name for machines of one computer name (rows: id, computer_name, image, scan_db)."""
    def stem(path: str | None) -> str | None:
        return scan_db_name(path)[: -len(".db")] if path else None

    single = len(rows) == 1
    image_stems = [stem(r[2]) for r in rows]
    db_stems = [Path(r[3]).stem for r in rows]
    names = {}
    for (id_, computer_name, _image, _db), image_stem, db_stem in zip(rows, image_stems, db_stems):
        if single and computer_name:
            names[id_] = computer_name
            continue
        if not computer_name:  # no hives told its name: the name its scan database was given
            label = db_stem if db_stems.count(db_stem) == 1 else f"{db_stem}#{id_}"
        elif image_stem and image_stems.count(image_stem) == 1:
            label = image_stem
        elif db_stems.count(db_stem) == 1:
            label = db_stem
        else:
            label = f"{db_stem}#{id_}"
        names[id_] = f"{computer_name} ({label})" if computer_name else label
    return names


def _record_failure(fleet: sqlite_utils.Database, failure: "FailedInput") -> None:
    fleet.execute("DELETE FROM failed_inputs WHERE input = ?", (failure.input,))
    fleet.execute("INSERT INTO failed_inputs (input, scan_db, reason, exit_code, failed_at) VALUES (?, ?, ?, ?, ?)",
                  (failure.input, failure.scan_db, failure.reason, failure.exit_code, utc_now()))


def _mtime_ns(path: str | os.PathLike) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def is_current(fleet: sqlite_utils.Database, scan_db: str | os.PathLike) -> bool:
    """The fleet holds this scan database and it has not changed since it was added."""
    path = Path(scan_db).resolve()
    row = fleet.execute("SELECT added_at, scan_db_mtime_ns FROM machines WHERE scan_db = ?", (str(path),)).fetchone()
    if row is None or not row[0]:
        return False
    if row[1] is not None:  # the database's own modification time when it was added, to the nanosecond
        return _mtime_ns(path) == row[1]
    try:
        # added_at is to the second, and a scan is ingested within the second it ends:
        # a database written in the second it was added counts as the one added.
        return _dt.datetime.fromisoformat(row[0]).timestamp() + 1 > path.stat().st_mtime
    except (OSError, ValueError):
        return False


# --- scanning images -----------------------------------------------------------------

@dataclass(frozen=True)
class FailedInput:
    """An input that gave no machine: an image that could not be scanned, a database
    that could not be read."""

    input: str
    scan_db: str | None
    reason: str
    exit_code: int


@dataclass(frozen=True)
class ScanJob:
    """One image to scan into one scan database (paths absolute: a cluster's workers
    read and write them on shared storage)."""

    image: str
    scan_db: str
    domain_files: tuple[str, ...] = ()


# done, failed, running, total: a runner reports after every change.
ScanProgress = Callable[[int, int, int, int], None]

_IMAGE_SUFFIXES = (".gz", ".img", ".raw", ".dd", ".bin", ".001", ".e01", ".vhd", ".vhdx")


def scan_db_name(image: str | os.PathLike) -> str:
    """`ws1.img.gz` -> `ws1.db`: a scan database named after its image."""
    name = Path(image).name
    lowered = name.lower()
    stripped = True
    while stripped:
        stripped = False
        for suffix in _IMAGE_SUFFIXES:
            if lowered.endswith(suffix) and len(name) > len(suffix):
                name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
                stripped = True
    return f"{name}.db"


def scan_targets(images: Sequence[str], directory: Path, avoid: Iterable[Path] = ()) -> list[tuple[str, str]]:
    """(image, scan database) pairs: each database in ``directory``, named after its
    image, with -2, -3, ... where two images would share a name."""
    taken = {p.resolve() for p in avoid}
    pairs = []
    for image in images:
        base = scan_db_name(image)[: -len(".db")]
        candidate, n = directory / f"{base}.db", 1
        while candidate.resolve() in taken:
            n += 1
            candidate = directory / f"{base}-{n}.db"
        taken.add(candidate.resolve())
        pairs.append((image, str(candidate)))
    return pairs


def scan_is_complete(scan_db: str | os.PathLike, image: str | os.PathLike) -> bool:
    """A scan database that a re-run need not make again: a finished aclscan scan
    (its volumes recorded and its last step, the small tables' indexes, done) written
    after the image last changed."""
    from aclscan.store import APPLICATION_ID, INDEXES

    db_path, image_path = Path(scan_db), Path(image)
    try:
        if db_path.stat().st_mtime < image_path.stat().st_mtime or not is_sqlite_file(db_path):
            return False
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except (OSError, sqlite3.Error):
        return False
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            return False
        table, columns, _unique = INDEXES[-1]
        last_index = f"idx_{table}_{'_'.join(columns)}"
        return (conn.execute("SELECT COUNT(*) FROM volumes").fetchone()[0] > 0
                and conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                                 (last_index,)).fetchone() is not None)
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def scan_one(image: str, db: str, domain_files: Sequence[str] = ()) -> FailedInput | None:
    """One image into one scan database. The scan writes a private file beside
    ``db`` and renames it into place when done, so ``db`` is always either absent,
    the previous scan, or a complete new one (a scan killed midway leaves no
    half-written database for a re-run to mistake for finished)."""
    from aclscan.scan import ResolveInputs, scan_image
    from aclscan.scan_inputs import domain_sources

    partial = f"{db}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
    try:
        sources = domain_sources(domain_files)
        scan_image(image, partial, resolve=ResolveInputs(domain_sources=tuple(sources),
                                                          domain_files=tuple(domain_files)))
        os.replace(partial, db)
    except Error as exc:
        return FailedInput(image, db, _one_line(str(exc)) or exc.__class__.__name__, exc.exit_code)
    except Exception as exc:  # a bug in one image's scan must not stop the fleet
        return FailedInput(image, db, f"internal error: {exc.__class__.__name__}: {_one_line(str(exc))}",
                           Error.exit_code)
    finally:
        for suffix in ("", "-journal"):
            Path(partial + suffix).unlink(missing_ok=True)
    return None


def _scan_job(job: ScanJob) -> FailedInput | None:
    return scan_one(job.image, job.scan_db, job.domain_files)


class LocalRunner:
    """Scans in local processes, ``jobs`` at a time (default: one per CPU). A scan is
    itself two processes (the MFT pass and the row writer)."""

    def __init__(self, jobs: int | None = None):
        self.jobs = max(1, jobs or os.cpu_count() or 1)

    def start(self) -> None:
        """Nothing to start: the processes come with each run."""

    def run(self, jobs: Sequence[ScanJob], progress: ScanProgress | None = None
            ) -> Iterator[tuple[ScanJob, FailedInput | None]]:
        total, done, failed = len(jobs), 0, 0
        if self.jobs == 1 or total <= 1:
            for job in jobs:
                if progress:
                    progress(done, failed, 1, total)
                outcome = _scan_job(job)
                done += 1
                failed += outcome is not None
                yield job, outcome
            if progress:
                progress(done, failed, 0, total)
            return
        with ProcessPoolExecutor(max_workers=min(self.jobs, total)) as pool:
            futures = {pool.submit(_scan_job, job): job for job in jobs}
            pending = set(futures)
            while pending:
                if progress:
                    running = min(self.jobs, len(pending))
                    progress(done, failed, running, total)
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in finished:
                    outcome = future.result()
                    done += 1
                    failed += outcome is not None
                    yield futures[future], outcome
            if progress:
                progress(done, failed, 0, total)


@dataclass(frozen=True)
class FleetBuild:
    added: tuple[str, ...]  # scan databases (re)read into the fleet now
    failed: tuple[FailedInput, ...]
    reused: tuple[str, ...] = ()  # images whose scan database was complete and newer: not scanned again
    unchanged: tuple[str, ...] = ()  # scan databases the fleet already held as they are: not read again
    notes: tuple[str, ...] = ()  # what the runner noticed about where it ran (a Dask cluster's resources)

    def partial_error(self) -> PartialScan | None:
        """The error (exit 3) a build with failed inputs ends in, naming the first; None if none failed."""
        if not self.failed:
            return None
        first = self.failed[0]
        return PartialScan(f"{len(self.failed)} input(s) not added (recorded in failed_inputs); first: "
                           f"{first.input}: {first.reason}")


# Ingested scans share a transaction for up to this long: one commit per scan would
# make a fleet of thousands wait on the disk.
COMMIT_SECONDS = 1.0


def build_fleet(fleet_path: str | os.PathLike, inputs: Sequence[str], *, jobs: int | None = None,
                domain_files: Sequence[str] = (), runner=None, scans_dir: str | os.PathLike | None = None,
                rescan: bool = False, progress: ScanProgress | None = None) -> FleetBuild:
    """Add every input (a scan database, or an image scanned first into a database in
    ``scans_dir``, default beside the fleet) to the fleet database; a bad or missing
    input is recorded, the others go on. Images run on ``runner`` (default: local
    processes, ``jobs`` at a time); each scan is ingested as soon as it completes.

    Unless ``rescan``, an image whose scan database is complete and newer than the
    image is not scanned again, and a scan database the fleet holds unchanged is not
    read again (a re-run after an interruption resumes where it stopped)."""
    fleet_file = Path(fleet_path)
    directory = Path(scans_dir).resolve() if scans_dir else fleet_file.resolve().parent
    fleet = open_fleet(fleet_file)
    runner = runner or LocalRunner(jobs)
    failed: list[FailedInput] = []
    added: list[str] = []
    unchanged: list[str] = []
    reused: list[tuple[str, str]] = []
    to_scan: list[ScanJob] = []
    ingest = _Ingest(fleet, added, unchanged, failed, rescan)
    try:
        missing = {i for i in inputs if not Path(i).is_file()}
        for path in sorted(missing):
            ingest.failure(FailedInput(path, None, "not a file" if Path(path).exists() else "no such file",
                                       ImageError.exit_code))
        present = [i for i in inputs if i not in missing]
        databases = [i for i in present if is_sqlite_file(i)]
        images = [i for i in present if not is_sqlite_file(i)]
        if images:
            directory.mkdir(parents=True, exist_ok=True)
        pairs = scan_targets(images, directory, avoid=[fleet_file, *map(Path, databases)])
        domain = tuple(str(Path(d).resolve()) for d in domain_files)
        reused = [(image, db) for image, db in pairs if not rescan and scan_is_complete(db, image)]
        reused_set = set(reused)
        to_scan = [ScanJob(str(Path(image).resolve()), db, domain) for image, db in pairs
                   if (image, db) not in reused_set]
        given_name = {str(Path(image).resolve()): image for image in images}
        if to_scan:
            runner.start()  # a cluster that cannot be had fails the run before anything else is done
        for path in databases + [db for _image, db in reused]:
            ingest.scan_db(path)
        for job, failure in runner.run(to_scan, progress):
            if failure is None:
                ingest.scan_db(job.scan_db)
            else:
                ingest.failure(dataclasses.replace(failure, input=given_name.get(failure.input, failure.input)))
    finally:
        try:
            ingest.commit()
        finally:
            fleet.conn.close()
            for job in to_scan:  # what a scan killed with its worker left behind
                for leftover in Path(job.scan_db).parent.glob(glob.escape(Path(job.scan_db).name) + ".*.partial"):
                    leftover.unlink(missing_ok=True)
    return FleetBuild(tuple(added), tuple(failed), tuple(image for image, _db in reused), tuple(unchanged),
                      tuple(getattr(runner, "notes", ())))


def runner_for(jobs: int | None = None, scheduler: str | None = None, *, retries: int = 2, announce=None):
    """Where images are scanned, as a context manager giving the runner: local processes,
    ``jobs`` at a time, or the Dask cluster ``scheduler`` names (an address, or local:N;
    ValueError if it is neither), each task tried ``retries`` more times, ``announce(runner)``
    called once it is up."""
    if not scheduler:
        return contextlib.nullcontext(LocalRunner(jobs))
    from aclscan.fleet_dask import DaskRunner

    return DaskRunner(scheduler, retries=retries, announce=announce)  # parses the scheduler first


def update_fleet(fleet_path: str | os.PathLike, inputs: Sequence[str], *, runner_context=None,
                 progress_context=None, **build_options) -> tuple[FleetBuild | None, FleetSummary]:
    """Add ``inputs`` to the fleet (:func:`build_fleet`, on the runner ``runner_context``
    gives, with the progress callback ``progress_context`` gives), then read it: what
    the build did (None with no input) and the fleet's summary. The fleet must exist
    when there is no input."""
    build = None
    if inputs:
        with (runner_context or contextlib.nullcontext(LocalRunner())) as runner, \
                (progress_context or contextlib.nullcontext()) as progress:
            build = build_fleet(fleet_path, list(inputs), runner=runner, progress=progress, **build_options)
    fleet = open_fleet(fleet_path, create=False)
    try:
        return build, summarise(fleet)
    finally:
        fleet.conn.close()


class _Ingest:
    """Scan databases into the fleet as they come, committed in batches."""

    def __init__(self, fleet, added: list, unchanged: list, failed: list, rescan: bool):
        self.fleet, self.added, self.unchanged, self.failed, self.rescan = fleet, added, unchanged, failed, rescan
        self.touched: set[str] = set()
        self.last_commit = time.monotonic()

    def scan_db(self, path: str) -> None:
        resolved = str(Path(path).resolve())
        if not self.rescan and is_current(self.fleet, resolved):
            self.unchanged.append(resolved)
            self._begin()
            self.fleet.execute("DELETE FROM failed_inputs WHERE input = ? OR scan_db = ?", (path, resolved))
            return
        self._begin()
        try:
            self.fleet.execute("SAVEPOINT scan")
            _machine_id, touched = _ingest(self.fleet, path)
            self.fleet.execute("RELEASE scan")
        except Error as exc:
            self.fleet.execute("ROLLBACK TO scan")
            self.fleet.execute("RELEASE scan")
            self.failure(FailedInput(path, path, _one_line(str(exc)), exc.exit_code))
            return
        self.touched |= touched
        self.added.append(resolved)
        self._maybe_commit()

    def _begin(self) -> None:
        # An open transaction first: a savepoint outside one would commit on release.
        if not self.fleet.conn.in_transaction:
            self.fleet.execute("BEGIN")

    def failure(self, failure: FailedInput) -> None:
        self._begin()
        self.failed.append(failure)
        _record_failure(self.fleet, failure)
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        if time.monotonic() - self.last_commit >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        name_machines(self.fleet, self.touched)
        self.touched = set()
        self.fleet.conn.commit()
        self.last_commit = time.monotonic()


# --- reading the fleet ---------------------------------------------------------------

@dataclass(frozen=True)
class FleetMachine:
    id: int
    name: str
    scan_db: str
    image: str | None
    machine_sid: str | None
    product_type: str | None
    sids: int
    problem_sids: int
    accounts: int
    duplicate_machine_sid_with: tuple[str, ...]
    identity_collisions: tuple[dict, ...]  # {"sid", "here": "WS1\\Eric", "there": "WS2\\Stephanie"}
    cross_machine_references: int


@dataclass(frozen=True)
class FleetSummary:
    machines: tuple[FleetMachine, ...]
    # One per machine SID held by several machines: {"machine_sid", "count", "machines": [names]}.
    duplicate_machine_sids: tuple[dict, ...]
    # One per SID that names different accounts on different machines:
    # {"sid", "accounts": [{"account", "machines": [names]}, ...]}.
    identity_collisions: tuple[dict, ...]
    cross_machine_references: tuple[dict, ...]
    failed: tuple[FailedInput, ...]
    # One per parent disk several machines' disks are differencing children of (linked
    # clones): {"parent", "count", "machines": [names]}. They share its machine SID unless
    # each clone was generalized.
    shared_parent_disks: tuple[dict, ...] = ()

    @property
    def has_conflicts(self) -> bool:
        return bool(self.duplicate_machine_sids or self.identity_collisions)


def _dicts(db, sql: str, params=()) -> list[dict]:
    cursor = db.execute(sql, params)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


# SIDs that name different accounts on different machines, found by grouping the
# accounts by SID (indexed), never by pairing every machine with every other.
_COLLIDING_SIDS = ("SELECT sid FROM machine_accounts GROUP BY sid"
                   " HAVING COUNT(DISTINCT lower(name)) > 1 AND COUNT(DISTINCT machine_id) > 1")


def summarise(fleet: sqlite_utils.Database) -> FleetSummary:
    """The fleet's machines and what it found across them."""
    from aclscan.classify import PROBLEMS

    marks = ", ".join("?" for _ in PROBLEMS)
    machines_rows = _dicts(fleet, f"""
        SELECT m.id, m.name, m.scan_db, m.image, m.machine_sid, m.product_type,
               COALESCE(s.sids, 0) AS sids, COALESCE(s.problem_sids, 0) AS problem_sids,
               COALESCE(a.accounts, 0) AS accounts
        FROM machines m
        LEFT JOIN (SELECT machine_id, COUNT(*) AS sids, SUM(verdict IN ({marks})) AS problem_sids
                   FROM machine_sids GROUP BY machine_id) s ON s.machine_id = m.id
        LEFT JOIN (SELECT machine_id, COUNT(*) AS accounts FROM machine_accounts GROUP BY machine_id) a
               ON a.machine_id = m.id
        ORDER BY m.name, m.scan_db""", sorted(PROBLEMS))

    duplicate_groups, duplicates_of = [], {}
    for row in _dicts(fleet, "SELECT machine_sid, json_group_array(id) AS ids, json_group_array(name) AS names"
                             " FROM (SELECT machine_sid, id, name FROM machines WHERE machine_sid IN ("
                             "  SELECT machine_sid FROM machines WHERE machine_sid IS NOT NULL"
                             "  GROUP BY machine_sid HAVING COUNT(*) > 1) ORDER BY machine_sid, name)"
                             " GROUP BY machine_sid ORDER BY COUNT(*) DESC, machine_sid"):
        ids, names = json.loads(row["ids"]), json.loads(row["names"])
        duplicate_groups.append({"machine_sid": row["machine_sid"], "count": len(names), "machines": names})
        for id_ in ids:
            duplicates_of[id_] = tuple(n for i, n in zip(ids, names) if i != id_)

    holders = _dicts(fleet, f"SELECT a.sid, a.name AS account, a.machine_id, m.name AS machine"
                            f" FROM machine_accounts a JOIN machines m ON m.id = a.machine_id"
                            f" WHERE a.sid IN ({_COLLIDING_SIDS}) ORDER BY a.sid, lower(a.name), m.name")
    collisions, collisions_of = [], {}
    for sid, group in itertools.groupby(holders, key=lambda r: r["sid"]):
        group = list(group)
        accounts: dict[str, dict] = {}
        for row in group:
            entry = accounts.setdefault(row["account"].casefold(), {"account": row["account"], "machines": []})
            entry["machines"].append(row["machine"])
        collisions.append({"sid": sid, "accounts": list(accounts.values())})
        for row in group:
            here = f"{row['machine']}\\{row['account']}"
            collisions_of.setdefault(row["machine_id"], []).extend(
                {"sid": sid, "here": here, "there": f"{other['machine']}\\{other['account']}"}
                for other in group
                if other["machine_id"] != row["machine_id"] and other["account"].casefold() != row["account"].casefold())

    cross = _dicts(fleet, "SELECT * FROM cross_machine_references ORDER BY machine, sid, other")
    cross_count: dict[int, int] = {}
    for row in cross:
        row["own_previous"] = bool(row["own_previous"])
        cross_count[row["machine_id"]] = cross_count.get(row["machine_id"], 0) + 1
    machines = tuple(
        FleetMachine(r["id"], r["name"], r["scan_db"], r["image"], r["machine_sid"], r["product_type"], r["sids"],
                     r["problem_sids"], r["accounts"], duplicates_of.get(r["id"], ()),
                     tuple(collisions_of.get(r["id"], ())), cross_count.get(r["id"], 0))
        for r in machines_rows)
    failed = tuple(FailedInput(r["input"], r["scan_db"], r["reason"], r["exit_code"])
                   for r in _dicts(fleet, "SELECT * FROM failed_inputs ORDER BY input"))
    children: dict[str, list[str]] = {}
    for name, parents in fleet.execute("SELECT name, parent_disks FROM machines WHERE parent_disks IS NOT NULL"
                                       " ORDER BY name"):
        for parent in json.loads(parents or "[]"):
            children.setdefault(parent, []).append(name)
    shared = tuple({"parent": parent, "count": len(names), "machines": names}
                   for parent, names in sorted(children.items()) if len(names) > 1)
    return FleetSummary(machines, tuple(duplicate_groups), tuple(collisions), tuple(cross), failed, shared)


def same_sid_machines(fleet: sqlite_utils.Database, machine_sid: str) -> list[dict]:
    """Every machine of the fleet with this machine SID (for `aclscan check`)."""
    return _dicts(fleet, "SELECT id, name, computer_name, scan_db, image, volume_serials FROM machines"
                         " WHERE machine_sid = ? ORDER BY name, scan_db", (machine_sid,))
