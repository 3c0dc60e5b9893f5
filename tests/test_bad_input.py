"""Bad input is recorded and the rest of the volume is still scanned: a torn MFT
record, a descriptor whose offsets point outside it, an ACL whose count lies, a
truncated image. Each gives one line on stderr and exit code 3."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess

import pytest

from aclscan.cli import main
from aclscan.image import Image
from aclscan.ntfs.mft import BootSector
from aclscan.ntfs.sds import SDS_HEADER, parse_sds, security_hash
from tests.shared_data import expand

pytestmark = pytest.mark.skipif(shutil.which("mkntfs") is None, reason="mkntfs (ntfs-3g) is not installed")
RECORD = 1024


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "pristine.raw"
    with open(path, "wb") as fh:
        fh.truncate(8 << 20)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture
def volume(pristine, tmp_path):
    copy = tmp_path / "vol.raw"
    shutil.copyfile(pristine, copy)
    return copy


def mft_offset(path) -> int:
    return mft_offset_at(path, 0)


def mft_offset_at(path, volume_offset: int) -> int:
    """Byte offset of $MFT from the start of the volume (from its boot sector)."""
    with Image(path) as image:
        boot = BootSector.from_bytes(image.read(volume_offset, 512))
    return boot.mft_lcn * boot.cluster_size


def rewrite_descriptor(path, security_id, change):
    """Apply ``change`` to both copies of a descriptor in $SDS, with a valid hash."""
    with Image(path) as image:
        volume = image.open_volume(image.volumes()[0])
        entry = parse_sds(volume.read_sds())[0][security_id]
    header = SDS_HEADER.pack(entry.hash, security_id, entry.offset, SDS_HEADER.size + len(entry.descriptor))
    data = bytearray(path.read_bytes())
    new = bytearray(entry.descriptor)
    change(new)
    new_header = SDS_HEADER.pack(security_hash(bytes(new)), security_id, entry.offset, SDS_HEADER.size + len(new))
    places = []  # $SDH and $SII index entries repeat the header: keep real entries only
    start = data.find(header)
    while start >= 0:
        if data[start + SDS_HEADER.size : start + SDS_HEADER.size + len(entry.descriptor)] == entry.descriptor:
            places.append(start)
        start = data.find(header, start + 1)
    assert len(places) == 2  # the primary and its mirror
    for place in places:
        data[place : place + len(new_header) + len(new)] = new_header + new
    path.write_bytes(bytes(data))


def scan(volume, capsys):
    db = volume.with_suffix(".db")
    code = main(["scan", str(volume), "--db", str(db), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err, sqlite3.connect(db)


def test_pristine_volume_scans_clean(pristine, tmp_path, capsys):
    code, err, db = scan(shutil.copyfile(pristine, tmp_path / "p.raw") and tmp_path / "p.raw", capsys)
    assert (code, err) == (0, [])
    assert db.execute("SELECT COUNT(*) FROM scan_errors").fetchone() == (0,)


def test_torn_record_is_recorded_and_the_rest_scanned(volume, capsys):
    data = bytearray(volume.read_bytes())
    place = mft_offset(volume) + 26 * RECORD  # $Extend/$Reparse
    assert data[place : place + 4] == b"FILE"
    data[place + 510] ^= 0xFF  # the first sector's update sequence number no longer matches
    volume.write_bytes(bytes(data))
    code, err, db = scan(volume, capsys)
    assert code == 3
    assert err == ["Error: 1 bad item(s) recorded in scan_errors; first: update sequence (fixup) mismatch:"
                   " torn or corrupt record (record 26)"]
    assert db.execute("SELECT kind, entry, reason FROM scan_errors").fetchall() == [
        ("record", 26, "update sequence (fixup) mismatch: torn or corrupt record")]
    paths = {r[0] for r in db.execute("SELECT path FROM files")}
    assert "/$Extend/$Reparse" not in paths
    assert {"/$MFT", "/$Extend/$ObjId", "/$Extend/$Quota", "/"} <= paths


def test_descriptor_offset_outside_it(volume, capsys):
    rewrite_descriptor(volume, 256, lambda sd: struct.pack_into("<I", sd, 4, 0x7000))  # OffsetOwner
    code, err, db = scan(volume, capsys)
    assert code == 3 and len(err) == 1 and err[0].startswith("Error: 1 bad item(s) recorded in scan_errors; first: malformed descriptor")
    kind, security_id, reason = db.execute("SELECT kind, security_id, reason FROM scan_errors").fetchone()
    assert (kind, security_id) == ("descriptor", 256)
    row = db.execute("SELECT sddl, error, files FROM descriptors WHERE security_id = 256").fetchone()
    assert row[0] is None and row[1] == reason and row[2] > 0  # kept, with its files
    assert db.execute("SELECT COUNT(*) FROM descriptors WHERE security_id <> 256 AND sddl IS NOT NULL").fetchone()[0] > 0


def test_acl_whose_count_lies(volume, capsys):
    def lie(sd):
        dacl = struct.unpack_from("<I", sd, 16)[0]  # OffsetDacl
        struct.pack_into("<H", sd, dacl + 4, 200)  # AceCount
    rewrite_descriptor(volume, 257, lie)
    code, err, db = scan(volume, capsys)
    assert code == 3 and len(err) == 1
    assert db.execute("SELECT kind, security_id FROM scan_errors").fetchall() == [("descriptor", 257)]
    assert db.execute("SELECT COUNT(*) FROM aces a JOIN descriptors d ON d.key = a.descriptor_key"
                      " WHERE d.security_id = 257").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM aces").fetchone()[0] > 0


def test_image_truncated_inside_the_mft(tmp_path, capsys):
    # On this Windows volume $UpCase and friends lie before $MFT, so the volume still
    # opens when the image ends 20 records into $MFT.
    source = expand("volumes", "win10-lastaccess.raw", tmp_path)
    partition = 65536
    cut = partition + mft_offset_at(source, partition) + 20 * RECORD
    volume = tmp_path / "cut.raw"
    with open(source, "rb") as src, open(volume, "wb") as dst:
        dst.write(src.read(cut))
    code, err, db = scan(volume, capsys)
    assert code == 3
    assert err == ["Error: 1 bad item(s) recorded in scan_errors; first: MFT records 20..255 unreadable"
                   " (truncated image or read error) (record 20)"]
    entries = [r[0] for r in db.execute("SELECT entry FROM files ORDER BY entry")]
    assert entries == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]


def test_image_truncated_before_its_metadata_is_refused_in_one_line(volume, capsys):
    with open(volume, "r+b") as fh:
        fh.truncate(mft_offset(volume) + 20 * RECORD)
    db = volume.with_suffix(".db")
    code = main(["scan", str(volume), "--db", str(db), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4
    assert len(err) == 1 and err[0].startswith("Error: cannot open the NTFS volume at offset 0 of ")
    assert not db.exists()  # no half-made database is left behind
