"""Fuzz every parser that reads untrusted bytes, for a bounded time (see conftest).

Each target runs hypothesis in batches until its time is up: an input is a seed (a
real input, see seeds.py) with one to eight mutations (mutate.py), checked against
the parser's contract (targets.py). A crash fails the test with the input hypothesis
shrank it to; keep it as a named test in test_crashers.py.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import FIGURES, TargetFigures, fuzz_seconds
from tests.fuzz.mutate import Tape, mutate
from tests.fuzz.seeds import seeds
from tests.fuzz.targets import TARGETS

BATCH = 100
TAPE = 4 * 8 * 6  # room for eight edits of up to six choices each


def _fuzz(name: str, seed_inputs: list[bytes], seconds: float) -> TargetFigures:
    target = TARGETS[name]
    figures = FIGURES.setdefault(name, TargetFigures())
    figures.seeds = len(seed_inputs)

    @settings(max_examples=BATCH, deadline=None, suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink))
    @given(st.integers(0, len(seed_inputs) - 1), st.binary(min_size=4, max_size=TAPE))
    def batch(seed, tape):
        mutated = mutate(seed_inputs[seed], Tape(tape))
        figures.tried += 1
        target(mutated)

    started = time.monotonic()
    try:
        while True:
            batch()
            if time.monotonic() - started >= seconds:
                break
    except BaseException:
        figures.crashes += 1
        raise
    finally:
        figures.seconds += time.monotonic() - started
    return figures


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_keep_the_contract(name, fuzz_scratch):
    """The unmutated seeds themselves: parsed, and round trips exact."""
    seed_inputs = seeds(name, fuzz_scratch)
    for seed in seed_inputs:
        TARGETS[name](seed)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_inputs_keep_the_contract(name, fuzz_scratch):
    figures = _fuzz(name, seeds(name, fuzz_scratch), fuzz_seconds())
    assert figures.tried >= BATCH
