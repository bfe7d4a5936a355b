"""Process-wide allocator settings for frame-sized buffers (glibc; elsewhere a no-op).

Every frame is copied once into a fresh buffer of ~50-500 KB, on the event loop, and freed
by a writer thread a few ms later. glibc serves such sizes with ``mmap`` at first, then,
after it adapts, from the heap, but trims the heap top whenever more than twice that is
free: with frames coming and going the heap keeps shrinking and growing, and every frame's
pages are faulted in again. Measured here (217 KB frames, freed by another thread): 55-77
µs of kernel time per frame, more than the receive copy itself; with the heap kept, 0.5.
:func:`keep_freed_memory` turns the trimming off, so freed frames are reused as they are.
The cost: the process keeps its peak heap (frames in flight at the busiest moment, up to
cameras x 120 queued frames during a long disk stall); blocks from ``MMAP_THRESHOLD`` up
are not kept. ``mmrec record`` turns it on.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Final

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
# Below this, allocations come from the heap and stay there once freed; above it, from
# mmap, returned at once. Every frame fits below it (a 4K JPEG is 1-4 MB). Bigger blocks
# are rare and transient: a parser's receive buffer grown for a huge or endless part (a
# hostile server), a direct payload up to mmrec.wire.receive.DIRECT_MAX. Kept in the heap
# (glibc's maximum, 32 MiB, was the setting once), each such episode left its buffers there
# for good: 1+2+4+8+16 MiB per hostile camera. Measured: benchmarks/bench_hostile.py.
MMAP_THRESHOLD: Final = 8 * 2**20
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
