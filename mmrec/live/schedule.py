"""When the live preview makes a mosaic, and which tiles a mosaic decodes.

Recording has priority, so the preview keeps to a budget in two ways:
- :class:`Ticker` runs a tick every period on the event loop; a tick still running when the
  next one is due makes that one skipped and counted (the preview rate drops), and a late
  loop never bursts to catch up;
- :func:`tiles_in_budget` and :func:`pick_tiles` (pure) decode at most as many changed
  tiles a tick as fit the CPU budget, from running estimates of the decode and compose
  times; the rest are skipped round-robin, so none starves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

WORKER_NICE: Final = 10  # picture work runs this much nicer than recording


def nice_worker() -> None:
    """Thread initializer: run this thread at nice +:data:`WORKER_NICE` (recording wins
    the CPU from it); for pools of picture work, and the picture worker process itself."""
    # Linux: niceness is per thread (task); threads started from here (x264's) inherit it.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)


def next_due(due: float, now: float, period: float) -> float:
    """The tick after the one due at ``due``: a period later, or a period from ``now`` if
    that is already past (never a burst of ticks to catch up)."""
    due += period
    return now + period if due < now else due


def tiles_in_budget(cpu_budget: float, fps: float, encode_ms: float, decode_ms: float) -> int:
    """How many tiles one tick may decode: ``cpu_budget`` x the tick period, less what
    composing and encoding the mosaic takes, over one decode (at least one tile)."""
    budget_ms = cpu_budget * 1000.0 / fps - encode_ms
    return max(1, int(budget_ms / max(decode_ms, 0.1)))


def pick_tiles(changed: Sequence[int], n: int, start_at: int) -> tuple[list[int], int, int]:
    """Of the ``changed`` tiles (ascending), the at most ``n`` to decode now, round-robin
    from tile ``start_at``. Returns them in order, how many were skipped, and where the
    next tick starts."""
    if len(changed) <= n:
        return list(changed), 0, start_at
    start = next((k for k, i in enumerate(changed) if i >= start_at), 0)
    order = [*changed[start:], *changed[:start]]
    return sorted(order[:n]), len(order) - n, order[n - 1] + 1


class Ticker:
    """Awaits ``tick()`` every ``period`` seconds on the running loop until stopped."""

    def __init__(self, tick: Callable[[], Coroutine[Any, Any, None]], period: float) -> None:
        self._tick = tick
        self._period = period
        self._task: asyncio.Task[None] | None = None
        self._running: asyncio.Task[None] | None = None
        self.late = 0  # ticks skipped because the previous one was still running

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="preview")

    async def stop(self) -> None:
        """Stop ticking; wait for a tick that is running."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._running is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._running

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            if self._running is not None and not self._running.done():
                self.late += 1  # the CPU is short: skip this tick, the rate drops
            else:
                self._running = asyncio.create_task(self._tick(), name="preview-tick")
            now = loop.time()
            due = next_due(due, now, self._period)
            await asyncio.sleep(due - now)
