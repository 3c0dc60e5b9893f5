"""The plan as a PowerShell script for the live machine (Windows PowerShell 5.1 and later).

Quoting. Every string the script carries from the scan (paths, SDDL, account,
group and service names) is a single-quoted (verbatim) literal: PowerShell
expands nothing inside one, neither ``$`` nor a backtick, and the only special
character is the single quote, escaped by doubling it. PowerShell's tokenizer
takes U+2018, U+2019, U+201A and U+201B as single quotes too
(``CharExtensions.IsSingleQuote``), so each of those is doubled as well. A
verbatim literal may span lines, but a line break inside one would not survive
an editor or a git checkout that rewrites line endings; so control characters
(and line or paragraph separators, and lone surrogates, which UTF-8 cannot
carry) are written as ``[char]0xNNNN`` joined to the literal parts:
``('a' + [char]0x000a + 'b')``. Text in comments (reasons, names) has its
control characters escaped, so nothing can end a comment early.

Encoding. UTF-8 with a byte order mark and CRLF line ends: without the BOM
Windows PowerShell 5.1 reads a script in the ANSI code page, where a UTF-8 byte
0x92 becomes U+2019, a quote.

Descriptors. For each distinct descriptor the plan changes, the script states the
expected old SDDL, the new SDDL and the paths that carry it (one block per
descriptor, not per file). Per path: Get-Acl -LiteralPath; the descriptor is
compared with the expected one; if it matches, SetSecurityDescriptorSddlForm and
Set-Acl -LiteralPath; if it already is the new one (a parent's change propagated
to it), nothing; otherwise a warning and the file is left alone.

Sections. Without -Audit, Get-Acl reads owner, group and DACL only: reading the
SACL needs SeSecurityPrivilege. So the comparison and the write cover
``Owner, Group, Access``, and ``Audit`` only for a descriptor whose SACL the plan
changes (then Get-Acl -Audit, with SeSecurityPrivilege enabled). Both sides of
the comparison are rendered by Windows itself (RawSecurityDescriptor.GetSddlForm
on the expected SDDL, GetSecurityDescriptorSddlForm on the file's), so aliases
Windows prefers (LA, DU...) cannot make equal descriptors look different.
Setting an owner other than oneself needs SeRestorePrivilege, which an
administrator holds but has disabled: the script enables it (and
SeTakeOwnershipPrivilege) through AdjustTokenPrivileges.
"""

from __future__ import annotations

import unicodedata

from aclscan.formats.plans import PlanContext, PlanOutput, sections_changed, windows_relative
from aclscan.formats.rows import terminal_safe
from aclscan.store import FILE_SOURCES
from aclscan.plan import (
    DETACH_PROFILE,
    GRANT_LSA_RIGHTS,
    HIVE_KINDS,
    REMOVE_ALIAS_MEMBER,
    REPLACE_ALIAS_MEMBER,
    REPOINT_PROFILE,
    REPOINT_SERVICE,
    REVOKE_LSA_RIGHTS,
    Action,
    DescriptorChange,
    Plan,
)

# What PowerShell's tokenizer reads as a single quote (CharExtensions.IsSingleQuote).
SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")


def _needs_code(char: str) -> bool:
    """Characters written as [char]0xNNNN instead of inside a literal."""
    code = ord(char)
    return (code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029)
            or unicodedata.category(char) == "Cs")


def ps_literal(text: str) -> str:
    """A PowerShell expression that evaluates to exactly ``text``."""
    parts: list[str] = []
    run: list[str] = []
    for char in text:
        if _needs_code(char):
            if run:
                parts.append("'" + "".join(run) + "'")
                run = []
            parts.append(f"[char]0x{ord(char):04x}")
        else:
            run.append(char + char if char in SINGLE_QUOTES else char)
    if run or not parts:
        parts.append("'" + "".join(run) + "'")
    return parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"


