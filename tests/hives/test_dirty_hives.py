"""Dirty hives read in their post-log state: from bytes and logs, from a path with its
logs beside it, from a volume, through HiveSet as the scan reads them; new-format (HvLE)
and old-format (DIRT) logs, written by tests/hives/txlogs.py from the specification."""

from __future__ import annotations

import struct

import pytest

from aclscan.errors import NotFound
from aclscan.hives import read_software, read_system
from aclscan.hives.files import read_hive_files
from aclscan.hives.recovery import marvin32
from aclscan.hives.registry import open_hive
from aclscan.resolve import HiveSet, hives_from_files, hives_from_volume
from aclscan.samples.hives import HIVE_NAMES, Profile, software_hive, system_hive
from aclscan.samples.regf import Key, hive_bytes
from aclscan.sd.sddl import from_sddl
from tests.hives.txlogs import dirt_log, hvle_entry, hvle_log, make_dirty

OLD_AV = "S-1-5-21-1111111111-2222222222-3333333333-1005"
NEW_SD = from_sddl(f"O:BAG:SYD:(A;CI;KA;;;SY)(A;CI;KA;;;{OLD_AV})").to_bytes()


def software_states() -> tuple[bytes, bytes]:
    """SOFTWARE before and after: the later state adds a profile and a key with its own
    descriptor, and holds more hive bins than the earlier one (the log grows the file)."""
    before = software_hive()
    after = software_hive([Profile("S-1-5-21-1111111111-2222222222-3333333333-1001", r"C:\Users\Ken")])
    av = after.ensure("AVScan")
    av.security = NEW_SD
    av.subkeys += [Key(f"Engine{i:03d}") for i in range(400)]
    old = hive_bytes(before, name=HIVE_NAMES["SOFTWARE"], sequence=4)
    new = hive_bytes(after, name=HIVE_NAMES["SOFTWARE"], sequence=5)
    assert len(new) > len(old)
    return old, new


def assert_post_log(hive, logs_applied: tuple[str, ...]) -> None:
    assert hive.status.dirty and hive.status.logs_applied == logs_applied
    assert hive.status.recovered_pages > 0
    assert not any("dirty hive read without" in p for p in hive.status.problems)
    walked = dict(hive.key_security())
    assert "AVScan\\Engine399" in walked
    assert hive.security_descriptor(walked["AVScan"]) == NEW_SD
    assert NEW_SD in hive.security_cells().values()
    software = read_software(hive)
    assert [p.path for p in software.profiles if p.sid.endswith("-1001")] == [r"C:\Users\Ken"]


def test_new_format_log_from_bytes():
    old, new = software_states()
    log = hvle_log(hvle_entry(old, new, 4))
    hive = open_hive(make_dirty(old, 5, 4), logs=[log])
    assert_post_log(hive, ("transaction log 1",))
    assert hive.status.problems == ()
    named = open_hive(make_dirty(old, 5, 4), logs={"SOFTWARE.LOG1": log})
    assert named.status.logs_applied == ("SOFTWARE.LOG1",)


def test_without_its_log_the_dirty_hive_is_the_old_state():
    old, _new = software_states()
    hive = open_hive(make_dirty(old, 5, 4))
    assert "AVScan" not in dict(hive.key_security())
    assert any("dirty hive read without its transaction logs" in p for p in hive.status.problems)


def test_run_goes_on_from_log1_into_log2():
    old, new = software_states()
    middle_tree = software_hive()
    middle_tree.ensure("AVScan")
    middle = hive_bytes(middle_tree, name=HIVE_NAMES["SOFTWARE"])
    log1 = hvle_log(hvle_entry(old, middle, 4), sequence=5)
    log2 = hvle_log(hvle_entry(middle, new, 5), sequence=6)
    hive = open_hive(make_dirty(old, 6, 4), logs={"SOFTWARE.LOG1": log1, "SOFTWARE.LOG2": log2})
    assert_post_log(hive, ("SOFTWARE.LOG1", "SOFTWARE.LOG2"))
    only_first = open_hive(make_dirty(old, 6, 4), logs={"SOFTWARE.LOG1": log1})
    assert "AVScan" in dict(only_first.key_security()) and "AVScan\\Engine000" not in dict(only_first.key_security())


def test_old_format_log_from_bytes_and_beside_a_path(tmp_path):
    old, new = software_states()
    log = dirt_log(old, new)
    hive = open_hive(make_dirty(old, 5, 4), logs={"SOFTWARE.LOG": log})
    assert_post_log(hive, ("SOFTWARE.LOG",))
    (tmp_path / "SOFTWARE").write_bytes(make_dirty(old, 5, 4))
    (tmp_path / "Software.log").write_bytes(log)
    assert_post_log(open_hive(tmp_path / "SOFTWARE"), ("Software.log",))


