"""Descriptors Windows keeps inside registry values: the places of the four machine hives.

Each reader takes an open :class:`~aclscan.hives.registry.Hive` and returns
``(places, problems)``: a :class:`~aclscan.places.Place` for every value that holds a
self-relative security descriptor, and a :class:`~aclscan.places.PlaceProblem` for
every such value that cannot be read (wrong type, truncated, not a descriptor). A
reader never raises for what it finds inside the hive.

Where the descriptors are (``<CS>`` is the control set ``Select\\Current`` names)::

    SYSTEM    <CS>\\Services\\<name>\\Security             Security   service NAME
              <CS>\\Services\\LanmanServer\\Shares\\Security  <share>    share NAME (PATH), the
                                                           path from the REG_MULTI_SZ
                                                           Shares\\<share> ("Path=D:\\Finance")
              <CS>\\Control\\Print\\Printers\\<printer>       Security   printer NAME
    SOFTWARE  Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tasks\\{id}
                                                   SD         task PATH (its Path value)
              Classes\\AppID\\{id}     LaunchPermission, AccessPermission
                                     dcom AppID {id} (NAME) LaunchPermission
              Microsoft\\Ole          DefaultLaunchPermission, DefaultAccessPermission,
                                     MachineLaunchRestriction, MachineAccessRestriction
                                     dcom Ole DefaultLaunchPermission
    SAM       SAM\\Domains\\<Account|Builtin>\\<Users|Groups|Aliases>\\<RID hex>  V or C:
              the first entry of the value's table is the object's descriptor (layout
              in :mod:`aclscan.hives.sam`; libyal's winreg-kb documents it too)
                                     SAM user NAME, SAM group NAME, SAM alias NAME
    SECURITY  Policy\\Accounts\\<SID>\\SecDesc   default value: a bare self-relative
              descriptor, REG_NONE, no header (seen in Windows 7 and 10 hives)
                                     LSA account SID

Windows stores these descriptors as REG_BINARY, SECURITY's as REG_NONE; either type is
read anywhere, a value of any other type is a problem.

``Place.location`` is ``"<key path>|<value name>"``: the key path as
:meth:`Hive.key` takes it (from the hive's root, no root name, backslashes), a ``|``,
and the value's name (empty for the default value). For SAM places the value is V or
C and the descriptor is its table's first entry. ``Place.hive`` is the hive's kind
("SYSTEM", ...) unless the caller gives a ``label``. A LSA account's descriptor rarely
names the account itself; its rights are :mod:`aclscan.hives.security`'s business, so
the place carries no direct ``sid``.
"""

from __future__ import annotations

from aclscan.errors import HiveError, MalformedData
from aclscan.hives.registry import REG_BINARY, REG_NONE, Hive, RegKey, RegValue, printable
from aclscan.hives.sam import (
    _ALIAS_C_TABLE,
    _C_ENTRIES,
    _GROUP_C_TABLE,
    _USER_V_ENTRIES,
    _USER_V_NAME,
    _blob,
    _entries,
    _names,
    _rid_of,
    _utf16,
)
from aclscan.hives.system import current_control_set
from aclscan.places import DCOM, LSA_ACCOUNT, PRINTER, SAM_OBJECT, SERVICE, SHARE, TASK, Place, PlaceProblem
from aclscan.sd.descriptor import SecurityDescriptor

__all__ = [
    "DESCRIPTOR_TYPES",
    "OLE_VALUES",
    "dcom_places",
    "hive_places",
    "lsa_account_places",
    "printer_places",
    "sam_object_places",
    "security_descriptor",
    "service_places",
    "share_places",
    "software_places",
    "system_places",
    "task_cache_places",
]

# The value types a descriptor is stored as: REG_BINARY, and REG_NONE in SECURITY.
DESCRIPTOR_TYPES = (REG_BINARY, REG_NONE)

APPID_VALUES = ("LaunchPermission", "AccessPermission")
OLE_VALUES = ("DefaultLaunchPermission", "DefaultAccessPermission", "MachineLaunchRestriction",
              "MachineAccessRestriction")

TASK_CACHE = "Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tasks"
APPID = "Classes\\AppID"
OLE = "Microsoft\\Ole"

Found = tuple[list[Place], list[PlaceProblem]]


def location(key_path: str, value_name: str) -> str:
    """``"<key path>|<value name>"``, the form of :attr:`Place.location` for hives."""
    return f"{key_path}|{value_name}"


