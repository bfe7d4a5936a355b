"""Alignment on the take timeline, end to end, against the simulator's ground truth.

Four simulated nodes with clocks off by seconds and drifting up to ±100 ppm, different
encode delays, send jitter of 0–30 ms and WiFi-like bursts (frames held 150 ms every 3 s)
are recorded by mmrec for --duration seconds. For each camera it prints the error of the
recorded frame times against the true capture times (median and p99 of |error| after the
warm-up the manifest states), the drift estimate against the configured drift, and the
clock source. Targets (issue): median <= 1 ms, p99 <= 5 ms, drift within 5 ppm. For
comparison it also prints the error the same frames would have if placed by arrival time
(what a recorder without a clock model does).

    .venv/bin/python benchmarks/bench_align.py --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig, SimMesh
from mmrec.sim.groundtruth import alignment_errors, frame_truth
from mmrec.store.take import load_manifest, read_index

NODES = [
    # name, offset s, drift ppm, encode delay ms, jitter ms
    ("phone-a", 2.5, 87.0, 0.0, 30.0),
    ("phone-b", -4.5, -100.0, 25.0, 15.0),
    ("phone-c", 0.35, 42.0, 45.0, 5.0),
    ("phone-d", -0.8, -15.0, 12.0, 0.0),
]


async def run(duration: float, out: Path, size: tuple[int, int]) -> None:
    configs = [
        NodeConfig(
            name, width=size[0], height=size[1], fps=30, ring=8, clock_offset_s=off,
            drift_ppm=ppm, delay_ms=delay, jitter_ms=jit, burst_every_s=3.0, burst_ms=150.0,
        )
        for name, off, ppm, delay, jit in NODES
    ]  # fmt: skip
    async with (
        SimMesh(configs, base_host="127.0.0.1", port=0, mdns=False) as mesh,
        Take(out) as take,
    ):
        for n in mesh.nodes:
            take.add_camera(n.name, n.url)
        await asyncio.sleep(duration)
    m = load_manifest(take.dir)
    errs = {e.camera: e for e in alignment_errors(take.dir, m)}
    print(
        f"{'camera':8s} {'frames':>6s} {'warm-up':>7s} {'median':>8s} {'p99':>8s} {'max':>8s}"
        f" {'bias':>8s} {'drift':>8s} {'true':>6s} {'d.err':>6s} {'arrival p50/p99':>16s}  source"
    )
    for cam in m.cameras:
        e = errs[cam.name]
        truth_ppm = next(p for n, _, p, _, _ in NODES if n == cam.name)
        drift = cam.clock.drift_ppm if cam.clock and cam.clock.drift_ppm is not None else 0.0
        # the same frames placed by arrival time instead
        data = frame_truth(take.dir, cam)[e.warmup_frames :]
        rows = list(read_index(take.dir / cam.index))[e.warmup_frames :]
        arr = np.abs(
            [
                r.arrival_ns - (t - m.start_realtime_ns)
                for (_, t, _), r in zip(data, rows, strict=False)
            ]
        )
        print(
            f"{cam.name:8s} {e.frames:6d} {e.warmup_frames:7d} {e.median_abs_ns / 1e6:6.3f}ms"
            f" {e.p99_abs_ns / 1e6:6.3f}ms {e.max_abs_ns / 1e6:6.2f}ms {e.mean_ns / 1e6:+6.3f}ms"
            f" {drift:+8.2f} {truth_ppm:+6.0f} {abs(drift - truth_ppm):6.2f}"
            f" {np.median(arr) / 1e6:7.1f}/{np.percentile(arr, 99) / 1e6:5.1f}ms"
            f"  {cam.clock.source if cam.clock else '?'}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument(
        "--size", default="640x360", help="frame size (alignment does not depend on it)"
    )
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    print("command:", shlex.join([sys.executable, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.duration, Path(tmp), (w, h)))


if __name__ == "__main__":
    main()