def test_old_format_log_of_another_state_is_not_applied():
    old, new = software_states()
    log = bytearray(dirt_log(old, new))
    struct.pack_into("<Q", log, 0x0C, 1)  # its base block's LastWrittenTimestamp: another state
    hive = open_hive(make_dirty(old, 5, 4), logs={"SOFTWARE.LOG": bytes(log)})
    assert hive.status.logs_applied == () and "AVScan" not in dict(hive.key_security())
    assert any("SOFTWARE.LOG: written for another state" in p for p in hive.status.problems)


def test_logs_beside_a_path_any_case(tmp_path):
    old, new = software_states()
    path = tmp_path / "SOFTWARE"
    path.write_bytes(make_dirty(old, 5, 4))
    (tmp_path / "software.LoG1").write_bytes(hvle_log(hvle_entry(old, new, 4)))
    (tmp_path / "SOFTWARE.LOG").write_bytes(b"")  # what Windows 10 leaves: ignored
    files = read_hive_files(path)
    assert files.label == str(path) and [name for name, _ in files.logs] == ["software.LoG1", "SOFTWARE.LOG"]
    assert_post_log(open_hive(path), ("software.LoG1",))
    assert_post_log(open_hive(files), ("software.LoG1",))
    assert open_hive(files).status.problems == ()


def system_states(tmp_path):
    old = hive_bytes(system_hive("OLDNAME1"), name=HIVE_NAMES["SYSTEM"])
    new = hive_bytes(system_hive("NEWNAME1"), name=HIVE_NAMES["SYSTEM"])
    return make_dirty(old, 5, 4), hvle_log(hvle_entry(old, new, 4))


def test_hives_given_as_files_are_read_with_their_logs(tmp_path):
    dirty, log = system_states(tmp_path)
    (tmp_path / "SYSTEM").write_bytes(dirty)
    (tmp_path / "SYSTEM.LOG1").write_bytes(log)
    raw = hives_from_files({"SYSTEM": tmp_path / "SYSTEM", "SAM": None})
    assert list(raw) == ["SYSTEM"] and [n for n, _ in raw["SYSTEM"].logs] == ["SYSTEM.LOG1"]
    hives = HiveSet.parse(raw, strict=frozenset({"SYSTEM"}))
    assert hives.system.computer_name == "NEWNAME1"
    assert hives.system.status.logs_applied == ("SYSTEM.LOG1",) and hives.origins["SYSTEM"] == str(tmp_path / "SYSTEM")


class FilesOnVolume:
    """A volume's files by path, looked up in any letter case as The Sleuth Kit does
    for NTFS (the interface of :meth:`aclscan.image.Volume.open_path`)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = {path.upper(): data for path, data in files.items()}

    def open_path(self, path: str) -> bytes:
        try:
            return self._files[path.upper()]
        except KeyError:
            raise NotFound(f"no such file on the volume: {path}") from None


def test_hives_on_a_volume_are_read_with_their_logs(tmp_path):
    dirty, log = system_states(tmp_path)
    volume = FilesOnVolume({"/Windows/System32/config/SYSTEM": dirty,
                            "/windows/system32/CONFIG/system.log1": log})
    raw = hives_from_volume(volume)
    assert list(raw) == ["SYSTEM"] and [n for n, _ in raw["SYSTEM"].logs] == ["SYSTEM.LOG1"]
    hives = HiveSet.parse(raw)
    assert hives.system.computer_name == "NEWNAME1" and hives.problems == []
    assert hives.origins["SYSTEM"] == "volume /Windows/System32/config/SYSTEM"


def test_a_missing_hive_file_is_one_line(tmp_path):
    with pytest.raises(Exception, match=r"SAM hive .*absent: No such file") as caught:
        hives_from_files({"SAM": tmp_path / "absent"})
    assert "\n" not in str(caught.value)


def test_system_reader_sees_the_post_log_state_through_files(tmp_path):
    dirty, log = system_states(tmp_path)
    (tmp_path / "SYSTEM").write_bytes(dirty)
    (tmp_path / "SYSTEM.LOG2").write_bytes(log)
    assert read_system(tmp_path / "SYSTEM").computer_name == "NEWNAME1"


@pytest.mark.ntfs3g
def test_a_scan_reads_dirty_hives_on_the_volume_and_beside_given_files(ntfs3g, tmp_path):
    """The scan's machine row says NEWNAME1, the name only the log holds: for the
    volume's own SYSTEM (its log in another letter case) and for one given with --system."""
    import sqlite3

    from aclscan.image import Image
    from aclscan.scan import ResolveInputs, scan_image
    from tests import volumes

    dirty, log = system_states(tmp_path)
    manifest = volumes.build_volume(tmp_path / "v.img", [
        volumes.File("Windows/System32/config/SYSTEM", dirty),
        volumes.File("Windows/System32/config/system.LOG1", log),
    ])
    with Image(manifest.image) as image:
        raw = hives_from_volume(image.open_volume(image.volumes()[0]))
    assert [n for n, _ in raw["SYSTEM"].logs] == ["SYSTEM.LOG1"]
    assert HiveSet.parse(raw).system.computer_name == "NEWNAME1"

    scan_image(manifest.image, tmp_path / "volume.db")
    row = sqlite3.connect(tmp_path / "volume.db").execute("SELECT computer_name FROM machine").fetchone()
    assert row == ("NEWNAME1",)

    given = tmp_path / "given"
    given.mkdir()
    (given / "SYSTEM").write_bytes(dirty)
    (given / "System.Log2").write_bytes(log)
    scan_image(manifest.image, tmp_path / "given.db", resolve=ResolveInputs(hive_files={"SYSTEM": str(given / "SYSTEM")}))
    row = sqlite3.connect(tmp_path / "given.db").execute("SELECT computer_name FROM machine").fetchone()
    assert row == ("NEWNAME1",)


