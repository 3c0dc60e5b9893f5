"""Domain accounts from a live directory (Active Directory or Samba AD) over LDAPS, with ldap3.

:meth:`LdapSource.connect` binds with a simple bind over TLS (``ldaps://``; a
plain ``ldap://`` URL is refused, since a simple bind sends the password as is),
reads the root DSE (defaultNamingContext, configurationNamingContext), the
domain SID (the domain object's objectSid) and the NetBIOS name (the crossRef's
nETBIOSName under CN=Partitions), then lists every user, group and computer
with a paged subtree search. A search of the whole domain is a complete account
list (a missing RID is a deleted account; deleted objects are not returned
without the show-deleted control); a search under a narrower ``base_dn`` is not.

The server's certificate is verified against ``ca_file`` (or the system's CA
store without one) and must carry the host name of the URL, or ``server_name``
where the URL names the server otherwise (an IP address, an alias);
``insecure=True`` skips both checks. Each failure is one exception of
:mod:`aclscan.errors` with a one-line message:

==========================  =====  ==========================================
DirectoryUnreachable        12     refused, timed out, unknown host, no TLS
DirectoryAuthFailed         13     the bind was refused (invalidCredentials...)
UntrustedCertificate        14     verification failed, or issued to another name
DirectorySearchFailed       15     a search failed after the bind
DirectoryError              10     a URL or CA file that cannot be used
==========================  =====  ==========================================
"""

from __future__ import annotations

import math
import os
import re
import ssl
import warnings
from urllib.parse import unquote, urlsplit

from aclscan.accounts.domain import DomainEntry, DomainExport, DomainSource, entries_to_export, kind_of, netbios_from_dn
from aclscan.errors import (DirectoryAuthFailed, DirectoryError, DirectorySearchFailed, DirectoryUnreachable,
                            MalformedExport, UntrustedCertificate)

__all__ = ["LdapSource", "ACCOUNT_FILTER", "ACCOUNT_ATTRIBUTES"]

DEFAULT_PORT = 636
# Users (inetOrgPerson and computer derive from user; managed service accounts from
# computer), groups; foreign security principals have an objectSid but are another
# domain's, so they are not asked for.
ACCOUNT_FILTER = "(&(objectSid=*)(|(objectClass=user)(objectClass=group)))"
ACCOUNT_ATTRIBUTES = ("objectSid", "sAMAccountName", "sIDHistory", "objectClass", "groupType", "userAccountControl")
_PAGED_RESULTS = "1.2.840.113556.1.4.319"

# The "data" field of an AD invalidCredentials bind result (MS-ADTS / Windows
# logon error codes).
_AD_BIND_DATA = {
    "525": "no such user",
    "52e": "wrong password or user name",
    "530": "logon not permitted at this time",
    "531": "logon not permitted from this workstation",
    "532": "password expired",
    "533": "account disabled",
    "701": "account expired",
    "773": "the password must be changed",
    "775": "account locked out",
}


