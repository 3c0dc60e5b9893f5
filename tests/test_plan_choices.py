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


# ------------------------------------------------------------------ what removal and mapping do beyond files

def _registry_side(plan) -> dict[tuple[str, str], object]:
    kinds = ("remove_alias_member", "revoke_lsa_rights", "detach_profile")
    found = {(a.sid, a.kind): a for a in plan.actions if a.kind in kinds}
    assert found
    return found


def test_remove_orphans_takes_removed_collisions_out_of_groups_and_profiles(db):
    """Ken, Arianne and Ron lose their ACEs with --remove-orphans, and with them what the
    registry still ties to their old SIDs: the manifest's ProfileList entries and Ken's
    place in Administrators (the sample's SAM lists him there)."""
    plan = build_plan(db, remove_orphans=True)
    found = _registry_side(plan)
    profiles = FACTS["profiles"]
    administrators = next(a for a in FACTS["builtin_aliases"] if a["name"] == "Administrators")["members"]
    expected_keys = {(sid, "detach_profile") for sid in (KEN, ARIANNE, RON)}
    expected_keys |= {(sid, "remove_alias_member") for sid in (KEN, ARIANNE, RON) if sid in administrators}
    assert set(found) == expected_keys and (KEN, "remove_alias_member") in found
    for (sid, kind), action in found.items():
        assert action.verdict == "rid_collision" and action.new_sid is None
        assert action.account == {KEN: "Ken", ARIANNE: "Arianne", RON: "Ron"}[sid]
        if kind == "detach_profile":
            assert action.profiles == (profiles[sid],)
            assert action.reason == (f"{action.account}'s access is removed: ProfileList no longer ties its profile to "
                                     "the old SID (the folder and its files stay; their ownership goes to the owner "
                                     "given)")
        else:
            assert action.groups == ("Administrators",)
            assert action.reason == "Ken's access is removed: out of the groups that list it"
    removal = {a.sid: a for a in plan.actions if a.kind == "remove_aces"}
    assert removal[KEN].reason == ('--remove-orphans: no account today is named "Ken" and its RID belongs to '
                                   "another account: its ACEs are removed")
    # Every action has its own id, and the plan finds each by it.
    ids = [a.id for a in plan.actions]
    assert len(set(ids)) == len(ids) == len(plan.actions) > 1
    assert all(plan.action(a.id) is a for a in plan.actions)


def test_mode_remove_revokes_the_rights_and_memberships_of_what_it_removes(scenario_db):
    """av-service with --mode remove: AVService's ACEs go, and with them its right to log on
    as a service and its place in AV Admins (the sample's manifest grants and lists both)."""
    facts = scenarios.manifest("av-service")
    av_db = open_database(scenario_db("av-service"))
    service = next(a["sid"] for a in facts["accounts"] if a["name"] == "AVService")
    old = f"{facts['previous_machine_sids'][0]}-{service.rsplit('-', 1)[1]}"
    plan = build_plan(av_db, mode="remove")
    found = _registry_side(plan)
    assert found[(old, "revoke_lsa_rights")].rights == tuple(facts["lsa_rights"][old])
    assert found[(old, "revoke_lsa_rights")].reason == ("AVService's access is removed: its LSA rights and "
                                                        "privileges go")
    groups = tuple(a["name"] for a in facts["accounts"] if old in (a.get("members") or ()))
    assert groups == ("AV Admins",) and found[(old, "remove_alias_member")].groups == groups
    assert (old, "detach_profile") not in found  # no profile names it
    assert not [a for a in plan.actions if a.kind in ("grant_lsa_rights", "replace_alias_member")]
    assert all(plan.action(a.id) is a for a in plan.actions)


