"""The scanner against volumes built with mkntfs + ntfs-3g (tests/volumes.py):
descriptors set through system.ntfs_acl come back byte for byte and as the SDDL
Windows would write; hard links, 60 names, 40 streams, long Unicode names
across the fixup, 30-level paths; a deleted file is not listed; the image is
not written."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess

import pytest

from aclscan.scan import scan_image
from tests import volumes
from tests.volumes import ALICE, KEN, MACHINE, NONE_GROUP, TRUSTED_INSTALLER

pytestmark = pytest.mark.ntfs3g


@pytest.fixture(scope="module")
def scanned(feature_volume, tmp_path_factory):
    image = feature_volume.image
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    db_path = tmp_path_factory.mktemp("ntfs3g-scan") / "scan.db"
    result = scan_image(image, db_path)
    after = hashlib.sha256(image.read_bytes()).hexdigest()
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    return feature_volume, result, db, before, after


def _by_path(db):
    rows = db.execute(
        "SELECT f.path, f.entry, f.links, f.security_id, d.raw, d.sddl FROM files f"
        " LEFT JOIN descriptors d ON d.key = f.descriptor_key").fetchall()
    return {r["path"]: r for r in rows}


def test_scan_is_clean_and_read_only(scanned):
    _manifest, result, _db, before, after = scanned
    assert result.problems == []
    assert before == after


def test_every_path_with_its_entry_and_exact_descriptor(scanned):
    manifest, _result, db, *_ = scanned
    files = _by_path(db)
    links = {r["path"]: r["entry"] for r in db.execute("SELECT path, entry FROM links")}
    checked = 0
    for path, made in manifest.entries.items():
        full = "/" + path if path else "/"
        row = files.get(full)
        if row is None:  # a hard link's other names live in the links table
            assert links.get(full) == made.inode, full
            row = next(r for r in files.values() if r["entry"] == made.inode)
        assert row["entry"] == made.inode, full
        assert row["raw"] == made.sd, f"descriptor of {full} differs from system.ntfs_acl"
        checked += 1
    assert checked == len(manifest.entries) > 300


def test_special_descriptors_as_windows_sddl(scanned):
    files = _by_path(scanned[2])
    user = f"{MACHINE}-1003"
    expected = {
        "null_dacl": f"O:{KEN}G:{NONE_GROUP}D:NO_ACCESS_CONTROL",
        "empty_dacl": f"O:{KEN}G:{NONE_GROUP}D:",
        "no_dacl": f"O:{KEN}G:{NONE_GROUP}",
        "protected": f"O:BAG:SYD:P(A;;FA;;;BA)(A;;FR;;;{KEN})",
        "deny": f"O:{KEN}G:{NONE_GROUP}D:(D;;0x110116;;;{ALICE})(D;;FA;;;{user})(A;;FA;;;{KEN})(A;;FR;;;WD)",
        "inherited": (
            f"O:{KEN}G:{NONE_GROUP}D:AI(A;;0x1301bf;;;{ALICE})(D;ID;SD;;;{MACHINE}-1004)(A;ID;FA;;;SY)"
            f"(A;ID;FA;;;BA)(A;ID;FA;;;{KEN})(A;OICIID;FR;;;BU)"
        ),
        "sacl_label": "O:BAG:SYD:(A;;FA;;;SY)(A;;0x1200a9;;;AU)S:(ML;;NW;;;HI)(AU;SAFA;SD;;;WD)",
        "placeholders": (
            f"O:{TRUSTED_INSTALLER}G:SYD:(A;OICIIO;GA;;;CO)(A;OICIIO;FR;;;CG)(A;;FR;;;OW)"
            f"(A;;FA;;;{TRUSTED_INSTALLER})"
        ),
    }
    for key, sddl in expected.items():
        assert files[f"/acl/{key}.txt"]["sddl"] == sddl, key
    root = "O:BAG:SYD:(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)(A;CIIO;GA;;;CO)"
    assert files["/"]["sddl"] == root


def test_sixty_hard_links(scanned):
    manifest, _result, db, *_ = scanned
    target = manifest.entries[volumes.LINK_TARGET]
    row = db.execute("SELECT links FROM files WHERE entry = ?", (target.inode,)).fetchone()
    assert row["links"] == volumes.LINK_COUNT == 60
    names = sorted(r["path"] for r in db.execute("SELECT path FROM links WHERE entry = ?", (target.inode,)))
    assert names == sorted("/" + n for n in target.names)
    # Its names spill into extension records: the scan saw them through their base.
    assert len(names) == 60


def test_forty_streams_and_long_names(scanned):
    manifest, _result, db, *_ = scanned
    files = _by_path(db)
    stream_file = manifest.entries[volumes.STREAM_FILE]
    assert files["/" + volumes.STREAM_FILE]["entry"] == stream_file.inode
    assert files["/" + volumes.STREAM_FILE]["raw"] == stream_file.sd
    for name in volumes.long_names():
        assert "/names/" + name in files, name


def test_deep_path_and_deleted_file(scanned):
    manifest, _result, db, *_ = scanned
    files = _by_path(db)
    assert files["/" + volumes.DEEP_DIR + "/bottom.txt"]["sddl"].startswith("O:BAG:SYD:P")
    assert volumes.DEEP_DIR.count("/") >= 29
    assert "/" + volumes.DELETED_FILE not in files
    deleted_entry = manifest.deleted[volumes.DELETED_FILE]
    assert db.execute("SELECT COUNT(*) FROM files WHERE entry = ?", (deleted_entry,)).fetchone()[0] == 0


def test_distinct_descriptors_are_shared(scanned):
    manifest, _result, db, *_ = scanned
    shared = {made.sd for path, made in manifest.entries.items() if path.startswith("shared/d") and not made.is_dir}
    assert len(shared) == volumes.SHARED_SDS
    rows = db.execute("SELECT d.raw, COUNT(*) AS n FROM files f JOIN descriptors d ON d.key = f.descriptor_key"
                      " WHERE f.path GLOB '/shared/d*/*' GROUP BY d.key").fetchall()
    assert {r["raw"] for r in rows} == shared
    assert sum(r["n"] for r in rows) == volumes.SHARED_FILES


@pytest.mark.skipif(shutil.which("fls") is None, reason="The Sleuth Kit (fls) is not installed")
def test_same_names_as_the_sleuth_kit(scanned):
    manifest, _result, db, *_ = scanned
    listing = subprocess.run(["fls", "-r", "-p", "-u", str(manifest.image)], check=True, capture_output=True).stdout
    expected = set()
    for line in listing.decode("utf-8", "surrogateescape").splitlines():
        meta, _, path = line.partition(":\t")
        entry = int(meta.split()[-1].split("-")[0])
        if ":" in path.rsplit("/", 1)[-1] or path == "$OrphanFiles":
            continue
        if any(0xDC80 <= ord(c) <= 0xDCFF for c in path):
            continue  # fls cuts names longer than its buffer mid-character (the 765-byte one)
        expected.add((entry, "/" + path))
    ours = {(r[0], r[1]) for r in db.execute("SELECT entry, path FROM files")}
    ours |= {(r[0], r[1]) for r in db.execute("SELECT entry, path FROM links")}
    assert not (expected - ours)


@pytest.fixture(scope="module")
def fragmented(ntfs3g, tmp_path_factory):
    """4000 small files interleaved with 256 KiB blobs: $MFT outgrows its first run."""
    spec = []
    for i in range(40):
        spec.append(volumes.File(f"big/blob{i:02d}.bin", b"\xAA" * (256 * 1024)))
        spec += [volumes.File(f"d{i:02d}/f{j:03d}.txt", b"x") for j in range(100)]
    return volumes.build_volume(tmp_path_factory.mktemp("fragmented") / "frag.img", spec, size=32 << 20)


def test_fragmented_mft(fragmented, tmp_path):
    from aclscan.image import Image

    with Image(fragmented.image) as image:
        volume = image.open_volume(image.volumes()[0])
        _size, runs = volume.mft_runs()
    assert len([r for r in runs if r[1] is not None]) >= 2, "the test volume's $MFT is not fragmented"
    result = scan_image(fragmented.image, tmp_path / "frag.db")
    assert result.problems == []
    db = sqlite3.connect(tmp_path / "frag.db")
    ours = {path: entry for path, entry in db.execute("SELECT path, entry FROM files")}
    for path, made in fragmented.entries.items():
        assert ours.get("/" + path if path else "/") == made.inode, path
    # Records beyond the first run are really there.
    first_run_records = runs[0][2] // 1024
    assert max(ours.values()) >= first_run_records


@pytest.mark.skipif(shutil.which("losetup") is None, reason="losetup not available")
def test_block_device_is_scanned_read_only(feature_volume, tmp_path):
    made = subprocess.run(["losetup", "--read-only", "--find", "--show", str(feature_volume.image)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot attach a loop device here: {made.stderr.strip()}")
    device = made.stdout.strip()
    try:
        result = scan_image(device, tmp_path / "dev.db")
    finally:
        subprocess.run(["losetup", "-d", device], check=False)
    assert result.problems == []
    from_device = {r for r in sqlite3.connect(tmp_path / "dev.db").execute("SELECT entry, path, descriptor_key FROM files")}
    from_file = {r for r in sqlite3.connect(_scan_file(feature_volume.image, tmp_path)).execute(
        "SELECT entry, path, descriptor_key FROM files")}
    assert from_device == from_file and len(from_device) > 300


def _scan_file(image, tmp_path):
    scan_image(image, tmp_path / "file.db")
    return tmp_path / "file.db"
