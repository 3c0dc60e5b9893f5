"""What each parser promises about any input, checked on one input at a time.

Every target takes bytes and returns normally when the parser kept its contract:
an :class:`aclscan.errors.Error` (the input is refused with a reason) or a result
that holds together; a bulk reader records what it could not read and goes on; a
round trip (bytes -> descriptor -> bytes, SDDL -> descriptor -> SDDL) is exact. A
broken promise is an ``AssertionError``; any other exception escapes as it is: both
are crashes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aclscan.accounts.domain import DomainExport, read_csv, read_ldif
from aclscan.errors import Error
from aclscan.hives import read_sam, read_security, read_software, read_system
from aclscan.hives.registry import open_hive
from aclscan.ntfs.mft import BootSector, parse_mft_chunk
from aclscan.ntfs.sds import FIRST_SECURITY_ID, parse_sds, security_hash
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl, to_sddl
from aclscan.sd.sid import SID

MFT_RECORD_SIZE = 1024


def _sddl_round_trip(sd: SecurityDescriptor) -> None:
    """SDDL that aclscan writes reads back to a descriptor that writes the same SDDL."""
    try:
        text = to_sddl(sd)
    except Error:  # what SDDL cannot express (an unknown ACE type), or a bad conditional expression
        return
    again = from_sddl(text)
    assert to_sddl(again) == text, (text, to_sddl(again))
    assert again.sids == sd.sids
    canonical = again.to_bytes()
    assert SecurityDescriptor.from_bytes(canonical).to_bytes() == canonical


def descriptor_bytes(data: bytes) -> None:
    try:
        sd = SecurityDescriptor.from_bytes(data)
    except Error:
        return
    assert sd.to_bytes() == data
    assert SecurityDescriptor.from_bytes(data) == sd
    _sddl_round_trip(sd)


def sddl_text(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        sd = from_sddl(text)
    except Error:
        return
    written = to_sddl(sd)  # parsed from SDDL, so SDDL can express it
    assert to_sddl(from_sddl(written)) == written, (text, written)
    assert from_sddl(written) == sd
    binary = sd.to_bytes()
    assert SecurityDescriptor.from_bytes(binary) == sd
    assert SecurityDescriptor.from_bytes(binary).to_bytes() == binary


def mft_chunk(data: bytes) -> None:
    for chunk in (data, bytearray(data)):  # bytes are copied, a bytearray is fixed up in place
        batch = parse_mft_chunk(chunk, 100, MFT_RECORD_SIZE)
        count = len(data) // MFT_RECORD_SIZE
        assert batch.records_seen == count
        entries = batch.entry.tolist()
        assert all(100 <= e < 100 + count for e in entries)
        columns = (batch.sequence, batch.flags, batch.base_entry, batch.base_sequence, batch.security_id,
                   batch.has_standard_information, batch.has_attribute_list)
        assert all(len(column) == len(entries) for column in columns)
        names = (batch.name_owner, batch.name_parent, batch.name_parent_sequence, batch.name_namespace,
                 batch.name_start, batch.name_length)
        assert all(len(column) == len(batch.name_record) for column in names)
        assert int(batch.name_length.sum()) == len(batch.name_blob)
        assert all(0 <= row < len(entries) for row in batch.name_record.tolist())
        assert all(100 <= entry < 100 + count for entry, _reason in batch.problems)
        for _owner, raw in batch.descriptors:
            if raw is not None:
                descriptor_bytes(raw)


def boot_sector(data: bytes) -> None:
    try:
        boot = BootSector.from_bytes(data)
    except Error:
        return
    assert boot.cluster_size > 0 and boot.mft_record_size > 0


def sds_stream(data: bytes) -> None:
    entries, problems = parse_sds(data)
    for security_id, entry in entries.items():
        assert security_id == entry.security_id >= FIRST_SECURITY_ID
        assert entry.hash_ok == (security_hash(entry.descriptor) == entry.hash)
        descriptor_bytes(entry.descriptor)
    assert all(isinstance(problem.reason, str) and problem.reason for problem in problems)


READERS = (read_sam, read_security, read_system, read_software)


def hive(data: bytes) -> None:
    try:
        opened = open_hive(data, logs=[])
    except Error:
        return
    for reader in READERS:
        try:
            info = reader(opened)
        except Error:
            continue
        assert all(isinstance(problem, str) for problem in info.problems)


def _check_export(export: DomainExport) -> None:
    assert export.entries
    for entry in export.entries:
        assert str(SID.from_string(entry.sid)) == entry.sid
        for old in entry.sid_history or ():
            assert str(SID.from_string(old)) == old


def ldif(data: bytes) -> None:
    try:
        export = read_ldif(data)
    except Error:
        return
    _check_export(export)


def csv(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="aclscan-fuzz-") as scratch:
        path = Path(scratch) / "export.csv"
        path.write_bytes(data)
        try:
            export = read_csv(path)
        except Error:
            return
    _check_export(export)


TARGETS = {
    "sd": descriptor_bytes,
    "sddl": sddl_text,
    "mft": mft_chunk,
    "boot": boot_sector,
    "sds": sds_stream,
    "hive": hive,
    "ldif": ldif,
    "csv": csv,
}
