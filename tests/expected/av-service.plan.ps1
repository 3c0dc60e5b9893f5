# aclscan plan for IMAGE.img (machine SID S-1-5-21-801928374-234567815-1434823459)
# 4 action(s), 0 refusal(s), 16 descriptor(s), 36 file(s).
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

# 9 descriptor(s) of registry keys, services, shares, tasks or DCOM (10 place(s)) are not in this script: aclscan fix --apply rewrites them offline (aclscan places lists them)
# ---- Descriptors
# Descriptor 1 of 7: key 8, security id 263, 1 file(s); A1 replace_sid, A2 replace_sid; changes dacl
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:BAG:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;S-1-5-21-191058668-193157475-1542849698-1003)(A;OICI;FA;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;OICI;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;OICI;0x1200a9;;;BU)' $sections
$new = ConvertTo-WindowsSddl 'O:BAG:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;S-1-5-21-801928374-234567815-1434823459-1003)(A;OICI;FA;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;OICI;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;OICI;0x1200a9;;;BU)' $sections
foreach ($relative in @(
    '\Program Files\AVScan'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 2 of 7: key 9, security id 264, 2 file(s); A1 replace_sid, A2 replace_sid; changes dacl
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;S-1-5-21-191058668-193157475-1542849698-1003)(A;ID;FA;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;ID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;ID;0x1200a9;;;BU)' $sections
$new = ConvertTo-WindowsSddl 'O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;S-1-5-21-801928374-234567815-1434823459-1003)(A;ID;FA;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;ID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;ID;0x1200a9;;;BU)' $sections
foreach ($relative in @(
    '\Program Files\AVScan\avscan.exe'
    '\Program Files\AVScan\engine.dll'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 3 of 7: key 10, security id 265, 1 file(s); A1 replace_sid, A2 replace_sid; changes dacl, owner
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-191058668-193157475-1542849698-1003G:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;S-1-5-21-191058668-193157475-1542849698-1003)(A;OICI;FA;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;OICI;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;OICI;0x1200a9;;;BU)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-801928374-234567815-1434823459-1003G:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;S-1-5-21-801928374-234567815-1434823459-1003)(A;OICI;FA;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;OICI;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;OICI;0x1200a9;;;BU)' $sections
foreach ($relative in @(
    '\ProgramData\AVScan'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 4 of 7: key 11, security id 266, 1 file(s); A1 replace_sid, A2 replace_sid; changes dacl, owner
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-191058668-193157475-1542849698-1003G:SYD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1301bf;;;S-1-5-21-191058668-193157475-1542849698-1003)(A;OICIID;FA;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;OICIID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;OICIID;0x1200a9;;;BU)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-801928374-234567815-1434823459-1003G:SYD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1301bf;;;S-1-5-21-801928374-234567815-1434823459-1003)(A;OICIID;FA;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;OICIID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;OICIID;0x1200a9;;;BU)' $sections
foreach ($relative in @(
    '\ProgramData\AVScan\Definitions'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 5 of 7: key 12, security id 267, 1 file(s); A1 replace_sid, A2 replace_sid; changes dacl, owner
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-191058668-193157475-1542849698-1003G:SYD:AI(A;OICI;0x1200a9;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1301bf;;;S-1-5-21-191058668-193157475-1542849698-1003)(A;OICIID;FA;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;OICIID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;OICIID;0x1200a9;;;BU)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-801928374-234567815-1434823459-1003G:SYD:AI(A;OICI;0x1200a9;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1301bf;;;S-1-5-21-801928374-234567815-1434823459-1003)(A;OICIID;FA;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;OICIID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;OICIID;0x1200a9;;;BU)' $sections
foreach ($relative in @(
    '\ProgramData\AVScan\Logs'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 6 of 7: key 13, security id 268, 20 file(s); A1 replace_sid, A2 replace_sid; changes dacl, owner
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-191058668-193157475-1542849698-1003G:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;S-1-5-21-191058668-193157475-1542849698-1003)(A;ID;FA;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;ID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;ID;0x1200a9;;;BU)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-801928374-234567815-1434823459-1003G:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;S-1-5-21-801928374-234567815-1434823459-1003)(A;ID;FA;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;ID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;ID;0x1200a9;;;BU)' $sections
foreach ($relative in @(
    '\ProgramData\AVScan\Definitions\defs001.dat'
    '\ProgramData\AVScan\Definitions\defs002.dat'
    '\ProgramData\AVScan\Definitions\defs003.dat'
    '\ProgramData\AVScan\Definitions\defs004.dat'
    '\ProgramData\AVScan\Definitions\defs005.dat'
    '\ProgramData\AVScan\Definitions\defs006.dat'
    '\ProgramData\AVScan\Definitions\defs007.dat'
    '\ProgramData\AVScan\Definitions\defs008.dat'
    '\ProgramData\AVScan\Definitions\defs009.dat'
    '\ProgramData\AVScan\Definitions\defs010.dat'
    '\ProgramData\AVScan\Definitions\defs011.dat'
    '\ProgramData\AVScan\Definitions\defs012.dat'
    '\ProgramData\AVScan\Definitions\defs013.dat'
    '\ProgramData\AVScan\Definitions\defs014.dat'
    '\ProgramData\AVScan\Definitions\defs015.dat'
    '\ProgramData\AVScan\Definitions\defs016.dat'
    '\ProgramData\AVScan\Definitions\defs017.dat'
    '\ProgramData\AVScan\Definitions\defs018.dat'
    '\ProgramData\AVScan\Definitions\defs019.dat'
    '\ProgramData\AVScan\Definitions\defs020.dat'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# Descriptor 7 of 7: key 14, security id 269, 10 file(s); A1 replace_sid, A2 replace_sid; changes dacl, owner
$sections = 'Owner, Group, Access'
$old = ConvertTo-WindowsSddl 'O:S-1-5-21-191058668-193157475-1542849698-1003G:SYD:AI(A;ID;0x1200a9;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;S-1-5-21-191058668-193157475-1542849698-1003)(A;ID;FA;;;S-1-5-21-191058668-193157475-1542849698-1004)(A;ID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;ID;0x1200a9;;;BU)' $sections
$new = ConvertTo-WindowsSddl 'O:S-1-5-21-801928374-234567815-1434823459-1003G:SYD:AI(A;ID;0x1200a9;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1301bf;;;S-1-5-21-801928374-234567815-1434823459-1003)(A;ID;FA;;;S-1-5-21-801928374-234567815-1434823459-1004)(A;ID;0x1301bf;;;S-1-5-80-4264204430-2934229894-1538413315-4043615413-3859507375)(A;ID;0x1200a9;;;BU)' $sections
foreach ($relative in @(
    '\ProgramData\AVScan\Logs\scan001.log'
    '\ProgramData\AVScan\Logs\scan002.log'
    '\ProgramData\AVScan\Logs\scan003.log'
    '\ProgramData\AVScan\Logs\scan004.log'
    '\ProgramData\AVScan\Logs\scan005.log'
    '\ProgramData\AVScan\Logs\scan006.log'
    '\ProgramData\AVScan\Logs\scan007.log'
    '\ProgramData\AVScan\Logs\scan008.log'
    '\ProgramData\AVScan\Logs\scan009.log'
    '\ProgramData\AVScan\Logs\scan010.log'
)) { Set-PlannedDescriptor ($base + $relative) $old $new $sections }

# ---- Registry: LSA rights, local groups, profiles, services
# A3 grant_lsa_rights: AVService: the old SID of AVService holds these rights; today's S-1-5-21-801928374-234567815-1434823459-1003 needs them (services logging on as it: AVScan)
Grant-PlannedRights 'S-1-5-21-801928374-234567815-1434823459-1003' 'S-1-5-21-191058668-193157475-1542849698-1003' @('SeServiceLogonRight')

# A4 replace_alias_member: AVService: these groups list the old SID of AVService
Set-PlannedMember 'AV Admins' 'S-1-5-21-801928374-234567815-1434823459-1003' 'S-1-5-21-191058668-193157475-1542849698-1003'

Write-Host ('files rewritten: ' + $script:changed + ', already right: ' + $script:already +
            ', changed since the scan: ' + $script:drifted + ', failed: ' + $script:failed)
if ($script:drifted -or $script:failed) { exit 1 }
