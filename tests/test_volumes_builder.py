"""The volume builder (tests/volumes.py) and aclscan.fix.ntfs3g, checked against The Sleuth Kit."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from aclscan.errors import Error, MountError, ToolMissing
from aclscan.fix import ntfs3g as ntfs3g_module
from tests import volumes

pytestmark = pytest.mark.ntfs3g

FLS_LINE = re.compile(
    r"^(?P<kind>\S+) (?P<deleted>\* )?(?P<inode>\d+)(?:-(?P<type>\d+)-(?P<id>\d+))?"
    r"(?P<realloc>\(realloc\))?:\t(?P<path>.*)$"
)


def tsk(*argv: str | os.PathLike[str]) -> str:
    if shutil.which(str(argv[0])) is None:
        pytest.skip(f"The Sleuth Kit's {argv[0]} is not installed")
    done = subprocess.run([str(a) for a in argv], capture_output=True, check=True)
    return done.stdout.decode("utf-8", errors="surrogateescape")


def fls(manifest: volumes.Manifest, *extra: str) -> list[dict[str, str]]:
    out = tsk("fls", "-r", "-p", "-o", str(manifest.sector_offset), *extra, manifest.image)
    rows = []
    for line in out.splitlines():
        match = FLS_LINE.match(line)
        assert match, f"unexpected fls line {line!r}"
        rows.append(match.groupdict())
    return rows


def istat(manifest: volumes.Manifest, inode: int) -> str:
    return tsk("istat", "-o", str(manifest.sector_offset), manifest.image, str(inode))


@pytest.fixture(scope="module")
def listing(feature_volume):
    """Allocated names from fls: path -> (inode, attribute type, attribute id)."""
    names = {}
    for row in fls(feature_volume):
        if row["deleted"] or row["kind"].startswith("-") or row["path"].startswith("$"):
            continue
        names[row["path"]] = (int(row["inode"]), row["type"], row["id"])
    return names


@pytest.fixture(scope="module")
def mft(feature_volume) -> bytes:
    return subprocess.run(["icat", feature_volume.image, "0"], capture_output=True, check=True).stdout


def mft_record(mft: bytes, inode: int) -> bytes:
    """A 1 KiB record with its update sequence (fixups) applied."""
    record = bytearray(mft[inode * 1024 : (inode + 1) * 1024])
    assert record[:4] == b"FILE"
    usa_offset, usa_count = struct.unpack_from("<HH", record, 4)
    for sector in range(1, usa_count):
        end = sector * 512
        assert record[end - 2 : end] == record[usa_offset : usa_offset + 2]
        record[end - 2 : end] = record[usa_offset + 2 * sector : usa_offset + 2 * sector + 2]
    return bytes(record)


def file_name_spans(record: bytes) -> list[tuple[int, int]]:
    """(start, end) in the record of each resident $FILE_NAME's name."""
    spans = []
    offset = struct.unpack_from("<H", record, 0x14)[0]
    while offset < len(record) - 8:
        attr_type, length = struct.unpack_from("<II", record, offset)
        if attr_type == 0xFFFFFFFF or length == 0:
            break
        if attr_type == 0x30:
            value = offset + struct.unpack_from("<H", record, offset + 0x14)[0]
            start = value + 66
            spans.append((start, start + 2 * record[value + 64]))
        offset += length
    return spans


# --- raw_sd -------------------------------------------------------------------


def test_raw_sd_matches_the_descriptor_ntfs3g_writes_itself(feature_volume):
    # ntfs-3g gives a file it creates (no permissions option) this legacy descriptor:
    # owner and group Administrators, Everyone full control inherited to all.
    expected = volumes.raw_sd(
        volumes.ADMINISTRATORS,
        volumes.ADMINISTRATORS,
        [(volumes.ACCESS_ALLOWED, volumes.OBJECT_INHERIT | volumes.CONTAINER_INHERIT, volumes.FULL, volumes.EVERYONE)],
    )
    assert feature_volume.entries["acl/protected dir/inside.txt"].sd == expected
    assert feature_volume.entries["shared"].sd == expected


