"""Data-driven verdict cases: a descriptor in SDDL, the accounts known, and the
verdict expected for every SID in it. The classifier sees only fake sources."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from aclscan.accounts.base import DOMAIN, MACHINE, OTHER_MACHINE, PREVIOUS_MACHINE, Account, Authority
from aclscan.accounts.wellknown import WellKnownSource, service_sid
from aclscan.classify import (
    FOREIGN_MACHINE, ORPHAN, PLACEHOLDER, RESOLVED, RID_COLLISION, SID_HISTORY, STALE_PREFIX, TRANSIENT,
    UNKNOWN_AUTHORITY, UNRESOLVED, Classifier, PreviousName, profile_name,
)
from aclscan.sd.sddl import from_sddl

M = "S-1-5-21-801928374-234567815-1434823459"  # this machine
P = "S-1-5-21-191058668-193157475-1542849698"  # its previous machine SID
D = "S-1-5-21-3286904461-661230000-4220857270"  # its domain
O = "S-1-5-21-1390067357-1202500187-1085936611"  # an old domain
F = "S-1-5-21-111-222-333"  # another machine of the fleet
X = "S-1-5-21-999-888-777"  # nobody knows


@dataclass
class FakeSource:
    name: str
    known: list[Authority] = field(default_factory=list)
    listed: list[Account] = field(default_factory=list)

    def authorities(self):
        return self.known

    def lookup(self, sid):
        return next((a for a in self.listed if a.sid == sid), None)

    def accounts(self):
        return self.listed


def sam(*users: tuple[int, str]) -> FakeSource:
    return FakeSource("SAM", [Authority(M, "MEMBER", MACHINE, True, "SAM")],
                      [Account(f"{M}-{rid}", name, "user", "SAM", "MEMBER") for rid, name in users])


def domain(*users: tuple[int, str, tuple[str, ...]], complete: bool = True) -> FakeSource:
    return FakeSource("LDIF", [Authority(D, "NETWERKS", DOMAIN, complete, "LDIF")],
                      [Account(f"{D}-{rid}", name, "user", "LDIF", "NETWERKS", sid_history=history)
                       for rid, name, history in users])


def history(*names: tuple[int, str]) -> tuple[FakeSource, list[PreviousName]]:
    return (FakeSource("history", [Authority(P, None, PREVIOUS_MACHINE, False, "master SAM")]),
            [PreviousName(f"{P}-{rid}", name, "master SAM") for rid, name in names])


@dataclass(frozen=True)
class Case:
    name: str
    sddl: str
    sources: tuple
    previous: tuple = ()
    expected: dict = field(default_factory=dict)  # sid -> (verdict, account, mapped_sid) or verdict


def _hist(*names):
    src, prev = history(*names)
    return src, tuple(prev)


CASES = [
    Case("local account resolves", f"O:BAG:SYD:(A;;FA;;;{M}-1000)", (sam((1000, "Jon")),),
         expected={f"{M}-1000": (RESOLVED, "MEMBER\\Jon", None)}),
    Case("deleted local account is an orphan: the SAM is complete", f"O:BAG:SYD:(A;;FA;;;{M}-1005)",
         (sam((1000, "Jon")),), expected={f"{M}-1005": (ORPHAN, None, None)}),
    Case("built-in RID maps RID to RID", f"O:{P}-500G:{P}-513D:(A;;FA;;;{P}-500)",
         (sam((500, "Administrator"), (513, "None")), _hist((500, "Administrator"))[0]),
         _hist((500, "Administrator"))[1],
         {f"{P}-500": (STALE_PREFIX, "Administrator", f"{M}-500"), f"{P}-513": (STALE_PREFIX, "None", f"{M}-513")}),
    Case("stale prefix maps by name", f"O:BAG:SYD:(A;;0x1301bf;;;{P}-1003)",
         (sam((1003, "AVService")), _hist((1003, "AVService"))[0]), _hist((1003, "AVService"))[1],
         {f"{P}-1003": (STALE_PREFIX, "AVService", f"{M}-1003")}),
    Case("RID reused by someone else: never a prefix rewrite", f"O:{P}-1000G:SYD:(A;;FA;;;{P}-1000)",
         (sam((1000, "Jon")), _hist((1000, "Ken"))[0]), _hist((1000, "Ken"))[1],
         {f"{P}-1000": (RID_COLLISION, "Ken", None)}),
    Case("RID reused, but the old name exists elsewhere: map by name", f"O:BAG:SYD:(A;;FA;;;{P}-1000)",
         (sam((1000, "Jon"), (1010, "Ken")), _hist((1000, "Ken"))[0]), _hist((1000, "Ken"))[1],
         {f"{P}-1000": (RID_COLLISION, "Ken", f"{M}-1010")}),
    Case("RID reused and the old name unknown: no mapping", f"O:BAG:SYD:(A;;FA;;;{P}-1001)",
         (sam((1001, "Sam")), _hist()[0]), (),
         {f"{P}-1001": (RID_COLLISION, None, None)}),
    Case("old account gone, RID free, name unknown", f"O:BAG:SYD:(A;;FA;;;{P}-1007)",
         (sam((1000, "Jon")), _hist()[0]), (), {f"{P}-1007": (STALE_PREFIX, None, None)}),
    Case("old account gone, name known, nobody of that name today", f"O:BAG:SYD:(A;;FA;;;{P}-1002)",
         (sam((1000, "Jon")), _hist((1002, "Ron"))[0]), _hist((1002, "Ron"))[1],
         {f"{P}-1002": (STALE_PREFIX, "Ron", None)}),
    Case("SID history translates to the account", f"O:BAG:SYD:(A;;FA;;;{O}-1234)",
         (sam(), domain((1108, "dave", (f"{O}-1234",)))),
         expected={f"{O}-1234": (SID_HISTORY, "NETWERKS\\dave", f"{D}-1108")}),
    Case("deleted domain user under a complete export is an orphan", f"O:BAG:SYD:(A;;FA;;;{D}-1107)",
         (sam(), domain((1105, "alice", ()))), expected={f"{D}-1107": (ORPHAN, None, None)}),
    Case("domain known but not its accounts: unresolved, not orphan", f"O:BAG:SYD:(A;;FA;;;{D}-1107)",
         (sam(), domain(complete=False)), expected={f"{D}-1107": (UNRESOLVED, None, None)}),
    Case("well-known domain RID under a known domain", f"O:BAG:SYD:(A;;FA;;;{D}-512)",
         (sam(), domain(complete=False)), expected={f"{D}-512": (RESOLVED, "NETWERKS\\Domain Admins", None)}),
    Case("prefix nobody knows", f"O:BAG:SYD:(A;;FA;;;{X}-1000)", (sam(),),
         expected={f"{X}-1000": (UNKNOWN_AUTHORITY, None, None)}),
    Case("another machine of the fleet", f"O:BAG:SYD:(A;;FA;;;{F}-1000)",
         (sam(), FakeSource("fleet", [Authority(F, "WS1", OTHER_MACHINE, True, "fleet")])),
         expected={f"{F}-1000": (FOREIGN_MACHINE, None, None)}),
    Case("placeholders, labels, capabilities are never orphans",
         "O:BAG:SYD:(A;OICIIO;GA;;;CO)(A;OICIIO;GA;;;CG)(A;;FR;;;OW)(A;;FR;;;S-1-15-3-1)(A;;FR;;;S-1-15-2-1)"
         "S:(ML;;NW;;;HI)",
         (sam(),), expected={"S-1-3-0": PLACEHOLDER, "S-1-3-1": PLACEHOLDER, "S-1-3-4": PLACEHOLDER,
                             "S-1-15-3-1": PLACEHOLDER, "S-1-15-2-1": PLACEHOLDER, "S-1-16-12288": PLACEHOLDER}),
    Case("logon SIDs are transient", "O:BAG:SYD:(A;;FA;;;S-1-5-5-0-123456)", (sam(),),
         expected={"S-1-5-5-0-123456": TRANSIENT}),
    Case("fixed well-known SIDs resolve", "O:SYG:BAD:(A;;FA;;;WD)(A;;FA;;;AU)", (sam(),),
         expected={"S-1-5-18": (RESOLVED, "NT AUTHORITY\\SYSTEM", None), "S-1-5-32-544": RESOLVED,
                   "S-1-1-0": RESOLVED, "S-1-5-11": RESOLVED}),
]


def _classify(case: Case):
    sources = list(case.sources) + [WellKnownSource(service_names=["AVScan"])]
    classifier = Classifier(sources, previous_names=list(case.previous))
    descriptor = from_sddl(case.sddl)
    return {str(s): classifier.classify(str(s)) for s in descriptor.sids}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict_case(case):
    verdicts = _classify(case)
    for sid, expected in case.expected.items():
        verdict = verdicts[sid]
        if isinstance(expected, str):
            assert verdict.verdict == expected, (sid, verdict)
        else:
            assert (verdict.verdict, verdict.account, verdict.mapped_sid) == expected, (sid, verdict)
        assert verdict.evidence, "every verdict carries its evidence"


def test_nt_service_sid_resolves_only_for_a_service_of_this_machine():
    avscan = service_sid("AVScan")
    with_service = Classifier([sam(), WellKnownSource(service_names=["AVScan"])]).classify(avscan)
    without = Classifier([sam(), WellKnownSource(service_names=[])]).classify(avscan)
    assert with_service.verdict == RESOLVED and "AVScan" in with_service.account
    assert without.verdict == UNRESOLVED


def test_profile_folder_names():
    assert profile_name("C:\\Users\\Ken") == "Ken"
    assert profile_name("C:\\Users\\Ken.MEMBER", ("MEMBER",)) == "Ken"
    assert profile_name("C:\\Users\\john.smith", ("MEMBER",)) == "john.smith"
    assert profile_name("C:\\Users\\Ken.000") == "Ken"
    assert profile_name("%systemroot%\\system32\\config\\systemprofile") == "systemprofile"


@pytest.mark.parametrize("names, old, expected", [
    # (today's accounts, what ProfileList called the old SID) -> (verdict, confidence, mapped)
    (((1000, "Ken"),), "Ken", (STALE_PREFIX, "medium", f"{M}-1000")),  # known: high, inferred: medium
    (((1000, "Jon"),), "Ken", (RID_COLLISION, "medium", None)),  # collision with a name: high -> medium
    (((1000, "Jon"),), None, (RID_COLLISION, "low", None)),  # collision, no name: medium -> low
    (((1001, "Jon"),), None, (STALE_PREFIX, "low", None)),  # RID free, no name: medium -> low
])
def test_an_inferred_previous_machine_sid_is_one_step_less_sure(names, old, expected):
    """A prefix only inferred to be the previous machine SID (named in the machine's own
    SAM, LSA or ProfileList, known to no source) lowers every verdict on it by one step,
    collisions included; the same prefix known from history keeps the full confidence."""
    sid = f"{P}-1000"
    previous = [PreviousName(sid, old, "SOFTWARE ProfileList")] if old else []
    inferred = Classifier([sam(*names)], machine_sid=M, previous_names=list(previous),
                          previous_machine_sids={P: "inferred: named in this machine's LSA"},
                          inferred_prefixes=frozenset({P})).classify(sid)
    assert (inferred.verdict, inferred.confidence, inferred.mapped_sid) == expected
    assert any("probably a previous machine SID" in line for line in inferred.evidence)
    known = Classifier([sam(*names)], machine_sid=M, previous_names=list(previous),
                       previous_machine_sids={P: "master SAM"}).classify(sid)
    assert known.verdict == inferred.verdict
    assert known.confidence == {"medium": "high", "low": "medium"}[inferred.confidence]
    assert not any("probably" in line for line in known.evidence)
