"""aclscan.hives.registry: opening hives from bytes, paths and files; bad input; dirty
hives and their transaction logs; nothing left behind."""

from __future__ import annotations

import io
import struct
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aclscan.errors import Error, HiveError, MalformedData, WrongHive
from aclscan.hives import open_hive, read_hive, read_sam, read_security, read_system
from aclscan.hives.registry import REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD, REG_SZ
from aclscan.samples.hives import HIVE_NAMES, sam_hive, system_hive
from aclscan.samples.regf import Key, Value, hive_bytes
from tests.hives.damage import flip_bytes
from tests.hives.txlogs import hvle_entry, hvle_log, make_dirty


def system_bytes(computer: str = "OLDNAME1", **kwargs) -> bytes:
    return hive_bytes(system_hive(computer, **kwargs), name=HIVE_NAMES["SYSTEM"])


MACHINE = "S-1-5-21-1111111111-2222222222-3333333333"


@pytest.fixture(scope="module")
def sam_bytes() -> bytes:
    return hive_bytes(sam_hive(MACHINE), name=HIVE_NAMES["SAM"])


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and len(text) < 300, text
    return text


# --- sources ----------------------------------------------------------------------------


def test_bytes_path_and_file_give_the_same(tmp_path, sam_bytes, monkeypatch):
    path = tmp_path / "SAM"
    path.write_bytes(sam_bytes)
    private_tmp = tmp_path / "tmp"  # a temporary directory of its own, to see it stay empty
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    from_bytes = read_sam(sam_bytes)
    from_bytearray = read_sam(bytearray(sam_bytes))
    from_path = read_sam(path)
    from_str = read_sam(str(path))
    with open(path, "rb") as handle:
        from_file = read_sam(handle)
    from_memory = read_sam(io.BytesIO(sam_bytes))
    assert from_bytes.users == from_path.users == from_str.users == from_file.users == from_memory.users
    assert from_bytearray.machine_sid == MACHINE
    assert from_path.status.label == str(path) and from_bytes.status.label == "hive"
    assert list(private_tmp.iterdir()) == []  # no temporary copies
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SAM", "tmp"]  # nothing written beside the evidence


def test_label_names_the_hive_in_messages(sam_bytes):
    with pytest.raises(WrongHive, match=r"^volume SAM: expected a SYSTEM hive, but this is a SAM hive$"):
        read_system(sam_bytes, label="volume SAM")


def test_keys_and_values():
    tree = Key("ROOT", subkeys=[Key("Select", [Value("Current", REG_DWORD, 1)]),
                                Key("Odd", [
                                    Value("", REG_SZ, "default"),
                                    Value("Crème", REG_SZ, "brûlée"),
                                    Value("Ωmega", REG_MULTI_SZ, ["a", "bc"]),
                                    Value("Big", REG_BINARY, bytes(range(256)) * 100),  # db big data
                                    Value("Q", REG_QWORD, 1 << 40),
                                    Value("Tiny", REG_BINARY, b"\x01\x02"),  # stored inline
                                    Value("Rid", 1001, b""),  # the type is the data
                                ], [Key("José"), Key("Ωmega")])])
    hive = open_hive(hive_bytes(tree, name="SYSTEM"))
    assert hive.kind == "SYSTEM"
    odd = hive.key("odd")  # case-insensitive, as Windows compares
    assert odd.path == "Odd" and hive.key("ODD\\josé").path == "Odd\\José"
    assert [k.name for k in odd.subkeys()] == ["José", "Ωmega"]
    assert odd.value().text == "default" and odd.value("crème").text == "brûlée"
    assert odd.value("Ωmega").strings == ["a", "bc"]
    assert odd.value("Big").raw == bytes(range(256)) * 100
    assert odd.value("Q").number == 1 << 40
    assert odd.value("Tiny").raw == b"\x01\x02" and odd.value("Tiny").number is None
    assert (odd.value("Rid").type, odd.value("Rid").raw) == (1001, b"")
    assert odd.value("missing") is None and hive.key("Odd\\missing") is None
    assert hive.status.problems == ()


# --- bad input ---------------------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    return data[: 0x1000 + 0x1000]


