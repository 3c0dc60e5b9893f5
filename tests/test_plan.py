"""aclscan.plan on real scans of the sample volumes: what each scenario's plan does and refuses."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from aclscan import plan as planning
from aclscan.cli import main
from aclscan.plan import InvalidPlan, build_plan, plan_from_json, read_plan
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import from_sddl
from aclscan.store import open_database
from tests import scenarios

import jsonschema


def _plan(scenario_db, name: str, **options) -> planning.Plan:
    path = scenario_db(name)
    return build_plan(open_database(path), database=str(path), **options)


def _by_kind(plan, kind):
    return [a for a in plan.actions if a.kind == kind]


def _sids_of(sd: SecurityDescriptor) -> set[str]:
    sids = {str(s) for s in (sd.owner, sd.group) if s is not None}
    for acl in (sd.dacl, sd.sacl):
        for ace in acl.aces if acl is not None else ():
            sids.update(str(s) for s in ace.sids)
    return sids


# ------------------------------------------------------------------ member-after


def test_member_after_refuses_every_rid_collision(scenario_db):
    facts = scenarios.manifest("member-after")
    plan = _plan(scenario_db, "member-after")
    refused = {a.account: a for a in plan.refusals}
    assert set(refused) == {"Ken", "Arianne", "Ron"}
    for action in refused.values():
        assert action.verdict == "rid_collision" and action.new_sid is None
        assert action.files > 0, "a refusal says how many files it leaves as they are"
    # Nothing in the plan mentions a collided SID as a target.
    assert not any(a.new_sid in refused for a in plan.actions)
    assert facts["machine_sid"] == plan.scan["machine_sid"]


def test_member_after_never_hands_a_collided_rid_to_its_new_owner(scenario_db):
    plan = _plan(scenario_db, "member-after")
    machine = plan.scan["machine_sid"]
    pairs = [(a.sid, f"{machine}-{a.sid.rsplit('-', 1)[1]}") for a in plan.refusals]
    assert len(pairs) == 3
    checked = 0
    for change in plan.descriptors:
        old = _sids_of(from_sddl(change.old_sddl))
        new = _sids_of(SecurityDescriptor.from_bytes(change.new_raw))
        for collided, heir in pairs:
            if collided in old and heir not in old:
                checked += 1
                assert heir not in new, f"descriptor {change.descriptor_key} would grant {heir} {collided}'s access"
                assert collided in new, "a refused SID stays where it was"
    assert checked > 0, "some rewritten descriptor names Ken, Arianne or Ron"


def test_member_after_maps_builtin_rids_rid_to_rid(scenario_db):
    plan = _plan(scenario_db, "member-after")
    machine = plan.scan["machine_sid"]
    replaced = {a.sid.rsplit("-", 1)[1]: a for a in _by_kind(plan, planning.REPLACE_SID)}
    assert set(replaced) == {"500", "513"}
    for rid, action in replaced.items():
        assert action.new_sid == f"{machine}-{rid}"
        assert not action.sid.startswith(machine + "-")


# -------------------------------------------------------------------- av-service


def test_av_service_plan(scenario_db):
    plan = _plan(scenario_db, "av-service")
    assert not plan.refusals
    replaced = {a.account: a for a in _by_kind(plan, planning.REPLACE_SID)}
    assert set(replaced) == {"AVService", "AV Admins"}
    for action in replaced.values():
        assert action.new_sid.startswith(plan.scan["machine_sid"] + "-") and action.files > 0
    (rights,) = _by_kind(plan, planning.GRANT_LSA_RIGHTS)
    assert rights.rights == ("SeServiceLogonRight",)
    assert rights.services == ("AVScan",)
    assert rights.sid == replaced["AVService"].sid and rights.new_sid == replaced["AVService"].new_sid
    (member,) = _by_kind(plan, planning.REPLACE_ALIAS_MEMBER)
    assert member.groups == ("AV Admins",) and member.new_sid == replaced["AVService"].new_sid


# ----------------------------------------------------------------- domain-member


def test_domain_member_plan(scenario_db):
    facts = scenarios.manifest("domain-member")
    (carol,) = facts["deleted_domain_users"]
    plan = _plan(scenario_db, "domain-member")
    (history,) = _by_kind(plan, planning.TRANSLATE_SID_HISTORY)
    assert history.account.endswith("dave")
    assert history.new_sid.startswith(facts["primary_domain"]["sid"] + "-")
    (removal,) = _by_kind(plan, planning.REMOVE_ACES)
    (owner,) = _by_kind(plan, planning.REASSIGN_OWNER)
    assert removal.sid == owner.sid == carol
    assert owner.new_sid == planning.ADMINISTRATORS
    for change in plan.descriptors:
        assert carol not in _sids_of(SecurityDescriptor.from_bytes(change.new_raw))


def test_owner_option_takes_sddl_aliases(scenario_db, tmp_path):
    out = tmp_path / "plan.json"
    assert main(["plan", str(scenario_db("domain-member")), "--format", "json", "--owner", "SY", "-o", str(out)]) == 0
    plan = read_plan(out)
    (owner,) = _by_kind(plan, planning.REASSIGN_OWNER)
    assert owner.new_sid == "S-1-5-18" and plan.owner == "S-1-5-18"


# ------------------------------------------------------------------- cloned-dc


def test_cloned_dc_is_refused(scenario_db):
    path = scenario_db("cloned-dc")
    plan = build_plan(open_database(path))
    assert [(a.kind, a.verdict) for a in plan.actions] == [(planning.REFUSE, "domain_controller")]
    assert not plan.descriptors


# ------------------------------------------------------------ every scenario


def _independent_counts(db, sid: str) -> tuple[int, int, int]:
    """(files, descriptors, explicit files) carrying ``sid``, straight from aces and descriptors."""
    carrying = ("SELECT descriptor_key FROM aces WHERE sid = ? "
                "UNION SELECT key FROM descriptors WHERE owner = ? OR \"group\" = ?")
    explicit = ("SELECT descriptor_key FROM aces WHERE sid = ? AND inherited = 0 "
                "UNION SELECT key FROM descriptors WHERE owner = ? OR \"group\" = ?")
    files, descriptors = db.execute(
        f"SELECT COALESCE(SUM(files), 0), COUNT(*) FROM descriptors WHERE raw IS NOT NULL AND key IN ({carrying})",
        [sid] * 3).fetchone()
    (explicit_files,) = db.execute(
        f"SELECT COALESCE(SUM(files), 0) FROM descriptors WHERE raw IS NOT NULL AND key IN ({explicit})",
        [sid] * 3).fetchone()
    return files, descriptors, explicit_files


@pytest.mark.parametrize("name", scenarios.SCENARIOS)
def test_counts_match_an_independent_query(scenario_db, name):
    db = open_database(scenario_db(name))
    plan = build_plan(db)
    skipped_actions = {s.action for s in plan.skipped}
    for action in plan.actions:
        assert action.explicit_files + action.inherited_files == action.files
        if action.kind in (planning.REPLACE_SID, planning.TRANSLATE_SID_HISTORY, planning.REMOVE_ACES,
                           planning.REFUSE) and action.id not in skipped_actions and action.sid:
            assert (action.files, action.descriptors, action.explicit_files) == _independent_counts(db, action.sid), \
                action
    # The files the plan lists are the files its changes count.
    assert sum(1 for _ in planning.iter_plan_files(db, plan)) == sum(c.files for c in plan.descriptors)


@pytest.mark.parametrize("name", scenarios.SCENARIOS)
def test_json_round_trips_and_validates(scenario_db, name):
    plan = _plan(scenario_db, name)
    assert plan_from_json(plan.to_json()) == plan
    schema = json.loads(planning.SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(json.loads(plan.to_json()))


def test_schema_rejects_what_is_not_a_plan(scenario_db):
    schema = json.loads(planning.SCHEMA_PATH.read_text())
    document = json.loads(_plan(scenario_db, "av-service").to_json())
    document["actions"][0]["kind"] = "rewrite_everything"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


# ----------------------------------------------------------------- the command


@pytest.mark.parametrize(("name", "code"), [("av-service", 0), ("domain-member", 0), ("member-after", 1)])
def test_exit_code_says_whether_refusals_remain(scenario_db, name, code, capsys):
    assert main(["plan", str(scenario_db(name)), "--format", "json"]) == code
    captured = capsys.readouterr()
    assert plan_from_json(captured.out).scan["volumes"]
    assert captured.err.startswith("plan: ") and "refusal" in captured.err


@pytest.mark.parametrize("content", [b"{not json", b'{"plan_format": 99}', b"\xff\xfe\x00garbage",
                                     b'{"plan_format": 1, "actions": 3}'])
def test_a_corrupt_plan_file_is_a_one_line_error(scenario_db, tmp_path, capsys, content):
    bad = tmp_path / "plan.json"
    bad.write_bytes(content)
    assert main(["plan", str(scenario_db("av-service")), "--plan", str(bad)]) == InvalidPlan.exit_code == 8
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1


def test_a_plan_from_another_scan_is_refused(scenario_db, tmp_path, capsys):
    other = tmp_path / "plan.json"
    assert main(["plan", str(scenario_db("domain-member")), "--format", "json", "-o", str(other)]) == 0
    capsys.readouterr()
    assert main(["plan", str(scenario_db("av-service")), "--plan", str(other)]) == 8
    assert "another scan" in capsys.readouterr().err
    # Its own scan renders it again, byte for byte the same JSON.
    again = tmp_path / "again.json"
    assert main(["plan", str(scenario_db("domain-member")), "--plan", str(other), "--format", "json",
                 "-o", str(again)]) == 0
    assert again.read_bytes() == other.read_bytes()


def test_database_errors_exit_5(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "missing.db")]) == 5
    not_a_db = tmp_path / "x.db"
    not_a_db.write_text("hello")
    assert main(["plan", str(not_a_db)]) == 5


def test_output_file_only_when_there_is_something_to_write(scenario_db, tmp_path):
    clean = tmp_path / "clean.db"
    shutil.copy(scenario_db("clean"), clean)
    target = tmp_path / "restore.icacls"
    assert main(["plan", str(clean), "--format", "icacls", "-o", str(target)]) == 0
    assert not target.exists()


def test_one_check_that_a_plan_is_of_this_scan(scenario_db, tmp_path, capsys):
    """`plan --plan` judges a saved plan by the one check `fix` uses too (tests/test_fix.py,
    exit 16): a plan naming no volume, or made from another scan of the same image (same
    serial, another scan time), is refused (exit 8)."""
    import json

    db = scenario_db("av-service")
    path = tmp_path / "plan.json"
    assert main(["plan", str(db), "--format", "json", "-o", str(path)]) == 0
    document = json.loads(path.read_text())
    for volumes in ([], [{**document["scan"]["volumes"][0], "scanned_at": "2001-01-01T00:00:00+00:00"}]):
        other = tmp_path / "other.json"
        other.write_text(json.dumps({**document, "scan": {**document["scan"], "volumes": volumes}}))
        capsys.readouterr()
        assert main(["plan", str(db), "--plan", str(other)]) == 8
        assert "the plan" in capsys.readouterr().err


# ------------------------------------------------------------------ verify_plan: a saved plan against its scan

def _tampered(plan, **changes):
    """The plan after someone edited one part of it (an action or a descriptor change)."""
    import dataclasses

    if "action" in changes:
        first = dataclasses.replace(plan.actions[0], **changes["action"])
        return dataclasses.replace(plan, actions=(first, *plan.actions[1:]))
    first = dataclasses.replace(plan.descriptors[0], **changes["descriptor"])
    return dataclasses.replace(plan, descriptors=(first, *plan.descriptors[1:]))


TAMPERING = {
    "an action's new SID": ({"action": {"new_sid": "S-1-5-32-545"}}, "is not what the scan's findings call for: "
                                                                      "refusing the plan"),
    "a descriptor the scan does not change": ({"descriptor": {"descriptor_key": 999999}},
                                              "plan descriptor 999999: the scan calls for no change of it on volume"),
    "another volume": ({"descriptor": {"volume_id": 7}}, "the scan calls for no change of it on volume 7"),
    "the original's digest": ({"descriptor": {"old_sha256": "0" * 64}},
                              "old_sha256 is not the scanned descriptor's"),
    "the new bytes": ({"descriptor": {"new_raw": b"\x01\x00\x04\x80" + b"\x00" * 16}},
                      "new_raw is not the scanned descriptor with the plan's actions applied: refusing the plan"),
    "the SDDL shown": ({"descriptor": {"new_sddl": "O:BAG:BAD:(A;;FA;;;WD)"}}, "its SDDL is not the descriptor's"),
}


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_verify_plan_refuses_a_plan_edited_after_it_was_made(scenario_db, what):
    from aclscan.errors import PlanMismatch

    db = open_database(scenario_db("av-service"))
    plan = build_plan(db)
    planning.verify_plan(db, plan)  # as made: accepted
    changes, message = TAMPERING[what]
    with pytest.raises(PlanMismatch) as caught:
        planning.verify_plan(db, _tampered(plan, **changes))
    assert message in str(caught.value)


def test_verify_plan_makes_the_plan_again_with_its_owner_and_group(scenario_db):
    """member-after with --remove-orphans gives Ken's, Arianne's and Ron's files an owner:
    the plan's own (SYSTEM, group Users here) when it is made again, so a plan whose owner
    was edited afterwards no longer matches."""
    import dataclasses

    from aclscan.errors import PlanMismatch

    db = open_database(scenario_db("member-after"))
    plan = build_plan(db, owner="S-1-5-18", group="S-1-5-32-545", remove_orphans=True)
    assert {a.new_sid for a in plan.actions if a.kind == "reassign_owner"} == {"S-1-5-18"}
    planning.verify_plan(db, plan_from_json(plan.to_json()))
    for edited in (dataclasses.replace(plan, owner="S-1-5-32-544"), dataclasses.replace(plan, group="S-1-5-32-544"),
                   dataclasses.replace(plan, choices={**plan.choices, "remove_orphans": False})):
        with pytest.raises(PlanMismatch):
            planning.verify_plan(db, edited)


def test_verify_plan_refuses_choices_it_cannot_read(scenario_db):
    import dataclasses

    from aclscan.errors import PlanMismatch

    db = open_database(scenario_db("member-after"))
    plan = build_plan(db)
    for choices in ({"map": [{"old": "S-1-5-18", "new": "S-1-5-19"}]}, {"mode": "sideways"}):
        with pytest.raises(PlanMismatch) as caught:
            planning.verify_plan(db, dataclasses.replace(plan, choices=choices))
        assert str(caught.value).startswith("the plan's choices cannot be made again from the scan (")
        assert str(caught.value).endswith("): refusing the plan")


# ------------------------------------------------------------------ reading a saved plan

def test_a_plan_with_skipped_descriptors_and_no_optional_lists_reads_back(scenario_db):
    import dataclasses

    plan = _plan(scenario_db, "av-service")
    skipped = (planning.Skipped(descriptor_key=9, action="A1", reason="the ACE would be lost"),)
    with_skips = dataclasses.replace(plan, skipped=skipped)
    document = json.loads(with_skips.to_json())
    assert document["skipped"] == [{"descriptor_key": 9, "action": "A1", "reason": "the ACE would be lost"}]
    assert plan_from_json(with_skips.to_json()) == with_skips
    # Written by an older aclscan: no lists of folders, services, ... in actions, no skipped.
    for action in document["actions"]:
        for name in ("folders", "services", "rights", "groups", "profiles"):
            action.pop(name)
    del document["skipped"]
    older = plan_from_json(json.dumps(document))
    assert older.skipped == () and all(a.folders == () and a.profiles == () for a in older.actions)
    assert [a.id for a in older.actions] == [a.id for a in plan.actions]


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not a plan: not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("[1, 2]", "not a plan: no plan_format"),
    ('{"actions": []}', "not a plan: no plan_format"),
    ('{"plan_format": 99}', "plan format 99; this aclscan reads format 1"),
    ('{"plan_format": 1, "scan": {}, "owner": "S-1-5-18", "group": "S-1-5-18", "actions": []}',
     "not a plan: KeyError: 'descriptors'"),
])
def test_what_is_not_a_plan_is_refused_with_a_reason(text, message):
    with pytest.raises(InvalidPlan) as caught:
        plan_from_json(text)
    assert str(caught.value) == message


def test_a_plan_whose_bytes_are_not_base64_or_name_unknown_actions_is_refused(scenario_db):
    plan = _plan(scenario_db, "av-service")
    document = json.loads(plan.to_json())
    document["descriptors"][0]["new_raw"] = "AQAEgA==!"  # base64 with a stray character
    with pytest.raises(InvalidPlan, match=r"^not a plan: (Error|ValueError): "):
        plan_from_json(json.dumps(document))
    document = json.loads(plan.to_json())
    document["descriptors"][0]["actions"] = ["A999"]
    key = document["descriptors"][0]["descriptor_key"]
    with pytest.raises(InvalidPlan) as caught:
        plan_from_json(json.dumps(document))
    assert str(caught.value) == f"descriptor {key} names an action the plan lacks"


def test_read_plan_says_why_it_cannot(tmp_path):
    with pytest.raises(InvalidPlan) as caught:
        read_plan(tmp_path / "absent.json")
    assert str(caught.value) == f"no plan file at {tmp_path / 'absent.json'}"
    binary = tmp_path / "plan.json"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(InvalidPlan) as caught:
        read_plan(binary)
    assert str(caught.value).startswith(f"cannot read plan {binary}: 'utf-8' codec can't decode byte 0xff")
    with pytest.raises(InvalidPlan) as caught:
        read_plan(tmp_path)
    assert str(caught.value).startswith(f"cannot read plan {tmp_path}: [Errno 21] Is a directory")


def test_a_plan_of_another_scan_or_of_none_is_refused(scenario_db):
    import dataclasses

    db = open_database(scenario_db("av-service"))
    plan = build_plan(db)
    planning.require_same_scan(plan, db)
    other = build_plan(open_database(scenario_db("member-after")))
    with pytest.raises(InvalidPlan) as caught:
        planning.require_same_scan(other, db)
    assert str(caught.value) == ("the plan was made from another scan (its volumes' serial, size or scan time differ "
                                 "from this database's)")
    for scan in ({**plan.scan, "volumes": []}, {k: v for k, v in plan.scan.items() if k != "volumes"}):
        with pytest.raises(InvalidPlan) as caught:
            planning.require_same_scan(dataclasses.replace(plan, scan=scan), db)
        assert str(caught.value) == "the plan names no scanned volume: it cannot be matched to this scan"


# ------------------------------------------------------------------ why the plan refuses, verdict by verdict

LATEST = ["prefix S-1-5-21-1-2-3 is not known", "no export names it", "asked the directory: no answer"]
REFUSALS = [
    ({"verdict": "rid_collision", "account": "Ken",
      "evidence": ["history: it was Ken", "RID 1000 now belongs to M\\Jon: a prefix rewrite would give it Ken's access",
                   "RID 1000 now belongs to M\\Sam", "later"]},
     'no account today is named "Ken", and its RID belongs to another account now (RID 1000 now belongs to M\\Jon: '
     "a prefix rewrite would give it Ken's access); way out: create Ken and scan again; or --map FILE; or "
     "--remove-orphans (drops its ACEs)"),
    ({"verdict": "rid_collision", "account": None, "evidence": []},
     "no account today is named its old account, and its RID belongs to another account now; way out: create the "
     "account; or --map FILE; or --remove-orphans (drops its ACEs)"),
    ({"verdict": "stale_prefix", "account": None, "evidence": LATEST},
     "a previous machine SID with no name mapping: give the master's SAM or an earlier scan (--history) (no export "
     "names it; asked the directory: no answer); or map it to an account with --map FILE"),
    ({"verdict": "sid_history", "account": None, "evidence": LATEST[:1]},
     "listed in sIDHistory, but the account that lists it is unknown (prefix S-1-5-21-1-2-3 is not known); or map "
     "it to an account with --map FILE"),
    ({"verdict": "unknown_authority", "account": None, "evidence": []},
     "no source knows this account: give a domain export, --ldap or --history and scan again; or map it to an "
     "account with --map FILE"),
    ({"verdict": "unresolved", "account": None, "evidence": []},
     "no source knows this account: give a domain export, --ldap or --history and scan again; or map it to an "
     "account with --map FILE"),
    ({"verdict": "foreign_machine", "account": None, "evidence": []},
     "another machine's SID: decide per machine (see aclscan fleet); or map it to an account with --map FILE"),
    ({"verdict": "inconsistent_hives", "account": None, "evidence": []},
     "the volume's own hives disagree about the machine SID: resolve that first; or map it to an account with "
     "--map FILE"),
    ({"verdict": "placeholder", "account": None, "evidence": []},
     "no safe action for verdict placeholder; or map it to an account with --map FILE"),
]


@pytest.mark.parametrize(("finding", "reason"), REFUSALS, ids=[f["verdict"] + str(i) for i, (f, _) in
                                                               enumerate(REFUSALS)])
def test_each_refusal_says_why_and_the_way_out(finding, reason):
    """The reason a refused SID's action carries: why, the evidence that says who holds its
    RID now (else the last two facts), and what the administrator can do."""
    assert planning._refusal(finding) == reason


# ------------------------------------------------------------------ numbering, texts and edges of a plan

@pytest.mark.parametrize(("name", "options"), [
    ("av-service", {}), ("av-service", {"mode": "remove"}), ("domain-member", {}),
    ("member-after", {"remove_orphans": True}), ("member-after", {"mode": "remove"}),
])
def test_actions_are_numbered_a1_to_an_in_plan_order(scenario_db, name, options):
    """Every action's id is A1, A2, ... in the order the plan lists them, with no gap and no
    repeat, whatever mix of descriptor, reassignment and registry actions the plan holds."""
    plan = _plan(scenario_db, name, **options)
    kinds = {a.kind for a in plan.actions}
    assert len(kinds) >= 3, kinds
    assert [a.id for a in plan.actions] == [f"A{n}" for n in range(1, len(plan.actions) + 1)]
    # A reassignment gives away ownership; the folders where the SID's ACEs sit are the removal's.
    for action in plan.actions:
        if action.kind in (planning.REASSIGN_OWNER, planning.REASSIGN_GROUP):
            assert action.folders == ()


def test_domain_member_reassigns_the_orphans_files_with_its_reason(scenario_db):
    facts = scenarios.manifest("domain-member")
    (carol,) = facts["deleted_domain_users"]
    plan = _plan(scenario_db, "domain-member")
    (removal,) = _by_kind(plan, planning.REMOVE_ACES)
    assert removal.reason == "a deleted account of a complete authority: its ACEs grant nothing"
    assert removal.folders == ("/Shares/Legacy",)
    (owner,) = _by_kind(plan, planning.REASSIGN_OWNER)
    assert owner.sid == carol and owner.folders == ()
    assert owner.reason == "the owner is an orphan: give the files' ownership to S-1-5-32-544"
    (history,) = _by_kind(plan, planning.TRANSLATE_SID_HISTORY)
    assert history.reason == '"NETWERKS\\dave" lists it in sIDHistory'


def test_cloned_dc_refusal_names_the_machine_and_says_why(scenario_db):
    facts = scenarios.manifest("cloned-dc")
    plan = build_plan(open_database(scenario_db("cloned-dc")))
    (refusal,) = plan.actions
    assert refusal.sid == facts["machine_sid"] and refusal.account is None and refusal.new_sid is None
    assert refusal.reason == ("ProductType LanmanNT: a domain controller; cloning one is unsupported and its SIDs are "
                              "the domain's: restore it from backup or demote it, do not rewrite its ACLs")


def test_an_unknown_mode_is_refused_by_name(scenario_db):
    with pytest.raises(ValueError) as caught:
        _plan(scenario_db, "av-service", mode="sideways")
    assert str(caught.value) == "mode 'sideways' is not one of replace, add, remove"


def test_plan_json_keeps_names_as_they_are_spelt(scenario_db):
    """Account names are not ASCII everywhere (a German "Jürgen"): the JSON keeps them
    readable, not as \\u escapes, and reads them back."""
    import dataclasses

    plan = _plan(scenario_db, "av-service")
    named = dataclasses.replace(plan, actions=(dataclasses.replace(plan.actions[0], account="MEMBER\\Jürgen"),
                                               *plan.actions[1:]))
    text = named.to_json()
    assert '"account": "MEMBER\\\\Jürgen"' in text and "\\u00fc" not in text
    assert plan_from_json(text) == named


def _with_descriptors(scenario_db, tmp_path, name: str, sddls: list[str]):
    """A copy of a scenario's scan database with descriptors added as the scan stores them
    (one file each), and their keys."""
    from aclscan.descriptor_rows import describe
    from aclscan.scan import store_descriptor_rows

    path = tmp_path / f"{name}.db"
    shutil.copy(scenario_db(name), path)
    db = open_database(path)
    (first,) = db.execute("SELECT MAX(key) + 1 FROM descriptors").fetchone()
    keys = list(range(first, first + len(sddls)))
    infos = [describe(key, from_sddl(sddl).to_bytes(), security_id=None, source="attribute", hash_ok=None)
             for key, sddl in zip(keys, sddls)]
    store_descriptor_rows(db, 1, infos, {key: 1 for key in keys})
    db.conn.commit()
    return db, keys


def test_an_orphan_whose_removal_would_empty_a_dacl_is_left_in_it(scenario_db, tmp_path):
    """Removing Carol's ACEs from a DACL that holds nothing else would deny everyone: the plan
    leaves that descriptor as it is and says why; where another action changes the same
    descriptor (here its owner is a SID of dave's sIDHistory), only that change is made and
    Carol's ACE stays."""
    facts = scenarios.manifest("domain-member")
    (carol,) = facts["deleted_domain_users"]
    history, dave = next((sid, v["mapped_sid"]) for sid, v in facts["expected"].items()
                         if v["verdict"] == "sid_history")
    db, (alone, beside) = _with_descriptors(scenario_db, tmp_path, "domain-member", [
        f"O:BAG:BAD:(A;;FA;;;{carol})",
        f"O:{history}G:BAD:(A;;FA;;;{carol})",
    ])
    plan = build_plan(db)
    (removal,) = _by_kind(plan, planning.REMOVE_ACES)
    (translation,) = _by_kind(plan, planning.TRANSLATE_SID_HISTORY)
    reason = "removing the orphan's ACEs would leave an empty DACL (no access for anyone): left as it is"
    assert plan.skipped == (planning.Skipped(alone, removal.id, reason), planning.Skipped(beside, removal.id, reason))
    changed = {c.descriptor_key: c for c in plan.descriptors}
    assert alone not in changed
    assert changed[beside].actions == (translation.id,)
    assert SecurityDescriptor.from_bytes(changed[beside].new_raw) == from_sddl(f"O:{dave}G:BAD:(A;;FA;;;{carol})")
    # The removal counts only what it changes (the sample's 9 files in 3 descriptors);
    # the translation counts the added file too.
    expected = facts["expected"]
    assert (removal.files, removal.descriptors) == (expected[carol]["files"], expected[carol]["descriptors"])
    assert (translation.files, translation.descriptors) == (expected[history]["files"] + 1,
                                                            expected[history]["descriptors"] + 1)
    assert json.loads(plan.to_json())["skipped"][0] == {"descriptor_key": alone, "action": removal.id,
                                                        "reason": reason}


def test_places_of_more_descriptors_than_one_query_takes_are_all_counted(scenario_db):
    """The places using each descriptor are looked up 500 keys a query: keys at the edges of
    those batches (the 501st, the 1001st) are counted like the first."""
    db = open_database(scenario_db("av-service"))
    counted = {(key, kind): n for key, kind, n in db.execute(
        "SELECT descriptor_key, kind, COUNT(*) FROM places WHERE descriptor_key IS NOT NULL "
        "GROUP BY descriptor_key, kind")}
    real = sorted({key for key, _ in counted})
    assert len(real) >= 3
    absent = iter(range(10**6, 10**6 + 2000))  # keys no descriptor has
    keys = [next(absent) for _ in range(1100)]
    keys[0], keys[500], keys[1000] = real[:3]
    found = planning._place_uses(db, keys)
    assert found == {key: {kind: n for (k, kind), n in counted.items() if k == key} for key in real[:3]}


def test_planned_files_are_the_records_the_sleuth_kit_reads(scenario_db, tmp_path):
    """iter_plan_files lists, by path or by MFT entry, each file whose descriptor the plan
    changes with its entry number, sequence number and kind as The Sleuth Kit reads them
    from the image (fls, istat)."""
    import gzip
    import re
    import subprocess

    image = tmp_path / "av-service.img"
    image.write_bytes(gzip.decompress((scenarios.SAMPLES / "av-service.img.gz").read_bytes()))
    listed = {}
    for line in subprocess.run(["fls", "-r", "-p", str(image)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        found = re.fullmatch(r"([dr-])/[dr-] (\d+)-\d+-\d+:\t(.+)", line)
        if found:
            listed["/" + found.group(3)] = (int(found.group(2)), found.group(1) == "d")
    db = open_database(scenario_db("av-service"))
    plan = build_plan(db)
    by_entry = list(planning.iter_plan_files(db, plan, order="entry"))
    assert len(by_entry) == sum(c.files for c in plan.descriptors) > 10
    assert [p.entry for p in by_entry] == sorted(p.entry for p in by_entry)
    by_path = list(planning.iter_plan_files(db, plan))
    assert [p.path for p in by_path] == sorted(p.path for p in by_entry)
    for planned in by_entry:
        assert listed[planned.path] == (planned.entry, planned.is_dir), planned.path
        header = subprocess.run(["istat", str(image), str(planned.entry)], capture_output=True, text=True,
                                check=True).stdout
        assert planned.sequence == int(re.search(r"Sequence: (\d+)", header).group(1)) > 0
        assert planned.change.descriptor_key in {c.descriptor_key for c in plan.descriptors}
    assert list(planning.iter_plan_files(db, plan, volume_id=2)) == []


# ------------------------------------------------------------------ what each finding calls for, verdict by verdict

NEW = "S-1-5-21-4-5-6-1107"
INTENTS = [
    ({"verdict": "stale_prefix", "account": "Ken", "mapped_sid": NEW},
     ("replace_sid", f'previous machine SID of "Ken": today\'s account of that name is {NEW}', NEW)),
    ({"verdict": "stale_prefix", "account": None, "mapped_sid": NEW},
     ("replace_sid", f"previous machine SID of the old account: today's account of that name is {NEW}", NEW)),
    ({"verdict": "rid_collision", "account": "Ken", "mapped_sid": NEW},
     ("replace_sid", f'"Ken"\'s RID now belongs to another account, but the name "Ken" exists today as {NEW}: map by '
                     "name", NEW)),
    ({"verdict": "rid_collision", "account": None, "mapped_sid": NEW},
     ("replace_sid", "the old account's RID now belongs to another account, but the name the old account exists "
                     f"today as {NEW}: map by name", NEW)),
    ({"verdict": "sid_history", "account": "NETWERKS\\dave", "mapped_sid": NEW},
     ("translate_sid_history", '"NETWERKS\\dave" lists it in sIDHistory', NEW)),
    ({"verdict": "orphan", "account": None, "mapped_sid": None},
     ("remove_aces", "a deleted account of a complete authority: its ACEs grant nothing", None)),
    # A mapped SID of any other verdict is no name mapping: refused with its reason.
    ({"verdict": "foreign_machine", "account": None, "mapped_sid": NEW, "evidence": []},
     ("refuse", "another machine's SID: decide per machine (see aclscan fleet); or map it to an account with "
                "--map FILE", None)),
    ({"verdict": "sid_history", "account": None, "mapped_sid": None, "evidence": []},
     ("refuse", "listed in sIDHistory, but the account that lists it is unknown; or map it to an account with "
                "--map FILE", None)),
]


@pytest.mark.parametrize(("finding", "expected"), INTENTS, ids=[f["verdict"] + str(i) for i, (f, _) in
                                                                enumerate(INTENTS)])
def test_each_finding_calls_for_one_action(finding, expected):
    """What the plan does about a finding, before its descriptors are counted: the kind of
    action, the reason people read, and the SID written instead."""
    finding = {"sid": "S-1-5-21-1-2-3-1107", "evidence": ["history: it was Ken"], **finding}
    (intent,) = planning._intents_for(finding)
    assert (intent.kind, intent.reason, intent.new_sid) == expected
    assert intent.finding is finding


def test_the_owner_given_owns_the_orphans_files(scenario_db):
    """domain-member with --owner SYSTEM: every descriptor Carol owned is owned by SYSTEM in
    the bytes the fix writes."""
    facts = scenarios.manifest("domain-member")
    (carol,) = facts["deleted_domain_users"]
    plan = _plan(scenario_db, "domain-member", owner="S-1-5-18")
    (owner,) = _by_kind(plan, planning.REASSIGN_OWNER)
    owned = [c for c in plan.descriptors if owner.id in c.actions]
    assert len(owned) == owner.descriptors > 0
    for change in owned:
        assert str(from_sddl(change.old_sddl).owner) == carol
        assert str(SecurityDescriptor.from_bytes(change.new_raw).owner) == "S-1-5-18"


def test_mode_add_leaves_a_descriptor_that_already_grants_the_new_sid_alone(scenario_db, tmp_path):
    """--mode add puts a copy of each ACE of the old SID beside it for the new one: a
    descriptor that already holds that very copy (dave's ACE beside his sIDHistory SID's)
    needs nothing, and the plan does not list it."""
    facts = scenarios.manifest("domain-member")
    history, dave = next((sid, v["mapped_sid"]) for sid, v in facts["expected"].items()
                         if v["verdict"] == "sid_history")
    db, (both, alone) = _with_descriptors(scenario_db, tmp_path, "domain-member", [
        f"O:BAG:BAD:(A;;FR;;;{history})(A;;FR;;;{dave})",
        f"O:BAG:BAD:(A;;FR;;;{history})",
    ])
    plan = build_plan(db, mode="add")
    (added,) = _by_kind(plan, planning.ADD_SID)
    changed = {c.descriptor_key: c for c in plan.descriptors}
    assert both not in changed
    assert changed[alone].actions == (added.id,)
    assert SecurityDescriptor.from_bytes(changed[alone].new_raw) == from_sddl(
        f"O:BAG:BAD:(A;;FR;;;{history})(A;;FR;;;{dave})")