def ps_comment(text: str) -> str:
    """Text safe inside a ``#`` comment: no character can end the line."""
    return terminal_safe(str(text)).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_HELPERS = r"""
Set-StrictMode -Version 2
$ErrorActionPreference = 'Stop'
$base = $Root.TrimEnd('\')
$script:changed = 0; $script:already = 0; $script:drifted = 0; $script:failed = 0

if (-not ('AclscanPlanNative' -as [type])) {
    Add-Type -TypeDefinition @'
using System;
using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Security.Principal;

public static class AclscanPlanNative
{
    [StructLayout(LayoutKind.Sequential)]
    private struct LsaObjectAttributes
    {
        public int Length;
        public IntPtr RootDirectory;
        public IntPtr ObjectName;
        public uint Attributes;
        public IntPtr SecurityDescriptor;
        public IntPtr SecurityQualityOfService;
    }

    [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
    private struct LsaUnicodeString
    {
        public ushort Length;          // bytes, without the terminating NUL
        public ushort MaximumLength;
        [MarshalAs(UnmanagedType.LPWStr)] public string Buffer;
    }

    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct TokenPrivileges     // TOKEN_PRIVILEGES with one LUID_AND_ATTRIBUTES
    {
        public uint Count;
        public long Luid;
        public uint Attributes;
    }

    private const uint PolicyAllAccess = 0x000F0FFF;
    private const uint StatusObjectNameNotFound = 0xC0000034;

    [DllImport("advapi32.dll")]
    private static extern uint LsaOpenPolicy(IntPtr systemName, ref LsaObjectAttributes attributes, uint access, out IntPtr policy);
    [DllImport("advapi32.dll")]
    private static extern uint LsaAddAccountRights(IntPtr policy, byte[] sid, LsaUnicodeString[] rights, uint count);
    [DllImport("advapi32.dll")]
    private static extern uint LsaRemoveAccountRights(IntPtr policy, byte[] sid, [MarshalAs(UnmanagedType.U1)] bool allRights, LsaUnicodeString[] rights, uint count);
    [DllImport("advapi32.dll")]
    private static extern int LsaNtStatusToWinError(uint status);
    [DllImport("advapi32.dll")]
    private static extern uint LsaClose(IntPtr policy);
    [DllImport("advapi32.dll", SetLastError = true)]
    private static extern bool OpenProcessToken(IntPtr process, uint access, out IntPtr token);
    [DllImport("advapi32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
    private static extern bool LookupPrivilegeValue(string systemName, string name, out long luid);
    [DllImport("advapi32.dll", SetLastError = true)]
    private static extern bool AdjustTokenPrivileges(IntPtr token, bool disableAll, ref TokenPrivileges state, uint length, IntPtr previous, IntPtr returned);
    [DllImport("kernel32.dll")]
    private static extern IntPtr GetCurrentProcess();
    [DllImport("kernel32.dll")]
    private static extern bool CloseHandle(IntPtr handle);

    private static void Check(uint status)
    {
        if (status != 0) { throw new Win32Exception(LsaNtStatusToWinError(status)); }
    }

    private static byte[] SidBytes(string sid)
    {
        SecurityIdentifier identifier = new SecurityIdentifier(sid);
        byte[] bytes = new byte[identifier.BinaryLength];
        identifier.GetBinaryForm(bytes, 0);
        return bytes;
    }

    private static LsaUnicodeString[] Rights(string[] names)
    {
        LsaUnicodeString[] rights = new LsaUnicodeString[names.Length];
        for (int i = 0; i < names.Length; i++)
        {
            rights[i].Buffer = names[i];
            rights[i].Length = (ushort)(names[i].Length * 2);
            rights[i].MaximumLength = (ushort)(names[i].Length * 2 + 2);
        }
        return rights;
    }

    private static IntPtr OpenPolicy()
    {
        LsaObjectAttributes attributes = new LsaObjectAttributes();
        attributes.Length = Marshal.SizeOf(typeof(LsaObjectAttributes));
        IntPtr policy;
        Check(LsaOpenPolicy(IntPtr.Zero, ref attributes, PolicyAllAccess, out policy));
        return policy;
    }

    public static void AddRights(string sid, string[] names)
    {
        IntPtr policy = OpenPolicy();
        try { Check(LsaAddAccountRights(policy, SidBytes(sid), Rights(names), (uint)names.Length)); }
        finally { LsaClose(policy); }
    }

    public static void RemoveRights(string sid, string[] names)
    {
        IntPtr policy = OpenPolicy();
        try
        {
            uint status = LsaRemoveAccountRights(policy, SidBytes(sid), false, Rights(names), (uint)names.Length);
            // The SID holding no rights any more is what removal wants.
            if (status != StatusObjectNameNotFound) { Check(status); }
        }
        finally { LsaClose(policy); }
    }

    public static bool EnablePrivilege(string name)
    {
        IntPtr token;
        if (!OpenProcessToken(GetCurrentProcess(), 0x0028, out token)) { return false; }  // ADJUST_PRIVILEGES | QUERY
        try
        {
            TokenPrivileges state = new TokenPrivileges();
            state.Count = 1;
            state.Attributes = 2;  // SE_PRIVILEGE_ENABLED
            if (!LookupPrivilegeValue(null, name, out state.Luid)) { return false; }
            if (!AdjustTokenPrivileges(token, false, ref state, 0, IntPtr.Zero, IntPtr.Zero)) { return false; }
            return Marshal.GetLastWin32Error() == 0;  // 1300: the token does not hold it
        }
        finally { CloseHandle(token); }
    }
}
'@
}

function Format-PlanText([string]$Text) {
    # Paths may hold control characters: never echo them raw to the console.
    return ($Text -replace '[\x00-\x1f\x7f-\x9f]', '?')
}

function ConvertTo-WindowsSddl([string]$Sddl, [string]$Sections) {
    $descriptor = New-Object System.Security.AccessControl.RawSecurityDescriptor -ArgumentList $Sddl
    return $descriptor.GetSddlForm([System.Security.AccessControl.AccessControlSections]$Sections)
}

function Set-PlannedDescriptor([string]$Path, [string]$Old, [string]$New, [string]$Sections) {
    try {
        if ($Sections -like '*Audit*') { $acl = Get-Acl -LiteralPath $Path -Audit }
        else { $acl = Get-Acl -LiteralPath $Path }
        $current = $acl.GetSecurityDescriptorSddlForm([System.Security.AccessControl.AccessControlSections]$Sections)
        if ($current -eq $New) { $script:already++; return }
        if ($current -ne $Old) {
            Write-Warning ('changed since the scan, left as it is: ' + (Format-PlanText $Path))
            $script:drifted++
            return
        }
        if ($WhatIf) { Write-Host ('would rewrite: ' + (Format-PlanText $Path)); $script:changed++; return }
        $acl.SetSecurityDescriptorSddlForm($New, [System.Security.AccessControl.AccessControlSections]$Sections)
        Set-Acl -LiteralPath $Path -AclObject $acl
        $script:changed++
    } catch {
        Write-Warning ('failed: ' + (Format-PlanText $Path) + ': ' + (Format-PlanText $_.Exception.Message))
        $script:failed++
    }
}

function Grant-PlannedRights([string]$NewSid, [string]$OldSid, [string[]]$Rights) {
    if ($WhatIf) { Write-Host ('would grant ' + ($Rights -join ', ') + ' to ' + $NewSid + ', taking them from ' + $OldSid); return }
    try {
        [AclscanPlanNative]::AddRights($NewSid, $Rights)
        [AclscanPlanNative]::RemoveRights($OldSid, $Rights)
    } catch { Write-Warning ('LSA rights for ' + $NewSid + ': ' + $_.Exception.Message); $script:failed++ }
}

function Set-PlannedMember([string]$Group, [string]$NewSid, [string]$OldSid) {
    if ($WhatIf) { Write-Host ('would put ' + $NewSid + ' in place of ' + $OldSid + ' in ' + (Format-PlanText $Group)); return }
    try {
        try { Add-LocalGroupMember -Group $Group -Member $NewSid -ErrorAction Stop }
        catch { if ($_.FullyQualifiedErrorId -notlike 'MemberExists*') { throw } }
        try { Remove-LocalGroupMember -Group $Group -Member $OldSid -ErrorAction Stop }
        catch {
            # The LocalAccounts cmdlets cannot name a SID that resolves to no account; ADSI can.
            ([ADSI]('WinNT://./' + $Group + ',group')).Remove('WinNT://' + $OldSid)
        }
    } catch { Write-Warning ('group ' + (Format-PlanText $Group) + ': ' + $_.Exception.Message); $script:failed++ }
}

function Revoke-PlannedRights([string]$OldSid, [string[]]$Rights) {
    if ($WhatIf) { Write-Host ('would take ' + ($Rights -join ', ') + ' from ' + $OldSid); return }
    try { [AclscanPlanNative]::RemoveRights($OldSid, $Rights) }
    catch { Write-Warning ('LSA rights of ' + $OldSid + ': ' + $_.Exception.Message); $script:failed++ }
}

function Remove-PlannedMember([string]$Group, [string]$OldSid) {
    if ($WhatIf) { Write-Host ('would take ' + $OldSid + ' out of ' + (Format-PlanText $Group)); return }
    try {
        try { Remove-LocalGroupMember -Group $Group -Member $OldSid -ErrorAction Stop }
        catch { ([ADSI]('WinNT://./' + $Group + ',group')).Remove('WinNT://' + $OldSid) }
    } catch { Write-Warning ('group ' + (Format-PlanText $Group) + ': ' + $_.Exception.Message); $script:failed++ }
}

function Remove-PlannedProfileEntry([string]$OldSid) {
    # The folder and its files stay; only ProfileList's tie to the removed SID goes.
    $list = 'Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList'
    if ($WhatIf) { Write-Host ('would remove the ProfileList entry of ' + $OldSid); return }
    try { Remove-Item -LiteralPath ($list + '\' + $OldSid) -Recurse -ErrorAction Stop }
    catch { Write-Warning ('profile entry of ' + $OldSid + ': ' + $_.Exception.Message); $script:failed++ }
}

function Move-PlannedProfile([string]$OldSid, [string]$NewSid) {
    # ProfileList keeps a profile under its owner's SID; today's account must find it there.
    $list = 'Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList'
    if ($WhatIf) { Write-Host ('would re-point the profile of ' + $OldSid + ' to ' + $NewSid); return }
    try {
        if (Test-Path -LiteralPath ($list + '\' + $NewSid)) { throw ('ProfileList already has ' + $NewSid) }
        Rename-Item -LiteralPath ($list + '\' + $OldSid) -NewName $NewSid -ErrorAction Stop
        $sid = New-Object System.Security.Principal.SecurityIdentifier($NewSid)
        $bytes = New-Object byte[] $sid.BinaryLength
        $sid.GetBinaryForm($bytes, 0)
        Set-ItemProperty -LiteralPath ($list + '\' + $NewSid) -Name 'Sid' -Value $bytes -Type Binary -ErrorAction Stop
    } catch { Write-Warning ('profile of ' + $OldSid + ': ' + $_.Exception.Message); $script:failed++ }
}

foreach ($privilege in @('SeRestorePrivilege', 'SeTakeOwnershipPrivilege', 'SeSecurityPrivilege')) {
    if (-not [AclscanPlanNative]::EnablePrivilege($privilege)) { Write-Warning ('could not enable ' + $privilege) }
}
""".strip("\n")

