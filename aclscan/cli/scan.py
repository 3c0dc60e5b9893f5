"""`aclscan scan IMAGE --db SCAN.db`."""

from __future__ import annotations

import sys

import click

from aclscan.cli import cli
from aclscan.cli.options import image_input, image_options, progress_bar, resolve_inputs, resolve_options
from aclscan.errors import PartialScan
from aclscan.formats.rows import terminal_safe
from aclscan.scan import scan_image


@cli.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="Scan database to write (replaced if it exists).")
@click.option("--partition", type=int, help="Scan only this partition (0-based, in partition table order).")
@click.option("--offset", type=int, help="Scan only the NTFS volume at this byte offset.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--snapshots", is_flag=True, help="Also scan every Volume Shadow Copy store, each as an earlier state "
                                               "of its volume (its SAM serves as history).")
@image_options
@resolve_options
@click.pass_context
def scan(ctx, image, db_path, partition, offset, quiet, snapshots, max_expand, parents, **resolve):
    """Read every security descriptor of IMAGE into SCAN.db (read-only).

    IMAGE is a raw/dd image, a split raw set (give the .001 file), an E01 set
    (give the .E01 file), a .gz-compressed raw image, a VHD, VHDX, VMDK or qcow2
    disk (differencing disks through their parents) or a block device. A whole-disk image with an MBR or
    GPT partition table is scanned partition by partition.
    """
    if partition is not None and offset is not None:
        raise click.UsageError("give --partition or --offset, not both")
    inputs = resolve_inputs(**resolve)
    show = not quiet and sys.stderr.isatty()
    with progress_bar(show, "MFT records", "records") as progress:
        result = scan_image(image_input(image, max_expand, parents), db_path, partition=partition, offset=offset,
                            progress=progress, resolve=inputs, snapshots=snapshots)
    problems = result.problems
    if not quiet:
        descriptors = sum(v.descriptors for v in result.volumes)
        click.echo(
            f"scanned {result.files:,} files, {descriptors:,} descriptors in {len(result.volumes)} volume(s)"
            f" in {result.seconds:.2f} s -> {result.database}",
            err=True,
        )
        if inputs is not None:
            click.echo(f"{result.findings} distinct SIDs, {result.problem_findings} with problems"
                       " (aclscan findings lists them)", err=True)
            for line in result.sources_used:
                click.echo(terminal_safe(line), err=True)
        for note in (*result.snapshot_notes, *result.resolution_notes):
            click.echo(terminal_safe(f"note: {note}"), err=True)
    if problems:
        first = problems[0]
        where = f" (record {first.entry})" if first.entry is not None else ""
        raise PartialScan(
            f"{len(problems)} bad item(s) recorded in scan_errors; first: {first.reason}{where}"
        )
