"""The scanner against real Windows-made volumes: every fact of
../shared/data/windows/README.md, and a second opinion from The Sleuth Kit."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
import sqlite_utils

from aclscan.scan import scan_image
from tests.shared_data import expand

DOMAIN_10 = "S-1-5-21-2341207468-2645333676-3461800803"
COMMON = {"S-1-5-18", "S-1-5-32-544", "S-1-5-32-545", "S-1-5-11"}

# name: (records in use, security ids in $SDS, ids used by $STANDARD_INFORMATION,
#        records with their own $SECURITY_DESCRIPTOR, ACE types over $SDS, SIDs or None)
FACTS = {
    "win10-lastaccess.raw": (
        36, list(range(256, 269)), 12, {5, 7, 12, 13, 14, 15},
        {"ACCESS_ALLOWED": 34, "SYSTEM_MANDATORY_LABEL": 3},
        COMMON | {"S-1-16-4096", f"{DOMAIN_10}-1001", f"{DOMAIN_10}-513"},
    ),
    "win10-ptrn.raw": (
        37, list(range(256, 268)), 11, {5, 7, 12, 13, 14, 15},
        {"ACCESS_ALLOWED": 26, "SYSTEM_MANDATORY_LABEL": 3},
        COMMON | {"S-1-16-4096", f"{DOMAIN_10}-1001", f"{DOMAIN_10}-513"},
    ),
    "win10-ramslack.raw": (
        35, list(range(256, 268)), 11, None,
        None,
        None,
    ),
    # The data README says all 9 ids of win7-vsstest are used; The Sleuth Kit's istat
    # and this scanner agree that no record refers to 261, so 8 are.
    "win7-vsstest.raw": (
        34, list(range(256, 265)), 8, None,
        {"ACCESS_ALLOWED": 23},
        COMMON | {"S-1-1-0", "S-1-5-21-4060289323-199701022-3924801681-1000",
                  "S-1-5-21-4060289323-199701022-3924801681-513"},
    ),
    "hybrid-perfile-sd.raw": (31, list(range(256, 261)), None, None, None, None),
}
NO_DESCRIPTOR = {"win7-vsstest.raw": {28}, "hybrid-perfile-sd.raw": {0}}
PER_FILE_COUNTS = {"win10-lastaccess.raw": 6, "win10-ptrn.raw": 6, "win10-ramslack.raw": 7,
                   "win7-vsstest.raw": 8, "hybrid-perfile-sd.raw": 12}


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    directory = tmp_path_factory.mktemp("windows")
    done = {}

    def scanned(name):
        if name not in done:
            image = expand("volumes", name, directory)
            before = hashlib.sha256(image.read_bytes()).hexdigest()
            db_path = directory / f"{name}.db"
            result = scan_image(image, db_path)
            after = hashlib.sha256(image.read_bytes()).hexdigest()
            done[name] = (image, sqlite_utils.Database(db_path), result, before, after)
        return done[name]

    return scanned


@pytest.mark.parametrize("name", sorted(FACTS))
def test_records_security_ids_and_per_file_descriptors(scans, name):
    _image, db, result, _before, _after = scans(name)
    in_use, sds_ids, used, per_file_entries, _types, _sids = FACTS[name]
    volume = next(db["volumes"].rows)
    assert volume["records_in_use"] == in_use
    assert result.problems == []
    assert [r["security_id"] for r in db.query("SELECT security_id FROM descriptors WHERE source = 'sds' ORDER BY 1")] == sds_ids
    if used is not None:
        assert db.execute("SELECT COUNT(DISTINCT security_id) FROM files").fetchone()[0] == used
    own = {r["entry"] for r in db.query(
        "SELECT f.entry FROM files f JOIN descriptors d ON d.key = f.descriptor_key WHERE d.source = 'attribute'")}
    assert len(own) == PER_FILE_COUNTS[name]
    if per_file_entries is not None:
        assert own == per_file_entries
    # Records with SecurityId 0 and no $SECURITY_DESCRIPTOR (checked with istat) have none;
    # every other file has one. The root's is its own, not one from $Secure.
    without = {r["entry"] for r in db.query("SELECT entry FROM files WHERE descriptor_key IS NULL")}
    assert without == NO_DESCRIPTOR.get(name, set())
    assert db.execute("SELECT security_id FROM files WHERE entry = 5").fetchone()[0] is None


@pytest.mark.parametrize("name", sorted(n for n, f in FACTS.items() if f[4]))
def test_ace_types_in_secure(scans, name):
    _image, db, *_ = scans(name)
    rows = db.query("SELECT a.type, COUNT(*) AS n FROM aces a JOIN descriptors d ON d.key = a.descriptor_key"
                    " WHERE d.source = 'sds' GROUP BY a.type")
    assert {r["type"]: r["n"] for r in rows} == FACTS[name][4]


@pytest.mark.parametrize("name", sorted(n for n, f in FACTS.items() if f[5]))
def test_sid_sets(scans, name):
    _image, db, *_ = scans(name)
    assert {r["sid"] for r in db["sids"].rows} == FACTS[name][5]


def test_ramslack_and_hybrid_name_their_domain_sids(scans):
    sids = {r["sid"] for r in scans("win10-ramslack.raw")[1]["sids"].rows}
    assert {"S-1-5-21-1183432223-2088216007-4099646507-1001", "S-1-5-21-1183432223-2088216007-4099646507-513"} <= sids
    sids = {r["sid"] for r in scans("hybrid-perfile-sd.raw")[1]["sids"].rows}
    assert "S-1-5-21-39260824-743453154-142223018-513" in sids


@pytest.mark.parametrize("name", sorted(FACTS))
def test_scan_never_writes_to_the_image(scans, name):
    _image, _db, _result, before, after = scans(name)
    assert before == after


@pytest.mark.parametrize("name", sorted(FACTS))
def test_descriptors_round_trip_and_render_as_sddl(scans, name):
    from aclscan.sd import SecurityDescriptor
    from aclscan.sd.sddl import from_sddl, to_sddl

    _image, db, *_ = scans(name)
    for row in db["descriptors"].rows:
        descriptor = SecurityDescriptor.from_bytes(row["raw"])
        assert descriptor.to_bytes() == row["raw"]
        assert row["sddl"] == to_sddl(descriptor)
        assert to_sddl(from_sddl(row["sddl"])) == row["sddl"]


@pytest.mark.skipif(shutil.which("fls") is None, reason="The Sleuth Kit (fls) is not installed")
@pytest.mark.parametrize("name", sorted(FACTS))
def test_paths_agree_with_the_sleuth_kit(scans, name):
    image, db, *_ = scans(name)
    volume = next(db["volumes"].rows)
    sector_offset = str(volume["offset"] // 512)
    listing = subprocess.run(["fls", "-r", "-p", "-u", "-o", sector_offset, str(image)],
                             check=True, capture_output=True, text=True).stdout
    expected = set()
    for line in listing.splitlines():
        meta, _, path = line.partition(":\t")
        entry = int(meta.split()[-1].split("-")[0])
        if ":" in path.rsplit("/", 1)[-1] or path == "$OrphanFiles":
            continue  # named streams, and TSK's virtual orphan folder (no MFT record)
        expected.add((entry, "/" + path))
    ours = {(r["entry"], r["path"]) for r in db.query("SELECT entry, path FROM files")}
    ours |= {(r["entry"], r["path"]) for r in db.query("SELECT entry, path FROM links")}
    missing = expected - ours
    assert not missing, f"names The Sleuth Kit lists that the scan lacks: {sorted(missing)[:10]}"
