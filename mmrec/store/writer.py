"""Per-camera Matroska writers: JPEG passthrough, crash-safe, off the event loop.

Each camera has one :class:`CameraWriter`; the blocking writes run in a small
:class:`WriterPool` of threads shared by all cameras, which starts with one thread and
adds more only when one falls behind. Few threads rather than one per camera: measured
here with 16 cameras, a thread per camera spent most of its time handing the GIL around
(futex system time) for ~2x the CPU per frame of one shared thread; the disk is shared
anyway. The event loop only calls :meth:`CameraWriter.offer`,
which never blocks: each camera may have at most ``queue_frames`` frames waiting, and
when it has that many (the disk cannot keep up), its *incoming* frame is dropped and
counted (``dropped``); frames already queued keep their order and other cameras' frames
are not affected.

One module because the pool's scheduling and the camera writers' queues are one
hand-over protocol (who holds a camera, when it goes back in line). What happens in the
files (segments, index, relay folders, failures and their recovery) is
:mod:`mmrec.store.files`.

Invariants:
- JPEG bytes go to the file unchanged. A camera's frames are written in runs of up to
  ``run`` (the pool's, ``DEFAULT_RUN``): a frame is held until its run is whole or it has
  waited ``RUN_WAIT_NS``, and the default muxer (:mod:`mmrec.store.mkv`) writes a run with
  one system call: with ``direct_io`` (the default) one ``writev`` of block-aligned
  regions, ``O_DIRECT`` from the memory the parser received each frame into, past the
  page cache; else one ``writev`` of block headers and frame bytes. Each write of a
  direct I/O device is a request with a fixed cost (on this VM ~60-75 µs of CPU whatever
  its size, a third of it the virtio notification): runs of 4 cut the recording's CPU
  per frame (see README, Figures). ``muxer="pyav"`` uses libavformat instead
  (``av.Packet(data)`` wraps the bytes without a copy), a frame at a time.
- pts are the frames' take times rounded to the take's tick (10 µs), strictly increasing
  per camera across segments (bumped by one tick when two frames would share one,
  counted in ``pts_bumps``).
- Each segment carries the timecode of its own first frame (``timecode``, given by the
  take: the time of day at the camera's rate), so a segment converted on its own lands at
  its place.
- Crash safety: with the default muxer every frame is on the device (direct I/O) or in the
  OS (buffered) when its write returns, so a SIGKILL loses only frames still queued or
  held for their run (at most ``run - 1`` frames, ``RUN_WAIT_NS`` of them; ``run=1``
  holds none); PyAV runs with ``flush_packets=1`` and loses at most about one more (the
  cluster it keeps open). Power cuts: the pool's timer asks every camera with unsynced
  writes for a sync (``fdatasync`` of segment, then index) within ``sync_interval``, run
  in the writer thread like a frame, so the last ``sync_interval`` is all a power cut
  can lose.
- A new segment starts when the JPEG size changes and when ``segment_ns`` has passed.
- A camera whose files fail (disk full, I/O error, folder removed) says so in its state,
  counts the frames it loses and resumes by itself (:mod:`mmrec.store.files`); other
  cameras go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from mmrec.store.files import CameraFiles, WriterStats
from mmrec.store.files import Frame as Frame  # a frame as offered (re-exported)
from mmrec.store.health import WriteChange
from mmrec.store.index import PROBE_COLUMNS, PROBES, write_all

DEFAULT_QUEUE_FRAMES: Final = 120  # per camera, ~4 s of 30 fps: rides out a disk hiccup
DEFAULT_SYNC_INTERVAL: Final = 1.0  # s: what a power cut may lose at most
CHECK_NS: Final = 1_000_000_000  # files checked (deleted under us?) at least this often

GROW_AFTER_NS: Final = 100_000_000  # a camera waiting this long for a thread: add one
BATCH: Final = 4  # frames a thread writes for one camera before serving the next
DEFAULT_RUN: Final = 4  # a camera's frames are written in runs of up to this many...
RUN_WAIT_NS: Final = 100_000_000  # ...a frame waiting at most this long for its run


class WriterPool:
    """Threads that run the cameras' blocking writes, started as the load needs them.

    Cameras are scheduled, not pinned: a camera with frames to write is queued once, and
    whichever thread is free writes up to ``BATCH`` of them, in order (a camera is never
    on two threads at once). One thread to begin with: every thread more is one more
    contender for the GIL, which costs CPU on every hand-over (measured at 8 cameras:
    0.87-0.92 % of a core per stream with one thread, 1.04-1.07 with two). A thread is
    added, up to ``threads``, when a camera has waited ``GROW_AFTER_NS`` for one, or no
    thread has come free for that long (a stalled disk write): one thread alone fell
    behind the disk's latency at 128 cameras, and a stalled write must not hold up the
    other cameras. Not when the camera waited for the CPU rather than for a thread (the
    thread that took it was already free when it was queued): on a loaded machine (a
    console with a browser, 16 cameras, 2 cores) the pool grew to 4 threads that way,
    and their hand-overs took a sixth of the event loop's time. Cameras scheduled from
    the event loop are handed over once per batch of ready sockets
    (:meth:`_schedule_soon`): at 32 streams that halved the futex calls (7.6-9.7k to
    3.8k in 10 s) and cut context switches by a fifth.

    ``clock`` (monotonic ns) times the waits that make the pool grow; a test gives its own
    to stage a stalled write without waiting for one.
    """

    def __init__(
        self,
        threads: int = 1,
        name: str = "writer",
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
        run: int = DEFAULT_RUN,
        run_wait_ns: int = RUN_WAIT_NS,
    ) -> None:
        if threads < 1:
            raise ValueError("a writer pool needs at least one thread")
        if sync_interval < 0:
            raise ValueError("sync_interval must be 0 (off) or positive")
        if run < 1 or run_wait_ns < 0:
            raise ValueError("run must be at least 1 and run_wait_ns not negative")
        self._clock = clock
        self.sync_interval_ns = int(sync_interval * 1e9)
        self.run = run
        self.run_wait_ns = run_wait_ns
        self._writers: set[CameraWriter] = set()
        self._timer_stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._max = threads
        self._name = name
        self._ready: queue.SimpleQueue[tuple[CameraWriter, int] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut = False
        self._started: list[int | None] = []  # per thread: when its current task began
        self._soon: list[tuple[CameraWriter, int]] = []  # from the loop, not yet handed over
        self._soon_lock = threading.Lock()
        self._add_thread()

    def _register(self, writer: CameraWriter) -> None:
        with self._lock:
            self._writers.add(writer)
            if self._timer is None and not self._shut:
                self._timer = threading.Thread(
                    target=self._sync_timer, name=f"{self._name}-sync", daemon=True
                )
                self._timer.start()

    def _unregister(self, writer: CameraWriter) -> None:
        with self._lock:
            self._writers.discard(writer)

    def _sync_timer(self) -> None:
        """Every quarter interval (at most 250 ms), ask the cameras whose writes waited
        half an interval for a sync: what was written is durable within ~3/4 interval plus
        the queue's wait, and a busy camera syncs about once per 1/2-3/4 interval (the
        cost is in benchmarks/bench_record.py). Every half ``run_wait_ns``, hand over the
        frames that waited that long for their run (a camera that went quiet)."""
        interval = self.sync_interval_ns
        sync_tick = min(interval // 4, CHECK_NS // 4) if interval else CHECK_NS // 4
        runs = self.run > 1
        tick = max(min(sync_tick, self.run_wait_ns // 2), 1_000_000) if runs else sync_tick
        next_sync = self._clock() + sync_tick
        while not self._timer_stop.wait(tick / 1e9):
            now = self._clock()
            with self._lock:
                writers = list(self._writers)
            if runs:
                for w in writers:
                    w._run_due(now)
            if now >= next_sync:
                next_sync = now + sync_tick
                for w in writers:
                    w._sync_due(now, interval)

    @property
    def threads(self) -> int:
        """Threads started so far."""
        return len(self._threads)

    def _add_thread(self) -> None:
        with self._lock:
            if self._shut or len(self._threads) >= self._max:
                return
            i = len(self._threads)
            t = threading.Thread(target=self._run, args=(i,), name=f"{self._name}-{i}", daemon=True)
            self._started.append(None)
            self._threads.append(t)
            t.start()

    def _schedule(self, writer: CameraWriter) -> None:
        self._ready.put((writer, self._check(self._clock())))

    def _schedule_soon(self, writer: CameraWriter) -> None:
        """:meth:`_schedule` from the event loop: cameras that got frames while the loop
        handled one batch of ready sockets are handed over together, after it, so a
        sleeping writer thread is woken once per batch rather than once per frame (each
        wake-up is a futex call, two context switches and a GIL hand-over). Without a
        running loop (a plain caller), at once."""
        loop = asyncio._get_running_loop()
        if loop is None:
            self._schedule(writer)
            return
        with self._soon_lock:
            self._soon.append((writer, self._clock()))
            first = len(self._soon) == 1
        if first:
            loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        """Queue the cameras scheduled soon; from any thread (the loop's callback, or a
        ``close()`` that must not wait for a loop that may not run again)."""
        with self._soon_lock:
            soon, self._soon = self._soon, []
        put = self._ready.put
        for item in soon:
            put(item)
        self._check(self._clock())

    def _check(self, now: int) -> int:
        """Add a thread if every thread has been on one task for ``GROW_AFTER_NS`` (a
        stalled write); cheap enough for every offer. Returns ``now``."""
        if len(self._threads) < self._max:
            started = self._started
            if all(s is not None and now - s > GROW_AFTER_NS for s in started):
                self._add_thread()
        return now

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the threads after the work already queued (close the writers first)."""
        self._timer_stop.set()
        with self._lock:
            self._shut = True
            threads = list(self._threads)
        for _ in threads:
            self._ready.put(None)
        for t in threads:
            t.join(timeout)

    def _run(self, i: int) -> None:
        while True:
            self._started[i] = None
            free_ns = self._clock()
            item = self._ready.get()
            if item is None:
                return
            writer, queued_ns = item
            now = self._started[i] = self._clock()
            # A camera waited long for a thread while this one was busy: the cameras
            # need more threads (the disk can take more). Not when this thread was free
            # before the camera was queued: then the wait was for the CPU (a loaded
            # machine), where one thread more is one more contender for the GIL.
            if now - queued_ns > GROW_AFTER_NS and free_ns > queued_ns:
                self._add_thread()
            try:
                writer._drain()
            except Exception as exc:  # never let one camera's bug stop the shared thread
                writer._error = f"camera {writer.camera!r}: writer error: {exc!r}"
                writer._closing = True
                writer._closed.set()


