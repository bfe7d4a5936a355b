"""Per-frame cost of ``CameraWriter._write`` (segment block + index.csv row), in the
writer thread's own terms: CPU µs per frame over many frames, best of several runs.

Frames are 200 KB JPEGs in block-aligned memory (as the parser hands them over), written
O_DIRECT where the file system allows it (``--dir`` on a real disk; tmpfs refuses it and
the writer goes buffered). It times the method the pool thread calls per frame, without
the queue or the pool, so a change to the row format or the block write shows up alone.

    .venv/bin/python benchmarks/bench_write_frame.py --frames 3000 --runs 5
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from mmrec.store import payload
from mmrec.store.writer import CameraWriter, Frame, WriterPool
from mmrec.wire import jpeg


def make_jpeg(size: int) -> bytes:
    """A minimal baseline JPEG header (SOI, SOF0 1920x1080, SOS) padded to ``size`` bytes."""
    sof = b"\xff\xc0\x00\x11\x08\x04\x38\x07\x80\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    head = b"\xff\xd8" + sof + sos
    body = bytes(size - len(head) - 2)
    return head + body + b"\xff\xd9"


def run(folder: Path, frames: int, data: bytes, direct: bool) -> float:
    buf = payload.aligned(len(data))
    buf[:] = data
    pool = WriterPool(1)
    w = CameraWriter("cam", folder, "cam", pool=pool, direct_io=direct)
    period = 33_333_333
    t_cpu = time.thread_time_ns()
    for i in range(frames):
        w._write(Frame(buf, i * period, i * period + 5_000_000, "1764067200.123456", 1))
    cpu = time.thread_time_ns() - t_cpu
    w.close()
    pool.shutdown()
    return cpu / frames / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=200_000)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp folder)")
    args = ap.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    data = make_jpeg(args.size)
    assert jpeg.dimensions(data) == (1920, 1080)
    for direct in (True, False):
        got = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                got.append(run(Path(tmp), args.frames, data, direct))
        got.sort()
        print(
            f"{'direct' if direct else 'buffered':8s}: CameraWriter._write {got[0]:.1f} µs CPU"
            f" per frame (best of {args.runs}; median {got[len(got) // 2]:.1f})"
        )


if __name__ == "__main__":
    main()
