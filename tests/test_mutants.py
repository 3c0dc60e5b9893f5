"""Tests written to kill mutants that went through the rest of the suite.

Each test names the mutation it catches; README ("Tests and benchmarks") gives the
mutation run and its score. The first three are the deliberate bugs issue 16 names.
"""

from __future__ import annotations

import json
import os

import pytest

from aclscan.accounts.base import DOMAIN, MACHINE, OTHER_MACHINE, Authority
from aclscan.accounts.wellknown import WellKnownSource
from aclscan.classify import (
    FOREIGN_MACHINE, ORPHAN, PLACEHOLDER, RESOLVED, RID_COLLISION, SID_HISTORY, STALE_PREFIX, TRANSIENT,
    UNKNOWN_AUTHORITY, UNRESOLVED, Classifier, PreviousName, profile_name,
)
from aclscan.cli import main
from aclscan.fix import ntfs3g as _ntfs3g
from aclscan.plan import iter_plan_files, read_plan
from aclscan.samples import hives as sample_hives
from aclscan.samples.regf import hive_bytes
from aclscan.store import open_database
from tests.classify.test_verdicts import CASES, D, M, P, FakeSource, _classify, domain, history, sam
from tests.scenarios import SAMPLES, manifest

# --- (a) classify: the RID-collision rule compares names case-insensitively ----------


def test_old_name_in_another_case_is_the_same_account_not_a_rid_collision():
    """Windows account names are case-insensitive: the history's "KEN" and today's "ken"
    at the same RID are one account, mapped RID to RID. Mutant: ``holder.name != old_name``."""
    source, previous = history((1000, "KEN"))
    classifier = Classifier([sam((1000, "ken")), source, WellKnownSource()], previous_names=previous)
    verdict = classifier.classify(f"{P}-1000")
    assert (verdict.verdict, verdict.account, verdict.mapped_sid) == (STALE_PREFIX, "KEN", f"{M}-1000")
    # A different name at that RID is still a collision: the rule was not just switched off.
    source, previous = history((1000, "Kenneth"))
    classifier = Classifier([sam((1000, "ken")), source, WellKnownSource()], previous_names=previous)
    assert classifier.classify(f"{P}-1000").verdict == RID_COLLISION


# --- (b) fix: a path that now names another MFT entry is left alone -------------------


def test_a_file_swapped_for_another_entry_at_the_same_path_is_left_alone(ntfs3g, tmp_path, capsys):
    """Between scan and fix the planned file is moved away and another file, with the very
    same descriptor bytes, is moved to its path: only the MFT entry (ntfs-3g's inode
    number) tells them apart. (Renames keep the $MFT's record count, so the target is
    still the scanned volume.) Mutant: the fix's ``inode != planned.entry`` check disabled."""
    from tests.test_fix import Prepared

    case = Prepared(tmp_path, "av-service")
    db = open_database(case.db)
    planned_files = [p for p in iter_plan_files(db, read_plan(case.plan_path)) if not p.is_dir]
    db.conn.close()
    assert len(planned_files) >= 2
    victim, other = planned_files[0], planned_files[1]
    with _ntfs3g.mounted(case.image) as root:
        path = root / victim.path.lstrip("/")
        descriptor = _ntfs3g.get_ntfs_acl(path)
        os.rename(path, path.with_name(path.name + ".moved"))
        os.rename(root / other.path.lstrip("/"), path)
        _ntfs3g.set_ntfs_acl(path, descriptor)
        assert os.lstat(path).st_ino == other.entry != victim.entry
        assert _ntfs3g.get_ntfs_acl(path) == descriptor  # the descriptor check alone cannot tell
    # The FUSE backend finds files by path: its inode check is what tells them apart (the
    # lib backend opens files by MFT entry and sequence, where a path cannot mislead).
    code = main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal), "--backend", "fuse"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"left alone, changed since the scan: {victim.path}" in out
    with _ntfs3g.mounted(case.image, readonly=True) as root:
        assert _ntfs3g.get_ntfs_acl(root / victim.path.lstrip("/")) == descriptor


# --- (c) readiness: a machine SID the history already had is not unique ---------------


