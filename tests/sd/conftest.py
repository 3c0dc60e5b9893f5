"""Real descriptors written by Windows, mkntfs and ntfs-3g, read with The Sleuth Kit.

The volumes are in ../shared/data/windows (see its README); the descriptors are
taken from ``$Secure:$SDS`` and from per-file ``$SECURITY_DESCRIPTOR`` attributes
by ``icat``, a reader no one here wrote. Tests using them are marked ``shared``
and skip when the data or the tools are missing.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from dataclasses import dataclass

import pytest

from tests.shared_data import expand

# volume: (byte offset of the NTFS partition, records that may hold a $SECURITY_DESCRIPTOR)
VOLUMES = {
    "win10-lastaccess.raw": (65536, (5, 7, 12, 13, 14, 15)),  # as the data's README lists them
    "hybrid-perfile-sd.raw": (63 * 512, range(71)),
}


@dataclass(frozen=True)
class RealDescriptor:
    volume: str
    where: str  # "$SDS id 256" or "record 5"
    data: bytes


def _tsk(tool: str, image, offset, *args: str) -> bytes:
    cmd = [tool]
    if offset:
        cmd += ["-o", str(offset // 512)]
    return subprocess.run([*cmd, str(image), *args], capture_output=True, check=True).stdout


def _sds_entries(stream: bytes) -> dict[int, bytes]:
    """$SDS entries by security id (the 256 KiB mirror blocks repeat them)."""
    found: dict[int, bytes] = {}
    pos = 0
    while pos + 20 <= len(stream):
        _hash, security_id, offset, length = struct.unpack_from("<IIQI", stream, pos)
        if length >= 20 and offset in (pos, pos - 0x40000):
            found.setdefault(security_id, stream[pos + 20 : pos + length])
            pos += (length + 15) & ~15
        else:  # end of the used part of a block
            pos = (pos // 0x40000 + 1) * 0x40000
    return found


@pytest.fixture(scope="session")
def windows_descriptors(tmp_path_factory) -> list[RealDescriptor]:
    for tool in ("icat", "istat"):
        if shutil.which(tool) is None:
            pytest.skip(f"The Sleuth Kit's {tool} is not installed")
    directory = tmp_path_factory.mktemp("windows_volumes")
    found: list[RealDescriptor] = []
    for volume, (offset, records) in VOLUMES.items():
        image = expand("volumes", volume, directory)
        stat = _tsk("istat", image, offset, "9").decode()
        sds_attr = re.search(r"\$DATA \((128-\d+)\)\s+Name: \$SDS", stat).group(1)
        for security_id, data in sorted(_sds_entries(_tsk("icat", image, offset, f"9-{sds_attr}")).items()):
            found.append(RealDescriptor(volume, f"$SDS id {security_id}", data))
        for record in records:
            try:  # type 80 is $SECURITY_DESCRIPTOR; icat fails where a record has none
                data = _tsk("icat", image, offset, f"{record}-80")
            except subprocess.CalledProcessError:
                continue
            if data:
                found.append(RealDescriptor(volume, f"record {record}", data))
    return found
