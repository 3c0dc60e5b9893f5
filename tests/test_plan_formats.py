"""The plan's output formats, fed hostile file, account, group and service names.

The PowerShell checks use a tokenizer written here from the language's rules
(PowerShell's own tokenizer, ScanStringLiteral and CharExtensions.IsSingleQuote):
a verbatim string starts at any of the five single-quote characters, ends at the
next one that is not doubled, and keeps the second of a doubled pair. No pwsh
runs here (it is not installable on this machine), so these tests are the proof
that every path literal reads back exactly and that no name escapes its literal.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from dataclasses import replace

import pytest

from aclscan.formats.rows import terminal_safe

from aclscan.cli import main
from aclscan.formats import plans
from aclscan.formats.plans import PlanContext, PlanFormat, PlanOutput, windows_relative
from aclscan.formats.powershell import ps_literal
from aclscan.plan import build_plan, iter_plan_files, plan_from_json
from aclscan.store import open_database

MARK = "zqx"  # every hostile name holds it: it must never show up as script code
HOSTILE_FILES = [
    f"{MARK}'quote.txt",
    f"{MARK}\u2019curly\u2018left\u201alow\u201brev.txt",
    f"{MARK};semi; Remove-Item C.txt",
    f"{MARK}$x.txt",
    f"{MARK}`tick`n.txt",
    f'{MARK}"double".txt',
    f"{MARK}\nnewline.txt",
    f"{MARK}\r\n'@\r\nwhoami.txt",
    f"{MARK}$(calc).txt",
    f"{MARK}@'here.txt",
    f"=cmd|' -C calc'!A0{MARK}",  # NTFS names cannot hold '/'
    f"+1{MARK}",
    f"-1{MARK}",
    f"@SUM(1){MARK}",
    f"{MARK}\x1b[31mred.txt",
    f"{MARK}<script>alert(1)<img src=x onerror=alert(2)>.txt",
    f"{MARK}\u2028separator.txt",
    f"{MARK}\\back.txt",
    f"{MARK}:stream.txt",
]
HOSTILE_ACCOUNT = f"=cmd|' /C calc'!A0 {MARK}'$(calc)`\n\x1b[2J"
HOSTILE_GROUP = f"AV {MARK}'; Remove-Item -Recurse C:\\ #\u2019"
HOSTILE_SERVICE = f"AV{MARK}'$(calc)\nsvc"
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


@pytest.fixture(scope="module")
def hostile_db(scenario_db, tmp_path_factory):
    """A copy of the av-service scan whose planned files, account, group and service
    carry hostile names."""
    path = tmp_path_factory.mktemp("hostile") / "av-service.db"
    shutil.copy(scenario_db("av-service"), path)
    db = open_database(path)
    plan = build_plan(db)
    keys = sorted({c.descriptor_key for c in plan.descriptors})
    marks = ", ".join("?" for _ in keys)
    rows = db.execute(f"SELECT volume_id, entry FROM file_records WHERE is_dir = 0 AND descriptor_key IN ({marks}) "
                      "ORDER BY entry", keys).fetchall()
    assert len(rows) >= len(HOSTILE_FILES)
    with db.conn:
        for (volume_id, entry), name in zip(rows, HOSTILE_FILES):
            db.execute("UPDATE file_records SET name = ? WHERE volume_id = ? AND entry = ?", [name, volume_id, entry])
        old = next(a.sid for a in plan.actions if a.account == "AVService")
        db.execute("UPDATE findings SET account = ? WHERE sid = ?", [HOSTILE_ACCOUNT, old])
        db.execute("UPDATE hive_references SET detail = ? WHERE sid = ? AND kind = 'alias_member'", [HOSTILE_GROUP, old])
        db.execute("UPDATE hive_references SET detail = ? WHERE kind = 'service_logon' AND detail LIKE 'AVScan %'",
                   [HOSTILE_SERVICE + " logs on as .\\AVService"])
    return path


def _run(args, capsysbinary):
    code = main(args)
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode("utf-8")


def _expected_paths(path) -> tuple[set[str], set[str]]:
    """(Windows-relative paths a format can carry, database paths none can)."""
    db = open_database(path)
    expressible, not_windows = set(), set()
    for planned in iter_plan_files(db, build_plan(db)):
        relative, why = windows_relative(planned.path)
        (not_windows if why else expressible).add(planned.path if why else relative)
    return expressible, not_windows


def test_every_format_has_a_renderer():
    assert set(plans.renderers()) == set(PlanFormat)
    assert all(callable(r) for r in plans.renderers().values())


def test_hostile_fixture_really_has_the_names(hostile_db):
    expressible, not_windows = _expected_paths(hostile_db)
    names = {p.rsplit("\\", 1)[-1] for p in expressible} | {p.rsplit("/", 1)[-1] for p in not_windows}
    assert set(HOSTILE_FILES) <= names


# ----------------------------------------------------------------- PowerShell


def tokenize(script: str) -> list[tuple[str, str]]:
    """PowerShell tokens, coarsely: ('string', value), ('herestring', body), ('comment', text), ('code', text)."""
    tokens, code = [], []
    i, n = 0, len(script)

    def flush():
        if code:
            tokens.append(("code", "".join(code)))
            code.clear()

    while i < n:
        char = script[i]
        if char == "#":
            flush()
            end = i
            while end < n and script[end] not in "\r\n":
                end += 1
            tokens.append(("comment", script[i:end]))
            i = end
        elif char == "<" and script.startswith("<#", i):
            raise AssertionError("block comment in the script")
        elif char == "@" and i + 1 < n and script[i + 1] in SINGLE_QUOTES:
            flush()
            start = script.index("\n", i) + 1
            assert script[i + 2:start].strip() == "", "a here-string opener must end its line"
            match = re.compile(r"\r?\n[" + SINGLE_QUOTES + "]@").search(script, start - 1)
            assert match, "unterminated here-string"
            tokens.append(("herestring", script[start:match.start()]))
            i = match.end()
        elif char in SINGLE_QUOTES:
            flush()
            value, j = [], i + 1
            while True:
                assert j < n, "unterminated string literal"
                if script[j] in SINGLE_QUOTES:
                    if j + 1 < n and script[j + 1] in SINGLE_QUOTES:
                        value.append(script[j + 1])  # the second of a doubled pair
                        j += 2
                        continue
                    break
                value.append(script[j])
                j += 1
            tokens.append(("string", "".join(value)))
            i = j + 1
        elif char in '"\u201c\u201d\u201e':
            raise AssertionError(f"an expanding (double-quoted) string in script code at {i}: {script[i - 40:i + 40]!r}")
        else:
            code.append(char)
            i += 1
    flush()
    return tokens


_ARRAY_PIECE = re.compile(r"\[char\]0x([0-9a-f]{4})|\r\n|\)\)|[()+ ]")


def path_arrays(tokens) -> list[list[str]]:
    """The values of every `foreach ($relative in @( ... ))` array, evaluated."""
    arrays, inside, current, element = [], False, None, None
    for kind, text in tokens:
        if not inside:
            if kind == "code" and re.search(r"foreach \(\$relative in @\(\r\n *$", text):
                inside, current, element = True, [], None
            continue
        if kind == "string":
            element = (element or "") + text
        elif kind == "comment":
            assert text.startswith("# left out: ") or text == "# (no path left to rewrite)", text
        elif kind == "code":
            pos = 0
            while pos < len(text):
                match = _ARRAY_PIECE.match(text, pos)
                assert match, f"unexpected code inside a path array: {text[pos:pos + 40]!r}"
                piece = match.group()
                if match.group(1):
                    element = (element or "") + chr(int(match.group(1), 16))
                elif piece == "\r\n" and element is not None:
                    current.append(element)
                    element = None
                elif piece == "))":
                    arrays.append(current)
                    inside = False
                    break
                pos = match.end()
        else:
            raise AssertionError(f"{kind} inside a path array")
    assert not inside
    return arrays


@pytest.mark.parametrize("text", HOSTILE_FILES + [HOSTILE_ACCOUNT, HOSTILE_GROUP, "", "''", "\u2019\u2019'", "a\r\nb"])
def test_ps_literal_reads_back(text):
    expression = ps_literal(text)
    assert "\n" not in expression and "\r" not in expression
    tokens = tokenize(expression + "\r\n")
    rebuilt = []
    for kind, code in tokens:
        assert kind in ("string", "code")
        if kind == "string":
            rebuilt.append(code)
        else:  # between literals only joins and [char] codes
            assert re.fullmatch(r"(\[char\]0x[0-9a-f]{4}|[()+ \r\n])*", code), code
            rebuilt.extend(chr(int(h, 16)) for h in re.findall(r"\[char\]0x([0-9a-f]{4})", code))
    assert "".join(rebuilt) == text


def test_powershell_script_keeps_every_name_inside_its_literal(hostile_db, tmp_path, capsysbinary):
    target = tmp_path / "fix.ps1"
    code, _, err = _run(["plan", str(hostile_db), "--format", "powershell", "-o", str(target)], capsysbinary)
    assert code == 0
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    script = raw[3:].decode("utf-8")
    assert "\r\n" in script and not re.search(r"\r(?!\n)|(?<!\r)\n", script), "CRLF line ends only"
    tokens = tokenize(script)
    for kind, text in tokens:
        if kind in ("code", "herestring"):
            assert MARK not in text, f"user text outside a literal: {text[:200]!r}"
        if kind == "comment":
            assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", text)
    # Every path array holds exactly the Windows paths the plan's files have.
    expressible, not_windows = _expected_paths(hostile_db)
    listed = [p for array in path_arrays(tokens) for p in array]
    assert len(listed) == len(set(listed))
    assert set(listed) == {"\\" + p for p in expressible}
    assert {"\\" + p for p in expressible if MARK in p} and any("\n" in p for p in listed)
    for path in not_windows:
        assert "left out" in err and MARK in path
    assert f"{len(not_windows)} path(s) left out" in err
    # The registry lines carry the hostile group as a literal; names in comments are escaped.
    strings = [t for k, t in tokens if k == "string"]
    assert HOSTILE_GROUP in strings and "SeServiceLogonRight" in strings
    assert any("AVzqx'$(calc)\\x0asvc" in t for k, t in tokens if k == "comment")
    assert "param([string]$Root = $env:SystemDrive + " in script


def test_powershell_compares_and_sets_per_descriptor(hostile_db, capsysbinary):
    code, out, _ = _run(["plan", str(hostile_db), "--format", "powershell"], capsysbinary)
    script = out[3:].decode("utf-8")
    plan = build_plan(open_database(hostile_db))
    tokens = tokenize(script)
    strings = [t for k, t in tokens if k == "string"]
    # Files' descriptors only: registry keys, services, tasks keep theirs in the hives,
    # which aclscan fix rewrites offline (the script says how many).
    files = [c for c in plan.descriptors if c.files]
    places = [c for c in plan.descriptors if not c.files]
    assert files
    if places:
        assert f"# {len(places)} descriptor(s) of registry keys" in script
    for change in files:
        assert change.old_sddl in strings and change.new_sddl in strings
    assert len(path_arrays(tokens)) == len(files)
    assert script.count("Set-PlannedDescriptor ($base + $relative)") == len(files)
    assert "Get-Acl -LiteralPath $Path" in script and "Set-Acl -LiteralPath $Path" in script


def test_powershell_service_lines_quote_the_service(hostile_db):
    db = open_database(hostile_db)
    plan = build_plan(db)
    template = next(a for a in plan.actions if a.kind == "grant_lsa_rights")
    service = replace(template, id="A99", kind="repoint_service", rights=(), services=(HOSTILE_SERVICE, "Plain"))
    out = io.BytesIO()
    plans.render(replace(plan, actions=plan.actions + (service,)), PlanFormat.POWERSHELL, PlanContext(db=db),
                 PlanOutput(lambda: out))
    script = out.getvalue()[3:].decode("utf-8")
    tokens = tokenize(script)
    assert not any(MARK in t for k, t in tokens if k == "code")
    assert f"sc.exe qc {ps_literal(HOSTILE_SERVICE)}\r\n" in script
    assert "sc.exe qc 'Plain'\r\n" in script
    assert "# sc.exe config 'Plain' obj= " in script, "setting the logon needs a password: left as a comment"


# --------------------------------------------------------------------- icacls


def test_icacls_file_is_utf16_pairs_without_bom(hostile_db, tmp_path, capsysbinary):
    target = tmp_path / "restore.txt"
    code, _, err = _run(["plan", str(hostile_db), "--format", "icacls", "-o", str(target)], capsysbinary)
    assert code == 0
    raw = target.read_bytes()
    assert not raw.startswith(b"\xff\xfe") and len(raw) % 2 == 0
    text = raw.decode("utf-16-le")
    assert text.endswith("\r\n")
    lines = text[:-2].split("\r\n")
    assert len(lines) % 2 == 0
    assert not any("\n" in line or "\r" in line for line in lines)
    paths, dacls = lines[0::2], lines[1::2]
    assert all(d.startswith("D:") and "O:" not in d and "G:" not in d for d in dacls)
    expressible, not_windows = _expected_paths(hostile_db)
    carried = {p for p in expressible if "\n" not in p and "\r" not in p}
    assert set(paths) == carried and len(paths) == len(carried)
    assert any("'" in p for p in paths) and any('"' in p for p in paths)
    assert paths == sorted(paths, key=lambda p: p.split("\\")), "folders before what they hold"
    for left in expressible - carried:
        assert "line break" in err
    assert "need the PowerShell script" in err and "change the registry" in err


def test_icacls_dacl_is_the_new_descriptors(scenario_db, tmp_path, capsysbinary):
    target = tmp_path / "restore.txt"
    assert _run(["plan", str(scenario_db("domain-member")), "--format", "icacls", "-o", str(target)],
                capsysbinary)[0] == 0
    lines = target.read_bytes().decode("utf-16-le").split("\r\n")
    plan = build_plan(open_database(scenario_db("domain-member")))
    news = {c.new_sddl[c.new_sddl.index("D:"):] for c in plan.descriptors}
    assert set(lines[1::2]) == news


# --------------------------------------------------------------------- setacl


def test_setacl_backup_lines(hostile_db, tmp_path, capsysbinary):
    target = tmp_path / "backup.txt"
    code, _, err = _run(["plan", str(hostile_db), "--format", "setacl", "--drive", "D:", "-o", str(target)],
                        capsysbinary)
    assert code == 0
    raw = target.read_bytes()
    assert raw.startswith(b"\xff\xfe")
    text = raw[2:].decode("utf-16-le")
    lines = text[:-2].split("\r\n")
    line_form = re.compile(r'"(D:\\[^"\r\n]*)",1,"(O:[^"\r\n]*)"')
    found = {}
    for line in lines:
        match = line_form.fullmatch(line)
        assert match, line
        found[match.group(1)] = match.group(2)
    expressible, _ = _expected_paths(hostile_db)
    carried = {p for p in expressible if not set(p) & set('"\r\n')}
    assert set(found) == {"D:\\" + p for p in carried}
    plan = build_plan(open_database(hostile_db))
    assert set(found.values()) == {c.new_sddl for c in plan.descriptors if c.files}
    assert err.count("setacl: left out") == len(_expected_paths(hostile_db)[1]) + len(expressible - carried)


# ----------------------------------------------------------------- text, JSON


def test_text_is_terminal_safe(hostile_db, capsysbinary):
    code, out, _ = _run(["plan", str(hostile_db), "--format", "text"], capsysbinary)
    text = out.decode("utf-8")
    assert code == 0
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)
    assert "\\x1b[2J" in text and "\\x0a" in text  # the account's escape and line break, shown escaped
    assert HOSTILE_GROUP in text


def test_text_names_who_a_rid_collision_would_have_handed_the_files_to(scenario_db, capsysbinary):
    code, out, _ = _run(["plan", str(scenario_db("member-after")), "--format", "text"], capsysbinary)
    text = out.decode("utf-8")
    assert code == 1
    assert "REFUSALS: 3" in text
    for heir in ("Jon", "Sam", "Stephanie"):
        assert re.search(rf"would hand these files to S-1-5-21-[0-9-]+ \([^)]*{heir}\)", text), heir


def test_json_carries_hostile_names_exactly(hostile_db, capsysbinary):
    code, out, _ = _run(["plan", str(hostile_db), "--format", "json"], capsysbinary)
    plan = plan_from_json(out.decode("utf-8"))
    assert HOSTILE_ACCOUNT in {a.account for a in plan.actions}
    assert json.loads(out)["plan_format"] == 1


def test_renderer_output_is_lazy(scenario_db):
    opened = []
    out = PlanOutput(lambda: opened.append(1) or io.BytesIO())
    db = open_database(scenario_db("clean"))
    plans.render(build_plan(db), PlanFormat.SETACL, PlanContext(db=db), out)
    assert not opened and out.written == 0


# ----------------------------------------------- the row formats, same names


def test_files_csv_and_table_with_hostile_names(hostile_db, capsysbinary):
    code, out, _ = _run(["files", str(hostile_db), "--format", "csv"], capsysbinary)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out.decode("utf-8"), newline="")))
    paths = {r["path"] for r in rows}
    for name in HOSTILE_FILES:
        # quotes come back exactly; control characters and line separators escaped as on a terminal
        assert any(p.endswith("/" + terminal_safe(name)) for p in paths), name
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]", out.decode("utf-8"))
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())
    code, out, _ = _run(["files", str(hostile_db), "--format", "table"], capsysbinary)
    table = out.decode("utf-8")
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", table)
    assert f"{MARK}\\x1b[31mred.txt" in table and f"{MARK}\\x0anewline.txt" in table


def test_findings_csv_neutralises_a_formula_account(hostile_db, capsysbinary):
    code, out, _ = _run(["findings", str(hostile_db), "--format", "csv"], capsysbinary)
    rows = list(csv.DictReader(io.StringIO(out.decode("utf-8"), newline="")))
    accounts = {r["account"] for r in rows}
    assert "'" + terminal_safe(HOSTILE_ACCOUNT) in accounts
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
