"""Shared fixtures. Volumes are built by tests/volumes.py through mkntfs and ntfs-3g."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from aclscan.fix import ntfs3g as _ntfs3g
from tests import volumes


@pytest.fixture(scope="session")
def ntfs3g():
    """The aclscan.fix.ntfs3g module; skips the test where volumes cannot be built."""
    reason = _ntfs3g.ntfs3g_available()
    if reason:
        pytest.skip(f"ntfs-3g volumes unavailable: {reason}")
    return _ntfs3g


@pytest.fixture(scope="session")
def feature_volume(ntfs3g, tmp_path_factory) -> volumes.Manifest:
    """One volume with the awkward cases, built once per session (about 0.3 s).

    30 nested directories; 200 files over 10 directories sharing 20 descriptors;
    one file with 60 names in 60 directories; one with 40 named streams; names of
    255 UTF-16 units and non-BMP characters, some across the MFT record's first
    sector boundary; a deleted file; NULL, empty, absent and protected DACLs, deny
    and inherited ACEs, a SACL with a mandatory label; files and directories with
    ntfs-3g's legacy per-file descriptor (no security id). See volumes.feature_spec
    and the names LINK_TARGET, STREAM_FILE, DELETED_FILE, DEEP_DIR there.

    The manifest maps every path to its MFT entry and descriptor bytes. Treat the
    image as read-only: other tests share it.
    """
    image = tmp_path_factory.mktemp("feature_volume") / "features.img"
    return volumes.build_feature_volume(image)


@pytest.fixture(scope="session")
def scenario_db(tmp_path_factory):
    """scenario_db(NAME) -> the path of a scan database of sample volume NAME, scanned
    once per session with its manifest's inputs. Treat it as read-only: tests share it."""
    from aclscan.cli import main
    from tests import scenarios

    directory = tmp_path_factory.mktemp("scenario_dbs")
    done: dict[str, object] = {}
    cache = os.environ.get(SCENARIO_CACHE)

    def of(name: str):
        if name not in done:
            db = directory / f"{name}.db"
            cached = Path(cache) / f"{name}.db" if cache else None
            if cached is not None and cached.is_file():
                shutil.copyfile(cached, db)
            else:
                assert main(scenarios.scan_args(name, db)) == 0, f"scanning {name} failed"
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(db, cached.with_suffix(".partial"))
                    os.replace(cached.with_suffix(".partial"), cached)
            done[name] = db
        return done[name]

    return of


# Set only by tests/mutation.py, for groups whose modules the scan never runs (readiness,
# plan, the fix journal): a folder where each scenario's scan database is kept once made,
# so that the pytest session run per mutant copies it instead of scanning again.
SCENARIO_CACHE = "ACLSCAN_SCENARIO_CACHE"


# ACLSCAN_REQUIRE_ALL=1 (set by .ci/run, which installs every tool and runs as root
# beside ../shared): a test skipped because something in its environment is missing
# (FUSE, root, ../shared/data, a tool, Samba) fails instead, so CI cannot pass by
# skipping.
REQUIRE_ALL = os.environ.get("ACLSCAN_REQUIRE_ALL") == "1"


def _as_failure(report, what: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"{what} skipped under ACLSCAN_REQUIRE_ALL=1: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        _as_failure(report, f"{item.nodeid}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped:
        _as_failure(report, f"{collector.nodeid}")
