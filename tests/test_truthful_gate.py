"""The readiness gate and findings never look clean by mistake: problem SIDs of every
verdict block the gate, a rule that could not be judged is named (and fails with
--strict), and a hive that cannot be read (whole, or a part of it) inside the volume
gives a partial scan whose findings and check exit non-zero."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sqlite3
import struct

import pytest

from aclscan.cli import main
from tests.scenarios import SAMPLES, manifest


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_av_service_without_history_is_not_ready(tmp_path, capsys):
    """Without the master's SAM (and without the image's own RegBack copy of it) the old
    AVService SID still holds SeServiceLogonRight: the machine is not ready (it used to
    say READY while findings exited 1)."""
    db = tmp_path / "av.db"
    code, _out, err = run(["scan", str(SAMPLES / "av-service.img.gz"), "--db", str(db), "--no-image-history"],
                          capsys)
    assert code == 0
    assert "history: none" in err and "hives: SAM (volume /Windows/System32/config/SAM)" in err
    code, _out, _err = run(["findings", str(db), "--problems", "--format", "json"], capsys)
    assert code == 1
    code, out, _err = run(["check", str(db)], capsys)
    assert code == 1
    assert out.splitlines()[0].startswith("NOT READY: no_stale_prefix failed")
    old = manifest("av-service")["previous_machine_sids"][0]
    assert f"lsa_right: {old}-1003 holds SeServiceLogonRight" in out
    assert f"{old}-1003 rid_collision: 36 file(s)" in out


def test_unjudged_rules_are_named_and_strict_fails_them(scenario_db, capsys):
    db = str(scenario_db("ws1"))
    code, out, _err = run(["check", db], capsys)
    headline = out.splitlines()[0]
    assert code == 0
    assert headline.startswith("READY, not judged: uniqueness (no --fleet given)")
    code, out, _err = run(["check", db, "--strict", "--format", "json"], capsys)
    assert code == 1
    import json

    document = json.loads(out)
    assert document["ready"] is False and document["strict"] is True
    assert "unique_machine_sid" in document["not_judged"] and document["failed"] == []


def _volume_copy(tmp_path, name: str):
    image = tmp_path / f"{name}.img"
    with gzip.open(SAMPLES / f"{name}.img.gz", "rb") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return image


def _rewrite_hive(ntfs3g, image, hive: str, change) -> None:
    with ntfs3g.mounted(image) as mnt:
        path = mnt / "Windows" / "System32" / "config" / hive
        data = bytearray(path.read_bytes())
        path.write_bytes(bytes(change(data)))


def _scan_check_findings(tmp_path, image, capsys):
    db = tmp_path / "damaged.db"
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    scan = run(["scan", str(image), "--db", str(db)], capsys)
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before  # read-only
    findings = run(["findings", str(db)], capsys)
    check = run(["check", str(db)], capsys)
    errors = sqlite3.connect(db).execute("SELECT kind, reason FROM scan_errors").fetchall()
    return scan, findings, check, errors


def test_unreadable_sam_inside_the_volume_is_never_clean(ntfs3g, tmp_path, capsys):
    image = _volume_copy(tmp_path, "clean")
    # A SAM whose base block survives but whose hive bins are gone.
    _rewrite_hive(ntfs3g, image, "SAM", lambda data: data[:0x1000] + b"\0" * (len(data) - 0x1000))
    (code, _o, err), findings, check, errors = _scan_check_findings(tmp_path, image, capsys)
    assert code == 3 and "bad item(s) recorded in scan_errors" in err
    assert [kind for kind, _r in errors] == ["hive"]
    assert "SAM hive" in errors[0][1] and "could not be judged" in errors[0][1]
    assert findings[0] == 1 and "not judged: SAM hive" in findings[2]
    assert check[0] == 1
    assert "FAIL  hives_present" in check[1] and "FAIL  scan_complete" in check[1]


def _break_profile_image_path(data: bytearray) -> bytearray:
    """Point the first ProfileImagePath value's data outside the hive."""
    name = b"ProfileImagePath"
    at = data.find(name)
    assert at > 0
    vk = at - 0x14  # the vk cell's payload: "vk", name length, data size, data offset, type, flags, spare, name
    assert data[vk:vk + 2] == b"vk" and struct.unpack_from("<H", data, vk + 2)[0] == len(name)
    struct.pack_into("<I", data, vk + 8, 0x7FFFFFF0)
    return data


def test_unreadable_profile_image_path_gives_a_partial_scan(ntfs3g, tmp_path, capsys):
    """Used to abort the scan with AttributeError (exit 9) and leave a clean-looking database."""
    image = _volume_copy(tmp_path, "member-after")
    _rewrite_hive(ntfs3g, image, "SOFTWARE", _break_profile_image_path)
    (code, _o, err), findings, check, errors = _scan_check_findings(tmp_path, image, capsys)
    assert code == 3, err
    hive_errors = [reason for kind, reason in errors if kind == "hive"]
    assert hive_errors and all("SOFTWARE" in reason for reason in hive_errors)
    assert any("ProfileImagePath" in reason and "outside the hive" in reason for reason in hive_errors)
    assert findings[0] == 1
    assert check[0] == 1 and "FAIL  scan_complete" in check[1]
