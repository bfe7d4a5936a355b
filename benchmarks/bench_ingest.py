"""Wake-ups per frame when a frame arrives in many small pieces: SO_RCVLOWAT against not.

Phones on WiFi deliver a 200 KB JPEG as dozens of TCP segment bursts over tens of ms. A
trickle server on loopback (``mmrec.sim.trickle``) sends simulator frames (camera-like
JPEGs) ``--piece`` bytes at a time, one piece every ``--pace-ms``; one ``CameraIngest``
receives them, once with the low-water mark (the ingest's way on Linux: the loop wakes
when the rest of the frame is in) and once waking per segment, as without it. For each it
prints the loop's receives per frame (the ingest's ``receives`` counter) against the
pieces per frame, and the process's CPU time per frame (server and client share the
process, so the figures compare the two modes, not the ingest alone).

The test suite checks only that the low-water mark holds receives to a few per frame
(``tests/ingest/test_ingest_wakeups.py``); how often the loop wakes without it depends on
the machine's pace, and is printed here.

    .venv/bin/python benchmarks/bench_ingest.py [--frames 30] [--piece 4096] [--pace-ms 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time

from mmrec.ingest import stream as ingest_stream
from mmrec.ingest.stream import CameraIngest, IngestConfig, Received, StreamTarget
from mmrec.sim import DEFAULT_CACHE, RingKey
from mmrec.sim.trickle import TrickleServer


async def receive(frames: list[bytes], piece: int, pace_s: float) -> tuple[int, float, float]:
    """(receives, CPU s, wall s) for receiving ``frames`` once through a trickle server."""
    got: list[Received] = []
    complete = asyncio.Event()

    def on_frame(rx: Received) -> None:
        got.append(rx)
        if len(got) == len(frames):
            complete.set()

    async with TrickleServer(frames, piece=piece, interval=pace_s) as server:
        cam = CameraIngest(StreamTarget.from_url("cam", server.url), on_frame, IngestConfig())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        task = asyncio.create_task(cam.run())
        try:
            await asyncio.wait_for(complete.wait(), 60 + len(frames) * 2)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        finally:
            cam.stop()
            await asyncio.wait_for(task, 5)
    if [bytes(r.data) for r in got] != frames:
        raise SystemExit("frames were not received unchanged")
    return cam.stats().receives, cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--size", default="1920x1080", help="simulator frame size")
    ap.add_argument("--piece", type=int, default=4096, help="bytes per piece (a segment burst)")
    ap.add_argument("--pace-ms", type=float, default=0.5, help="between pieces")
    ap.add_argument("--repeat", type=int, default=3, help="runs per mode; the best CPU is shown")
    args = ap.parse_args()
    if not ingest_stream._LOWAT_OK:
        raise SystemExit("SO_RCVLOWAT is not available here (the ingest uses it on Linux)")
    w, h = (int(x) for x in args.size.split("x"))
    (ring,) = DEFAULT_CACHE.get_many([RingKey(w, h, 85, seed=7, length=min(args.frames, 30))])
    frames = [ring.jpegs[i % len(ring)] for i in range(args.frames)]
    mean = sum(map(len, frames)) / len(frames)
    pieces = sum(-(-(len(f) + 80) // args.piece) for f in frames) / len(frames)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{args.frames} frames of {w}x{h}, {mean / 1000:.0f} KB on average, in pieces of "
        f"{args.piece} B every {args.pace_ms:g} ms: {pieces:.1f} pieces per frame"
    )
    print(f"{'mode':14s} {'receives/frame':>14s} {'CPU ms/frame':>12s} {'wall s':>7s}")
    for name, lowat in (("SO_RCVLOWAT", True), ("per-segment", False)):
        ingest_stream._LOWAT_OK = lowat  # type: ignore[misc]
        runs = [
            asyncio.run(receive(frames, args.piece, args.pace_ms / 1000))
            for _ in range(args.repeat)
        ]
        receives, cpu, wall = min(runs, key=lambda r: r[1])
        print(
            f"{name:14s} {receives / args.frames:14.1f} {cpu / args.frames * 1000:12.2f}"
            f" {wall:7.2f}"
        )


if __name__ == "__main__":
    main()
