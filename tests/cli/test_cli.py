"""The command line: exit codes, one-line errors, formats, help for every command."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from aclscan.cli import cli, main
from tests.shared_data import expand

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def lastaccess_db(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    image = expand("volumes", "win10-lastaccess.raw", directory)
    db = directory / "scan.db"
    assert main(["scan", str(image), "--db", str(db), "--quiet"]) == 0
    return db


def test_every_command_has_help_and_is_documented(capsys):
    readme = README.read_text()
    names = cli.list_commands(None)
    assert "files" in names and "acl" in names
    for name in names:
        command = cli.get_command(None, name)
        assert command.help, f"{name} has no help text"
        assert f"aclscan {name}" in readme, f"{name} is not in the README"
        assert main([name, "--help"]) == 0
    capsys.readouterr()


def test_not_ntfs_is_one_line_and_exit_4(tmp_path, capsys):
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\x00" * 65536 + b"hello" * 1000)
    assert main(["scan", str(junk), "--db", str(tmp_path / "x.db")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"Error: no NTFS volume found in {junk}"]


def test_missing_image_exit_4(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "absent.raw"), "--db", str(tmp_path / "x.db")]) == 4
    assert capsys.readouterr().err.startswith("Error: image not found")


def test_missing_and_foreign_databases_exit_5(tmp_path, capsys):
    assert main(["files", str(tmp_path / "absent.db")]) == 5
    foreign = tmp_path / "foreign.db"
    import sqlite3

    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    assert main(["descriptors", str(foreign)]) == 5
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"Error: no scan database at {tmp_path / 'absent.db'}"
    assert err[1] == f"Error: {foreign} is not an aclscan scan database"


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["scan"]) == 2
    assert main(["scan", "x.raw", "--db", "x.db", "--partition", "0", "--offset", "0"]) == 2
    assert main(["files", "x.db", "--format", "xml"]) == 2
    capsys.readouterr()


def test_sddl_command_both_ways(capsys):
    text = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICIID;0x1200a9;;;BU)"
    assert main(["sddl", text]) == 0
    hex_bytes = capsys.readouterr().out.strip()
    assert main(["sddl", "--hex", hex_bytes]) == 0
    assert capsys.readouterr().out.strip() == text
    assert main(["sddl", "--hex", "0100"]) == 8
    assert capsys.readouterr().err.startswith("Error: ")


def test_files_filters_and_formats(lastaccess_db, capsys):
    assert main(["files", str(lastaccess_db), "--path", "test", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in rows] == ["/test", "/test/1.txt"]
    assert rows[1]["security_id"] == 268
    assert rows[1]["sddl"].startswith("O:S-1-5-21-2341207468-2645333676-3461800803-1001G:")

    assert main(["files", str(lastaccess_db), "--path", "\\test\\", "--no-dirs", "--format", "ndjson"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["path"] for line in lines] == ["/test/1.txt"]

    user = "S-1-5-21-2341207468-2645333676-3461800803-1001"
    assert main(["files", str(lastaccess_db), "--sid", user, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["path"] for r in table} >= {"/test", "/test/1.txt", "/$RECYCLE.BIN"}

    # An alias works where a SID does: SY names the system files.
    assert main(["files", str(lastaccess_db), "--sid", "SY", "--format", "ndjson", "--limit", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_descriptors_listing(lastaccess_db, capsys):
    assert main(["descriptors", str(lastaccess_db), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 16  # 13 in $SDS + 3 distinct per-file descriptors
    assert sum(1 for r in rows if r["source"] == "sds") == 13
    by_id = {r["security_id"]: r for r in rows}
    assert by_id[256]["sddl"] == "O:SYG:BAD:(A;;FR;;;SY)(A;;FR;;;BA)"
    assert main(["descriptors", str(lastaccess_db), "--path", "/test/1.txt", "--format", "ndjson"]) == 0
    assert [json.loads(x)["security_id"] for x in capsys.readouterr().out.splitlines()] == [268]


def test_table_output_escapes_control_characters():
    from aclscan.formats.rows import csv_safe, terminal_safe, write_rows

    out = io.StringIO()
    write_rows([{"path": "/evil\x1b[31mred\x07"}], ["path"], "table", out)
    assert "\x1b" not in out.getvalue() and "\\x1b[31mred\\x07" in out.getvalue()
    assert terminal_safe("a\nb") == "a\\x0ab"
    assert [csv_safe(v) for v in ("=cmd()", "+1", "-1", "@x", "plain", 5)] == ["'=cmd()", "'+1", "'-1", "'@x", "plain", 5]


def test_row_formats_are_exhaustive():
    from aclscan.formats.rows import WRITERS, RowFormat

    assert set(WRITERS) == set(RowFormat)


def test_command_modules_lists_every_command():
    """The lazy command table names every command the modules define, and only those."""
    import importlib
    import pkgutil

    import aclscan.cli
    from aclscan.cli import COMMAND_MODULES

    for module in pkgutil.iter_modules(aclscan.cli.__path__):
        importlib.import_module(f"aclscan.cli.{module.name}")
    assert set(cli.commands) == set(COMMAND_MODULES)
    for name, module in COMMAND_MODULES.items():
        assert cli.commands[name].callback.__module__ == f"aclscan.cli.{module}"


def test_errors_about_hive_files_name_the_file(tmp_path, capsys):
    from pathlib import Path

    from aclscan.cli import main

    sam = Path(__file__).resolve().parents[2] / "sample_volumes" / "av-service.master-SAM"
    junk = tmp_path / "not-a-hive.dat"
    junk.write_bytes(b"\x00" * 8192)
    for option in ("--security", "--system"):
        code = main(["accounts", "--sam", str(sam), option, str(junk)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 8 and err == [f"Error: {junk}: not a registry hive (starts with 00000000, not 'regf')"]
    code = main(["accounts", "--sam", str(sam), "--security", str(sam)])
    assert code == 8
    assert capsys.readouterr().err.strip() == f"Error: {sam}: expected a SECURITY hive, but this is a SAM hive"


def test_accounts_of_a_sam_hive_file_are_the_names_hivex_lists(capsys):
    """`aclscan accounts --sam FILE` lists the hive's users and aliases (hivexsh, an
    independent reader, gives the names), and no well-known account."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    from aclscan.cli import main

    hivexsh = shutil.which("hivexsh")
    if hivexsh is None:
        pytest.skip("hivexsh (Debian libhivex-bin) is not installed")
    sam = Path(__file__).resolve().parents[2] / "sample_volumes" / "av-service.master-SAM"

    def names(key: str) -> set[str]:
        listing = subprocess.run([hivexsh, str(sam)], input=f"cd {key}\nls\n", capture_output=True, text=True,
                                 check=True).stdout
        return set(listing.split("\n")) - {""}

    users = names(r"SAM\Domains\Account\Users\Names")
    aliases = names(r"SAM\Domains\Account\Aliases\Names") | names(r"SAM\Domains\Builtin\Aliases\Names")
    assert users and aliases
    assert main(["accounts", "--sam", str(sam), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows
    assert {r["name"] for r in rows if r["kind"] == "user"} == users
    assert {r["name"] for r in rows if r["kind"] == "alias"} == aliases
    assert {r["source"] for r in rows} == {"volume hives SAM"}
