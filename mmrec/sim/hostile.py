"""Hostile MJPEG servers on loopback: what a broken or malicious camera can send a recorder.

Each :class:`Hostile` kind is one way of abusing a recorder's memory, its timeouts or its
counters; :class:`HostileServer` serves one kind on 127.0.0.1 to every client that asks,
until it is closed. They exist for the fault tests (``tests/session/test_hostile.py``) and
for ``benchmarks/bench_hostile.py``, which runs each kind against a recorder process and
prints its RSS over time (``python -m mmrec.sim.hostile KIND`` serves one from the shell).

- ``endless``: one part with no Content-Length that never ends (no boundary ever follows),
  as fast as the socket takes it (~400 Mbit/s and more on loopback).
- ``endless-length``: a few good parts with exact lengths (so the recorder receives
  payloads straight into their own memory), then parts that declare just under the
  recorder's part size cap and send garbage, and no boundary after them.
- ``trickle``: a valid stream, 1 byte every 100 ms (frames never complete in time).
- ``header-flood``: part headers that never end (header lines, as fast as it goes).
- ``absurd-size``: valid parts whose JPEG header claims 65000x65000 (the bytes are a
  small picture's), at ``fps``.
- ``trailing``, ``stubs``, ``truncated``: valid parts at ``fps`` whose JPEGs have garbage
  after the EOI, are only an SOI, or are cut short inside the entropy-coded data.
- ``marker-bomb``: valid parts at ``fps``, every other one a JPEG whose header holds
  60,000 empty COM segments (240 KB of markers to walk before the picture).

A server sends only what it is told to; the pace of ``trickle`` and of the paced kinds is
the behaviour being simulated (a slow link, a camera's frame rate), not a wait.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Final

from mmrec.sim.loopback import LoopbackServer, response_head

BOUNDARY: Final = b"hostile"
ABSURD: Final = 65000  # the width and height an absurd-size JPEG's header claims
_CHUNK: Final = 256 * 1024  # garbage per write for the endless kinds
_GARBAGE: Final = bytes(range(256)) * (_CHUNK // 256)  # no "--hostile", no CR/LF pairs of note
_FLOOD_LINE: Final = b"X-Flood: " + b"f" * 100 + b"\r\n"


class Hostile(StrEnum):
    ENDLESS = "endless"
    ENDLESS_LENGTH = "endless-length"
    TRICKLE = "trickle"
    HEADER_FLOOD = "header-flood"
    ABSURD_SIZE = "absurd-size"
    TRAILING = "trailing"
    STUBS = "stubs"
    TRUNCATED = "truncated"
    MARKER_BOMB = "marker-bomb"


def part(data: bytes, *, length: int | None = None) -> bytes:
    """One multipart part carrying ``data``: delimiter, headers (Content-Length: ``length``,
    default the true length; -1 for none), the bytes and the line end after them."""
    n = len(data) if length is None else length
    head = b"--%s\r\nContent-Type: image/jpeg\r\n" % BOUNDARY
    if n >= 0:
        head += b"Content-Length: %d\r\n" % n
    return head + b"\r\n" + data + b"\r\n"


def with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its SOF segment claiming ``width`` x ``height`` (nothing else changed)."""
    from mmrec.wire import jpeg as markers

    found: list[int] = []
    markers.walk(jpeg, 2, len(jpeg), found)
    out = bytearray(jpeg)
    for i in found:
        if out[i + 1] != 0xFE:  # an SOF, not a comment
            out[i + 5 : i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(out)


def frames_for(kind: Hostile, jpeg: bytes) -> list[bytes]:
    """The payloads a paced kind sends, in turn, from one good ``jpeg``."""
    if kind is Hostile.ABSURD_SIZE:
        return [with_size(jpeg, ABSURD, ABSURD)]
    if kind is Hostile.TRAILING:
        return [jpeg + b"GARBAGE after the EOI"]
    if kind is Hostile.STUBS:
        return [jpeg[:2], jpeg]  # an SOI alone, then a good frame
    if kind is Hostile.TRUNCATED:
        return [jpeg[: len(jpeg) * 3 // 4], jpeg]  # cut inside the scan, then a good frame
    if kind is Hostile.MARKER_BOMB:
        return [jpeg[:2] + b"\xff\xfe\x00\x02" * 60_000 + jpeg[2:], jpeg]  # then a good one
    return [jpeg]


class HostileServer(LoopbackServer):
    """Serve ``kind`` on 127.0.0.1 (port 0: any free one) until :meth:`close`.

    ``jpeg``: the good picture the paced kinds build on; ``fps``: their frame rate;
    ``part_cap``: the recorder's part size cap, for ``endless-length``; ``rate_bps``:
    a cap on the endless kinds' rate (0: as fast as the socket takes it).
    """

    cancel_on_close = True  # its streams never end: close() cuts them

    def __init__(
        self,
        kind: Hostile,
        jpeg: bytes,
        *,
        port: int = 0,
        fps: float = 10.0,
        part_cap: int = 32 * 2**20,
        rate_bps: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.kind = Hostile(kind)
        self.jpeg = jpeg
        self.fps = fps
        self.part_cap = part_cap
        self.rate_bps = rate_bps
        self.bytes_sent = 0

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.bytes_sent += len(data)
        if self.rate_bps:
            await asyncio.sleep(len(data) * 8 / self.rate_bps)  # pacing: the link's speed

    async def _serve(self, writer: asyncio.StreamWriter) -> None:
        await self._send(writer, response_head(BOUNDARY))
        kind = self.kind
        if kind is Hostile.ENDLESS:
            await self._send(writer, part(b"", length=-1)[:-2] + b"\xff\xd8")
            await self._endless(writer)
        elif kind is Hostile.ENDLESS_LENGTH:
            for _ in range(3):  # exact parts: the recorder then receives straight into memory
                await self._send(writer, part(self.jpeg))
            while True:
                await self._send(writer, part(b"", length=self.part_cap - 1)[:-2])
                await self._garbage(writer, self.part_cap + _CHUNK)
        elif kind is Hostile.TRICKLE:
            stream = b"".join(part(self.jpeg) for _ in range(100))
            for i in range(len(stream)):
                await self._send(writer, stream[i : i + 1])
                await asyncio.sleep(0.1)  # pacing: 1 byte per 100 ms
        elif kind is Hostile.HEADER_FLOOD:
            await self._send(writer, b"--%s\r\n" % BOUNDARY)
            lines = _FLOOD_LINE * (_CHUNK // len(_FLOOD_LINE))
            while True:
                await self._send(writer, lines)
        else:
            payloads = frames_for(kind, self.jpeg)
            loop = asyncio.get_running_loop()
            due = loop.time()
            n = 0
            while True:
                await self._send(writer, part(payloads[n % len(payloads)]))
                n += 1
                due += 1 / self.fps
                await asyncio.sleep(max(0.0, due - loop.time()))  # pacing: the frame rate

    async def _endless(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await self._send(writer, _GARBAGE)

    async def _garbage(self, writer: asyncio.StreamWriter, n: int) -> None:
        sent = 0
        while sent < n:
            await self._send(writer, _GARBAGE)
            sent += len(_GARBAGE)


def _small_jpeg() -> bytes:
    """A real 320x240 JPEG from the simulator's picture source."""
    from mmrec.sim.frames import DEFAULT_CACHE, RingKey

    return DEFAULT_CACHE.get_many([RingKey(320, 240, 80, 1, 1)])[0].jpegs[0]


async def _serve_forever(kind: Hostile, port: int, fps: float, part_cap: int) -> None:
    async with HostileServer(kind, _small_jpeg(), port=port, fps=fps, part_cap=part_cap) as srv:
        print(json.dumps({"kind": str(kind), "url": srv.url, "pid": os.getpid()}), flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None, *, out: Callable[[str], object] = print) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m mmrec.sim.hostile",
        description="Serve one hostile MJPEG stream on 127.0.0.1 until interrupted; prints "
        '{"kind", "url", "pid"} as one JSON line when ready.',
    )
    ap.add_argument("kind", choices=[k.value for k in Hostile])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fps", type=float, default=10.0, help="rate of the paced kinds (10)")
    ap.add_argument(
        "--part-cap", type=int, default=32 * 2**20, help="the recorder's part cap (32 MiB)"
    )
    args = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(Hostile(args.kind), args.port, args.fps, args.part_cap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
