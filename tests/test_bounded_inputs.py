"""Every input is bounded: a FIFO, /dev/zero and gzip bombs end within seconds
with one line and the documented exit code; the expanded image of a .gz is
removed on SIGTERM and SIGHUP too."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aclscan.image import stated_image_size

MiB = 1 << 20
PROJECT = Path(__file__).resolve().parent.parent
SAMPLE = PROJECT / "sample_volumes" / "quickstart.img.gz"
DEADLINE = 10  # seconds each refusal may take, at most


def aclscan(*args, env=None, timeout=DEADLINE):
    """Run the command line in a child process (a blocking read would hang a test in-process)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "aclscan", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=PROJECT)
    return done.returncode, done.stderr.strip().splitlines(), time.monotonic() - started


def gzip_of(parts: list[bytes], repeat_last: int = 1) -> bytes:
    """A gzip file of ``parts``; the last one repeated as whole gzip members (cheap
    to make, expands to ``repeat_last`` times its size)."""
    *head, last = parts
    body = gzip.compress(b"".join(head), compresslevel=1) if head else b""
    return body + gzip.compress(last, compresslevel=1) * repeat_last


def _volume(tmp_path) -> bytes:
    if shutil.which("mkntfs") is None:
        pytest.skip("mkntfs (ntfs-3g) is not installed")
    path = tmp_path / "vol.raw"
    with open(path, "wb") as fh:
        fh.truncate(8 * MiB)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", "-L", "bounded", str(path)], check=True, capture_output=True)
    return path.read_bytes()


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_fifo_as_image(fifo, tmp_path):
    code, lines, _ = aclscan("scan", fifo, "--db", tmp_path / "x.db")
    assert (code, lines) == (4, [f"Error: image {fifo} is a named pipe (FIFO), not a regular file or block device"])


def test_fifo_as_domain_export(fifo, tmp_path):
    code, lines, _ = aclscan("scan", SAMPLE, "--db", tmp_path / "x.db", "--domain", fifo)
    assert (code, lines) == (10, [f"Error: domain export {fifo} is a named pipe (FIFO), not a regular file"])


def test_fifo_given_to_check(fifo):
    code, lines, _ = aclscan("check", fifo)
    assert code == 4 and len(lines) == 1 and "named pipe (FIFO)" in lines[0]


def test_dev_zero_as_image_and_domain_export(tmp_path):
    code, lines, _ = aclscan("scan", "/dev/zero", "--db", tmp_path / "x.db")
    assert (code, lines) == (4, ["Error: image /dev/zero is a character device, not a regular file or block device"])
    code, lines, _ = aclscan("scan", SAMPLE, "--db", tmp_path / "x.db", "--domain", "/dev/zero")
    assert (code, lines) == (10, ["Error: domain export /dev/zero is a character device, not a regular file"])


def test_domain_export_line_too_long(tmp_path):
    from aclscan.accounts.domain import MAX_LINE_CHARS

    export = tmp_path / "huge.ldif"
    export.write_bytes(b"dn: CN=x,DC=example\ndescription: " + b"a" * (MAX_LINE_CHARS + 1) + b"\n")
    code, lines, _ = aclscan("scan", SAMPLE, "--db", tmp_path / "x.db", "--domain", export)
    assert code == 11 and len(lines) == 1
    assert lines[0].startswith("Error: LDIF huge.ldif: line 2: ") and "more than the" in lines[0]


def test_gzip_bomb_of_zeros_is_refused_before_expanding(tmp_path):
    bomb = tmp_path / "bomb.img.gz"
    bomb.write_bytes(gzip_of([bytes(64 * MiB)], repeat_last=64))  # 4 GiB of zeros
    code, lines, seconds = aclscan("scan", bomb, "--db", tmp_path / "x.db", env={"TMPDIR": str(tmp_path)})
    assert code == 4 and seconds < DEADLINE
    assert lines == [f"Error: {bomb}: its first sectors hold neither a partition table nor an NTFS boot sector:"
                     " not expanded"]
    assert not list(tmp_path.glob("aclscan-*"))


