"""How the C allocator treats the large, short-lived arrays of a bulk pass.

A scan parses `$MFT` in chunks of 16 MiB: every chunk makes and frees dozens of
numpy arrays of a few hundred KiB to several MiB. glibc's malloc serves such sizes
with fresh mmap()s, or gives freed heap back to the system, so each chunk faults
its memory in again (about 85,000 page faults and 0.6 s of a 3.5 s scan of a
million files; bench/README.md). Kept, the same pages serve the next chunk.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt(3) parameters (glibc malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

# Blocks below 32 MiB (glibc's largest allowed threshold) come from the heap, freed
# heap up to 256 MiB is kept for reuse, and the heap grows 64 MiB at a time.
SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 256 << 20), (M_TOP_PAD, 64 << 20))


def keep_freed_memory() -> bool:
    """Tune this process's malloc for bulk passes (inherited by forked children).
    Returns whether every setting took; elsewhere than glibc it does nothing."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(parameter, value) == 1 for parameter, value in SETTINGS)