def security_descriptor(raw: bytes, value_type: int) -> tuple[bytes | None, str | None]:
    """(descriptor bytes, None) where ``raw`` of ``value_type`` is a self-relative
    descriptor that parses, else (None, why not)."""
    if value_type not in DESCRIPTOR_TYPES:
        return None, f"a value of type {value_type}, not REG_BINARY: no security descriptor"
    try:
        SecurityDescriptor.from_bytes(raw)
    except MalformedData as exc:
        return None, f"not a security descriptor: {exc}"
    return bytes(raw), None


def _hive_label(hive: Hive, label: str | None) -> str:
    return label or hive.kind or hive.label


class _Reader:
    """Collects the places and problems of one hive."""

    def __init__(self, hive: Hive, label: str | None) -> None:
        self.hive = _hive_label(hive, label)
        self.places: list[Place] = []
        self.problems: list[PlaceProblem] = []

    def problem(self, kind: str, where: str, reason: str) -> None:
        self.problems.append(PlaceProblem(kind, f"{self.hive} {printable(where)}", printable(reason)))

    def value(self, kind: str, path: str, key: RegKey, value: RegValue, **fields) -> None:
        """A place for ``value`` of ``key`` where it holds a descriptor, a problem otherwise."""
        where = location(key.path, value.name)
        descriptor, why = security_descriptor(value.raw, value.type)
        if why is not None:
            self.problem(kind, where, why)
            return
        self.places.append(Place(kind, path, self.hive, where, descriptor, **fields))

    def named_value(self, kind: str, path: str, key: RegKey, name: str) -> None:
        value = key.value(name)
        if value is not None:
            self.value(kind, path, key, value)

    def result(self) -> Found:
        return self.places, self.problems


# ---------------------------------------------------------------------------------------
# SYSTEM


def _control_set(hive: Hive, reader: _Reader, kind: str) -> RegKey | None:
    notes: list[str] = []
    try:
        _number, control_set = current_control_set(hive, notes)
    except HiveError as exc:
        reader.problem(kind, "Select", str(exc))
        return None
    return control_set


def service_places(hive: Hive, label: str | None = None) -> Found:
    """``service NAME``: each service's own descriptor (``Services\\NAME\\Security``)."""
    reader = _Reader(hive, label)
    control_set = _control_set(hive, reader, SERVICE)
    services = control_set.subkey("Services") if control_set is not None else None
    for service in services.subkeys() if services is not None else ():
        security = service.subkey("Security")
        if security is not None:
            reader.named_value(SERVICE, f"service {service.name}", security, "Security")
    return reader.result()


def _share_path(shares: RegKey, name: str) -> str | None:
    value = shares.value(name)
    for line in (value.strings or []) if value is not None else []:
        field, _, text = line.partition("=")
        if field.casefold() == "path" and text:
            return text
    return None


def share_places(hive: Hive, label: str | None = None) -> Found:
    """``share NAME (PATH)``: share permissions (``LanmanServer\\Shares\\Security``)."""
    reader = _Reader(hive, label)
    control_set = _control_set(hive, reader, SHARE)
    shares = control_set.find("Services\\LanmanServer\\Shares") if control_set is not None else None
    security = shares.subkey("Security") if shares is not None else None
    for value in security.values() if security is not None else ():
        path = _share_path(shares, value.name)
        human = f"share {value.name} ({path})" if path else f"share {value.name}"
        reader.value(SHARE, human, security, value)
    return reader.result()


def printer_places(hive: Hive, label: str | None = None) -> Found:
    """``printer NAME``: each printer's descriptor (``Control\\Print\\Printers\\NAME``)."""
    reader = _Reader(hive, label)
    control_set = _control_set(hive, reader, PRINTER)
    printers = control_set.find("Control\\Print\\Printers") if control_set is not None else None
    for printer in printers.subkeys() if printers is not None else ():
        reader.named_value(PRINTER, f"printer {printer.name}", printer, "Security")
    return reader.result()


def system_places(hive: Hive, label: str | None = None) -> Found:
    """Services, shares and printers of a SYSTEM hive."""
    return _together(hive, label, service_places, share_places, printer_places)


# ---------------------------------------------------------------------------------------
# SOFTWARE


def task_cache_places(hive: Hive, label: str | None = None) -> Found:
    """``task \\PATH``: each scheduled task's descriptor in the TaskCache (``SD``)."""
    reader = _Reader(hive, label)
    tasks = hive.key(TASK_CACHE)
    for task in tasks.subkeys() if tasks is not None else ():
        path_value = task.value("Path")
        task_path = path_value.text if path_value is not None else None
        reader.named_value(TASK, f"task {task_path or task.name}", task, "SD")
    return reader.result()


