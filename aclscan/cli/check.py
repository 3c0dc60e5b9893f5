"""`aclscan check IMAGE|SCAN.db [--fleet FLEET.db]`: may this machine be deployed?"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from aclscan.cli import cli
from aclscan.cli.options import image_input, image_options, resolve_inputs, resolve_options
from aclscan.errors import ImageError
from aclscan.formats.check_text import render_text
from aclscan.inputs import check_input_file

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
    from aclscan.fleet import open_fleet
    from aclscan.readiness import check as judge, to_json
    from aclscan.store import is_sqlite_file, open_database

    fleet = open_fleet(fleet_path, create=False) if fleet_path else None
    image = None
    check_input_file(target, "IMAGE", ImageError)  # before the header is read: a FIFO would block
    with tempfile.TemporaryDirectory(prefix="aclscan-check-") as scratch:
        if is_sqlite_file(target):
            given = [_OPTION_NAMES.get(k, f"--{k.replace('_', '-')}") for k, v in resolve.items() if v]
            if given:
                raise click.UsageError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to an IMAGE "
                                       "only; a scan database was scanned already")
            database = str(Path(target).resolve())
        else:
            from aclscan.scan import scan_image

            inputs = resolve_inputs(**resolve)
            if inputs is None:
                raise click.UsageError("--no-resolve leaves nothing to check")
            image = str(Path(target).resolve())
            database = str(Path(scratch) / "check.db")
            scan_image(image_input(image, max_expand, parents), database, resolve=inputs)
        db = open_database(database, index=False)
        try:
            result = judge(db, fleet, scan_path=None if image else database, fleet_path=fleet_path, strict=strict)
        finally:
            db.conn.close()
    if fmt == "json":
        document = to_json(result, database=None if image else database, image=image)
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result, source=image or database))
    ctx.exit(0 if result.ready else 1)