def test_raw_sd_layout():
    null = volumes.raw_sd(volumes.KEN, volumes.NONE_GROUP, None)
    control, owner, group, sacl, dacl = struct.unpack_from("<HIIII", null, 2)
    assert control == 0x8004 and (owner, sacl, dacl) == (20, 0, 0) and group == 20 + 28
    assert len(null) == 20 + 28 + 28
    absent = volumes.raw_sd(volumes.KEN, volumes.NONE_GROUP, None, control=0x8000)
    assert struct.unpack_from("<H", absent, 2)[0] == 0x8000
    empty = volumes.raw_sd(volumes.KEN, volumes.NONE_GROUP, [])
    assert struct.unpack_from("<I", empty, 16)[0] == 76 and empty[76:] == bytes.fromhex("0200080000000000")
    labelled = volumes.feature_sds()["sacl_label"]
    control, _, _, sacl, dacl = struct.unpack_from("<HIIII", labelled, 2)
    assert control == 0x8014 and 0 < sacl < dacl
    assert labelled[sacl + 8] == volumes.SYSTEM_MANDATORY_LABEL
    assert volumes.sid_bytes("S-1-16-12288") == bytes.fromhex("010100000000001000300000")


# --- descriptors ----------------------------------------------------------------


def test_descriptors_read_back_exactly_after_remount(feature_volume, ntfs3g):
    sds = volumes.feature_sds()
    spec = {entry.path: entry for entry in volumes.feature_spec()}
    with ntfs3g.mounted(feature_volume.image, readonly=True) as root:
        for path, made in feature_volume.entries.items():
            assert ntfs3g.get_ntfs_acl(root / path if path else root) == made.sd, path
            if getattr(spec.get(path), "sd", None) is not None:
                assert made.explicit_sd and made.sd == spec[path].sd
    assert feature_volume.entries[""].sd == sds["root"]
    assert feature_volume.entries["acl/null_dacl.txt"].sd == sds["null_dacl"]
    assert feature_volume.entries["streams/forty streams.txt"].sd == sds["sacl_label"]
    assert max(len(sd) for sd in feature_volume.distinct_sds()) > 128  # os.getxattr's EIO case


def test_identical_descriptors_share_one_security_id(feature_volume):
    ids: dict[bytes, set[int]] = {}
    shared = sorted(p for p, m in feature_volume.entries.items() if p.startswith("shared/d") and not m.is_dir)
    for path in shared[:40] + ["acl/null_dacl.txt", "acl/null dacl dir", "acl/deny.txt", volumes.LINK_TARGET]:
        made = feature_volume.entries[path]
        security_id = int(re.search(r"Security ID: (\d+)", istat(feature_volume, made.inode))[1])
        assert security_id >= 256, path  # in $Secure, not a legacy attribute
        ids.setdefault(made.sd, set()).add(security_id)
    assert all(len(found) == 1 for found in ids.values())
    assert len({next(iter(found)) for found in ids.values()}) == len(ids) == volumes.SHARED_SDS + 2
    legacy = istat(feature_volume, feature_volume.entries["shared"].inode)
    assert "Security ID: 0" in legacy and "$SECURITY_DESCRIPTOR" in legacy


def test_feature_volume_has_the_promised_descriptors(feature_volume):
    shared = [m for p, m in feature_volume.entries.items() if p.startswith("shared/d") and not m.is_dir]
    assert len(shared) == volumes.SHARED_FILES
    assert len({m.sd for m in shared}) == volumes.SHARED_SDS
    sds = volumes.feature_sds()
    on_volume = feature_volume.distinct_sds()
    for key in ("null_dacl", "empty_dacl", "no_dacl", "protected", "deny", "inherited", "sacl_label"):
        assert sds[key] in on_volume, key


# --- names, links, streams --------------------------------------------------------


