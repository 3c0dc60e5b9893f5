"""The administrator's choices in `aclscan plan`: --map, --mode, --remove-orphans, on a real
scan of the member-after sample (Ken, Arianne and Ron's RIDs now belong to Jon, Sam and
Stephanie)."""

from __future__ import annotations

import json

import pytest

from aclscan.cli import main
from aclscan.mapping import InvalidMapping, parse_mapping, resolve_account
from aclscan.plan import SCHEMA_PATH, build_plan, plan_from_json
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl
from aclscan.store import open_database
from tests import scenarios

jsonschema = pytest.importorskip("jsonschema")

FACTS = scenarios.manifest("member-after")
NOW = FACTS["machine_sid"]
BEFORE = "S-1-5-21-191058668-193157475-1542849698"  # the master's machine SID (scenarios.MASTER)
KEN, ARIANNE, RON = (f"{BEFORE}-{rid}" for rid in (1000, 1001, 1002))
JON, STEPHANIE = f"{NOW}-1000", f"{NOW}-1002"
KEN_NEW = f"{NOW}-1003"  # the account the administrator creates for Ken


def sids_of(sd: SecurityDescriptor) -> dict[str, int]:
    """SID -> how many places (owner, group, ACEs) name it."""
    found: dict[str, int] = {}
    for principal in (sd.owner, sd.group):
        if principal is not None:
            found[str(principal)] = found.get(str(principal), 0) + 1
    for acl in (sd.dacl, sd.sacl):
        for ace in acl.aces if acl is not None else ():
            for sid in ace.sids:
                found[str(sid)] = found.get(str(sid), 0) + 1
    return found


def changes(plan):
    out = [(sids_of(from_sddl(c.old_sddl)), sids_of(SecurityDescriptor.from_bytes(c.new_raw)), c)
           for c in plan.descriptors]
    assert out, "the plan rewrites some descriptor"
    return out


@pytest.fixture(scope="module")
def db(scenario_db):
    assert FACTS["machine_sid"] == NOW
    return open_database(scenario_db("member-after"))


def mapping(db, text: str):
    return parse_mapping(text, db)


def test_remove_orphans_grants_jon_nothing(db):
    plan = build_plan(db, remove_orphans=True)
    assert not plan.refusals and not plan.skipped
    removed = {a.sid for a in plan.actions if a.kind == "remove_aces"}
    assert removed == {KEN, ARIANNE, RON}
    assert all(a.new_sid not in (JON, f"{NOW}-1001", STEPHANIE) for a in plan.actions)
    seen_ken = 0
    for old, new, change in changes(plan):
        assert new.get(JON, 0) <= old.get(JON, 0), f"descriptor {change.descriptor_key} grants Jon something"
        assert not set(new) & {KEN, ARIANNE, RON}
        seen_ken += KEN in old
    assert seen_ken
    owners = {a.sid: a.new_sid for a in plan.actions if a.kind == "reassign_owner"}
    assert owners == {KEN: "S-1-5-32-544", ARIANNE: "S-1-5-32-544", RON: "S-1-5-32-544"}
    assert plan.choices == {"mode": "replace", "remove_orphans": True, "map": []}


def test_a_mapped_sid_goes_only_where_the_map_says(db):
    plan = build_plan(db, mapping=mapping(db, f"old,new\nMEMBER\\Ken,{KEN_NEW}\n"))
    action = next(a for a in plan.actions if a.sid == KEN and a.kind == "replace_sid")
    assert action.new_sid == KEN_NEW and "--map line 2" in action.reason and "gains" in action.reason
    assert {a.account for a in plan.refusals} == {"Arianne", "Ron"}
    carried = 0
    for old, new, change in changes(plan):
        if KEN in old:
            carried += 1
            assert KEN not in new and new.get(KEN_NEW, 0) == old[KEN]
        else:
            assert KEN_NEW not in new
        assert new.get(JON, 0) <= old.get(JON, 0)
    assert carried == action.descriptors > 0
    # The registry side follows the map: Ken's Administrators membership goes to the new SID.
    alias = [a for a in plan.actions if a.kind == "replace_alias_member"]
    assert [(a.sid, a.new_sid) for a in alias] == [(KEN, KEN_NEW)]


def test_a_map_by_names_says_who_gains_what(db):
    plan = build_plan(db, mapping=mapping(db, "Ken,MEMBER\\Stephanie\n"))
    action = next(a for a in plan.actions if a.sid == KEN)
    assert action.new_sid == STEPHANIE and 'MEMBER\\Stephanie gains "Ken"\'s access' in action.reason


def test_mapping_onto_the_rid_holder_needs_consent(db):
    with pytest.raises(InvalidMapping, match="holds Ken's RID today.*consent"):
        mapping(db, "Ken,MEMBER\\Jon\n")
    plan = build_plan(db, mapping=mapping(db, "Ken,MEMBER\\Jon,consent\n"))
    action = next(a for a in plan.actions if a.sid == KEN)
    assert action.new_sid == JON and "with consent" in action.reason
    assert plan.choices["map"] == [{"line": 1, "old": KEN, "new": JON, "consent": True}]


def test_mode_add_keeps_the_old_sid_beside_the_new(db):
    plan = build_plan(db, mapping=mapping(db, f"Ken,{KEN_NEW}\n"), mode="add")
    action = next(a for a in plan.actions if a.sid == KEN)
    assert action.kind == "add_sid" and action.new_sid == KEN_NEW
    both = 0
    for old, new, _ in changes(plan):
        if KEN in old:
            assert new.get(KEN_NEW, 0) >= 1
            both += KEN in new
    assert both, "ACEs naming Ken stay, with copies for the new SID"


