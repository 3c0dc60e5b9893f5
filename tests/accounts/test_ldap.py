"""LdapSource against a real Samba Active Directory domain controller on 127.0.0.1.

The session fixture provisions a domain in a temporary directory (samba-tool
domain provision), adds users, a group, a computer, a deleted user and a user
with sIDHistory, starts ``samba`` with only its LDAP service, and stops it at
the end. It needs root and the Debian packages ``samba samba-dsdb-modules
samba-ad-provision samba-vfs-modules`` (python3-samba comes with samba; the
last three are only recommended by it, and provisioning needs them); without them the tests
that need it are skipped, unless ACLSCAN_REQUIRE_SAMBA=1 makes that a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aclscan.accounts.base import COMPUTER, DOMAIN, GROUP, USER, AccountSource
from aclscan.errors import (DirectoryAuthFailed, DirectoryError, DirectorySearchFailed, DirectoryUnreachable,
                            UntrustedCertificate)

import ldap3
from aclscan.accounts.ldap import LdapSource  # noqa: E402  (after the ldap3 check)

REALM = "ACLTEST.EXAMPLE"
NETBIOS = "ACLTEST"
HOST_NAME = "DC1"
SERVER_NAME = f"{HOST_NAME}.{REALM}".lower()  # the name on the certificate Samba makes for itself
BASE_DN = "DC=acltest,DC=example"
ADMIN_PASSWORD = "Adm1n-Pa55word!"
USER_PASSWORD = "Us3r-Pa55word!"
OLD_SID = "S-1-5-21-1390067357-1202500187-1085936611-1234"  # dave's SID in the domain he came from
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT = 30.0

# Writes sIDHistory, which AD refuses over LDAP ("cannot be created or changed over
# LDAP"): through the sam.ldb directly, as the system, with Samba's own Python bindings.
SID_HISTORY_SCRIPT = textwrap.dedent("""
    import sys
    import ldb
    from samba.auth import system_session
    from samba.dcerpc import security
    from samba.ndr import ndr_pack
    from samba.param import LoadParm
    from samba.samdb import SamDB

    conf, account, old_sid = sys.argv[1:4]
    lp = LoadParm()
    lp.load(conf)
    db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
    found = db.search(base=db.domain_dn(), expression="(sAMAccountName=%s)" % account, attrs=["dn"])
    message = ldb.Message(found[0].dn)
    message["sIDHistory"] = ldb.MessageElement(ndr_pack(security.dom_sid(old_sid)), ldb.FLAG_MOD_ADD, "sIDHistory")
    db.modify(message, controls=["relax:0"])
""")


@dataclass
class SambaDC:
    url: str
    ca_file: Path
    bind_dn: str
    password: str
    domain_sid: str
    sids: dict[str, str]  # sAMAccountName -> objectSid, as samba-tool shows them
    deleted_sid: str
    timings: dict[str, float] = field(default_factory=dict)

    def connect(self, **options) -> LdapSource:
        options.setdefault("ca_file", self.ca_file)
        options.setdefault("server_name", SERVER_NAME)
        return LdapSource.connect(options.pop("url", self.url), options.pop("bind_dn", self.bind_dn),
                                  options.pop("password", self.password), **options)


def _unavailable() -> str | None:
    """Why a Samba DC cannot run here, or None."""
    missing = [tool for tool in ("samba", "samba-tool") if shutil.which(tool) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed (Debian: apt-get install samba samba-dsdb-modules "
                "samba-ad-provision samba-vfs-modules)")
    if os.geteuid() != 0:
        return "a Samba AD DC needs root (ports 389 and 636)"
    for port in (389, 636):
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((LOOPBACK, port)) == 0:
                return f"{LOOPBACK}:{port} is already in use (another LDAP server is running)"
    return None


def _skip_or_fail(reason: str):
    if os.environ.get("ACLSCAN_REQUIRE_SAMBA") == "1" or os.environ.get("ACLSCAN_REQUIRE_ALL") == "1":
        pytest.fail(f"Samba DC required (ACLSCAN_REQUIRE_SAMBA=1) but unavailable: {reason}")
    pytest.skip(f"Samba DC unavailable: {reason}")


def _samba_python() -> str:
    """The interpreter samba-tool runs with: the one that has Samba's Python bindings."""
    first = Path(shutil.which("samba-tool")).read_text(errors="replace").splitlines()[0]
    interpreter = first[2:].strip().split()[0] if first.startswith("#!") else "python3"
    return interpreter if os.path.isabs(interpreter) else shutil.which(interpreter) or "/usr/bin/python3"


