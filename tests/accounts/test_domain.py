"""Domain exports: LDIF (ldifde) and CSV (Get-ADUser | Export-Csv), and DomainSource."""

from __future__ import annotations

import base64
import codecs
import json
from pathlib import Path

import pytest

from aclscan.accounts.base import ALIAS, COMPUTER, DOMAIN, GROUP, USER, AccountSource
from aclscan.accounts.domain import ADPROPERTYVALUECOLLECTION, DomainSource, read_csv, read_ldif
from aclscan.errors import DirectoryError, MalformedData, MalformedExport
from aclscan.sd.sid import SID

SAMPLES = Path(__file__).resolve().parents[2] / "sample_volumes"
MANIFEST = json.loads((SAMPLES / "domain-member.json").read_text())
DOMAIN_SID = MANIFEST["primary_domain"]["sid"]
NETBIOS = MANIFEST["primary_domain"]["name"]

D = "S-1-5-21-1111111111-2222222222-3333333333"
OLD = "S-1-5-21-1390067357-1202500187-1085936611"


def b64(sid: str) -> str:
    return base64.b64encode(SID.from_string(sid).to_bytes()).decode()


def domain_accounts() -> dict[str, str]:
    """SID -> account name of the domain's accounts the manifest expects to resolve."""
    prefix = f"{NETBIOS}\\"
    return {sid: e["account"][len(prefix):] for sid, e in MANIFEST["expected"].items()
            if sid.startswith(DOMAIN_SID + "-") and e["verdict"] == "resolved"}


def history() -> dict[str, tuple[str, str]]:
    """Old SID -> (account name, its SID today), from the manifest's sid_history verdicts."""
    return {sid: (e["account"].split("\\")[-1], e["mapped_sid"]) for sid, e in MANIFEST["expected"].items()
            if e["verdict"] == "sid_history"}


# --- the committed sample exports -------------------------------------------------------------------

def test_sample_ldif_matches_manifest():
    export = read_ldif(SAMPLES / "domain-member.ldif")
    assert export.domain_sid == DOMAIN_SID
    assert export.netbios_name == NETBIOS and export.dns_name == "netwerks.example"
    assert export.complete and export.history_known and not export.warnings
    source = DomainSource(export, name="domain export domain-member.ldif")
    assert isinstance(source, AccountSource)
    assert source.authorities() == [source.authorities()[0]]
    authority = source.authorities()[0]
    assert (authority.sid, authority.name, authority.kind, authority.complete, authority.source) == (
        DOMAIN_SID, NETBIOS, DOMAIN, True, "domain export domain-member.ldif")
    expected = domain_accounts()
    assert expected  # the manifest names Domain Admins, Domain Users, Engineering, alice, bob
    for sid, name in expected.items():
        account = source.lookup(sid)
        assert account is not None and account.name == name, sid
        assert account.qualified_name == f"{NETBIOS}\\{name}"
        assert account.source == source.name
    assert source.lookup(f"{DOMAIN_SID}-512").kind == GROUP
    assert source.lookup(f"{DOMAIN_SID}-1105").kind == USER
    # Deleted users are absent, and the list is complete: the classifier may call them orphans.
    assert MANIFEST["deleted_domain_users"]
    for sid in MANIFEST["deleted_domain_users"]:
        assert source.lookup(sid) is None
    assert "carol" not in {a.name for a in source.accounts()}


@pytest.mark.parametrize("reader, path", [(read_ldif, "domain-member.ldif"), (read_csv, "domain-member.csv")])
def test_sample_sid_history(reader, path):
    source = DomainSource(reader(SAMPLES / path))
    assert history()
    for old, (name, today) in history().items():
        account = source.lookup(today)
        assert account.name == name and account.sid_history == (old,)
        assert source.lookup(old) is None  # a history SID is not an account of its own


def test_sample_csv_matches_manifest_and_ldif():
    export = read_csv(SAMPLES / "domain-member.csv")
    assert export.domain_sid == DOMAIN_SID and export.netbios_name == NETBIOS
    assert export.origin == "CSV domain-member.csv"
    users = {e.sid: e.name for e in export.entries}
    ldif = read_ldif(SAMPLES / "domain-member.ldif")
    assert users == {e.sid: e.name for e in ldif.entries if e.kind == USER}
    assert all(e.kind == USER and not e.disabled for e in export.entries)
    for sid in MANIFEST["deleted_domain_users"]:
        assert sid not in users
    for sid, name in domain_accounts().items():
        if sid in users:
            assert users[sid] == name
    # Get-ADUser lists no groups: a missing group RID would not be a deleted group.
    assert not export.complete
    assert not DomainSource(export).authorities()[0].complete
    assert "not treated as the domain's complete account list" in export.warnings[0]
    assert DomainSource(export, complete=True).authorities()[0].complete  # the caller may say otherwise


