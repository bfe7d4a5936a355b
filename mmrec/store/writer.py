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

One module (~560 lines) because the pool's scheduling and the camera writers' queues
are one hand-over protocol (who holds a camera, when it goes back in line).

Invariants:
- JPEG bytes go to the file unchanged. The default muxer (:mod:`mmrec.store.mkv`) writes each
  frame with one system call: with ``direct_io`` (the default) one block-aligned
  ``O_DIRECT`` write from the memory the parser copied the frame into, past the page
  cache; else one ``writev`` of the block header and the frame's bytes. ``muxer="pyav"``
  uses libavformat instead (``av.Packet(data)`` wraps the bytes without a copy).
- pts are the frames' take times rounded to the take's tick (10 µs), strictly increasing
  per camera across segments (bumped by one tick when two frames would share one,
  counted in ``pts_bumps``).
- Each segment carries the timecode of its own first frame (``timecode``, given by the
  take: the time of day at the camera's rate), so a segment converted on its own lands at
  its place.
- Crash safety: with the default muxer every frame is on the device (direct I/O) or in the
  OS (buffered) when its write returns,
  so a SIGKILL loses only frames still queued; PyAV runs with ``flush_packets=1`` and
  loses at most about one more (the cluster it keeps open).
- A new segment starts when the JPEG size changes and when ``segment_ns`` has passed.
- A camera whose file fails (disk full, permissions) stops writing, says why in
  ``error``, and counts later frames as dropped; other cameras go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, Protocol

import av

from mmrec import __version__
from mmrec.errors import ExceptionMap, RecordingError, map_exceptions, translate
from mmrec.store.mkv import SegmentFile, TrackInfo
from mmrec.store.payload import Bytes
from mmrec.store.take import INDEX, INDEX_COLUMNS, TICK_NS, TIME_BASE, segment_name
from mmrec.wire import jpeg

HALF_TICK: Final = TICK_NS // 2
PYAV_TIME_BASE: Final = Fraction(1, 1000)  # libavformat's Matroska muxer counts ms
PYAV_TICKS: Final = int(TIME_BASE.denominator * PYAV_TIME_BASE)  # take ticks per ms
_CSV_SPECIAL: Final = re.compile(rb'[,"\r\n]')
DEFAULT_QUEUE_FRAMES: Final = 120  # per camera, ~4 s of 30 fps: rides out a disk hiccup


GROW_AFTER_NS: Final = 100_000_000  # a camera waiting this long for a thread: add one
BATCH: Final = 4  # frames a thread writes for one camera before serving the next

# What the file side can raise, and what it becomes (mmrec.errors.map_exceptions).
_WRITE_FAILURES: Final = (av.FFmpegError, OSError, ValueError)
_WRITE_ERRORS: Final[ExceptionMap] = {_WRITE_FAILURES: RecordingError}


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
    other cameras. Cameras scheduled from the event loop are handed over once per batch
    of ready sockets (:meth:`_schedule_soon`): at 32 streams that halved the futex calls
    (7.6-9.7k to 3.8k in 10 s) and cut context switches by a fifth.

    ``clock`` (monotonic ns) times the waits that make the pool grow; a test gives its own
    to stage a stalled write without waiting for one.
    """

    def __init__(
        self,
        threads: int = 1,
        name: str = "writer",
        *,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if threads < 1:
            raise ValueError("a writer pool needs at least one thread")
        self._clock = clock
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
            item = self._ready.get()
            if item is None:
                return
            writer, queued_ns = item
            now = self._started[i] = self._clock()
            if now - queued_ns > GROW_AFTER_NS:
                self._add_thread()  # cameras wait for threads: the disk can take more
            try:
                writer._drain()
            except Exception as exc:  # never let one camera's bug stop the shared thread
                writer._error = f"camera {writer.camera!r}: writer error: {exc!r}"
                writer._closed.set()


@dataclass(frozen=True, slots=True)
class Frame:
    """One JPEG as it arrived from a camera, with its times on the take timeline."""

    data: Bytes
    time_ns: int  # the frame's time on the take timeline (aligned capture, else arrival)
    arrival_ns: int  # arrival on the take timeline
    device_ts: str | None  # X-Timestamp as received


@dataclass(frozen=True, slots=True)
class WriterStats:
    frames: int
    bytes: int
    dropped: int
    queued: int
    segments: tuple[str, ...]  # paths relative to the take folder
    width: int | None
    height: int | None
    first_pts: int | None
    last_pts: int | None
    pts_bumps: int
    not_jpeg: int
    error: str | None
    direct_io: bool | None = None  # how the last segment was written (None: no frame yet)


class _Segment(Protocol):
    direct: bool

    def write(self, pts: int, data: Bytes) -> None: ...
    def close(self) -> None: ...


class _MkvSegment:
    def __init__(
        self,
        path: str,
        size: tuple[int, int],
        camera: str,
        meta: dict[str, str],
        direct: bool,
        frame_ns: int | None,
    ) -> None:
        self._w = SegmentFile(
            path,
            TrackInfo(
                size[0],
                size[1],
                name=camera,
                title=meta.get("title", camera),
                timecode=meta.get("timecode"),
                app=f"mmrec {__version__}",
                tick_ns=TICK_NS,
                frame_ns=frame_ns,
            ),
            direct=direct,
        )
        self.direct = self._w.direct

    def write(self, pts: int, data: Bytes) -> None:
        self._w.write_frame(pts, data)
        self.direct = self._w.direct

    def close(self) -> None:
        self._w.close()


class _PyAVSegment:
    """libavformat's Matroska muxer: it counts whole milliseconds (TimestampScale 1 ms),
    so pts are rounded to the nearest one (and kept strictly increasing)."""

    direct = False  # libavformat writes through the page cache

    def __init__(
        self,
        path: str,
        size: tuple[int, int],
        camera: str,
        meta: dict[str, str],
        direct: bool,
        frame_ns: int | None,
    ) -> None:
        self._c: Any = av.open(path, "w", format="matroska", options={"flush_packets": "1"})
        for key, value in meta.items():
            self._c.metadata[key] = value
        self._s: Any = self._c.add_mux_stream("mjpeg", width=size[0], height=size[1])
        self._s.time_base = PYAV_TIME_BASE
        self._s.metadata["title"] = camera
        self._last = -1

    def write(self, pts: int, data: Bytes) -> None:
        ms = max((pts + PYAV_TICKS // 2) // PYAV_TICKS, self._last + 1)
        self._last = ms
        packet = av.Packet(data if isinstance(data, bytes) else bytes(data))
        packet.stream = self._s
        packet.time_base = PYAV_TIME_BASE
        packet.pts = ms
        packet.dts = ms
        packet.is_keyframe = True
        self._c.mux(packet)

    def close(self) -> None:
        self._c.close()


MUXERS: Final[dict[str, type[_MkvSegment] | type[_PyAVSegment]]] = {
    "mkv": _MkvSegment,
    "pyav": _PyAVSegment,
}


class CameraWriter:
    """Write one camera's frames into ``take_dir/cam_dir`` from a worker thread.

    ``timecode`` gives the ``TIMECODE`` of a segment whose first frame is at take time t
    (ns); without it every segment carries ``metadata["timecode"]``, if any.
    ``frame_ns`` is the camera's nominal frame period (the files' DefaultDuration).
    """

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
        timecode: Callable[[int], str] | None = None,
        frame_ns: int | None = None,
    ) -> None:
        if muxer not in MUXERS:
            raise ValueError(f"unknown muxer {muxer!r} (known: {', '.join(MUXERS)})")
        self._muxer = MUXERS[muxer]
        self._direct_io = direct_io
        self._io_direct: bool | None = None  # how the last segment was written
        self.camera = camera
        self._take_dir = take_dir
        self._cam_dir = cam_dir
        self._dir = take_dir / cam_dir
        self._segment_ns = segment_ns
        self._metadata = dict(metadata or {})
        self._timecode = timecode
        self._frame_ns = frame_ns
        self._queue_frames = queue_frames
        # Written by one thread each (no lock needed): offered/dropped on the event loop,
        # done/frames/... in the pool thread. Waiting = offered - done.
        self._offered = 0
        self._done = 0
        self._closed = threading.Event()
        self._own_pool = pool is None
        self._pool = pool or WriterPool(1, name=f"writer:{camera}")
        # Frames waiting for a writer thread; ``_scheduled``: this camera is in the pool's
        # queue or being written (both under ``_lock``).
        self._pending: deque[Frame | None] = deque()
        self._scheduled = False
        self._lock = threading.Lock()
        self._closing = False
        self._segment: _Segment | None = None
        self._segments: list[str] = []
        self._seg_start_ns = 0
        self._size: tuple[int, int] | None = None
        self._frames = 0
        self._bytes = 0
        self._dropped = 0  # on the loop: refused by offer()
        self._dropped_late = 0  # in the pool: queued, then the file had failed
        self._pts_bumps = 0
        self._not_jpeg = 0
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._error: str | None = None
        # index.csv: one row per frame, written with one system call as soon as the
        # frame is (no Python file object and csv module in the hot path).
        self._index_fd = -1
        try:
            with map_exceptions(_WRITE_ERRORS, f"camera {camera!r}: cannot create {self._dir}"):
                self._dir.mkdir(parents=True, exist_ok=True)
                self._index_fd = os.open(
                    self._dir / INDEX, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
                )
                _write_line(self._index_fd, (",".join(INDEX_COLUMNS) + "\n").encode())
        except RecordingError:
            if self._index_fd >= 0:
                os.close(self._index_fd)
            raise

    # -- called from the event loop ------------------------------------------------------

    def offer(self, frame: Frame) -> bool:
        """Queue a frame for writing; False (and counted) if this camera's queue is full."""
        waiting = self._offered - self._done
        if self._error is not None or self._closing or waiting >= self._queue_frames:
            self._dropped += 1
            return False
        self._offered += 1
        self._enqueue(frame)
        return True

    def _enqueue(self, item: Frame | None) -> None:
        with self._lock:
            self._pending.append(item)
            if self._scheduled:
                pool = self._pool
                pool._check(pool._clock())
                return
            self._scheduled = True
        if item is None:
            self._pool._schedule(self)  # close(): from any thread, at once
        else:
            self._pool._schedule_soon(self)

    def stats(self) -> WriterStats:
        return WriterStats(
            frames=self._frames,
            bytes=self._bytes,
            dropped=self._dropped + self._dropped_late,
            queued=self._offered - self._done,
            segments=tuple(self._segments),
            width=self._size[0] if self._size else None,
            height=self._size[1] if self._size else None,
            first_pts=self._first_pts,
            last_pts=self._last_pts,
            pts_bumps=self._pts_bumps,
            not_jpeg=self._not_jpeg,
            error=self._error,
            direct_io=self._io_direct,
        )

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, finalize the segment and the index; blocks (run in a thread).
        Frames offered after this are dropped (counted)."""
        self._closing = True
        # Frames the loop scheduled may still wait for its hand-over callback, which a
        # loop blocked in this call (or stopped) would never run: hand them over now.
        self._pool._hand_over()
        self._enqueue(None)
        if not self._closed.wait(timeout) and self._error is None:
            self._error = f"camera {self.camera!r}: files not finalized within {timeout:g} s"
        if self._own_pool:
            self._pool.shutdown(timeout)

    # -- in the pool's thread ------------------------------------------------------------

    def _drain(self) -> None:
        """Write up to ``BATCH`` waiting frames, then give the thread to the next camera."""
        for _ in range(BATCH):
            with self._lock:
                if not self._pending:
                    self._scheduled = False
                    return
                item = self._pending.popleft()
            self._handle(item)
        with self._lock:
            if not self._pending:
                self._scheduled = False
                return
        self._pool._schedule(self)  # more to write: back of the line, still scheduled

    def _handle(self, frame: Frame | None) -> None:
        if frame is None:
            self._close_segment()
            if self._index_fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._index_fd)
                self._index_fd = -1
            self._closed.set()
            return
        try:
            if self._error is None:
                self._write(frame)
            else:
                self._dropped_late += 1
        except (RecordingError, *_WRITE_FAILURES) as exc:
            # the writer thread keeps the cause; the loop reads it from stats()
            err = translate(exc, _WRITE_ERRORS, f"camera {self.camera!r}: cannot write")
            self._error = str(err)
            self._close_segment()
        finally:
            self._done += 1

    def _write(self, frame: Frame) -> None:
        size = jpeg.dimensions(frame.data)
        if size is None:
            self._not_jpeg += 1
            return
        if (
            self._segment is None
            or size != self._size
            or (self._segment_ns and frame.time_ns - self._seg_start_ns >= self._segment_ns)
        ):
            self._close_segment()
            self._open_segment(size, frame.time_ns)

        pts = (frame.time_ns + HALF_TICK) // TICK_NS  # rounded: never early on average
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
            self._pts_bumps += 1
        assert self._segment is not None
        self._segment.write(pts, frame.data)
        self._io_direct = self._segment.direct
        ts = frame.device_ts
        _write_line(
            self._index_fd,
            b"%d,%d,%d,%d,%d,%s,%d\n"
            % (
                self._frames,
                len(self._segments) - 1,
                pts,
                frame.time_ns,
                frame.arrival_ns,
                csv_field(ts) if ts else b"",
                len(frame.data),
            ),
        )
        if self._first_pts is None:
            self._first_pts = pts
        self._last_pts = pts
        self._frames += 1
        self._bytes += len(frame.data)

    def _open_segment(self, size: tuple[int, int], time_ns: int) -> None:
        rel = f"{self._cam_dir}/{segment_name(len(self._segments))}"
        meta = self._metadata
        if self._timecode is not None:
            meta = {**meta, "timecode": self._timecode(time_ns)}
        with map_exceptions(_WRITE_ERRORS, f"camera {self.camera!r}: cannot open {rel}"):
            self._segment = self._muxer(
                str(self._take_dir / rel),
                size,
                self.camera,
                meta,
                self._direct_io,
                self._frame_ns,
            )
        self._size = size
        self._seg_start_ns = time_ns
        self._segments.append(rel)

    def _close_segment(self) -> None:
        if self._segment is not None:
            segment, self._segment = self._segment, None
            with contextlib.suppress(av.FFmpegError, OSError):
                segment.close()


def csv_field(text: str) -> bytes:
    """``text`` as one CSV field in UTF-8, quoted only when it must be (as ``csv`` does):
    a header value from the network may hold commas, quotes or stray line ends."""
    raw = text.encode("utf-8", "replace")
    if _CSV_SPECIAL.search(raw):
        return b'"' + raw.replace(b'"', b'""') + b'"'
    return raw


def _write_line(fd: int, line: bytes) -> None:
    done = os.write(fd, line)
    while done < len(line):  # a short write (a signal, a full disk): finish it or raise
        n = os.write(fd, line[done:])
        if n <= 0:
            raise OSError("short write to index.csv")
        done += n
