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
from mmrec.sim.trickle import TrickleServer, stream_parts
from mmrec.store import payload
from tests.helpers import Arrivals, tj, wait_for

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_RCVLOWAT is used on Linux only"
)


def _big_jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # noise: ~100+ KB
    return bytes(tj().encode(img, quality=90))


async def _record(
    frames: list[bytes], piece: int, pace: float, cfg: IngestConfig, *, aligned: bool = False
) -> tuple[list[Received], CameraIngest]:
    got = Arrivals()
    alloc = payload.aligned if aligned else None  # as the recorder does for direct I/O
    async with TrickleServer(frames, piece=piece, interval=pace) as server:
        target = StreamTarget.from_url("cam", server.url)
        cam = CameraIngest(target, got.append, cfg, payload_alloc=alloc)
        task = asyncio.create_task(cam.run())
        try:
            await got.wait(len(frames), 30)
        finally:
            cam.stop()
            await asyncio.wait_for(task, 5)
    return list(got), cam


@pytest.mark.parametrize("aligned", [False, True], ids=["bytes", "aligned"])
@pytest.mark.parametrize("lowat", [True, False], ids=["rcvlowat", "per-segment"])
async def test_a_frame_in_many_pieces_wakes_the_loop_about_once(
    lowat: bool, aligned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "_LOWAT_OK", lowat)
    frames = [_big_jpeg(i) for i in range(8)]
    got, cam = await _record(frames, piece=4096, pace=0.0005, cfg=IngestConfig(), aligned=aligned)
    assert [bytes(r.data) for r in got] == frames
    if aligned:  # payloads received straight into memory the writer can use as it is
        assert all(payload.region(r.data) is not None for r in got)
    per_frame = cam.stats().receives / len(frames)
    if lowat:
        assert per_frame <= 3, f"{per_frame:.1f} receives per frame"
    # Without the low-water mark the loop wakes for (nearly) every piece; how often
    # depends on the machine's pace: benchmarks/bench_ingest.py prints the contrast.


@pytest.mark.parametrize("aligned", [False, True], ids=["bytes", "aligned"])
async def test_a_slow_link_is_not_taken_for_a_stall(aligned: bool) -> None:
    """A frame taking longer than the read timeout to trickle in is still received:
    the low-water mark is relaxed once the socket has been quiet for a tick."""
    frames = [_big_jpeg(99)]
    piece = len(frames[0]) // 12 + 1
    cfg = IngestConfig(read_timeout=0.8)  # the frame takes ~1.3 s
    got, cam = await _record(frames, piece=piece, pace=0.1, cfg=cfg, aligned=aligned)
    assert [bytes(r.data) for r in got] == frames
    assert cam.stats().reconnects == 0


@pytest.mark.parametrize("finish", [True, False], ids=["finish-part", "at-once"])
async def test_a_stop_keeps_the_frame_already_arriving(finish: bool) -> None:
    """Stopping while a frame is half received: with ``finish_part`` (what a take's
    close uses) the frame is completed before the connection closes."""
    frames = [_big_jpeg(7), _big_jpeg(8)]
    first_part, second_part = stream_parts(frames)
    # The server stops a third of the way into the second frame until released.
    hold_at = len(first_part) + len(second_part) // 3
    got = Arrivals()
    async with TrickleServer(frames, piece=len(second_part), interval=0, hold_at=hold_at) as srv:
        cam = CameraIngest(StreamTarget.from_url("cam", srv.url), got.append, IngestConfig())
        task = asyncio.create_task(cam.run())
        await got.wait(1, 10)
        await asyncio.wait_for(srv.held.wait(), 10)

        def in_part() -> bool:
            return cam._protocol is not None and cam._protocol.in_part()

        await wait_for(in_part, 10, "the second frame's head to be read")
        cam.stop(finish_part=finish)
        srv.release()
        await asyncio.wait_for(task, 5)
    assert [bytes(r.data) for r in got] == (frames if finish else frames[:1])


async def test_a_frame_already_in_the_socket_is_read_in_one_pass_of_the_loop() -> None:
    """Over loopback a node's whole part is queued by the time its headers are parsed:
    the payload's rest is read straight into its memory in that same callback."""
    frames = [_big_jpeg(i) for i in range(8)]
    got, cam = await _record(frames, piece=1 << 20, pace=0.0, cfg=IngestConfig(), aligned=True)
    assert [bytes(r.data) for r in got] == frames
    assert all(payload.region(r.data) is not None for r in got)
    st = cam.stats()
    # Most payloads' rest is read on (the server's pace against the socket buffers may
    # leave some to the next pass of the loop: not most of them).
    assert st.read_on >= len(frames) // 2, st
