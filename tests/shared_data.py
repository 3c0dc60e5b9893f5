"""Where the real Windows-made test data lives (../shared/data/windows beside the
project) and how tests get at it: skipped, with the reason, where it is absent."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
WINDOWS_DATA = PROJECT.parent / "shared" / "data" / "windows"


def require_windows_data() -> Path:
    if not WINDOWS_DATA.is_dir():
        pytest.skip(f"real Windows test data not found at {WINDOWS_DATA} (../shared/data/windows beside the project)")
    return WINDOWS_DATA


def expand(kind: str, name: str, directory: Path) -> Path:
    """Decompress ``volumes/NAME.gz`` or ``hives/NAME.gz`` into ``directory``."""
    source = require_windows_data() / kind / f"{name}.gz"
    if not source.is_file():
        pytest.skip(f"{source} is missing from the shared data")
    target = directory / name
    if not target.exists():
        with gzip.open(source, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return target