def test_a_map_reason_says_who_gains_and_whether_the_scan_knows_them(db):
    unknown = build_plan(db, mapping=mapping(db, f"old,new\nMEMBER\\Ken,{KEN_NEW}\n"))
    action = next(a for a in unknown.actions if a.sid == KEN and a.kind == "replace_sid")
    assert action.reason == (f'mapped by the administrator (--map line 2): {KEN_NEW} gains "Ken"\'s access; '
                             f"{KEN_NEW} is no account this scan knows")
    consented = build_plan(db, mapping=mapping(db, "Ken,MEMBER\\Jon,consent\n"))
    action = next(a for a in consented.actions if a.sid == KEN and a.kind == "replace_sid")
    assert action.reason == ('mapped by the administrator (--map line 1): MEMBER\\Jon gains "Ken"\'s access '
                             '(with consent: MEMBER\\Jon may hold "Ken"\'s RID today)')


def test_a_saved_plan_with_choices_is_verified_against_its_scan(db):
    """verify_plan makes the plan again with the choices it records: a plan with a map (and
    consent), a mode and --remove-orphans passes; the same plan without its map does not."""
    from aclscan.errors import PlanMismatch
    from aclscan.plan import verify_plan

    for plan in (build_plan(db, mapping=mapping(db, "Ken,MEMBER\\Jon,consent\n"), mode="add", remove_orphans=True),
                 build_plan(db, mapping=mapping(db, f"Ken,{KEN_NEW}\n"))):
        saved = plan_from_json(plan.to_json())
        verify_plan(db, saved)
        unmapped = plan_from_json(json.dumps({**json.loads(plan.to_json()),
                                              "choices": {**plan.choices, "map": []}}))
        with pytest.raises(PlanMismatch, match="is not what the scan's findings call for"):
            verify_plan(db, unmapped)


def test_a_mapped_sid_history_entry_is_translated_not_replaced(scenario_db):
    domain_db = open_database(scenario_db("domain-member"))
    facts = scenarios.manifest("domain-member")
    history = sorted(sid for sid, v in facts["expected"].items() if v["verdict"] == "sid_history")
    assert history
    target = "S-1-5-32-544"
    plan = build_plan(domain_db, mapping=parse_mapping(f"old,new\n{history[0]},{target}\n", domain_db))
    action = next(a for a in plan.actions if a.sid == history[0] and a.new_sid == target)
    assert action.kind == "translate_sid_history"


def test_remove_orphans_never_removes_what_is_refused_for_another_reason(scenario_db):
    """cloned-dc is a domain controller: the plan refuses it whole, --remove-orphans or not."""
    dc_db = open_database(scenario_db("cloned-dc"))
    for plan in (build_plan(dc_db), build_plan(dc_db, remove_orphans=True)):
        assert [a.verdict for a in plan.refusals] == ["domain_controller"]
        assert [a.kind for a in plan.actions] == ["refuse"]


def test_removed_collisions_without_a_name_are_named_by_their_sid(tmp_path):
    """Scanned without any history, av-service's old SIDs are RID collisions of no known
    name: removed with --remove-orphans, each is called by its SID (the ACEs) or "its old
    account" (the reason), and AVService's old SID loses its right and its group."""
    facts = scenarios.manifest("av-service")
    path = tmp_path / "av-service-no-history.db"
    assert main(["scan", str(scenarios.SAMPLES / "av-service.img.gz"), "--db", str(path), "--quiet",
                 "--no-image-history"]) in (0, 1)
    av_db = open_database(path)
    plan = build_plan(av_db, remove_orphans=True)
    removed = [a for a in plan.actions if a.kind == "remove_aces"]
    assert removed and all(a.account is None and a.verdict == "rid_collision" for a in removed)
    assert {a.reason for a in removed} == {"--remove-orphans: no account today is named its old account and its RID "
                                           "belongs to another account: its ACEs are removed"}
    old = f"{facts['previous_machine_sids'][0]}-1003"  # AVService's RID
    found = _registry_side(plan)
    assert found[(old, "revoke_lsa_rights")].rights == tuple(facts["lsa_rights"][old])
    assert found[(old, "revoke_lsa_rights")].reason == f"{old}'s access is removed: its LSA rights and privileges go"
    assert found[(old, "remove_alias_member")].reason == f"{old}'s access is removed: out of the groups that list it"
    # Mapped instead (to today's AVService, whose RID it is: with consent), the registry side
    # names it by its SID too.
    today = next(a["sid"] for a in facts["accounts"] if a["name"] == "AVService")
    mapped = build_plan(av_db, mapping=parse_mapping(f"{old},{today},consent\n", av_db))
    (grant,) = [a for a in mapped.actions if a.kind == "grant_lsa_rights"]
    assert grant.reason == f"the old SID of {old} holds these rights; today's {today} needs them"
    (member,) = [a for a in mapped.actions if a.kind == "replace_alias_member"]
    assert member.reason == f"these groups list the old SID of {old}"