BAD = {
    "empty": (lambda d: b"", HiveError, "not a registry hive"),
    "text": (lambda d: b"hello, this is not a hive\n" * 400, HiveError, "not a registry hive"),
    "zeros": (lambda d: bytes(0x3000), HiveError, "not a registry hive"),
    "base block only": (lambda d: d[:0x1000], HiveError, "truncated"),
    "truncated": (truncated, HiveError, "truncated"),
    "a transaction log": (lambda d: d[:0x1C] + struct.pack("<I", 6) + d[0x20:], HiveError, "transaction log"),
    "no hive bin": (lambda d: d[:0x1000] + b"xxxx" + d[0x1004:], HiveError, "no hive bin"),
    "root outside": (lambda d: d[:0x24] + struct.pack("<I", 0x7FFFFFF0) + d[0x28:], HiveError, "outside"),
    "version 2": (lambda d: d[:0x14] + struct.pack("<I", 2) + d[0x18:], HiveError, "format 2"),
    "SYSTEM for SAM": (lambda d: system_bytes(), WrongHive, "this is a SYSTEM hive"),
    "user hive": (lambda d: hive_bytes(Key("ROOT", subkeys=[Key("Software"), Key("Environment")]),
                                       name="NTUSER.DAT"), WrongHive, "root keys: Environment, Software"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_error(case, sam_bytes):
    make, error, words = BAD[case]
    with pytest.raises(error) as caught:
        read_sam(make(sam_bytes), label="SAM")
    assert isinstance(caught.value, (HiveError, MalformedData, Error, ValueError))
    assert caught.value.exit_code == 8
    text = one_line(caught.value)
    assert text.startswith("SAM: ") and words in text


def test_wrong_hive_says_what_it_is(sam_bytes):
    security = hive_bytes(Key("ROOT", subkeys=[Key("Policy")]), name=HIVE_NAMES["SECURITY"])
    for reader, data, kind in ((read_system, sam_bytes, "SAM"), (read_sam, security, "SECURITY"),
                               (read_security, system_bytes(), "SYSTEM")):
        with pytest.raises(WrongHive, match=f"this is a {kind} hive$"):
            reader(data)
    software = hive_bytes(Key("ROOT", subkeys=[Key("Microsoft")]), name=HIVE_NAMES["SOFTWARE"])
    with pytest.raises(WrongHive, match="expected a SAM hive, but this is a SOFTWARE hive"):
        read_sam(software)
    with pytest.raises(WrongHive, match="expected a SAM or SECURITY or SYSTEM or SOFTWARE hive"):
        read_hive(hive_bytes(Key("ROOT", subkeys=[Key("Software")])))
    assert issubclass(WrongHive, HiveError) and issubclass(HiveError, ValueError)


def test_unreadable_paths(tmp_path):
    with pytest.raises(HiveError, match="cannot read"):
        read_sam(tmp_path / "absent")
    with pytest.raises(HiveError, match="a directory"):
        read_sam(tmp_path)
    with pytest.raises(HiveError, match="binary mode"):
        read_sam(io.StringIO("regf"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0x1000, 0x3FFF), st.integers(0, 255)), min_size=1, max_size=12))
def test_corrupt_bins_never_escape_as_other_errors(sam_bytes, damage):
    """Bytes flipped anywhere in the hive bins: a result (with problems) or HiveError."""
    try:
        info = read_sam(flip_bytes(sam_bytes, damage))
    except HiveError as exc:
        one_line(exc)
    else:
        assert all("\n" not in p for p in info.problems)


def test_broken_record_is_skipped_not_fatal(sam_bytes):
    hive = open_hive(sam_bytes)
    v = hive.key("SAM\\Domains\\Account\\Users\\000001F4").value("V").raw
    at = sam_bytes.index(v)
    broken = sam_bytes[: at + 12] + b"\xff" * 12 + sam_bytes[at + 24 :]  # its name entry points nowhere
    info = read_sam(broken)
    assert 500 not in {u.rid for u in info.users} and {501, 503, 504} <= {u.rid for u in info.users}
    assert any("000001F4 skipped" in p for p in info.problems)


# --- dirty hives and transaction logs ----------------------------------------------------


