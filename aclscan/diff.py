"""What changed between two scan databases: before and after a fix, or one machine at
two times.

Files are matched by volume (its serial), MFT entry and sequence number, and by path
where the entry was reused or moved; places by (kind, hive, location); hive references
(LSA rights, alias members, profiles, SAM accounts, service logons) as whole rows.

Distinct before many: the files are joined across the two databases in SQL (ATTACH) and
counted per (old descriptor key, new descriptor key) pair; a pair whose two descriptors
have the same bytes is unchanged and its files are never read one by one. Each changed
pair is compared once, from the rows the scans already parsed (``descriptors`` and
``aces``); only then are the files of the changed pairs streamed out.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from aclscan.errors import DatabaseError, NotFound
from aclscan.places import PLACE_KINDS
from aclscan.store import open_database

FILE = "file"
HIVE_REFERENCE_KINDS = ("lsa_right", "alias_member", "profile", "sam_account", "service_logon")
DIFF_KINDS = (FILE, *PLACE_KINDS, *HIVE_REFERENCE_KINDS)

ADDED, REMOVED, CHANGED = "added", "removed", "changed"

DIFF_COLUMNS = ("change", "sid", "kind", "path", "part", "position", "old", "new", "hive", "location", "volume",
                "entry")
SUMMARY_COLUMNS = ("sid", "account", "files_added", "files_removed", "files_changed",
                   "places_added", "places_removed", "places_changed")

_NO_KEY = -1  # a file without a descriptor (descriptor_key NULL), so pairs group and join by equality


@dataclass(frozen=True)
class Change:
    """One difference inside a descriptor (or a place's direct reference).

    ``part``: owner, group, dacl, sacl, control, descriptor (the bytes differ but no
    owner, group or ACE does: ACE order, an unparsed descriptor) or, for places naming
    a SID directly, their role (principal). ``old``/``new``: the SID for owner and group,
    the ACE's SDDL for an ACE, hex for control."""

    change: str
    sid: str
    part: str
    position: int | None
    old: str | None
    new: str | None


@dataclass(frozen=True)
class DescriptorDiff:
    """What changed from one descriptor to another: its entries, and per SID whether the
    place gained it (added), lost it (removed) or holds it differently (changed)."""

    changes: tuple[Change, ...]
    sids: dict[str, str]


@dataclass(frozen=True)
class _Content:
    owner: str | None
    group: str | None
    control: int | None
    aces: tuple[tuple[str, int, str, str], ...]  # (acl, position, sid, sddl)
    raw: bytes | None
    sddl: str | None

    @property
    def sid_set(self) -> set[str]:
        found = {s for s in (self.owner, self.group) if s}
        found.update(sid for _acl, _pos, sid, _sddl in self.aces if sid)
        return found


def compare_descriptors(old: _Content | None, new: _Content | None) -> DescriptorDiff:
    """The differences from ``old`` to ``new`` (None: no descriptor, a place added or removed)."""
    changes: list[Change] = []
    old_owner, new_owner = (old.owner if old else None), (new.owner if new else None)
    old_group, new_group = (old.group if old else None), (new.group if new else None)
    for part, before, after in (("owner", old_owner, new_owner), ("group", old_group, new_group)):
        if before != after:
            if before:
                changes.append(Change(REMOVED, before, part, None, before, None))
            if after:
                changes.append(Change(ADDED, after, part, None, None, after))
    for acl in ("dacl", "sacl"):
        changes.extend(_compare_acl([a for a in (old.aces if old else ()) if a[0] == acl],
                                    [a for a in (new.aces if new else ()) if a[0] == acl], acl))
    if old and new and old.control != new.control:
        changes.append(Change(CHANGED, "", "control", None, _hex(old.control), _hex(new.control)))
    if not changes and (old.raw if old else None) != (new.raw if new else None):
        changes.append(Change(CHANGED, "", "descriptor", None, old.sddl if old else None, new.sddl if new else None))
    old_sids, new_sids = (old.sid_set if old else set()), (new.sid_set if new else set())
    sids = {}
    for change in changes:
        if change.sid:
            sids[change.sid] = (ADDED if change.sid not in old_sids else
                                REMOVED if change.sid not in new_sids else CHANGED)
    return DescriptorDiff(tuple(changes), sids)


def compare_descriptor_bytes(old: bytes | None, new: bytes | None) -> DescriptorDiff:
    """:func:`compare_descriptors` of two self-relative descriptors (None: none), parsed
    as the scan parses them."""
    return compare_descriptors(_content_of(old), _content_of(new))


def _content_of(raw: bytes | None) -> _Content | None:
    from aclscan.descriptor_rows import describe

    if raw is None:
        return None
    info = describe(0, raw, security_id=None, source="bytes", hash_ok=None)
    aces = tuple((row[1], row[2], row[7], row[11]) for row in info.ace_rows)
    return _Content(info.owner, info.group, info.control, aces, raw, info.sddl)


def _compare_acl(old_aces, new_aces, acl: str) -> list[Change]:
    # ACEs equal in SID and SDDL are the same ACE wherever they stand (a move alone is
    # no change); what is left of a SID is paired in order (changed), the rest added or removed.
    unmatched_new = Counter((sid, sddl) for _a, _p, sid, sddl in new_aces)
    unmatched_old = Counter((sid, sddl) for _a, _p, sid, sddl in old_aces)
    common = unmatched_old & unmatched_new
    old_left: dict[str, list] = defaultdict(list)
    new_left: dict[str, list] = defaultdict(list)
    for aces, left in ((old_aces, old_left), (new_aces, new_left)):
        kept = Counter(common)
        for _a, position, sid, sddl in aces:
            if kept[(sid, sddl)]:
                kept[(sid, sddl)] -= 1
                continue
            left[sid].append((position, sddl))
    changes = []
    for sid in list(dict.fromkeys([*old_left, *new_left])):
        before, after = old_left.get(sid, []), new_left.get(sid, [])
        for (old_pos, old_sddl), (new_pos, new_sddl) in zip(before, after):
            changes.append(Change(CHANGED, sid, acl, new_pos, old_sddl, new_sddl))
        for position, sddl in before[len(after):]:
            changes.append(Change(REMOVED, sid, acl, position, sddl, None))
        for position, sddl in after[len(before):]:
            changes.append(Change(ADDED, sid, acl, position, None, sddl))
    return changes


def _hex(value: int | None) -> str | None:
    return None if value is None else f"0x{value:04x}"


LIVE = "live"


class UnknownVolume(NotFound):
    """A volume state named on the command line that the scan does not hold: a usage error."""

    exit_code = 2


@dataclass(frozen=True)
class VolumeState:
    """One volume state of a scan: a live volume, or a shadow copy store of one."""

    id: int
    serial: str | None
    snapshot: str | None  # the store's GUID; None for a live volume
    created: str | None

    @property
    def label(self) -> str:
        if self.snapshot is None:
            return f"volume {self.id} (live, serial {self.serial})"
        return f"volume {self.id} (shadow copy {{{self.snapshot}}} of {(self.created or '')[:16].replace('T', ' ')})"


def volume_states(conn: sqlite3.Connection, schema: str = "main") -> list[VolumeState]:
    """Every volume state of a scan, live volumes and shadow copy stores, by id."""
    return [VolumeState(*row) for row in conn.execute(
        f"SELECT id, serial, snapshot, snapshot_created FROM {schema}.volumes ORDER BY id")]


def find_volume_state(states: list[VolumeState], typed: str, where: str) -> VolumeState:
    """The state ``typed`` names: ``live`` (the one live volume), a volume id, or a shadow
    copy store's GUID (braces optional, any case; a unique prefix will do)."""
    text = typed.strip()
    found: list[VolumeState] = []
    if text.lower() == LIVE:
        found = [s for s in states if s.snapshot is None]
        if len(found) > 1:
            raise UnknownVolume(f"{where} has {len(found)} live volumes: name one by id "
                                f"({', '.join(str(s.id) for s in found)})")
    elif text.isdigit():
        found = [s for s in states if s.id == int(text)]
    elif text.strip("{}"):
        guid = text.strip("{}").lower()
        found = [s for s in states if s.snapshot and s.snapshot.lower().startswith(guid)]
    if len(found) == 1:
        return found[0]
    known = "; ".join(s.label for s in states) or "none"
    what = "names several volume states" if found else "is no volume state"
    raise UnknownVolume(f"{typed!r} {what} of {where} (live, a volume id or a shadow copy GUID); it has: {known}")


class ScanDiff:
    """Two scan databases side by side: A (main) and B (attached as ``b``); or two volume
    states of one scan (``after`` None or the same file: a shadow copy and the live
    volume), chosen by ``before_volume`` and ``after_volume`` (see
    :func:`find_volume_state`).

    Use as a context manager, or call :meth:`close`."""

    def __init__(self, before: str | Path, after: str | Path | None = None, *,
                 before_volume: str | None = None, after_volume: str | None = None):
        after = before if after is None else after
        # open_database checks each is an aclscan scan database (DatabaseError, exit 5),
        # migrates it and builds the file indexes the joins below use.
        self.db = open_database(before)
        self.conn: sqlite3.Connection = self.db.conn
        try:
            open_database(after).conn.close()
            self.conn.execute("ATTACH DATABASE ? AS b", [str(after)])
            # Only the states named take part: by default every volume of each side.
            self.states = {schema: volume_states(self.conn, schema) for schema in ("main", "b")}
            for schema, typed, path in (("main", before_volume, before), ("b", after_volume, after)):
                if typed is not None:
                    self.states[schema] = [find_volume_state(self.states[schema], typed, str(path))]
        except sqlite3.Error as exc:
            self.conn.close()
            raise DatabaseError(f"cannot attach {after}: {exc}") from None
        except (DatabaseError, UnknownVolume):
            self.conn.close()
            raise
        self.chosen_states = before_volume is not None or after_volume is not None
        self._contents: dict[tuple[str, int], _Content | None] = {}
        self._diffs: dict[tuple[int, int], DescriptorDiff] = {}
        self._volumes_matched = False
        self._files_grouped: list[tuple[int, int, int]] | None = None
        self._places_matched = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.conn.close()

    # -- descriptors, distinct first ----------------------------------------------------

    def _content(self, schema: str, key: int) -> _Content | None:
        if key == _NO_KEY:
            return None
        if (schema, key) not in self._contents:
            row = self.conn.execute(
                f'SELECT owner, "group", control, raw, sddl FROM {schema}.descriptors WHERE key = ?', [key]).fetchone()
            if row is None:
                content = None
            else:
                aces = tuple(self.conn.execute(
                    f"SELECT acl, position, sid, sddl FROM {schema}.aces WHERE descriptor_key = ? "
                    "ORDER BY acl, position", [key]))
                content = _Content(row[0], row[1], row[2], aces, row[3], row[4])
            self._contents[(schema, key)] = content
        return self._contents[(schema, key)]

    def descriptor_diff(self, old_key: int, new_key: int) -> DescriptorDiff:
        """The comparison of A's descriptor ``old_key`` with B's ``new_key`` (-1: none), once per pair."""
        pair = (old_key, new_key)
        if pair not in self._diffs:
            old, new = self._content("main", old_key), self._content("b", new_key)
            if old is not None and new is not None and old.raw == new.raw:
                self._diffs[pair] = DescriptorDiff((), {})
            else:
                self._diffs[pair] = compare_descriptors(old, new)
        return self._diffs[pair]

    # -- volumes and files ----------------------------------------------------------------

    def _match_volumes(self) -> None:
        """temp.volume_pairs (a, b, serial): volumes with one serial (and shadow copy store,
        or none: live), paired in order of (partition, offset) where that repeats; two
        states named by the caller are paired whatever their serials. temp.volume_serials:
        the states taking part, per side."""
        if self._volumes_matched:
            return
        self.conn.execute("CREATE TEMP TABLE volume_serials (side TEXT, id INTEGER, serial TEXT)")
        self.conn.executemany("INSERT INTO temp.volume_serials VALUES (?, ?, ?)",
                              [(schema, state.id, state.serial) for schema, states in self.states.items()
                               for state in states])
        self.conn.execute("CREATE TEMP TABLE volume_pairs (a INTEGER, b INTEGER, serial TEXT)")
        if self.chosen_states and len(self.states["main"]) == len(self.states["b"]) == 1:
            rows = [(self.states["main"][0].id, self.states["b"][0].id, self.states["main"][0].serial)]
        else:
            def volumes(schema):
                # A live volume pairs with a live one, a shadow copy store with the same store.
                wanted = {state.id for state in self.states[schema]}
                by_state = defaultdict(list)
                for vid, serial, snapshot in self.conn.execute(
                        f"SELECT id, serial, snapshot FROM {schema}.volumes ORDER BY partition, offset, id"):
                    if vid in wanted:
                        by_state[(serial, snapshot)].append(vid)
                return by_state
            old, new = volumes("main"), volumes("b")
            rows = []
            for (serial, snapshot), ids in old.items():
                rows.extend((a, b, serial) for a, b in zip(ids, new.get((serial, snapshot), [])) if serial is not None)
        self.conn.executemany("INSERT INTO temp.volume_pairs VALUES (?, ?, ?)", rows)
        self._volumes_matched = True

    def compares_places(self) -> bool:
        """Whether places and hive references take part. Between two scans, always. Between
        two chosen volume states only where both states had their places read: the scan
        reads the registry, tasks and hive references of the live volumes alone (a shadow
        copy's files are compared, its registry is history), and a side without places
        would list every place of the other as added or removed."""
        if not self.chosen_states:
            return True
        self._match_volumes()
        return all(self.conn.execute(
            f"SELECT 1 FROM {schema}.places WHERE volume_id IN "
            f"(SELECT id FROM temp.volume_serials WHERE side = '{schema}') LIMIT 1").fetchone()
            for schema in ("main", "b"))

    def notes(self) -> list[str]:
        """What the caller should be told beside the rows: volumes with no partner (their
        files are listed as removed or added), places left out of a comparison of states."""
        said = []
        snapshots = {(schema, state.id): state.snapshot for schema, states in self.states.items() for state in states}
        for side, serial, volume_id in self._unmatched():
            listed = "removed" if side == "before" else "added"
            store = snapshots.get(("main" if side == "before" else "b", volume_id))
            if store:
                said.append(f"shadow copy {{{store}}} of volume {serial} of {side} has no such store in the other "
                            f"scan: its files are listed as {listed}")
            else:
                said.append(f"volume {serial} of {side} has no volume of that serial in the other scan: "
                            f"its files are listed as {listed}")
        if self.chosen_states:
            said.append(f"comparing {self.states['main'][0].label if len(self.states['main']) == 1 else 'every volume'}"
                        f" with {self.states['b'][0].label if len(self.states['b']) == 1 else 'every volume'}")
            if not self.compares_places():
                said.append("files only: places (registry, services, tasks) and hive references are read for "
                            "live volumes alone, so a shadow copy's are not compared")
        return said

    def unmatched_volumes(self) -> list[tuple[str, str | None]]:
        """(side 'before' or 'after', serial) of each volume no volume of the other side
        matches: all its files are listed as removed (before) or added (after)."""
        return [(side, serial) for side, serial, _id in self._unmatched()]

    def _unmatched(self) -> list[tuple[str, str | None, int]]:
        self._match_volumes()
        return [("before" if side == "main" else "after", serial, vid) for side, serial, vid in self.conn.execute(
            "SELECT s.side, s.serial, s.id FROM temp.volume_serials s WHERE NOT EXISTS (SELECT 1 FROM temp.volume_pairs v "
            "WHERE (s.side = 'main' AND v.a = s.id) OR (s.side = 'b' AND v.b = s.id)) ORDER BY s.side DESC, s.id")]

    def _unmatched_files(self, *, empty: bool) -> None:
        """temp.a_only / temp.b_only: files with no same (volume, entry, sequence) on the
        other side, with their path; temp.path_pairs: those the path matches. ``empty``
        when the first pass found every file matched: the tables are made empty, without
        a second pass over the files."""
        nothing = " LIMIT 0" if empty else ""
        for side, other, pair_side, pair_other in (("main", "b", "a", "b"), ("b", "main", "b", "a")):
            table = "a_only" if side == "main" else "b_only"
            self.conn.execute(
                f"CREATE TEMP TABLE {table}_records AS "
                f"SELECT r.volume_id AS vol, r.entry, IFNULL(r.descriptor_key, {_NO_KEY}) AS key, "
                f"v.{pair_other} AS other_vol "
                f"FROM {side}.file_records r LEFT JOIN temp.volume_pairs v ON v.{pair_side} = r.volume_id "
                f"WHERE r.volume_id IN (SELECT id FROM temp.volume_serials WHERE side = '{side}') "
                f"AND (v.{pair_other} IS NULL OR NOT EXISTS (SELECT 1 FROM {other}.file_records o "
                f" WHERE o.volume_id = v.{pair_other} AND o.entry = r.entry AND o.sequence = r.sequence)){nothing}")
            self.conn.execute(
                f"CREATE TEMP TABLE {table} AS SELECT u.vol, u.entry, u.key, u.other_vol, f.path "
                f"FROM temp.{table}_records u JOIN {side}.files f ON f.volume_id = u.vol AND f.entry = u.entry")
        self.conn.execute(
            "CREATE TEMP TABLE path_pairs AS SELECT a.vol AS a_vol, a.entry AS a_entry, a.key AS a_key, "
            "b.vol AS b_vol, b.entry AS b_entry, b.key AS b_key, b.path AS path "
            "FROM temp.a_only a JOIN temp.b_only b ON b.vol = a.other_vol AND b.path = a.path")

    def file_groups(self) -> list[tuple[int, int, int]]:
        """(old key, new key, files) for every pair of descriptor keys the files have:
        -1 for a side where the file is missing (or has no descriptor)."""
        if self._files_grouped is not None:
            return self._files_grouped
        self._match_volumes()
        counts: Counter = Counter()
        # One pass over A's files, each looked up in B by (volume, entry, sequence): the
        # bulk, counted per descriptor pair in SQL. Only where it leaves files unmatched
        # (on either side) do the files one side lacks get a second look, by path.
        matched = unmatched = 0
        for old_key, new_key, missing, files in self.conn.execute(
                f"SELECT IFNULL(ra.descriptor_key, {_NO_KEY}), IFNULL(rb.descriptor_key, {_NO_KEY}), "
                "rb.entry IS NULL, COUNT(*) "
                "FROM temp.volume_pairs v JOIN main.file_records ra ON ra.volume_id = v.a "
                "LEFT JOIN b.file_records rb ON rb.volume_id = v.b AND rb.entry = ra.entry "
                "AND rb.sequence = ra.sequence GROUP BY 1, 2, 3"):
            if missing:
                unmatched += files
            else:
                counts[(old_key, new_key)] += files
                matched += files
        totals = [self.conn.execute(f"SELECT COUNT(*) FROM {schema}.file_records WHERE volume_id IN "
                                    f"(SELECT id FROM temp.volume_serials WHERE side = '{schema}')").fetchone()[0]
                  for schema in ("main", "b")]
        everything_matched = not unmatched and totals == [matched, matched]
        self._unmatched_files(empty=everything_matched)
        if everything_matched:
            self._files_grouped = [(old, new, n) for (old, new), n in counts.items()]
            return self._files_grouped
        queries = [
            "SELECT a_key, b_key, COUNT(*) FROM temp.path_pairs GROUP BY 1, 2",
            f"SELECT key, {_NO_KEY}, COUNT(*) FROM temp.a_only a WHERE NOT EXISTS "
            "(SELECT 1 FROM temp.path_pairs p WHERE p.a_vol = a.vol AND p.a_entry = a.entry) GROUP BY 1",
            f"SELECT {_NO_KEY}, key, COUNT(*) FROM temp.b_only b WHERE NOT EXISTS "
            "(SELECT 1 FROM temp.path_pairs p WHERE p.b_vol = b.vol AND p.b_entry = b.entry) GROUP BY 2",
        ]
        for sql in queries:
            for old_key, new_key, files in self.conn.execute(sql):
                counts[(old_key, new_key)] += files
        self._files_grouped = [(old, new, n) for (old, new), n in counts.items()]
        return self._files_grouped

    def _iter_changed_files(self, pairs: list[tuple[int, int]]) -> Iterator[tuple]:
        """(old key, new key, volume serial, entry, path) of each file in ``pairs``, streamed:
        files matched by entry, then by path, then those on one side only."""
        self.conn.execute("DROP TABLE IF EXISTS temp.wanted_pairs")
        self.conn.execute("CREATE TEMP TABLE wanted_pairs (a_key INTEGER, b_key INTEGER, PRIMARY KEY (a_key, b_key))")
        self.conn.executemany("INSERT INTO temp.wanted_pairs VALUES (?, ?)", pairs)
        # Driven by the changed pairs through the index on descriptor_key, so the cost
        # follows the files that changed, not the volume; in MFT order within a pair.
        yield from self.conn.execute(
            f"SELECT w.a_key, w.b_key, v.serial, fb.entry, fb.path FROM temp.wanted_pairs w "
            f"CROSS JOIN main.file_records ra ON ra.descriptor_key IS NULLIF(w.a_key, {_NO_KEY}) "
            "CROSS JOIN temp.volume_pairs v ON v.a = ra.volume_id "
            "CROSS JOIN b.files fb ON fb.volume_id = v.b AND fb.entry = ra.entry AND fb.sequence = ra.sequence "
            f"WHERE fb.descriptor_key IS NULLIF(w.b_key, {_NO_KEY})")
        yield from self.conn.execute(
            "SELECT w.a_key, w.b_key, v.serial, p.b_entry, p.path FROM temp.path_pairs p "
            "JOIN temp.wanted_pairs w ON w.a_key = p.a_key AND w.b_key = p.b_key "
            "JOIN temp.volume_serials v ON v.side = 'b' AND v.id = p.b_vol ORDER BY p.b_vol, p.b_entry")
        yield from self.conn.execute(
            f"SELECT w.a_key, w.b_key, v.serial, a.entry, a.path FROM temp.a_only a "
            f"JOIN temp.wanted_pairs w ON w.a_key = a.key AND w.b_key = {_NO_KEY} "
            "JOIN temp.volume_serials v ON v.side = 'main' AND v.id = a.vol "
            "WHERE NOT EXISTS (SELECT 1 FROM temp.path_pairs p WHERE p.a_vol = a.vol AND p.a_entry = a.entry) "
            "ORDER BY a.vol, a.entry")
        yield from self.conn.execute(
            f"SELECT w.a_key, w.b_key, v.serial, b.entry, b.path FROM temp.b_only b "
            f"JOIN temp.wanted_pairs w ON w.b_key = b.key AND w.a_key = {_NO_KEY} "
            "JOIN temp.volume_serials v ON v.side = 'b' AND v.id = b.vol "
            "WHERE NOT EXISTS (SELECT 1 FROM temp.path_pairs p WHERE p.b_vol = b.vol AND p.b_entry = b.entry) "
            "ORDER BY b.vol, b.entry")

    # -- places and hive references ---------------------------------------------------------

    def _match_places(self) -> None:
        """temp.place_pairs (a_id, b_id): places matched by kind, hive and location, a
        hive being the same where it was read from the same file (its name can change:
        ``NTUSER.DAT of S-1-...`` becomes ``NTUSER.DAT of profile /Users/Ken`` once its
        ProfileList entry is gone); b_id or a_id NULL for a place on one side only."""
        if self._places_matched:
            return
        self.conn.execute(
            "CREATE TEMP TABLE hive_names AS SELECT ha.name AS a_name, hb.name AS b_name "
            "FROM main.hives ha JOIN b.hives hb ON hb.origin = ha.origin WHERE ha.origin IS NOT NULL")
        self._match_volumes()
        states = {side: ("WHERE p.volume_id IN (SELECT id FROM temp.volume_serials WHERE side = "
                         f"'{side}')" if self.chosen_states else "") for side in ("main", "b")}
        self.conn.execute(
            "CREATE TEMP TABLE a_place_keys AS SELECT p.id, p.kind, IFNULL(h.b_name, IFNULL(p.hive, '')) AS hive, "
            "IFNULL(p.location, '') AS location FROM main.places p LEFT JOIN temp.hive_names h ON h.a_name = p.hive "
            + states["main"])
        self.conn.execute(
            "CREATE TEMP TABLE b_place_keys AS SELECT p.id, p.kind, IFNULL(p.hive, '') AS hive, "
            "IFNULL(p.location, '') AS location FROM b.places p " + states["b"])
        self.conn.execute("CREATE INDEX temp.b_place_keys_key ON b_place_keys (kind, hive, location)")
        self.conn.execute("CREATE INDEX temp.a_place_keys_key ON a_place_keys (kind, hive, location)")
        self.conn.execute(
            "CREATE TEMP TABLE place_pairs AS "
            "SELECT ka.id AS a_id, (SELECT kb.id FROM temp.b_place_keys kb WHERE kb.kind = ka.kind "
            "  AND kb.hive = ka.hive AND kb.location = ka.location ORDER BY kb.id LIMIT 1) AS b_id "
            "FROM temp.a_place_keys ka")
        self.conn.execute(
            "INSERT INTO temp.place_pairs SELECT NULL, kb.id FROM temp.b_place_keys kb WHERE NOT EXISTS "
            "(SELECT 1 FROM temp.a_place_keys ka WHERE ka.kind = kb.kind AND ka.hive = kb.hive "
            " AND ka.location = kb.location)")
        self._places_matched = True

    def _iter_changed_places(self, kind: str | None) -> Iterator[tuple]:
        """(kind, path, old key, new key, old direct SID, new direct SID, role, gone, old
        account, new account, hive, location) of each place whose descriptor bytes, direct SID or account
        name differ, or that one side lacks (``gone``: A's place is not in B)."""
        self._match_places()
        yield from self.conn.execute(
            f"SELECT IFNULL(pb.kind, pa.kind) AS kind, IFNULL(pb.path, pa.path) AS path, "
            f"IFNULL(pa.descriptor_key, {_NO_KEY}), IFNULL(pb.descriptor_key, {_NO_KEY}), pa.sid, pb.sid, "
            "IFNULL(pb.role, pa.role), pb.id IS NULL, pa.account, pb.account, "
            "IFNULL(pb.hive, pa.hive), IFNULL(pb.location, pa.location) "
            "FROM temp.place_pairs pp LEFT JOIN main.places pa ON pa.id = pp.a_id "
            "LEFT JOIN b.places pb ON pb.id = pp.b_id "
            "LEFT JOIN main.descriptors da ON da.key = pa.descriptor_key "
            "LEFT JOIN b.descriptors db ON db.key = pb.descriptor_key "
            "WHERE (pa.id IS NULL OR pb.id IS NULL OR da.raw IS NOT db.raw OR pa.sid IS NOT pb.sid "
            "       OR pa.account IS NOT pb.account) "
            "AND (:kind IS NULL OR IFNULL(pb.kind, pa.kind) = :kind) ORDER BY 1, 2", {"kind": kind})

    def place_diff(self, old_key: int, new_key: int, old_sid: str | None, new_sid: str | None,
                   role: str | None, gone: bool, old_account: str | None = None,
                   new_account: str | None = None) -> DescriptorDiff:
        """A place's differences: its descriptor's, and those of the SID or account name it
        names directly (a task's principal)."""
        found = self.descriptor_diff(old_key, new_key)
        part = role or "principal"
        if old_sid == new_sid and not (gone and old_sid):
            if old_account == new_account or gone:
                return found
            # The same SID (or none) under another name, as the store wrote it.
            return DescriptorDiff((*found.changes, Change(CHANGED, old_sid or "", part, None, old_account,
                                                          new_account)), found.sids)
        changes, sids = list(found.changes), dict(found.sids)
        if old_sid:
            changes.append(Change(REMOVED, old_sid, part, None, old_sid, None))
            sids.setdefault(old_sid, REMOVED)
        if new_sid and not gone:
            changes.append(Change(ADDED, new_sid, part, None, None, new_sid))
            sids.setdefault(new_sid, ADDED)
        return DescriptorDiff(tuple(changes), sids)

    def iter_hive_reference_changes(self, kind: str | None = None) -> Iterator[dict]:
        """Rows of hive_references on one side only; one removed and one added row of the
        same kind and SID (rights granted differ) make one changed row."""
        only = {}
        for side, other, change in (("main", "b", REMOVED), ("b", "main", ADDED)):
            only[change] = list(self.conn.execute(
                f"SELECT kind, sid, detail FROM {side}.hive_references "
                f"EXCEPT SELECT kind, sid, detail FROM {other}.hive_references ORDER BY 1, 2, 3"))
        removed_by = defaultdict(list)
        added_by = defaultdict(list)
        for k, sid, detail in only[REMOVED]:
            removed_by[(k, sid)].append(detail)
        for k, sid, detail in only[ADDED]:
            added_by[(k, sid)].append(detail)
        for key in sorted(set(removed_by) | set(added_by), key=lambda k: (k[0] or "", k[1] or "")):
            ref_kind, sid = key
            if kind and ref_kind != kind:
                continue
            before, after = removed_by.get(key, []), added_by.get(key, [])
            if len(before) == 1 and len(after) == 1:
                yield _row(CHANGED, sid, ref_kind, after[0], "reference", None, before[0], after[0])
                continue
            for detail in before:
                yield _row(REMOVED, sid, ref_kind, detail, "reference", None, detail, None)
            for detail in after:
                yield _row(ADDED, sid, ref_kind, detail, "reference", None, None, detail)

    # -- per SID, whether each file and place names it on either side -----------------------

    def sid_presence(self, sids) -> dict[str, Counter]:
        """Per SID of ``sids``: files and places (hive references included) that name it on
        the before side only (``files_before_only``, ``places_before_only``), on both
        (``_both``), on the after side only (``_after_only``). Files are counted per
        descriptor pair, as :meth:`summary` counts them; places over every matched pair,
        changed or not."""
        wanted = set(sids)
        counts: dict[str, Counter] = defaultdict(Counter)

        def tally(prefix: str, before: set[str], after: set[str], times: int = 1) -> None:
            for sid in (before | after) & wanted:
                side = "both" if sid in before and sid in after else "before_only" if sid in before else "after_only"
                counts[sid][f"{prefix}_{side}"] += times

        for old_key, new_key, files in self.file_groups():
            tally("files", self._sids_of("main", old_key), self._sids_of("b", new_key), files)
        if self.compares_places():
            self._match_places()
            for old_key, new_key, old_sid, new_sid in self.conn.execute(
                    f"SELECT IFNULL(pa.descriptor_key, {_NO_KEY}), IFNULL(pb.descriptor_key, {_NO_KEY}), pa.sid, pb.sid "
                    "FROM temp.place_pairs pp LEFT JOIN main.places pa ON pa.id = pp.a_id "
                    "LEFT JOIN b.places pb ON pb.id = pp.b_id"):
                tally("places", self._sids_of("main", old_key) | ({old_sid} if old_sid else set()),
                      self._sids_of("b", new_key) | ({new_sid} if new_sid else set()))
            rows = {schema: set(self.conn.execute(f"SELECT kind, sid, detail FROM {schema}.hive_references"))
                    for schema in ("main", "b")}
            for row in rows["main"] | rows["b"]:
                tally("places", {row[1]} if row in rows["main"] else set(), {row[1]} if row in rows["b"] else set())
        return counts

    def _sids_of(self, schema: str, key: int) -> set[str]:
        content = self._content(schema, key)
        return content.sid_set if content is not None else set()

    # -- what the command prints ------------------------------------------------------------

    def iter_changes(self, *, sid: str | None = None, kind: str | None = None) -> Iterator[dict]:
        """One row per difference (:data:`DIFF_COLUMNS`), per file, then place, then hive
        reference; ``sid`` and ``kind`` keep only theirs."""
        if kind in (None, FILE):
            wanted = []
            for old_key, new_key, _files in self.file_groups():
                found = self.descriptor_diff(old_key, new_key)
                if found.changes and (sid is None or sid in found.sids):
                    wanted.append((old_key, new_key))
            if wanted:
                for old_key, new_key, serial, entry, path in self._iter_changed_files(wanted):
                    for change in self.descriptor_diff(old_key, new_key).changes:
                        if sid is None or change.sid == sid:
                            yield _row(change.change, change.sid, FILE, path, change.part, change.position,
                                       change.old, change.new, serial, entry)
        places = self.compares_places()
        if places and (kind is None or kind in PLACE_KINDS):
            for (place_kind, path, old_key, new_key, old_sid, new_sid, role, gone, old_account, new_account,
                 hive, location) in self._iter_changed_places(kind):
                found = self.place_diff(old_key, new_key, old_sid, new_sid, role, bool(gone), old_account, new_account)
                for change in found.changes:
                    if sid is None or change.sid == sid:
                        yield _row(change.change, change.sid, place_kind, path, change.part, change.position,
                                   change.old, change.new, hive=hive, location=location)
        if places and (kind is None or kind in HIVE_REFERENCE_KINDS):
            for row in self.iter_hive_reference_changes(kind):
                if sid is None or row["sid"] == sid:
                    yield row

    def summary(self, *, sid: str | None = None, kind: str | None = None) -> list[dict]:
        """Per SID (:data:`SUMMARY_COLUMNS`): how many files and places gained it (added),
        lost it (removed) or hold it differently (changed). Counted per descriptor pair,
        never per file."""
        counts: dict[str, Counter] = defaultdict(Counter)
        if kind in (None, FILE):
            for old_key, new_key, files in self.file_groups():
                for found_sid, status in self.descriptor_diff(old_key, new_key).sids.items():
                    counts[found_sid][f"files_{status}"] += files
        places = self.compares_places()
        if places and (kind is None or kind in PLACE_KINDS):
            for _kind, _path, old_key, new_key, old_sid, new_sid, role, gone, *accounts, _hive, _location \
                    in self._iter_changed_places(kind):
                found = self.place_diff(old_key, new_key, old_sid, new_sid, role, bool(gone), *accounts)
                for found_sid, status in found.sids.items():
                    counts[found_sid][f"places_{status}"] += 1
        if places and (kind is None or kind in HIVE_REFERENCE_KINDS):
            for row in self.iter_hive_reference_changes(kind):
                counts[row["sid"]][f"places_{row['change']}"] += 1
        rows = []
        for found_sid in sorted(counts):
            if not found_sid or (sid is not None and found_sid != sid):
                continue
            row = {"sid": found_sid, "account": self._account(found_sid)}
            row.update({c: counts[found_sid][c] for c in SUMMARY_COLUMNS[2:]})
            rows.append(row)
        return rows

    def _account(self, sid: str) -> str | None:
        for schema in ("b", "main"):
            found = self.conn.execute(f"SELECT account FROM {schema}.findings WHERE sid = ? AND account IS NOT NULL "
                                      "AND account != ''", [sid]).fetchone()
            if found:
                return found[0]
        return None


def _row(change, sid, kind, path, part, position, old, new, volume=None, entry=None, *, hive=None,
         location=None) -> dict:
    return {"change": change, "sid": sid or None, "kind": kind, "path": path, "part": part, "position": position,
            "old": old, "new": new, "hive": hive, "location": location, "volume": volume, "entry": entry}