_FOOTER = r"""
Write-Host ('files rewritten: ' + $script:changed + ', already right: ' + $script:already +
            ', changed since the scan: ' + $script:drifted + ', failed: ' + $script:failed)
if ($script:drifted -or $script:failed) { exit 1 }
""".strip("\n")


def _sections(change: DescriptorChange) -> str:
    return "Owner, Group, Access, Audit" if "sacl" in sections_changed(change) else "Owner, Group, Access"


class _Writer:
    def __init__(self, out: PlanOutput):
        self.out = out
        out.write(b"\xef\xbb\xbf")

    def line(self, text: str = "") -> None:
        # Every line is built from literals and escaped comments: a raw line break here is a bug.
        if "\n" in text or "\r" in text:
            raise AssertionError(f"a line break inside a script line: {text[:80]!r}")
        self.out.write((text + "\r\n").encode("utf-8"))

    def block(self, text: str) -> None:
        for line in text.split("\n"):
            self.line(line)


def _descriptor_block(writer: _Writer, change: DescriptorChange, number: int, total: int, plan: Plan,
                      context: PlanContext) -> None:
    kinds = ", ".join(f"{a} {plan.action(a).kind}" for a in change.actions)
    sections = _sections(change)
    writer.line(f"# Descriptor {number} of {total}: key {change.descriptor_key}, security id {change.security_id}, "
                f"{change.files} file(s); {kinds}; changes {', '.join(sorted(sections_changed(change)))}")
    writer.line(f"$sections = {ps_literal(sections)}")
    writer.line(f"$old = ConvertTo-WindowsSddl {ps_literal(change.old_sddl)} $sections")
    writer.line(f"$new = ConvertTo-WindowsSddl {ps_literal(change.new_sddl)} $sections")
    writer.line("foreach ($relative in @(")
    listed = 0
    for planned in context.files(change):
        relative, why = windows_relative(planned.path)
        if why:
            context.omitted += 1
            context.note(f"powershell: left out {terminal_safe(planned.path)}: {why}")
            writer.line(f"    # left out: {ps_comment(planned.path)}: {why}")
            continue
        writer.line("    " + ps_literal("\\" + relative))
        listed += 1
    if not listed:
        writer.line("    # (no path left to rewrite)")
    writer.line(")) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }")
    writer.line()


