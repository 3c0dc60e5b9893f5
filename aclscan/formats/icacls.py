"""The plan as a file for ``icacls DIR /restore FILE`` (DIR: the volume's root, e.g. C:\\).

The format is the one ``icacls /save`` writes: UTF-16LE without a byte order
mark, CRLF line ends, and for each file two lines: its path relative to DIR
(backslashes), then its DACL in SDDL (the ``D:`` part: icacls saves and restores
DACLs only, not owners, groups, SACLs or integrity labels). Paths are in path
order, so a folder comes before what it contains: icacls restores a DACL through
SetNamedSecurityInfo, which derives the inherited ACEs of what is below again.

What the file cannot carry is left out and said on the side: owner, group and
SACL changes (the PowerShell script or SetACL do those), the registry actions, a
path with a line break (it would split the pair of lines), and the volume root
itself (it has no relative path).
"""

from __future__ import annotations

from aclscan.formats.plans import PlanContext, PlanOutput, dacl_sddl, sections_changed, windows_relative
from aclscan.formats.rows import terminal_safe
from aclscan.plan import DESCRIPTOR_KINDS, Plan


def encode(text: str) -> bytes:
    # surrogatepass: NTFS names are UTF-16 units, lone surrogates included; write them back as they were.
    return text.encode("utf-16-le", "surrogatepass")


def write_restore_file(plan: Plan, context: PlanContext, out: PlanOutput) -> None:
    dacl_of = {}
    beyond = set()
    for change in plan.descriptors:
        parts = sections_changed(change)
        if parts - {"dacl"}:
            beyond.update(change.actions)
        if "dacl" in parts:
            dacl_of[change.descriptor_key] = dacl_sddl(change.new_raw)
    if beyond:
        context.note(f"icacls: /restore sets DACLs only; the owner, group or SACL changes of {', '.join(sorted(beyond))} "
                     "need the PowerShell script (--format powershell) or SetACL (--format setacl)")
    registry = [a.id for a in plan.actions if a.kind not in DESCRIPTOR_KINDS and a.kind != "refuse"]
    if registry:
        context.note(f"icacls: {', '.join(registry)} change the registry: aclscan fix does that offline, the PowerShell script on the live machine")
    for planned in context.files():
        dacl = dacl_of.get(planned.change.descriptor_key)
        if dacl is None:
            continue
        relative, why = windows_relative(planned.path)
        if why is None and not relative:
            why = "the volume root has no path relative to it: set it with the PowerShell script"
        elif why is None and ("\n" in relative or "\r" in relative):
            why = "a line break in the path would split icacls' pair of lines"
        if why:
            context.omitted += 1
            context.note(f"icacls: left out {terminal_safe(planned.path)}: {why}")
            continue
        out.write(encode(relative + "\r\n" + dacl + "\r\n"))
