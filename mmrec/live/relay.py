"""One camera's JPEGs relayed to web clients as they arrive: no decode, bounded per client.

The console's click-through to one camera at full resolution. The session hands every
frame to :meth:`FrameRelay.offer` on the event loop (a dict lookup when nobody watches
that camera). Each watcher is a one-frame mailbox: a new frame replaces the one not yet
sent, so a slow browser skips frames (counted) and never makes memory grow; the sender
holds at most one frame (a reference to the recorder's own buffer, no copy) plus what
the socket's send buffer takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from mmrec.store.payload import Bytes


class Watcher:
    """One client of one camera: the newest frame not yet sent, and counters."""

    __slots__ = ("camera", "frame", "ready", "sent", "skipped")

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.frame: Bytes | None = None
        self.ready = asyncio.Event()
        self.sent = 0
        self.skipped = 0  # frames replaced before they could be sent (a slow client)

    def put(self, data: Bytes) -> None:
        if self.frame is not None:
            self.skipped += 1
        self.frame = data
        self.ready.set()


class FrameRelay:
    """Cameras' frames to their watchers; see the module docstring."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = {}
        self._closed = False

    def offer(self, camera: str, data: Bytes) -> None:
        """A frame of ``camera`` arrived (on the event loop; O(watchers))."""
        watchers = self._watchers.get(camera)
        if watchers:
            for w in watchers:
                w.put(data)

    def watchers(self, camera: str | None = None) -> int:
        if camera is not None:
            return len(self._watchers.get(camera, ()))
        return sum(len(ws) for ws in self._watchers.values())

    def close(self) -> None:
        """End every watch (the session is closing)."""
        self._closed = True
        for ws in self._watchers.values():
            for w in ws:
                w.ready.set()

    async def watch(self, camera: str) -> AsyncIterator[Bytes]:
        """The camera's frames from now on, newest first when the reader is slow; ends
        when the relay closes. Leaving the loop unsubscribes."""
        w = Watcher(camera)
        self._watchers.setdefault(camera, set()).add(w)
        try:
            while not self._closed:
                await w.ready.wait()
                w.ready.clear()
                frame, w.frame = w.frame, None
                if frame is None:
                    continue
                w.sent += 1
                yield frame
        finally:
            ws = self._watchers.get(camera)
            if ws is not None:
                ws.discard(w)
                if not ws:
                    del self._watchers[camera]
