"""A synthetic finished take on disk, for the benchmarks that read one back (bench_proxy,
bench_export): each camera's frames written with CameraWriter exactly as the recorder
writes them, cameras out of phase and with timing jitter, every frame carrying the
simulator's COM record (its node, frame number and true time), and a finished manifest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mmrec.store.index import INDEX
from mmrec.store.take import CameraEntry, ClockInfo, Manifest, load_manifest, write_manifest
from mmrec.store.writer import CameraWriter, Frame
from mmrec.wire import jpeg

NS = 1_000_000_000


def write_take(
    root: Path,
    pools: Sequence[Sequence[bytes]],
    seconds: float,
    fps: float,
    *,
    jitter_ns: float,
    true_from_start: bool = False,
) -> Path:
    """``root/bench-take`` with one camera (``cam1``, ``cam2``, ...) per pool of JPEGs,
        cycled through at ``fps`` for ``seconds``; a frame's time is jittered by a normal
        ``jitter_ns`` (seeded: the same take every run); its true time is that time, counted from
    the take's start (wall clock ns) with ``true_from_start``."""
    take = root / "bench-take"
    take.mkdir(parents=True)
    rng = np.random.default_rng(0)
    start = time.time_ns()
    true_base = start if true_from_start else 0
    entries = []
    for c, pool in enumerate(pools):
        name = f"cam{c + 1}"
        writer = CameraWriter(name, take, name, queue_frames=100_000)
        offset = int(c * 7.3e6)  # out of phase
        for k in range(int(seconds * fps)):
            t = max(0, offset + int(k * NS / fps) + int(rng.normal(0, jitter_ns)))
            base = pool[k % len(pool)]
            rec = f"mmcam-sim node={name} frame={k} true_ns={true_base + t}".encode()
            writer.offer(Frame(base[:2] + jpeg.com_segment(rec) + base[2:], t, t, None))
        writer.close(timeout=600)
        st = writer.stats()
        entries.append(
            CameraEntry(
                name=name, dir=name, url="synthetic", segments=st.segments,
                index=f"{name}/{INDEX}", frames=st.frames, bytes=st.bytes,
                width=st.width, height=st.height, first_pts=st.first_pts,
                last_pts=st.last_pts, state="stopped", clock=ClockInfo(source="arrival"),
            )
        )  # fmt: skip
    write_manifest(
        take,
        Manifest(
            take_id="bench-take",
            started_utc="2024-01-01T00:00:00Z",
            start_realtime_ns=start,
            timecode="10:00:00:00",
            cameras=tuple(entries),
            state="finished",
        ),
    )
    return take


def ready_take(given: Path | None, make: Callable[[], Path]) -> Path:
    """The take to measure: ``given`` (one made before with --keep), else ``make()``'s; a
    line says what it holds and how loaded the machine is."""
    if given is not None:
        take = given
    else:
        t = time.perf_counter()
        take = make()
        print(f"take made in {time.perf_counter() - t:.1f} s")
    m = load_manifest(take)
    c0 = m.cameras[0]
    total = sum(c.bytes for c in m.cameras)
    print(
        f"take: {len(m.cameras)} cameras x {c0.frames} frames of {c0.width}x{c0.height}, "
        f"{total / max(1, sum(c.frames for c in m.cameras)) / 1e3:.0f} KB/JPEG, "
        f"{total / 1e6:.0f} MB; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    return take