# --- LDIF -------------------------------------------------------------------------------------

HANDWRITTEN = f"""version: 1

# ldifde -f domain.ldif -d "DC=corp,DC=example" -r "(objectSid=*)"
#  a comment goes on
# on this line too
dn: DC=corp,DC=example
changetype: add
objectClass: top
objectClass: domain
objectClass: domainDNS
objectSid:: {b64(D)}

dn: CN=CORP,CN=Partitions,CN=Configuration,DC=corp,DC=example
changetype: add
objectClass: crossRef
nCName: DC=corp,DC=exa
 mple
nETBIOSName: CORPNT

dn: CN=Erin Long-Name,OU=Research and Develop
 ment,DC=corp,DC=example
changetype: add
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
sAMAccountName: erin
userAccountControl: 514
objectSid:: {b64(D + '-1201')[:20]}
 {b64(D + '-1201')[20:]}
sIDHistory:: {b64(OLD + '-1001')}
sIDHistory: {OLD}-1002



dn:: {base64.b64encode('CN=Zoë,CN=Users,DC=corp,DC=example'.encode()).decode()}
objectClass: user
sAMAccountName:: {base64.b64encode('zoë'.encode()).decode()}
objectSid: {D}-1202

dn: CN=WS01,CN=Computers,DC=corp,DC=example
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
objectClass: computer
sAMAccountName: WS01$
objectSid:: {b64(D + '-1203')}

dn: CN=File Readers,OU=Groups,DC=corp,DC=example
objectClass: group
sAMAccountName: File
\t Readers
groupType: -2147483644
objectSid:: {b64(D + '-1204')}

dn: CN=Staff,OU=Groups,DC=corp,DC=example
objectClass: group
sAMAccountName: Staff
groupType: -2147483646
objectSid:: {b64(D + '-1205')}

dn: CN=Administrators,CN=Builtin,DC=corp,DC=example
objectClass: group
sAMAccountName: Administrators
groupType: -2147483643
objectSid:: {b64('S-1-5-32-544')}

dn: CN=S-1-5-21-9-9-9-1000,CN=ForeignSecurityPrincipals,DC=corp,DC=example
objectClass: foreignSecurityPrincipal
objectSid: S-1-5-21-9-9-9-1000

dn: OU=Research and Development,DC=corp,DC=example
objectClass: organizationalUnit

dn: CN=gone\\0ADEL:3f1e,CN=Deleted Objects,DC=corp,DC=example
objectClass: user
sAMAccountName: gone
isDeleted: TRUE
objectSid:: {b64(D + '-1150')}
"""


def test_handwritten_ldif_with_continuation_lines():
    export = read_ldif(HANDWRITTEN.replace("\n", "\r\n"))
    assert export.domain_sid == D  # from the domain object
    assert export.netbios_name == "CORPNT"  # from the crossRef, not guessed from the DN
    assert export.dns_name == "corp.example"
    entries = {e.name: e for e in export.entries}
    assert set(entries) == {"erin", "zoë", "WS01$", "File Readers", "Staff"}
    erin = entries["erin"]
    assert erin.dn == "CN=Erin Long-Name,OU=Research and Development,DC=corp,DC=example"
    assert erin.sid == f"{D}-1201" and erin.kind == USER and erin.disabled
    assert erin.sid_history == (f"{OLD}-1001", f"{OLD}-1002")
    assert entries["zoë"].dn == "CN=Zoë,CN=Users,DC=corp,DC=example"
    assert entries["WS01$"].kind == COMPUTER
    assert entries["File Readers"].kind == ALIAS  # domain local
    assert entries["Staff"].kind == GROUP  # global
    assert [e.name for e in export.deleted] == ["gone"]
    assert export.complete
    assert any("BUILTIN" in w for w in export.warnings)
    source = DomainSource(export)
    assert source.name == "LDIF"
    assert source.lookup("S-1-5-32-544") is None and source.lookup(f"{D}-1150") is None
    assert source.lookup(f"{D}-1201").qualified_name == "CORPNT\\erin"
    assert DomainSource(export, netbios_name="OTHER").lookup(f"{D}-1201").domain == "OTHER"


