"""The command line: thin click commands over the library.

Each command opens its resources, makes one library call and renders the
result. Library errors become one line on stderr (``Error: ...``) and the exit
code of their class (README, "Exit codes"); usage errors exit 2.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys

import click

from aclscan import __version__
from aclscan.errors import DatabaseError, Error


# Which module defines each command: a command's module (and what it imports: numpy,
# networkx, pytsk3) is loaded only when that command runs, so `aclscan files` starts
# printing without paying for the scanner and the graph library.
COMMAND_MODULES = {
    "acl": "acl", "accounts": "findings", "check": "check", "descriptors": "listing", "diff": "diff", "files": "listing",
    "findings": "findings", "fix": "fix", "fleet": "fleet", "graph": "graph", "index": "listing", "places": "listing", "plan": "plan",
    "report": "report", "samples": "samples", "scan": "scan", "sddl": "sddl", "undo": "fix",
}


class AclscanGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMAND_MODULES:
            importlib.import_module(f"aclscan.cli.{COMMAND_MODULES[name]}")  # registers it with @cli.command
        return self.commands.get(name)

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
    """An error message as one terminal-safe line: whitespace runs (line breaks,
    U+2028 and U+2029 included) become one space, other control characters are
    escaped (an export or a file name may hold an escape sequence)."""
    from aclscan.formats.rows import terminal_safe

    return terminal_safe(" ".join(text.split()))


@click.group(cls=AclscanGroup, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "ACLSCAN"})
@click.version_option(__version__, prog_name="aclscan")
def cli():
    """Find and fix Windows ACLs broken by disk-image cloning.

    Reads NTFS images read-only; every command after `scan` reads the scan database.
    """
    from aclscan.allocator import keep_freed_memory

    keep_freed_memory()  # the bulk passes reuse their freed arrays' memory (aclscan/allocator.py)


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