def log_entry(sequence: int, new: bytes) -> bytes:
    """An HvLE entry carrying every 4 KiB page of ``new`` that differs from OLDNAME1's."""
    return hvle_entry(system_bytes(), new, sequence)


def log_file(*entries: bytes) -> bytes:
    return hvle_log(*entries)


def test_dirty_hive_without_logs_is_read_and_flagged():
    system = read_system(make_dirty(system_bytes()))
    assert system.computer_name == "OLDNAME1"
    assert system.status.dirty and system.status.logs_applied == ()
    assert any("dirty hive read without its transaction logs" in p for p in system.problems)


def test_logs_are_applied_to_a_dirty_hive():
    log = log_file(log_entry(4, system_bytes("NEWNAME1")))
    system = read_system(make_dirty(system_bytes()), logs=[log])
    assert system.computer_name == "NEWNAME1"
    assert system.status.logs_applied == ("transaction log 1",) and system.status.recovered_pages >= 1
    assert system.problems == ()


def test_older_log_entries_are_not_applied():
    """A log keeps entries Windows already reconciled; only the run from the hive's
    secondary sequence number on is applied (regipy alone applies them all)."""
    stale_first = log_file(log_entry(2, system_bytes("STALE__1")), log_entry(4, system_bytes("NEWNAME1")))
    assert read_system(make_dirty(system_bytes()), logs=[stale_first]).computer_name == "NEWNAME1"
    stale_after = log_file(log_entry(4, system_bytes("NEWNAME1")), log_entry(1, system_bytes("STALE__1")))
    assert read_system(make_dirty(system_bytes()), logs=[stale_after]).computer_name == "NEWNAME1"
    only_stale = log_file(log_entry(3, system_bytes("STALE__1")))
    system = read_system(make_dirty(system_bytes()), logs=[only_stale])
    assert system.computer_name == "OLDNAME1" and system.status.logs_applied == ()


def test_two_logs_are_applied_in_sequence_order():
    first = log_file(log_entry(4, system_bytes("NEWNAME1")))
    second = log_file(log_entry(5, system_bytes("NEWNAME2")))
    for logs in ([first, second], [second, first]):
        system = read_system(make_dirty(system_bytes(), 6, 4), logs=logs)
        assert system.computer_name == "NEWNAME2"
        assert len(system.status.logs_applied) == 2


def test_logs_beside_a_path_are_found(tmp_path):
    hive = tmp_path / "SYSTEM"
    hive.write_bytes(make_dirty(system_bytes()))
    (tmp_path / "SYSTEM.LOG1").write_bytes(log_file(log_entry(4, system_bytes("NEWNAME1"))))
    (tmp_path / "system.log2").write_bytes(b"regf" + bytes(1000))  # no entries: ignored
    listing = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir())
    system = read_system(hive)
    assert system.computer_name == "NEWNAME1"
    assert system.status.logs_applied == ("SYSTEM.LOG1",)
    assert any("system.log2: holds no log entries" in p for p in system.problems)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir()) == listing  # read-only


def test_logs_of_a_clean_hive_are_ignored(tmp_path):
    hive = tmp_path / "SYSTEM"
    hive.write_bytes(system_bytes())
    (tmp_path / "SYSTEM.LOG1").write_bytes(log_file(log_entry(1, system_bytes("NEWNAME1"))))
    system = read_system(hive)
    assert system.computer_name == "OLDNAME1" and not system.status.dirty


def test_a_broken_log_leaves_the_primary_as_it_is():
    system = read_system(make_dirty(system_bytes()), logs=[b"garbage" * 100])
    assert system.computer_name == "OLDNAME1"
    assert any("not a registry transaction log" in p for p in system.problems)


# --- many values ---------------------------------------------------------------------------


def test_values_stored_inline_are_read_as_stored():
    """Data of four bytes or fewer lives in the vk cell's DataOffset field (the
    specification's "Data size", bit 31): 3,000 services of a few DWORDs each."""
    from aclscan.samples.hives import Service

    data = system_bytes(services=[Service(f"svc{i:04d}", "LocalSystem") for i in range(3000)])
    assert len(data) > 1_000_000
    system = read_system(data)
    assert len(system.services) == 3000 and system.service("svc2999").start == 2
    assert system.problems == ()
