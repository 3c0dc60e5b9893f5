"""The committed scenario volumes (sample_volumes/) and how tests scan them: with
the inputs each manifest names (domain exports, the master's SAM)."""

from __future__ import annotations

import json
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "sample_volumes"
SCENARIOS = sorted(p.name[: -len(".img.gz")] for p in SAMPLES.glob("*.img.gz") if p.name != "quickstart.img.gz")


def manifest(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def scan_args(name: str, db: Path, image: Path | None = None) -> list[str]:
    """`aclscan scan` arguments for scenario NAME (IMAGE instead of the committed .img.gz)."""
    facts = manifest(name)
    args = ["scan", str(image or SAMPLES / f"{name}.img.gz"), "--db", str(db), "--quiet"]
    for export in facts.get("domain_exports", []):
        if export.endswith(".ldif"):
            args += ["--domain", str(SAMPLES / export)]
    for history in facts.get("history", []):
        args += ["--history", str(SAMPLES / history)]
    return args
