"""python3-hivex, the independent registry reader of the hive tests. Debian ships its
bindings for the system interpreter only, so each test's small script runs there and
answers in JSON; tests skip with the reason where it is missing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

HIVEX_PYTHON = "/usr/bin/python3"


def require_hivex() -> None:
    found = subprocess.run([HIVEX_PYTHON, "-c", "import hivex"], capture_output=True) if Path(
        HIVEX_PYTHON).exists() else None
    if found is None or found.returncode != 0:
        pytest.skip("Debian's python3-hivex is not installed for /usr/bin/python3 (apt-get install python3-hivex)")


def run_hivex(script: str, hive: Path, stdin: object = None):
    """What ``script`` prints as JSON, run with the hive's path as its argument (and
    ``stdin`` given to it as JSON)."""
    require_hivex()
    done = subprocess.run([HIVEX_PYTHON, "-c", script, str(hive)], capture_output=True, text=True,
                          input=None if stdin is None else json.dumps(stdin))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
