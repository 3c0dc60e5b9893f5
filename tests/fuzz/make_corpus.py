"""Write the fuzz corpus's seed files from the project's own sample volume.

Run from the project root, by hand, only to refresh the seeds on purpose::

    python -m tests.fuzz.make_corpus

The bytes are read by The Sleuth Kit (``icat``, ``fls``), not by aclscan, from
``sample_volumes/clean.img.gz`` (made by this project, so it may be copied;
the real Windows data under ``../shared`` is read at test time instead and never
copied into the tree). Crashers are not written here: each is a named test in
``test_crashers.py`` with its bytes under ``corpus/crashers/``.
"""

from __future__ import annotations

import gzip
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from tests.fuzz.seeds import CORPUS, PROJECT

IMAGE = PROJECT / "sample_volumes" / "clean.img.gz"
RECORD_SIZE = 1024
# $MFT, the root directory, $Secure, and the first ordinary files and directories.
RECORDS = (0, 5, 9, 64, 67, 69, 70, 72)
SDS_HEAD = 4096  # the first entries of the primary block are enough to seed from


def _icat(image: Path, *address: str) -> bytes:
    return subprocess.run(["icat", str(image), *address], capture_output=True, check=True).stdout


def _sds_entries(stream: bytes) -> list[bytes]:
    """The descriptors of the primary block's entries, read by the header fields alone."""
    found = []
    pos = 0
    while pos + 20 <= min(len(stream), 0x40000):
        _hash, _security_id, offset, length = struct.unpack_from("<IIQI", stream, pos)
        if length < 20 or offset != pos:
            break
        found.append(stream[pos + 20 : pos + length])
        pos += (length + 15) & ~15
    return found


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        image = Path(scratch) / "clean.img"
        with gzip.open(IMAGE, "rb") as src, open(image, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        for kind in ("sd", "sds", "mft", "boot"):
            (CORPUS / kind).mkdir(parents=True, exist_ok=True)
        stat = subprocess.run(["istat", str(image), "9"], capture_output=True, check=True, text=True).stdout
        sds = _icat(image, "9-" + re.search(r"\$DATA \((128-\d+)\)\s+Name: \$SDS", stat).group(1))
        for index, descriptor in enumerate(dict.fromkeys(_sds_entries(sds))):
            (CORPUS / "sd" / f"clean-sds-{index}.bin").write_bytes(descriptor)
        (CORPUS / "sds" / "clean-head.bin").write_bytes(sds[:SDS_HEAD])
        mft = _icat(image, "0")
        for record in RECORDS:
            (CORPUS / "mft" / f"clean-record-{record}.bin").write_bytes(
                mft[record * RECORD_SIZE : (record + 1) * RECORD_SIZE]
            )
        (CORPUS / "boot" / "clean-boot.bin").write_bytes(_icat(image, "7")[:512])


if __name__ == "__main__":
    main()
