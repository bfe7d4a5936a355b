"""What durability costs per stream: the CPU of the writer's fdatasync calls, alone.

``bench_record.py --sync-intervals 1,0`` measures the whole recorder with and without
syncing, where a shared machine's noise can be larger than the difference. This isolates
it: N files written as the recorder writes them (one 217 KB O_DIRECT frame per write,
mmrec's Matroska writer, an index row each), at the recorder's sync cadence (segment and
index fdatasync'ed every ~0.75 s of 30 fps frames for the default --sync-interval 1),
A/B interleaved with the same writes unsynced. It prints the CPU (this thread's, kernel
time included) per fdatasync and what that makes per stream at 30 fps.

    .venv/bin/python benchmarks/bench_sync.py --files 16 --frames 90 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mmrec.store import payload
from mmrec.store.ebml import TrackInfo
from mmrec.store.mkv import SegmentFile

FRAME_BYTES = 217_000  # a 1080p phone JPEG
FPS = 30.0
SYNC_EVERY_S = 0.75  # how often the pool syncs a busy camera at --sync-interval 1


def run(folder: Path, files: int, frames: int, sync: bool) -> tuple[float, int, float]:
    """(CPU s of the whole run, fdatasync calls, CPU s inside them)."""
    data = payload.aligned(FRAME_BYTES)
    data[:] = os.urandom(FRAME_BYTES)
    segs = [
        SegmentFile(str(folder / f"{sync}-{i}.mkv"), TrackInfo(1920, 1080), direct=True)
        for i in range(files)
    ]
    index = [os.open(folder / f"{sync}-{i}.csv", os.O_WRONLY | os.O_CREAT) for i in range(files)]
    every = round(SYNC_EVERY_S * FPS)
    calls, in_sync = 0, 0.0
    t0 = time.thread_time()
    for k in range(frames):
        for seg, fd in zip(segs, index, strict=True):
            seg.write_frame(k * 33, data)
            os.write(fd, b"%d,0,%d,0,0,,%d\n" % (k, k * 33, FRAME_BYTES))
        if sync and k % every == every - 1:
            for seg, fd in zip(segs, index, strict=True):
                a = time.thread_time()
                seg.sync()
                os.fdatasync(fd)
                in_sync += time.thread_time() - a
                calls += 2
    cpu = time.thread_time() - t0
    for seg in segs:
        seg.close()
    for fd in index:
        os.close(fd)
    return cpu, calls, in_sync


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=16, help="streams written side by side")
    ap.add_argument("--frames", type=int, default=90, help="frames per stream per run")
    ap.add_argument("--repeat", type=int, default=3, help="A/B pairs")
    ap.add_argument("--workdir", type=Path, default=None, help="a folder on the disk to test")
    args = ap.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"load average: {os.getloadavg()[0]:.1f}")
    per_call = []
    for _ in range(args.repeat):
        for sync in (True, False):
            folder = Path(tempfile.mkdtemp(dir=args.workdir))
            try:
                cpu, calls, in_sync = run(folder, args.files, args.frames, sync)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            frames = args.files * args.frames
            line = f"sync={'on ' if sync else 'off'} {cpu / frames * 1e6:6.1f} us CPU per frame"
            if calls:
                per_call.append(in_sync / calls)
                line += f"; {calls} fdatasync, {in_sync / calls * 1e6:.0f} us CPU each"
            print(line, flush=True)
    if per_call:
        each = sorted(per_call)[len(per_call) // 2]
        per_stream = 2 / SYNC_EVERY_S * each * 100  # % of a core
        print(
            f"fdatasync: median {each * 1e6:.0f} us CPU each; 2 per stream every "
            f"{SYNC_EVERY_S:g} s = {per_stream:.3f} % of a core per stream "
            f"(load average now {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
