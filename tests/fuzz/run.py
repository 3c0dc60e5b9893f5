"""Fuzz for longer than a test run, without hypothesis's bookkeeping (many times more
inputs a second, no shrinking): the same seeds, mutations and contracts.

    python -m tests.fuzz.run 600            # seconds per parser, every parser
    python -m tests.fuzz.run 600 hive mft   # some parsers

Prints, per parser, the inputs tried and each distinct crash (exception and the line of
aclscan that raised it) with its smallest input in hex; exits 1 if anything crashed.
Turn a crash into a named test in test_crashers.py.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.fuzz.mutate import mutate
from tests.fuzz.seeds import seeds
from tests.fuzz.targets import TARGETS


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/aclscan/" in f.filename] or frames
    return f"{type(exc).__name__} at {Path(ours[-1].filename).name}:{ours[-1].lineno}"


def fuzz(name: str, seconds: float, scratch: Path, rng: random.Random) -> tuple[int, dict[str, tuple[bytes, str]]]:
    seed_inputs = seeds(name, scratch)
    target = TARGETS[name]
    crashes: dict[str, tuple[bytes, str]] = {}
    tried = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        data = mutate(rng.choice(seed_inputs), rng.randint)
        tried += 1
        try:
            target(data)
        except Exception as exc:  # a crash: anything the target did not accept
            where = _where(exc)
            if where not in crashes or len(data) < len(crashes[where][0]):
                crashes[where] = (data, str(exc).splitlines()[0][:200] if str(exc) else "")
    return tried, crashes


def main(argv: list[str]) -> int:
    seconds = float(argv[0]) if argv else 10.0
    names = argv[1:] or sorted(TARGETS)
    rng = random.Random(int(time.time()))
    total = found = 0
    with tempfile.TemporaryDirectory(prefix="aclscan-fuzz-") as scratch:
        for name in names:
            tried, crashes = fuzz(name, seconds, Path(scratch), rng)
            total += tried
            found += len(crashes)
            print(f"{name:5}: {tried:8} inputs tried in {seconds:g} s, crashes: {len(crashes)}", flush=True)
            for where, (data, message) in crashes.items():
                print(f"    {where}: {message}\n    input ({len(data)} bytes): {data.hex()}", flush=True)
    print(f"total: {total} inputs tried, crashes: {found}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
