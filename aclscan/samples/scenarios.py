"""The deployment whitepaper's scenarios as data: machines, accounts, the file
tree with its explicit descriptors, the hives, and the truth a correct tool must
find (each domain-relative SID's verdict; readiness).

Names and SIDs are the whitepaper's where it gives them. Descriptors are SDDL of
the explicit part only (owner, group, explicit ACEs, protection); inherited ACEs
are added by the builder the way Windows adds them (aclscan.sd.inherit).
Nothing here runs the scanner: the manifests the builder writes come from these
definitions alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Machine SIDs of the whitepaper.
MASTER = "S-1-5-21-191058668-193157475-1542849698"  # the image every clone started from
RESEALED = "S-1-5-21-801928374-234567815-1434823459"  # after the System Preparation tool
NETWERKS = "S-1-5-21-3286904461-661230000-4220857270"  # domain NETWERKS (our choice)
OLDCORP = "S-1-5-21-1390067357-1202500187-1085936611"  # the domain NETWERKS migrated users from
MEMBER = "S-1-5-21-2532189437-3451786122-2209815730"  # the domain member's own machine SID
DC_DOMAIN = "S-1-5-21-4125263577-3120470036-2345670139"  # the cloned DC's domain (CLONEDOM)
CLEAN = "S-1-5-21-1843332746-572796286-2118856591"  # re-SIDed before anything existed
NOHIST_OLD = "S-1-5-21-2718281828-459045235-360287471"  # no-history's SID before the SID changer
NOHIST = "S-1-5-21-1414213562-373095048-801688724"  # and after it

# The verdicts are the classifier's vocabulary.
from aclscan.classify import (  # noqa: E402
    LOW,
    MEDIUM,
    ORPHAN,
    RESOLVED,
    RID_COLLISION,
    SID_HISTORY,
    STALE_PREFIX,
)


@dataclass(frozen=True)
class Account:
    rid: int
    name: str
    kind: str = "user"  # user | alias (a local group)
    members: tuple[str, ...] = ()  # alias members, as SIDs
    full_name: str = ""


@dataclass(frozen=True)
class Service:
    name: str
    object_name: str | None  # the logon account: LocalSystem, .\AVService, NT AUTHORITY\...
    image_path: str = ""
    sddl: str | None = None  # the service's own descriptor (Services\<name>\Security)


@dataclass(frozen=True)
class RegistryKey:
    """A key with an explicit ACL. Its subkeys (listed after it) inherit its CI ACEs the
    way Windows propagates them; ``values`` are REG_SZ (name, text) pairs."""

    path: str  # below the hive's root, backslashes
    sddl: str  # the explicit part; inheritance is added by the builder
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Share:
    name: str
    path: str  # the folder, as Windows writes it (C:\Data\Finance)
    sddl: str  # the share permissions


@dataclass(frozen=True)
class Printer:
    name: str
    sddl: str


@dataclass(frozen=True)
class Task:
    """A scheduled task: its XML file under Windows/System32/Tasks and its TaskCache entry."""

    path: str  # \AVScan\Update
    guid: str  # the TaskCache id, {upper-case}
    user_id: str  # Principal/UserId: a SID (or a name)
    sddl: str  # RegistrationInfo/SecurityDescriptor in the XML
    cache_sddl: str  # the TaskCache SD value
    command: str = ""
    author: str = ""


@dataclass(frozen=True)
class AppId:
    """A DCOM application: Classes\\AppID\\{guid} and its launch (and access) permissions."""

    guid: str
    name: str
    launch_sddl: str
    access_sddl: str | None = None


@dataclass(frozen=True)
class UserHive:
    """A profile's NTUSER.DAT (and UsrClass.dat): the root key's ACL (subkeys inherit it),
    keys with their own ACLs, and which profile folder holds it."""

    sid: str
    folder: str  # Users/<folder>
    root_sddl: str
    keys: tuple[RegistryKey, ...] = ()
    usrclass: bool = False


@dataclass(frozen=True)
class Expected:
    """The truth about one SID: what a correct tool says of it."""

    verdict: str
    account: str | None = None  # who it is (today, or was)
    mapped_sid: str | None = None  # for stale_prefix / sid_history: the account today
    note: str = ""
    confidence: str | None = None  # where the story is about it (high, medium, low); the manifest has it only then


@dataclass(frozen=True)
class Node:
    path: str  # "/"-separated, relative to the volume root; "" is the root
    is_dir: bool
    sddl: str  # the explicit part; inheritance is added by the builder
    data: bytes = b""


@dataclass
class Scenario:
    name: str
    title: str
    whitepaper: str  # the passage it stands for
    computer: str
    machine_sid: str
    previous_machine_sids: tuple[str, ...] = ()
    product_type: str = "WinNT"  # WinNT workstation, ServerNT member server, LanmanNT domain controller
    accounts: tuple[Account, ...] = ()
    builtin_aliases: tuple[Account, ...] = ()
    primary_domain: tuple[str, str] | None = None  # (name, SID); None: a workgroup
    services: tuple[Service, ...] = ()
    lsa_rights: dict[str, tuple[str, ...]] = field(default_factory=dict)  # SID -> rights/privileges
    profiles: dict[str, str] = field(default_factory=dict)  # SID -> ProfileImagePath
    nodes: list[Node] = field(default_factory=list)
    truth: dict[str, Expected] = field(default_factory=dict)  # domain-relative SIDs
    readiness: dict = field(default_factory=dict)  # {"ready": bool, "reasons": [...]}
    fleet: dict = field(default_factory=dict)  # facts that need other machines
    domain_export: dict | None = None  # users/groups of the domain, for LDIF and CSV
    deleted_domain_users: tuple[str, ...] = ()
    # The master's accounts before the SID change: shipped as NAME.master-SAM, the
    # history (--history) the manifest's verdicts assume where names are not on the volume.
    master_accounts: tuple[Account, ...] = ()
    # The master's SAM also sits on the volume as Windows/System32/config/RegBack/SAM (the
    # backup Windows made before the SID change): the image remembers its old names itself.
    regback: bool = False
    size: int = 24 << 20
    # The registry side of the story (issue 9): keys of SOFTWARE with their own ACLs,
    # shares, printers, scheduled tasks, DCOM applications, the machine-wide DCOM
    # defaults (Microsoft\Ole), and the profiles' user hives.
    software_keys: tuple[RegistryKey, ...] = ()
    shares: tuple[Share, ...] = ()
    printers: tuple[Printer, ...] = ()
    tasks: tuple[Task, ...] = ()
    appids: tuple[AppId, ...] = ()
    ole_defaults: bool = False
    user_hives: tuple[UserHive, ...] = ()


# --- the common shape of a Windows system volume --------------------------------

ROOT = (
    "O:SYG:SYD:PAI(A;OICIIO;SDGXGWGR;;;AU)(A;;0x1301bf;;;AU)(A;OICIIO;GA;;;SY)(A;;FA;;;SY)"
    "(A;OICI;0x1200a9;;;BU)(A;OICIIO;GA;;;BA)(A;;FA;;;BA)"
)
TRUSTED_INSTALLER = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
SYSTEM_DIR = (
    f"O:{TRUSTED_INSTALLER}G:{TRUSTED_INSTALLER}D:PAI(A;OICIIO;GA;;;CO)(A;OICIIO;GA;;;SY)(A;;0x1301bf;;;SY)"
    f"(A;OICIIO;GA;;;BA)(A;;0x1301bf;;;BA)(A;OICIIO;GXGR;;;BU)(A;;0x1200a9;;;BU)"
    f"(A;CIIO;GA;;;{TRUSTED_INSTALLER})(A;;FA;;;{TRUSTED_INSTALLER})"
)
CONFIG_DIR = "O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
USERS_DIR = "O:SYG:SYD:PAI(A;OICIIO;GXGR;;;BU)(A;;0x1200a9;;;BU)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;WD)"
BUILTIN_ADMINS = "S-1-5-32-544"


def _system_nodes() -> list[Node]:
    return [
        Node("", True, ROOT),
        Node("Windows", True, SYSTEM_DIR),
        Node("Windows/System32", True, SYSTEM_DIR),
        Node("Windows/System32/config", True, CONFIG_DIR),
        Node("Users", True, USERS_DIR),
        Node("Program Files", True, SYSTEM_DIR),
        Node("ProgramData", True, "O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)(A;CI;0x100116;;;BU)(A;OICIIO;GA;;;CO)"),
    ]


def _profile(user_sid: str, name: str, files: int = 3, owner_group: str | None = None) -> list[Node]:
    """A profile folder as Windows makes it, with a few documents."""
    group = owner_group or user_sid
    base = f"Users/{name}"
    nodes = [
        Node(base, True, f"O:{user_sid}G:{group}D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{user_sid})"),
        Node(f"{base}/Documents", True, f"O:{user_sid}G:{group}D:"),
        Node(f"{base}/Desktop", True, f"O:{user_sid}G:{group}D:"),
    ]
    for n in range(files):
        nodes.append(Node(f"{base}/Documents/{name} report {n + 1:03d}.docx", False, f"O:{user_sid}G:{group}D:",
                          f"{name}'s report {n + 1}\n".encode()))
    return nodes


# The registry side: what Windows writes for services, printers, DCOM and user hives.
SERVICE_SDDL = ("O:SYG:SYD:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)"
                "(A;;CCLCSWLOCRRC;;;IU)(A;;CCLCSWLOCRRC;;;SU)")
START_STOP = "RPWPDTLO"  # SERVICE_START, SERVICE_STOP, SERVICE_PAUSE_CONTINUE, SERVICE_INTERROGATE
PRINTER_SDDL = "O:BAG:SYD:(A;;LCSWSDRCWDWO;;;BA)(A;OIIO;RPWPSDRCWDWO;;;BA)(A;;SWRC;;;WD)"
DCOM_ADMIN = "CCDCLCSWRP"  # COM_RIGHTS_EXECUTE | _LOCAL | _REMOTE | ACTIVATE_LOCAL | _REMOTE
# Microsoft\Ole on a fresh Windows: machine-wide DCOM defaults and limits.
OLE_DEFAULTS = {
    "DefaultAccessPermission": "O:BAG:BAD:(A;;CCDCLC;;;PS)(A;;CCDC;;;SY)(A;;CCDCLC;;;BA)",
    "DefaultLaunchPermission": "O:BAG:BAD:(A;;CCDCLCSWRP;;;SY)(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;IU)",
    "MachineAccessRestriction": "O:BAG:BAD:(A;;CCDCLC;;;WD)(A;;CCDC;;;AN)(A;;CCDCLC;;;S-1-5-32-562)",
    "MachineLaunchRestriction": "O:BAG:BAD:(A;;CCDCLCSWRP;;;WD)(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;S-1-5-32-562)",
}


def _user_hive(sid: str, folder: str, usrclass: bool = False, keys: tuple[RegistryKey, ...] = ()) -> UserHive:
    """A profile's NTUSER.DAT as Windows makes it: the user, SYSTEM and Administrators
    hold full control of every key, RESTRICTED reads; a few usual keys."""
    usual = (
        RegistryKey("Environment", f"O:{sid}G:{sid}D:", (("TEMP", r"%USERPROFILE%\AppData\Local\Temp"),)),
        RegistryKey("Software\\Microsoft\\Windows\\CurrentVersion\\Explorer", f"O:{sid}G:{sid}D:",
                    (("ShellState", "1"),)),
        RegistryKey("Control Panel\\Desktop", f"O:{sid}G:{sid}D:", (("Wallpaper", ""),)),
    )
    return UserHive(sid, folder, f"O:{sid}G:{sid}D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KA;;;{sid})(A;CI;KR;;;RC)",
                    usual + keys, usrclass)


def _builtin(admin_members: tuple[str, ...] = (), users_members: tuple[str, ...] = ()) -> tuple[Account, ...]:
    return (
        Account(544, "Administrators", "alias", admin_members),
        Account(545, "Users", "alias", users_members + ("S-1-5-4", "S-1-5-11")),
        Account(546, "Guests", "alias"),
    )


def _local_users(machine: str, *users: tuple[int, str]) -> tuple[Account, ...]:
    return (Account(500, "Administrator"), Account(501, "Guest")) + tuple(Account(rid, name) for rid, name in users)


def _truth_for_local(machine: str, accounts: tuple[Account, ...]) -> dict[str, Expected]:
    return {f"{machine}-{a.rid}": Expected(RESOLVED, a.name) for a in accounts}


# --- 1. ws1 and ws2: two workstations from one image, never re-SIDed ------------

def ws1() -> Scenario:
    accounts = _local_users(MASTER, (1000, "Eric"))
    eric = f"{MASTER}-1000"
    nodes = _system_nodes() + _profile(eric, "Eric", owner_group=f"{MASTER}-513") + [
        Node("Data", True, "O:BAG:SYD:(A;OICI;0x1301bf;;;AU)"),
        Node("Data/Reviews", True, f"O:{eric}G:{MASTER}-513D:P(A;OICI;FA;;;{eric})"),
    ]
    nodes += [Node(f"Data/Reviews/review {n:02d}.txt", False, f"O:{eric}G:{MASTER}-513D:", b"confidential\n")
              for n in range(1, 7)]
    truth = _truth_for_local(MASTER, accounts)
    truth[f"{MASTER}-513"] = Expected(RESOLVED, "None", note="the local None group (well-known RID 513)")
    return Scenario(
        name="ws1", title="Workstation 1 of an image deployed without a SID change",
        whitepaper="Two workstations, WS1 and WS2, deployed from the same image without running the System "
                   "Preparation tool share the machine SID; Eric on WS1 and Stephanie on WS2 both get RID 1000.",
        computer="WS1", machine_sid=MASTER, accounts=accounts,
        builtin_aliases=_builtin((f"{MASTER}-500",), (eric,)),
        profiles={eric: "C:\\Users\\Eric", f"{MASTER}-500": "C:\\Users\\Administrator"},
        nodes=nodes, truth=truth,
        readiness={"ready": False, "reasons": ["machine SID shared with ws2 (duplicate in the fleet)"]},
        fleet={"duplicate_machine_sid_with": ["ws2"],
               "identity_collisions": [{"sid": eric, "here": "WS1\\Eric", "there": "WS2\\Stephanie"}]},
    )


def ws2() -> Scenario:
    accounts = _local_users(MASTER, (1000, "Stephanie"))
    stephanie = f"{MASTER}-1000"
    nodes = _system_nodes() + _profile(stephanie, "Stephanie", owner_group=f"{MASTER}-513")
    truth = _truth_for_local(MASTER, accounts)
    truth[f"{MASTER}-513"] = Expected(RESOLVED, "None", note="the local None group (well-known RID 513)")
    return Scenario(
        name="ws2", title="Workstation 2 of an image deployed without a SID change",
        whitepaper="WS2\\Stephanie has RID 1000 under the same machine SID as WS1\\Eric: on a shared volume "
                   "or removable disk the two are indistinguishable.",
        computer="WS2", machine_sid=MASTER, accounts=accounts,
        builtin_aliases=_builtin((f"{MASTER}-500",), (stephanie,)),
        profiles={stephanie: "C:\\Users\\Stephanie"},
        nodes=nodes, truth=truth,
        readiness={"ready": False, "reasons": ["machine SID shared with ws1 (duplicate in the fleet)"]},
        fleet={"duplicate_machine_sid_with": ["ws1"],
               "identity_collisions": [{"sid": stephanie, "here": "WS2\\Stephanie", "there": "WS1\\Eric"}]},
    )


# --- 2. member server before and after the System Preparation tool --------------

def _member_files(machine: str, per_user: int) -> list[Node]:
    admin, ken, arianne, ron = (f"{machine}-{rid}" for rid in (500, 1000, 1001, 1002))
    none = f"{machine}-513"
    nodes = _system_nodes()
    nodes += _profile(admin, "Administrator", 2, none)
    for sid, name in ((ken, "Ken"), (arianne, "Arianne"), (ron, "Ron")):
        nodes += _profile(sid, name, per_user, none)
    nodes += [
        Node("Data", True, f"O:{admin}G:{none}D:(A;OICI;FA;;;{admin})(A;OICI;0x1200a9;;;{ken})"),
        Node("Data/Projects", True, f"O:{ken}G:{none}D:(A;OICI;0x1301bf;;;{ken})(A;OICI;0x1301bf;;;{arianne})"),
        Node("Data/Finance", True, f"O:{arianne}G:{none}D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{arianne})"
                                   f"(A;OICI;0x1200a9;;;{ron})(D;OICI;0x110116;;;{ken})"),
        Node("Data/Shared", True, f"O:{ron}G:{none}D:(A;OICI;0x1301bf;;;{ron})(A;OICI;0x1200a9;;;BU)"),
    ]
    for folder, owner, count in (("Projects", ken, per_user), ("Finance", arianne, per_user),
                                 ("Shared", ron, per_user)):
        nodes += [Node(f"Data/{folder}/{folder.lower()} {n:04d}.xlsx", False, f"O:{owner}G:{none}D:",
                       f"{folder} {n}\n".encode()) for n in range(1, count + 1)]
    return nodes


MEMBER_ACCOUNTS_BEFORE = ((1000, "Ken"), (1001, "Arianne"), (1002, "Ron"))
MEMBER_ACCOUNTS_AFTER = ((1000, "Jon"), (1001, "Sam"), (1002, "Stephanie"))


def member_before() -> Scenario:
    accounts = _local_users(MASTER, *MEMBER_ACCOUNTS_BEFORE)
    truth = _truth_for_local(MASTER, accounts)
    truth[f"{MASTER}-513"] = Expected(RESOLVED, "None")
    return Scenario(
        name="member-before", title="Member server before the System Preparation tool",
        whitepaper="A member server must be re-SIDed before local accounts are created: here Ken, Arianne and Ron "
                   "already own files under the image's machine SID.",
        computer="MEMBER", machine_sid=MASTER, product_type="ServerNT", accounts=accounts,
        builtin_aliases=_builtin((f"{MASTER}-500", f"{MASTER}-1000")),
        profiles={f"{MASTER}-{rid}": f"C:\\Users\\{name}" for rid, name in ((500, "Administrator"),) + MEMBER_ACCOUNTS_BEFORE},
        nodes=_member_files(MASTER, 8), truth=truth,
        readiness={"ready": False, "reasons": ["local accounts Ken, Arianne, Ron exist before the SID change",
                                               "machine SID is the image's (shared with ws1, ws2)"]},
    )


def member_after() -> Scenario:
    ken, arianne, ron = (f"{MASTER}-{rid}" for rid, _name in MEMBER_ACCOUNTS_BEFORE)
    accounts = _local_users(RESEALED, *MEMBER_ACCOUNTS_AFTER)
    truth = _truth_for_local(RESEALED, accounts)
    truth[f"{MASTER}-500"] = Expected(STALE_PREFIX, "Administrator", f"{RESEALED}-500",
                                      "built-in RID 500 maps RID to RID")
    truth[f"{MASTER}-513"] = Expected(STALE_PREFIX, "None", f"{RESEALED}-513", "well-known RID 513 maps RID to RID")
    for rid, old_name in MEMBER_ACCOUNTS_BEFORE:
        new_name = dict(MEMBER_ACCOUNTS_AFTER)[rid]
        truth[f"{MASTER}-{rid}"] = Expected(
            RID_COLLISION, old_name, None,
            f"old {old_name} (from ProfileList); RID {rid} now belongs to {new_name}: a prefix rewrite would give "
            f"{new_name} {old_name}'s files")
    return Scenario(
        name="member-after", title="The same member server after the System Preparation tool",
        whitepaper="After the SID change the files still carry Ken's, Arianne's and Ron's old SIDs; new accounts "
                   "Jon, Sam and Stephanie reuse RIDs 1000-1002, so a naive prefix rewrite hands Ken's files to Jon.",
        computer="MEMBER", machine_sid=RESEALED, previous_machine_sids=(MASTER,), product_type="ServerNT",
        accounts=accounts, builtin_aliases=_builtin((f"{RESEALED}-500", f"{MASTER}-1000")),
        profiles={f"{MASTER}-{rid}": f"C:\\Users\\{name}" for rid, name in MEMBER_ACCOUNTS_BEFORE}
        | {f"{RESEALED}-500": "C:\\Users\\Administrator"},
        nodes=_member_files(MASTER, 900), truth=truth,
        readiness={"ready": False, "reasons": ["files, ProfileList and the Administrators alias name the previous "
                                               "machine SID"]},
        master_accounts=_local_users(MASTER, *MEMBER_ACCOUNTS_BEFORE), regback=True,
        size=48 << 20,
        shares=(Share("Finance", "C:\\Data\\Finance", f"D:(A;;FA;;;BA)(A;;0x1301bf;;;{ken})"),),
        printers=(Printer("Finance Laser", f"{PRINTER_SDDL}(A;;LCSWSDRCWDWO;;;{arianne})"),),
        user_hives=(
            _user_hive(ken, "Ken", usrclass=True, keys=(
                RegistryKey("Software\\Finance\\Reports", f"O:{ken}G:{ken}D:(A;CI;KR;;;{arianne})",
                            (("Folder", "C:\\Data\\Finance"),)),)),
            _user_hive(arianne, "Arianne"),
            _user_hive(ron, "Ron"),
        ),
        ole_defaults=True,
    )


# --- 3. the antivirus service account -----------------------------------------

def av_service() -> Scenario:
    from aclscan.samples.hives import service_sid

    old_service, old_admins = f"{MASTER}-1003", f"{MASTER}-1004"
    new_service, new_admins = f"{RESEALED}-1003", f"{RESEALED}-1004"
    avscan = service_sid("AVScan")
    accounts = _local_users(RESEALED) + (
        Account(1003, "AVService", full_name="Antivirus service account"),
        Account(1004, "AV Admins", "alias", (old_service,)),
    )
    acl = (f"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;{old_service})(A;OICI;FA;;;{old_admins})"
           f"(A;OICI;0x1301bf;;;{avscan})(A;OICI;0x1200a9;;;BU)")
    nodes = _system_nodes() + [
        Node("Program Files/AVScan", True, f"O:BAG:SY{acl}"),
        Node("Program Files/AVScan/avscan.exe", False, "O:BAG:SYD:", b"MZ\x90\x00 not really\n"),
        Node("Program Files/AVScan/engine.dll", False, "O:BAG:SYD:", b"MZ\x90\x00 engine\n"),
        Node("ProgramData/AVScan", True, f"O:{old_service}G:SY{acl}"),
        Node("ProgramData/AVScan/Definitions", True, f"O:{old_service}G:SYD:"),
        Node("ProgramData/AVScan/Logs", True, f"O:{old_service}G:SYD:(A;OICI;0x1200a9;;;{old_admins})"),
    ]
    nodes += [Node(f"ProgramData/AVScan/Definitions/defs{n:03d}.dat", False, f"O:{old_service}G:SYD:", b"defs\n")
              for n in range(1, 21)]
    nodes += [Node(f"ProgramData/AVScan/Logs/scan{n:03d}.log", False, f"O:{old_service}G:SYD:", b"clean\n")
              for n in range(1, 11)]
    truth = _truth_for_local(RESEALED, accounts)
    truth[old_service] = Expected(STALE_PREFIX, "AVService", new_service,
                                  "the master's SAM (av-service.master-SAM) names it AVService; today's AVService "
                                  "has the same name")
    truth[old_admins] = Expected(STALE_PREFIX, "AV Admins", new_admins, "the master's SAM names it AV Admins")
    return Scenario(
        name="av-service", title="An antivirus service account that lost its rights",
        whitepaper="An application created the local account AVService and the group AV Admins and granted the "
                   "account the right to log on as a service; after the SID change the LSA right and every ACE "
                   "still name the old SID, so the service cannot log on.",
        computer="AVHOST", machine_sid=RESEALED, previous_machine_sids=(MASTER,), product_type="ServerNT",
        accounts=accounts, builtin_aliases=_builtin((f"{RESEALED}-500",)),
        services=(Service("AVScan", ".\\AVService", "\"C:\\Program Files\\AVScan\\avscan.exe\" -service",
                          f"{SERVICE_SDDL}(A;;{START_STOP};;;{old_admins})"),
                  Service("Spooler", "LocalSystem", "C:\\Windows\\System32\\spoolsv.exe"),
                  Service("Dnscache", "NT AUTHORITY\\NetworkService", "C:\\Windows\\system32\\svchost.exe -k NetworkService")),
        lsa_rights={old_service: ("SeServiceLogonRight",), BUILTIN_ADMINS: ("SeInteractiveLogonRight", "SeNetworkLogonRight",
                                                                            "SeBackupPrivilege", "SeRestorePrivilege"),
                    "S-1-5-80-0": ("SeServiceLogonRight",)},
        profiles={f"{RESEALED}-500": "C:\\Users\\Administrator"},
        nodes=nodes, truth=truth | {avscan: Expected(RESOLVED, "NT SERVICE\\AVScan", note="derived from the service name")},
        master_accounts=_local_users(MASTER) + (Account(1003, "AVService", full_name="Antivirus service account"),
                                                Account(1004, "AV Admins", "alias", (old_service,))),
        regback=True,
        software_keys=(
            RegistryKey("AVScan", f"O:BAG:SYD:PAI(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KA;;;{old_admins})"
                                  f"(A;CI;KR;;;{old_service})(A;CI;KR;;;BU)",
                        (("InstallPath", "C:\\Program Files\\AVScan"), ("Version", "4.2.1"))),
            RegistryKey("AVScan\\Engine", "O:BAG:SYD:", (("Definitions", "C:\\ProgramData\\AVScan\\Definitions"),)),
            RegistryKey("AVScan\\Quarantine", f"O:BAG:SYD:(A;CI;KA;;;{old_service})"),
            RegistryKey("AVScan\\Settings", "O:BAG:SYD:", (("Schedule", "daily"),)),
        ),
        shares=(Share("AVLogs", "C:\\ProgramData\\AVScan\\Logs",
                      f"D:(A;;FA;;;BA)(A;;FA;;;{old_admins})(A;;0x1200a9;;;WD)"),),
        tasks=(Task("\\AVScan\\Update", "{6F1A2C3B-8D4E-4B5F-9A0C-1D2E3F4A5B6C}", old_service,
                    f"D:(A;;FA;;;BA)(A;;FA;;;SY)(A;;FRFX;;;{old_admins})",
                    f"O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)(A;;FRFX;;;{old_admins})(A;;FR;;;{old_service})",
                    "\"C:\\Program Files\\AVScan\\avscan.exe\" -update", "AVHOST\\Administrator"),),
        appids=(AppId("{3C5A8F21-7B9D-4E6A-8C1F-2D4B6E8A0C3E}", "AVScan Scanner",
                      f"O:BAG:BAD:(A;;{DCOM_ADMIN};;;SY)(A;;{DCOM_ADMIN};;;BA)(A;;{DCOM_ADMIN};;;{old_admins})",
                      f"O:BAG:BAD:(A;;CCDCLC;;;SY)(A;;CCDCLC;;;{old_service})"),),
        ole_defaults=True,
        readiness={"ready": False, "reasons": ["LSA right SeServiceLogonRight names the old SID of AVService",
                                               "service AVScan logs on as .\\AVService, whose current SID lacks "
                                               "SeServiceLogonRight",
                                               "ACEs on Program Files/AVScan and ProgramData/AVScan name old SIDs",
                                               "AV Admins lists the old SID of AVService",
                                               "local accounts AVService and AV Admins predate the SID change"]},
    )


# --- 4. a domain member --------------------------------------------------------

DOMAIN_USERS = (
    # (RID, sAMAccountName, sIDHistory)
    (1105, "alice", ()),
    (1106, "bob", ()),
    (1108, "dave", (f"{OLDCORP}-1234",)),
)
DOMAIN_GROUPS = ((512, "Domain Admins"), (513, "Domain Users"), (1110, "Engineering"))
DELETED = (1107, "carol")


def domain_member() -> Scenario:
    d = NETWERKS
    alice, bob, carol, dave = f"{d}-1105", f"{d}-1106", f"{d}-{DELETED[0]}", f"{d}-1108"
    old_dave = f"{OLDCORP}-1234"
    accounts = _local_users(MEMBER)
    nodes = _system_nodes() + _profile(alice, "alice", 3, f"{d}-513") + [
        Node("Shares", True, f"O:BAG:{d}-513D:(A;OICI;FA;;;{d}-512)(A;OICI;0x1200a9;;;{d}-513)"),
        Node("Shares/Engineering", True, f"O:{alice}G:{d}-513D:(A;OICI;0x1301bf;;;{d}-1110)(A;OICI;0x1301bf;;;{bob})"),
        Node("Shares/Legacy", True, f"O:{old_dave}G:{d}-513D:(A;OICI;FA;;;{old_dave})(A;OICI;0x1301bf;;;{carol})"),
    ]
    nodes += [Node(f"Shares/Engineering/spec {n:02d}.md", False, f"O:{bob}G:{d}-513D:", b"# spec\n") for n in range(1, 11)]
    nodes += [Node(f"Shares/Legacy/old {n:02d}.txt", False, f"O:{old_dave}G:{d}-513D:", b"from OLDCORP\n")
              for n in range(1, 6)]
    nodes += [Node(f"Shares/Legacy/carol {n:02d}.txt", False, f"O:{carol}G:{d}-513D:", b"carol was here\n")
              for n in range(1, 4)]
    truth = _truth_for_local(MEMBER, accounts) | {
        f"{d}-512": Expected(RESOLVED, "NETWERKS\\Domain Admins"),
        f"{d}-513": Expected(RESOLVED, "NETWERKS\\Domain Users"),
        f"{d}-1110": Expected(RESOLVED, "NETWERKS\\Engineering"),
        alice: Expected(RESOLVED, "NETWERKS\\alice"),
        bob: Expected(RESOLVED, "NETWERKS\\bob"),
        dave: Expected(RESOLVED, "NETWERKS\\dave"),
        carol: Expected(ORPHAN, "NETWERKS\\carol", note="deleted from the domain; the export is complete"),
        old_dave: Expected(SID_HISTORY, "NETWERKS\\dave", dave, "dave's sIDHistory lists it"),
    }
    export = {
        "domain": "NETWERKS", "dns": "netwerks.example", "sid": d,
        "users": [{"rid": rid, "name": name, "sid_history": list(history)} for rid, name, history in DOMAIN_USERS],
        "groups": [{"rid": rid, "name": name} for rid, name in DOMAIN_GROUPS],
    }
    return Scenario(
        name="domain-member", title="A member of domain NETWERKS",
        whitepaper="Domain accounts are not affected by a member's SID change; a deleted domain user is an orphan "
                   "only because the domain's account list is complete, and a migrated user's old-domain SID is "
                   "translated through sIDHistory.",
        computer="FILESRV", machine_sid=MEMBER, product_type="ServerNT", accounts=accounts,
        builtin_aliases=_builtin((f"{MEMBER}-500", f"{d}-512"), (f"{d}-513",)),
        primary_domain=("NETWERKS", d),
        profiles={alice: "C:\\Users\\alice", f"{MEMBER}-500": "C:\\Users\\Administrator"},
        nodes=nodes, truth=truth,
        readiness={"ready": False,
                   "reasons": ["an orphaned domain user (carol) and a SID-history reference (dave) are still named: "
                               "problem SIDs block the gate until the plan's clean-up is applied"]},
        domain_export=export, deleted_domain_users=(f"{d}-{DELETED[0]}",),
    )


# --- 5. a cloned domain controller ------------------------------------------------

def cloned_dc() -> Scenario:
    d = DC_DOMAIN
    nodes = _system_nodes() + [
        Node("Windows/SYSVOL", True, "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;AU)(A;OICIIO;GA;;;CO)"),
        Node("Windows/SYSVOL/domain", True, "O:BAG:SYD:"),
        Node("Windows/SYSVOL/domain/Policies", True, f"O:BAG:SYD:(A;OICI;0x1301bf;;;{d}-520)"),
        Node("Windows/NTDS", True, "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"),
        Node("Windows/NTDS/ntds.dit", False, "O:BAG:SYD:", b"not a real directory database\n"),
    ]
    accounts = (Account(500, "Administrator"), Account(501, "Guest"))
    truth = {f"{d}-500": Expected(RESOLVED, "CLONEDOM\\Administrator"),
             f"{d}-501": Expected(RESOLVED, "CLONEDOM\\Guest"),
             f"{d}-512": Expected(RESOLVED, "CLONEDOM\\Domain Admins"),
             f"{d}-520": Expected(RESOLVED, "CLONEDOM\\Group Policy Creator Owners")}
    return Scenario(
        name="cloned-dc", title="A cloned domain controller",
        whitepaper="Domain controllers are never cloned: their SID is the domain's and cannot be changed by the "
                   "System Preparation tool.",
        computer="DC01", machine_sid=d, product_type="LanmanNT", accounts=accounts,
        builtin_aliases=_builtin((f"{d}-500", f"{d}-512")), primary_domain=("CLONEDOM", d),
        services=(Service("NTDS", "LocalSystem", "C:\\Windows\\system32\\lsass.exe"),),
        nodes=nodes, truth=truth,
        readiness={"ready": False, "reasons": ["ProductType LanmanNT: a domain controller; cloning one is unsupported"]},
    )


# --- 6. clean -----------------------------------------------------------------------

def clean() -> Scenario:
    accounts = _local_users(CLEAN, (1000, "Pat"))
    pat = f"{CLEAN}-1000"
    nodes = _system_nodes() + _profile(pat, "Pat", 4, f"{CLEAN}-513")
    truth = _truth_for_local(CLEAN, accounts) | {f"{CLEAN}-513": Expected(RESOLVED, "None")}
    return Scenario(
        name="clean", title="Re-SIDed before any account or application existed",
        whitepaper="Run the System Preparation tool before creating local accounts: nothing refers to the old SID.",
        computer="CLEANWS", machine_sid=CLEAN, accounts=accounts, builtin_aliases=_builtin((f"{CLEAN}-500",), (pat,)),
        profiles={pat: "C:\\Users\\Pat", f"{CLEAN}-500": "C:\\Users\\Administrator"},
        nodes=nodes, truth=truth, readiness={"ready": True, "reasons": []},
        services=(Service("ContosoSync", "LocalSystem", "C:\\Program Files\\Contoso\\sync.exe",
                          f"{SERVICE_SDDL}(A;;{START_STOP};;;{pat})"),),
        software_keys=(
            RegistryKey("Contoso", f"O:BAG:SYD:PAI(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;{pat})"),
            RegistryKey("Contoso\\Sync", "O:BAG:SYD:", (("Target", "C:\\Users\\Pat\\Documents"),)),
        ),
        shares=(Share("PatDocs", "C:\\Users\\Pat\\Documents", f"D:(A;;FA;;;BA)(A;;FA;;;{pat})"),),
        printers=(Printer("Office Printer", f"{PRINTER_SDDL}(A;;LCSWSDRCWDWO;;;{pat})"),),
        tasks=(Task("\\Contoso\\Sync", "{0B7D4E2A-5C1F-4A3B-9E8D-7F6A5B4C3D2E}", pat,
                    f"D:(A;;FA;;;BA)(A;;FA;;;SY)(A;;FRFX;;;{pat})",
                    f"O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)(A;;FR;;;{pat})",
                    "C:\\Program Files\\Contoso\\sync.exe", "CLEANWS\\Pat"),),
        appids=(AppId("{9E2B7C4D-1A3F-4D5E-8B6C-0F1E2D3C4B5A}", "Contoso Sync Broker",
                      f"O:BAG:BAD:(A;;{DCOM_ADMIN};;;SY)(A;;{DCOM_ADMIN};;;BA)(A;;{DCOM_ADMIN};;;{pat})"),),
        ole_defaults=True,
        user_hives=(_user_hive(pat, "Pat", usrclass=True),),
    )


# --- 7. no history at all ------------------------------------------------------------

def no_history() -> Scenario:
    """Nothing on the volume or beside it says what the machine SID used to be: no RegBack,
    Windows.old, shadow copy or master's SAM. Only places this machine writes (its
    Administrators alias, its LSA rights, its ProfileList) name the old prefix."""
    ken, backup = f"{NOHIST_OLD}-1000", f"{NOHIST_OLD}-1001"
    accounts = _local_users(NOHIST, (1000, "Ken"), (1001, "Jon"))
    nodes = _system_nodes() + _profile(ken, "Ken", 4) + [
        Node("Backup", True, f"O:BAG:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;{backup})"
                             f"(A;OICI;0x1200a9;;;{ken})"),
    ]
    nodes += [Node(f"Backup/Ken 2024-0{n}-01.zip", False, f"O:{backup}G:SYD:", b"PK\x03\x04 a backup\n")
              for n in range(1, 7)]
    inferred = ("the prefix is inferred: this machine's Administrators alias, LSA rights and ProfileList name it, "
                "no history does")
    truth = _truth_for_local(NOHIST, accounts)
    truth[ken] = Expected(STALE_PREFIX, "Ken", f"{NOHIST}-1000",
                          f"{inferred}; ProfileList's C:\\Users\\Ken names it Ken, today's Ken has that name", MEDIUM)
    truth[backup] = Expected(RID_COLLISION, None, None,
                             f"{inferred}; it was BackupSvc, but nothing left names it; RID 1001 now belongs to "
                             "Jon: a prefix rewrite would give Jon its rights", LOW)
    return Scenario(
        name="no-history", title="A workstation re-SIDed by a SID changer that left no trace of the old SID",
        whitepaper="A SID changer gave a cloned workstation a new machine SID and a new account list (Ken again "
                   "at RID 1000, Jon at 1001, the RID of the service account BackupSvc) and rewrote nothing else; "
                   "no copy of the old SAM survives (no RegBack, Windows.old, shadow copy or master's SAM). Only "
                   "what this machine itself writes still names the old prefix: the Administrators alias, the LSA "
                   "rights, ProfileList and the files.",
        computer="WS3", machine_sid=NOHIST, previous_machine_sids=(NOHIST_OLD,), accounts=accounts,
        builtin_aliases=_builtin((f"{NOHIST}-500", ken), (f"{NOHIST}-1000", f"{NOHIST}-1001")),
        lsa_rights={backup: ("SeBatchLogonRight", "SeServiceLogonRight")},
        profiles={ken: "C:\\Users\\Ken", f"{NOHIST}-500": "C:\\Users\\Administrator"},
        nodes=nodes, truth=truth, user_hives=(_user_hive(ken, "Ken"),),
        readiness={"ready": False, "reasons": ["files, ProfileList, the Administrators alias and an LSA right name "
                                               "the previous machine SID (inferred: no history knows it)",
                                               "local account Ken predates the SID change"]},
    )


SCENARIOS = {
    "ws1": ws1, "ws2": ws2, "member-before": member_before, "member-after": member_after,
    "av-service": av_service, "domain-member": domain_member, "cloned-dc": cloned_dc, "clean": clean,
    "no-history": no_history,
}