# ------------------------------------------------------------------ the registry side of a mapping, and the modes' texts

GUEST = f"{NOW}-501"  # today's Guest: no problem, but an administrator may map it all the same


def test_a_mapped_account_takes_its_profile_and_groups_along(db):
    """Ken mapped to the account created for him: ProfileList's entry for Ken's old SID and
    his place in Administrators (the sample's manifest) go to the new SID, with the reasons."""
    plan = build_plan(db, mapping=mapping(db, f"Ken,{KEN_NEW}\n"))
    (profile,) = [a for a in plan.actions if a.kind == "repoint_profile"]
    assert (profile.sid, profile.new_sid, profile.account) == (KEN, KEN_NEW, "Ken")
    assert profile.profiles == (FACTS["profiles"][KEN],) == ("C:\\Users\\Ken",)
    assert profile.reason == f"ProfileList keeps the profile of Ken under the old SID: today's {KEN_NEW} must find it"
    (alias,) = [a for a in plan.actions if a.kind == "replace_alias_member"]
    assert alias.groups == ("Administrators",) and alias.reason == "these groups list the old SID of Ken"
    assert [a.id for a in plan.actions] == [f"A{n}" for n in range(1, len(plan.actions) + 1)]
    # With Guest mapped too, Guest's rights follow Ken's profile in the numbering.
    both = build_plan(db, mapping=mapping(db, f"Ken,{KEN_NEW}\n{GUEST},S-1-5-32-546\n"))
    registry = [(a.sid, a.kind) for a in both.actions if a.kind in ("replace_alias_member", "repoint_profile",
                                                                      "grant_lsa_rights")]
    assert registry == [(KEN, "replace_alias_member"), (KEN, "repoint_profile"), (GUEST, "grant_lsa_rights")]
    assert [a.id for a in both.actions] == [f"A{n}" for n in range(1, len(both.actions) + 1)]


def test_a_mapped_accounts_rights_go_with_it_or_are_revoked(db):
    """Guest holds three LSA rights (the manifest): mapped to BUILTIN\\Guests they are granted
    to it; mapped with --mode remove, each of the three is revoked."""
    rights = tuple(FACTS["lsa_rights"][GUEST])
    assert len(rights) == 3
    granted = build_plan(db, mapping=mapping(db, f"{GUEST},S-1-5-32-546\n"))
    (grant,) = [a for a in granted.actions if a.kind == "grant_lsa_rights"]
    assert grant.rights == rights and grant.new_sid == "S-1-5-32-546"
    assert grant.reason == "the old SID of MEMBER\\Guest holds these rights; today's S-1-5-32-546 needs them"
    removed = build_plan(db, mapping=mapping(db, f"{GUEST},S-1-5-32-546\n"), mode="remove")
    (revoke,) = [a for a in removed.actions if a.kind == "revoke_lsa_rights"]
    assert revoke.rights == rights and revoke.sid == GUEST and revoke.new_sid is None
    assert revoke.reason == "MEMBER\\Guest's access is removed: its LSA rights and privileges go"
    assert not [a for a in removed.actions if a.kind == "grant_lsa_rights"]


