"""Task files (aclscan.scheduled_tasks): the sample volumes' tasks, and every way a
file can fail to be a task: a problem each, never an exception."""

from __future__ import annotations

import codecs
import json

import pytest

from aclscan.image import Image
from aclscan.places import TASK
from aclscan.scheduled_tasks import ROLE_GROUP, ROLE_USER, TASK_FILE, task_file_places, task_path
from aclscan.sd.descriptor import SecurityDescriptor
from aclscan.sd.sddl import to_sddl
from tests.scenarios import SAMPLES

PATH = "Windows/System32/Tasks/Backup/Nightly"

DOCUMENT = """<?xml version="1.0" encoding="{encoding}"?>
<Task version="1.4" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Author>PC\\admin</Author>
    <SecurityDescriptor>O:BAG:SYD:(A;;FA;;;BA)(A;;FRFX;;;S-1-5-21-1-2-3-1010)</SecurityDescriptor>
  </RegistrationInfo>
  <Principals>
    <Principal id="Author">
      <UserId>{user}</UserId>
      <LogonType>Password</LogonType>
    </Principal>
    <Principal id="Operators">
      <GroupId>S-1-5-32-551</GroupId>
    </Principal>
  </Principals>
  <Actions Context="Author"><Exec><Command>backup.exe</Command></Exec></Actions>
</Task>
"""


def utf16(text: str) -> bytes:
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def test_a_task_written_as_windows_writes_it():
    places, problems = task_file_places(utf16(DOCUMENT.format(encoding="UTF-16", user="S-1-5-21-1-2-3-1009")), PATH)
    assert problems == []
    assert {p.path for p in places} == {"task \\Backup\\Nightly"}
    assert {(p.kind, p.hive) for p in places} == {(TASK, TASK_FILE)}
    by_location = {p.location: p for p in places}
    assert set(by_location) == {
        f"{PATH}|RegistrationInfo/SecurityDescriptor",
        f"{PATH}|Principals/Principal[Author]/UserId",
        f"{PATH}|Principals/Principal[Operators]/GroupId",
    }
    descriptor = by_location[f"{PATH}|RegistrationInfo/SecurityDescriptor"].descriptor
    # FRFX: FILE_GENERIC_READ | FILE_GENERIC_EXECUTE = 0x120089 | 0x1200a0 (winnt.h)
    expected = "O:BAG:SYD:(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-21-1-2-3-1010)"
    assert to_sddl(SecurityDescriptor.from_bytes(descriptor)) == expected
    user = by_location[f"{PATH}|Principals/Principal[Author]/UserId"]
    assert (user.sid, user.account, user.role, user.descriptor) == ("S-1-5-21-1-2-3-1009", None, ROLE_USER, None)
    group = by_location[f"{PATH}|Principals/Principal[Operators]/GroupId"]
    assert (group.sid, group.role) == ("S-1-5-32-551", ROLE_GROUP)


def test_a_name_is_kept_for_the_scan_to_resolve():
    places, problems = task_file_places(utf16(DOCUMENT.format(encoding="UTF-16", user="AVHOST\\AVService")), PATH)
    assert problems == []
    user = next(p for p in places if p.role == ROLE_USER)
    assert (user.sid, user.account) == (None, "AVHOST\\AVService")


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8])
def test_utf8_with_a_declaration(bom):
    data = bom + DOCUMENT.format(encoding="UTF-8", user="S-1-5-18").encode("utf-8")
    places, problems = task_file_places(data, PATH)
    assert problems == [] and len(places) == 3


BAD = {
    "not xml": utf16("this is not a task"),
    "truncated": utf16(DOCUMENT.format(encoding="UTF-16", user="S-1-5-18"))[:300],
    "utf-16 without a bom": DOCUMENT.format(encoding="UTF-16", user="S-1-5-18").encode("utf-16-le"),
    "utf-16 big endian": codecs.BOM_UTF16_BE + DOCUMENT.format(encoding="UTF-16", user="S-1-5-18").encode("utf-16-be"),
    "utf-8 without a declaration": b"<Task xmlns='http://schemas.microsoft.com/windows/2004/02/mit/task'/>",
    "latin-1 declared": b'<?xml version="1.0" encoding="ISO-8859-1"?><Task/>',
    "odd utf-16 bytes": codecs.BOM_UTF16_LE + b"<\x00T\x00\x00\xdc",
    "empty": b"",
    "entity expansion": utf16('<?xml version="1.0"?><!DOCTYPE Task [<!ENTITY a "aaaaaaaaaa">'
                              '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Task>&b;</Task>'),
    "external entity": utf16('<?xml version="1.0"?><!DOCTYPE Task [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                             '<Task><RegistrationInfo><SecurityDescriptor>&x;</SecurityDescriptor>'
                             '</RegistrationInfo></Task>'),
    "bad sddl": utf16(DOCUMENT.format(encoding="UTF-16", user="S-1-5-18").replace("O:BAG:SY", "O:XX")),
    "bad sid": utf16(DOCUMENT.format(encoding="UTF-16", user="S-1-5-banana")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_file_that_is_no_task_is_a_problem(case):
    places, problems = task_file_places(BAD[case], PATH)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.kind == TASK and problem.where.startswith(PATH) and problem.reason
    assert "\n" not in problem.reason
    if case in ("bad sddl", "bad sid"):  # the rest of the file is still read
        assert places and problem.where.startswith(f"{PATH}|")
    else:
        assert places == []
    if case in ("entity expansion", "external entity"):
        assert "DOCTYPE" in problem.reason
    if case == "utf-16 without a bom":
        assert "byte order mark" in problem.reason


def test_task_path():
    assert task_path("Windows/System32/Tasks/AVScan/Update") == "\\AVScan\\Update"
    assert task_path("windows\\system32\\tasks\\Top") == "\\Top"
    assert task_path("elsewhere/Update") == "\\elsewhere\\Update"


@pytest.mark.parametrize("name", ["av-service", "clean"])
def test_the_sample_volumes_tasks_are_the_builders(name):
    manifest = json.loads((SAMPLES / f"{name}.json").read_text())
    wanted = sorted((o["path"], tuple(o["sids"])) for o in manifest["places"]["objects"] if o["hive"] == TASK_FILE)
    assert wanted
    got = []
    with Image(SAMPLES / f"{name}.img.gz") as image:
        volume = image.open_volume(image.volumes()[0])
        for task in sorted({path for path, _sids in wanted}):
            path = "Windows/System32/Tasks" + task[len("task "):].replace("\\", "/")
            data = volume.open_path(f"/{path}")
            assert data.startswith(codecs.BOM_UTF16_LE)
            places, problems = task_file_places(data, path)
            assert problems == []
            for place in places:
                sids = {str(s) for s in SecurityDescriptor.from_bytes(place.descriptor).sids} if place.descriptor \
                    else {place.sid}
                got.append((place.path, tuple(sorted(sids, key=lambda s: [int(x) for x in s.split("-")[1:]]))))
    assert sorted(got) == wanted