def dcom_places(hive: Hive, label: str | None = None) -> Found:
    """``dcom AppID {id} (NAME) LaunchPermission`` and the machine-wide ``dcom Ole ...``."""
    reader = _Reader(hive, label)
    appids = hive.key(APPID)
    for appid in appids.subkeys() if appids is not None else ():
        default = appid.value("")
        name = default.text if default is not None else None
        human = f"dcom AppID {appid.name} ({name})" if name else f"dcom AppID {appid.name}"
        for value_name in APPID_VALUES:
            reader.named_value(DCOM, f"{human} {value_name}", appid, value_name)
    ole = hive.key(OLE)
    for value_name in OLE_VALUES if ole is not None else ():
        reader.named_value(DCOM, f"dcom Ole {value_name}", ole, value_name)
    return reader.result()


def software_places(hive: Hive, label: str | None = None) -> Found:
    """Scheduled tasks (TaskCache) and DCOM permissions of a SOFTWARE hive."""
    return _together(hive, label, task_cache_places, dcom_places)


# ---------------------------------------------------------------------------------------
# SAM and SECURITY

# (container, what a person calls its objects, value, where that value's table starts,
# how many entries it has)
_SAM_OBJECTS = (
    ("Users", "user", "V", 0, _USER_V_ENTRIES),
    ("Groups", "group", "C", _GROUP_C_TABLE, _C_ENTRIES),
    ("Aliases", "alias", "C", _ALIAS_C_TABLE, _C_ENTRIES),
)
_SAM_NAME_ENTRY = {"V": _USER_V_NAME, "C": 1}


def _sam_object(reader: _Reader, key: RegKey, what: str, value_name: str, table: int, count: int,
                names: dict[int, str]) -> None:
    value = key.value(value_name)
    if value is None:
        return
    where = location(key.path, value_name)
    if value.type not in DESCRIPTOR_TYPES:
        reader.problem(SAM_OBJECT, where, f"a value of type {value.type}, not REG_BINARY")
        return
    try:
        entries, base = _entries(value.raw, table, count, f"{what} {key.name} {value_name}")
        raw = _blob(value.raw, base, entries[0], f"{what} {key.name} {value_name}")
        name = _utf16(_blob(value.raw, base, entries[_SAM_NAME_ENTRY[value_name]], f"{what} {key.name}"))
    except HiveError as exc:
        reader.problem(SAM_OBJECT, where, str(exc))
        return
    descriptor, why = security_descriptor(raw, REG_BINARY)
    if why is not None:
        reader.problem(SAM_OBJECT, where, why)
        return
    rid = _rid_of(key)
    name = name or names.get(rid, "") or key.name
    reader.places.append(Place(SAM_OBJECT, f"SAM {what} {name}", reader.hive, where, descriptor))


def sam_object_places(hive: Hive, label: str | None = None) -> Found:
    """``SAM user NAME`` / ``SAM group NAME`` / ``SAM alias NAME``: the descriptor of
    each user, group and alias of both SAM domains (Account and Builtin)."""
    reader = _Reader(hive, label)
    for domain_name in ("Account", "Builtin"):
        domain = hive.key(f"SAM\\Domains\\{domain_name}")
        for container_name, what, value_name, table, count in _SAM_OBJECTS if domain is not None else ():
            container = domain.subkey(container_name)
            if container is None:
                continue
            names = _names(container)
            for key in container.subkeys():
                if _rid_of(key) is not None:
                    _sam_object(reader, key, what, value_name, table, count, names)
    return reader.result()


def lsa_account_places(hive: Hive, label: str | None = None) -> Found:
    """``LSA account SID``: the descriptor of each ``Policy\\Accounts\\<SID>`` (its
    ``SecDesc`` key's default value)."""
    reader = _Reader(hive, label)
    accounts = hive.key("Policy\\Accounts")
    for account in accounts.subkeys() if accounts is not None else ():
        secdesc = account.subkey("SecDesc")
        if secdesc is not None:
            reader.named_value(LSA_ACCOUNT, f"LSA account {account.name}", secdesc, "")
    return reader.result()


# ---------------------------------------------------------------------------------------


def _together(hive: Hive, label: str | None, *readers) -> Found:
    places: list[Place] = []
    problems: list[PlaceProblem] = []
    for read in readers:
        found, wrong = read(hive, label)
        places += found
        problems += wrong
    return places, problems


_BY_KIND = {
    "SYSTEM": system_places,
    "SOFTWARE": software_places,
    "SAM": sam_object_places,
    "SECURITY": lsa_account_places,
}


def hive_places(hive: Hive, label: str | None = None) -> Found:
    """Every value-held descriptor of a machine hive, by its kind; ([], []) for a hive
    of another kind (a user's NTUSER.DAT keeps none)."""
    read = _BY_KIND.get(hive.kind or "")
    return read(hive, label) if read is not None else ([], [])
