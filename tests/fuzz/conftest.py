"""The fuzz run's budget and its figures.

``ACLSCAN_FUZZ_SECONDS`` is the time each target is fuzzed for (default 1 s in an
ordinary test run; ``.ci/run`` sets more). The terminal summary prints, per target,
the seeds, the inputs tried and the crashes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass
class TargetFigures:
    seeds: int = 0
    tried: int = 0
    crashes: int = 0
    seconds: float = 0.0


FIGURES: dict[str, TargetFigures] = {}


def fuzz_seconds() -> float:
    return float(os.environ.get("ACLSCAN_FUZZ_SECONDS", "1"))


@pytest.fixture(scope="session")
def fuzz_scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_seeds")


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.write_sep("-", f"fuzz ({fuzz_seconds():g} s per target)")
    for name, figures in FIGURES.items():
        terminalreporter.write_line(
            f"{name:5}: {figures.seeds:3} seeds, {figures.tried:7} inputs tried in {figures.seconds:5.1f} s, "
            f"crashes: {figures.crashes}"
        )
    total = sum(f.tried for f in FIGURES.values())
    crashes = sum(f.crashes for f in FIGURES.values())
    terminalreporter.write_line(f"total: {total} inputs tried, crashes: {crashes}")
