"""The per-camera writer: passthrough bytes, strictly increasing pts, segments, index."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path

import av
import pytest

from mmrec.store.files import CameraFiles
from mmrec.store.index import INDEX, PROBES, read_index, read_probes
from mmrec.store.writer import GROW_AFTER_NS, CameraWriter, Frame, Probe, WriterPool
from mmrec.wire import jpeg
from tests.helpers import make_jpeg, sim_jpeg


def _packets(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as c:
        return [(int(p.pts), bytes(p)) for p in c.demux(video=0) if p.size]


@pytest.mark.parametrize("muxer", ["mkv", "pyav"])
def test_frames_are_written_unchanged_with_increasing_pts(tmp_path: Path, muxer: str) -> None:
    w = CameraWriter("cam-a", tmp_path, "cam-a", muxer=muxer)
    sent = []
    for n in range(20):
        data = sim_jpeg("cam-a", n, 1000 + n)
        sent.append(data)
        # two frames within one tick (10 µs): pts must still increase
        t = 40_000_000 * n if n != 5 else 40_000_000 * 4 + 10
        assert w.offer(Frame(data, t, t, f"{n}.000001"))
    w.close()
    st = w.stats()
    assert st.frames == 20 and st.dropped == 0 and st.error is None
    assert st.segments == ("cam-a/seg-0000.mkv",)
    pk = _packets(tmp_path / st.segments[0])
    assert [d for _, d in pk] == sent
    pts = [p for p, _ in pk]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert st.pts_bumps == 1
    rows = list(read_index(tmp_path / "cam-a" / "index.csv"))
    assert [r.seq for r in rows] == list(range(20))
    # the index counts 10 µs ticks, as the mkv muxer's files do; PyAV's count ms
    ticks = [4000 * n if n != 5 else 16001 for n in range(20)]
    assert [r.pts for r in rows] == ticks
    assert pts == (ticks if muxer == "mkv" else [40 * n if n != 5 else 161 for n in range(20)])
    assert rows[3].device_ts == "3.000001"
    assert rows[3].size == len(sent[3])


@pytest.mark.parametrize("muxer", ["mkv", "pyav"])
def test_new_segment_on_resolution_change_and_by_length(tmp_path: Path, muxer: str) -> None:
    w = CameraWriter("cam", tmp_path, "cam", segment_ns=1_000_000_000, muxer=muxer)
    frames = [make_jpeg(64, 48)] * 3 + [make_jpeg(32, 32)] * 3
    t = 0
    for data in frames:
        w.offer(Frame(data, t, t, None))
        t += 100_000_000
    # 1.5 s later, same size: the segment length rolls the file over
    w.offer(Frame(frames[-1], t + 1_500_000_000, t, None))
    w.close()
    st = w.stats()
    assert st.segments == ("cam/seg-0000.mkv", "cam/seg-0001.mkv", "cam/seg-0002.mkv")
    sizes = []
    for seg in st.segments:
        with av.open(str(tmp_path / seg)) as c:
            s = c.streams.video[0]
            sizes.append((s.codec_context.width, s.codec_context.height, c.streams.video[0].frames))
    assert [s[:2] for s in sizes] == [(64, 48), (32, 32), (32, 32)]
    rows = list(read_index(tmp_path / "cam" / "index.csv"))
    assert [r.segment for r in rows] == [0, 0, 0, 1, 1, 1, 2]


def test_full_queue_drops_the_incoming_frame_and_counts_it(tmp_path: Path) -> None:
    w = CameraWriter("cam", tmp_path, "cam")
    data = make_jpeg()
    accepted = sum(w.offer(Frame(data, i * 1_000_000, 0, None)) for i in range(500))
    w.close()
    st = w.stats()
    assert st.frames == accepted
    assert st.dropped == 500 - accepted


def test_non_jpeg_is_counted_not_written(tmp_path: Path) -> None:
    w = CameraWriter("cam", tmp_path, "cam")
    w.offer(Frame(b"not a jpeg at all", 0, 0, None))
    w.offer(Frame(make_jpeg(), 1_000_000, 0, None))
    w.close()
    st = w.stats()
    assert st.frames == 1 and st.not_jpeg == 1
    assert jpeg.parse_header(_packets(tmp_path / st.segments[0])[0][1]) is not None


def test_a_stalled_write_does_not_hold_up_other_cameras_and_order_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One camera's write stalls (a disk hiccup) on the pool's only thread: the pool adds
    a thread, the other cameras' frames (offered before and after) are written meanwhile,
    and every camera's frames land in order. The pool's clock is the test's: the stall
    lasts as long as the test says, not as long as it sleeps."""
    stalled = threading.Event()
    release = threading.Event()
    all_written = threading.Event()
    real_write = CameraWriter._write_run
    now = [0]
    cams = ["slow", *(f"c{i}" for i in range(8))]

    def write(self: CameraWriter, run: list[Frame]) -> None:
        if self.camera == "slow":
            stalled.set()
            release.wait(10)
        real_write(self, run)
        if all(writers[c].stats().frames == 21 for c in cams[1:]):
            all_written.set()

    monkeypatch.setattr(CameraWriter, "_write_run", write)
    pool = WriterPool(3, clock=lambda: now[0], run=1)
    assert pool.threads == 1
    writers = {c: CameraWriter(c, tmp_path, c, pool=pool) for c in cams}
    sent: dict[str, list[bytes]] = {c: [] for c in cams}

    def offer(cam: str, n: int) -> None:
        data = sim_jpeg(cam, n, n)
        sent[cam].append(data)
        assert writers[cam].offer(Frame(data, n * 33_000_000, n * 33_000_000, None))

    offer("slow", 0)
    assert stalled.wait(5)
    for n in range(20):  # interleaved, as cameras deliver: each has frames waiting
        for cam in cams[1:]:
            offer(cam, n)
    assert pool.threads == 1  # no time has passed on the pool's clock: nothing to grow for
    now[0] += GROW_AFTER_NS * 3 // 2
    for cam in cams[1:]:
        offer(cam, 20)  # no thread has come free for a while: the pool grows
    assert all_written.wait(10), "held up by the stall"
    assert writers["slow"].stats().frames == 0 and pool.threads >= 2
    release.set()
    for w in writers.values():
        w.close()
    pool.shutdown()
    for cam, w in writers.items():
        st = w.stats()
        assert st.dropped == 0
        assert [d for _, d in _packets(tmp_path / st.segments[0])] == sent[cam]