def test_each_mode_says_what_it_does_to_a_repointing(db):
    """The reason of a re-pointing names the mode; in --mode remove the files of removed
    owners and primary groups go to the owner and group given."""
    administrator = f"{BEFORE}-500"
    plain = build_plan(db)
    base = next(a for a in plain.actions if a.sid == administrator).reason
    assert base == f'previous machine SID of "Administrator": today\'s account of that name is {NOW}-500'
    added = next(a for a in build_plan(db, mode="add").actions if a.sid == administrator)
    assert added.kind == "add_sid" and added.reason == (f"{base}; --mode add: the old SID keeps its ACEs and {NOW}-500 "
                                                        "gets the same beside them")
    removed = build_plan(db, mode="remove", group="S-1-5-32-545")
    removal = next(a for a in removed.actions if a.sid == administrator and a.kind == "remove_aces")
    assert removal.reason == f"{base}; --mode remove: its ACEs are removed instead (ownership to S-1-5-32-544)"
    reassigned = {(a.kind, a.sid): a for a in removed.actions if a.kind in ("reassign_owner", "reassign_group")}
    assert set(reassigned) == {("reassign_owner", administrator), ("reassign_group", f"{BEFORE}-513")}
    owner, group = reassigned[("reassign_owner", administrator)], reassigned[("reassign_group", f"{BEFORE}-513")]
    assert owner.new_sid == "S-1-5-32-544" and group.new_sid == "S-1-5-32-545"
    assert owner.reason == "the owner's ACEs are removed: give the files' ownership to S-1-5-32-544"
    assert group.reason == "the group's ACEs are removed: make S-1-5-32-545 the files' primary group"
    assert owner.files > 0 and owner.explicit_files == owner.files and group.files > 0
    for change in removed.descriptors:
        new = SecurityDescriptor.from_bytes(change.new_raw)
        assert str(new.group) != f"{BEFORE}-513" and str(new.owner) != administrator
        if group.id in change.actions:
            assert str(new.group) == "S-1-5-32-545"


def test_a_mapped_sid_without_a_name_is_called_by_its_sid(scenario_db):
    """domain-member's deleted Carol has no name in the scan: mapped to Administrators, the
    reason names her by her SID."""
    facts = scenarios.manifest("domain-member")
    (carol,) = facts["deleted_domain_users"]
    domain_db = open_database(scenario_db("domain-member"))
    plan = build_plan(domain_db, mapping=parse_mapping(f"old,new\n{carol},S-1-5-32-544\n", domain_db))
    action = next(a for a in plan.actions if a.sid == carol)
    assert action.kind == "replace_sid" and action.account is None
    assert action.reason == f"mapped by the administrator (--map line 2): BUILTIN\\Administrators gains {carol}'s access"


def test_a_mapped_service_account_takes_its_services_along(scenario_db):
    """av-service's AVScan logs on as today's AVService (the manifest: .\\AVService). Mapped
    elsewhere (a move to another account), the service is re-pointed too; the old SID of
    AVService, mapped by name, keeps its right to log on as a service for today's SID."""
    facts = scenarios.manifest("av-service")
    assert {"name": "AVScan", "object_name": ".\\AVService"} in facts["services"]
    today = next(a["sid"] for a in facts["accounts"] if a["name"] == "AVService")
    av_db = open_database(scenario_db("av-service"))
    plan = build_plan(av_db, mapping=parse_mapping(f"{today},S-1-5-20\n", av_db))
    (service,) = [a for a in plan.actions if a.kind == "repoint_service"]
    assert (service.sid, service.new_sid, service.services) == (today, "S-1-5-20", ("AVScan",))
    assert service.reason == "these services log on as the old SID of AVHOST\\AVService"
    (grant,) = [a for a in plan.actions if a.kind == "grant_lsa_rights"]
    assert grant.new_sid == today and grant.services == ("AVScan",)
    assert grant.reason == (f"the old SID of AVService holds these rights; today's {today} needs them (services "
                            "logging on as it: AVScan)")
    assert [a.id for a in plan.actions] == [f"A{n}" for n in range(1, len(plan.actions) + 1)]
