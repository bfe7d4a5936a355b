"""A simulated node's frame clock on the event loop: which frame is due when, on one timer.

Frame numbers come from time since the node's first start (``origin_mono``), so a watcher
that connects late, or reconnects, simply misses what was captured meanwhile. The timer
(``loop.call_at``) runs only while someone watches; each tick hands the node one frame
number, in order, and skips ahead (counted in ``frames_late``) when the loop fell more
than a frame behind, as a live camera would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mmrec.sim.timing import FrameSchedule


class FramePacer:
    """Times the frames of ``schedule``: ``on_frame(n)`` at frame n's send time, while
    ``watched()``; frames leave in order even when jitter would swap them."""

    def __init__(
        self,
        schedule: FrameSchedule,
        on_frame: Callable[[int], None],
        watched: Callable[[], bool],
    ) -> None:
        self.schedule = schedule
        self.origin_mono: int | None = None  # the monotonic clock at the node's first start
        self.frames_late = 0  # skipped because the event loop fell a frame behind
        self._on_frame = on_frame
        self._watched = watched
        self._timer: asyncio.TimerHandle | None = None
        self._next_frame = 0
        self._last_send_mono = 0

    def current_frame(self) -> int:
        """The newest frame captured by now (-1 before the node first starts)."""
        if self.origin_mono is None:
            return -1
        return self.schedule.frame_at(time.monotonic_ns() - self.origin_mono)

    async def wait_captured(self, frame: int) -> None:
        """Wait until ``frame`` has been captured, whether or not anyone watches."""
        assert self.origin_mono is not None
        loop = asyncio.get_running_loop()
        while self.current_frame() < frame:
            due_ns = self.origin_mono + self.schedule.capture_ns(frame)
            woken = loop.create_future()
            timer = loop.call_at(
                loop.time() + (due_ns - time.monotonic_ns()) / 1e9, _resolve, woken
            )
            try:
                await woken
            finally:
                timer.cancel()

    def arm(self) -> None:
        """Start ticking (a watcher came), from the next frame not yet due: a new watcher
        gets the next capture, like a live camera."""
        if self._timer is not None or self.origin_mono is None:
            return
        loop = asyncio.get_running_loop()
        elapsed = time.monotonic_ns() - self.origin_mono
        self._next_frame = self.schedule.frame_at(elapsed - self.schedule.delay_ns) + 1
        self._schedule(loop)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.origin_mono is not None
        due = self.origin_mono + self.schedule.send_ns(self._next_frame)
        # Frames leave in order even when jitter would swap them (a phone has one queue).
        due = max(due, self._last_send_mono)
        now = time.monotonic_ns()
        self._timer = loop.call_at(loop.time() + (due - now) / 1e9, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if not self._watched() or self.origin_mono is None:
            return
        loop = asyncio.get_running_loop()
        now = time.monotonic_ns()
        n = self._next_frame
        sched = self.schedule
        lag = now - self.origin_mono - sched.send_ns(n)
        if lag > sched.capture_ns(1) + sched.jitter_ns:
            # More than a frame behind beyond what jitter explains (a busy loop): skip to
            # the newest frame surely due, as a live camera would. Skipped frames count.
            newest = sched.frame_at(now - self.origin_mono - sched.delay_ns - sched.jitter_ns)
            if newest > n:
                self.frames_late += newest - n
                n = newest
        self._on_frame(n)
        self._last_send_mono = now
        self._next_frame = n + 1
        self._schedule(loop)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