def _clean_env() -> dict[str, str]:
    """The environment without this test run's virtualenv, for Samba's tools."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":")
                           if not os.environ.get("VIRTUAL_ENV") or not p.startswith(os.environ["VIRTUAL_ENV"]))
    return env


def _run(args: list[str], what: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=_clean_env(), timeout=120, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout + done.stderr


def _object_sid(conf: Path, kind: str, name: str) -> str:
    out = _run(["samba-tool", kind, "show", name, "-s", str(conf), "--attributes=objectSid"], f"{kind} show {name}")
    match = re.search(r"^objectSid: (S-1-5-21-[\d-]+)$", out, re.M)
    assert match, out
    return match.group(1)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((LOOPBACK, port)) == 0


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory) -> SambaDC:
    reason = _unavailable()
    if reason:
        _skip_or_fail(reason)
    timings: dict[str, float] = {}
    began = time.monotonic()
    target = tmp_path_factory.mktemp("samba_dc")
    conf = target / "etc" / "smb.conf"
    options = {
        "interfaces": LOOPBACK,
        "bind interfaces only": "yes",
        "server services": "ldap",  # no SMB, KDC, DNS, RPC: LDAP (and LDAPS) only
        "tls enabled": "yes",
        "log file": str(target / "log" / "%m.log"),
        "pid directory": str(target / "run"),
        "ncalrpc dir": str(target / "run" / "ncalrpc"),
        "winbindd socket directory": str(target / "run" / "winbindd"),
    }
    for directory in ("log", "run"):
        (target / directory).mkdir()
    try:
        out = _run(["samba-tool", "domain", "provision", f"--realm={REALM}", f"--domain={NETBIOS}",
                    f"--host-name={HOST_NAME}", "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307",
                    f"--adminpass={ADMIN_PASSWORD}", f"--targetdir={target}", f"--host-ip={LOOPBACK}"]
                   + [f"--option={k}={v}" for k, v in options.items()], "samba-tool domain provision")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        _skip_or_fail(str(exc))
    match = re.search(r"DOMAIN SID:\s+(S-1-5-21-\d+-\d+-\d+)", out)
    assert match, out[-2000:]
    domain_sid = match.group(1)
    timings["provision"] = time.monotonic() - began

    step = time.monotonic()
    s = ["-s", str(conf)]
    for user in ("alice", "bob", "carol", "dave"):
        _run(["samba-tool", "user", "create", user, USER_PASSWORD, *s], f"user create {user}")
    _run(["samba-tool", "group", "add", "Engineering", *s], "group add Engineering")
    _run(["samba-tool", "computer", "create", "WS01", *s], "computer create WS01")
    sids = {name: _object_sid(conf, "user", name) for name in ("alice", "bob", "dave")}
    sids["Engineering"] = _object_sid(conf, "group", "Engineering")
    sids["WS01$"] = _object_sid(conf, "computer", "WS01")
    deleted_sid = _object_sid(conf, "user", "carol")
    _run(["samba-tool", "user", "delete", "carol", *s], "user delete carol")
    _run([_samba_python(), "-c", SID_HISTORY_SCRIPT, str(conf), "dave", OLD_SID], "writing dave's sIDHistory")
    timings["accounts"] = time.monotonic() - step

    step = time.monotonic()
    log = open(target / "log" / "samba.stdout", "wb")
    # -i: in the foreground, logging to stdout, until its standard input closes.
    process = subprocess.Popen(["samba", "-i", "-M", "single", *s], stdin=subprocess.PIPE, stdout=log,
                               stderr=subprocess.STDOUT, env=_clean_env(), start_new_session=True)
    ca_file = target / "private" / "tls" / "ca.pem"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (_port_open(636) and ca_file.exists()):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = " | ".join((target / "log" / "samba.stdout").read_text(errors="replace").splitlines()[-5:])
                _skip_or_fail(f"samba did not start listening on {LOOPBACK}:636 "
                              f"({'exit ' + str(process.returncode) if process.poll() is not None else 'timeout'}): "
                              f"{tail}")
            time.sleep(0.1)
        timings["start"] = time.monotonic() - step
        timings["total setup"] = time.monotonic() - began
        yield SambaDC(f"ldaps://{LOOPBACK}", ca_file, f"Administrator@{REALM.lower()}", ADMIN_PASSWORD,
                      domain_sid, sids, deleted_sid, timings)
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    """Close samba's stdin (it shuts down), then TERM and KILL its process group if it lingers."""
    try:
        process.stdin.close()
    except OSError:
        pass
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            continue
    # No stray process of the group may outlive the session.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- against the domain controller ------------------------------------------------------------

