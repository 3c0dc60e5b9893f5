"""`aclscan check IMAGE|SCAN.db [--fleet FLEET.db]`: may this machine be deployed?"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from aclscan.cli import cli
from aclscan.cli.options import image_input, image_options, resolve_inputs, resolve_options
from aclscan.formats.check_text import render_text

_OPTION_NAMES = {"domain_files": "--domain", "ldap_url": "--ldap"}


@cli.command()
@click.argument("target", metavar="IMAGE|SCAN.db", type=click.Path(exists=True, dir_okay=False))
@click.option("--fleet", "fleet_path", type=click.Path(exists=True, dir_okay=False),
              help="A fleet database (aclscan fleet): the machine SID must be unique in it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json (versioned, check_format 1) for pipelines.")
@click.option("--strict", is_flag=True, help="A rule that could not be judged (no --fleet, no hive) fails the machine.")
@image_options
@resolve_options
@click.pass_context
def check(ctx, target, fleet_path, fmt, strict, max_expand, parents, **resolve):
    """Readiness gate: exit 0 when the machine is ready to deploy, 1 when not.

    TARGET is a scan database, or an image (told apart by the SQLite header, not the
    name) that is scanned first into a temporary database with the resolve options.
    Rules: hives_present, scan_complete, unique_machine_sid (with --fleet),
    no_stale_prefix, no_problem_sids, no_account_predates_sid_change,
    not_domain_controller, sysprep_state. A rule the scan cannot judge is named in
    the headline ("READY, not judged: ..."); --strict makes it fail.
    """
    from aclscan.readiness import check_target, is_scan_database, to_json

    source = inputs = None
    if is_scan_database(target):
        given = [_OPTION_NAMES.get(k, f"--{k.replace('_', '-')}") for k, v in resolve.items() if v]
        if given:
            raise click.UsageError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to an IMAGE "
                                   "only; a scan database was scanned already")
    else:
        inputs = resolve_inputs(**resolve)
        if inputs is None:
            raise click.UsageError("--no-resolve leaves nothing to check")
        source = image_input(str(Path(target).resolve()), max_expand, parents)
    result, database, image = check_target(target, image_source=source, resolve=inputs, fleet_path=fleet_path,
                                           strict=strict)
    if fmt == "json":
        sys.stdout.write(json.dumps(to_json(result, database=database, image=image), ensure_ascii=False,
                                    indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result, source=image or database))
    ctx.exit(0 if result.ready else 1)