class LdapSource(DomainSource):
    """A DomainSource read from a live directory. Make one with :meth:`connect`."""

    def __init__(self, export: DomainExport, name: str | None = None, complete: bool | None = None, *,
                 netbios_name: str | None = None, base_dn: str | None = None):
        super().__init__(export, name, complete, netbios_name=netbios_name)
        self.base_dn = base_dn

    @classmethod
    def connect(cls, url: str, bind_dn: str, password: str, *, ca_file: str | os.PathLike | None = None,
                insecure: bool = False, base_dn: str | None = None, page_size: int = 500, timeout: float = 10,
                server_name: str | None = None) -> LdapSource:
        """Bind to ``url`` (``ldaps://HOST[:PORT][/BASE_DN]``) as ``bind_dn`` (a DN, user@domain or
        DOMAIN\\user) and read the domain's accounts.

        ``timeout`` (seconds) bounds the connection, the TLS handshake and each
        answer. The password comes from the caller (never a command-line argument).
        """
        import ldap3
        from ldap3.core import exceptions as lx

        host, port, url_base = _parse_url(url)
        base_dn = base_dn or url_base
        where = f"ldaps://{_url_host(host)}" + (f":{port}" if port != DEFAULT_PORT else "")
        if not password:
            raise DirectoryAuthFailed(f"{where}: empty password for {bind_dn} (a simple bind without one is "
                                      "anonymous)")
        if page_size < 1:
            raise DirectoryError(f"page size {page_size}: must be at least 1")
        if ca_file is not None and not insecure:
            if not os.path.isfile(ca_file) or not os.access(ca_file, os.R_OK):
                raise DirectoryError(f"CA file {ca_file}: not a readable file")
        if insecure:
            tls = ldap3.Tls(validate=ssl.CERT_NONE)
        else:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=os.fspath(ca_file) if ca_file else None,
                            valid_names=[server_name] if server_name else None)
        server = ldap3.Server(_url_host(host), port=port, use_ssl=True, tls=tls, get_info=ldap3.NONE,
                              connect_timeout=timeout)
        # ldap3 sets SO_RCVTIMEO from receive_timeout as whole seconds.
        connection = ldap3.Connection(server, user=bind_dn, password=password, authentication=ldap3.SIMPLE,
                                      receive_timeout=max(1, math.ceil(timeout)), auto_referrals=False,
                                      read_only=True, raise_exceptions=False)
        try:
            try:
                with warnings.catch_warnings():
                    # ldap3 checks the certificate's name with ssl.match_hostname (deprecated in 3.7+).
                    warnings.filterwarnings("ignore", "ssl.match_hostname", DeprecationWarning)
                    connection.open()
            except lx.LDAPException as exc:
                raise _open_failure(exc, where, host, timeout) from None
            try:
                bound = connection.bind()
            except lx.LDAPException as exc:
                raise DirectoryUnreachable(f"{where}: connection lost during the bind ({_one_line(exc)})") from None
            if not bound:
                raise _bind_failure(connection.result or {}, where, bind_dn)
            export = _read_domain(connection, where, base_dn, page_size, timeout)
        finally:
            try:
                connection.unbind()
            except Exception:  # closing a connection that failed to open
                pass
        return cls(export, where, export.complete, base_dn=base_dn)


# --- reading ---------------------------------------------------------------------------

def _read_domain(connection, where: str, base_dn: str | None, page_size: int, timeout: float) -> DomainExport:
    import ldap3

    root = _search_one(connection, where, "", "(objectClass=*)", ldap3.BASE,
                       ["defaultNamingContext", "configurationNamingContext", "dnsHostName"], timeout, "the root DSE")
    domain_dn = _first_text(root, "defaultNamingContext")
    if not domain_dn:
        raise DirectorySearchFailed(f"{where}: the root DSE has no defaultNamingContext (not an Active Directory "
                                    "domain controller?)")
    domain = _search_one(connection, where, domain_dn, "(objectClass=*)", ldap3.BASE, ["objectSid"], timeout,
                         f"the domain object {domain_dn}")
    raw_sid = _values(domain, "objectSid")
    if not raw_sid:
        raise DirectorySearchFailed(f"{where}: the domain object {domain_dn} has no objectSid (no rights to read it?)")
    domain_sid = _sid(raw_sid[0], where, domain_dn)

    netbios = None
    config_dn = _first_text(root, "configurationNamingContext")
    if config_dn:
        from ldap3.utils.conv import escape_filter_chars

        try:
            crossref = _search_one(connection, where, f"CN=Partitions,{config_dn}",
                                   f"(&(objectClass=crossRef)(nCName={escape_filter_chars(domain_dn)}))",
                                   ldap3.LEVEL, ["nETBIOSName"], timeout, "the domain's crossRef", optional=True)
        except DirectorySearchFailed:
            crossref = None
        netbios = _first_text(crossref, "nETBIOSName") if crossref else None

    search_base = base_dn or domain_dn
    complete = _same_dn(search_base, domain_dn)
    entries = []
    for entry in _paged_search(connection, where, search_base, page_size, timeout):
        found = _entry(entry, where)
        if found is not None:
            entries.append(found)
    warnings = [] if complete else [f"{where}: searched {search_base} only, not the whole domain {domain_dn}: "
                                    "not treated as the domain's complete account list"]
    try:
        return entries_to_export(entries, where, domain_sid=domain_sid, netbios_name=netbios or
                                 netbios_from_dn(domain_dn), dns_name=".".join(
                                     re.findall(r"DC=([^,]+)", domain_dn, re.I)).lower() or None,
                                 complete=complete, warnings=warnings)
    except MalformedExport as exc:
        raise DirectorySearchFailed(f"{where}: the search of {search_base} returned no account of the domain "
                                    f"({len(entries)} entries)") from exc


