"""Test support that tests import: small real JPEGs, simulated nodes on loopback, fake
cameras' pacing, and waiting on events or conditions (never sleeping blindly).

Fixtures (state a test asks for by name: the fast ingest config, whether O_DIRECT works
here) are in ``conftest.py``; what takes arguments or is called mid-test lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np
from turbojpeg import TurboJPEG

from mmrec.sim import NodeConfig, SimMesh
from mmrec.wire import jpeg

T = TypeVar("T")


@lru_cache(maxsize=1)
def tj() -> TurboJPEG:
    """One TurboJPEG handle for the test process."""
    return TurboJPEG()


@lru_cache(maxsize=64)
def make_jpeg(width: int = 64, height: int = 48, shade: int = 0) -> bytes:
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:, :, 0] = shade % 256
    img[:, :, 1] = np.arange(width, dtype=np.uint32)[None, :] % 256
    return bytes(tj().encode(img, quality=80))


def sim_jpeg(node: str, frame: int, true_ns: int, width: int = 64, height: int = 48) -> bytes:
    """A JPEG carrying the simulator's COM record, as the simulator would send it."""
    base = make_jpeg(width, height)
    rec = f"mmcam-sim node={node} frame={frame} true_ns={true_ns}".encode()
    return base[:2] + jpeg.com_segment(rec) + base[2:]


def loopback_mesh(configs: Sequence[NodeConfig], *, mdns: bool = False, **kw: Any) -> SimMesh:
    """Simulated nodes on 127.0.0.1, each on a free port; mDNS (bound to loopback) only
    when asked for."""
    return SimMesh(list(configs), base_host="127.0.0.1", port=0, mdns=mdns, **kw)


class Arrivals(list[T]):
    """What a callback received (``append`` is the callback), with a wait for how many:
    the wait wakes on each arrival, it does not poll."""

    def __init__(self) -> None:
        super().__init__()
        self._grew = asyncio.Event()

    def append(self, item: T) -> None:
        super().append(item)
        self._grew.set()

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` items have arrived; fail the test after ``timeout`` s."""
        try:
            async with asyncio.timeout(timeout):
                while len(self) < count:
                    self._grew.clear()
                    await self._grew.wait()
        except TimeoutError:
            raise AssertionError(f"{len(self)} of {count} arrivals within {timeout} s") from None


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Check ``predicate`` every 20 ms until true; fail the test after ``timeout`` s.

    A poll, kept on purpose for what has no event to wait on: counters that writer
    threads and other processes advance (a take's status, a live manifest on disk,
    an ingest's parser state). The interval only bounds how late the test notices;
    nothing here guesses how long the work takes. Prefer an event where there is one
    (:class:`Arrivals`, ``SimNode.wait_until``).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)  # poll interval of a condition wait (see docstring)


# The only sleeps in tests/ are the four below, each documented: a condition poll's
# interval, a fake camera's pacing, a window of time that is itself under test, and one
# pass of the event loop. None of them waits for a result by guessing how long it takes.


async def pace(seconds: float) -> None:
    """A fake camera's pacing between writes (its frame rate, a slow link): the timing
    is the behaviour under test, not a wait for a result."""
    await asyncio.sleep(seconds)  # pacing a fake camera, not waiting


async def hold(seconds: float) -> None:
    """Let ``seconds`` pass on purpose, where the time itself is under test: a window in
    which something must *not* happen (a retry a hammering client would make), or a
    random moment to kill a process at. Never a wait for a result."""
    await asyncio.sleep(seconds)  # the window under test, not a wait


async def next_pass() -> None:
    """One pass of the event loop: every task that is ready runs once; no time passes."""
    await asyncio.sleep(0)  # a yield, not a wait


def sent_in_take(sent: Iterable[Any], manifest: Any, fps: float = 30.0) -> tuple[int, int]:
    """How many of a simulated node's sent frames a take must hold: (at least, at most).

    A take ends on an instant: every frame captured before it is in the take and none
    captured after it, to within one frame period (the clock model's placement of the
    frames around the stop)."""
    stop_ns = manifest.start_realtime_ns + (manifest.duration_ns or 0)
    period = int(1e9 / fps)
    true = [f.true_ns for f in sent]
    return sum(t < stop_ns - period for t in true), sum(t < stop_ns + period for t in true)


@contextlib.asynccontextmanager
async def serve_404() -> AsyncIterator[int]:
    """A loopback HTTP server answering every path "404 Not Found" (a camera whose stream
    is gone); yields its port, and is stopped on leaving."""
    from aiohttp import web

    async def missing(_: web.Request) -> web.Response:
        return web.Response(status=404, text="no such stream")

    app = web.Application()
    app.router.add_get("/{tail:.*}", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()
