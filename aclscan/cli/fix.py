"""`aclscan fix` and `aclscan undo`: apply a plan offline through ntfs-3g, and take it back."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import click

from aclscan.cli import cli
from aclscan.cli.options import db_argument, progress_bar
from aclscan.errors import Interrupted
from aclscan.fix.backends import BACKENDS, DEFAULT_BACKEND
from aclscan.fix.offline import BATCH
from aclscan.formats.fix_text import fix_json, render_fix_text, render_undo_text, undo_json
from aclscan.plan import read_plan
from aclscan.store import open_database

def backend_option(default: str | None):
    return click.option(
        "--backend", type=click.Choice(BACKENDS), default=default, show_default=default is not None,
        help="How descriptors are written: lib (ntfs-3g's library in-process, by MFT entry) or fuse "
             "(an ntfs-3g mount, system.ntfs_acl per path: the reference)."
             + ("" if default else " Default: the one the fix used."))


report_format = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                             show_default=True, help="text for people, json for programs.")


CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _signals_end_cleanly(what: str):
    """SIGTERM and SIGHUP stop a fix or undo as an error does, so every cleanup runs on the
    way out: ntfs-3g unmounted and waited for, loop devices detached, work folders removed.
    (SIGKILL cannot be caught: undo takes down what a killed fix leaves.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        for number in CLEANUP_SIGNALS:  # the cleanup itself must not be cut short by a second signal
            signal.signal(number, signal.SIG_IGN)
        raise Interrupted(f"{what} stopped by {signal.Signals(signum).name}", signum)

    previous = {number: signal.signal(number, stop) for number in CLEANUP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@cli.command()
@db_argument
@click.option("--plan", "plan_path", required=True, type=click.Path(dir_okay=False),
              help="The plan (aclscan plan SCAN.db --format json -o PLAN.json).")
@click.option("--target", required=True, type=click.Path(dir_okay=False),
              help="The raw image or block device to fix: the volume that was scanned.")
@click.option("--apply", "do_apply", is_flag=True, help="Write. Without it, a dry run that changes nothing.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False),
              help="Where the journal of original descriptors goes (default: beside the image).")
@backend_option(DEFAULT_BACKEND)
@click.option("--batch", type=click.IntRange(1, 1 << 20), default=BATCH, show_default=True,
              help="Files whose originals are committed (fsynced) to the journal at once, before any of them "
                   "is written.")
@report_format
@click.pass_context
def fix(ctx, database, plan_path, target, do_apply, journal_path, backend, batch, fmt):
    """Apply a plan to TARGET offline (dry run unless --apply): file descriptors, and the
    registry (key ACLs, value descriptors, LSA rights, group members, ProfileList) and
    task files it changes.

    With --apply: mounts TARGET with ntfs-3g, journals each original (descriptors, and
    whole hive and task files, fsynced) before replacing it, unmounts, re-scans and
    reports what remains. Exit 0 when nothing the plan or the scan flagged remains
    anywhere, 1 otherwise.
    """
    from aclscan.fix import offline

    db = open_database(database)
    plan = read_plan(plan_path)
    with _signals_end_cleanly("the fix"), \
            progress_bar(do_apply and sys.stderr.isatty(), "descriptors", "files") as progress:
        report = offline.fix(db, plan, target, apply=do_apply, journal_path=journal_path, progress=progress,
                             backend=backend, batch=batch,
                             on_journal=lambda path: click.echo(f"journal: {path}", err=True))
    if fmt == "json":
        sys.stdout.write(fix_json(report))
    else:
        render_fix_text(plan, report, sys.stdout)
    ctx.exit(0 if report.did_all_asked(plan) else 1)


@cli.command()
@click.argument("journal", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True,
              help="Also restore descriptors changed since the fix (by default they are left alone and listed).")
@backend_option(None)
@report_format
@click.pass_context
def undo(ctx, journal, force, backend, fmt):
    """Restore every descriptor a fix changed, byte for byte, from its JOURNAL.

    A descriptor that is no longer what the fix wrote (changed since) is left alone and
    listed (exit 1); --force restores it too.
    """
    from aclscan.fix import offline

    with _signals_end_cleanly("undo (run it again to finish)"), \
            progress_bar(sys.stderr.isatty(), "restoring", "files") as progress:
        report = offline.undo(journal, force=force, backend=backend, progress=progress)
    if fmt == "json":
        sys.stdout.write(undo_json(report))
    else:
        render_undo_text(report, sys.stdout)
    ctx.exit(0 if report.complete else 1)