def _search_one(connection, where, base, search_filter, scope, attributes, timeout, what, optional=False):
    """The one entry a base (or narrow) search returns, or None where ``optional``."""
    from ldap3.core import exceptions as lx

    try:
        ok = connection.search(base, search_filter, search_scope=scope, attributes=attributes)
    except lx.LDAPException as exc:
        raise _search_exception(exc, where, what, timeout) from None
    if not ok:
        result = connection.result or {}
        if optional and result.get("description") in ("noSuchObject", "success"):
            return None
        raise DirectorySearchFailed(f"{where}: reading {what} failed: {_result_text(result)}")
    entries = [e for e in connection.response or [] if e.get("type") == "searchResEntry"]
    if not entries:
        if optional:
            return None
        raise DirectorySearchFailed(f"{where}: reading {what} returned nothing (no rights to read it?)")
    return entries[0]


def _paged_search(connection, where, base, page_size, timeout):
    """Every entry of the account search, page by page (RFC 2696 simple paged results)."""
    import ldap3
    from ldap3.core import exceptions as lx

    cookie = None
    while True:
        try:
            ok = connection.search(base, ACCOUNT_FILTER, search_scope=ldap3.SUBTREE,
                                   attributes=list(ACCOUNT_ATTRIBUTES), paged_size=page_size, paged_cookie=cookie)
        except lx.LDAPException as exc:
            raise _search_exception(exc, where, f"the accounts under {base}", timeout) from None
        if not ok:
            result = _result_text(connection.result or {})
            raise DirectorySearchFailed(f"{where}: the search of {base} failed: {result}")
        for entry in connection.response or []:
            if entry.get("type") == "searchResEntry":
                yield entry
        control = ((connection.result or {}).get("controls") or {}).get(_PAGED_RESULTS)
        cookie = control["value"]["cookie"] if control else None
        if not cookie:
            return


def _entry(entry: dict, where: str) -> DomainEntry | None:
    dn = entry.get("dn") or ""
    classes = [v.decode("utf-8", "replace") for v in _values(entry, "objectClass")]
    group_type = _int(_first_text(entry, "groupType"))
    kind = kind_of(classes, group_type)
    if kind is None:
        return None
    raw_sid = _values(entry, "objectSid")
    if not raw_sid:
        return None
    sid = _sid(raw_sid[0], where, dn)
    name = _first_text(entry, "sAMAccountName") or dn
    history = tuple(_sid(v, where, dn) for v in _values(entry, "sIDHistory"))
    control = _int(_first_text(entry, "userAccountControl")) or 0
    return DomainEntry(sid, name, kind, dn or None, history, bool(control & 0x2))


# --- failures --------------------------------------------------------------------------

