"""The plan as a backup file for ``SetACL -on C:\\ -ot file -actn restore -bckp FILE``.

SetACL restores the lines its list action writes in SDDL form: UTF-16LE with a
byte order mark, CRLF line ends, one line per object, ``"PATH",1,"SDDL"``. The 1
is the object type (SE_OBJECT_TYPE's SE_FILE_OBJECT: a file or directory); PATH
is absolute (the drive given by ``--drive``, C: by default); SDDL is the whole
new descriptor, owner, group, DACL and SACL as the change has them (SetACL
restores what the line holds, enabling the privileges it needs).

The fields are quoted without an escape, so a path holding ``"`` or a line break
cannot be written: it is left out and said on the side, as are the registry
actions (only the PowerShell script does those).
"""

from __future__ import annotations

from aclscan.formats.icacls import encode
from aclscan.formats.plans import PlanContext, PlanOutput, windows_relative
from aclscan.formats.rows import terminal_safe
from aclscan.plan import DESCRIPTOR_KINDS, Plan

SE_FILE_OBJECT = 1


def write_backup_file(plan: Plan, context: PlanContext, out: PlanOutput) -> None:
    registry = [a.id for a in plan.actions if a.kind not in DESCRIPTOR_KINDS and a.kind != "refuse"]
    if registry:
        context.note(f"setacl: {', '.join(registry)} change the registry: aclscan fix does that offline, the PowerShell script on the live machine")
    drive = context.drive.rstrip("\\/")
    started = False
    for planned in context.files():
        relative, why = windows_relative(planned.path)
        if why is None and any(c in relative for c in '"\r\n'):
            why = "a double quote or line break cannot be written inside SetACL's quoted field"
        elif why is None and '"' in planned.change.new_sddl:
            why = "its new SDDL holds a double quote (a conditional ACE's string), which SetACL's field cannot carry"
        if why:
            context.omitted += 1
            context.note(f"setacl: left out {terminal_safe(planned.path)}: {why}")
            continue
        if not started:
            out.write(b"\xff\xfe")
            started = True
        line = f'"{drive}\\{relative}",{SE_FILE_OBJECT},"{planned.change.new_sddl}"\r\n'
        out.write(encode(line))
