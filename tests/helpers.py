"""Test helpers: small real JPEGs and waiting on conditions (never sleeping blindly)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from turbojpeg import TurboJPEG

from mmrec.wire import jpeg


@lru_cache(maxsize=1)
def _tj() -> TurboJPEG:
    return TurboJPEG()


@lru_cache(maxsize=64)
def make_jpeg(width: int = 64, height: int = 48, shade: int = 0) -> bytes:
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:, :, 0] = shade % 256
    img[:, :, 1] = np.arange(width, dtype=np.uint32)[None, :] % 256
    return bytes(_tj().encode(img, quality=80))


def sim_jpeg(node: str, frame: int, true_ns: int, width: int = 64, height: int = 48) -> bytes:
    """A JPEG carrying the simulator's COM record, as the simulator would send it."""
    base = make_jpeg(width, height)
    rec = f"mmcam-sim node={node} frame={frame} true_ns={true_ns}".encode()
    return base[:2] + jpeg.com_segment(rec) + base[2:]


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` on the loop until true; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def o_direct_works(folder: Path) -> bool:
    """Whether files in ``folder`` can be opened O_DIRECT (not on tmpfs, for one)."""
    if not hasattr(os, "O_DIRECT"):
        return False
    probe = folder / ".o_direct_probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


def sent_in_take(sent: Iterable[Any], manifest: Any, fps: float = 30.0) -> tuple[int, int]:
    """How many of a simulated node's sent frames a take must hold: (at least, at most).

    A take ends on an instant: every frame captured before it is in the take and none
    captured after it, to within one frame period (the clock model's placement of the
    frames around the stop)."""
    stop_ns = manifest.start_realtime_ns + (manifest.duration_ns or 0)
    period = int(1e9 / fps)
    true = [f.true_ns for f in sent]
    return sum(t < stop_ns - period for t in true), sum(t < stop_ns + period for t in true)
