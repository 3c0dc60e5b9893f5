"""Remediation status: how far the problems of an earlier scan are gone in a later one.

For each SID with a problem verdict in the earlier scan (e.g. the scan a plan was made
from), the files and places that named it then and name it no longer (fixed), that still
name it (remaining), and that name it now but did not then (new), counted through
:class:`aclscan.diff.ScanDiff` (files matched by volume, MFT entry and path; places by
kind, hive and location; hive references as rows). The report renders the rows
(``aclscan report LATER.db --before EARLIER.db``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from aclscan.classify import PROBLEMS
from aclscan.diff import ScanDiff

REMEDIATION_COLUMNS = ("sid", "account", "verdict", "status", "files_fixed", "files_remaining", "files_new",
                       "places_fixed", "places_remaining", "places_new")

FIXED, PARTLY_FIXED, NOT_FIXED = "fixed", "partly_fixed", "not_fixed"


@dataclass(frozen=True)
class RemediationRow:
    """One problem SID of the earlier scan. ``status``: fixed (nothing names it now),
    partly_fixed (some of it is gone, some remains or is new), not_fixed (nothing of it is
    gone)."""

    sid: str
    account: str | None
    verdict: str
    status: str
    files_fixed: int
    files_remaining: int
    files_new: int
    places_fixed: int
    places_remaining: int
    places_new: int

    def as_row(self) -> dict:
        return asdict(self)


def remediation_status(earlier: str | Path, later: str | Path) -> list[RemediationRow]:
    """Per problem SID of ``earlier`` (a scan database), what ``later`` shows of it: most
    files and places still naming it first."""
    with ScanDiff(earlier, later) as scans:
        problems = sorted(PROBLEMS)
        marks = ", ".join("?" for _ in problems)
        findings = scans.conn.execute(
            f"SELECT sid, account, verdict FROM main.findings WHERE verdict IN ({marks}) ORDER BY sid",
            problems).fetchall()
        presence = scans.sid_presence(sid for sid, _account, _verdict in findings)
    rows = []
    for sid, account, verdict in findings:
        seen = presence.get(sid, {})
        numbers = {f"{what}_{label}": seen.get(f"{what}_{side}", 0) for what in ("files", "places")
                   for label, side in (("fixed", "before_only"), ("remaining", "both"), ("new", "after_only"))}
        left = numbers["files_remaining"] + numbers["files_new"] + numbers["places_remaining"] + numbers["places_new"]
        gone = numbers["files_fixed"] + numbers["places_fixed"]
        status = FIXED if not left else PARTLY_FIXED if gone else NOT_FIXED
        rows.append(RemediationRow(sid, account or None, verdict, status, **numbers))
    rows.sort(key=lambda r: (-(r.files_remaining + r.files_new + r.places_remaining + r.places_new), r.sid))
    return rows
