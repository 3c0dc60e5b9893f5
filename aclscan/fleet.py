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

Images are scanned first, in parallel processes (:func:`scan_images`), each into a
scan database of its own; the fleet only ever reads scan databases, so a fleet of
thousands can be scanned by any scheduler and ingested afterwards.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import sqlite_utils

from aclscan.classify import split_domain_relative
from aclscan.errors import DatabaseError, Error
from aclscan.store import connect_and_identify, is_sqlite_file, utc_now

FLEET_SCHEMA_VERSION = 1
FLEET_APPLICATION_ID = 0x41434C46  # "ACLF": an aclscan fleet database (scan databases are "ACLS")
STALE_VERDICTS = ("stale_prefix", "rid_collision")

FLEET_TABLES: dict[str, dict] = {
    "machines": {
        "columns": {"id": int, "name": str, "computer_name": str, "scan_db": str, "image": str, "machine_sid": str,
                    "product_type": str, "primary_domain_name": str, "volume_serials": str, "scanned_at": str,
                    "added_at": str},
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
        for table, columns, unique in FLEET_INDEXES:
            db[table].create_index(columns, unique=unique, if_not_exists=True)
        db.execute(f"PRAGMA application_id = {FLEET_APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {FLEET_SCHEMA_VERSION}")
        conn.commit()
    return db


def add_scan(fleet: sqlite_utils.Database, scan_db: str | os.PathLike) -> int:
    """Copy one scan database's machine into the fleet; a scan added before (same
    path) is replaced. Returns the machine's id."""
    from aclscan.findings import machine_facts
    from aclscan.store import open_database

    path = str(Path(scan_db).resolve())
    scan = open_database(path, index=False)
    try:
        facts = machine_facts(scan) or {}
        machine_sid = facts.get("machine_sid")
        if machine_sid is None:  # a scan from before schema 2 still names its machine SID
            row = scan.execute("SELECT sid FROM authorities WHERE kind = 'machine' LIMIT 1").fetchone()
            machine_sid = row[0] if row else None
        volumes = scan.execute("SELECT image, serial, scanned_at FROM volumes ORDER BY id").fetchall()
        image = volumes[0][0] if volumes else None
        scanned_at = min((v[2] for v in volumes if v[2]), default=None)
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
    finally:
        scan.conn.close()

    name = facts.get("computer_name") or Path(path).stem
    with fleet.conn:
        old = fleet.execute("SELECT id FROM machines WHERE scan_db = ?", (path,)).fetchone()
        if old is not None:
            for table in ("machine_sids", "machine_accounts", "machine_previous_sids"):
                fleet.execute(f"DELETE FROM {table} WHERE machine_id = ?", (old[0],))
            fleet.execute("DELETE FROM machines WHERE id = ?", (old[0],))
        fleet.execute("DELETE FROM failed_inputs WHERE scan_db = ? OR input = ?", (path, path))
        cursor = fleet.execute(
            "INSERT INTO machines (name, computer_name, scan_db, image, machine_sid, product_type,"
            " primary_domain_name, volume_serials, scanned_at, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, facts.get("computer_name"), path, image, machine_sid, facts.get("product_type"),
             facts.get("primary_domain_name"), json.dumps([v[1] for v in volumes]), scanned_at, utc_now()),
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
    return machine_id


def record_failure(fleet: sqlite_utils.Database, failure: "FailedInput") -> None:
    with fleet.conn:
        fleet.execute("DELETE FROM failed_inputs WHERE input = ?", (failure.input,))
        fleet.execute("INSERT INTO failed_inputs (input, scan_db, reason, exit_code, failed_at) VALUES (?, ?, ?, ?, ?)",
                      (failure.input, failure.scan_db, failure.reason, failure.exit_code, utc_now()))


# --- scanning images in parallel -----------------------------------------------------

@dataclass(frozen=True)
class FailedInput:
    """An input that gave no machine: an image that could not be scanned, a database
    that could not be read."""

    input: str
    scan_db: str | None
    reason: str
    exit_code: int


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
    """(image, scan database) pairs: each database beside the fleet, named after its
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


def _scan_one(image: str, db: str, domain_files: tuple[str, ...]) -> FailedInput | None:
    """One image into one scan database (runs in a worker process)."""
    from aclscan.scan import ResolveInputs, scan_image

    try:
        sources = []
        if domain_files:
            from aclscan.accounts.domain import DomainSource, read_csv, read_ldif

            for path in domain_files:
                export = read_csv(path) if path.lower().endswith(".csv") else read_ldif(path)
                sources.append(DomainSource(export, name=f"domain export {path}"))
        scan_image(image, db, resolve=ResolveInputs(domain_sources=tuple(sources)))
    except Error as exc:
        return FailedInput(image, db, " ".join(str(exc).split()) or exc.__class__.__name__, exc.exit_code)
    except Exception as exc:  # a bug in one image's scan must not stop the fleet
        return FailedInput(image, db, f"internal error: {exc.__class__.__name__}: {' '.join(str(exc).split())}",
                           Error.exit_code)
    return None


def scan_images(pairs: Sequence[tuple[str, str]], *, jobs: int | None = None,
                domain_files: Sequence[str] = ()) -> list[FailedInput]:
    """Scan each (image, database) pair, ``jobs`` processes at a time (default: one per
    CPU). A scan is itself two processes (the MFT pass and the row writer). Returns
    the images that failed; the others have their databases."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    if jobs == 1 or len(pairs) <= 1:
        found = [_scan_one(image, db, tuple(domain_files)) for image, db in pairs]
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(pairs))) as pool:
            found = list(pool.map(_scan_one, *zip(*pairs), [tuple(domain_files)] * len(pairs)))
    return [f for f in found if f is not None]