def test_a_camera_that_waited_for_the_cpu_adds_no_thread(tmp_path: Path) -> None:
    """The thread was free when the camera was queued, and took it late (a loaded
    machine gave it no CPU): one thread more would not help, so none is added."""
    now = [0]
    late = [0]  # what the writer thread's reading of the clock adds: its late start
    free = threading.Event()

    def clock() -> int:
        if threading.current_thread().name.startswith("writer-"):
            free.set()  # the thread is about to wait for work
            return now[0] + late[0]
        return now[0]

    pool = WriterPool(3, clock=clock)
    assert free.wait(5)
    writer = CameraWriter("cam", tmp_path, "cam", pool=pool)
    now[0], late[0] = 10 * GROW_AFTER_NS, GROW_AFTER_NS * 3 // 2
    assert writer.offer(Frame(sim_jpeg("cam", 0, 0), 0, 0, None))
    writer.close()
    assert writer.stats().frames == 1
    assert pool.threads == 1
    pool.shutdown()


def test_frames_offered_after_close_are_dropped_and_counted(tmp_path: Path) -> None:
    w = CameraWriter("cam-a", tmp_path, "cam-a")
    assert w.offer(Frame(sim_jpeg("cam-a", 0, 0), 0, 0, None))
    w.close()
    assert not w.offer(Frame(sim_jpeg("cam-a", 1, 1), 40_000_000, 40_000_000, None))
    st = w.stats()
    assert st.frames == 1 and st.dropped == 1


@pytest.mark.parametrize(
    "ts", ["1795617315.478416", "", "a,b", 'say "hi"', "line\nbreak", "cr\ronly", "ünï"]
)
def test_index_rows_read_back_with_any_device_timestamp(tmp_path: Path, ts: str) -> None:
    w = CameraWriter("cam", tmp_path, "cam")
    for i in range(3):
        assert w.offer(Frame(sim_jpeg("cam", i, i), i * 33_000_000, i * 33_000_000, ts or None))
    w.close()
    rows = list(read_index(tmp_path / "cam" / INDEX))
    assert [r.seq for r in rows] == [0, 1, 2]
    assert all(r.device_ts == ts for r in rows)