def test_ldif_file_utf16_and_bytes(tmp_path):
    path = tmp_path / "unicode.ldif"
    path.write_bytes(codecs.BOM_UTF16_LE + HANDWRITTEN.replace("\n", "\r\n").encode("utf-16-le"))
    from_file = read_ldif(path)
    assert from_file.origin == "LDIF unicode.ldif"
    assert from_file.entries == read_ldif(HANDWRITTEN).entries
    assert read_ldif(path.read_bytes()).entries == from_file.entries
    assert read_ldif(str(path)).entries == from_file.entries


def test_ldif_domain_sid_from_accounts():
    """Without the domain object, the prefix most accounts share; NetBIOS name guessed from the DN."""
    text = "".join(f"dn: CN=u{i},CN=Users,DC=lab,DC=example\nobjectClass: user\nsAMAccountName: u{i}\n"
                   f"objectSid:: {b64(f'{D}-{1100 + i}')}\n\n" for i in range(3))
    text += f"dn: CN=x,CN=Users,DC=lab,DC=example\nobjectClass: user\nsAMAccountName: x\nobjectSid: {OLD}-5\n"
    export = read_ldif(text)
    assert export.domain_sid == D and export.netbios_name == "LAB"
    assert not export.complete  # users only
    assert any(OLD in w for w in export.warnings)
    source = DomainSource(export)
    assert source.lookup(f"{OLD}-5").domain is None  # another domain's account: its name is unknown


def _ldif_error(text: str) -> str:
    with pytest.raises(MalformedExport) as exc:
        read_ldif(text)
    message = str(exc.value)
    assert "\n" not in message and isinstance(exc.value, MalformedData) and isinstance(exc.value, ValueError)
    assert exc.value.exit_code == 11
    return message


GOOD = f"dn: CN=a,DC=x,DC=example\nobjectClass: user\nsAMAccountName: a\nobjectSid:: {b64(D + '-1000')}\n"


@pytest.mark.parametrize("text, expected", [
    (GOOD + "\ndn: CN=b,DC=x,DC=example\nobjectClass user\n", "line 7: not 'attribute: value'"),
    (GOOD + "\ndn: CN=b,DC=x,DC=example\nobjectClass: user\nobjectSid:: not*base64\n",
     "line 8: objectSid:: is not base64"),
    (GOOD + f"\ndn: CN=b,DC=x,DC=example\nobjectClass: user\nobjectSid:: {base64.b64encode(b'12345').decode()}\n",
     "line 8: objectSid: not a SID"),
    (GOOD + "\ndn: CN=b,DC=x,DC=example\nobjectClass: user\nobjectSid: S-1-5-x\n", "line 8: objectSid: not a SID"),
    (" continued\n" + GOOD, "line 1: a continuation line with nothing to continue"),
    (GOOD + "\nobjectClass: user\n", "line 6: a record must start with 'dn:'"),
    (GOOD + "\ndn: CN=a,DC=x,DC=example\nchangetype: modify\nreplace: sAMAccountName\nsAMAccountName: b\n-\n",
     "line 7: changetype modify is a change, not an export"),
    ("dn: CN=a,DC=x,DC=example\nobjectClass: organizationalUnit\n", "no user, group or computer with an objectSid"),
    ("", "no user, group or computer"),
    (GOOD + "\ndn: CN=b,DC=x,DC=example\nobjectClass: group\ngroupType: global\nobjectSid: S-1-5-21-1-2-3-4\n",
     "line 8: groupType: not a number"),
])
def test_malformed_ldif(text, expected):
    assert expected in _ldif_error(text)


def test_ldif_not_utf8(tmp_path):
    path = tmp_path / "latin1.ldif"
    path.write_bytes((GOOD + "\ndn: CN=Zo\xeb,DC=x,DC=example\nobjectClass: user\n").encode("latin-1"))
    with pytest.raises(MalformedExport, match=r"^LDIF latin1.ldif: line 6: not UTF-8 text"):
        read_ldif(path)


def test_missing_export_file(tmp_path):
    for reader in (read_ldif, read_csv):
        with pytest.raises(DirectoryError, match="cannot read domain export .*none: No such file") as exc:
            reader(tmp_path / "none")
        assert exc.value.exit_code == 10


# --- CSV --------------------------------------------------------------------------------------

