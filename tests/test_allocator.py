"""aclscan.allocator: after keep_freed_memory() the memory a chunk's arrays freed
serves the next chunk, instead of going back to the system and being faulted in
again page by page (what each chunk of a scan did: bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from aclscan.allocator import keep_freed_memory
    if sys.argv[1] == "kept":
        assert keep_freed_memory()
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    def chunk():  # as a chunk of the scan does: several arrays made, then all freed
        arrays = [np.ones(4 << 20, dtype=np.uint8) for _ in range(6)]  # 6,144 pages of 4 KiB, written
        del arrays
    chunk()  # the first is faulted in either way
    before = faults()
    for _ in range(20):
        chunk()
    print(faults() - before)
""")


def faults_for_twenty_chunks(mode: str) -> int:
    script = SCRIPT.format(root=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_arrays_are_reused_not_faulted_in_again():
    pages = 20 * 6 * (4 << 20) // 4096
    plain = faults_for_twenty_chunks("plain")
    kept = faults_for_twenty_chunks("kept")
    assert plain > pages // 4, plain  # glibc alone gives much of the freed heap back, and faults it in again
    assert kept < pages // 50, kept  # kept: the same pages again