def test_every_path_is_where_the_manifest_says(feature_volume, listing):
    for path, made in feature_volume.entries.items():
        if path:
            assert listing[path][0] == made.inode, path
    files = {p for p, (_, attr_type, _) in listing.items() if attr_type == "128" and ":" not in p}
    made_files = {p for p, m in feature_volume.entries.items() if not m.is_dir}
    assert files == made_files


def test_thirty_levels_deep(feature_volume, listing):
    bottom = volumes.DEEP_DIR + "/bottom.txt"
    assert bottom.count("/") == volumes.DEEP_LEVELS
    assert listing[bottom][0] == feature_volume.entries[bottom].inode


def test_one_file_has_sixty_names_in_sixty_directories(feature_volume, listing):
    target = feature_volume.entries[volumes.LINK_TARGET]
    assert len(target.names) == volumes.LINK_COUNT
    assert len({name.rsplit("/", 1)[0] for name in target.names}) == volumes.LINK_COUNT
    assert sorted(p for p, (inode, _, _) in listing.items() if inode == target.inode) == list(target.names)
    report = istat(feature_volume, target.inode)
    assert f"Links: {volumes.LINK_COUNT}" in report
    assert "$ATTRIBUTE_LIST" in report
    assert len(re.findall(r"Type: \$FILE_NAME", report)) == volumes.LINK_COUNT


def test_one_file_has_forty_named_streams(feature_volume, listing, ntfs3g):
    made = feature_volume.entries[volumes.STREAM_FILE]
    assert len(made.streams) == volumes.STREAM_COUNT
    prefix = volumes.STREAM_FILE + ":"
    streams = {p[len(prefix) :]: attr for p, attr in listing.items() if p.startswith(prefix)}
    assert set(streams) == set(made.streams)
    for name in ("stream01", "Zone.Identifier"):
        inode, attr_type, attr_id = streams[name]
        content = subprocess.run(
            ["icat", feature_volume.image, f"{inode}-{attr_type}-{attr_id}"], capture_output=True, check=True
        ).stdout
        assert content == made.streams[name]
    with ntfs3g.mounted(feature_volume.image, readonly=True) as root:
        assert sorted(ntfs3g.list_streams(root / volumes.STREAM_FILE)) == sorted(made.streams)