@dataclass(frozen=True)
class FleetBuild:
    added: tuple[str, ...]  # scan databases now in the fleet
    failed: tuple[FailedInput, ...]


def build_fleet(fleet_path: str | os.PathLike, inputs: Sequence[str], *, jobs: int | None = None,
                domain_files: Sequence[str] = ()) -> FleetBuild:
    """Add every input (a scan database, or an image scanned first into a database
    beside the fleet) to the fleet database; a bad input is recorded, the others go on."""
    fleet_file = Path(fleet_path)
    fleet = open_fleet(fleet_file)
    try:
        databases = [i for i in inputs if is_sqlite_file(i)]
        images = [i for i in inputs if not is_sqlite_file(i)]
        pairs = scan_targets(images, fleet_file.resolve().parent, avoid=[fleet_file, *map(Path, databases)])
        failed = scan_images(pairs, jobs=jobs, domain_files=domain_files)
        bad = {f.input for f in failed}
        added, ingest_failed = [], []
        for path in databases + [db for image, db in pairs if image not in bad]:
            try:
                add_scan(fleet, path)
                added.append(str(Path(path).resolve()))
            except Error as exc:
                ingest_failed.append(FailedInput(path, path, " ".join(str(exc).split()), exc.exit_code))
        for failure in failed + ingest_failed:
            record_failure(fleet, failure)
    finally:
        fleet.conn.close()
    return FleetBuild(tuple(added), tuple(failed + ingest_failed))


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
    duplicate_machine_sids: tuple[dict, ...]  # {"machine_sid", "machines": [...]}
    identity_collisions: tuple[dict, ...]
    cross_machine_references: tuple[dict, ...]
    failed: tuple[FailedInput, ...]

    @property
    def has_conflicts(self) -> bool:
        return bool(self.duplicate_machine_sids or self.identity_collisions)


def _dicts(db, sql: str, params=()) -> list[dict]:
    cursor = db.execute(sql, params)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


def summarise(fleet: sqlite_utils.Database) -> FleetSummary:
    """The fleet's machines and what it found across them."""
    from aclscan.classify import PROBLEMS

    marks = ", ".join("?" for _ in PROBLEMS)
    machines_rows = _dicts(fleet, f"""
        SELECT m.id, m.name, m.scan_db, m.image, m.machine_sid, m.product_type,
               (SELECT COUNT(*) FROM machine_sids s WHERE s.machine_id = m.id) AS sids,
               (SELECT COUNT(*) FROM machine_sids s WHERE s.machine_id = m.id AND s.verdict IN ({marks}))
                   AS problem_sids,
               (SELECT COUNT(*) FROM machine_accounts a WHERE a.machine_id = m.id) AS accounts
        FROM machines m ORDER BY m.name, m.scan_db""", sorted(PROBLEMS))
    duplicates_of: dict[int, list[str]] = {}
    for row in _dicts(fleet, "SELECT machine_id, other FROM duplicate_machine_sids ORDER BY other"):
        duplicates_of.setdefault(row["machine_id"], []).append(row["other"])
    collisions = _dicts(fleet, "SELECT * FROM identity_collisions ORDER BY sid, machine, other")
    collisions_of: dict[int, list[dict]] = {}
    for row in collisions:
        collisions_of.setdefault(row["machine_id"], []).append(
            {"sid": row["sid"], "here": f"{row['machine']}\\{row['account']}",
             "there": f"{row['other']}\\{row['other_account']}"})
    cross = _dicts(fleet, "SELECT * FROM cross_machine_references ORDER BY machine, sid, other")
    cross_count: dict[int, int] = {}
    for row in cross:
        row["own_previous"] = bool(row["own_previous"])
        cross_count[row["machine_id"]] = cross_count.get(row["machine_id"], 0) + 1
    machines = tuple(
        FleetMachine(r["id"], r["name"], r["scan_db"], r["image"], r["machine_sid"], r["product_type"], r["sids"],
                     r["problem_sids"], r["accounts"], tuple(duplicates_of.get(r["id"], ())),
                     tuple(collisions_of.get(r["id"], ())), cross_count.get(r["id"], 0))
        for r in machines_rows)
    duplicate_groups = []
    for row in _dicts(fleet, "SELECT machine_sid, json_group_array(name) AS names FROM ("
                             " SELECT machine_sid, name FROM machines WHERE machine_sid IN ("
                             "  SELECT machine_sid FROM machines WHERE machine_sid IS NOT NULL"
                             "  GROUP BY machine_sid HAVING COUNT(*) > 1) ORDER BY machine_sid, name)"
                             " GROUP BY machine_sid ORDER BY machine_sid"):
        duplicate_groups.append({"machine_sid": row["machine_sid"], "machines": json.loads(row["names"])})
    failed = tuple(FailedInput(r["input"], r["scan_db"], r["reason"], r["exit_code"])
                   for r in _dicts(fleet, "SELECT * FROM failed_inputs ORDER BY input"))
    return FleetSummary(machines, tuple(duplicate_groups), tuple(collisions), tuple(cross), failed)


def same_sid_machines(fleet: sqlite_utils.Database, machine_sid: str) -> list[dict]:
    """Every machine of the fleet with this machine SID (for `aclscan check`)."""
    return _dicts(fleet, "SELECT id, name, computer_name, scan_db, image, volume_serials FROM machines"
                         " WHERE machine_sid = ? ORDER BY name, scan_db", (machine_sid,))
