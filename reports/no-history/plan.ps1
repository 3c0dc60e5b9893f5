# aclscan plan for ./sample_volumes/no-history.img.gz (machine SID S-1-5-21-1414213562-373095048-801688724)
# 4 action(s), 1 refusal(s), 7 descriptor(s), 15 file(s).
# Run elevated, on the machine itself: .\fix.ps1 [-Root D:\] [-WhatIf]
#Requires -RunAsAdministrator
param([string]$Root = $env:SystemDrive + '\', [switch]$WhatIf)
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

# ---- Refused: no safe action; nothing below touches these
# REFUSED A2 rid_collision  S-1-5-21-2718281828-459045235-360287471-1001: no account today is named its old account, and its RID belongs to another account now (RID 1001 now belongs to WS3\Jon: a prefix rewrite would give it the old account's access); way out: create the account; or --map FILE; or --remove-orphans (drops its ACEs)

# 2 descriptor(s) of registry keys, services, shares, tasks or DCOM (9 place(s)) are not in this script: aclscan fix --apply rewrites them offline (aclscan places lists them)
# ---- Descriptors
# Descriptor 1 of 5: key 8, security id 263, 1 file(s); A1 replace_sid; changes dacl, group, owner
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-2718281828-459045235-360287471-1000G:S-1-5-21-2718281828-459045235-360287471-1000D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;S-1-5-21-2718281828-459045235-360287471-1000)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-1414213562-373095048-801688724-1000G:S-1-5-21-1414213562-373095048-801688724-1000D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;S-1-5-21-1414213562-373095048-801688724-1000)' $sections
foreach ($relative in @(
    '\Users\Ken'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 2 of 5: key 9, security id 264, 2 file(s); A1 replace_sid; changes dacl, group, owner
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-2718281828-459045235-360287471-1000G:S-1-5-21-2718281828-459045235-360287471-1000D:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;FA;;;S-1-5-21-2718281828-459045235-360287471-1000)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-1414213562-373095048-801688724-1000G:S-1-5-21-1414213562-373095048-801688724-1000D:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;FA;;;S-1-5-21-1414213562-373095048-801688724-1000)' $sections
foreach ($relative in @(
    '\Users\Ken\Desktop'
    '\Users\Ken\Documents'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 3 of 5: key 10, security id 265, 5 file(s); A1 replace_sid; changes dacl, group, owner
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-2718281828-459045235-360287471-1000G:S-1-5-21-2718281828-459045235-360287471-1000D:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;FA;;;S-1-5-21-2718281828-459045235-360287471-1000)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-1414213562-373095048-801688724-1000G:S-1-5-21-1414213562-373095048-801688724-1000D:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;FA;;;S-1-5-21-1414213562-373095048-801688724-1000)' $sections
foreach ($relative in @(
    '\Users\Ken\Documents\Ken report 001.docx'
    '\Users\Ken\Documents\Ken report 002.docx'
    '\Users\Ken\Documents\Ken report 003.docx'
    '\Users\Ken\Documents\Ken report 004.docx'
    '\Users\Ken\NTUSER.DAT'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 4 of 5: key 11, security id 266, 1 file(s); A1 replace_sid; changes dacl
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:BAG:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;S-1-5-21-2718281828-459045235-360287471-1001)(A;OICI;0x1200a9;;;S-1-5-21-2718281828-459045235-360287471-1000)' $sections
$new = ConvertTo-WindowsSddl 'O:BAG:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;S-1-5-21-2718281828-459045235-360287471-1001)(A;OICI;0x1200a9;;;S-1-5-21-1414213562-373095048-801688724-1000)' $sections
foreach ($relative in @(
    '\Backup'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 5 of 5: key 12, security id 267, 6 file(s); A1 replace_sid; changes dacl
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-2718281828-459045235-360287471-1001G:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;S-1-5-21-2718281828-459045235-360287471-1001)(A;ID;0x1200a9;;;S-1-5-21-2718281828-459045235-360287471-1000)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-2718281828-459045235-360287471-1001G:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;S-1-5-21-2718281828-459045235-360287471-1001)(A;ID;0x1200a9;;;S-1-5-21-1414213562-373095048-801688724-1000)' $sections
foreach ($relative in @(
    '\Backup\Ken 2024-01-01.zip'
    '\Backup\Ken 2024-02-01.zip'
    '\Backup\Ken 2024-03-01.zip'
    '\Backup\Ken 2024-04-01.zip'
    '\Backup\Ken 2024-05-01.zip'
    '\Backup\Ken 2024-06-01.zip'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# ---- Registry: LSA rights, local groups, profiles, services
# A3 replace_alias_member: Ken: these groups list the old SID of Ken
Set-PlannedMember 'Administrators' 'S-1-5-21-1414213562-373095048-801688724-1000' 'S-1-5-21-2718281828-459045235-360287471-1000'

# A4 repoint_profile: Ken: ProfileList keeps the profile of Ken under the old SID: today's S-1-5-21-1414213562-373095048-801688724-1000 must find it
Move-PlannedProfile 'S-1-5-21-2718281828-459045235-360287471-1000' 'S-1-5-21-1414213562-373095048-801688724-1000'

Write-Host ('files rewritten: ' + $script:changed + ', already right: ' + $script:already +
            ', changed since the scan: ' + $script:drifted + ', failed: ' + $script:failed)
if ($script:drifted -or $script:failed) { exit 1 }
