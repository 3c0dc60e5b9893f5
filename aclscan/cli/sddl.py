"""`aclscan sddl`: convert between SDDL and self-relative descriptor bytes."""

from __future__ import annotations

import click

from aclscan.cli import cli
from aclscan.errors import MalformedDescriptor
from aclscan.sd import SecurityDescriptor
from aclscan.sd.sddl import from_sddl, to_sddl


@cli.command()
@click.argument("value")
@click.option("--hex", "as_hex", is_flag=True, help="VALUE is descriptor bytes in hex; print its SDDL.")
def sddl(value, as_hex):
    """Print VALUE (SDDL) as descriptor hex, or with --hex the SDDL of hex bytes."""
    if as_hex:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise MalformedDescriptor("not hexadecimal bytes") from None
        click.echo(to_sddl(SecurityDescriptor.from_bytes(raw)))
    else:
        click.echo(from_sddl(value).to_bytes().hex())