def _open_failure(exc: Exception, where: str, host: str, timeout: float) -> Exception:
    """The aclscan error for a connection or TLS handshake that failed."""
    text = _one_line(exc)
    low = text.lower()
    if "certificate verify failed" in low or "certificate_verify_failed" in low:
        match = re.search(r"certificate verify failed: ([^(')\]]+)", text, re.I)
        reason = match.group(1).strip() if match else "verification failed"
        return UntrustedCertificate(f"{where}: the server's TLS certificate is not trusted ({reason}): pass "
                                    "--ca-file with the CA that issued it, or --insecure")
    if "doesn't match any name" in low:
        names = sorted(set(re.findall(r"\('(?:commonName|DNS|IP Address)', '([^']+)'\)", text)))
        issued = ", ".join(names) or "another name"
        return UntrustedCertificate(f"{where}: the server's TLS certificate is issued to {issued}, not {host}: "
                                    "connect by that name, or pass --insecure")
    if "timed out" in low or "timeout" in low:
        return DirectoryUnreachable(f"{where}: no answer within {timeout:g} s")
    if "refused" in low:
        return DirectoryUnreachable(f"{where}: connection refused (no LDAPS server on that port)")
    if "invalid server address" in low or "name or service not known" in low or "not known" in low:
        return DirectoryUnreachable(f"{where}: unknown host {host}")
    if "ssl" in low or "tls" in low or "wrong_version_number" in low:
        return DirectoryUnreachable(f"{where}: TLS handshake failed ({_shorten(text)}); is the port LDAPS?")
    return DirectoryUnreachable(f"{where}: cannot connect ({_shorten(text)})")


def _bind_failure(result: dict, where: str, bind_dn: str) -> Exception:
    description = result.get("description") or f"result {result.get('result')}"
    message = result.get("message") or ""
    if description == "invalidCredentials":
        match = re.search(r"\bdata ([0-9a-f]{3,4})\b", message, re.I)
        detail = _AD_BIND_DATA.get(match.group(1).lower()) if match else None
        suffix = f" ({detail})" if detail else ""
        return DirectoryAuthFailed(f"{where}: bind as {bind_dn} refused: invalid credentials{suffix}")
    return DirectoryAuthFailed(f"{where}: bind as {bind_dn} refused: {_result_text(result)}")


def _search_exception(exc: Exception, where: str, what: str, timeout: float) -> Exception:
    text = _one_line(exc)
    if "timed out" in text.lower() or "timeout" in text.lower():
        return DirectorySearchFailed(f"{where}: reading {what}: no answer within {timeout:g} s")
    return DirectorySearchFailed(f"{where}: reading {what} failed: {_shorten(text)}")


def _result_text(result: dict) -> str:
    description = result.get("description") or f"result {result.get('result')}"
    message = _shorten(result.get("message") or "")
    return f"{description} ({message})" if message else description


# --- small helpers -----------------------------------------------------------------------

def _parse_url(url: str) -> tuple[str, int, str | None]:
    if "://" not in url:
        url = "ldaps://" + url
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise DirectoryError(f"{url}: not an ldaps://HOST[:PORT] URL ({exc})") from None
    if parts.scheme.lower() == "ldap":
        raise DirectoryError(f"{url}: plain LDAP would send the password unencrypted; use ldaps://")
    if parts.scheme.lower() != "ldaps" or not parts.hostname:
        raise DirectoryError(f"{url}: not an ldaps://HOST[:PORT] URL")
    base = unquote(parts.path.lstrip("/")) or None
    return parts.hostname, port, base


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _values(entry: dict | None, attribute: str) -> list[bytes]:
    if not entry:
        return []
    wanted = attribute.casefold()
    for key, values in (entry.get("raw_attributes") or {}).items():
        if key.split(";", 1)[0].casefold() == wanted:
            return [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values]
    return []


def _first_text(entry: dict | None, attribute: str) -> str | None:
    values = _values(entry, attribute)
    return values[0].decode("utf-8", "replace") if values else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _sid(raw: bytes, where: str, dn: str) -> str:
    from aclscan.errors import MalformedSID
    from aclscan.sd.sid import SID

    try:
        sid = SID.from_bytes(raw)
        if sid.byte_length != len(raw):
            raise MalformedSID(f"{len(raw) - sid.byte_length} bytes after the SID")
        return str(sid)
    except MalformedSID as exc:
        raise DirectorySearchFailed(f"{where}: {dn}: the server returned a SID that is not valid ({exc})") from None


def _same_dn(a: str, b: str) -> bool:
    def norm(dn: str) -> str:
        return ",".join(part.strip() for part in dn.split(",")).casefold()

    return norm(a) == norm(b)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
