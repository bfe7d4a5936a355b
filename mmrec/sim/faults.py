"""A simulated node's scripted faults: the stall and the disconnect its config asks for.

Each fires once, at its time after the node's first start (``stall_at``,
``disconnect_at``, in seconds); a stall with ``stall_for`` resumes by itself. A node
stopped and started again re-arms only what has not fired yet.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmrec.sim.node import SimNode


class ScriptedFaults:
    """The timers of one node's scripted faults."""

    def __init__(self, node: SimNode) -> None:
        self.node = node
        self._timers: list[asyncio.TimerHandle] = []
        self._stall_done = False
        self._disconnect_done = False

    def arm(self, loop: asyncio.AbstractEventLoop, origin_mono: int | None) -> None:
        """Arm what has not fired yet; ``origin_mono``: the node's first start."""
        assert origin_mono is not None
        now = time.monotonic_ns()
        c = self.node.config

        def at(seconds: float) -> float:
            # loop.time() runs on the monotonic clock too; only the zero point differs.
            return loop.time() + (origin_mono + seconds * 1e9 - now) / 1e9

        if c.stall_at is not None and not self._stall_done:
            self._timers.append(loop.call_at(at(c.stall_at), self._stall))
        if c.disconnect_at is not None and not self._disconnect_done:
            self._timers.append(loop.call_at(at(c.disconnect_at), self._disconnect))

    def cancel(self) -> None:
        for h in self._timers:
            h.cancel()
        self._timers.clear()

    def _stall(self) -> None:
        self._stall_done = True
        self.node.stall()
        stall_for = self.node.config.stall_for
        if stall_for is not None:
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(stall_for, self.node.resume))

    def _disconnect(self) -> None:
        self._disconnect_done = True
        self.node.disconnect()