def test_history_with_this_very_machine_sid_fails_uniqueness(tmp_path, capsys):
    """A master SAM (the history) whose machine SID is the image's own: the SID was never
    changed, so the machine is not unique even without a fleet to compare with.
    Mutant: the ``if sid in history`` evidence in ``unique_machine_sid`` removed."""
    machine_sid = manifest("clean")["machine_sid"]
    master = tmp_path / "master-SAM"
    master.write_bytes(hive_bytes(sample_hives.sam_hive(machine_sid), name=sample_hives.HIVE_NAMES["SAM"]))
    code = main(["check", str(SAMPLES / "clean.img.gz"), "--history", str(master), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    rule = next(r for r in document["rules"] if r["name"] == "unique_machine_sid")
    assert code == 1
    assert rule["status"] == "fail"
    assert any(f"had this machine SID {machine_sid}" in line for line in rule["evidence"])
    assert "unique_machine_sid" in document["failed"]


# --- classify: every field of every verdict ------------------------------------------
# The verdict cases of tests/classify/test_verdicts.py check verdict, account and mapped
# SID; here the confidence and the evidence too (read and checked by hand against the
# case: the names, RIDs and sources each sentence cites). Well-known SIDs the SDDL
# brings along (SY, BA) are left to the well-known tests.

OLD = f"prefix {P} is a previous machine SID of this machine (master SAM)"
FULL_VERDICTS = {
    "deleted local account is an orphan: the SAM is complete": {
        f"{M}-1005": (ORPHAN, "high", None, None,
                      ("SAM: this machine's account list is complete and has no RID 1005 (a deleted account)",))},
    "built-in RID maps RID to RID": {
        f"{P}-500": (STALE_PREFIX, "high", "Administrator", f"{M}-500",
                     (OLD, "master SAM: it was Administrator", "built-in RID 500 maps RID to RID: MEMBER\\Administrator")),
        f"{P}-513": (STALE_PREFIX, "high", "None", f"{M}-513", (OLD, "built-in RID 513 maps RID to RID: MEMBER\\None"))},
    "stale prefix maps by name": {
        f"{P}-1003": (STALE_PREFIX, "high", "AVService", f"{M}-1003",
                      (OLD, "master SAM: it was AVService", f"today's MEMBER\\AVService ({M}-1003) has the same name"))},
    "RID reused by someone else: never a prefix rewrite": {
        f"{P}-1000": (RID_COLLISION, "high", "Ken", None,
                      (OLD, "master SAM: it was Ken",
                       "RID 1000 now belongs to MEMBER\\Jon: a prefix rewrite would give it Ken's access"))},
    "RID reused, but the old name exists elsewhere: map by name": {
        f"{P}-1000": (RID_COLLISION, "high", "Ken", f"{M}-1010",
                      (OLD, "master SAM: it was Ken", f"today's MEMBER\\Ken ({M}-1010) has the same name",
                       "RID 1000 now belongs to MEMBER\\Jon: a prefix rewrite would give it Ken's access"))},
    "RID reused and the old name unknown: no mapping": {
        f"{P}-1001": (RID_COLLISION, "medium", None, None,
                      (OLD, "RID 1001 now belongs to MEMBER\\Sam: a prefix rewrite would give it the old account's access"))},
    "old account gone, RID free, name unknown": {
        f"{P}-1007": (STALE_PREFIX, "medium", None, None,
                      (OLD, "its old name is unknown: nothing to map to; give the master's SAM with --history, "
                            "or map it with plan --map"))},
    "old account gone, name known, nobody of that name today": {
        f"{P}-1002": (STALE_PREFIX, "high", "Ron", None,
                      (OLD, "master SAM: it was Ron", "no account of that name exists today: nothing to map to"))},
    "SID history translates to the account": {
        "S-1-5-21-1390067357-1202500187-1085936611-1234": (
            SID_HISTORY, "high", "NETWERKS\\dave", f"{D}-1108",
            (f"LDIF: sIDHistory of NETWERKS\\dave ({D}-1108) lists it",))},
    "deleted domain user under a complete export is an orphan": {
        f"{D}-1107": (ORPHAN, "high", None, None,
                      ("LDIF: the account list of NETWERKS is complete and has no RID 1107 (a deleted account)",))},
    "domain known but not its accounts: unresolved, not orphan": {
        f"{D}-1107": (UNRESOLVED, "medium", None, None,
                      ("LDIF names NETWERKS but not its accounts: give --domain or --ldap to decide",))},
    "well-known domain RID under a known domain": {
        f"{D}-512": (RESOLVED, "medium", "NETWERKS\\Domain Admins", None, ("well-known RID 512 of NETWERKS (LDIF)",))},
    "prefix nobody knows": {
        "S-1-5-21-999-888-777-1000": (UNKNOWN_AUTHORITY, "medium", None, None, (
            "no source knows prefix S-1-5-21-999-888-777 (not this machine, a known domain, history or the fleet)",))},
    "another machine of the fleet": {
        "S-1-5-21-111-222-333-1000": (FOREIGN_MACHINE, "high", None, None,
                                      ("prefix S-1-5-21-111-222-333 is machine WS1 of the fleet",))},
    "placeholders, labels, capabilities are never orphans": {
        "S-1-3-0": (PLACEHOLDER, "high", "CREATOR OWNER", None, ("placeholder SID: never an account of its own",)),
        "S-1-15-3-1": (PLACEHOLDER, "high", "APPLICATION PACKAGE AUTHORITY\\Your Internet connection", None,
                       ("capability SID: never an account of its own",)),
        "S-1-15-2-1": (PLACEHOLDER, "high", "APPLICATION PACKAGE AUTHORITY\\ALL APPLICATION PACKAGES", None,
                       ("app_container SID: never an account of its own",)),
        "S-1-16-12288": (PLACEHOLDER, "high", "Mandatory Label\\High Mandatory Level", None,
                         ("label SID: never an account of its own",))},
    "logon SIDs are transient": {
        "S-1-5-5-0-123456": (TRANSIENT, "high", None, None, ("logon session SID: exists only while the session does",))},
    "local account resolves": {
        f"{M}-1000": (RESOLVED, "high", "MEMBER\\Jon", None, ("SAM: MEMBER\\Jon",))},
    "fixed well-known SIDs resolve": {
        "S-1-5-18": (RESOLVED, "high", "NT AUTHORITY\\SYSTEM", None, ("well-known: NT AUTHORITY\\SYSTEM",))},
}


def _full(verdict):
    return verdict.verdict, verdict.confidence, verdict.account, verdict.mapped_sid, verdict.evidence


def _verdict(classifier, sid):
    verdict = classifier.classify(sid)
    assert verdict.sid == sid
    return _full(verdict)


@pytest.mark.parametrize("case", [c for c in CASES if c.name in FULL_VERDICTS], ids=lambda c: c.name)
def test_classify_every_field_of_the_verdict_cases(case):
    verdicts = _classify(case)
    expected = FULL_VERDICTS[case.name]
    assert expected
    for sid, fields in expected.items():
        assert verdicts[sid].sid == sid
        assert _full(verdicts[sid]) == fields, sid


def test_every_verdict_case_has_its_full_expectation():
    assert set(FULL_VERDICTS) == {c.name for c in CASES}


def _authority(sid, name, kind, complete, source):
    return FakeSource(source, [Authority(sid, name, kind, complete, source)])


def test_classify_this_machines_prefix_without_its_account_list():
    assert _verdict(Classifier([WellKnownSource()], machine_sid=M), f"{M}-1005") == (UNRESOLVED, "medium", None, None,
                              ("this machine's prefix, but its account list is not available (no SAM)",))


def test_classify_a_domain_controllers_incomplete_sam_is_not_its_account_list():
    dc = _authority(M, "DC1", MACHINE, False, "SAM")
    classifier = Classifier([dc, WellKnownSource()])
    assert _verdict(classifier, f"{M}-1005") == (
        UNRESOLVED, "medium", None, None, ("SAM names DC1 but not its accounts: give --domain or --ldap to decide",))
    assert _verdict(classifier, f"{M}-512") == (
        RESOLVED, "medium", "DC1\\Domain Admins", None, ("well-known RID 512 of DC1 (SAM)",))


def test_classify_a_complete_listing_outranks_an_incomplete_one_in_either_order():
    partial = _authority(D, "NETWERKS", DOMAIN, False, "LDAP")
    full = _authority(D, "NETWERKS", DOMAIN, True, "LDIF")
    for sources in ([partial, full], [full, partial]):
        classifier = Classifier([*sources, WellKnownSource()])
        assert _verdict(classifier, f"{D}-1107") == (
            ORPHAN, "high", None, None,
            ("LDIF: the account list of NETWERKS is complete and has no RID 1107 (a deleted account)",))
        # A well-known RID the complete listing lacks still resolves, saying so.
        assert _verdict(classifier, f"{D}-513") == (
            RESOLVED, "medium", "NETWERKS\\Domain Users", None,
            ("well-known RID 513 of NETWERKS (LDIF does not list it)",))


def test_classify_the_first_listing_of_equal_standing_is_kept():
    for complete in (True, False):
        first = _authority(D, "NETWERKS", DOMAIN, complete, "LDIF")
        second = _authority(D, "NETWERKS", DOMAIN, complete, "LDAP")
        evidence = Classifier([first, second, WellKnownSource()]).classify(f"{D}-1107").evidence
        assert evidence[0].startswith("LDIF"), evidence


def test_classify_an_unnamed_authority_is_labelled_by_its_sid():
    classifier = Classifier([_authority(D, None, DOMAIN, False, "LDAP"), WellKnownSource()])
    assert _verdict(classifier, f"{D}-1107") == (
        UNRESOLVED, "medium", None, None, (f"LDAP names {D} but not its accounts: give --domain or --ldap to decide",))
    unnamed_machine = _authority("S-1-5-21-111-222-333", None, OTHER_MACHINE, True, "fleet.db")
    assert Classifier([unnamed_machine]).classify("S-1-5-21-111-222-333-1000").evidence == (
        "prefix S-1-5-21-111-222-333 is machine fleet.db of the fleet",)


def test_classify_the_first_machine_authority_is_this_machine():
    first = _authority(M, "MEMBER", MACHINE, True, "SAM")
    second = _authority("S-1-5-21-111-222-333", "OTHER", MACHINE, True, "SAM of another")
    classifier = Classifier([first, second, WellKnownSource()])
    assert classifier.machine_sid == M
    assert classifier.classify(f"{M}-1005").verdict == ORPHAN


def test_classify_previous_names_alone_make_a_previous_machine_sid():
    """History without an authority record (ProfileList names, say): the old prefix is known
    from the names, with their source; names under this machine's own SID are not history."""
    previous = [PreviousName(f"{P}-1004", "Ann", "ProfileList"), PreviousName(f"{M}-1000", "Jon", "ProfileList")]
    classifier = Classifier([sam((1000, "Jon")), WellKnownSource()], previous_names=previous)
    assert classifier.previous_machine_sids == {P: "ProfileList"}
    assert _verdict(classifier, f"{P}-1004") == (
        STALE_PREFIX, "high", "Ann", None,
        (f"prefix {P} is a previous machine SID of this machine (ProfileList)", "ProfileList: it was Ann",
         "no account of that name exists today: nothing to map to"))
    assert classifier.classify(f"{M}-1005").verdict == ORPHAN


def test_classify_sids_outside_any_domain():
    classifier = Classifier([sam(), WellKnownSource(service_names=[])])
    service = "S-1-5-80-1-2-3-4-5"
    assert _verdict(classifier, service) == (
        UNRESOLVED, "medium", None, None,
        ("service SID derived from a name no source lists (a removed service or pool?)",))
    assert _verdict(classifier, "S-1-5-82-1-2-3-4-5") == (
        UNRESOLVED, "medium", None, None,
        ("apppool SID derived from a name no source lists (a removed service or pool?)",))
    assert _verdict(classifier, "S-1-5-83-1-2-3-4-5") == (
        UNRESOLVED, "medium", None, None,
        ("virtual_machine SID derived from a name no source lists (a removed service or pool?)",))
    assert _verdict(classifier, "S-1-9-77") == (
        UNKNOWN_AUTHORITY, "low", None, None, ("not a well-known SID and no source knows it",))
    # A placeholder no source names keeps no account name.
    assert _verdict(Classifier([]), "S-1-3-0") == (
        PLACEHOLDER, "high", None, None, ("placeholder SID: never an account of its own",))
    # SID history needs no authority: the account that lists it is enough.
    assert Classifier([domain((1108, "dave", ("S-1-5-21-1-2-3-4",)))]).classify("S-1-5-21-1-2-3-4").mapped_sid == \
        f"{D}-1108"


@pytest.mark.parametrize("path, suffixes, name", [
    ("C:\\Users\\Ken", (), "Ken"),
    ("C:/Users/Ken/", (), "Ken"),
    ("C:\\Users\\Ken\\\\", (), "Ken"),
    ("Ken", (), "Ken"),
    ("C:\\Users\\Ken.000", (), "Ken"),
    ("C:\\Users\\Ken.0001", (), "Ken.0001"),
    ("C:\\Users\\a.b.001", (), "a.b"),
    ("C:\\Users\\Ken.netwerks", ("NETWERKS",), "Ken"),
    ("C:\\Users\\Ken.netwerks", (), "Ken.netwerks"),
    ("C:\\Users\\.000", (), ".000"),
    ("C:\\Users\\%USERNAME%", (), None),
    ("C:\\Users\\x%", (), "x%"),
    ("C:\\Users\\REX", (), "REX"),
    ("", (), None),
    (None, (), None),
    ("\\", (), None),
])
def test_profile_name_edges(path, suffixes, name):
    assert profile_name(path, suffixes) == name

