"""Benchmark ``mmrec export``: MOV passthrough speed as a multiple of real time.

Makes a take of 4 cameras of 1080p30 camera-like JPEGs (the simulator's frame rings:
panned scene, sensor noise, ~150-350 KB a frame, each with the simulator's COM record),
written with CameraWriter exactly as the recorder writes them, cameras out of phase and
with timing jitter; then exports it (every camera's MOV, and the timelines) and prints the
wall time, the multiple of real time, the CPU time and the command. Nothing is decoded:
the export moves bytes, so the figure is bounded by demux + mux + the page cache / disk.
The take is read just after being written (from the page cache, as on a machine with
enough memory; a cold disk is slower).

    .venv/bin/python benchmarks/bench_export.py [--cameras 4] [--seconds 20] [--repeat 3]
        [--threads 2] [--keep DIR | --take DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from synthetic_take import ready_take, write_take

from mmrec.export import ExportOptions, export_take
from mmrec.sim.frames import RingKey, build_rings

NS = 1_000_000_000
TARGET = 20.0  # x real time (issue 13)


def make_take(root: Path, cameras: int, seconds: float, fps: float, size: tuple[int, int]) -> Path:
    rings = build_rings([RingKey(*size, 85, 1000 + c, 30, f"cam{c + 1}") for c in range(cameras)])
    pools = [ring.jpegs for ring in rings.values()]
    return write_take(root, pools, seconds, fps, jitter_ns=1e6, true_from_start=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="measure this many times")
    ap.add_argument("--keep", type=Path, help="make the take here and keep it")
    ap.add_argument("--take", type=Path, help="use this take (made with --keep) instead")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        take = ready_take(
            args.take, lambda: make_take(root, args.cameras, args.seconds, args.fps, (w, h))
        )
        multiples = []
        # Wall time is what a user waits; on a host other work loads, CPU time says what
        # the export itself costs (one core at N x per CPU second is N x real time).
        per_cpu: list[float] = []
        for run in range(args.repeat):
            out = root / f"export-{run}"
            r = export_take(take, ExportOptions(out=out, threads=args.threads))
            multiples.append(r.duration_s / r.seconds)
            moved = sum(c.bytes for c in r.cameras)
            print(
                f"[{run + 1}] {len(r.cameras)} MOVs x {r.frames} frames ({r.duration_s:.2f} s at "
                f"{r.rate} fps) + {len(r.timelines)} timeline files in {r.seconds:.2f} s wall, "
                f"{r.cpu_s:.2f} s CPU ({r.cpu_s / r.seconds:.2f} cores) = "
                f"{multiples[-1]:.1f}x real time, {moved / r.seconds / 1e6:.0f} MB/s; "
                f"{r.duration_s / r.cpu_s:.0f}x real time per CPU second"
            )
            per_cpu.append(r.duration_s / r.cpu_s)
            shutil.rmtree(out, ignore_errors=True)
        best = max(multiples)
        print(
            f"range over {args.repeat} run(s): {min(multiples):.1f}-{best:.1f}x real time "
            f"(target {TARGET:.0f}x: {'met' if best >= TARGET else 'NOT met'}); "
            f"{min(per_cpu):.0f}-{max(per_cpu):.0f}x real time per CPU second; "
            f"load average now {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
        print("command: " + " ".join([".venv/bin/python", *sys.argv]))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
