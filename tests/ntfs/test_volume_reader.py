"""The project's own NTFS reading (boot sector, `$MFT` run list, attributes,
`$ATTRIBUTE_LIST`, directory indexes) on volumes of every cluster size Windows
writes, up to 2 MiB where The Sleuth Kit refuses the volume. Expected values come
from ntfs-3g (files, data, `system.ntfs_acl`) and from The Sleuth Kit's `fls`
where it can open the volume."""

from __future__ import annotations

import shutil
import struct
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
    # Descriptors only: the SAM here is a stand-in for the lookup test, not a hive to judge.
    result = scan_image(image, db, resolve=None)
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


# --- $MFT's own $DATA in two records ---------------------------------------------------

def _fixups(record: bytearray, apply: bool) -> None:
    """Apply (or undo, for writing) a 1024-byte record's update sequence array at 0x30."""
    usn = record[0x30:0x32]
    for index, end in enumerate((510, 1022)):
        slot = 0x32 + 2 * index
        if apply:
            assert record[end : end + 2] == usn
            record[end : end + 2] = record[slot : slot + 2]
        else:
            record[slot : slot + 2] = record[end : end + 2]
            record[end : end + 2] = usn


def _attributes(record: bytes) -> list[bytes]:
    found, position = [], struct.unpack_from("<H", record, 0x14)[0]
    while struct.unpack_from("<I", record, position)[0] != 0xFFFFFFFF:
        length = struct.unpack_from("<I", record, position + 4)[0]
        found.append(record[position : position + length])
        position += length
    return found


def _non_resident_data(template: bytes, lowest: int, highest: int, runs: bytes) -> bytes:
    runs_offset = struct.unpack_from("<H", template, 0x20)[0]
    body = bytearray(template[:runs_offset]) + runs.ljust((len(runs) + 7) // 8 * 8, b"\0")
    struct.pack_into("<I", body, 4, len(body))
    struct.pack_into("<qq", body, 0x10, lowest, highest)
    return bytes(body)


def _record(template: bytes, attributes: list[bytes], base: int) -> bytearray:
    first = struct.unpack_from("<H", template, 0x14)[0]
    record = bytearray(template[:first]) + b"".join(attributes) + b"\xff\xff\xff\xff" + bytes(4)
    struct.pack_into("<I", record, 0x18, len(record))
    struct.pack_into("<Q", record, 0x20, base)
    record = record.ljust(1024, b"\0")
    _fixups(record, apply=False)
    return record


@pytest.mark.skipif(shutil.which("mkntfs") is None, reason="mkntfs (ntfs-3g) is not installed")
def test_mft_data_continued_in_an_extension_record(tmp_path):
    """Record 0 lists its $DATA in two extents, the second in record 16 (where
    Windows puts $MFT's extension records), through an $ATTRIBUTE_LIST."""
    image = tmp_path / "mft-list.img"
    with open(image, "wb") as fh:
        fh.truncate(16 * MiB)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", str(image)], check=True, capture_output=True)
    reference = tmp_path / "reference.db"
    scan_image(image, reference)
    data = bytearray(image.read_bytes())
    mft = struct.unpack_from("<Q", data, 0x30)[0] * 4096
    record0 = bytearray(data[mft : mft + 1024])
    _fixups(record0, apply=True)
    by_type = {struct.unpack_from("<I", a)[0]: a for a in _attributes(record0)}
    mft_data = by_type[0x80]
    allocated = struct.unpack_from("<q", mft_data, 0x28)[0] // 4096
    first_cluster = mft // 4096
    assert allocated >= 7, "mkntfs made a smaller $MFT than this test splits"
    split = 5  # VCNs 0-4 (records 0-19) stay in record 0; the rest moves to record 16
    extent0 = _non_resident_data(mft_data, 0, split - 1, bytes([0x11, split, first_cluster, 0]))
    extent1 = bytearray(_non_resident_data(mft_data, split, allocated - 1,
                                           bytes([0x11, allocated - split, first_cluster + split, 0])))
    struct.pack_into("<qqq", extent1, 0x28, 0, 0, 0)  # sizes live in the first extent only
    struct.pack_into("<H", extent1, 0x0E, 0)  # attribute id 0 in record 16

    def listed(attr_type, lowest, entry, attribute_id):
        return struct.pack("<IHBBqQH", attr_type, 0x20, 0, 0x1A, lowest, entry | (1 << 48), attribute_id) + bytes(6)

    ids = {t: struct.unpack_from("<H", a, 0x0E)[0] for t, a in by_type.items()}
    values = (listed(0x10, 0, 0, ids[0x10]) + listed(0x30, 0, 0, ids[0x30]) + listed(0x80, 0, 0, ids[0x80])
              + listed(0x80, split, 16, 0) + listed(0xB0, 0, 0, ids[0xB0]))
    attribute_list = struct.pack("<IIBBHHHIHBB", 0x20, 0, 0, 0, 0x18, 0, 7, len(values), 0x18, 0, 0) + values
    attribute_list = bytearray(attribute_list.ljust((len(attribute_list) + 7) // 8 * 8, b"\0"))
    struct.pack_into("<I", attribute_list, 4, len(attribute_list))
    data[mft : mft + 1024] = _record(record0, [by_type[0x10], bytes(attribute_list), by_type[0x30], extent0,
                                               by_type[0xB0]], base=0)
    data[mft + 16 * 1024 : mft + 17 * 1024] = _record(record0, [bytes(extent1)], base=0 | (1 << 48))
    image.write_bytes(data)

    with Image(image) as opened:
        volume = opened.open_volume(opened.locate()[0])
        size, spans = volume.mft_runs()
        assert [(start, where, length) for start, where, length in spans] == [
            (0, first_cluster * 4096, split * 4096), (split * 4096, (first_cluster + split) * 4096,
                                                      size - split * 4096)]
        assert volume.record(0).find(0x20)
    result = scan_image(image, tmp_path / "listed.db")
    assert result.problems == []
    query = "SELECT entry, path, descriptor_key FROM files ORDER BY entry"
    ours = sqlite3.connect(tmp_path / "listed.db").execute(query).fetchall()
    assert ours and ours == sqlite3.connect(reference).execute(query).fetchall()
    if shutil.which("istat"):  # The Sleuth Kit follows the list too
        shown = subprocess.run(["istat", str(image), "0"], capture_output=True, text=True, check=True).stdout
        assert "$ATTRIBUTE_LIST" in shown
