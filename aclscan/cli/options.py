"""Options shared by several commands (one decorator each, used everywhere)."""

from __future__ import annotations

from contextlib import contextmanager

import click

from aclscan.formats.rows import RowFormat

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in RowFormat]),
    default=RowFormat.TABLE.value,
    show_default=True,
    help="Output format: table for people; json, ndjson, csv for programs (streamed).",
)
db_argument = click.argument("database", type=click.Path(dir_okay=False))


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
        click.option("--no-resolve", is_flag=True, help="Store descriptors only; no verdicts."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def resolve_inputs(*, sam=None, security=None, system=None, software=None, domain_files=(), ldap_url=None,
                   bind_dn=None, ca_file=None, insecure=False, history=(), no_resolve=False):
    """The ResolveInputs the options describe (None with --no-resolve)."""
    from aclscan.scan import ResolveInputs

    if no_resolve:
        return None
    sources = []
    if domain_files:
        from aclscan.accounts.domain import DomainSource, read_csv, read_ldif

        for path in domain_files:
            export = read_csv(path) if path.lower().endswith(".csv") else read_ldif(path)
            sources.append(DomainSource(export, name=f"domain export {path}"))
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
    return ResolveInputs({k: v for k, v in hive_files.items() if v}, tuple(sources), tuple(history))


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
