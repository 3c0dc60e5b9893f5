"""VHD, VHDX, VMDK and qcow2 disks (made with qemu-img from the sample volumes)
scan exactly as the raw volumes do; linked clones read through their template;
broken disks and chains end in one line; fix refuses them with the conversion
command. The expected values are the raw scans (the project's reading of a flat
file) and ntfs-3g's view of each clone's added file."""

from __future__ import annotations

import json

import shutil
import sqlite3
import subprocess

import pytest

from aclscan import disks
from aclscan.cli import main
from aclscan.image import Image
from tests import scenarios
from tests.vm_disks import FORMATS, MAIN_FORMATS, AddedFile, convert, expand, linked_clones, qemu_img
from tests.volumes import ALICE, FULL, KEN, NONE_GROUP, READ, SYSTEM, raw_sd

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (Debian qemu-utils) is not installed")


def snapshot(db_path) -> dict:
    """What a scan found, independent of the image's name and kind."""
    conn = sqlite3.connect(db_path)
    return {
        "files": sorted(conn.execute("SELECT f.entry, f.path, d.raw FROM files f"
                                     " LEFT JOIN descriptors d ON d.key = f.descriptor_key")),
        "descriptors": sorted(r[0] for r in conn.execute("SELECT raw FROM descriptors")),
        "findings": sorted(conn.execute("SELECT sid, verdict, confidence, account, mapped_sid, evidence FROM findings")),
        "volumes": sorted(conn.execute("SELECT offset, serial, label, cluster_size, mft_records FROM volumes")),
    }


@pytest.fixture(scope="module")
def disk_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("vm_disks")


@pytest.mark.parametrize("name", scenarios.SCENARIOS)
def test_every_sample_as_each_main_format_scans_as_the_raw_volume(name, scenario_db, disk_dir, tmp_path):
    expected = snapshot(scenario_db(name))
    assert expected["files"] and expected["findings"]
    raw = expand(scenarios.SAMPLES / f"{name}.img.gz", disk_dir)
    for fmt in MAIN_FORMATS:
        disk = convert(raw, disk_dir, fmt)
        db = tmp_path / f"{fmt}.db"
        assert main(scenarios.scan_args(name, db, image=disk)) == 0, fmt
        assert snapshot(db) == expected, fmt
        kind = sqlite3.connect(db).execute("SELECT image_kind FROM volumes").fetchone()[0]
        assert kind == fmt


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - set(MAIN_FORMATS)))
def test_every_subformat(fmt, scenario_db, disk_dir, tmp_path):
    name = "av-service"
    raw = expand(scenarios.SAMPLES / f"{name}.img.gz", disk_dir)
    disk = convert(raw, disk_dir, fmt)
    db = tmp_path / "sub.db"
    assert main(scenarios.scan_args(name, db, image=disk)) == 0
    assert snapshot(db) == snapshot(scenario_db(name))


def test_format_is_told_by_content_not_name(disk_dir, tmp_path):
    raw = expand(scenarios.SAMPLES / "quickstart.img.gz", disk_dir)
    for fmt, kind in (("vhd", "vhd"), ("vhd-fixed", "vhd"), ("vhdx", "vhdx"), ("vmdk-stream", "vmdk"),
                      ("qcow2-compressed", "qcow2")):
        renamed = tmp_path / f"disk-{fmt}.img"
        shutil.copyfile(convert(raw, disk_dir, fmt), renamed)
        with Image(renamed) as image:
            assert image.kind == kind, fmt
            assert len(image.volumes()) == 1
    with Image(raw) as image:
        assert image.kind == "raw"


# --- linked clones -------------------------------------------------------------------

CLONE_A_SD = raw_sd(KEN, NONE_GROUP, [(0, 0, FULL, KEN), (0, 0, READ, ALICE)])
CLONE_B_SD = raw_sd(SYSTEM, SYSTEM, [(0, 0, FULL, SYSTEM), (1, 0, FULL, ALICE)])


