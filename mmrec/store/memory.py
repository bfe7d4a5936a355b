"""Process-wide allocator settings for frame-sized buffers (glibc; elsewhere a no-op).

Every frame is copied once into a fresh buffer of ~50-500 KB, on the event loop, and freed
by a writer thread a few ms later. glibc serves such sizes with ``mmap`` at first, then,
after it adapts, from the heap, but trims the heap top whenever more than twice that is
free: with frames coming and going the heap keeps shrinking and growing, and every frame's
pages are faulted in again. Measured here (217 KB frames, freed by another thread): 55-77
µs of kernel time per frame, more than the receive copy itself; with the heap kept, 0.5.
:func:`keep_freed_memory` turns the trimming off, so freed frames are reused as they are.
The cost: the process keeps its peak heap (frames in flight at the busiest moment, up to
cameras x 120 queued frames during a long disk stall). ``mmrec record`` turns it on.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Final

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
MMAP_THRESHOLD: Final = 32 * 2**20  # glibc's maximum: anything smaller comes from the heap
TRIM_THRESHOLD: Final = 1 << 30  # never trim below 1 GiB of free heap


def keep_freed_memory() -> bool:
    """Keep freed frame buffers in the heap for reuse (see module doc); True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
