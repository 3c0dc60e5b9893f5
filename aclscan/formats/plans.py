"""A plan, written in the format the user asked for: json, text, powershell, icacls, setacl.

Every format renders the same :class:`aclscan.plan.Plan`; the ones that list
files (powershell, icacls, setacl) stream them from the scan database through
:func:`aclscan.plan.iter_plan_files`, so a plan of millions of files is never
held in memory. Each format writes bytes (the Windows tools want UTF-16LE or a
BOM) to a :class:`PlanOutput` and says on the side, through ``note``, what it
had to leave out: a path the format cannot carry, an action only the live
machine's script can do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Callable, Iterator

from aclscan.plan import DescriptorChange, Plan, PlannedFile, iter_plan_files
from aclscan.sd.descriptor import Control, SecurityDescriptor
from aclscan.sd.sddl import from_sddl, to_sddl


class PlanFormat(str, enum.Enum):
    JSON = "json"
    TEXT = "text"
    POWERSHELL = "powershell"
    ICACLS = "icacls"
    SETACL = "setacl"


@dataclass
class PlanContext:
    """What a renderer may need besides the plan: the scan database (for the files and
    account names), the volume to write paths for, the drive letter the volume has on
    the live machine, and where to say what was left out."""

    db: object
    volume_id: int | None = None
    drive: str = "C:"
    note: Callable[[str], None] = lambda message: None
    omitted: int = 0  # paths a format could not carry (counted by the renderer)

    def files(self, change: DescriptorChange | None = None) -> Iterator[PlannedFile]:
        """The files of the plan's changes (or of one change), by path."""
        return iter_plan_files(self.db, self.plan_of(change), volume_id=self.volume_id)

    def plan_of(self, change: DescriptorChange | None) -> Plan:
        return self._plan if change is None else replace(self._plan, descriptors=(change,))

    _plan: Plan = field(default=None, repr=False)  # set by render()

    def account_name(self, sid: str) -> str | None:
        row = self.db.execute("SELECT name, domain FROM accounts WHERE sid = ? AND name IS NOT NULL "
                              "ORDER BY source LIMIT 1", [sid]).fetchone()
        if row is None:
            return None
        name, domain = row
        return f"{domain}\\{name}" if domain else name


class PlanOutput:
    """A binary sink opened on the first write: ``-o FILE`` is created only when a
    format has something to write."""

    def __init__(self, opener: Callable[[], BinaryIO]):
        self._opener = opener
        self._stream: BinaryIO | None = None
        self.written = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._stream is None:
            self._stream = self._opener()
        self._stream.write(data)
        self.written += len(data)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.flush()
            self._stream.close()


# --------------------------------------------------------------- shared helpers


def sections_changed(change: DescriptorChange) -> frozenset[str]:
    """Which parts of the descriptor the change rewrites: owner, group, dacl, sacl."""
    old = from_sddl(change.old_sddl)
    new = SecurityDescriptor.from_bytes(change.new_raw)
    dacl_bits = (Control.SE_DACL_PRESENT | Control.SE_DACL_PROTECTED | Control.SE_DACL_AUTO_INHERITED
                 | Control.SE_DACL_AUTO_INHERIT_REQ)
    sacl_bits = (Control.SE_SACL_PRESENT | Control.SE_SACL_PROTECTED | Control.SE_SACL_AUTO_INHERITED
                 | Control.SE_SACL_AUTO_INHERIT_REQ)
    parts = set()
    if old.owner != new.owner:
        parts.add("owner")
    if old.group != new.group:
        parts.add("group")
    if old.dacl != new.dacl or (old.control & dacl_bits) != (new.control & dacl_bits):
        parts.add("dacl")
    if old.sacl != new.sacl or (old.control & sacl_bits) != (new.control & sacl_bits):
        parts.add("sacl")
    return frozenset(parts)


def dacl_sddl(raw: bytes) -> str:
    """The ``D:`` part alone (flags and ACEs) of a self-relative descriptor."""
    sd = SecurityDescriptor.from_bytes(raw)
    control = sd.control & ~(Control.SE_SACL_PRESENT | Control.SE_SACL_PROTECTED | Control.SE_SACL_AUTO_INHERITED
                             | Control.SE_SACL_AUTO_INHERIT_REQ)
    return to_sddl(SecurityDescriptor(revision=sd.revision, control=control, dacl=sd.dacl))


def windows_relative(path: str) -> tuple[str | None, str | None]:
    """('Users\\Ken\\a.txt', None) for '/Users/Ken/a.txt', or (None, why) when Windows
    would read the path as another one: a name holding a backslash or a colon (a
    stream separator) names a different file there."""
    names = [n for n in path.split("/") if n]
    for name in names:
        if "\\" in name:
            return None, "a name with a backslash is another path on Windows"
        if ":" in name:
            return None, "a name with a colon names a stream on Windows"
    return "\\".join(names), None


def renderers():
    from aclscan.formats import icacls, plan_text, powershell, setacl

    return {
        PlanFormat.JSON: _write_json,
        PlanFormat.TEXT: plan_text.write_text,
        PlanFormat.POWERSHELL: powershell.write_script,
        PlanFormat.ICACLS: icacls.write_restore_file,
        PlanFormat.SETACL: setacl.write_backup_file,
    }


def _write_json(plan: Plan, context: PlanContext, out: PlanOutput) -> None:
    out.write(plan.to_json().encode("utf-8"))


def render(plan: Plan, fmt: PlanFormat | str, context: PlanContext, out: PlanOutput) -> None:
    context._plan = plan
    renderers()[PlanFormat(fmt)](plan, context, out)