@pytest.fixture(scope="module")
def clones(ntfs3g, tmp_path_factory):
    directory = tmp_path_factory.mktemp("clones")
    template_raw = expand(scenarios.SAMPLES / "ws1.img.gz", directory)
    template, made = linked_clones(template_raw, directory, {
        "clone-a": AddedFile("Clones/a only.txt", b"made on clone A", CLONE_A_SD),
        "clone-b": AddedFile("Clones/b only.txt", b"made on clone B", CLONE_B_SD),
    })
    template_db = directory / "template.db"
    assert main(["scan", str(template), "--db", str(template_db), "-q"]) == 0
    return template, made, snapshot(template_db)


def test_each_clone_shows_its_own_file_and_the_templates(clones, tmp_path):
    template, made, template_view = clones
    assert template_view["files"]
    for name, clone in made.items():
        assert clone.disk.stat().st_size < template.stat().st_size / 4  # only its differences
        assert clone.sd_read_back == clone.added.sd
        db = tmp_path / f"{name}.db"
        assert main(["scan", str(clone.disk), "--db", str(db), "-q"]) == 0
        view = snapshot(db)
        added = [f for f in view["files"] if f[1] == "/Clones" or f[1].startswith("/Clones/")]
        assert [path for _entry, path, _sd in added] == ["/Clones", "/" + clone.added.path]
        assert added[1][2] == clone.added.sd  # as ntfs-3g set and read it back
        # Every file of the template is there, with its descriptor.
        assert set(template_view["files"]) <= set(view["files"])
        with Image(clone.disk) as image:
            assert image.segments == [str(clone.disk), str(template)]
            volume = image.open_volume(image.volumes()[0])
            assert volume.open_path(clone.added.path) == clone.added.data
            other = next(c for n, c in made.items() if n != name)
            with pytest.raises(KeyError):
                volume.open_path(other.added.path)


