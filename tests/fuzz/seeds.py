"""The real inputs the fuzz harness mutates, by kind.

Three sources: the committed corpus (``corpus/KIND/*.bin``, from the project's own
sample volume, see ``make_corpus.py``), inputs built here by aclscan.samples (hives,
descriptors from SDDL) and the sample exports in ``sample_volumes/``, and, where
``../shared/data/windows`` is present, real Windows bytes read with The Sleuth Kit
(never copied into the tree). A missing source only means fewer seeds: the corpus
alone always seeds every kind.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from aclscan.samples.hives import HIVE_NAMES, Profile, Service, sam_hive, security_hive, software_hive, system_hive
from aclscan.samples.regf import hive_bytes
from aclscan.sd.sddl import from_sddl
from tests.sd.conftest import VOLUMES, _sds_entries, _tsk
from tests.shared_data import WINDOWS_DATA, expand

FUZZ = Path(__file__).resolve().parent
CORPUS = FUZZ / "corpus"
PROJECT = FUZZ.parents[1]
SAMPLES = PROJECT / "sample_volumes"

KINDS = ("sd", "sddl", "mft", "boot", "sds", "hive", "ldif", "csv")

MACHINE = "S-1-5-21-1004336348-1177238915-682003330"
DOMAIN = "S-1-5-21-3286904461-661230000-4220857270"

# Descriptors as Windows writes them (hand-checked SDDL of real files), plus the
# shapes the parser has branches for: NULL and empty DACLs, SACLs with a label,
# object ACEs, conditional (callback) ACEs, resource attributes.
SDDL_SEEDS = (
    "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICIIO;GA;;;CO)(A;OICI;0x1200a9;;;BU)",
    f"O:{MACHINE}-1001G:{MACHINE}-513D:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;FA;;;{MACHINE}-1001)",
    "O:SYG:SYD:NO_ACCESS_CONTROL",
    "O:BAD:P",
    "D:(D;;WD;;;WD)(A;;FR;;;AU)S:(ML;;NW;;;LW)",
    f"O:{DOMAIN}-512D:(OA;;RP;bf967a86-0de6-11d0-a285-00aa003049e2;;{DOMAIN}-1105)",
    "D:(XA;;FX;;;WD;(@User.Title == \"PM\" && Member_of {SID(BA)}))",
    "S:(RA;;;;;WD;(\"Project\",TS,0x0,\"Alpha\",\"Beta\"))(AU;SAFA;FA;;;WD)",
    "S:(RA;;;;;WD;(\"Flag\",TB,0x0,1,0))(RA;;;;;WD;(\"Level\",TI,0x0,-3,7))(RA;;;;;WD;(\"Size\",TU,0x0,42))"
    "(RA;;;;;WD;(\"Owner\",TD,0x0,SY,BA))(RA;;;;;WD;(\"Blob\",TX,0x0,00ff))",
)

_SERVICES = [
    Service("LanmanServer", "LocalSystem", required_privileges=("SeChangeNotifyPrivilege",)),
    Service("Backup", r".\backup", service_sid_type=1),
    Service("Agent", r"NETWERKS\svc-agent", start=3),
]
_PROFILES = [
    Profile(f"{MACHINE}-1001", r"C:\Users\alice"),
    Profile(f"{DOMAIN}-1105", r"C:\Users\bob.NETWERKS", state=0x100),
]


def corpus(kind: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((CORPUS / kind).glob("*.bin"))]


def built(kind: str) -> list[bytes]:
    """Seeds this project builds: descriptors from SDDL, hives, the sample exports."""
    if kind == "sd":
        return [from_sddl(text).to_bytes() for text in SDDL_SEEDS]
    if kind == "sddl":
        return [text.encode() for text in SDDL_SEEDS]
    if kind == "hive":
        trees = {
            "SAM": sam_hive(MACHINE),
            "SECURITY": security_hive("WS1", MACHINE, "NETWERKS", DOMAIN),
            "SYSTEM": system_hive("WS1", _SERVICES),
            "SOFTWARE": software_hive(_PROFILES),
        }
        return [hive_bytes(tree, name=HIVE_NAMES[kind]) for kind, tree in trees.items()]
    if kind in ("ldif", "csv"):
        return [path.read_bytes() for path in sorted(SAMPLES.glob(f"*.{kind}"))]
    return []


def windows(kind: str, scratch: Path) -> list[bytes]:
    """Real Windows bytes of one kind, where ../shared/data/windows and TSK are present."""
    if not WINDOWS_DATA.is_dir() or kind not in ("sd", "sds", "mft", "boot", "hive"):
        return []
    if kind == "hive":
        # The small hives only: every fuzz input is opened whole.
        names = ("studentpc8-SAM", "chitonsrv-SAM", "chitonsrv-SECURITY", "regipy-SAM")
        return [expand("hives", name, scratch).read_bytes() for name in names]
    if shutil.which("icat") is None or shutil.which("istat") is None:
        return []
    found: list[bytes] = []
    for volume, (offset, records) in VOLUMES.items():
        image = expand("volumes", volume, scratch)
        if kind == "boot":
            found.append(_tsk("icat", image, offset, "7")[:512])
        elif kind == "mft":
            mft = _tsk("icat", image, offset, "0")
            found += [mft[n * 1024 : (n + 1) * 1024] for n in (0, 5, 9, *records) if mft[n * 1024 : n * 1024 + 4] == b"FILE"]
        else:
            stat = _tsk("istat", image, offset, "9").decode()
            sds_attr = re.search(r"\$DATA \((128-\d+)\)\s+Name: \$SDS", stat).group(1)
            sds = _tsk("icat", image, offset, f"9-{sds_attr}")
            if kind == "sds":
                found.append(sds)
            else:
                found += list(_sds_entries(sds).values())
                for record in records:
                    try:
                        data = _tsk("icat", image, offset, f"{record}-80")
                    except subprocess.CalledProcessError:
                        continue
                    if data:
                        found.append(data)
    return list(dict.fromkeys(found))


def seeds(kind: str, scratch: Path) -> list[bytes]:
    found = corpus(kind) + built(kind) + windows(kind, scratch)
    assert found, f"no seeds of kind {kind}"
    return found