@dataclass(frozen=True, slots=True)
class Probe:
    """One ``/status`` clock probe, on the take timeline: written to ``probes.csv`` by the
    camera's writer thread, in order with its frames (a few a second: no I/O on the loop)."""

    t0_ns: int
    device_ns: int
    t1_ns: int


class CameraWriter:
    """Write one camera's frames into ``take_dir/cam_dir`` (and relay folders) from a
    worker thread; the files side is :class:`mmrec.store.files.CameraFiles`.

    ``timecode`` gives the ``TIMECODE`` of a segment whose first frame is at take time t
    (ns); without it every segment carries ``metadata["timecode"]``, if any.
    ``frame_ns`` is the camera's nominal frame period (the files' DefaultDuration)."""

    def __init__(
        self,
        camera: str,
        take_dir: Path,
        cam_dir: str,
        *,
        segment_ns: int = 0,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        metadata: dict[str, str] | None = None,
        pool: WriterPool | None = None,
        muxer: str = "mkv",
        direct_io: bool = True,
        relays: Sequence[Path] = (),
        on_change: Callable[[WriteChange], None] | None = None,
        timecode: Callable[[int], str] | None = None,
        frame_ns: int | None = None,
    ) -> None:
        self.camera = camera
        self._queue_frames = queue_frames
        # Written by one thread each (no lock needed): offered/dropped on the event loop,
        # done/frames/... in the pool thread. Waiting = offered - done.
        self._offered = 0
        self._done = 0
        self._closed = threading.Event()
        self._own_pool = pool is None
        self._pool = pool or WriterPool(1, name=f"writer:{camera}")
        # Frames (and sync requests) waiting for a writer thread; ``_scheduled``: this
        # camera is in the pool's queue or being written (both under ``_lock``).
        self._pending: deque[Frame | Probe | _Marker] = deque()
        self._scheduled = False
        self._held_ns = 0  # when the first item of the run being held was queued
        self._held = 0  # frames in the run being held
        self._lock = threading.Lock()
        self._closing = False
        self._sync_asked = False  # a sync is queued (set by the pool's timer, cleared here)
        self._queue_full = 0  # on the loop: refused by offer() (the disk fell behind)
        self._after_close = 0  # on the loop: offered after close()
        self._error: str | None = None  # a bug in this writer (the files report their own)
        # probes.csv, in the camera's folder of the first output folder: opened with the
        # first probe; a failure stops the probes, never the frames (a camera without
        # probes is refined as one without a /status clock)
        self._probes_path = Path(take_dir) / cam_dir / PROBES
        self._probes_fd = -1
        self._probes = 0
        self._probes_failed = False
        self.files = CameraFiles(
            camera,
            [take_dir, *relays],
            cam_dir,
            segment_ns=segment_ns,
            metadata=metadata,
            muxer=muxer,
            direct_io=direct_io,
            sync=self._pool.sync_interval_ns > 0,
            on_change=on_change,
            timecode=timecode,
            frame_ns=frame_ns,
        )
        self._pool._register(self)

    # -- called from the event loop ------------------------------------------------------

    def offer(self, frame: Frame) -> bool:
        """Queue a frame for writing; False (and counted) if this camera's queue is full."""
        waiting = self._offered - self._done
        if self._closing:
            self._after_close += 1
            return False
        if waiting >= self._queue_frames:
            self._queue_full += 1
            return False
        self._offered += 1
        self._enqueue(frame)
        return True

    def offer_probe(self, probe: Probe) -> None:
        """Queue a clock probe for ``probes.csv`` (never refused: a few a second at most,
        and the refinement needs every one)."""
        if not self._closing:
            self._enqueue(probe)

    def _enqueue(self, item: Frame | Probe | _Marker) -> None:
        pool = self._pool
        with self._lock:
            pending = self._pending
            pending.append(item)
            if self._scheduled:
                pool._check(pool._clock())
                return
            marker = type(item) is _Marker
            if item is _Marker.SYNC and len(pending) > 1 and pool.run > 1:
                # Frames are held for their run: the sync follows it (at most run_wait_ns
                # later) rather than cutting it short.
                return
            if not marker and pool.run > 1:
                # Held for its run (one system call for several frames): until the run is
                # whole or its first item has waited run_wait_ns (the pool's timer hands
                # over a run that stops growing). A probe waits with the frames: its row
                # is no reason to write a run early (at 4 Hz it would split every other).
                now = pool._clock()
                if len(pending) == 1:
                    self._held_ns, self._held = now, 0
                if type(item) is Frame:
                    self._held += 1
                if self._held < pool.run and now - self._held_ns < pool.run_wait_ns:
                    return
            self._scheduled = True
        if marker:
            pool._schedule(self)  # close() or a sync: from any thread, at once
        else:
            pool._schedule_soon(self)

    def stats(self) -> WriterStats:
        f = self.files.stats()
        return dataclasses.replace(
            f,
            dropped=f.dropped + self._queue_full + self._after_close,
            queued=self._offered - self._done,
            error=self._error or f.error,
            lost_causes=f.lost_causes
            + tuple(
                (cause, n)
                for cause, n in (("queue-full", self._queue_full), ("closing", self._after_close))
                if n
            ),
            probes=self._probes,
        )

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, finalize the segment and the index; blocks (run in a thread).
        Frames offered after this are dropped (counted)."""
        self._closing = True
        # Frames the loop scheduled may still wait for its hand-over callback, which a
        # loop blocked in this call (or stopped) would never run: hand them over now.
        self._pool._hand_over()
        self._enqueue(_Marker.CLOSE)
        if not self._closed.wait(timeout) and self._error is None:
            self._error = f"camera {self.camera!r}: files not finalized within {timeout:g} s"
        self._pool._unregister(self)
        if self._own_pool:
            self._pool.shutdown(timeout)

    # -- from the pool's sync timer --------------------------------------------------------

    def _sync_due(self, now: int, interval: int) -> None:
        """Ask for a sync if what was written waited long enough, or the files have not
        been checked for a second (a folder removed is noticed even with syncing off)."""
        if self._sync_asked or self._closing:
            return
        dirty = self.files.dirty_since
        if (interval and dirty is not None and now - dirty >= interval // 2) or (
            dirty is not None and now - self._checked_ns >= CHECK_NS
        ):
            self._sync_asked = True
            self._enqueue(_Marker.SYNC)

    _checked_ns = 0

    def _run_due(self, now: int) -> None:
        """Hand over frames that waited ``run_wait_ns`` for their run (from the timer)."""
        pool = self._pool
        with self._lock:
            if self._scheduled or not self._pending or now - self._held_ns < pool.run_wait_ns:
                return
            self._scheduled = True
        pool._schedule(self)

    # -- in the pool's thread ------------------------------------------------------------

    def _drain(self) -> None:
        """Write up to ``BATCH`` (or a run's worth of) waiting frames, consecutive frames
        in one call, then give the thread to the next camera."""
        budget = max(BATCH, self._pool.run)
        while budget > 0:
            with self._lock:
                pending = self._pending
                if not pending:
                    self._scheduled = False
                    return
                item = pending.popleft()
                run: list[Frame] = []
                probes: list[Probe] = []
                sync = False
                # Frames and probes up to the close: the frames in one run, the probes'
                # rows after it (another file: their order with frames is moot), and a
                # sync asked meanwhile after both (it then covers more, never less).
                while item is not _Marker.CLOSE:
                    if item is _Marker.SYNC:
                        sync = True
                    else:
                        (run if type(item) is Frame else probes).append(item)  # type: ignore[arg-type]
                    if len(run) >= budget or not pending or pending[0] is _Marker.CLOSE:
                        break
                    item = pending.popleft()
            if run or probes or sync:
                if run:
                    try:
                        self._write_run(run)
                    finally:
                        self._done += len(run)
                for probe in probes:
                    self._write_probe(probe)
                if sync:
                    self._handle(_Marker.SYNC)
                budget -= max(len(run), 1)  # probes ride along (a few a second)
            else:
                assert type(item) is _Marker
                self._handle(item)
                budget -= 1
        with self._lock:
            if not self._pending:
                self._scheduled = False
                return
        self._pool._schedule(self)  # more to write: back of the line, still scheduled

    def _handle(self, marker: _Marker) -> None:
        """A sync or the close (frames and probes are written by :meth:`_drain`)."""
        if marker is _Marker.SYNC:
            self._sync_asked = False
            self._checked_ns = self._pool._clock()
            self.files.sync()
            return
        self.files.close()
        if self._probes_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._probes_fd)
            self._probes_fd = -1
        self._closed.set()

    def _write_run(self, run: list[Frame]) -> None:
        self.files.write_frames(run)

    def _write_probe(self, probe: Probe) -> None:
        """One row of ``probes.csv`` (one ``write``)."""
        if self._probes_failed:
            return
        try:
            if self._probes_fd < 0:
                self._probes_fd = os.open(
                    self._probes_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
                )
                write_all(self._probes_fd, (",".join(PROBE_COLUMNS) + "\n").encode())
            write_all(self._probes_fd, b"%d,%d,%d\n" % (probe.t0_ns, probe.device_ns, probe.t1_ns))
            self._probes += 1
        except OSError:
            self._probes_failed = True


class _Marker(Enum):
    """What a camera's queue holds besides frames."""

    SYNC = "sync"  # make what was written durable (and check the files are still there)
    CLOSE = "close"  # finalize the files