def test_csv_utf8_bom_and_utf16(tmp_path):
    raw = (SAMPLES / "domain-member.csv").read_bytes()
    text = raw.decode("utf-8")
    reference = read_csv(SAMPLES / "domain-member.csv")
    for name, data in (("bom.csv", codecs.BOM_UTF8 + raw),
                       ("utf16.csv", codecs.BOM_UTF16_LE + text.encode("utf-16-le")),
                       ("utf16be.csv", codecs.BOM_UTF16_BE + text.encode("utf-16-be"))):
        path = tmp_path / name
        path.write_bytes(data)
        export = read_csv(path)
        assert export.entries == reference.entries, name
        assert export.domain_sid == DOMAIN_SID


def write_csv(tmp_path, rows: list[list[str]], *, type_line="#TYPE Microsoft.ActiveDirectory.Management.ADUser",
              delimiter=",", name="export.csv", encoding="utf-8-sig") -> Path:
    lines = [type_line] if type_line else []
    lines += [delimiter.join('"' + cell.replace('"', '""') + '"' for cell in row) for row in rows]
    path = tmp_path / name
    path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
    return path


HEADER = ["DistinguishedName", "Enabled", "Name", "ObjectClass", "SamAccountName", "SID", "SIDHistory"]


def test_csv_adpropertyvaluecollection_is_unknown_history(tmp_path):
    path = write_csv(tmp_path, [
        HEADER,
        ["CN=ann,CN=Users,DC=corp,DC=example", "True", "ann", "user", "ann", f"{D}-1101", ADPROPERTYVALUECOLLECTION],
        ["CN=ben,CN=Users,DC=corp,DC=example", "False", "ben", "user", "ben", f"{D}-1102", f"{OLD}-7 {OLD}-8"],
    ])
    export = read_csv(path)
    ann, ben = export.entries
    assert ann.sid_history is None  # unknown, not empty
    assert ben.sid_history == (f"{OLD}-7", f"{OLD}-8") and ben.disabled and not ann.disabled
    assert not export.history_known
    assert any(ADPROPERTYVALUECOLLECTION in w and "-join" in w for w in export.warnings)
    source = DomainSource(export)
    account = source.lookup(f"{D}-1101")
    assert account.sid_history == () and account.extra["sid_history_unknown"] is True
    assert "sid_history_unknown" not in source.lookup(f"{D}-1102").extra


def test_csv_users_and_groups_is_complete(tmp_path):
    """Get-ADObject -LDAPFilter '(|(objectClass=user)(objectClass=group))' | Export-Csv, PowerShell 7
    style: no #TYPE line, semicolons (-UseCulture), objectSid column, a value across two lines."""
    path = write_csv(tmp_path, [
        ["DistinguishedName", "Name", "ObjectClass", "objectSid", "sAMAccountName", "SIDHistory", "Description"],
        ["CN=ann,CN=Users,DC=corp,DC=example", "ann", "user", f"{D}-1101", "ann", "", "line one\nline two"],
        ["CN=Staff,CN=Users,DC=corp,DC=example", "Staff", "group", f"{D}-1105", "Staff", "", ""],
        ["CN=WS1,CN=Computers,DC=corp,DC=example", "WS1", "computer", f"{D}-1106", "WS1$", "", ""],
        ["CN=S-1-5-21-9-9-9-1,CN=ForeignSecurityPrincipals,DC=corp,DC=example", "x", "foreignSecurityPrincipal",
         "S-1-5-21-9-9-9-1", "", "", ""],
    ], type_line=None, delimiter=";", encoding="utf-8")
    export = read_csv(path)
    assert [(e.name, e.kind) for e in export.entries] == [("ann", USER), ("Staff", GROUP), ("WS1$", COMPUTER)]
    assert export.entries[1].line == 4  # the row after the two-line value
    assert export.complete and not export.warnings
    assert DomainSource(export).authorities()[0].complete
    assert not DomainSource(export, complete=False).authorities()[0].complete


def _csv_error(tmp_path, rows, **options) -> str:
    path = write_csv(tmp_path, rows, **options)
    with pytest.raises(MalformedExport) as exc:
        read_csv(path)
    message = str(exc.value)
    assert "\n" not in message and message.startswith("CSV export.csv: ")
    assert exc.value.exit_code == 11
    return message


ANN = ["CN=ann,CN=Users,DC=corp,DC=example", "True", "ann", "user", "ann", f"{D}-1101", ""]


