"""The project's own NTFS reading (boot sector, `$MFT` run list, attributes,
`$ATTRIBUTE_LIST`, directory indexes) on volumes of every cluster size Windows
writes, up to 2 MiB where The Sleuth Kit refuses the volume. Expected values come
from ntfs-3g (files, data, `system.ntfs_acl`) and from The Sleuth Kit's `fls`
where it can open the volume."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from aclscan.image import ATTR_TYPE_DATA, Image
from aclscan.scan import scan_image
from tests import volumes
from tests.volumes import ALICE, FULL, KEN, NONE_GROUP, READ, SYSTEM, Dir, File, raw_sd

pytestmark = pytest.mark.ntfs3g

MiB = 1 << 20
# cluster size -> volume size mkntfs accepts for it
CLUSTER_SIZES = {4096: 64 * MiB, 65536: 256 * MiB, 2 * MiB: 512 * MiB}
SPREAD_FILES = 300  # enough names that the root of a directory's index spills into INDX buffers


def spec() -> list:
    private = raw_sd(KEN, NONE_GROUP, [(0, 0, FULL, KEN), (0, 0, READ, ALICE)])
    system_only = raw_sd(SYSTEM, SYSTEM, [(0, 0, FULL, SYSTEM)])
    entries = [
        Dir("Windows/System32/config", sd=system_only),
        File("Windows/System32/config/SAM", b"regf" + bytes(range(256)) * 40, sd=system_only),
        File("Users/Ken/big.bin", bytes(range(251)) * 23000, sd=private),  # 5.5 MB: several clusters
        File("Users/Ken/notes.txt", b"hello", sd=private, streams={"Zone.Identifier": b"[ZoneTransfer]\r\n"}),
    ]
    entries += [File(f"spread/file {n:04d}.txt", f"file {n}".encode()) for n in range(SPREAD_FILES)]
    return entries


@pytest.fixture(scope="module", params=sorted(CLUSTER_SIZES))
def built(request, ntfs3g, tmp_path_factory):
    cluster = request.param
    image = tmp_path_factory.mktemp(f"cluster{cluster}") / "vol.img"
    manifest = volumes.build_volume(image, spec(), size=CLUSTER_SIZES[cluster], cluster_size=cluster, label="big")
    db = image.with_suffix(".db")
    result = scan_image(image, db)
    return cluster, manifest, result, sqlite3.connect(db)


def test_scan_matches_ntfs3g_view(built):
    cluster, manifest, result, db = built
    assert result.problems == []
    assert db.execute("SELECT cluster_size, label FROM volumes").fetchall() == [(cluster, "big")]
    files = {path: (entry, raw) for path, entry, raw in db.execute(
        "SELECT f.path, f.entry, d.raw FROM files f LEFT JOIN descriptors d ON d.key = f.descriptor_key")}
    assert len(manifest.entries) > SPREAD_FILES
    for path, made in manifest.entries.items():
        assert files["/" + path if path else "/"] == (made.inode, made.sd), path


def test_file_bytes_by_path_in_any_letter_case(built):
    cluster, manifest, _result, _db = built
    with Image(manifest.image) as image:
        volume = image.open_volume(image.locate()[0])
        assert volume.cluster_size == cluster
        made = [m for m in manifest.entries.values() if not m.is_dir]
        assert len(made) > SPREAD_FILES
        for item in made:
            assert volume.open_path(item.path) == item.data, item.path
            assert volume.open_path(item.path.upper()) == item.data, item.path
        notes = manifest.entries["Users/Ken/notes.txt"]
        assert volume.read_attribute(notes.inode, ATTR_TYPE_DATA, "Zone.Identifier") == b"[ZoneTransfer]\r\n"
        with pytest.raises(KeyError):
            volume.open_path("Users/Ken/absent.txt")


@pytest.mark.skipif(shutil.which("fls") is None, reason="The Sleuth Kit (fls) is not installed")
def test_same_names_as_the_sleuth_kit_where_it_opens_the_volume(built):
    cluster, manifest, _result, db = built
    listing = subprocess.run(["fls", "-r", "-p", "-u", str(manifest.image)], capture_output=True)
    if cluster > 65536:
        # The reason this reader exists: TSK refuses clusters over 64 KiB.
        assert listing.returncode != 0
        return
    assert listing.returncode == 0
    expected = set()
    for line in listing.stdout.decode("utf-8", "surrogateescape").splitlines():
        meta, _, path = line.partition(":\t")
        if ":" in path.rsplit("/", 1)[-1] or path.startswith("$OrphanFiles"):
            continue
        expected.add((int(meta.split()[-1].split("-")[0]), "/" + path))
    assert len(expected) > SPREAD_FILES
    ours = {(r[0], r[1]) for r in db.execute("SELECT entry, path FROM files UNION SELECT entry, path FROM links")}
    assert expected <= ours


def test_attributes_in_extension_records(feature_volume):
    """The file with 40 streams and the one with 60 names keep attributes in
    extension records, listed by their $ATTRIBUTE_LIST."""
    stream_file = feature_volume.entries[volumes.STREAM_FILE]
    linked = feature_volume.entries[volumes.LINK_TARGET]
    assert len(stream_file.streams) == volumes.STREAM_COUNT
    with Image(feature_volume.image) as image:
        volume = image.open_volume(image.locate()[0])
        assert volume.record(stream_file.inode).find(0x20), "expected an $ATTRIBUTE_LIST"
        for name, content in stream_file.streams.items():
            assert volume.read_attribute(stream_file.inode, ATTR_TYPE_DATA, name) == content, name
        assert volume.open_path(volumes.STREAM_FILE) == stream_file.data
        assert len(linked.names) == volumes.LINK_COUNT
        for name in linked.names:
            assert volume.open_path(name) == linked.data, name


def _compressible(size: int, seed: int) -> bytes:
    import random

    rng = random.Random(seed)
    words = [b"regf", b"hbin", b"nk", b"vk", b"\x00\x00\x00\x00", b"S-1-5-21-", b"Administrator"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) if rng.random() < 0.9 else bytes([rng.randrange(256)])
    return bytes(out[:size])


def test_ntfs_compressed_file(ntfs3g, tmp_path):
    """A hive in a compressed folder (ntfs-3g -o compression): units that
    compressed, one that did not (random bytes), one of zeros (sparse)."""
    import os

    image = tmp_path / "compressed.img"
    with open(image, "wb") as fh:
        fh.truncate(64 * MiB)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", str(image)], check=True, capture_output=True)
    data = _compressible(150_000, 1) + os.urandom(70_000) + bytes(1 << 17) + _compressible(40_000, 2)
    mount = tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["ntfs-3g", "-o", "compression", str(image), str(mount)], check=True, capture_output=True)
    try:
        folder = mount / "Windows" / "System32" / "config"
        folder.mkdir(parents=True)
        subprocess.run(["setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000810", str(folder)], check=True)
        (folder / "SAM").write_bytes(data)
        attributes = subprocess.run(["getfattr", "--only-values", "-n", "system.ntfs_attrib_be",
                                     str(folder / "SAM")], capture_output=True, check=True).stdout
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert int.from_bytes(attributes, "big") & 0x800, f"ntfs-3g did not compress the file ({attributes!r})"
    with Image(image) as opened:
        volume = opened.open_volume(opened.locate()[0])
        assert volume.open_path("windows/system32/config/sam") == data
    if shutil.which("icat"):
        entry = subprocess.run(["ifind", "-n", "/Windows/System32/config/SAM", str(image)], capture_output=True,
                               text=True, check=True).stdout.strip()
        assert subprocess.run(["icat", str(image), entry], capture_output=True, check=True).stdout == data
