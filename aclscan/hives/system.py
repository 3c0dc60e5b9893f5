"""The SYSTEM hive: computer name, product type, services and their logon accounts.

Keys read (checked on a Windows 10 1709 SYSTEM hive in ../shared/data/windows)::

    Select                              Current: the number N of the control set in use
    ControlSet00N\\Control\\ComputerName\\ComputerName    ComputerName (REG_SZ)
    ControlSet00N\\Control\\ProductOptions               ProductType: WinNT (workstation),
                                        ServerNT (member or stand-alone server),
                                        LanmanNT (domain controller)
    ControlSet00N\\Services\\<name>      ObjectName (the logon account: LocalSystem,
                                        NT AUTHORITY\\LocalService, .\\user, DOMAIN\\user, or
                                        a driver object for drivers), ImagePath, Start, Type,
                                        ServiceSidType
    Setup                               CloneTag: when Windows last ran as a clone
    Setup\\Status\\SysprepStatus          GeneralizationState, CleanupState (sysprep)
"""

from __future__ import annotations

from dataclasses import dataclass

from aclscan.errors import HiveError
from aclscan.hives.registry import Hive, HiveSource, HiveStatus, RegKey, RegValue, open_hive, printable

__all__ = ["PRODUCT_TYPES", "Service", "SystemInfo", "current_control_set", "read_system", "system_from_hive"]

PRODUCT_TYPES = {"WinNT": "workstation", "ServerNT": "server", "LanmanNT": "domain controller"}


@dataclass(frozen=True)
class Service:
    """One key under ``Services``: a Win32 service or a driver."""

    name: str  # the key name: the service name NT SERVICE\\<name> derives from
    object_name: str | None = None  # ObjectName: the account it logs on as
    image_path: str | None = None
    start: int | None = None  # 0 boot, 1 system, 2 automatic, 3 manual, 4 disabled
    type: int | None = None  # 0x1 kernel driver, 0x2 file system driver, 0x10 own, 0x20 shared
    display_name: str | None = None
    service_sid_type: int | None = None  # 0 none, 1 unrestricted, 3 restricted

    @property
    def is_driver(self) -> bool:
        return self.type is not None and bool(self.type & 0x3) and not self.type & 0x30


@dataclass(frozen=True)
class SystemInfo:
    """What a SYSTEM hive says about the machine."""

    computer_name: str | None
    current_control_set: int  # Select\\Current
    product_type: str | None  # "WinNT", "ServerNT" or "LanmanNT"
    services: tuple[Service, ...] = ()
    sysprep_generalization_state: int | None = None  # Setup\\Status\\SysprepStatus
    sysprep_cleanup_state: int | None = None
    clone_tag: str | None = None  # Setup\\CloneTag
    status: HiveStatus | None = None
    problems: tuple[str, ...] = ()  # the hive's problems and the records skipped, one line each

    @property
    def is_domain_controller(self) -> bool:
        return self.product_type == "LanmanNT"

    def service(self, name: str) -> Service | None:
        folded = name.casefold()
        return next((s for s in self.services if s.name.casefold() == folded), None)


def _text(key: RegKey | None, name: str) -> str | None:
    value = key.value(name) if key is not None else None
    if value is None:
        return None
    if value.text is not None:
        return value.text
    strings = value.strings
    return " ".join(strings) if strings else None


def _number(key: RegKey | None, name: str) -> int | None:
    value: RegValue | None = key.value(name) if key is not None else None
    return None if value is None else value.number


def _service(key: RegKey) -> Service:
    return Service(
        name=key.name,
        object_name=_text(key, "ObjectName"),
        image_path=_text(key, "ImagePath"),
        start=_number(key, "Start"),
        type=_number(key, "Type"),
        display_name=_text(key, "DisplayName"),
        service_sid_type=_number(key, "ServiceSidType"),
    )


def current_control_set(hive: Hive, problems: list[str]) -> tuple[int, RegKey]:
    """(number, key) of the control set ``Select\\Current`` names (``Default`` where
    Current is missing, ControlSet001 where both are, which is added to ``problems``).
    :class:`HiveError` where the hive lacks that control set."""
    select = hive.key("Select")
    current = _number(select, "Current") or _number(select, "Default")
    if current is None:
        problems.append("Select has no Current value: ControlSet001 is read")
        current = 1
    control_set = hive.key(f"ControlSet{current:03d}")
    if control_set is None:
        raise HiveError(f"{hive.label}: Select\\Current names ControlSet{current:03d}, which the hive lacks")
    return current, control_set


def system_from_hive(hive: Hive) -> SystemInfo:
    """:func:`read_system` over a hive already open."""
    hive.require("SYSTEM")
    problems: list[str] = []
    current, control_set = current_control_set(hive, problems)
    computer_name = _text(control_set.find("Control\\ComputerName\\ComputerName"), "ComputerName")
    product_type = _text(control_set.find("Control\\ProductOptions"), "ProductType")
    if product_type is not None and product_type not in PRODUCT_TYPES:
        problems.append(f"ProductOptions\\ProductType {product_type!r} is none of WinNT, ServerNT, LanmanNT")
    services_key = control_set.subkey("Services")
    services = tuple(_service(key) for key in services_key.subkeys()) if services_key is not None else ()
    setup = hive.key("Setup")
    sysprep = hive.key("Setup\\Status\\SysprepStatus")
    status = hive.status
    return SystemInfo(
        computer_name=computer_name,
        current_control_set=current,
        product_type=product_type,
        services=services,
        sysprep_generalization_state=_number(sysprep, "GeneralizationState"),
        sysprep_cleanup_state=_number(sysprep, "CleanupState"),
        clone_tag=(_text(setup, "CloneTag") or "").strip() or None,
        status=status,
        problems=tuple(status.problems) + tuple(printable(p) for p in problems),
    )


def read_system(source: HiveSource | Hive, **open_args) -> SystemInfo:
    """The computer name, control set, product type and services of a SYSTEM hive (a
    path, bytes, a binary file or an open :class:`Hive`)."""
    hive = source if isinstance(source, Hive) else open_hive(source, expect="SYSTEM", **open_args)
    return system_from_hive(hive)
