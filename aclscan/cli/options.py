"""Options shared by several commands (one decorator each, used everywhere)."""

from __future__ import annotations

import difflib
import sys
from contextlib import contextmanager

import click

from aclscan.classify import VERDICTS
from aclscan.errors import Error
from aclscan.formats.rows import RowFormat

class SuggestingChoice(click.Choice):
    """A choice whose error quotes what was typed and names the nearest choice
    (``--verdict orphans``: did you mean 'orphan'?); case-insensitive."""

    def __init__(self, choices, case_sensitive: bool = False):
        super().__init__(list(choices), case_sensitive=case_sensitive)

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            near = difflib.get_close_matches(str(value).casefold(), [c.casefold() for c in self.choices], n=1,
                                             cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            self.fail(f"'{value}' is not one of {', '.join(self.choices)}{hint}", param, ctx)


def format_option(choices=tuple(f.value for f in RowFormat), default: str = RowFormat.TABLE.value, help: str | None = None):
    """--format, the same option on every command (its choices differ)."""
    return click.option(
        "--format", "fmt", type=SuggestingChoice(choices), default=default, show_default=True,
        help=help or "Output format: table for people; json, ndjson, csv for programs (streamed).",
    )


output_option = click.option("-o", "--output", type=click.Path(dir_okay=False),
                             help="Write here (created only when there is something to write); default: stdout.")
limit_option = click.option("--limit", type=click.IntRange(min=0), help="At most this many rows.")
verdict_option = click.option("--verdict", type=SuggestingChoice(VERDICTS),
                              help="Only this verdict (orphan, stale_prefix, rid_collision, ...).")
db_argument = click.argument("database", type=click.Path(dir_okay=False))


def sid_from_user(db, typed: str | None, option: str) -> str | None:
    """A SID from what the user typed for ``option`` (a SID, an SDDL alias or an account name,
    see aclscan.account_names.resolve_account); an unknown name is a usage error (exit 2)."""
    if not typed:
        return None
    from aclscan.account_names import UnknownAccount, resolve_account

    try:
        return resolve_account(db, typed)
    except UnknownAccount as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None


def refuse_terminal(what: str, output: str | None) -> None:
    """Binary or HTML output never goes to a terminal: it needs -o or a redirection."""
    if not output and sys.stdout.isatty():
        raise click.UsageError(f"{what} is not for a terminal: give -o FILE or redirect stdout")


@contextmanager
def text_output(output: str | None):
    """stdout, or the -o file (opened when the command is ready to write)."""
    if not output:
        yield sys.stdout
        return
    try:
        out = open(output, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise Error(f"cannot write {output}: {exc.strerror or exc}") from None
    with out:
        yield out


class ByteSize(click.ParamType):
    """A size in bytes: 1048576, 512M, 64G, 1T (powers of 1024)."""

    name = "size"
    _UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
        unit = text[-1:] if text[-1:] in self._UNITS else ""
        number = text[: len(text) - len(unit)]
        if not number.isascii() or not number.isdigit():
            self.fail(f"{value!r} is not a size (bytes, or a number with K, M, G or T)", param, ctx)
        return int(number) * self._UNITS[unit]


def image_options(command):
    """How an image is read (`scan`, `check`): the expansion cap of a compressed
    image and the parents of a differencing disk."""
    from aclscan.image import DEFAULT_MAX_EXPAND

    options = [
        click.option("--max-expand", type=ByteSize(), default=DEFAULT_MAX_EXPAND,
                     help=f"Most a compressed (.gz) image may expand to (default {DEFAULT_MAX_EXPAND >> 30}G)."),
        click.option("--parent", "parents", multiple=True, type=click.Path(exists=True, dir_okay=False),
                     help="Parent disk of a differencing VHD/VHDX/VMDK/qcow2 image, nearest first, where the "
                          "path the child records does not lead to it. Repeatable."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def image_input(path, max_expand, parents):
    from aclscan.image import ImageInput

    return ImageInput(str(path), max_expand, tuple(str(p) for p in parents))


def resolve_options(command):
    """The account sources of `scan` (and `accounts`): hives, domain, directory, history."""
    options = [
        click.option("--sam", type=click.Path(exists=True, dir_okay=False), help="SAM hive (default: the volume's)."),
        click.option("--security", type=click.Path(exists=True, dir_okay=False), help="SECURITY hive."),
        click.option("--system", type=click.Path(exists=True, dir_okay=False), help="SYSTEM hive."),
        click.option("--software", type=click.Path(exists=True, dir_okay=False), help="SOFTWARE hive."),
        click.option("--domain", "domain_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
                     help="A domain export: LDIF (ldifde) or CSV (Get-ADUser | Export-Csv). Repeatable."),
        click.option("--ldap", "ldap_url", help="A live directory, ldaps://HOST[:PORT]; the password comes from "
                                                "ACLSCAN_LDAP_PASSWORD or a prompt."),
        click.option("--bind-dn", help="The DN (or user@domain) to bind as, with --ldap."),
        click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA certificate for --ldap."),
        click.option("--insecure", is_flag=True, help="With --ldap: do not verify the server's certificate."),
        click.option("--history", multiple=True, type=click.Path(exists=True, dir_okay=False),
                     help="The master's SAM or an earlier scan database: previous machine SIDs and their names. "
                          "Repeatable."),
        click.option("--no-image-history", is_flag=True,
                     help="Do not use the history the image keeps of itself (RegBack and Windows.old SAMs)."),
        click.option("--no-resolve", is_flag=True, help="Store descriptors only; no verdicts."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def resolve_inputs(*, sam=None, security=None, system=None, software=None, domain_files=(), ldap_url=None,
                   bind_dn=None, ca_file=None, insecure=False, history=(), no_resolve=False,
                   no_image_history=False):
    """The ResolveInputs the options describe (None with --no-resolve)."""
    from aclscan.scan import ResolveInputs

    if no_resolve:
        return None
    from aclscan.scan_inputs import domain_sources

    sources = domain_sources(domain_files)
    if ldap_url:
        if not bind_dn:
            raise click.UsageError("--ldap needs --bind-dn")
        import os

        from aclscan.accounts.ldap import LdapSource

        password = os.environ.get("ACLSCAN_LDAP_PASSWORD")
        if password is None:
            password = click.prompt(f"Password for {bind_dn}", hide_input=True, err=True)
        sources.append(LdapSource.connect(ldap_url, bind_dn, password, ca_file=ca_file, insecure=insecure))
    hive_files = {"SAM": sam, "SECURITY": security, "SYSTEM": system, "SOFTWARE": software}
    return ResolveInputs({k: v for k, v in hive_files.items() if v}, tuple(sources), tuple(history),
                         tuple(domain_files), image_history=not no_image_history)


@contextmanager
def progress_bar(enabled: bool, label: str, unit: str):
    """A rich progress bar on stderr, or nothing: yields a progress callback or None."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:,.0f} {unit}/s" if task.speed else "")

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def images_progress(enabled: bool):
    """A progress bar over images on stderr (done of total, failed, running), or nothing."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("images"), BarColumn(), MofNCompleteColumn(),
               TextColumn("failed {task.fields[failed]}, running {task.fields[running]}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("images", total=None, failed=0, running=0)

        def update(done: int, failed: int, running: int, total: int) -> None:
            bar.update(task, completed=done, total=total, failed=failed, running=running)

        yield update
