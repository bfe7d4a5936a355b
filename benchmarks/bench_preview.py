"""Benchmark the live preview: CPU cost and achieved mosaic rate while cameras stream.

16 cameras of 1080p30 camera-like JPEGs (~200 KB, pre-encoded, so nothing but the preview
costs CPU) are fed to LivePreview.update at 30 fps each on the event loop, as the
recorder does; the preview makes a 1920x1080 mosaic at 10 fps, writes preview.mkv and
(with --watch) serves the MJPEG feed to one client on 127.0.0.1. Prints the CPU (% of one
core: everything in this process and its picture worker is the preview's; the loop's part
is update() and the ticks' hand-over) and the preview's stats.
With --absurd K, the first K cameras send JPEGs whose header claims 65000x65000 (a hostile
or broken camera): the preview must keep its rate (those tiles are refused, not decoded).

    .venv/bin/python benchmarks/bench_preview.py [--cameras 16] [--seconds 10] [--watch]
        [--absurd K]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from mmrec.live.preview import LivePreview
from mmrec.sim.hostile import ABSURD, with_size

sys.path.insert(0, str(Path(__file__).parent))
from bench_proxy import camera_like_frames


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker_cpu_s(pid: int | None) -> float:
    """The picture worker's utime + stime, from /proc."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def watch(url: str, stop: asyncio.Event, counter: list[int]) -> None:
    async with aiohttp.ClientSession() as http, http.get(url + "preview.mjpeg") as r:
        while not stop.is_set():
            chunk = await r.content.readany()
            if not chunk:
                break
            counter[0] += chunk.count(b"\xff\xd9")


async def run(args: argparse.Namespace) -> None:
    w, h = (int(v) for v in args.size.split("x"))
    names = [f"cam{i + 1:02d}" for i in range(args.cameras)]
    t = time.perf_counter()
    pools = [camera_like_frames(i, args.distinct, w, h) for i in range(args.cameras)]
    for i in range(min(args.absurd, args.cameras)):
        pools[i] = [with_size(f, ABSURD, ABSURD) for f in pools[i]]
    kb = sum(len(f) for p in pools for f in p) / sum(len(p) for p in pools) / 1e3
    print(
        f"{args.cameras} cameras of {w}x{h}@{args.fps:g}, {kb:.0f} KB/JPEG "
        f"(pre-encoded in {time.perf_counter() - t:.1f} s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        preview = LivePreview(
            Path(tmp),
            names,
            size=(1920, 1080),
            fps=args.preview_fps,
            port=0 if args.watch else None,
        )
        await preview.start()
        stop = asyncio.Event()
        parts = [0]
        watcher = asyncio.create_task(watch(preview.url or "", stop, parts)) if args.watch else None
        loop = asyncio.get_running_loop()
        period = 1.0 / args.fps
        start = loop.time()
        cpu0, wall0 = cpu_s(), time.perf_counter()
        wcpu0 = worker_cpu_s(preview.worker_pid)
        k = 0
        fed = 0
        update_ns = 0
        while loop.time() - start < args.seconds:
            t0 = time.perf_counter_ns()
            for i, name in enumerate(names):
                preview.update(name, pools[i][k % args.distinct], k)
            update_ns += time.perf_counter_ns() - t0
            fed += len(names)
            k += 1
            await asyncio.sleep(max(0.0, start + k * period - loop.time()))
        cpu, wall = cpu_s() - cpu0, time.perf_counter() - wall0
        wcpu = worker_cpu_s(preview.worker_pid) - wcpu0
        s = preview.stats()
        stop.set()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await watcher
        await preview.stop()
        size_mb = (Path(tmp) / "preview.mkv").stat().st_size / 1e6
    print(
        f"fed {fed} frames ({fed / wall:.0f}/s), update() {update_ns / fed:.0f} ns each on the loop"
    )
    print(
        f"preview: {s.ticks} mosaics in {wall:.1f} s = {s.ticks / wall:.1f} fps "
        f"(target {args.preview_fps:g}), recent {s.fps:.1f} fps; CPU "
        f"{(cpu + wcpu) / wall * 100:.0f}% of one core ({cpu / wall * 100:.0f}% in this "
        f"process, {wcpu / wall * 100:.0f}% in the picture worker); tiles decoded "
        f"{s.tiles_decoded}, skipped {s.tiles_skipped}, late ticks "
        f"{s.late_ticks}, decode {s.decode_ms:.1f} ms/tile, compose+encode {s.encode_ms:.1f} "
        f"ms/tick, preview.mkv {s.frames_written} frames {size_mb:.1f} MB, "
        f"refused {s.refused} (absurd sizes)"
        + (f", MJPEG viewer got {parts[0]} JPEGs ({s.jpegs} encoded)" if args.watch else "")
    )
    print("command: " + " ".join([".venv/bin/python", *sys.argv]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=30.0, help="each camera's frame rate")
    ap.add_argument("--size", default="1920x1080", help="camera frame size")
    ap.add_argument("--preview-fps", type=float, default=10.0)
    ap.add_argument("--distinct", type=int, default=4, help="distinct frames per camera")
    ap.add_argument("--watch", action="store_true", help="one MJPEG viewer on 127.0.0.1")
    ap.add_argument("--absurd", type=int, default=0, metavar="K",
                    help="the first K cameras claim 65000x65000 in their JPEG headers")  # fmt: skip
    asyncio.run(run(ap.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
