"""One camera's files in a take: its segments and index, in one or more output folders,
made durable on a schedule, and kept going through what a disk does to them.

:class:`CameraFiles` runs in a writer thread (:mod:`mmrec.store.writer` hands it frames in
order, in runs: a run that goes into the open segment is one system call). It owns the
camera's ``index.csv`` (one ``write`` per run's rows) and the open segment
(``seg-NNNN.mkv``, numbered per camera across every folder).

When the disk says no, a camera never stops for good (it did, before: one error and it
wrote nothing more for the rest of the take):

- The failure becomes the camera's :class:`~mmrec.store.health.WriteState` (the
  bookkeeping is :mod:`mmrec.store.health`; ``disk-full`` for ENOSPC/EDQUOT,
  ``folder-gone`` when its files were deleted or the folder is gone or read-only,
  ``io-error`` for the rest), with the cause in words, reported at once through
  ``on_change``. Frames that arrive meanwhile are lost, counted per cause, and the span
  without frames on disk is a write gap (take timeline, with its cause).
- Every ``RETRY_NS`` a frame is tried again, after a ``statvfs`` says it fits (a full disk
  costs one system call per retry, and no empty files). Writing resumes in the same
  segment where it is intact, else in a new one: within ~``RETRY_NS`` of space coming back.
- Output folders after the first (relay folders) continue the take when one is full or
  gone: a new segment there, and the index, copied whole, goes on there (nothing is ever
  deleted). Where the files are, and moving them, is :mod:`mmrec.store.relay`; the
  index file itself is :class:`mmrec.store.index.IndexFile`.
- A file deleted under the writer is noticed at the next :meth:`check` (``nlink == 0``),
  which the pool schedules at least every second. Segments that are gone leave the
  camera's list, their frames leave its counts and are counted lost (cause ``deleted``,
  their span a write gap), and their rows leave a surviving index: what the manifest
  says stays what is on disk. Segment numbers are never reused.

Durability: :meth:`sync` (``fdatasync`` of the segment, then of the index, so an index row
is never durable before the frame it describes) runs from the writer thread, scheduled by
the pool every ``sync_interval``; never on the event loop.

Paths that leave this module (``segments``, ``index``) are relative to the first folder's
take directory for files in it, and absolute for files in a relay folder, so a reader joins
them to the take folder either way (:func:`mmrec.store.take.resolve`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import av

from mmrec.errors import describe
from mmrec.store.health import WriteChange, WriteHealth, WriteState, failure_state
from mmrec.store.index import INDEX, csv_field
from mmrec.store.muxers import MUXERS, Segment, SegmentSpec
from mmrec.store.payload import Bytes
from mmrec.store.relay import CameraFolder
from mmrec.store.take import TICK_NS, segment_name
from mmrec.wire import jpeg

HALF_TICK: Final = TICK_NS // 2
# What the file side can raise: the OS, libavformat (the pyav muxer), and ValueError from
# a muxer handed something it cannot take.
WRITE_FAILURES: Final = (av.FFmpegError, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class WriterStats:
    """What a camera's files hold, and how writing goes (plain values, any thread). The
    files count their own losses; :class:`~mmrec.store.writer.CameraWriter` adds its
    queue's (``dropped``, ``queued``, ``lost_causes``) and its probes."""

    frames: int
    bytes: int
    dropped: int  # received and not written, for any reason (lost_causes says which)
    queued: int
    segments: tuple[str, ...]  # relative to the take folder; absolute in a relay folder
    width: int | None
    height: int | None
    first_pts: int | None
    last_pts: int | None
    pts_bumps: int
    not_jpeg: int
    error: str | None  # the current failure in words (None while writing)
    direct_io: bool | None = None  # how the last segment was written (None: no frame yet)
    state: WriteState = WriteState.IDLE
    lost: int = 0  # of those, lost to the disk: disk full, I/O error, folder gone
    # (cause, frames): a failing WriteState's value, "queue-full" (the disk fell behind),
    # "closing" (offered after the writer closed)
    lost_causes: tuple[tuple[str, int], ...] = ()
    write_gaps: tuple[tuple[int, int, str], ...] = ()  # (from_ns, to_ns, cause), take timeline
    index: str = ""  # like segments
    folder: int = 0  # which output folder it writes to (0: the first, then relay folders)
    last_failure: str | None = None  # the latest write failure, kept once writing is back
    probes: int = 0  # rows written to probes.csv
    bad_size: int = 0  # written as received, though their header claims an absurd size


@dataclass(frozen=True, slots=True)
class Frame:
    """One JPEG as it arrived from a camera, with its times on the take timeline."""

    data: Bytes
    time_ns: int  # the frame's time on the take timeline (aligned capture, else arrival)
    arrival_ns: int  # arrival on the take timeline
    device_ts: str | None  # X-Timestamp as received
    conn: int = 0  # the connection that brought it