def test_fixture_setup_reports_its_steps(samba_dc):
    """The setup's steps are timed for the log (speed is measured by benchmarks, never
    asserted here): provision, accounts, start."""
    print(" ".join(f"{k}={v:.1f}s" for k, v in samba_dc.timings.items()))
    assert "total setup" in samba_dc.timings and samba_dc.timings["total setup"] > 0


def test_accounts_and_sids_match_samba_tool(samba_dc):
    source = samba_dc.connect()
    assert isinstance(source, AccountSource)
    [authority] = source.authorities()
    assert (authority.sid, authority.name, authority.kind, authority.complete) == (
        samba_dc.domain_sid, NETBIOS, DOMAIN, True)
    assert authority.source == source.name == f"ldaps://{LOOPBACK}"
    kinds = {"alice": USER, "bob": USER, "dave": USER, "Engineering": GROUP, "WS01$": COMPUTER}
    for name, sid in samba_dc.sids.items():
        account = source.lookup(sid)
        assert account is not None, name
        assert (account.name, account.kind, account.domain) == (name, kinds[name], NETBIOS)
        assert account.qualified_name == f"{NETBIOS}\\{name}"
    by_name = {a.name: a for a in source.accounts()}
    # What every domain has: Administrator (500), krbtgt (502), Domain Admins (512), Domain Users (513).
    for name, rid in (("Administrator", 500), ("krbtgt", 502), ("Domain Admins", 512), ("Domain Users", 513)):
        assert by_name[name].sid == f"{samba_dc.domain_sid}-{rid}"
    assert by_name["Domain Admins"].kind == GROUP
    # The DC's BUILTIN groups (S-1-5-32-*) are its own local groups, not the domain's accounts.
    assert not [a for a in source.accounts() if not a.sid.startswith(samba_dc.domain_sid + "-")]


def test_deleted_user_is_absent(samba_dc):
    source = samba_dc.connect()
    assert source.lookup(samba_dc.deleted_sid) is None
    assert "carol" not in {a.name for a in source.accounts()}
    assert source.authorities()[0].complete  # so the classifier may call the deleted RID an orphan


def test_sid_history(samba_dc):
    dave = samba_dc.connect().lookup(samba_dc.sids["dave"])
    assert dave.sid_history == (OLD_SID,)
    assert samba_dc.connect().lookup(samba_dc.sids["alice"]).sid_history == ()


def test_paging_returns_every_account(samba_dc):
    whole = {a.sid for a in samba_dc.connect().accounts()}
    assert len(whole) > 10
    assert {a.sid for a in samba_dc.connect(page_size=3).accounts()} == whole


def test_narrower_base_is_not_complete(samba_dc):
    source = samba_dc.connect(base_dn=f"CN=Computers,{BASE_DN}")
    assert {a.name for a in source.accounts()} == {"WS01$"}
    assert not source.authorities()[0].complete
    assert source.authorities()[0].sid == samba_dc.domain_sid


