"""A bare MJPEG server that delivers each frame in small pieces, as a WiFi link does.

A phone on WiFi delivers a 200 KB JPEG as dozens of TCP segment bursts over tens of ms.
:class:`TrickleServer` does the same on loopback: every part (head, JPEG, CRLF) goes out
``piece`` bytes at a time (each part starts a new piece), one piece every ``interval``
seconds, so the ingest's wake-ups per frame and its stall detection can be tested
(``tests/ingest``) and measured (``benchmarks/bench_ingest.py``). The pace is the
behaviour being simulated: it is the link's speed, not a wait for anything.

It can also stop in the middle of a frame (``hold_at``: after that many bytes of the
stream) until :meth:`release`, and says when it got there (:attr:`held`), so a test can
act while a frame is half received without timing it. After the last frame the stream
stays open until the server is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mmrec.sim.loopback import LoopbackServer, response_head

BOUNDARY = b"trickle"


def stream_parts(frames: Sequence[bytes]) -> list[bytes]:
    """Each frame as the multipart bytes that carry it: a Content-Length framed part."""
    return [
        b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
        % (BOUNDARY, len(data), data)
        for data in frames
    ]


class TrickleServer(LoopbackServer):
    """Serve ``frames`` once per connection on 127.0.0.1, ``piece`` bytes per ``interval`` s."""

    def __init__(
        self,
        frames: Sequence[bytes],
        *,
        piece: int,
        interval: float,
        hold_at: int | None = None,
    ) -> None:
        if piece < 1 or interval < 0:
            raise ValueError("piece must be at least one byte and interval not negative")
        super().__init__()
        self.parts = stream_parts(frames)
        self.piece = piece
        self.interval = interval
        self.hold_at = hold_at
        self.held = asyncio.Event()  # the stream has stopped at ``hold_at``
        self._release = asyncio.Event()

    def release(self) -> None:
        """Send the rest of a stream held at ``hold_at``."""
        self._release.set()

    async def close(self) -> None:
        self._release.set()
        await super().close()

    async def _serve(self, writer: asyncio.StreamWriter) -> None:
        writer.write(response_head(BOUNDARY))
        await self._trickle(writer)
        await self._closing.wait()  # the stream stays open

    async def _trickle(self, writer: asyncio.StreamWriter) -> None:
        sent = 0  # bytes of the stream so far, for ``hold_at``
        for part in self.parts:
            pos = 0
            while pos < len(part):
                end = min(pos + self.piece, len(part))
                if self.hold_at is not None and sent < self.hold_at < sent + end - pos:
                    end = pos + self.hold_at - sent
                writer.write(part[pos:end])
                await writer.drain()
                sent += end - pos
                pos = end
                if sent == self.hold_at:
                    self.held.set()
                    await self._release.wait()
                elif self.interval:
                    await asyncio.sleep(self.interval)  # pacing: the link's speed
