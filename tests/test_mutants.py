"""Tests written to kill mutants that went through the rest of the suite.

Each test names the mutation it catches; README ("Tests and benchmarks") gives the
mutation run and its score. The first three are the deliberate bugs issue 16 names.
"""

from __future__ import annotations

import json
import os

from aclscan.accounts.wellknown import WellKnownSource
from aclscan.classify import RID_COLLISION, STALE_PREFIX, Classifier
from aclscan.cli import main
from aclscan.fix import ntfs3g as _ntfs3g
from aclscan.plan import iter_plan_files, read_plan
from aclscan.samples import hives as sample_hives
from aclscan.samples.regf import hive_bytes
from aclscan.store import open_database
from tests.classify.test_verdicts import M, P, history, sam
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
    code = main(["fix", str(case.db), "--plan", str(case.plan_path), "--target", str(case.image), "--apply",
                 "--journal", str(case.journal)])
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
