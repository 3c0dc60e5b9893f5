"""Fixtures of the hive tests: the real Windows hives of ../shared/data/windows (skipped
where absent), the hives of the committed sample volumes, and hives written by
aclscan.samples for a scenario described inline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aclscan.image import Image
from tests.shared_data import expand

SAMPLES = Path(__file__).resolve().parents[2] / "sample_volumes"
SCENARIOS = sorted(p.stem for p in SAMPLES.glob("*.json") if (SAMPLES / f"{p.stem}.img.gz").is_file()
                   and "scenario" in json.loads(p.read_text()))
HIVES = ("SAM", "SECURITY", "SYSTEM", "SOFTWARE")


@pytest.fixture(scope="session")
def real_hive(tmp_path_factory):
    """``real_hive("studentpc8-SAM")``: the path of a real hive, decompressed once."""
    directory = tmp_path_factory.mktemp("real_hives")

    def get(name: str) -> Path:
        return expand("hives", name, directory)

    return get


@pytest.fixture(scope="session")
def sample_hives():
    """``sample_hives("av-service")``: {"SAM": bytes, ...} from the committed volume, and
    its manifest."""
    cache: dict[str, tuple[dict[str, bytes], dict]] = {}

    def get(scenario: str) -> tuple[dict[str, bytes], dict]:
        if scenario not in cache:
            manifest = json.loads((SAMPLES / f"{scenario}.json").read_text())
            with Image(SAMPLES / f"{scenario}.img.gz") as image:
                volume = image.open_volume(image.volumes()[0])
                hives = {name: volume.open_path(f"/Windows/System32/config/{name}") for name in HIVES}
            cache[scenario] = (hives, manifest)
        return cache[scenario]

    return get
