"""ACLSCAN_REQUIRE_ALL=1 turns every skip into a failure: CI (which sets it) cannot pass
by skipping tests whose tools, data or privileges are missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]

PROBE = '''
import pytest

def test_needs_a_tool():
    pytest.skip("ntfs-3g volumes unavailable: no FUSE")

def test_runs():
    assert True
'''

MODULE_SKIP = '''
import pytest
pytest.skip("real Windows test data not found", allow_module_level=True)
'''


def run_probe(tmp_path: Path, source: str, require_all: bool) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "ACLSCAN_REQUIRE_ALL"}
    env["PYTHONPATH"] = str(PROJECT) + os.pathsep + env.get("PYTHONPATH", "")
    if require_all:
        env["ACLSCAN_REQUIRE_ALL"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "--rootdir",
                           str(tmp_path), str(probe)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_skip_is_a_skip_without_the_switch(tmp_path):
    result = run_probe(tmp_path, PROBE, require_all=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_a_skip_fails_under_require_all(tmp_path):
    result = run_probe(tmp_path, PROBE, require_all=True)
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed" in result.stdout
    assert "skipped under ACLSCAN_REQUIRE_ALL=1: Skipped: ntfs-3g volumes unavailable: no FUSE" in result.stdout


def test_a_module_level_skip_fails_under_require_all(tmp_path):
    result = run_probe(tmp_path, MODULE_SKIP, require_all=True)
    assert result.returncode != 0, result.stdout
    assert "skipped under ACLSCAN_REQUIRE_ALL=1: Skipped: real Windows test data not found" in result.stdout