def _registry_lines(writer: _Writer, action: Action) -> None:
    writer.line(f"# {action.id} {action.kind}: {ps_comment(action.account or action.sid)}: {ps_comment(action.reason)}")
    if action.kind == GRANT_LSA_RIGHTS:
        rights = ", ".join(ps_literal(r) for r in action.rights)
        writer.line(f"Grant-PlannedRights {ps_literal(action.new_sid)} {ps_literal(action.sid)} @({rights})")
    elif action.kind == REPLACE_ALIAS_MEMBER:
        for group in action.groups:
            writer.line(f"Set-PlannedMember {ps_literal(group)} {ps_literal(action.new_sid)} {ps_literal(action.sid)}")
    elif action.kind == REVOKE_LSA_RIGHTS:
        rights = ", ".join(ps_literal(r) for r in action.rights)
        writer.line(f"Revoke-PlannedRights {ps_literal(action.sid)} @({rights})")
    elif action.kind == REMOVE_ALIAS_MEMBER:
        for group in action.groups:
            writer.line(f"Remove-PlannedMember {ps_literal(group)} {ps_literal(action.sid)}")
    elif action.kind == REPOINT_PROFILE:
        writer.line(f"Move-PlannedProfile {ps_literal(action.sid)} {ps_literal(action.new_sid)}")
    elif action.kind == DETACH_PROFILE:
        writer.line(f"Remove-PlannedProfileEntry {ps_literal(action.sid)}")
    elif action.kind == REPOINT_SERVICE:
        account = action.account or action.new_sid
        logon = account if "\\" in account or "@" in account else ".\\" + account
        writer.line("# Windows keeps a service's logon account by name and needs its password to set it again:")
        writer.line("# check the account each service names, then set it with the password filled in.")
        for service in action.services:
            writer.line(f"sc.exe qc {ps_literal(service)}")
            writer.line(f"# sc.exe config {ps_literal(service)} obj= {ps_literal(logon)} password= 'PASSWORD'")
    writer.line()