def test_gzip_bomb_behind_a_boot_sector_expands_only_the_volume(tmp_path):
    volume = _volume(tmp_path)
    assert stated_image_size(volume[:512]) == len(volume)  # mkntfs: the boot sector states the whole file
    bomb = tmp_path / "bomb.img.gz"
    bomb.write_bytes(gzip_of([volume, bytes(64 * MiB)], repeat_last=64))  # then 4 GiB of zeros
    code, lines, seconds = aclscan("scan", bomb, "--db", tmp_path / "b.db", "--no-resolve", "-q")
    assert (code, lines) == (0, []) and seconds < DEADLINE
    plain = tmp_path / "plain.raw"
    plain.write_bytes(volume)
    assert aclscan("scan", plain, "--db", tmp_path / "p.db", "--no-resolve", "-q")[0] == 0
    query = "SELECT entry, path, descriptor_key FROM files ORDER BY entry"
    bombed = sqlite3.connect(tmp_path / "b.db").execute(query).fetchall()
    assert bombed and bombed == sqlite3.connect(tmp_path / "p.db").execute(query).fetchall()


def test_gzip_stating_more_than_max_expand(tmp_path):
    boot = bytearray(_volume(tmp_path)[:512])
    boot[0x28:0x30] = (1 << 40).to_bytes(8, "little")  # 512 TiB of sectors
    bomb = tmp_path / "big.img.gz"
    bomb.write_bytes(gzip_of([bytes(boot), bytes(MiB)]))
    code, lines, seconds = aclscan("scan", bomb, "--db", tmp_path / "x.db")
    assert code == 4 and seconds < DEADLINE and len(lines) == 1
    assert lines[0].startswith(f"Error: {bomb} states 562,949,953,421,824 bytes, more than --max-expand ")
    small = tmp_path / "small.img.gz"
    small.write_bytes(gzip.compress(_volume(tmp_path)))
    code, lines, _ = aclscan("scan", small, "--db", tmp_path / "x.db", "--max-expand", "4M")
    assert code == 4 and lines == [f"Error: {small} states 8,388,608 bytes, more than --max-expand 4,194,304: not "
                                   "expanded (raise --max-expand, or decompress it yourself)"]


def test_partition_table_states_the_size(tmp_path):
    mbr = bytearray(512)
    mbr[446 + 4] = 0x07
    mbr[446 + 8 : 446 + 16] = (2048).to_bytes(4, "little") + (16384).to_bytes(4, "little")
    mbr[510:512] = b"\x55\xaa"
    assert stated_image_size(bytes(mbr)) == (2048 + 16384) * 512
    mbr[446 + 4] = 0
    assert stated_image_size(bytes(mbr)) is None  # a signature without partitions is no table


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_expanded_image_removed_on_signal(tmp_path, signum):
    boot = bytearray(_volume(tmp_path)[:512])
    boot[0x28:0x30] = ((3 << 30) // 512).to_bytes(8, "little")  # states 3 GiB
    slow = tmp_path / "slow.img.gz"
    slow.write_bytes(gzip_of([bytes(boot), bytes(64 * MiB)], repeat_last=48))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    child = subprocess.Popen([sys.executable, "-m", "aclscan", "scan", str(slow), "--db", str(tmp_path / "x.db")],
                             env={**os.environ, "TMPDIR": str(scratch)}, cwd=PROJECT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DEADLINE
        while not list(scratch.glob("aclscan-*/image.raw")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(scratch.glob("aclscan-*/image.raw")), "expansion did not start"
        child.send_signal(signum)
        assert child.wait(timeout=DEADLINE) == -signum
    finally:
        if child.poll() is None:
            child.kill()
    assert list(scratch.iterdir()) == []