@dataclass(slots=True, eq=False)
class _Tally:
    """What one segment holds (mutable: the writer thread adds each frame; compared by
    identity)."""

    number: int  # its NNNN in seg-NNNN.mkv, the index's ``segment`` column
    rel: str  # as the manifest names it (relative, or absolute in a relay folder)
    frames: int = 0
    bytes: int = 0
    span: list[int] = field(default_factory=list)  # take time of its first and last frame
    pts: list[int] = field(default_factory=list)  # pts of its first and last frame


class CameraFiles:
    """A camera's segments and index across the take's output folders (one writer thread
    at a time; see the module docstring). ``folders`` are the take's directories, the
    first one's paths relative, relay folders' absolute."""

    def __init__(
        self,
        camera: str,
        folders: Sequence[Path],
        cam_dir: str,
        *,
        segment_ns: int = 0,
        metadata: dict[str, str] | None = None,
        muxer: str = "mkv",
        direct_io: bool = True,
        sync: bool = True,
        on_change: Callable[[WriteChange], None] | None = None,
        timecode: Callable[[int], str] | None = None,
        frame_ns: int | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if muxer not in MUXERS:
            raise ValueError(f"unknown muxer {muxer!r} (known: {', '.join(MUXERS)})")
        self.camera = camera
        self._muxer = MUXERS[muxer]
        self._direct_io = direct_io
        self._sync = sync
        self._clock = clock
        self._place = CameraFolder(folders, cam_dir)
        self._index = self._place.index
        self._segment_ns = segment_ns
        self._metadata = dict(metadata or {})
        # a segment's TIMECODE: that of its own first frame (take time ns -> timecode)
        self._timecode = timecode
        self._frame_ns = frame_ns  # the camera's nominal frame period (DefaultDuration)
        self._segment: Segment | None = None
        self._tallies: list[_Tally] = []  # one per segment, in order
        self._next_segment = 0  # numbers are never reused, even after a deletion
        self._seq = 0  # the index's ``seq``: every frame written, in order
        self._seg_start_ns = 0
        self._size: tuple[int, int] | None = None
        self._io_direct: bool | None = None
        self.frames = 0
        self.bytes = 0
        self._pts_bumps = 0
        self._not_jpeg = 0
        self._bad_size = 0
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._last_pts_held: int | None = None  # the last pts still on disk, after deletions
        self.health = WriteHealth(camera, clock, on_change)
        self.dirty_since: int | None = None  # first write not yet made durable (monotonic)
        try:
            self._place.open(0)
        except WRITE_FAILURES as exc:
            self._failed(exc, "cannot create its folder and index")

    # -- what the writer calls ------------------------------------------------------------

    def write(
        self, time_ns: int, arrival_ns: int, device_ts: str | None, data: Bytes, conn: int = 0
    ) -> None:
        """Write one frame (or count it lost: see the module docstring)."""
        self.write_frames((Frame(data, time_ns, arrival_ns, device_ts, conn),))

    def write_frames(self, frames: Sequence[Frame]) -> None:
        """Write frames, in order (each one written or counted lost: see the module
        docstring). A run of them that goes into the open segment, while writing goes
        well, is written with one system call (:meth:`_write_run`)."""
        sizes = [jpeg.dimensions(f.data) for f in frames]
        i, n = 0, len(frames)
        while i < n:
            run = self._run_length(frames, sizes, i)
            if run > 1:
                try:
                    self._write_run(frames[i : i + run])
                    i += run
                    continue
                except WRITE_FAILURES:
                    pass  # none of the run is in the file: one at a time, as below
            for j in range(i, i + run):
                self._write_one(sizes[j], frames[j])
            i += run

    def _run_length(
        self, frames: Sequence[Frame], sizes: list[tuple[int, int] | None], i: int
    ) -> int:
        """How many frames from ``frames[i]`` on can go into the open segment in one call:
        the segment takes runs, writing goes well, and each is a JPEG of the segment's
        size within its time span."""
        segment = self._segment
        if segment is None or not segment.runs or self.health.state.failing:
            return 1
        size, limit = self._size, self._segment_ns
        end = i
        while end < len(frames) and sizes[end] == size:
            if limit and frames[end].time_ns - self._seg_start_ns >= limit:
                break
            end += 1
        return max(end - i, 1)

    def _write_one(self, size: tuple[int, int] | None, f: Frame) -> None:
        """Write one frame, or count it lost (see the module docstring)."""
        if size is None:
            self._not_jpeg += 1
            return
        health = self.health
        data = f.data
        if health.state.failing and (not health.retry_due() or not self._recover(len(data))):
            health.lose(f.time_ns)
            return
        try:
            self._write(size, f)
        except WRITE_FAILURES as exc:  # the frame is not in the file
            # A relay folder may take it at once (the first one just filled up): then the
            # move is the news, not the failure.
            self._failed(exc, "cannot write", announce=False)
            if self._recover(len(data), relay_only=True):
                try:
                    self._write(size, f)
                    return
                except WRITE_FAILURES as again:
                    self._failed(again, "cannot write")
            health.announce()
            health.lose(f.time_ns)

    def sync(self) -> None:
        """Make everything written so far durable: segment data first, then the index rows
        that describe them. Also notices files deleted under the writer."""
        self.check()
        if not self._sync or self.health.state.failing:
            self.dirty_since = None
            return
        try:
            if self._segment is not None:
                self._segment.sync()
            self._index.sync()
        except WRITE_FAILURES as exc:
            # With buffered writes a full disk may only show here (delayed allocation).
            self._failed(exc, "cannot make its files durable (fdatasync)")
        self.dirty_since = None

    def check(self) -> None:
        """Notice that the camera's files were deleted (their folder removed mid-take)."""
        if self.health.state.failing or self.health.state == WriteState.CLOSED:
            return
        try:
            gone = (
                self._segment is not None and self._segment.unlinked()
            ) or self._index.unlinked()
        except OSError as exc:
            self._failed(exc, "cannot check its files")
            return
        if gone:
            where = self._place.dir
            self._close_segment()
            frames, names = self._forget_deleted()
            what = (
                f"{frames} frame(s) written to {', '.join(names)} are gone"
                if names
                else "frames written to them are gone"
            )
            self.health.fail(
                WriteState.GONE,
                f"camera {self.camera!r}: its files in {where} were deleted while being "
                f"written ({what})",
            )

    def _forget_deleted(self) -> tuple[int, list[str]]:
        """Take segments deleted under the writer out of the counts (see the module
        docstring); returns the frames they held and their names."""
        gone = [t for t in self._tallies if not self._place.exists(t.rel)]
        if not gone:
            return 0, []
        self._tallies = [t for t in self._tallies if t not in gone]
        for t in gone:
            self.frames -= t.frames
            self.bytes -= t.bytes
            if t.frames:
                self.health.deleted(t.frames, (t.span[0], t.span[1]))
        held = [t for t in self._tallies if t.frames]
        self._first_pts = held[0].pts[0] if held else None
        # what the files hold ends here now; pts go on after the last one written (bumps)
        self._last_pts_held = held[-1].pts[1] if held else None
        if not self._index.gone():  # it survived: the rows of what is gone leave it
            self._index.drop_segments({t.number for t in gone})
        return sum(t.frames for t in gone), [Path(t.rel).name for t in gone]

    def close(self) -> None:
        """Finalize the open segment and the index (durable if syncing); idempotent."""
        self.check()  # files deleted since the last check leave the counts now
        self._close_segment()
        if self._tallies:
            self._forget_deleted()
        self._index.close(sync=self._sync)
        self.health.close()

    def stats(self) -> WriterStats:
        h = self.health.snapshot()
        return WriterStats(
            frames=self.frames,
            bytes=self.bytes,
            dropped=h.lost,  # the writer adds its queue's
            queued=0,
            segments=tuple(t.rel for t in self._tallies),
            index=self._place.path(INDEX),
            width=self._size[0] if self._size else None,
            height=self._size[1] if self._size else None,
            first_pts=self._first_pts,
            last_pts=self._last_pts_held,
            pts_bumps=self._pts_bumps,
            not_jpeg=self._not_jpeg,
            state=h.state,
            error=h.error,
            lost=h.lost,
            lost_causes=h.lost_causes,
            write_gaps=h.write_gaps,
            folder=self._place.current,
            direct_io=self._io_direct,
            last_failure=h.last_failure,
            bad_size=self._bad_size,
        )

    # -- writing ----------------------------------------------------------------------------

    def _write(self, size: tuple[int, int], f: Frame) -> None:
        time_ns = f.time_ns
        if (
            self._segment is None
            or size != self._size
            or (self._segment_ns and time_ns - self._seg_start_ns >= self._segment_ns)
        ):
            self._close_segment()
            self._open_segment(size, time_ns)
        pts, bumped = _next_pts(time_ns, self._last_pts)
        assert self._segment is not None
        self._segment.write(pts, f.data)
        self._io_direct = self._segment.direct
        self._pts_bumps += bumped
        # The frame is in the segment: it counts as written whatever the index says next.
        # Its index row goes in one ``write`` (after any rows the index refused before).
        self._index_rows(self._written(size, f, pts))

    def _write_run(self, frames: Sequence[Frame]) -> None:
        """Frames that all go into the open segment (:meth:`_run_length`), in one call;
        if it raises, none of them is in the file and nothing was counted."""
        segment = self._segment
        assert segment is not None and self._size is not None
        last, bumps = self._last_pts, 0
        items: list[tuple[int, Bytes]] = []
        for f in frames:
            last, bumped = _next_pts(f.time_ns, last)
            bumps += bumped
            items.append((last, f.data))
        segment.write_frames(items)
        self._io_direct = segment.direct
        self._pts_bumps += bumps
        size = self._size
        self._index_rows(
            b"".join(
                [self._written(size, f, pts) for f, (pts, _) in zip(frames, items, strict=True)]
            )
        )

    def _written(self, size: tuple[int, int], f: Frame, pts: int) -> bytes:
        """Count a frame that is in the segment at ``pts``; returns its index row."""
        if self._first_pts is None:
            self._first_pts = pts
        self._last_pts = self._last_pts_held = pts
        time_ns, n = f.time_ns, len(f.data)
        tally = self._tallies[-1]
        if not tally.frames:
            tally.span, tally.pts = [time_ns, time_ns], [pts, pts]
        tally.span[1], tally.pts[1] = time_ns, pts
        tally.frames += 1
        tally.bytes += n
        seq, self._seq = self._seq, self._seq + 1
        self.frames += 1
        self.bytes += n
        if jpeg.implausible(*size, n) is not None:
            self._bad_size += 1  # passthrough all the same: the bytes are the camera's
        if self.dirty_since is None:
            self.dirty_since = self._clock()
        self.health.written(time_ns, str(self._place.dir))
        return b"%d,%d,%d,%d,%d,%s,%d,%d\n" % (
            seq,
            tally.number,
            pts,
            time_ns,
            f.arrival_ns,
            csv_field(f.device_ts) if f.device_ts else b"",
            n,
            f.conn,
        )  # fmt: skip

    def _index_rows(self, rows: bytes) -> None:
        """Append index rows of frames in the segment. If the index refuses them (a full
        disk), the frames are still in their segment: the rows wait in memory, written
        before the next ones, and the camera is failing until then."""
        try:
            self._index.append(rows)
        except OSError as exc:
            self._failed(exc, "cannot write its index")

    def _open_segment(self, size: tuple[int, int], time_ns: int) -> None:
        number = self._next_segment
        path = self._place.dir / segment_name(number)
        meta = self._metadata
        if self._timecode is not None:
            meta = {**meta, "timecode": self._timecode(time_ns)}
        self._segment = self._muxer(
            SegmentSpec(str(path), size, self.camera, meta, self._direct_io, self._frame_ns)
        )
        self._size = size
        self._seg_start_ns = time_ns
        self._next_segment += 1
        self._tallies.append(_Tally(number, self._place.path(segment_name(number))))

    def _close_segment(self) -> None:
        if self._segment is not None:
            segment, self._segment = self._segment, None
            with contextlib.suppress(*WRITE_FAILURES):
                segment.close(self._sync)

    # -- failing and recovering ---------------------------------------------------------------

    def _failed(self, exc: BaseException, what: str, *, announce: bool = True) -> None:
        state = failure_state(exc)
        where = self._place.dir
        if not isinstance(exc, OSError) or state == WriteState.GONE:
            self._close_segment()  # a muxer that raised may be in any state: start afresh
        if state == WriteState.GONE:
            self._forget_deleted()
        text = f"camera {self.camera!r}: {what} in {where}: {describe(exc)}"
        self.health.fail(state, text, announce=announce)

    def _recover(self, need: int, *, relay_only: bool = False) -> bool:
        """Get ready to write again: a folder with room (this one, or the next relay
        folder), its camera folder and index in place, rows the index refused written."""
        place = self._place
        for folder in place.order(relay_only=relay_only):  # relay_only: this one just failed
            if not place.has_room(folder, need):
                continue
            try:
                if folder != place.current or self.health.state == WriteState.GONE:
                    self._move_to(folder)
                self._index.flush()
                return True
            except WRITE_FAILURES as exc:
                self._failed(exc, "cannot resume writing")
        return False

    def _move_to(self, folder: int) -> None:
        """Continue in ``folder``: a new segment there, the index carried over."""
        self._close_segment()
        left = self._place.move_to(folder)
        if left is not None:  # another folder: that is the news
            text = f"continuing in {self._place.dir} ({left}: {self.health.state})"
            self.health.emit(WriteChange(self.camera, self._clock(), WriteState.WRITING, text))


def _next_pts(time_ns: int, last: int | None) -> tuple[int, bool]:
    """A frame's pts: its take time rounded to the tick (never early on average), and one
    tick after ``last`` (the camera's previous pts) where that would not be later; with
    whether it was bumped so."""
    pts = (time_ns + HALF_TICK) // TICK_NS
    if last is not None and pts <= last:
        return last + 1, True
    return pts, False