def test_long_names_come_back_exactly(feature_volume, listing):
    names = volumes.long_names()
    assert max(len(n.encode("utf-16-le")) // 2 for n in names) == 255
    assert any(ord(c) > 0xFFFF for n in names for c in n)
    for name in names:
        path = "names/" + name
        assert listing[path][0] == feature_volume.entries[path].inode


def test_some_names_cross_the_first_sector_boundary(feature_volume, mft):
    crossing = split_pairs = 0
    for name in volumes.long_names():
        record = mft_record(mft, feature_volume.entries["names/" + name].inode)
        ((start, end),) = file_name_spans(record)
        assert record[start:end].decode("utf-16-le") == name
        if start < 510 < end:
            crossing += 1
            unit = struct.unpack_from("<H", record, 510)[0]
            split_pairs += 0xD800 <= unit <= 0xDFFF
    assert crossing >= 8
    assert split_pairs >= 2  # a surrogate pair with one half under the fixup


def test_deleted_file_is_in_the_mft_but_not_the_tree(feature_volume, listing):
    (path, inode), = feature_volume.deleted.items()
    assert path not in listing
    deleted = [r for r in fls(feature_volume, "-d") if r["path"] == path]
    assert [int(r["inode"]) for r in deleted] == [inode]
    report = istat(feature_volume, inode)
    assert "Not Allocated" in report and "Name: deleted file.txt" in report


# --- aclscan.fix.ntfs3g -------------------------------------------------------------


def test_partition_inside_a_disk_image(ntfs3g, tmp_path):
    offset = 1 << 20
    sd = volumes.raw_sd(volumes.KEN, volumes.NONE_GROUP, [(0, 0, volumes.FULL, volumes.KEN)])
    manifest = volumes.build_volume(
        tmp_path / "disk.img",
        [volumes.File("Users/Ken/notes.txt", b"notes\n", sd=sd)],
        size=24 << 20,
        label="DISK",
        partition_offset=offset,
    )
    table = tsk("mmls", manifest.image)
    assert re.search(r"0000002048\s+0000049151\s+0000047104\s+NTFS", table), table
    assert "Volume Name: DISK" in tsk("fsstat", "-o", "2048", manifest.image)
    assert "Users/Ken/notes.txt" in {r["path"] for r in fls(manifest)}
    assert ntfs3g_module.SECTOR * 2048 == offset
    with ntfs3g.mounted(manifest.image, offset=offset, readonly=True) as root:
        assert ntfs3g.get_ntfs_acl(root / "Users/Ken/notes.txt") == sd
    assert subprocess.run(["losetup", "-j", manifest.image], capture_output=True, text=True).stdout == ""


def test_mount_is_cleaned_up_and_readonly_refuses_writes(ntfs3g, tmp_path):
    image = ntfs3g.make_image(tmp_path / "v.img", 8 << 20)
    before = image.read_bytes()
    with ntfs3g.mounted(image, readonly=True) as root:
        assert os.path.ismount(root)
        with pytest.raises(OSError):
            (root / "new").mkdir()
        with pytest.raises(OSError):
            ntfs3g.set_ntfs_acl(root, volumes.raw_sd(volumes.KEN, volumes.KEN, []))
    assert not root.exists()
    assert image.read_bytes() == before
    with ntfs3g.mounted(image) as root:
        ntfs3g.set_ntfs_acl(root, volumes.raw_sd(volumes.KEN, volumes.KEN, []))
        with pytest.raises(OSError):  # ntfs-3g validates what it stores
            ntfs3g.set_ntfs_acl(root, b"\x01\x00\x04\x80" + b"\xff" * 16)
        with pytest.raises(FileNotFoundError):
            ntfs3g.get_ntfs_acl(root / "missing")
    assert str(root.parent) not in Path("/proc/mounts").read_text()


def test_mount_errors_are_one_line(ntfs3g, tmp_path):
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\0" * (2 << 20))
    with pytest.raises(MountError) as caught:
        with ntfs3g.mounted(junk):
            pass
    message = str(caught.value)
    assert "\n" not in message and "junk.img" in message and "NTFS signature is missing" in message
    assert caught.value.exit_code == 7 and isinstance(caught.value, (Error, OSError))
    with pytest.raises(MountError):
        ntfs3g.make_image(tmp_path / "odd.img", 8 << 20, partition_offset=1000)


def test_missing_tools(monkeypatch, tmp_path):
    monkeypatch.setattr(ntfs3g_module, "_which", lambda *names: None)
    assert "ntfs-3g" in ntfs3g_module.ntfs3g_available() or "mkntfs" in ntfs3g_module.ntfs3g_available()
    with pytest.raises(ToolMissing) as caught:
        with ntfs3g_module.mounted(tmp_path / "x.img"):
            pass
    assert caught.value.exit_code == 6 and isinstance(caught.value, FileNotFoundError)
    with pytest.raises(ToolMissing):
        ntfs3g_module.make_image(tmp_path / "x.img", 8 << 20)


def test_quickstart_sample_matches_its_manifest(tmp_path):
    sample = Path(__file__).resolve().parent.parent / "sample_volumes"
    listing = json.loads((sample / "quickstart.json").read_text())
    image = tmp_path / "quickstart.img"
    with gzip.open(sample / "quickstart.img.gz", "rb") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert image.stat().st_size == listing["volume_bytes"]
    manifest = volumes.Manifest(image=image, partition_offset=0, entries={}, deleted={})
    found = {r["path"]: int(r["inode"]) for r in fls(manifest) if not r["path"].startswith("$")}
    expected = {p: e["inode"] for p, e in listing["entries"].items() if p != "/"}
    assert found == expected
    assert "Users/Ken/Documents/private.txt" in found and "Program Files/App/app.exe" in found