async def test_frames_offered_on_the_loop_are_handed_over_once_per_batch(
    tmp_path: Path,
) -> None:
    pool = WriterPool(1)
    handovers = 0
    real = pool._hand_over

    def counting() -> None:
        nonlocal handovers
        handovers += 1
        real()

    pool._hand_over = counting  # type: ignore[method-assign]
    writers = [CameraWriter(f"c{i}", tmp_path, f"c{i}", pool=pool) for i in range(3)]
    # One loop callback's worth of frames (as from one batch of ready sockets) ...
    for n in range(4):
        for w in writers:
            assert w.offer(Frame(sim_jpeg(w.camera, n, n), n * 33_000_000, n * 33_000_000, None))
    assert handovers == 0  # ... nothing woke a writer thread yet
    # ... and once the loop runs its callbacks (ours is queued after the pool's), they
    # have been handed over together.
    after_callbacks = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(after_callbacks.set_result, None)
    await after_callbacks
    assert handovers == 1
    await asyncio.gather(*(asyncio.to_thread(w.close) for w in writers))
    pool.shutdown()
    for w in writers:
        st = w.stats()
        assert st.frames == 4 and st.dropped == 0 and st.error is None
        assert [r.seq for r in read_index(tmp_path / w.camera / INDEX)] == [0, 1, 2, 3]


async def test_close_called_on_the_loop_itself_still_writes_everything(tmp_path: Path) -> None:
    w = CameraWriter("cam", tmp_path, "cam")
    for n in range(3):
        assert w.offer(Frame(sim_jpeg("cam", n, n), n * 33_000_000, n * 33_000_000, None))
    w.close(timeout=5)  # blocks the loop: the hand-over cannot wait for it
    assert w.stats().frames == 3


def test_close_from_a_thread_after_the_loop_stopped_still_writes_everything(
    tmp_path: Path,
) -> None:
    pool = WriterPool(1)
    w = CameraWriter("cam", tmp_path, "cam", pool=pool)

    async def offer_then_stop() -> None:
        for n in range(3):
            assert w.offer(Frame(sim_jpeg("cam", n, n), n * 33_000_000, n * 33_000_000, None))
        asyncio.get_running_loop().stop()  # the hand-over callback never gets to run

    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(offer_then_stop())
        loop.run_forever()
        assert task.done()
    finally:
        loop.close()
    w.close(timeout=5)
    pool.shutdown()
    st = w.stats()
    assert st.frames == 3 and st.error is None


