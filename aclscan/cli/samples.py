"""`aclscan samples build DIR`: rebuild the scenario volumes, manifests and exports."""

from __future__ import annotations

import click

from aclscan.cli import cli
from aclscan.errors import ToolMissing


@cli.group()
def samples():
    """The deployment whitepaper's scenarios as sample volumes."""


@samples.command("list")
def list_samples():
    """Name and title of every scenario."""
    from aclscan.samples.scenarios import SCENARIOS

    for name, make in SCENARIOS.items():
        click.echo(f"{name:<15} {make().title}")


@samples.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--only", "names", multiple=True, help="Build only this scenario (repeatable).")
def build(directory, names):
    """Build every scenario (or --only NAME) into DIRECTORY: NAME.img.gz and NAME.json.

    Needs root, FUSE, mkntfs and ntfs-3g.
    """
    from aclscan.fix import ntfs3g
    from aclscan.samples.build import build as build_scenario
    from aclscan.samples.scenarios import SCENARIOS

    reason = ntfs3g.ntfs3g_available()
    if reason:
        raise ToolMissing(f"cannot build sample volumes: {reason}")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise click.UsageError(f"no scenario {', '.join(unknown)}; see `aclscan samples list`")
    for name in names or SCENARIOS:
        built = build_scenario(SCENARIOS[name](), directory)
        size = built.image.stat().st_size
        click.echo(f"{name}: {built.image} ({size:,} bytes), {built.manifest.name}", err=True)
