"""The SOFTWARE hive: which SID's profile lives where, and the image's setup state.

Keys read::

    Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\<SID>   ProfileImagePath
        (REG_EXPAND_SZ), State, Flags, Sid (binary); a key named <SID>.bak is the
        backup Windows keeps of a profile it could not load
    Microsoft\\Windows\\CurrentVersion\\Setup\\State            ImageState
        (IMAGE_STATE_COMPLETE, IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE, ...): the sysprep
        state Microsoft documents under "Detecting the State of a Windows Image"

ProfileList outlives the accounts: after a SID change or an account's deletion the
entry keeps the old SID, which is what maps an old SID to a profile folder and a name.
"""

from __future__ import annotations

from dataclasses import dataclass

from aclscan.errors import MalformedData
from aclscan.hives.registry import Hive, HiveSource, HiveStatus, RegKey, open_hive, printable
from aclscan.sd.sid import SID

__all__ = ["PROFILE_LIST", "Profile", "SoftwareInfo", "read_software", "software_from_hive"]

PROFILE_LIST = "Microsoft\\Windows NT\\CurrentVersion\\ProfileList"
SETUP_STATE = "Microsoft\\Windows\\CurrentVersion\\Setup\\State"


@dataclass(frozen=True)
class Profile:
    """A ProfileList entry: the SID whose profile lives at ``path``."""

    sid: str
    path: str | None  # ProfileImagePath as stored (environment variables unexpanded)
    state: int | None = None
    flags: int | None = None
    backup: bool = False  # the key is <SID>.bak

    @property
    def folder_name(self) -> str | None:
        """The last part of the path (``C:\\Users\\Ken`` -> ``Ken``): usually the account's
        name when the profile was made."""
        if not self.path:
            return None
        return self.path.rstrip("\\/").replace("/", "\\").rsplit("\\", 1)[-1] or None


@dataclass(frozen=True)
class SoftwareInfo:
    """What a SOFTWARE hive says about profiles and the image's state."""

    profiles: tuple[Profile, ...] = ()
    profiles_directory: str | None = None  # ProfileList\\ProfilesDirectory
    image_state: str | None = None  # Setup\\State\\ImageState
    status: HiveStatus | None = None
    problems: tuple[str, ...] = ()  # the hive's problems and the records skipped, one line each

    def profile(self, sid: str) -> Profile | None:
        return next((p for p in self.profiles if p.sid == sid and not p.backup), None)


def _value(key: RegKey, name: str):
    value = key.value(name)
    if value is None:
        return None
    return value.text if value.text is not None else value.number


def _profile(key: RegKey, problems: list[str]) -> Profile:
    name = key.name
    backup = name.lower().endswith(".bak")
    text = name[:-4] if backup else name
    stored = key.value("Sid")
    sid: str | None = None
    try:
        sid = str(SID.from_string(text))
    except MalformedData:
        pass
    if stored is not None and stored.raw:
        try:
            from_value = str(SID.from_bytes(stored.raw))
        except MalformedData:
            problems.append(f"ProfileList\\{name}: its Sid value is no SID")
        else:
            if sid is None:
                sid = from_value
            elif from_value != sid:
                problems.append(f"ProfileList\\{name}: its Sid value says {from_value}")
    if sid is None:
        raise MalformedData(f"ProfileList\\{name}: neither the key name nor a Sid value is a SID")
    path = _value(key, "ProfileImagePath")
    state = _value(key, "State")
    flags = _value(key, "Flags")
    return Profile(
        sid,
        path if isinstance(path, str) else None,
        state if isinstance(state, int) else None,
        flags if isinstance(flags, int) else None,
        backup,
    )


def software_from_hive(hive: Hive) -> SoftwareInfo:
    """:func:`read_software` over a hive already open."""
    hive.require("SOFTWARE")
    problems: list[str] = []
    profiles: list[Profile] = []
    profile_list = hive.key(PROFILE_LIST)
    directory = None
    if profile_list is None:
        problems.append(f"no {PROFILE_LIST} key")
    else:
        found = _value(profile_list, "ProfilesDirectory")
        directory = found if isinstance(found, str) else None
        for key in profile_list.subkeys():
            try:
                profiles.append(_profile(key, problems))
            except MalformedData as exc:
                problems.append(f"{exc}; skipped")
    state = hive.key(SETUP_STATE)
    image_state = _value(state, "ImageState") if state is not None else None
    status = hive.status
    return SoftwareInfo(
        profiles=tuple(profiles),
        profiles_directory=directory,
        image_state=image_state if isinstance(image_state, str) else None,
        status=status,
        problems=tuple(status.problems) + tuple(printable(p) for p in problems),
    )


def read_software(source: HiveSource | Hive, **open_args) -> SoftwareInfo:
    """The ProfileList and setup state of a SOFTWARE hive (a path, bytes, a binary file
    or an open :class:`Hive`)."""
    hive = source if isinstance(source, Hive) else open_hive(source, expect="SOFTWARE", **open_args)
    return software_from_hive(hive)
