"""Shadow copies scanned as earlier states of a volume (issue 15 item 1): the shared
win7-vsstest volume (Windows 7, two Volume Shadow Copy stores). Each state's files
equal what The Sleuth Kit reads from that store extracted with libvshadow, the live
state is unchanged, the image is never written, and nothing of a snapshot counts as
the live machine's."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess

import pyvshadow
import pytest

from aclscan.cli import main
from tests.shared_data import expand

STORES = {"600f0b69-5bdf-11e3-9d6c-005056c00008": "2013-12-03T06:35:09+00:00",
          "600f0b6d-5bdf-11e3-9d6c-005056c00008": "2013-12-03T06:37:48+00:00"}
FLS_LINE = re.compile(r"^(?P<kind>\S+) \*?\s*(?P<inode>\d+)(?:-\d+-\d+)?:\t(?P<path>.*)$")


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    return expand("volumes", "win7-vsstest.raw", tmp_path_factory.mktemp("vss"))


def tsk_entries(image) -> set[tuple[int, str]]:
    """(MFT entry, path) of every allocated file and directory fls lists (TSK's virtual
    $OrphanFiles folder left out)."""
    out = subprocess.run(["fls", "-r", "-p", str(image)], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        match = FLS_LINE.match(line)
        assert match, line
        if match["kind"].startswith("V/V") or " * " in line:
            continue
        # A named stream's line names its file too ($Secure has only $SDS, $SDH, $SII).
        found.add((int(match["inode"]), "/" + match["path"].split(":", 1)[0]))
    assert found
    return found


def our_entries(db, volume_id: int) -> set[tuple[int, str]]:
    rows = db.execute("SELECT entry, path FROM files WHERE volume_id = ?", [volume_id]).fetchall()
    assert rows
    return {(entry, path) for entry, path in rows if path != "/" and not path.startswith("/$OrphanFiles/")}


def extract_store(image, index: int, target) -> None:
    """A store as a flat (sparse) volume image, through libvshadow: what TSK then reads."""
    vss = pyvshadow.volume()
    with open(image, "rb") as source, open(target, "wb") as out:
        vss.open_file_object(source)
        store = vss.get_store(index)
        size, chunk = store.volume_size, 16 << 20
        for offset in range(0, size, chunk):
            data = store.read_buffer_at_offset(min(chunk, size - offset), offset)
            if data.strip(b"\0"):
                out.seek(offset)
                out.write(data)
        out.truncate(size)
        vss.close()


def test_each_state_equals_the_sleuth_kit_on_its_extracted_store(volume, tmp_path, capsys):
    digest = hashlib.sha256(volume.read_bytes()).hexdigest()
    db_path = tmp_path / "vss.db"
    assert main(["scan", str(volume), "--db", str(db_path), "--snapshots", "-q"]) == 0
    assert hashlib.sha256(volume.read_bytes()).hexdigest() == digest  # read-only
    db = sqlite3.connect(db_path)
    states = db.execute("SELECT id, snapshot, snapshot_created FROM volumes ORDER BY id").fetchall()
    assert states[0] == (1, None, None)
    assert {s: c for _i, s, c in states[1:]} == STORES
    assert our_entries(db, 1) == tsk_entries(volume)
    for index, (volume_id, snapshot, _created) in enumerate(states[1:]):
        store = tmp_path / f"store{index}.raw"
        extract_store(volume, index, store)
        assert our_entries(db, volume_id) == tsk_entries(store), snapshot
    # The live state is the same as a scan without --snapshots.
    plain = tmp_path / "plain.db"
    assert main(["scan", str(volume), "--db", str(plain), "-q"]) == 0
    live = sqlite3.connect(plain)
    assert our_entries(live, 1) == our_entries(db, 1)
    # Findings count the live volume only: an earlier state is evidence, not the machine.
    counts = dict(db.execute("SELECT sid, files FROM findings"))
    assert counts == dict(live.execute("SELECT sid, files FROM findings"))


def test_without_the_flag_the_scan_counts_the_stores(volume, tmp_path, capsys):
    code = main(["scan", str(volume), "--db", str(tmp_path / "v.db")])
    err = capsys.readouterr().err
    assert code == 0
    assert "has 2 shadow copy store(s): scan with --snapshots" in err


def test_a_damaged_catalog_is_recorded_and_the_live_volume_is_scanned(volume, tmp_path, capsys):
    """The catalog sits in the volume's first 16 KiB after the VSS identifier at 0x1e00;
    break the catalog's own header and the live volume must still scan."""
    broken = tmp_path / "broken.raw"
    data = bytearray(volume.read_bytes())
    header = 0x1E00
    assert data[header:header + 16] == bytes.fromhex("6b87083876c1484eb7ae04046e6cc752")  # the VSS GUID
    catalog = int.from_bytes(data[header + 0x30:header + 0x38], "little")  # catalog offset
    assert catalog
    data[catalog:catalog + 128] = b"\xff" * 128
    broken.write_bytes(bytes(data))
    db_path = tmp_path / "b.db"
    code = main(["scan", str(broken), "--db", str(db_path), "--snapshots"])
    err = capsys.readouterr().err
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM volumes WHERE snapshot IS NULL").fetchone()[0] == 1
    assert our_entries(db, 1) == tsk_entries(volume)
    assert code == 3 and "scan_errors" in err
    kinds = {kind for (kind,) in db.execute("SELECT kind FROM scan_errors")}
    assert kinds == {"snapshot"}
