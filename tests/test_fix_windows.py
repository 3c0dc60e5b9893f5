"""The offline fix on a volume Windows wrote: win10-lastaccess (../shared/data), its
user's SIDs made stale by pairing it with a SAM of a new machine SID and the
master's SAM. Windows' own descriptors (the user's folder, its recycle bin, inherited
ACEs) go through ntfs-3g and back; the volume is a partition inside a disk image, so
the fix mounts it through a loop device at the partition's offset."""

from __future__ import annotations

import sqlite3

from aclscan.cli import main
from aclscan.plan import build_plan
from aclscan.samples import hives, regf
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.store import open_database
from tests import shared_data

OLD_MACHINE = "S-1-5-21-2341207468-2645333676-3461800803"  # the volume's (data README)
NEW_MACHINE = "S-1-5-21-1111111111-2222222222-3333333333"


def _descriptors(db) -> dict[int, bytes]:
    return dict(sqlite3.connect(db).execute(
        "SELECT f.entry, d.raw FROM file_records f JOIN descriptors d ON d.key = f.descriptor_key"))


def _sids(raw: bytes) -> set[str]:
    return {str(s) for s in SecurityDescriptor.from_bytes(raw).sids}


def test_fix_and_undo_a_windows_volume(ntfs3g, tmp_path, capsys):
    image = shared_data.expand("volumes", "win10-lastaccess.raw", tmp_path)
    user = hives.SamUser(1001, "IEUser")
    master, today = tmp_path / "master-SAM", tmp_path / "SAM"
    regf.write_hive(hives.sam_hive(OLD_MACHINE, [*hives.default_users(), user]), master)
    regf.write_hive(hives.sam_hive(NEW_MACHINE, [*hives.default_users(), user]), today)
    db = tmp_path / "scan.db"
    assert main(["scan", str(image), "--db", str(db), "--quiet", "--sam", str(today), "--history", str(master)]) == 0
    plan = build_plan(open_database(db), database=str(db))
    mapped = {a.sid: a.new_sid for a in plan.actions if a.kind == "replace_sid"}
    assert mapped == {f"{OLD_MACHINE}-1001": f"{NEW_MACHINE}-1001", f"{OLD_MACHINE}-513": f"{NEW_MACHINE}-513"}
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan.to_json())
    before = _descriptors(db)
    naming_old = {e for e, raw in before.items() if _sids(raw) & set(mapped)}
    assert naming_old, "the volume's user SIDs are on some files"

    journal = tmp_path / "journal.db"
    assert main(["fix", str(db), "--plan", str(plan_path), "--target", str(image), "--apply",
                 "--journal", str(journal)]) == 0, capsys.readouterr()
    after_db = tmp_path / "after.db"
    assert main(["scan", str(image), "--db", str(after_db), "--quiet", "--no-resolve"]) == 0
    after = _descriptors(after_db)
    changed = [e for e in before if after.get(e) != before[e]]
    assert set(changed) == naming_old and len(changed) == sum(c.files for c in plan.descriptors)
    for entry in changed:
        old, new = _sids(before[entry]), _sids(after[entry])
        assert not new & set(mapped) and {mapped[s] for s in old & set(mapped)} <= new
        # Everything else (labels, inheritance, other trustees) is as Windows wrote it.
        assert old - set(mapped) == new - set(mapped.values())

    assert main(["undo", str(journal)]) == 0
    undone_db = tmp_path / "undone.db"
    assert main(["scan", str(image), "--db", str(undone_db), "--quiet", "--no-resolve"]) == 0
    assert _descriptors(undone_db) == before