def test_fleet_of_two_clones_reports_their_shared_machine_sid(clones, tmp_path, capsys):
    _template, made, _view = clones
    code = main(["fleet", str(tmp_path / "fleet.db"), *(str(c.disk) for c in made.values()), "--jobs", "1",
                 "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1
    document = json.loads(out)
    machine_sid = scenarios.manifest("ws1")["machine_sid"]
    [group] = document["duplicate_machine_sids"]
    assert group["machine_sid"] == machine_sid and group["count"] == 2
    # The two machines are linked clones of one template: the report says so.
    [shared] = document["shared_parent_disks"]
    assert shared["parent"] == str(_template.resolve()) and shared["count"] == 2


def test_a_clone_through_a_parent_given_by_hand(clones, tmp_path):
    template, made, _view = clones
    moved = tmp_path / "moved.qcow2"
    shutil.copyfile(made["clone-a"].disk, moved)
    code = main(["scan", str(moved), "--db", str(tmp_path / "m.db"), "-q", "--no-resolve"])
    assert code == 4
    assert main(["scan", str(moved), "--db", str(tmp_path / "m.db"), "-q", "--no-resolve",
                 "--parent", str(template)]) == 0


# --- bad input -------------------------------------------------------------------------

def _one_error(args, capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), err
    return code, err[0]


def test_truncated_vhdx(disk_dir, tmp_path, capsys):
    disk = convert(expand(scenarios.SAMPLES / "quickstart.img.gz", disk_dir), disk_dir, "vhdx")
    truncated = tmp_path / "t.vhdx"
    truncated.write_bytes(disk.read_bytes()[: 1 << 20])
    code, line = _one_error(["scan", str(truncated), "--db", str(tmp_path / "x.db")], capsys)
    assert code == 4 and line.startswith(f"Error: cannot open VHDX disk {truncated} (damaged, truncated")


def test_qcow2_with_a_missing_backing_file(disk_dir, tmp_path, capsys):
    base = convert(expand(scenarios.SAMPLES / "quickstart.img.gz", disk_dir), disk_dir, "qcow2")
    child = tmp_path / "child.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(child))
    shutil.copyfile(child, tmp_path / "orphan.qcow2")
    subprocess.run(["qemu-img", "rebase", "-u", "-b", "gone.qcow2", "-F", "qcow2", str(tmp_path / "orphan.qcow2")],
                   check=True)
    code, line = _one_error(["scan", str(tmp_path / "orphan.qcow2"), "--db", str(tmp_path / "x.db")], capsys)
    assert code == 4
    assert line == (f"Error: {tmp_path / 'orphan.qcow2'}: its parent disk 'gone.qcow2' is missing (looked for "
                    f"{tmp_path / 'gone.qcow2'}); give it with --parent FILE")
    assert main(["scan", str(child), "--db", str(tmp_path / "ok.db"), "-q", "--no-resolve"]) == 0


def test_qcow2_of_an_unknown_version(disk_dir, tmp_path, capsys):
    disk = tmp_path / "v9.qcow2"
    data = bytearray(convert(expand(scenarios.SAMPLES / "quickstart.img.gz", disk_dir), disk_dir, "qcow2").read_bytes())
    data[4:8] = (9).to_bytes(4, "big")
    disk.write_bytes(data)
    code, line = _one_error(["scan", str(disk), "--db", str(tmp_path / "x.db")], capsys)
    assert (code, line) == (4, f"Error: {disk}: qcow2 version 9 (aclscan reads versions 2 and 3)")


def test_vmdk_naming_a_missing_extent(disk_dir, tmp_path, capsys):
    descriptor = convert(expand(scenarios.SAMPLES / "quickstart.img.gz", disk_dir), disk_dir, "vmdk-split")
    shutil.copyfile(descriptor, tmp_path / "lonely.vmdk")
    extent = descriptor.name[: -len(".vmdk")] + "-s001.vmdk"
    code, line = _one_error(["scan", str(tmp_path / "lonely.vmdk"), "--db", str(tmp_path / "x.db")], capsys)
    assert code == 4
    assert line == (f"Error: {tmp_path / 'lonely.vmdk'}: the extent '{extent}' it names is missing "
                    f"(looked for {tmp_path / extent})")


def test_vmdk_child_of_a_changed_parent(disk_dir, tmp_path, capsys):
    parent = tmp_path / "parent.vmdk"
    shutil.copyfile(convert(expand(scenarios.SAMPLES / "quickstart.img.gz", disk_dir), disk_dir, "vmdk"), parent)
    child = tmp_path / "child.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", "-b", "parent.vmdk", "-F", "vmdk", str(child), cwd=tmp_path)
    assert main(["scan", str(child), "--db", str(tmp_path / "ok.db"), "-q", "--no-resolve"]) == 0
    data = bytearray(parent.read_bytes())
    at = data.index(b"\nCID=") + 5
    wanted = data[at : at + 8].decode()
    data[at : at + 8] = b"deadbeef"
    parent.write_bytes(data)
    code, line = _one_error(["scan", str(child), "--db", str(tmp_path / "x.db")], capsys)
    assert code == 4
    assert line == (f"Error: {child}: parent {tmp_path / 'parent.vmdk'} is not the disk it was made from "
                    f"(CID deadbeef, expected {wanted})")


def test_qcow2_over_a_raw_backing_file(disk_dir, tmp_path, capsys):
    raw = expand(scenarios.SAMPLES / "quickstart.img.gz", disk_dir)
    child = tmp_path / "on-raw.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(raw), "-F", "raw", str(child))
    assert main(["scan", str(child), "--db", str(tmp_path / "c.db"), "-q", "--no-resolve"]) == 0
    assert main(["scan", str(raw), "--db", str(tmp_path / "r.db"), "-q", "--no-resolve"]) == 0
    assert snapshot(tmp_path / "c.db")["files"] == snapshot(tmp_path / "r.db")["files"]


def test_compressed_qcow2_reads_every_cluster_as_qemu_does(disk_dir, tmp_path):
    """qemu-img packs compressed clusters at any byte offset (qcow2 v3); each one
    must read back as qemu itself reads it (qemu-img convert to raw)."""
    disk = convert(expand(scenarios.SAMPLES / "av-service.img.gz", disk_dir), disk_dir, "qcow2-compressed")
    back = tmp_path / "back.raw"
    qemu_img("convert", "-O", "raw", str(disk), str(back))
    expected = back.read_bytes()
    with Image(disk) as image:
        assert image.size == len(expected) > 0
        assert image.read(0, image.size) == expected
    packed = disk.read_bytes()
    from aclscan.qcow2 import read_header

    import io

    header = read_header(io.BytesIO(packed), "x")
    assert header.version == 3  # the layout whose unaligned compressed clusters libqcow misreads


def test_fix_refuses_a_virtual_disk_with_the_conversion_command(disk_dir, tmp_path, capsys):
    disk = tmp_path / "av.qcow2"
    shutil.copyfile(convert(expand(scenarios.SAMPLES / "av-service.img.gz", disk_dir), disk_dir, "qcow2"), disk)
    db = tmp_path / "av.db"
    assert main(scenarios.scan_args("av-service", db, image=disk)) == 0
    plan = tmp_path / "plan.json"
    main(["plan", str(db), "--format", "json", "-o", str(plan)])
    capsys.readouterr()
    code, line = _one_error(["fix", str(db), "--plan", str(plan), "--target", str(disk), "--apply"], capsys)
    assert code == 16
    assert line == (f"Error: {disk} is a qcow2 image: convert it to raw first: "
                    f"{disks.convert_command('qcow2', str(disk))}")
    assert "qemu-img convert -O raw" in line


# --- a VHD differencing chain (Hyper-V's linked clones) --------------------------------

def test_vhd_differencing_disk_through_its_parent(ntfs3g, tmp_path, capsys):
    from aclscan.fix import ntfs3g as mount_tool
    from tests.vm_disks import differencing_vhd

    base = expand(scenarios.SAMPLES / "quickstart.img.gz", tmp_path)
    parent = tmp_path / "template.vhd"
    qemu_img("convert", "-O", "vpc", str(base), str(parent))
    changed = tmp_path / "changed.raw"
    shutil.copyfile(base, changed)
    with mount_tool.mounted(changed) as root:
        (root / "Clones").mkdir()
        (root / "Clones" / "hyper-v.txt").write_bytes(b"made on the differencing disk")
        mount_tool.set_ntfs_acl(root / "Clones" / "hyper-v.txt", CLONE_A_SD)
    child = tmp_path / "child.vhd"
    assert differencing_vhd(parent, child, "template.vhd", base, changed) > 0
    assert child.stat().st_size < parent.stat().st_size

    with Image(child) as image:
        assert image.kind == "vhd" and image.segments == [str(child), str(tmp_path / "template.vhd")]
        volume = image.open_volume(image.volumes()[0])
        assert volume.open_path("Clones/hyper-v.txt") == b"made on the differencing disk"
    assert main(["scan", str(child), "--db", str(tmp_path / "c.db"), "-q", "--no-resolve"]) == 0
    assert main(["scan", str(changed), "--db", str(tmp_path / "r.db"), "-q", "--no-resolve"]) == 0
    assert snapshot(tmp_path / "c.db")["files"] == snapshot(tmp_path / "r.db")["files"]  # as the changed raw disk
    assert ("/Clones/hyper-v.txt", CLONE_A_SD) in {(p, sd) for _e, p, sd in snapshot(tmp_path / "c.db")["files"]}

    # Another disk made from the same volume is not the parent: its identifier differs.
    impostor = tmp_path / "impostor.vhd"
    qemu_img("convert", "-O", "vpc", str(base), str(impostor))
    code, line = _one_error(["scan", str(child), "--db", str(tmp_path / "x.db"), "--parent", str(impostor)], capsys)
    assert code == 4 and line.startswith(f"Error: {child}: parent {impostor} is not the disk it was made from "
                                         "(identifier ")
    parent.rename(tmp_path / "elsewhere.vhd")
    code, line = _one_error(["scan", str(child), "--db", str(tmp_path / "x.db")], capsys)
    assert code == 4 and line == (f"Error: {child}: its parent disk 'template.vhd' is missing (looked for "
                                  f"{tmp_path / 'template.vhd'}); give it with --parent FILE")
    assert main(["scan", str(child), "--db", str(tmp_path / "g.db"), "-q", "--no-resolve",
                 "--parent", str(tmp_path / "elsewhere.vhd")]) == 0