def test_connection_numbers_and_probes_are_written_with_the_frames(tmp_path: Path) -> None:
    """index.csv keeps each frame's connection; probes.csv each clock probe, in order,
    from the same writer thread (a probe is never refused and never counts as a frame)."""
    w = CameraWriter("cam", tmp_path, "cam")
    w.offer_probe(Probe(-3_000_000_000, 1_764_067_200_000_000_000, -2_999_000_000))
    for n in range(4):
        w.offer_probe(Probe(n * 10, 1_764_067_200_000_000_000 + n, n * 10 + 4))
        w.offer(Frame(make_jpeg(), n * 40_000_000, n * 40_000_000, None, conn=1 + n // 2))
    w.close()
    st = w.stats()
    assert (st.frames, st.dropped, st.probes) == (4, 0, 5)
    rows = list(read_index(tmp_path / "cam" / INDEX))
    assert [r.conn for r in rows] == [1, 1, 2, 2]
    assert all(r.refined_ns is None and r.best_ns == r.time_ns for r in rows)
    probes = read_probes(tmp_path / "cam" / PROBES)
    assert probes[0] == (-3_000_000_000, 1_764_067_200_000_000_000, -2_999_000_000)
    assert probes[1:] == [(n * 10, 1_764_067_200_000_000_000 + n, n * 10 + 4) for n in range(4)]


def test_frames_are_written_in_runs_and_a_run_that_stops_growing_within_its_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A camera's frames go to its files in runs of ``run`` (one system call each): a
    frame is held until its run is whole, or until it has waited ``run_wait_ns`` (a camera
    that went quiet); frames that queued behind a slow write go in runs too."""
    runs: list[list[int]] = []
    written: list[float] = []
    first_held = threading.Event()
    go_on = threading.Event()
    queued_written = threading.Event()
    last = threading.Event()
    real = CameraWriter._write_run

    def spy(self: CameraWriter, run: list[Frame]) -> None:
        runs.append([f.time_ns // 33_000_000 for f in run])
        if len(runs) == 1:
            first_held.set()
            assert go_on.wait(10)
        real(self, run)
        written.append(time.monotonic())
        if run[-1].time_ns == 8 * 33_000_000:
            queued_written.set()
        if run[-1].time_ns == 9 * 33_000_000:
            last.set()

    monkeypatch.setattr(CameraWriter, "_write_run", spy)
    wait_ns = 50_000_000
    pool = WriterPool(1, run=4, run_wait_ns=wait_ns)
    w = CameraWriter("cam", tmp_path, "cam", pool=pool)
    sent = [sim_jpeg("cam", n, n) for n in range(10)]

    def offer(n: int) -> None:
        assert w.offer(Frame(sent[n], n * 33_000_000, n * 33_000_000, None))

    for n in range(4):
        offer(n)
    assert first_held.wait(5)  # the run of 4 went out at once: its write is held here
    for n in range(4, 9):
        offer(n)  # queued behind it
    go_on.set()
    assert queued_written.wait(5)  # the queued frames go in runs as well: 4, then the 9th
    offered_at = time.monotonic()
    offer(9)  # alone: held for its run, handed over by the pool's timer
    assert last.wait(5)
    assert written[-1] - offered_at >= wait_ns / 1e9
    assert runs == [[0, 1, 2, 3], [4, 5, 6, 7], [8], [9]]
    w.close()
    pool.shutdown()
    assert [d for _, d in _packets(tmp_path / w.stats().segments[0])] == sent


def test_a_probe_waits_with_the_frames_of_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock probe's row (probes.csv) is no reason to write a run early: it waits with
    the frames, and the run goes out whole when its last frame comes."""
    runs: list[int] = []
    done = threading.Event()
    real = CameraWriter._write_run

    def spy(self: CameraWriter, run: list[Frame]) -> None:
        runs.append(len(run))
        real(self, run)
        done.set()

    monkeypatch.setattr(CameraWriter, "_write_run", spy)
    pool = WriterPool(1, run=4, run_wait_ns=10**12)  # no frame waits out its run here
    w = CameraWriter("cam", tmp_path, "cam", pool=pool)
    for n in range(4):
        if n == 2:
            w.offer_probe(Probe(n, n, n + 1))
        assert w.offer(Frame(sim_jpeg("cam", n, n), n * 33_000_000, n * 33_000_000, None))
    assert done.wait(5)
    w.close()
    pool.shutdown()
    assert runs == [4]
    assert read_probes(tmp_path / "cam" / PROBES) == [(2, 2, 3)]


def test_a_sync_asked_while_a_run_is_held_follows_the_whole_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's timer asks for a sync (fdatasync) while frames wait for their run: the
    run is not cut short for it; the sync comes after the whole run, covering it too."""
    log: list[str] = []
    first = threading.Event()
    synced = threading.Event()
    real_run, real_sync = CameraWriter._write_run, CameraFiles.sync

    def run(self: CameraWriter, frames: list[Frame]) -> None:
        log.append(f"run {len(frames)}")
        real_run(self, frames)
        first.set()

    def sync(self: CameraFiles) -> None:
        log.append("sync")
        real_sync(self)
        synced.set()

    monkeypatch.setattr(CameraWriter, "_write_run", run)
    monkeypatch.setattr(CameraFiles, "sync", sync)
    pool = WriterPool(1, run=4, run_wait_ns=10**12, sync_interval=3600)
    w = CameraWriter("cam", tmp_path, "cam", pool=pool)

    def offer(n: int) -> None:
        assert w.offer(Frame(sim_jpeg("cam", n, n), n * 33_000_000, n * 33_000_000, None))

    for n in range(4):
        offer(n)
    assert first.wait(5)  # written: the files have something to sync
    for n in range(4, 6):
        offer(n)  # held for their run
    assert w.stats().frames <= 4
    w._sync_due(time.monotonic_ns() + 10**13, 10**9)  # the timer: the files waited long
    offer(6)
    offer(7)  # the run is whole
    assert synced.wait(5)
    w.close()
    pool.shutdown()
    assert log[:3] == ["run 4", "run 4", "sync"]
    assert w.stats().frames == 8