def test_a_bogus_log_entry_stops_recovery_before_it():
    """Specification, log entries note 8: a wrong hive bins data size (no multiple of
    4096) stops recovery; entries before it are applied, none after."""
    old, new = software_states()
    middle_tree = software_hive()
    middle_tree.ensure("AVScan")
    middle = hive_bytes(middle_tree, name=HIVE_NAMES["SOFTWARE"])
    bogus = bytearray(hvle_entry(middle, new, 5))
    struct.pack_into("<I", bogus, 16, len(new) - 0x1000 + 512)
    log = hvle_log(hvle_entry(old, middle, 4), bytes(bogus))
    hive = open_hive(make_dirty(old, 6, 4), logs={"SOFTWARE.LOG1": log})
    walked = dict(hive.key_security())
    assert "AVScan" in walked and "AVScan\\Engine000" not in walked
    assert hive.status.logs_applied == ("SOFTWARE.LOG1",)
    assert any("log entry 5" in p and "no multiple of 4096" in p for p in hive.status.problems)


def test_a_log_entry_whose_pages_run_past_it_is_not_applied():
    old, new = software_states()
    entry = bytearray(hvle_entry(old, new, 4))
    struct.pack_into("<I", entry, 20, 10_000)  # more dirty pages than the entry holds
    hive = open_hive(make_dirty(old, 5, 4), logs=[hvle_log(bytes(entry))])
    assert hive.status.logs_applied == () and "AVScan" not in dict(hive.key_security())
    assert any("dirty pages do not fit" in p for p in hive.status.problems)


MARVIN_SEED_1 = 0x004FB61A001BDBCC
MARVIN_SEED_3 = 0x804FB61A801BDBCC


@pytest.mark.parametrize("seed, data, expected", [
    # .NET's published test vectors (System.Marvin, MarvinTests.cs)
    (MARVIN_SEED_1, "", 0x30ED35C100CD3C7D),
    (MARVIN_SEED_1, "af", 0x48E73FC77D75DDC1),
    (MARVIN_SEED_1, "e70f", 0xB5F6E1FC485DBFF8),
    (MARVIN_SEED_1, "37f495", 0xF0B07C789B8CF7E8),
    (MARVIN_SEED_1, "8642dc59", 0x7008F2E87E9CF556),
    (MARVIN_SEED_1, "ab427ea8d10fc7", 0xE11847E4F0678C41),
    (MARVIN_SEED_3, "00FF00FF00", 0x1D7DDF9DFDF3C1BF),
    (MARVIN_SEED_3, "FF00FF00FF00FF", 0xFDFD187B1D3CE784),
])
def test_marvin32_gives_the_published_hashes(seed, data, expected):
    assert marvin32(bytes.fromhex(data), seed) == expected


def test_a_torn_log_entry_is_not_applied():
    """A crash mid-write leaves an entry whose pages do not match its Hash-1: recovery
    stops before it (specification, log entries note 8)."""
    old, new = software_states()
    entry = bytearray(hvle_entry(old, new, 4))
    entry[-100] ^= 0xFF  # one byte of its last page
    hive = open_hive(make_dirty(old, 5, 4), logs=[hvle_log(bytes(entry))])
    assert hive.status.logs_applied == () and "AVScan" not in dict(hive.key_security())
    assert any("log entry 4" in p and "hash is wrong" in p for p in hive.status.problems)


def test_a_clean_hive_brings_no_logs(tmp_path):
    """Logs matter only to a dirty hive: a clean one's are not even read."""
    old, new = software_states()
    (tmp_path / "SOFTWARE").write_bytes(old)
    (tmp_path / "SOFTWARE.LOG1").write_bytes(hvle_log(hvle_entry(old, new, 4)))
    assert read_hive_files(tmp_path / "SOFTWARE").logs == ()
    volume = FilesOnVolume({"/Windows/System32/config/SOFTWARE": old,
                            "/Windows/System32/config/SOFTWARE.LOG1": hvle_log(hvle_entry(old, new, 4))})
    assert hives_from_volume(volume)["SOFTWARE"].logs == ()
    assert "AVScan" not in dict(open_hive(tmp_path / "SOFTWARE").key_security())