def test_mode_remove_drops_what_would_be_repointed(db):
    plan = build_plan(db, mode="remove")
    kinds = {a.sid: a.kind for a in plan.actions if a.kind not in ("reassign_owner", "reassign_group")}
    assert kinds[f"{BEFORE}-500"] == "remove_aces" and kinds[f"{BEFORE}-513"] == "remove_aces"
    assert not [a for a in plan.actions if a.kind in ("replace_sid", "add_sid")]
    assert any(a.kind == "reassign_group" and a.sid == f"{BEFORE}-513" for a in plan.actions)


def test_refusals_name_the_way_out(db):
    plan = build_plan(db)
    ken = next(a for a in plan.refusals if a.account == "Ken")
    assert "create Ken and scan again" in ken.reason and "--map" in ken.reason and "--remove-orphans" in ken.reason


def test_plan_with_choices_is_valid_json_and_reads_back(db, tmp_path):
    plan = build_plan(db, mapping=mapping(db, f"Ken,{KEN_NEW}\n"), mode="add", remove_orphans=True)
    schema = json.loads(SCHEMA_PATH.read_text())
    data = json.loads(plan.to_json())
    jsonschema.validate(data, schema)
    assert data["choices"]["mode"] == "add" and data["choices"]["remove_orphans"] is True
    again = plan_from_json(plan.to_json())
    assert again == plan


def test_names_resolve_one_way(db):
    assert resolve_account(db, "Ken", old=True) == KEN  # an old name the scan learnt (ProfileList)
    assert resolve_account(db, "member\\jon", old=False) == JON  # case does not matter
    assert resolve_account(db, "BUILTIN\\Administrators", old=False) == "S-1-5-32-544"
    assert resolve_account(db, "NT AUTHORITY\\SYSTEM", old=False) == "S-1-5-18"  # the well-known catalogue
    assert resolve_account(db, KEN.lower().replace("s-1", "S-1"), old=True) == KEN
    with pytest.raises(InvalidMapping, match="no current account named 'Ken'"):
        resolve_account(db, "Ken", old=False)


# ------------------------------------------------------------------ bad input, through the command line

BAD_MAPS = {
    "unknown name": ("Kenneth,MEMBER\\Sam\n", "no old or current account named 'Kenneth'"),
    "duplicate old SID": (f"Ken,MEMBER\\Sam\n{KEN},MEMBER\\Stephanie\n", "mapped already on line 1"),
    "onto the RID holder": ("Ken,MEMBER\\Jon\n", "add a third column 'consent'"),
    "not CSV": (b"\x1f\x8b\x08\x00binary\xff\xfe", "not CSV text"),
    "wrong columns": ("Ken\n", "expected old,new[,consent]"),
    "bad consent": ("Ken,MEMBER\\Sam,perhaps\n", "write 'consent'"),
    "chained": (f"Ken,{KEN_NEW}\nArianne,{KEN}\n", "is also mapped away"),
    "empty": ("# nothing\n", "no rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_MAPS))
def test_bad_mapping_files_are_one_line_errors(scenario_db, tmp_path, capsys, case):
    content, message = BAD_MAPS[case]
    path = tmp_path / "map.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "plan.json"
    code = main(["plan", str(scenario_db("member-after")), "--map", str(path), "--format", "json", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 8, err
    assert err.startswith("Error: ") and "\n" not in err and message in err
    assert not out.exists(), "nothing is written"


def test_choices_do_not_go_with_a_saved_plan(scenario_db, tmp_path, capsys):
    saved = tmp_path / "plan.json"
    assert main(["plan", str(scenario_db("member-after")), "--remove-orphans", "--format", "json",
                 "-o", str(saved)]) == 0
    capsys.readouterr()
    assert main(["plan", str(scenario_db("member-after")), "--plan", str(saved), "--mode", "add"]) == 2
    assert "not with --plan" in capsys.readouterr().err


def test_ken_mapped_to_a_new_account_by_name(tmp_path):
    """The issue's case: the administrator creates MEMBER\\KenNew (here: a SAM with the
    account added, written by the sample hive writer), scans again with it, and maps Ken
    to it by name. Ken's access goes to KenNew and to nobody else."""
    from dataclasses import replace

    from aclscan.samples import build
    from aclscan.samples.scenarios import Account, member_after

    scenario = member_after()
    scenario = replace(scenario, accounts=scenario.accounts + (Account(1003, "KenNew"),))
    sam = tmp_path / "SAM"
    sam.write_bytes(build.hive_files(scenario)["SAM"])
    path = tmp_path / "member-after-kennew.db"
    assert main(scenarios.scan_args("member-after", path) + ["--sam", str(sam)]) in (0, 3)
    db = open_database(path)
    assert resolve_account(db, "MEMBER\\KenNew", old=False) == KEN_NEW
    plan = build_plan(db, mapping=parse_mapping("old,new\nMEMBER\\Ken,MEMBER\\KenNew\n", db))
    action = next(a for a in plan.actions if a.sid == KEN and a.kind == "replace_sid")
    assert action.new_sid == KEN_NEW and 'MEMBER\\KenNew gains "Ken"\'s access' in action.reason
    for old, new, _ in changes(plan):
        if KEN in old:
            assert KEN not in new and new.get(KEN_NEW) == old[KEN]
        else:
            assert KEN_NEW not in new
        assert new.get(JON, 0) <= old.get(JON, 0)
