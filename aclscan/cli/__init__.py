"""The command line: thin click commands over the library.

Each command opens its resources, makes one library call and renders the
result. Library errors become one line on stderr (``Error: ...``) and the exit
code of their class (README, "Exit codes"); usage errors exit 2.
"""

from __future__ import annotations

import os
import sqlite3
import sys

import click

from aclscan import __version__
from aclscan.errors import DatabaseError, Error


class AclscanGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Error as exc:
            click.echo(f"Error: {_one_line(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except sqlite3.Error as exc:  # a damaged or foreign database met mid-query
            click.echo(f"Error: database error: {_one_line(str(exc))}", err=True)
            ctx.exit(DatabaseError.exit_code)
        except BrokenPipeError:  # `aclscan files ... | head` closes the pipe early
            sys.stderr.close()
            ctx.exit(0)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug: still one line, the traceback on request
            if os.environ.get("ACLSCAN_DEBUG"):
                raise
            click.echo(f"Error: internal error: {exc.__class__.__name__}: {_one_line(str(exc))}"
                       " (set ACLSCAN_DEBUG=1 for the traceback)", err=True)
            ctx.exit(Error.exit_code)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@click.group(cls=AclscanGroup, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "ACLSCAN"})
@click.version_option(__version__, prog_name="aclscan")
def cli():
    """Find and fix Windows ACLs broken by disk-image cloning.

    Reads NTFS images read-only; every command after `scan` reads the scan database.
    """


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (tests call this directly)."""
    try:
        # Outside standalone mode click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=argv, prog_name="aclscan", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    return code if isinstance(code, int) else 0


from aclscan.cli import check, diff, findings, fix, fleet, graph, listing, plan, report, samples, scan, sddl  # noqa: E402,F401  (registers the commands)
