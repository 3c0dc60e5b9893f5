"""`aclscan scan IMAGE --db SCAN.db`."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import click

from aclscan.cli import cli
from aclscan.cli.options import resolve_inputs, resolve_options
from aclscan.errors import PartialScan
from aclscan.scan import scan_image


@contextmanager
def _progress_bar(enabled: bool):
    """A rich progress bar on stderr, or nothing: yields a progress callback or None."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:,.0f} records/s" if task.speed else "")

    columns = (TextColumn("MFT records"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("scan", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@cli.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="Scan database to write (replaced if it exists).")
@click.option("--partition", type=int, help="Scan only this partition (0-based, in partition table order).")
@click.option("--offset", type=int, help="Scan only the NTFS volume at this byte offset.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@resolve_options
@click.pass_context
def scan(ctx, image, db_path, partition, offset, quiet, **resolve):
    """Read every security descriptor of IMAGE into SCAN.db (read-only).

    IMAGE is a raw/dd image, a split raw set (give the .001 file), an E01 set
    (give the .E01 file) or a block device. A whole-disk image with an MBR or
    GPT partition table is scanned partition by partition.
    """
    if partition is not None and offset is not None:
        raise click.UsageError("give --partition or --offset, not both")
    inputs = resolve_inputs(**resolve)
    show = not quiet and sys.stderr.isatty()
    with _progress_bar(show) as progress:
        result = scan_image(image, db_path, partition=partition, offset=offset, progress=progress, resolve=inputs)
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
            for note in result.resolution_notes:
                click.echo(f"note: {note}", err=True)
    if problems:
        first = problems[0]
        where = f" (record {first.entry})" if first.entry is not None else ""
        raise PartialScan(
            f"{len(problems)} bad item(s) recorded in scan_errors; first: {first.reason}{where}"
        )
