"""Every way an image can arrive (raw, split raw, gzip, E01, MBR and GPT disks)
gives the same scan. Volumes come from mkntfs alone (no FUSE needed)."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import subprocess

import pytest

from aclscan.errors import NotFound, NotNTFS
from aclscan.scan import scan_image

MiB = 1 << 20
pytestmark = pytest.mark.skipif(shutil.which("mkntfs") is None, reason="mkntfs (ntfs-3g) is not installed")


def make_volume(path, size=8 * MiB, label="vol"):
    with open(path, "wb") as fh:
        fh.truncate(size)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", "-L", label, str(path)], check=True, capture_output=True)
    return path


def snapshot(db_path):
    """What a scan found, independent of keys and image names."""
    conn = sqlite3.connect(db_path)
    files = sorted(conn.execute(
        "SELECT v.label, f.entry, f.path, d.raw FROM files f JOIN volumes v ON v.id = f.volume_id"
        " LEFT JOIN descriptors d ON d.key = f.descriptor_key"))
    volumes = sorted(conn.execute("SELECT label, partition, offset, serial FROM volumes"))
    return files, volumes


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    return make_volume(tmp_path_factory.mktemp("containers") / "vol.raw")


@pytest.fixture(scope="module")
def reference(volume):
    db = volume.with_suffix(".db")
    result = scan_image(volume, db)
    assert result.problems == [] and result.files > 10
    return snapshot(db)


def test_split_raw_set(volume, reference, tmp_path):
    subprocess.run(["split", "-b", str(3 * MiB), "-d", "-a", "3", "--numeric-suffixes=1", str(volume),
                    str(tmp_path / "vol.raw.")], check=True)
    assert (tmp_path / "vol.raw.003").exists()
    scan_image(tmp_path / "vol.raw.001", tmp_path / "s.db")
    assert snapshot(tmp_path / "s.db") == reference
    assert sqlite3.connect(tmp_path / "s.db").execute("SELECT image_kind FROM volumes").fetchone() == ("split",)


def test_gzip_compressed_raw(volume, reference, tmp_path):
    packed = tmp_path / "vol.raw.gz"
    with open(volume, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    scan_image(packed, tmp_path / "g.db")
    assert snapshot(tmp_path / "g.db") == reference


@pytest.mark.skipif(shutil.which("ewfacquirestream") is None, reason="ewf-tools (ewfacquirestream) not installed")
def test_e01_set(volume, reference, tmp_path):
    with open(volume, "rb") as src:
        subprocess.run(["ewfacquirestream", "-q", "-t", str(tmp_path / "vol"), "-S", str(2 * MiB)],
                       stdin=src, check=True, capture_output=True)
    segments = sorted(p.name for p in tmp_path.glob("vol.E*"))
    assert segments[0] == "vol.E01"
    scan_image(tmp_path / "vol.E01", tmp_path / "e.db")
    assert snapshot(tmp_path / "e.db") == reference


def _disk_with_two_volumes(tmp_path, table):
    disk = tmp_path / f"{table}.img"
    with open(disk, "wb") as fh:
        fh.truncate(24 * MiB)
    if table == "gpt":
        subprocess.run(["sgdisk", "-o", "-n", "1:2048:+8M", "-t", "1:0700", "-n", "2:20480:+8M", "-t", "2:0700",
                        str(disk)], check=True, capture_output=True)
    else:
        script = "label: dos\nstart=2048, size=16384, type=7\nstart=20480, size=16384, type=7\n"
        subprocess.run(["sfdisk", "-q", str(disk)], input=script, text=True, check=True, capture_output=True)
    for index, start in enumerate((2048, 20480)):
        part = make_volume(tmp_path / f"part{index}.raw", size=8 * MiB, label=f"{table}{index}")
        subprocess.run(["dd", f"if={part}", f"of={disk}", "bs=512", f"seek={start}", "conv=notrunc", "status=none"],
                       check=True)
    return disk


@pytest.mark.parametrize("table", ["gpt", "mbr"])
def test_whole_disk_scans_every_ntfs_partition(tmp_path, table):
    if shutil.which("sgdisk" if table == "gpt" else "sfdisk") is None:
        pytest.skip(f"partitioning tool for {table} not installed")
    disk = _disk_with_two_volumes(tmp_path, table)
    result = scan_image(disk, tmp_path / "all.db")
    assert [(v.location.partition, v.location.offset) for v in result.volumes] == [(0, 2048 * 512), (1, 20480 * 512)]
    labels = [r[0] for r in sqlite3.connect(tmp_path / "all.db").execute("SELECT label FROM volumes ORDER BY id")]
    assert labels == [f"{table}0", f"{table}1"]

    scan_image(disk, tmp_path / "p1.db", partition=1)
    assert [r[0] for r in sqlite3.connect(tmp_path / "p1.db").execute("SELECT label FROM volumes")] == [f"{table}1"]
    scan_image(disk, tmp_path / "o.db", offset=20480 * 512)
    assert [r[0] for r in sqlite3.connect(tmp_path / "o.db").execute("SELECT label FROM volumes")] == [f"{table}1"]

    with pytest.raises(NotFound):
        scan_image(disk, tmp_path / "x.db", partition=7)
    with pytest.raises(NotNTFS):
        scan_image(disk, tmp_path / "x.db", offset=512)


def test_a_partition_that_cannot_be_opened_is_recorded_and_the_others_scanned(tmp_path):
    if shutil.which("sfdisk") is None:
        pytest.skip("sfdisk not installed")
    disk = _disk_with_two_volumes(tmp_path, "mbr")
    with open(disk, "r+b") as fh:  # wreck the first volume's $MFT, keep its boot sector
        boot = fh.read(2048 * 512 + 512)[2048 * 512:]
        mft = int.from_bytes(boot[0x30:0x38], "little") * 4096
        fh.seek(2048 * 512 + mft)
        fh.write(b"\0" * 65536)
    result = scan_image(disk, tmp_path / "d.db")
    assert [v.location.partition for v in result.volumes] == [1]
    assert [p.kind for p in result.problems] == ["volume"]
    assert result.problems[0].reason.startswith("partition 0 at offset 1048576 skipped: cannot open the NTFS volume")
    row = sqlite3.connect(tmp_path / "d.db").execute("SELECT volume_id, kind FROM scan_errors").fetchall()
    assert row == [(None, "volume")]
