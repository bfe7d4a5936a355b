"""Frame payloads in block-aligned memory, so the writer can send them with ``O_DIRECT``.

Why: at tens of streams a recorder writes hundreds of MB/s. Through the page cache every
frame is copied once more by the kernel, and the cache's growth, writeback and dirty-page
throttling make that copy cost vary by 10x over a take (measured on this machine:
55 µs per 217 KB frame at first, 400-600 µs once ~7 GB had gone through; with
``O_DIRECT`` a steady 45-60 µs). Direct I/O needs the memory, file offset and length
aligned to the device's block; the parser's one copy of a payload (out of the receive
buffer), or the kernel's own receive copy for a large payload of declared length
(see mmrec.wire.receive), goes straight into such memory, so direct writes need no extra copy.

Layout of one allocation (``ALIGN`` = 4 KiB)::

    | ... | HEAD bytes | payload (n bytes) | >= TAIL bytes | ... |
          ^ aligned

The container's framing goes into ``HEAD`` (a Void element, cluster and block headers)
and a Void element pads the tail to the next block, so one aligned write carries the
whole frame. :func:`region` finds that layout again from the payload's memoryview.
"""

from __future__ import annotations

from ctypes import addressof, c_char
from typing import Final

import numpy as np
import numpy.typing as npt

ALIGN: Final = 4096  # a multiple of every device's logical block size in use (512, 4096)
HEAD: Final = 64  # container framing before the payload (mkv needs at most ~33)
TAIL: Final = ALIGN + 1  # a Void pad to the next block (a Void takes at least 2 bytes)

Bytes = bytes | memoryview  # a frame's payload, as the parser hands it out


class _Block(np.ndarray):
    """An allocation made by :func:`aligned`: it knows where its payload is, so
    :func:`region` needs no address arithmetic per frame (that cost ~3 µs)."""

    payload_at: int = 0
    payload_len: int = -1  # slices of an allocation are blocks too, with no payload


def aligned(n: int) -> memoryview:
    """A writable view of ``n`` bytes with ``HEAD`` bytes before it starting on an
    ``ALIGN`` boundary, and ``TAIL`` bytes after it (see module doc)."""
    raw = np.empty(n + HEAD + TAIL + ALIGN, np.uint8).view(_Block)
    mem = memoryview(raw)  # type: ignore[arg-type]
    # The address through ctypes: half the cost of the array interface's dict (1.7 against
    # 3.2 µs a call here), and ``raw.ctypes.data`` costs more than either.
    start = (-addressof(c_char.from_buffer(mem))) % ALIGN + HEAD
    raw.payload_at = start
    raw.payload_len = n
    return mem[start : start + n]


def region(data: Bytes) -> tuple[npt.NDArray[np.uint8], int] | None:
    """``(backing array, payload offset)`` if ``data`` is a payload view from
    :func:`aligned` (read-only or not), else None (plain ``bytes``, any other memory, or
    only part of a payload: the framing written around it would overwrite the rest)."""
    if type(data) is not memoryview:
        return None
    raw: object = data.obj
    if not isinstance(raw, _Block) or data.nbytes != raw.payload_len or not data.c_contiguous:
        return None
    # A view of the same length as the payload is taken for the payload view itself:
    # aligned() hands out only that one, and slices of it are shorter or equal to it (a
    # view made from ``.obj`` at another offset would not be, and must not be passed).
    return raw, raw.payload_at
