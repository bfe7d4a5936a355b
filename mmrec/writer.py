"""Per-camera Matroska writer: JPEG passthrough, crash-safe, off the event loop.

Each camera has one :class:`CameraWriter` with its own thread fed by a bounded queue.
The event loop only calls :meth:`CameraWriter.offer`, which never blocks: when the queue
is full (the disk cannot keep up with this camera), the *incoming* frame is dropped and
counted (``dropped``); frames already queued keep their order. One camera's slow or
failed file never blocks another camera or the loop.

Invariants:
- JPEG bytes go to the file unchanged (``av.Packet(data)`` wraps the bytes without a
  copy; PyAV's muxer writes them as one Matroska block).
- pts are strictly increasing per camera across segments (bumped by one tick when two
  frames would share a millisecond, counted in ``pts_bumps``).
- The muxer runs with ``flush_packets=1``: every frame reaches the OS as soon as the
  next one closes its cluster, so a SIGKILL loses at most about one frame.
- A new segment starts when the JPEG size changes and when ``segment_ns`` has passed.
"""

from __future__ import annotations

import contextlib
import csv
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import av

from mmrec import jpeg
from mmrec.errors import RecordingError
from mmrec.take import INDEX, INDEX_COLUMNS, TIME_BASE, segment_name

NS_PER_TICK: Final = 1_000_000  # TIME_BASE is 1/1000 s
DEFAULT_QUEUE_FRAMES: Final = 120  # ~4 s of 30 fps: rides out a disk hiccup


@dataclass(frozen=True, slots=True)
class Frame:
    """One JPEG as it arrived from a camera, with its times on the take timeline."""

    data: bytes
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


class CameraWriter:
    """Write one camera's frames into ``take_dir/cam_dir`` from a worker thread."""

    def __init__(
        self,
        camera: str,
        take_dir: Path,
        cam_dir: str,
        *,
        segment_ns: int = 0,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.camera = camera
        self._take_dir = take_dir
        self._cam_dir = cam_dir
        self._dir = take_dir / cam_dir
        self._segment_ns = segment_ns
        self._metadata = dict(metadata or {})
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=queue_frames)
        self._container: Any = None
        self._stream: Any = None
        self._segments: list[str] = []
        self._seg_start_ns = 0
        self._size: tuple[int, int] | None = None
        self._frames = 0
        self._bytes = 0
        self._dropped = 0
        self._pts_bumps = 0
        self._not_jpeg = 0
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._error: str | None = None
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._index_file = open(self._dir / INDEX, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise RecordingError(f"camera {camera!r}: cannot create {self._dir}: {exc}") from exc
        self._index = csv.writer(self._index_file, lineterminator="\n")
        self._index.writerow(INDEX_COLUMNS)
        self._index_file.flush()
        self._thread = threading.Thread(target=self._run, name=f"writer:{camera}", daemon=True)
        self._thread.start()

    # -- called from the event loop ------------------------------------------------------

    def offer(self, frame: Frame) -> bool:
        """Queue a frame for writing; False (and counted) if the queue is full or failed."""
        if self._error is not None:
            self._dropped += 1
            return False
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self._dropped += 1
            return False
        return True

    def stats(self) -> WriterStats:
        return WriterStats(
            frames=self._frames,
            bytes=self._bytes,
            dropped=self._dropped,
            queued=self._queue.qsize(),
            segments=tuple(self._segments),
            width=self._size[0] if self._size else None,
            height=self._size[1] if self._size else None,
            first_pts=self._first_pts,
            last_pts=self._last_pts,
            pts_bumps=self._pts_bumps,
            not_jpeg=self._not_jpeg,
            error=self._error,
        )

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, finalize the segment and the index; blocks (run in a thread)."""
        while True:
            try:
                self._queue.put(None, timeout=timeout)
                break
            except queue.Full:  # writer stuck: nothing more we can do
                break
        self._thread.join(timeout)

    # -- the worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                frame = self._queue.get()
                if frame is None:
                    break
                if self._error is None:
                    try:
                        self._write(frame)
                    except RecordingError as exc:
                        self._error = str(exc)
                        self._close_segment()
                    except (av.FFmpegError, OSError, ValueError) as exc:
                        self._error = f"camera {self.camera!r}: cannot write: {exc}"
                        self._close_segment()
                else:
                    self._dropped += 1
        finally:
            self._close_segment()
            with contextlib.suppress(OSError):
                self._index_file.close()

    def _write(self, frame: Frame) -> None:
        info = jpeg.parse_header(frame.data)
        if info is None:
            self._not_jpeg += 1
            return
        size = (info.width, info.height)
        if (
            self._container is None
            or size != self._size
            or (self._segment_ns and frame.time_ns - self._seg_start_ns >= self._segment_ns)
        ):
            self._close_segment()
            self._open_segment(size, frame.time_ns)

        pts = frame.time_ns // NS_PER_TICK
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
            self._pts_bumps += 1
        packet = av.Packet(frame.data)
        packet.stream = self._stream
        packet.time_base = TIME_BASE
        packet.pts = pts
        packet.dts = pts
        packet.is_keyframe = True
        self._container.mux(packet)
        self._index.writerow(
            (
                self._frames,
                len(self._segments) - 1,
                pts,
                frame.time_ns,
                frame.arrival_ns,
                frame.device_ts or "",
                len(frame.data),
            )
        )
        self._index_file.flush()
        if self._first_pts is None:
            self._first_pts = pts
        self._last_pts = pts
        self._frames += 1
        self._bytes += len(frame.data)

    def _open_segment(self, size: tuple[int, int], time_ns: int) -> None:
        rel = f"{self._cam_dir}/{segment_name(len(self._segments))}"
        try:
            container = av.open(
                str(self._take_dir / rel),
                "w",
                format="matroska",
                options={"flush_packets": "1"},
            )
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(f"camera {self.camera!r}: cannot open {rel}: {exc}") from exc
        for key, value in self._metadata.items():
            container.metadata[key] = value
        stream = container.add_mux_stream("mjpeg", width=size[0], height=size[1])
        stream.time_base = TIME_BASE
        stream.metadata["title"] = self.camera
        self._container, self._stream, self._size = container, stream, size
        self._seg_start_ns = time_ns
        self._segments.append(rel)

    def _close_segment(self) -> None:
        if self._container is not None:
            container, self._container, self._stream = self._container, None, None
            with contextlib.suppress(av.FFmpegError, OSError):
                container.close()
