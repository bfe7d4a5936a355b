"""The writer's cost per frame: ``CameraWriter._write`` alone, in one thread.

What a writer thread spends on one recorded frame: the JPEG header check, pts, the
cluster/block framing, the one direct (or buffered) write of the frame and the one write
of its index row (no periodic fdatasync: ``--sync-interval`` is measured by
bench_record). Frames are 1080p-sized payloads in block-aligned memory (as the ingest
receives them), written at 30 fps take times with jitter, so clusters and segments roll
over as in a take. Figures are thread CPU time per frame (``time.thread_time``), best of
``--repeat`` runs, with the wall time beside them (the disk's part).

    .venv/bin/python benchmarks/bench_writer.py [--frames 3000] [--repeat 5] [--dir DIR]
        [--buffered]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mmrec.store import payload
from mmrec.store.writer import CameraWriter, Frame, WriterPool
from mmrec.wire import jpeg

NS = 1_000_000_000


def _frames(count: int, size: int) -> list[Frame]:
    """Aligned JPEG-shaped payloads (a real header, so the size check passes)."""
    from turbojpeg import TurboJPEG

    head = TurboJPEG().encode(np.zeros((1080, 1920, 3), np.uint8), quality=50)
    rng = np.random.default_rng(0)
    out = []
    for k in range(count):
        n = max(size, len(head)) + int(rng.integers(0, 20_000))
        buf = payload.aligned(n)
        buf[: len(head) - 2] = head[:-2]
        buf[-2:] = b"\xff\xd9"
        t = int(k * NS / 30 + rng.normal(0, 1e6)) + 5 * NS
        out.append(Frame(buf, max(t, 0), t + 20_000_000, f"{k / 30:.6f}"))
    assert jpeg.dimensions(out[0].data) == (1920, 1080)
    return out


def run_once(folder: Path, frames: list[Frame], direct: bool) -> tuple[float, float]:
    """(CPU µs, wall µs) per frame of ``_write`` over ``frames``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # no periodic fdatasync: the pool's thread would sync while this thread writes
    pool = WriterPool(1, sync_interval=0)
    w = CameraWriter("bench", folder, "cam", segment_ns=60 * NS, direct_io=direct, pool=pool)
    write = w._write
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for f in frames:
        write(f)
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    w.close()
    pool.shutdown()
    return cpu / len(frames) * 1e6, wall / len(frames) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--size", type=int, default=210_000, help="JPEG bytes (about 1080p)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, help="where to write (a temporary folder)")
    ap.add_argument("--buffered", action="store_true", help="through the page cache")
    args = ap.parse_args()
    frames = _frames(args.frames, args.size)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-writer-") as tmp:
        runs = [run_once(Path(tmp) / "take", frames, not args.buffered) for _ in range(args.repeat)]
    cpu = min(r[0] for r in runs)
    wall = min(r[1] for r in runs)
    print(
        f"CameraWriter._write: {cpu:.1f} us CPU per frame (best of {args.repeat}; all: "
        f"{', '.join(f'{r[0]:.1f}' for r in runs)}), {wall:.1f} us wall, "
        f"{'buffered' if args.buffered else 'direct'} I/O, {args.frames} frames"
    )
    print("command:", shlex.join([sys.executable, *sys.argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