def write_script(plan: Plan, context: PlanContext, out: PlanOutput) -> None:
    writer = _Writer(out)
    volumes = ", ".join(str(v.get("image") or v.get("id")) for v in plan.scan.get("volumes", ()))
    writer.line(f"# aclscan plan for {ps_comment(volumes)} (machine SID {ps_comment(plan.scan.get('machine_sid'))})")
    writer.line(f"# {len(plan.actions)} action(s), {len(plan.refusals)} refusal(s), {len(plan.descriptors)} "
                f"descriptor(s), {sum(c.files for c in plan.descriptors)} file(s).")
    writer.line("# Run elevated, on the machine itself: .\\fix.ps1 [-Root D:\\] [-WhatIf]")
    writer.line("#Requires -RunAsAdministrator")
    writer.line("param([string]$Root = $env:SystemDrive + '\\', [switch]$WhatIf)")
    writer.block(_HELPERS)
    writer.line()
    refusals = plan.refusals
    if refusals:
        writer.line("# ---- Refused: no safe action; nothing below touches these")
        for action in refusals:
            writer.line(f"# REFUSED {action.id} {action.verdict} {ps_comment(action.account or '')} "
                        f"{ps_comment(action.sid)}: {ps_comment(action.reason)}")
        writer.line()
    for skipped in plan.skipped:
        writer.line(f"# SKIPPED descriptor {skipped.descriptor_key} ({skipped.action}): {ps_comment(skipped.reason)}")
    changes = [c for c in plan.descriptors if (context.volume_id is None or c.volume_id == context.volume_id)
               and c.source in FILE_SOURCES]
    places = [c for c in plan.descriptors if c.source not in FILE_SOURCES]
    if places:
        # Registry keys, services, shares, printers, tasks and DCOM keep their descriptors
        # in the hives and task files: aclscan fix --apply rewrites those offline.
        writer.line(f"# {len(places)} descriptor(s) of registry keys, services, shares, tasks or DCOM "
                    f"({sum(c.places for c in places)} place(s)) are not in this script: aclscan fix --apply "
                    "rewrites them offline (aclscan places lists them)")
    if changes:
        writer.line("# ---- Descriptors")
    for number, change in enumerate(changes, 1):
        _descriptor_block(writer, change, number, len(changes), plan, context)
    registry = [a for a in plan.actions if a.kind in HIVE_KINDS | {REPOINT_SERVICE}]
    if registry:
        writer.line("# ---- Registry: LSA rights, local groups, profiles, services")
        for action in registry:
            _registry_lines(writer, action)
    writer.block(_FOOTER)
