"""Security Descriptor Definition Language (MS-DTYP 2.5.1): text <-> objects.

Output follows what Windows' ``ConvertSecurityDescriptorToStringSecurityDescriptor``
writes, e.g. ``O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICIID;0x1200a9;;;BU)S:(ML;;NW;;;LW)``:

* components in the order O, G, D, S; a component is absent when the descriptor
  has no owner / group, or SE_DACL_PRESENT / SE_SACL_PRESENT is clear;
* ACL flags in the order P, AR, AI (``D:PAI``, ``D:ARAI``); a NULL ACL is
  ``NO_ACCESS_CONTROL`` after the flags; an empty ACL is the flags alone (``D:``);
* ACE flags in bit order: OI CI NP IO ID CR SA FA (0x40 is TP in an access
  filter ACE);
* rights: empty for 0; NW/NR/NX for a mandatory label whose mask has only those
  bits; else FA FR FW FX KA KR KW KX when the mask equals one exactly; else the
  single-right letters in bit order (CC DC LC SW RP WP DT LO CR SD RC WD WO GA
  GX GW GR) when they cover every bit; else lower-case hex without padding
  (``0x1200a9``);
* SIDs: the two-letter alias for the fixed well-known SIDs of sddl.h, the
  numeric form for everything else, including domain-relative SIDs (Windows
  prints LA, DA, DU... only for its own domain; an offline scan has none);
* object GUIDs in lower case.

Input accepts every alias (domain-relative ones only with ``domain_sid``),
rights as letters, combinations of letters, hex or decimal, and whitespace
between components and ACEs.

Conditional expressions (callback and access filter ACEs) and claim attributes
(resource attribute ACEs) are delegated to :mod:`aclscan.sd.conditional`, imported
only when such an ACE is met.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

from aclscan.errors import MalformedData, SDDLError
from aclscan.sd.ace import ACE, AceFlags, AceType
from aclscan.sd.acl import ACL
from aclscan.sd.descriptor import Control, SecurityDescriptor
from aclscan.sd.sid import SID

__all__ = [
    "ace_from_sddl",
    "ace_to_sddl",
    "from_sddl",
    "mask_from_sddl",
    "mask_to_sddl",
    "sid_from_sddl",
    "sid_to_sddl",
    "to_sddl",
]

# --------------------------------------------------------------------------- SIDs

# sddl.h aliases of fixed SIDs (MS-DTYP 2.5.1.1; learn.microsoft.com "SID strings").
_FIXED_ALIASES: dict[str, str] = {
    "AA": "S-1-5-32-579",  # SDDL_ACCESS_CONTROL_ASSISTANCE_OPS
    "AC": "S-1-15-2-1",  # SDDL_ALL_APP_PACKAGES
    "AN": "S-1-5-7",  # SDDL_ANONYMOUS
    "AO": "S-1-5-32-548",  # SDDL_ACCOUNT_OPERATORS
    "AS": "S-1-18-1",  # SDDL_AUTHORITY_ASSERTED
    "AU": "S-1-5-11",  # SDDL_AUTHENTICATED_USERS
    "BA": "S-1-5-32-544",  # SDDL_BUILTIN_ADMINISTRATORS
    "BG": "S-1-5-32-546",  # SDDL_BUILTIN_GUESTS
    "BO": "S-1-5-32-551",  # SDDL_BACKUP_OPERATORS
    "BU": "S-1-5-32-545",  # SDDL_BUILTIN_USERS
    "CD": "S-1-5-32-574",  # SDDL_CERTSVC_DCOM_ACCESS
    "CG": "S-1-3-1",  # SDDL_CREATOR_GROUP
    "CO": "S-1-3-0",  # SDDL_CREATOR_OWNER
    "CY": "S-1-5-32-569",  # SDDL_CRYPTO_OPERATORS
    "ED": "S-1-5-9",  # SDDL_ENTERPRISE_DOMAIN_CONTROLLERS
    "ER": "S-1-5-32-573",  # SDDL_EVENT_LOG_READERS
    "ES": "S-1-5-32-576",  # SDDL_RDS_ENDPOINT_SERVERS
    "HA": "S-1-5-32-578",  # SDDL_HYPER_V_ADMINS
    "HI": "S-1-16-12288",  # SDDL_ML_HIGH
    "IS": "S-1-5-32-568",  # SDDL_IIS_USERS
    "IU": "S-1-5-4",  # SDDL_INTERACTIVE
    "LS": "S-1-5-19",  # SDDL_LOCAL_SERVICE
    "LU": "S-1-5-32-559",  # SDDL_PERFLOG_USERS
    "LW": "S-1-16-4096",  # SDDL_ML_LOW
    "ME": "S-1-16-8192",  # SDDL_ML_MEDIUM
    "MP": "S-1-16-8448",  # SDDL_ML_MEDIUM_PLUS
    "MS": "S-1-5-32-577",  # SDDL_RDS_MANAGEMENT_SERVERS
    "MU": "S-1-5-32-558",  # SDDL_PERFMON_USERS
    "NO": "S-1-5-32-556",  # SDDL_NETWORK_CONFIGURATION_OPS
    "NS": "S-1-5-20",  # SDDL_NETWORK_SERVICE
    "NU": "S-1-5-2",  # SDDL_NETWORK
    "OW": "S-1-3-4",  # SDDL_OWNER_RIGHTS
    "PO": "S-1-5-32-550",  # SDDL_PRINTER_OPERATORS
    "PS": "S-1-5-10",  # SDDL_PERSONAL_SELF
    "PU": "S-1-5-32-547",  # SDDL_POWER_USERS
    "RA": "S-1-5-32-575",  # SDDL_RDS_REMOTE_ACCESS_SERVERS
    "RC": "S-1-5-12",  # SDDL_RESTRICTED_CODE
    "RD": "S-1-5-32-555",  # SDDL_REMOTE_DESKTOP
    "RE": "S-1-5-32-552",  # SDDL_REPLICATOR
    "RM": "S-1-5-32-580",  # SDDL_REMOTE_MANAGEMENT_USERS
    "RU": "S-1-5-32-554",  # SDDL_ALIAS_PREW2KCOMPACC
    "SI": "S-1-16-16384",  # SDDL_ML_SYSTEM
    "SO": "S-1-5-32-549",  # SDDL_SERVER_OPERATORS
    "SS": "S-1-18-2",  # SDDL_SERVICE_ASSERTED
    "SU": "S-1-5-6",  # SDDL_SERVICE
    "SY": "S-1-5-18",  # SDDL_LOCAL_SYSTEM
    "UD": "S-1-5-84-0-0-0-0-0",  # SDDL_USER_MODE_DRIVERS
    "WD": "S-1-1-0",  # SDDL_EVERYONE
    "WR": "S-1-5-33",  # SDDL_WRITE_RESTRICTED_CODE
}
# Aliases relative to the (account) domain: domain SID + RID.
_DOMAIN_ALIASES: dict[str, int] = {
    "LA": 500,  # SDDL_LOCAL_ADMIN
    "LG": 501,  # SDDL_LOCAL_GUEST
    "DA": 512,  # SDDL_DOMAIN_ADMINISTRATORS
    "DU": 513,  # SDDL_DOMAIN_USERS
    "DG": 514,  # SDDL_DOMAIN_GUESTS
    "DC": 515,  # SDDL_DOMAIN_COMPUTERS
    "DD": 516,  # SDDL_DOMAIN_DOMAIN_CONTROLLERS
    "CA": 517,  # SDDL_CERT_SERV_ADMINISTRATORS
    "PA": 520,  # SDDL_GROUP_POLICY_ADMINS
    "CN": 522,  # SDDL_CLONEABLE_CONTROLLERS
    "AP": 525,  # SDDL_PROTECTED_USERS
    "KA": 526,  # SDDL_KEY_ADMINS
    "RS": 553,  # SDDL_RAS_SERVERS
}
# Aliases relative to the forest root domain.
_ROOT_DOMAIN_ALIASES: dict[str, int] = {
    "RO": 498,  # SDDL_ENTERPRISE_RO_DCs
    "SA": 518,  # SDDL_SCHEMA_ADMINISTRATORS
    "EA": 519,  # SDDL_ENTERPRISE_ADMINS
    "EK": 527,  # SDDL_ENTERPRISE_KEY_ADMINS
}
_ALIAS_OF_SID: dict[SID, str] = {SID.from_string(s): a for a, s in _FIXED_ALIASES.items()}
_SID_OF_ALIAS: dict[str, SID] = {a: SID.from_string(s) for a, s in _FIXED_ALIASES.items()}


def sid_to_sddl(sid: SID) -> str:
    """The SDDL form of a SID: its alias if it is a fixed well-known SID, else ``S-1-...``."""
    return _ALIAS_OF_SID.get(sid) or str(sid)


def _as_sid(value: SID | str | None, what: str) -> SID | None:
    if value is None or isinstance(value, SID):
        return value
    try:
        return SID.from_string(value)
    except MalformedData as exc:
        raise SDDLError(f"{what}: {exc}") from None


def sid_from_sddl(
    text: str, domain_sid: SID | str | None = None, root_domain_sid: SID | str | None = None
) -> SID:
    """Parse an SDDL SID: an alias (``BA``) or ``S-1-...``.

    Domain-relative aliases (``DA``, ``DU``, ``LA``...) need ``domain_sid``;
    forest-root ones (``EA``, ``SA``, ``RO``, ``EK``) use ``root_domain_sid``,
    falling back to ``domain_sid``. Raises :class:`SDDLError`.
    """
    token = text.strip()
    fixed = _SID_OF_ALIAS.get(token)
    if fixed is not None:
        return fixed
    domain = _as_sid(domain_sid, "domain_sid")
    if token in _DOMAIN_ALIASES or token in _ROOT_DOMAIN_ALIASES:
        if token in _ROOT_DOMAIN_ALIASES:
            domain = _as_sid(root_domain_sid, "root_domain_sid") or domain
            rid = _ROOT_DOMAIN_ALIASES[token]
        else:
            rid = _DOMAIN_ALIASES[token]
        if domain is None:
            raise SDDLError(f"SID alias {token} is relative to a domain: pass domain_sid")
        try:
            return SID(domain.revision, domain.authority, domain.sub_authorities + (rid,))
        except MalformedData as exc:
            raise SDDLError(f"SID alias {token}: {exc}") from None
    if token[:2] in ("S-", "s-"):
        try:
            return SID.from_string(token)
        except MalformedData as exc:
            raise SDDLError(f"bad SID in SDDL: {exc}") from None
    raise SDDLError(f"unknown SID alias {token!r}")


# --------------------------------------------------------------------------- rights

# Single rights, in the bit order Windows writes them (CC first, GR last).
_RIGHT_BITS: tuple[tuple[int, str], ...] = (
    (0x00000001, "CC"),  # ADS_RIGHT_DS_CREATE_CHILD
    (0x00000002, "DC"),  # ADS_RIGHT_DS_DELETE_CHILD
    (0x00000004, "LC"),  # ADS_RIGHT_ACTRL_DS_LIST
    (0x00000008, "SW"),  # ADS_RIGHT_DS_SELF
    (0x00000010, "RP"),  # ADS_RIGHT_DS_READ_PROP
    (0x00000020, "WP"),  # ADS_RIGHT_DS_WRITE_PROP
    (0x00000040, "DT"),  # ADS_RIGHT_DS_DELETE_TREE
    (0x00000080, "LO"),  # ADS_RIGHT_DS_LIST_OBJECT
    (0x00000100, "CR"),  # ADS_RIGHT_DS_CONTROL_ACCESS
    (0x00010000, "SD"),  # DELETE
    (0x00020000, "RC"),  # READ_CONTROL
    (0x00040000, "WD"),  # WRITE_DAC
    (0x00080000, "WO"),  # WRITE_OWNER
    (0x10000000, "GA"),  # GENERIC_ALL
    (0x20000000, "GX"),  # GENERIC_EXECUTE
    (0x40000000, "GW"),  # GENERIC_WRITE
    (0x80000000, "GR"),  # GENERIC_READ
)
_RIGHT_BITS_COVER = sum(bit for bit, _ in _RIGHT_BITS)
# Whole rights, written only when the mask equals one exactly (first match wins).
_WHOLE_RIGHTS: tuple[tuple[str, int], ...] = (
    ("FA", 0x001F01FF),  # FILE_ALL_ACCESS
    ("FR", 0x00120089),  # FILE_GENERIC_READ
    ("FW", 0x00120116),  # FILE_GENERIC_WRITE
    ("FX", 0x001200A0),  # FILE_GENERIC_EXECUTE
    ("KA", 0x000F003F),  # KEY_ALL_ACCESS
    ("KR", 0x00020019),  # KEY_READ
    ("KW", 0x00020006),  # KEY_WRITE
    ("KX", 0x00020019),  # KEY_EXECUTE (== KEY_READ, so Windows writes KR)
)
# Mandatory label policy bits (SYSTEM_MANDATORY_LABEL_NO_*_UP).
_LABEL_BITS: tuple[tuple[int, str], ...] = ((0x1, "NW"), (0x2, "NR"), (0x4, "NX"))
_RIGHT_TOKENS: dict[str, int] = {
    **{name: bit for bit, name in _RIGHT_BITS},
    **dict(_WHOLE_RIGHTS),
    **{name: bit for bit, name in _LABEL_BITS},
}


def mask_to_sddl(mask: int, ace_type: int = AceType.ACCESS_ALLOWED_ACE_TYPE) -> str:
    """The SDDL rights field for ``mask`` in an ACE of ``ace_type`` (see module notes)."""
    if mask == 0:
        return ""
    if ace_type == AceType.SYSTEM_MANDATORY_LABEL_ACE_TYPE and not mask & ~0x7:
        return "".join(name for bit, name in _LABEL_BITS if mask & bit)
    for name, value in _WHOLE_RIGHTS:
        if mask == value:
            return name
    if not mask & ~_RIGHT_BITS_COVER:
        return "".join(name for bit, name in _RIGHT_BITS if mask & bit)
    return f"0x{mask:x}"


def mask_from_sddl(text: str) -> int:
    """Parse an SDDL rights field: letters (``FA``, ``CCDCLC``), hex (``0x1200a9``) or decimal."""
    token = text.strip()
    if not token:
        return 0
    if token[:2] in ("0x", "0X"):
        try:
            value = int(token[2:], 16)
        except ValueError:
            raise SDDLError(f"bad hex access mask {token!r}") from None
    elif token.isdigit():
        value = int(token)
    else:
        if len(token) % 2:
            raise SDDLError(f"bad access rights {token!r}")
        value = 0
        for i in range(0, len(token), 2):
            right = _RIGHT_TOKENS.get(token[i : i + 2])
            if right is None:
                raise SDDLError(f"unknown access right {token[i:i + 2]!r} in {token!r}")
            value |= right
    if value > 0xFFFFFFFF:
        raise SDDLError(f"access mask {token!r} does not fit in 32 bits")
    return value


# --------------------------------------------------------------------------- ACEs

_T = AceType
_TYPE_TO_SDDL: dict[int, str] = {
    _T.ACCESS_ALLOWED_ACE_TYPE: "A",
    _T.ACCESS_DENIED_ACE_TYPE: "D",
    _T.SYSTEM_AUDIT_ACE_TYPE: "AU",
    _T.SYSTEM_ALARM_ACE_TYPE: "AL",
    _T.ACCESS_ALLOWED_OBJECT_ACE_TYPE: "OA",
    _T.ACCESS_DENIED_OBJECT_ACE_TYPE: "OD",
    _T.SYSTEM_AUDIT_OBJECT_ACE_TYPE: "OU",
    _T.SYSTEM_ALARM_OBJECT_ACE_TYPE: "OL",
    _T.ACCESS_ALLOWED_CALLBACK_ACE_TYPE: "XA",
    _T.ACCESS_DENIED_CALLBACK_ACE_TYPE: "XD",
    _T.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE: "ZA",
    _T.SYSTEM_AUDIT_CALLBACK_ACE_TYPE: "XU",
    _T.SYSTEM_MANDATORY_LABEL_ACE_TYPE: "ML",
    _T.SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE: "RA",
    _T.SYSTEM_SCOPED_POLICY_ID_ACE_TYPE: "SP",
    _T.SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE: "TL",
    _T.ACCESS_FILTER_ACE_TYPE: "FL",
}
_SDDL_TO_TYPE: dict[str, AceType] = {s: AceType(t) for t, s in _TYPE_TO_SDDL.items()}
_CONDITION_TYPES = frozenset(
    {
        _T.ACCESS_ALLOWED_CALLBACK_ACE_TYPE,
        _T.ACCESS_DENIED_CALLBACK_ACE_TYPE,
        _T.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
        _T.SYSTEM_AUDIT_CALLBACK_ACE_TYPE,
        _T.ACCESS_FILTER_ACE_TYPE,
    }
)
_SDDL_OBJECT_TYPES = frozenset(
    {
        _T.ACCESS_ALLOWED_OBJECT_ACE_TYPE,
        _T.ACCESS_DENIED_OBJECT_ACE_TYPE,
        _T.SYSTEM_AUDIT_OBJECT_ACE_TYPE,
        _T.SYSTEM_ALARM_OBJECT_ACE_TYPE,
        _T.ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE,
    }
)
# ACE flags in the order Windows writes them (bit order).
_FLAG_BITS: tuple[tuple[int, str], ...] = (
    (AceFlags.OBJECT_INHERIT_ACE, "OI"),
    (AceFlags.CONTAINER_INHERIT_ACE, "CI"),
    (AceFlags.NO_PROPAGATE_INHERIT_ACE, "NP"),
    (AceFlags.INHERIT_ONLY_ACE, "IO"),
    (AceFlags.INHERITED_ACE, "ID"),
    (AceFlags.CRITICAL_ACE_FLAG, "CR"),
    (AceFlags.SUCCESSFUL_ACCESS_ACE_FLAG, "SA"),
    (AceFlags.FAILED_ACCESS_ACE_FLAG, "FA"),
)
_FLAG_TOKENS: dict[str, int] = {name: int(bit) for bit, name in _FLAG_BITS}
_FLAG_TOKENS["TP"] = int(AceFlags.TRUST_PROTECTED_FILTER_ACE_FLAG)


def _flags_to_sddl(flags: int, ace_type: int) -> str:
    out = []
    for bit, name in _FLAG_BITS:
        if flags & bit:
            if bit == 0x40 and ace_type == AceType.ACCESS_FILTER_ACE_TYPE:
                name = "TP"
            out.append(name)
    return "".join(out)


def _flags_from_sddl(text: str) -> int:
    token = text.strip()
    if len(token) % 2:
        raise SDDLError(f"bad ACE flags {token!r}")
    value = 0
    for i in range(0, len(token), 2):
        bit = _FLAG_TOKENS.get(token[i : i + 2])
        if bit is None:
            raise SDDLError(f"unknown ACE flag {token[i:i + 2]!r} in {token!r}")
        value |= bit
    return value


def _conditional():
    try:
        from aclscan.sd import conditional
    except ImportError as exc:  # the module is written separately
        raise SDDLError(f"conditional expressions and claims need aclscan.sd.conditional: {exc}") from exc
    return conditional


def ace_to_sddl(ace: ACE) -> str:
    """One ACE in SDDL, parentheses included, e.g. ``(A;OICIID;0x1200a9;;;BU)``.

    Raises :class:`SDDLError` for ACE types SDDL cannot express (compound,
    denied/alarm callback object, alarm callback, unknown types).
    """
    return _ace_to_sddl(ace)


@lru_cache(maxsize=1 << 14)  # the same ACEs recur across many descriptors
def _ace_to_sddl(ace: ACE) -> str:
    name = _TYPE_TO_SDDL.get(ace.ace_type)
    if name is None:
        label = ace.ace_type.name if isinstance(ace.ace_type, AceType) else f"AceType {ace.ace_type:#x}"
        raise SDDLError(f"SDDL cannot express an ACE of type {label}")
    fields = [
        name,
        _flags_to_sddl(ace.flags, ace.ace_type),
        mask_to_sddl(ace.mask, ace.ace_type),
        str(ace.object_type) if ace.object_type is not None else "",
        str(ace.inherited_object_type) if ace.inherited_object_type is not None else "",
        sid_to_sddl(ace.sid),
    ]
    if ace.ace_type in _CONDITION_TYPES:
        if ace.application_data:
            fields.append(_conditional().conditional_to_sddl(ace.application_data))
    elif ace.ace_type == AceType.SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE:
        if ace.application_data:
            fields.append(_conditional().claim_to_sddl(ace.application_data))
    return "(" + ";".join(fields) + ")"


def _guid(text: str, what: str) -> uuid.UUID | None:
    token = text.strip()
    if not token:
        return None
    try:
        return uuid.UUID(token)
    except ValueError:
        raise SDDLError(f"bad {what} GUID {token!r}") from None


def ace_from_sddl(
    text: str, domain_sid: SID | str | None = None, root_domain_sid: SID | str | None = None
) -> ACE:
    """Parse one SDDL ACE, with or without its enclosing parentheses."""
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    fields = body.split(";", 6)
    if len(fields) < 6:
        raise SDDLError(f"ACE {text!r} has {len(fields)} fields, needs 6")
    type_name = fields[0].strip()
    ace_type = _SDDL_TO_TYPE.get(type_name)
    if ace_type is None:
        raise SDDLError(f"unknown ACE type {type_name!r} in {text!r}")
    flags = _flags_from_sddl(fields[1])
    mask = mask_from_sddl(fields[2])
    object_type = _guid(fields[3], "object type")
    inherited = _guid(fields[4], "inherited object type")
    if (object_type or inherited) and ace_type not in _SDDL_OBJECT_TYPES:
        raise SDDLError(f"ACE type {type_name} takes no object GUIDs: {text!r}")
    sid = sid_from_sddl(fields[5], domain_sid, root_domain_sid)
    data = b""
    if len(fields) == 7:
        extra = fields[6].strip()
        if ace_type in _CONDITION_TYPES:
            data = _conditional().conditional_from_sddl(extra)
        elif ace_type == AceType.SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE:
            data = _conditional().claim_from_sddl(extra)
        else:
            raise SDDLError(f"ACE type {type_name} takes no seventh field: {text!r}")
    try:
        return ACE(ace_type, flags, mask, sid, object_type, inherited, application_data=data)
    except MalformedData as exc:
        raise SDDLError(f"{text!r}: {exc}") from None


# --------------------------------------------------------------------------- descriptors

_ACL_FLAGS = {
    "D": (Control.SE_DACL_PROTECTED, Control.SE_DACL_AUTO_INHERIT_REQ, Control.SE_DACL_AUTO_INHERITED),
    "S": (Control.SE_SACL_PROTECTED, Control.SE_SACL_AUTO_INHERIT_REQ, Control.SE_SACL_AUTO_INHERITED),
}
_NULL_ACL = "NO_ACCESS_CONTROL"


def _acl_to_sddl(tag: str, control: int, acl: ACL | None) -> str:
    protected, inherit_req, inherited = _ACL_FLAGS[tag]
    out = [tag, ":"]
    if control & protected:
        out.append("P")
    if control & inherit_req:
        out.append("AR")
    if control & inherited:
        out.append("AI")
    if acl is None:
        out.append(_NULL_ACL)
    else:
        out.extend(ace_to_sddl(ace) for ace in acl.aces)
    return "".join(out)


def to_sddl(sd: SecurityDescriptor) -> str:
    """The SDDL string of a descriptor, as Windows writes it (all four sections)."""
    out = []
    if sd.owner is not None:
        out.append("O:" + sid_to_sddl(sd.owner))
    if sd.group is not None:
        out.append("G:" + sid_to_sddl(sd.group))
    if sd.control & Control.SE_DACL_PRESENT:
        out.append(_acl_to_sddl("D", sd.control, sd.dacl))
    if sd.control & Control.SE_SACL_PRESENT:
        out.append(_acl_to_sddl("S", sd.control, sd.sacl))
    return "".join(out)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _is_tag(text: str, pos: int) -> bool:
    return pos + 1 < len(text) and text[pos] in "OGDS" and text[pos + 1] == ":"


def _ace_end(text: str, start: int) -> int:
    """Index just past the ``)`` that closes the ``(`` at ``start``; quotes are opaque."""
    depth = 0
    quoted = False
    for pos in range(start, len(text)):
        char = text[pos]
        if quoted:
            if char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return pos + 1
    raise SDDLError(f"unbalanced parentheses in ACE starting at {start}: {text[start:start + 60]!r}")


def from_sddl(
    text: str, domain_sid: SID | str | None = None, root_domain_sid: SID | str | None = None
) -> SecurityDescriptor:
    """Parse an SDDL string into a :class:`SecurityDescriptor` (canonical layout).

    The result is self-relative (SE_SELF_RELATIVE), with SE_DACL_PRESENT /
    SE_SACL_PRESENT set for each ``D:`` / ``S:`` section, as Windows'
    ``ConvertStringSecurityDescriptorToSecurityDescriptor`` builds it.
    """
    if not isinstance(text, str):
        raise SDDLError(f"SDDL must be str, not {type(text).__name__}")
    control = int(Control.SE_SELF_RELATIVE)
    found: dict[str, object] = {}
    pos = _skip_space(text, 0)
    while pos < len(text):
        if not _is_tag(text, pos):
            raise SDDLError(f"expected O:, G:, D: or S: at {pos}: {text[pos:pos + 30]!r}")
        tag = text[pos]
        if tag in found:
            raise SDDLError(f"SDDL has two {tag}: sections")
        pos += 2
        if tag in "OG":
            end = pos
            while end < len(text) and not _is_tag(text, end):
                end += 1
            found[tag] = sid_from_sddl(text[pos:end], domain_sid, root_domain_sid)
            pos = end
            continue
        protected, inherit_req, inherited = _ACL_FLAGS[tag]
        null = False
        while True:
            pos = _skip_space(text, pos)
            if text.startswith(_NULL_ACL, pos):
                null = True
                pos += len(_NULL_ACL)
            elif text.startswith("AR", pos):
                control |= inherit_req
                pos += 2
            elif text.startswith("AI", pos):
                control |= inherited
                pos += 2
            elif text.startswith("P", pos):
                control |= protected
                pos += 1
            else:
                break
        aces = []
        while pos < len(text) and text[pos] == "(":
            end = _ace_end(text, pos)
            aces.append(ace_from_sddl(text[pos:end], domain_sid, root_domain_sid))
            pos = _skip_space(text, end)
        if null and aces:
            raise SDDLError(f"{tag}: is {_NULL_ACL} but lists ACEs")
        control |= Control.SE_DACL_PRESENT if tag == "D" else Control.SE_SACL_PRESENT
        found[tag] = None if null else ACL(aces=tuple(aces))
        if pos < len(text) and not _is_tag(text, pos):
            raise SDDLError(f"unexpected text in {tag}: section at {pos}: {text[pos:pos + 30]!r}")
    return SecurityDescriptor(
        control=Control(control),
        owner=found.get("O"),
        group=found.get("G"),
        dacl=found.get("D"),
        sacl=found.get("S"),
    )
