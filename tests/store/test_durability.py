"""What a power cut can lose: every segment and index is made durable (fdatasync) within
the sync interval, segment before index, from the writer threads, never the event loop;
and a camera that stops sending is made durable too."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from mmrec.store.writer import CameraWriter, Frame, WriterPool
from tests.helpers import pace, sim_jpeg

INTERVAL = 0.4


class Syncs:
    """Every fdatasync: (monotonic time, path, thread name)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[float, str, str]] = []
        self.seen = threading.Condition()
        real = os.fdatasync

        def fdatasync(fd: int) -> None:
            real(fd)
            path = os.readlink(f"/proc/self/fd/{fd}")
            with self.seen:
                self.calls.append((time.monotonic(), path, threading.current_thread().name))
                self.seen.notify_all()

        monkeypatch.setattr(os, "fdatasync", fdatasync)

    def of(self, name: str) -> list[tuple[float, str, str]]:
        return [c for c in self.calls if c[1].endswith(name)]

    def wait(self, name: str, after: float, timeout: float = 5.0) -> None:
        """Until ``name`` was synced after ``after`` (monotonic s)."""
        with self.seen:
            ok = self.seen.wait_for(lambda: any(t > after for t, *_ in self.of(name)), timeout)
        assert ok, f"{name} not synced within {timeout} s"


async def test_segments_and_index_are_made_durable_within_the_interval_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(monkeypatch)
    pool = WriterPool(1, sync_interval=INTERVAL)
    w = CameraWriter("cam", tmp_path, "cam", pool=pool)
    writes: list[float] = []
    for n in range(45):  # 1.5 s at 30 fps, from the event loop
        assert w.offer(Frame(sim_jpeg("cam", n, n), n * 33_333_333, n * 33_333_333, None))
        writes.append(time.monotonic())
        await pace(1 / 30)
    await asyncio.to_thread(syncs.wait, "index.csv", writes[-1])
    last_sync = max(t for t, *_ in syncs.of("index.csv"))
    await asyncio.to_thread(w.close)
    pool.shutdown()
    seg, index = syncs.of("seg-0000.mkv"), syncs.of("index.csv")
    assert len(seg) >= 2 and len(index) >= 2
    # never on the event loop's thread: the pool's writer threads do it
    assert {name for _, _, name in seg + index} <= {f"writer-{i}" for i in range(4)}
    # every write was durable within the interval (a quarter of it for the timer's tick,
    # and room for this busy machine's scheduling)
    for t in writes:
        if t < last_sync:
            assert min(s for s, *_ in index if s >= t) - t < INTERVAL + 0.5
    # the segment's data first, then the rows that describe it
    pairs = sorted(seg + index)
    firsts = [c[1].endswith("seg-0000.mkv") for c in pairs[:2]]
    assert firsts == [True, False]


def test_a_camera_that_stops_sending_is_made_durable_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(monkeypatch)
    pool = WriterPool(1, sync_interval=INTERVAL)
    w = CameraWriter("cam", tmp_path, "cam", pool=pool)
    t0 = time.monotonic()
    assert w.offer(Frame(sim_jpeg("cam", 0, 0), 0, 0, None))  # one frame, then silence
    syncs.wait("seg-0000.mkv", t0)
    syncs.wait("index.csv", t0)
    w.close()
    pool.shutdown()


def test_sync_interval_zero_leaves_it_to_the_os(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(monkeypatch)
    pool = WriterPool(1, sync_interval=0)
    w = CameraWriter("cam", tmp_path, "cam", pool=pool)
    for n in range(5):
        assert w.offer(Frame(sim_jpeg("cam", n, n), n * 33_333_333, 0, None))
    w.close()
    pool.shutdown()
    assert syncs.calls == [] and w.stats().frames == 5
