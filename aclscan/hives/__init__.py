"""Readers of the machine hives (SAM, SECURITY, SYSTEM, SOFTWARE) over aclscan's own regf parser.

Bytes, a path or a binary file in, frozen dataclasses out; nothing here classifies.
``registry`` parses regf bytes (``recovery`` applies transaction logs, ``files`` reads a
hive and its logs from disk at the edge). Every reader raises
:class:`~aclscan.errors.HiveError` for input that is no hive and
:class:`~aclscan.errors.WrongHive` for a hive of another kind; records it cannot read
are skipped and listed in the result's ``problems``.

Writing is apart: ``editor`` is the one module that changes hive bytes (offline, bytes in,
bytes out) and ``repoint`` re-points SIDs through it (LSA accounts, alias members, profiles,
descriptors); nothing here imports them.
"""

from aclscan.hives.registry import HIVE_KINDS, Hive, HiveStatus, RegKey, RegValue, open_hive
from aclscan.hives.sam import SamAlias, SamGroup, SamInfo, SamUser, read_sam
from aclscan.hives.security import ACCOUNT_RIGHTS, PRIVILEGES, LsaAccount, SecurityInfo, read_security
from aclscan.hives.software import Profile, SoftwareInfo, read_software
from aclscan.hives.system import Service, SystemInfo, read_system

__all__ = [
    "ACCOUNT_RIGHTS",
    "HIVE_KINDS",
    "PRIVILEGES",
    "Hive",
    "HiveStatus",
    "LsaAccount",
    "Profile",
    "RegKey",
    "RegValue",
    "SamAlias",
    "SamGroup",
    "SamInfo",
    "SamUser",
    "SecurityInfo",
    "Service",
    "SoftwareInfo",
    "SystemInfo",
    "open_hive",
    "read_hive",
    "read_sam",
    "read_security",
    "read_software",
    "read_system",
]


def read_hive(source, **open_args):
    """Whichever of the four readers fits the hive: a SamInfo, SecurityInfo, SystemInfo or
    SoftwareInfo. :class:`~aclscan.errors.WrongHive` for a hive of none of those kinds."""
    hive = open_hive(source, **open_args)
    readers = {"SAM": read_sam, "SECURITY": read_security, "SYSTEM": read_system, "SOFTWARE": read_software}
    hive.require()  # WrongHive for a hive of another kind, naming its root keys
    return readers[hive.kind](hive)