@pytest.mark.parametrize("rows, expected", [
    ([HEADER, ANN, ANN[:5] + ["S-1-5-21-oops", ""]], "line 4: SID: not a SID"),
    ([HEADER, ANN, ANN[:6] + ["S-1-5-21-1 garbage"]], "line 4: SIDHistory: not a SID"),
    ([HEADER, ANN, ANN[:6]], "line 4: 6 fields, the header has 7"),
    ([HEADER, ANN, ANN[:5] + ["", ""]], "line 4: empty SID"),
    ([["DistinguishedName", "SamAccountName"], ANN[:2]], "line 2: no SID column in the header"),
    ([["DistinguishedName", "SID"], ANN[:2]], "line 2: no SamAccountName column"),
    ([HEADER], "no account rows"),
    ([HEADER, ["CN=x,DC=y", "True", "x", "user", "x", "S-1-5-32-544", ""]], "no domain account"),
])
def test_malformed_csv(tmp_path, rows, expected):
    assert expected in _csv_error(tmp_path, rows)


def test_csv_broken_quoting(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b'#TYPE x\r\n"SID","SamAccountName"\r\n"S-1-5-21-1-2-3-4","a"\r\n"S-1-5-21-1-2-3-5"x,"b"\r\n')
    with pytest.raises(MalformedExport, match=r"^CSV export.csv: line 4: "):
        read_csv(path)


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b'"SID","SamAccountName"\r\n"S-1-5-21-1-2-3-4","Zo\xeb"\r\n')
    with pytest.raises(MalformedExport, match=r"^CSV export.csv: line 2: not UTF-8 text"):
        read_csv(path)


def test_empty_csv(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"#TYPE Microsoft.ActiveDirectory.Management.ADUser\r\n")
    with pytest.raises(MalformedExport, match=r"^CSV export.csv: line 2: no header row$"):
        read_csv(path)


def test_ldif_non_ascii_digits_in_a_sid_string():
    text = GOOD + "\ndn: CN=b,DC=x,DC=example\nobjectClass: user\nsAMAccountName: b\nobjectSid: S-1-5-21-\u0661-2-3-4\n"
    assert "line 9: objectSid: not a SID" in _ldif_error(text)


def test_ldif_two_accounts_with_one_objectsid():
    text = GOOD + f"\ndn: CN=b,DC=x,DC=example\nobjectClass: user\nsAMAccountName: b\nobjectSid:: {b64(D + '-1000')}\n"
    message = _ldif_error(text)
    assert message == (f"LDIF: objectSid {D}-1000 belongs to two accounts: a (CN=a,DC=x,DC=example, line 1) "
                       "and b (CN=b,DC=x,DC=example, line 6)")


def test_csv_two_accounts_with_one_objectsid(tmp_path):
    bob = ["CN=bob,CN=Users,DC=corp,DC=example", "True", "bob", "user", "bob", f"{D}-1101", ""]
    message = _csv_error(tmp_path, [HEADER, ANN, bob])
    assert message == (f"CSV export.csv: objectSid {D}-1101 belongs to two accounts: "
                       "ann (CN=ann,CN=Users,DC=corp,DC=example, line 3) and bob (CN=bob,CN=Users,DC=corp,DC=example, line 4)")


def test_csv_large_sid_history_cell_is_read(tmp_path):
    history = " ".join(f"{OLD}-{rid}" for rid in range(1000, 5000))  # 4,000 SIDs, about 180,000 characters
    assert len(history) > 131072  # the csv module's default cell limit
    path = write_csv(tmp_path, [HEADER, ANN[:6] + [history]])
    export = read_csv(path)
    assert len(export.entries[0].sid_history) == 4000
    import csv

    assert csv.field_size_limit() == 131072  # restored after the read


def test_error_lines_escape_control_characters_and_separators(tmp_path, capsys):
    from aclscan.cli import main

    export = tmp_path / "evil.ldif"
    export.write_text(GOOD + "\ndn: CN=b,DC=x,DC=example\nobjectClass \x1b]0;owned\x07 user\u2028x\n",
                      encoding="utf-8")
    code = main(["scan", str(Path(__file__).resolve().parents[2] / "sample_volumes" / "quickstart.img.gz"),
                 "--db", str(tmp_path / "x.db"), "--domain", str(export)])
    err = capsys.readouterr().err
    assert code == 11
    lines = err.strip().split("\n")
    assert len(lines) == 1 and "\x1b" not in err and "\x07" not in err and "\u2028" not in err
    assert "objectClass \\x1b]0;owned\\x07 user x" in lines[0]