@pytest.mark.parametrize("bind_dn", [f"CN=Administrator,CN=Users,{BASE_DN}", f"{NETBIOS}\\Administrator"])
def test_bind_dn_forms(samba_dc, bind_dn):
    assert samba_dc.connect(bind_dn=bind_dn).lookup(samba_dc.sids["alice"]).name == "alice"


def test_insecure_needs_no_ca(samba_dc):
    source = samba_dc.connect(ca_file=None, server_name=None, insecure=True)
    assert source.lookup(samba_dc.sids["bob"]).name == "bob"


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text and len(text) < 300, text
    return text


def test_bad_password(samba_dc):
    with pytest.raises(DirectoryAuthFailed) as exc:
        samba_dc.connect(password="not-the-password")
    text = _one_line(exc)
    assert "invalid credentials" in text and samba_dc.bind_dn in text and "not-the-password" not in text
    assert exc.value.exit_code == 13


def test_untrusted_certificate(samba_dc):
    with pytest.raises(UntrustedCertificate) as exc:
        samba_dc.connect(ca_file=None)
    text = _one_line(exc)
    assert "--ca-file" in text and "--insecure" in text
    assert exc.value.exit_code == 14


def test_certificate_for_another_name(samba_dc):
    """The CA is trusted but the certificate names the DC, not the address connected to."""
    with pytest.raises(UntrustedCertificate) as exc:
        samba_dc.connect(server_name=None)
    text = _one_line(exc)
    assert SERVER_NAME in text.lower() and LOOPBACK in text


def test_search_fails(samba_dc):
    with pytest.raises(DirectorySearchFailed) as exc:
        samba_dc.connect(base_dn=f"OU=Nowhere,{BASE_DN}")
    text = _one_line(exc)
    assert "noSuchObject" in text and "OU=Nowhere" in text
    assert exc.value.exit_code == 15


# --- failures that need no server -------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def test_unreachable_closed_port():
    port = _free_port()
    with pytest.raises(DirectoryUnreachable) as exc:
        LdapSource.connect(f"ldaps://{LOOPBACK}:{port}", "cn=x", "secret", insecure=True, timeout=2)
    text = _one_line(exc)
    assert "refused" in text and f"{LOOPBACK}:{port}" in text
    assert exc.value.exit_code == 12
    assert isinstance(exc.value, ConnectionError)


def test_unreachable_silent_server():
    """A port that accepts connections but never speaks: a timeout, not a hang."""
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(DirectoryUnreachable) as exc:
            LdapSource.connect(f"ldaps://{LOOPBACK}:{port}", "cn=x", "secret", insecure=True, timeout=1)
        assert time.monotonic() - started < 10
    assert "no answer within 1 s" in _one_line(exc)


def test_not_tls():
    """A server that answers in clear text (plain LDAP on the LDAPS port)."""
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer():
            connection, _ = listener.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(DirectoryUnreachable) as exc:
            LdapSource.connect(f"ldaps://{LOOPBACK}:{port}", "cn=x", "secret", insecure=True, timeout=2)
        thread.join(5)
    assert "TLS handshake failed" in _one_line(exc)


@pytest.mark.parametrize("url, message", [
    ("ldap://127.0.0.1", "use ldaps://"),
    ("http://127.0.0.1", "not an ldaps://HOST[:PORT] URL"),
    ("ldaps://127.0.0.1:99999", "not an ldaps://HOST[:PORT] URL"),
])
def test_bad_url(url, message):
    with pytest.raises(DirectoryError) as exc:
        LdapSource.connect(url, "cn=x", "secret")
    assert message in _one_line(exc)
    assert type(exc.value) is DirectoryError and exc.value.exit_code == 10


def test_empty_password_is_refused_before_connecting():
    with pytest.raises(DirectoryAuthFailed) as exc:
        LdapSource.connect(f"ldaps://{LOOPBACK}:{_free_port()}", "cn=x", "")
    assert "empty password" in _one_line(exc)


def test_missing_ca_file(tmp_path):
    with pytest.raises(DirectoryError) as exc:
        LdapSource.connect(f"ldaps://{LOOPBACK}", "cn=x", "secret", ca_file=tmp_path / "none.pem")
    assert "none.pem" in _one_line(exc)
