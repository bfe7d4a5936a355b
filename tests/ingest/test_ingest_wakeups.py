"""Receiving a frame that arrives in many small pieces: one wakeup, not one per piece.

Phones on WiFi deliver a 200 KB JPEG as dozens of TCP segments over tens of ms; the
ingest sets SO_RCVLOWAT to the rest of the declared payload so the event loop wakes when
the frame is complete. A slow link must still never look stalled.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np
import pytest

from mmrec.ingest import stream as ingest
from mmrec.ingest.stream import CameraIngest, IngestConfig, Received, StreamTarget
from mmrec.store import payload
from tests.helpers import _tj, wait_for

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_RCVLOWAT is used on Linux only"
)


def _big_jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # noise: ~100+ KB
    return bytes(_tj().encode(img, quality=90))


async def _trickle_server(
    frames: list[bytes], piece: int, pause: float, done: asyncio.Event
) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve(reader, writer)
        finally:
            writer.close()

    async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=f\r\n\r\n"
        )
        for data in frames:
            part = b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
            blob = part + data + b"\r\n"
            for i in range(0, len(blob), piece):
                writer.write(blob[i : i + piece])
                await writer.drain()
                await asyncio.sleep(pause)
        await done.wait()  # the stream stays open

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/stream"


async def _record(
    frames: list[bytes], piece: int, pause: float, cfg: IngestConfig, *, aligned: bool = False
) -> tuple[list[Received], CameraIngest]:
    done = asyncio.Event()
    server, url = await _trickle_server(frames, piece, pause, done)
    got: list[Received] = []
    alloc = payload.aligned if aligned else None  # as the recorder does for direct I/O
    cam = CameraIngest(StreamTarget.from_url("cam", url), got.append, cfg, payload_alloc=alloc)
    task = asyncio.create_task(cam.run())
    try:
        await wait_for(lambda: len(got) >= len(frames), 30, "frames")
    finally:
        cam.stop()
        await asyncio.wait_for(task, 5)
        done.set()
        server.close()
        await server.wait_closed()
    return got, cam


@pytest.mark.parametrize("aligned", [False, True], ids=["bytes", "aligned"])
@pytest.mark.parametrize("lowat", [True, False], ids=["rcvlowat", "per-segment"])
async def test_a_frame_in_many_pieces_wakes_the_loop_about_once(
    lowat: bool, aligned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "_LOWAT_OK", lowat)
    frames = [_big_jpeg(i) for i in range(8)]
    got, cam = await _record(frames, piece=4096, pause=0.0005, cfg=IngestConfig(), aligned=aligned)
    assert [bytes(r.data) for r in got] == frames
    if aligned:  # payloads received straight into memory the writer can use as it is
        assert all(payload.region(r.data) is not None for r in got)
    per_frame = cam.stats().receives / len(frames)
    pieces = sum(len(f) for f in frames) / 4096 / len(frames)
    if lowat:
        assert per_frame <= 3, f"{per_frame:.1f} receives per frame"
    else:  # the contrast: without it the loop wakes for (nearly) every piece
        assert per_frame >= pieces / 4, f"{per_frame:.1f} receives per frame"


@pytest.mark.parametrize("aligned", [False, True], ids=["bytes", "aligned"])
async def test_a_slow_link_is_not_taken_for_a_stall(aligned: bool) -> None:
    """A frame taking longer than the read timeout to trickle in is still received:
    the low-water mark is relaxed once the socket has been quiet for a tick."""
    frames = [_big_jpeg(99)]
    piece = len(frames[0]) // 12 + 1
    cfg = IngestConfig(read_timeout=0.8)  # the frame takes ~1.3 s
    got, cam = await _record(frames, piece=piece, pause=0.1, cfg=cfg, aligned=aligned)
    assert [bytes(r.data) for r in got] == frames
    assert cam.stats().reconnects == 0


@pytest.mark.parametrize("finish", [True, False], ids=["finish-part", "at-once"])
async def test_a_stop_keeps_the_frame_already_arriving(finish: bool) -> None:
    """Stopping while a frame is half received: with ``finish_part`` (what a take's
    close uses) the frame is completed before the connection closes."""
    frames = [_big_jpeg(7), _big_jpeg(8)]
    piece = len(frames[1]) // 10 + 1
    done = asyncio.Event()
    server, url = await _trickle_server(frames, piece=piece, pause=0.03, done=done)
    got: list[Received] = []
    cam = CameraIngest(StreamTarget.from_url("cam", url), got.append, IngestConfig())
    task = asyncio.create_task(cam.run())
    try:
        await wait_for(lambda: len(got) >= 1, 10, "first frame")
        await asyncio.sleep(0.1)  # a few pieces of the second frame are in
        assert cam._protocol is not None and cam._protocol.in_part()
        cam.stop(finish_part=finish)
        await asyncio.wait_for(task, 5)
    finally:
        done.set()
        server.close()
        await server.wait_closed()
    assert [bytes(r.data) for r in got] == (frames if finish else frames[:1])
