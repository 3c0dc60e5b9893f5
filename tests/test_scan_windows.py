"""The scanner against real Windows-made volumes: every fact of
../shared/data/windows/README.md, and a second opinion from The Sleuth Kit."""

from __future__ import annotations

import hashlib
import re
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
def test_descriptors_round_trip_and_read_back_from_their_sddl(scans, name):
    from aclscan.sd import SecurityDescriptor
    from aclscan.sd.sddl import from_sddl

    _image, db, *_ = scans(name)
    rows = list(db["descriptors"].rows)
    assert rows
    for row in rows:
        descriptor = SecurityDescriptor.from_bytes(row["raw"])
        assert descriptor.to_bytes() == row["raw"]
        assert from_sddl(row["sddl"]) == descriptor


# --- the stored SDDL against ntfs-3g's own reading of each file's descriptor ----------
# ntfssecaudit (ntfs-3g) prints every field of a mounted file's descriptor; the stored
# SDDL is decoded here with the tables of MS-DTYP 2.5.1.1 (SDDL), written out by hand,
# and the two must agree field by field.
SDDL_SIDS = {"SY": "S-1-5-18", "BA": "S-1-5-32-544", "BU": "S-1-5-32-545", "AU": "S-1-5-11", "WD": "S-1-1-0",
             "CO": "S-1-3-0", "CG": "S-1-3-1", "OW": "S-1-3-4", "LS": "S-1-5-19", "NS": "S-1-5-20",
             "IU": "S-1-5-4", "SU": "S-1-5-6", "BG": "S-1-5-32-546", "PU": "S-1-5-32-547", "AC": "S-1-15-2-1",
             "LW": "S-1-16-4096", "ME": "S-1-16-8192", "HI": "S-1-16-12288", "SI": "S-1-16-16384", "RC": "S-1-5-12",
             "BO": "S-1-5-32-551", "SO": "S-1-5-32-549", "PS": "S-1-5-10", "ED": "S-1-5-9", "AN": "S-1-5-7"}
SDDL_ACE_TYPES = {"A": 0, "D": 1, "AU": 2, "AL": 3, "OA": 5, "OD": 6, "OU": 7, "OL": 8, "XA": 9, "XD": 10,
                  "ML": 0x11, "XU": 0x0D, "RA": 0x12, "SP": 0x13}
SDDL_ACE_FLAGS = {"OI": 0x1, "CI": 0x2, "NP": 0x4, "IO": 0x8, "ID": 0x10, "SA": 0x40, "FA": 0x80}
SDDL_RIGHTS = {"GA": 0x10000000, "GX": 0x20000000, "GW": 0x40000000, "GR": 0x80000000, "SD": 0x10000,
               "RC": 0x20000, "WD": 0x40000, "WO": 0x80000, "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "RP": 0x10,
               "WP": 0x20, "DT": 0x40, "LO": 0x80, "CR": 0x100, "FA": 0x1F01FF, "FR": 0x120089, "FW": 0x120116,
               "FX": 0x1200A0, "KA": 0xF003F, "KR": 0x20019, "KW": 0x20006, "KX": 0x20019, "NR": 0x2, "NW": 0x1,
               "NX": 0x4}
# SDDL ACL flags -> SECURITY_DESCRIPTOR_CONTROL bits, for D: and S:
SDDL_ACL_FLAGS = {"D": {"P": 0x1000, "AI": 0x400, "AR": 0x100}, "S": {"P": 0x2000, "AI": 0x800, "AR": 0x200}}


def _sddl_sid(text: str) -> str:
    return text if text.startswith("S-") else SDDL_SIDS[text]


def _sddl_letters(text: str, table: dict[str, int]) -> int:
    if text.startswith("0x"):
        return int(text, 16)
    assert len(text) % 2 == 0, text
    return sum(table[text[i : i + 2]] for i in range(0, len(text), 2))


def _decode_sddl(text: str) -> dict:
    """{owner, group, control bits named by ACL flags, DACL and SACL as (type, flags, mask, sid)}."""
    found = {"O": None, "G": None, "D": None, "S": None, "control": 0}
    for tag, body in re.findall(r"([OGDS]):(.*?)(?=[OGDS]:|$)", text):
        if tag in "OG":
            found[tag] = _sddl_sid(body)
            continue
        flags, _, aces = body.partition("(")
        aces = "(" + aces if aces else ""
        flags = flags.replace("NO_ACCESS_CONTROL", "")
        while flags:
            name = next(f for f in ("AI", "AR", "P") if flags.startswith(f))
            found["control"] |= SDDL_ACL_FLAGS[tag][name]
            flags = flags[len(name) :]
        found[tag] = [
            (SDDL_ACE_TYPES[kind], _sddl_letters(ace_flags, SDDL_ACE_FLAGS), _sddl_letters(rights, SDDL_RIGHTS),
             _sddl_sid(sid))
            for kind, ace_flags, rights, _object, _inherited, sid in
            (ace.split(";")[:6] for ace in re.findall(r"\(([^()]*)\)", aces))
        ]
    return found


# ntfssecaudit 1.5.0 dies of a segmentation fault on this descriptor (a DACL granting only
# DELETE). Read by hand from its 80 bytes instead: control 0x8004, owner at 0x34
# S-1-5-32-544, group at 0x44 S-1-5-18, DACL at 0x14 with one ACE: type 0, flags 0,
# mask 0x00010000 (DELETE, "SD"), S-1-5-32-544.
HAND_CHECKED = {
    ("win7-vsstest.raw", "/System Volume Information/{3808876b-c176-4e48-b7ae-04046e6cc752}"):
        "O:BAG:SYD:(A;;SD;;;BA)",
}


def _secaudit(path) -> dict | None:
    """The same fields as ntfssecaudit -vv prints them for a file on a mounted volume
    (None where ntfssecaudit crashes)."""
    done = subprocess.run(["ntfssecaudit", "-vv", str(path)], capture_output=True, text=True)
    if done.returncode < 0:
        return None
    text = done.stdout
    found = {"O": None, "G": None, "D": None, "S": None, "control": None}
    section = None
    ace = None
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if line in ("DACL", "SACL"):
            section = line[0]
            found[section] = []
        elif line.startswith(("No SACL", "No DACL", "Posix")):
            section = None
        elif words[0] == "flags" and found["control"] is None:
            found["control"] = int(words[1], 16)
        elif words[0] in ("O:dec", "G:dec"):
            found[words[0][0]] = words[1]
        elif section and words[0] == "type":
            ace = [int(words[1]), None, None, None]
            found[section].append(ace)
        elif section and words[0] == "flags":
            ace[1] = int(words[1], 16)
        elif section and words[:2] == ["Acc", "rgts"]:
            ace[2] = int(words[2], 16)
        elif section and words[0] == "dec":
            ace[3] = words[1]
    for key in "DS":
        if found[key] is not None:
            found[key] = [tuple(a) for a in found[key]]
    return found


@pytest.mark.skipif(shutil.which("ntfssecaudit") is None, reason="ntfs-3g's ntfssecaudit is not installed")
@pytest.mark.parametrize("name", sorted(FACTS))
def test_stored_sddl_agrees_with_ntfs3g(scans, name, ntfs3g):
    image, db, *_ = scans(name)
    volume = next(db["volumes"].rows)
    # One path per distinct descriptor; ntfs-3g hides the metadata files ($MFT, ...).
    rows = list(db.query(
        "SELECT f.descriptor_key AS key, MIN(f.path) AS path, d.sddl AS sddl FROM files f "
        "JOIN descriptors d ON d.key = f.descriptor_key WHERE f.path NOT LIKE '/$%' GROUP BY f.descriptor_key"))
    assert len(rows) >= 2
    control_bits = 0x1000 | 0x400 | 0x100 | 0x2000 | 0x800 | 0x200
    with ntfs3g.mounted(image, offset=volume["offset"], readonly=True) as root:
        for row in rows:
            ours = _decode_sddl(row["sddl"])
            theirs = _secaudit(root / row["path"].lstrip("/"))
            if theirs is None:
                assert row["sddl"] == HAND_CHECKED[(name, row["path"])]
                continue
            assert theirs["control"] is not None, row["path"]
            theirs["control"] &= control_bits
            assert ours == theirs, (row["path"], row["sddl"])


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
