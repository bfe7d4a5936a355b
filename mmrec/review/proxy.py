"""Synced review proxies of a take: one H.264 MP4 per camera, a multiview, a contact sheet.

Every output shares one constant-rate timeline: output frame k is the instant
``t0 + k / fps`` on the take timeline, where ``t0`` is the first frame of any camera and
the last instant covers the last frame of any camera (the union of all spans). So every
file starts at the same instant, has the same number of frames, and carries the same
start timecode (the take's timecode + t0), in its metadata and burned into the picture.

What a camera shows at each instant is decided by one pure function, :func:`shown_frames`:
its newest frame with ``time_ns <= t + period/2`` (the frame nearest t for cameras at the
output rate), as long as it is not older than the gap threshold; otherwise a black NO
SIGNAL frame.

Data flow (streaming, bounded memory): per camera a reader demuxes packets from its
segments in order and matches them to ``index.csv`` rows by pts (a packet with no row
falls back to its pts; a row with no packet is skipped). The main thread only reads and
selects; ``threads`` workers do the rest, at most ``window`` instants ahead (see
:class:`_Pipeline`): per camera and instant one task decodes a newly shown frame once
(libjpeg-turbo straight to YUV planes, at the scale the larger of its two uses needs),
draws the proxy frame and the camera's multiview tile from those planes while they are
in cache, and encodes the proxy frame; the multiview's task labels and encodes it. Each
picture is copied once into each output frame; no RGB anywhere but the contact sheet.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import av

from mmrec.errors import MmrecError, RecordingError, StreamFormatError, TakeError
from mmrec.live.decode import Decoder, Planes, default_decoder
from mmrec.live.mosaic import (
    BLACK,
    LIVE,
    NO_SIGNAL,
    Canvas,
    Picture,
    blit,
    blit_scaled,
    caption,
    encode_jpeg,
    label,
    new_frame,
    opaque_label,
    render_tile,
    restore,
    text_px,
    to_picture,
)
from mmrec.live.tile import Rect, choose_scale, fit, grid_layout
from mmrec.store.names import safe_name, unique_name
from mmrec.store.take import CameraEntry, IndexRow, load_manifest, read_index
from mmrec.wire import jpeg

NS: Final = 1_000_000_000
TIMECODE_RATE: Final = 30  # mmrec.session.recorder.timecode_at writes the take timecode at 30 fps


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    height: int = 540
    fps: Fraction = Fraction(30)
    gap_s: float = 0.5  # a frame older than this at an instant is a gap (NO SIGNAL)
    multiview: bool = True
    multiview_size: tuple[int, int] | None = None  # default: 16:9 at the proxy height
    contact_at: float | None = None  # seconds from the proxies' start; default: middle
    contact_sheet: bool = True
    preset: str = "ultrafast"
    qp: int = 23  # constant quantizer (see x264_options)
    crf: int | None = None  # CRF rate control instead of constant QP
    multiview_bframes: int | None = 1  # see x264_options; None: as the preset says
    threads: int = 2  # worker threads: decode, draw and encode
    # Output instants in flight: bounds the frames held and memory (a frame per instant
    # per output: ~0.8 MB each at 960x540, ~94 MB for 4 cameras and the multiview).
    window: int = 24
    out: Path | None = None  # default: TAKE_DIR/proxies


@dataclass(frozen=True, slots=True)
class CameraProxy:
    camera: str
    path: Path
    size: tuple[int, int]
    source_frames: int  # frames read from the take
    decoded: int  # frames decoded (each once)
    decode_errors: int
    gap_frames: int  # output frames showing NO SIGNAL


@dataclass(frozen=True, slots=True)
class ProxyResult:
    out_dir: Path
    cameras: tuple[CameraProxy, ...]
    multiview: Path | None
    contact_sheet: Path | None
    frames: int  # output frames per file
    fps: Fraction
    start_ns: int  # t0 on the take timeline
    duration_s: float
    start_timecode: str
    warnings: tuple[str, ...]
    seconds: float  # wall time it took
    cpu: StageCPU  # where the CPU time went


# -- timecode ------------------------------------------------------------------------------

_TC = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})[:;.](\d{2})$")


def timecode_frames(tc: str, rate: int = TIMECODE_RATE) -> int:
    m = _TC.match(tc.strip())
    if m is None:
        raise MmrecError(f"bad timecode {tc!r} (expected HH:MM:SS:FF)")
    h, mi, s, f = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * rate + f


def timecode_add(tc: str, t_ns: int, rate: int, tc_rate: int = TIMECODE_RATE) -> str:
    """``tc`` (counted at ``tc_rate``) advanced by ``t_ns``, written at ``rate`` fps."""
    start = timecode_frames(tc, tc_rate)
    frames = (start * rate) // tc_rate + (t_ns * rate + NS // 2) // NS  # nearest frame
    frames %= 24 * 3600 * rate
    s, f = divmod(frames, rate)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


# -- reading a camera ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceFrame:
    time_ns: int
    seq: int
    data: Any  # bytes-like (an av.Packet: its buffer, not a copy)


@dataclass
class CameraScan:
    """A camera's index rows and segment files, as found on disk."""

    rows: list[IndexRow]
    segments: list[Path]
    warnings: list[str] = field(default_factory=list)


def scan_camera(take_dir: Path, cam: CameraEntry) -> CameraScan:
    cam_dir = take_dir / cam.dir
    warnings: list[str] = []
    rows: list[IndexRow] = []
    index = take_dir / (cam.index or f"{cam.dir}/index.csv")
    try:
        rows = list(read_index(index))
    except FileNotFoundError:
        warnings.append(f"camera {cam.name!r}: no {index}; using packet times")
    # The manifest may lag the files by a moment after a crash: trust the folder too.
    names = {Path(s).name for s in cam.segments}
    if cam_dir.is_dir():
        names |= {p.name for p in cam_dir.glob("seg-*.mkv")}
    segments = [cam_dir / n for n in sorted(names)]
    return CameraScan(rows, segments, warnings)


def iter_camera(
    take_dir: Path, cam: CameraEntry, scan: CameraScan, warn: Callable[[str], None]
) -> Iterator[SourceFrame]:
    """The camera's frames in order, with their take-timeline times."""
    by_segment: dict[int, deque[IndexRow]] = {}
    for r in scan.rows:
        by_segment.setdefault(r.segment, deque()).append(r)
    last_t = -(1 << 62)
    for path in scan.segments:
        m = re.match(r"seg-(\d+)\.mkv$", path.name)
        rows = by_segment.get(int(m.group(1)) if m else -1, deque())
        try:
            container = av.open(str(path), "r")
        except (av.FFmpegError, OSError) as exc:
            warn(f"camera {cam.name!r}: cannot open {path}: {exc}; skipped")
            continue
        try:
            stream = container.streams.video[0]
            tb = stream.time_base or Fraction(1, 1000)
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except (av.FFmpegError, OSError, EOFError) as exc:
                    warn(f"camera {cam.name!r}: {path} is truncated ({exc}); read what is there")
                    break
                if packet.size == 0 or packet.pts is None:
                    continue
                pts_ms = int(packet.pts * tb * 1000)
                while rows and rows[0].pts < pts_ms:
                    rows.popleft()  # indexed but not in the file (cut off by a crash)
                if rows and rows[0].pts == pts_ms:
                    r = rows.popleft()
                    t, seq = r.time_ns, r.seq
                else:
                    t, seq = int(packet.pts * tb * NS), -1
                if t <= last_t:
                    t = last_t + 1
                last_t = t
                yield SourceFrame(t, seq, packet)
        except IndexError:
            warn(f"camera {cam.name!r}: {path} has no video stream; skipped")
        finally:
            with contextlib.suppress(av.FFmpegError, OSError):
                container.close()


def _span(take_dir: Path, cam: CameraEntry, scan: CameraScan) -> tuple[int, int] | None:
    if scan.rows:
        return scan.rows[0].time_ns, scan.rows[-1].time_ns
    first = last = None
    for f in iter_camera(take_dir, cam, scan, lambda _: None):
        first = f.time_ns if first is None else first
        last = f.time_ns
    return None if first is None or last is None else (first, last)


def _first_size(take_dir: Path, cam: CameraEntry, scan: CameraScan) -> tuple[int, int] | None:
    if cam.width and cam.height:
        return cam.width, cam.height
    for f in iter_camera(take_dir, cam, scan, lambda _: None):
        info = jpeg.parse_header(f.data)
        if info is not None:
            return info.width, info.height
    return None


# -- the output timeline and what each camera shows on it (pure) ---------------------------


@dataclass(frozen=True, slots=True)
class OutputTimeline:
    """The proxies' constant-rate timeline: output frame k is the take instant ``instant(k)``."""

    start_ns: int  # t0 on the take timeline
    fps: Fraction
    frames: int

    @property
    def period_ns(self) -> Fraction:
        return Fraction(NS) / self.fps

    @property
    def half_ns(self) -> int:
        return int(self.period_ns / 2)

    def instant(self, k: int) -> int:
        return self.start_ns + int(k * self.period_ns)


def output_timeline(
    spans: Iterable[tuple[int, int]], fps: Fraction, phase_ns: int | None = None
) -> OutputTimeline:
    """The union of the cameras' (first, last) frame times at ``fps``: it starts at the first
    frame of any camera and ends at the first instant that shows the last frame of any.

    With ``phase_ns`` the instants are moved (by under half a period) to fall at that
    phase of the period, so they sit on the cameras' capture instants, not between them.
    """
    spans = list(spans)
    if not spans:
        raise MmrecError("no camera has any frame")
    first = min(a for a, _ in spans)
    t1 = max(b for _, b in spans)
    period = Fraction(NS) / fps
    t0 = first
    if phase_ns is not None:
        # the instant of that phase nearest the first frame (first <= t0 + period/2)
        t0 = first - math.floor(((first - phase_ns) % period + period / 2) % period - period / 2)
    # The last instant is the first one that shows the last frame (t + period/2 >= t1).
    n = max(0, math.ceil((t1 - t0 - period / 2) / period)) + 1
    return OutputTimeline(t0, fps, n)


def capture_phase(times: Iterable[int], fps: Fraction) -> int | None:
    """The cameras' mean capture phase within one period at ``fps`` (a circular mean, in
    ns from a multiple of the period), or None without frames or with no clear phase."""
    period = NS / fps
    c = s = 0.0
    n = 0
    for t in times:
        a = 2 * math.pi * float(t % period) / float(period)
        c += math.cos(a)
        s += math.sin(a)
        n += 1
    if n == 0 or math.hypot(c, s) < 1e-9 * n:
        return None
    return round(math.atan2(s, c) / (2 * math.pi) * float(period))


class Timed(Protocol):
    @property
    def time_ns(self) -> int: ...


F = TypeVar("F", bound=Timed)


def shown_frames(frames: Iterable[F], timeline: OutputTimeline, gap_ns: int) -> Iterator[F | None]:
    """For each output instant in order, the frame one camera shows there (None: a gap).

    At instant t that is the newest frame with ``time_ns <= t + period/2`` (the nearest
    one for a camera at the output rate), unless it is more than ``gap_ns`` older than t.
    ``frames`` must be in time order; they are read only as far as the instants need. This
    is the one place that decides what the proxies show: rendering uses it as is.
    """
    it = iter(frames)
    cur: F | None = None
    nxt = next(it, None)
    half = timeline.half_ns
    for k in range(timeline.frames):
        t = timeline.instant(k)
        while nxt is not None and nxt.time_ns <= t + half:
            cur, nxt = nxt, next(it, None)
        yield None if cur is None or t - cur.time_ns > gap_ns else cur


# -- encoding ------------------------------------------------------------------------------


# Labels on the proxies are a "window burn": white text on an opaque black box, as
# editors know it; legible on any picture, and a copy of cached pixels rather than a blend
# per frame (measured: ~0.3 s of CPU of ~11.5 for four 20 s proxies and the multiview).
BURN_IN: Final = 255


def x264_options(opts: ProxyOptions, multiview: bool = False) -> dict[str, str]:
    """libx264 settings for one output (single-threaded: the outputs run side by side).

    Constant QP by default: with the ultrafast preset, CRF still runs x264's lowres
    complexity analysis on every frame, which measured about a third of the encode time
    (benchmarks/bench_proxy.py); a review proxy does not need the rate control it buys.

    The multiview puts a B-frame between P-frames (``multiview_bframes``, a fixed
    pattern), coded at the same quantizer as the rest (pbratio 1). Its four small pictures
    carry more detail and noise than a proxy, which a P-frame codes again every frame and
    a B-frame, predicted from both sides and not a reference (no half-pel planes), mostly
    skips: measured on bench_proxy's take, 1.31 -> 1.05 ms an encode, half the file size,
    the same PSNR (43.5 dB). The proxies themselves encode slower with B-frames.
    """
    rc = {"crf": str(opts.crf)} if opts.crf is not None else {"qp": str(opts.qp)}
    out = {"preset": opts.preset, "threads": "1", **rc}
    if multiview and opts.multiview_bframes is not None:
        out["x264-params"] = f"bframes={opts.multiview_bframes}:b-adapt=0:pbratio=1"
    return out


class _Encoder:
    """One H.264 MP4 at a constant rate, with the start timecode in its metadata.

    Not thread-safe: each output's frames are encoded by one strand at a time (see
    :class:`_Pipeline`). libx264 copies the picture on ``encode``, so the caller may
    reuse the frame afterwards; PyAV releases the GIL while encoding and muxing.
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        opts: ProxyOptions,
        timecode: str,
        title: str,
        x264: dict[str, str],
    ) -> None:
        self.path = path
        self.frames = 0
        self._closed = False
        try:
            self._c: Any = av.open(str(path), "w", format="mp4")
            self._c.metadata["timecode"] = timecode
            self._c.metadata["title"] = title
            s = self._c.add_stream("libx264", rate=opts.fps, options=x264)
            s.width, s.height = size
            s.pix_fmt = "yuv420p"
            s.codec_context.color_range = 2  # full range: the planes are JPEG's
            s.time_base = Fraction(1) / opts.fps
            s.metadata["timecode"] = timecode
            s.metadata["title"] = title
            self._s: Any = s
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(f"cannot write {path}: {exc}") from exc

    def encode(self, frame: Any) -> None:
        """Encode and mux the next frame (an ``av.VideoFrame`` of the output's size)."""
        frame.pts = self.frames
        self.frames += 1
        try:
            for p in self._s.encode(frame):
                self._c.mux(p)
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(f"cannot write {self.path}: {exc}") from exc

    def close(self) -> None:
        """Flush and finalize the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            try:
                for p in self._s.encode(None):
                    self._c.mux(p)
            finally:
                self._c.close()
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(f"cannot write {self.path}: {exc}") from exc


# -- the pass ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageCPU:
    """CPU seconds by stage (thread CPU time, summed over threads)."""

    read: float  # demux, index matching, selection (main thread)
    decode: float  # JPEG -> planes at the decode scale
    compose: float  # pictures, labels, multiview tiles, contact sheet
    encode: float  # x264 and MP4 muxing


@dataclass(eq=False)
class _Instant:
    """One output instant in flight: what each camera shows and the multiview frame."""

    k: int
    timecode: str
    shown: list[SourceFrame | None]
    mv_frame: Any  # av.VideoFrame, or None without a multiview
    mv_canvas: Canvas | None
    pending: int  # camera strands that have not drawn this instant yet


@dataclass(eq=False)
class _Strand:
    """The per-camera state, touched by one worker at a time (``busy``)."""

    index: int
    entry: CameraEntry
    size: tuple[int, int]  # proxy frame size
    encoder: _Encoder
    todo: deque[_Instant] = field(default_factory=deque)
    busy: bool = False
    cur: SourceFrame | None = None  # the source frame decoded last (shown now)
    planes: Planes | None = None  # its planes; the last good ones if it failed to decode
    good: SourceFrame | None = None  # the frame those planes are from
    # The proxy's frames, one per instant of a run, reused (libx264 copies them): each is
    # (av.VideoFrame, a canvas and planes on it); a picture of the proxy's exact size is
    # decoded into them.
    frames: list[tuple[Any, Canvas, Planes]] = field(default_factory=list)
    last: int = -1  # the frame drawn last
    in_frame: bool = False  # ``planes`` are that frame's (its labels' undersides: under)
    under: list[tuple[Rect, Picture]] = field(default_factory=list)
    read: int = 0
    decoded: int = 0
    errors: int = 0
    gaps: int = 0


class _Pipeline:
    """Work for all outputs on ``workers`` threads, one instant window at a time.

    A camera's work at an instant is one task: decode its newly shown frame (if any), draw
    its proxy frame, draw its multiview tile, encode its proxy frame. Doing all of it on one
    core right after the decode keeps the planes in that core's cache, and a task never
    waits on another thread. The multiview's task at an instant (timecode, encode) is
    ready once every camera has drawn its tile. Each strand (a camera, the multiview)
    runs its instants in order and on one worker at a time; workers take the ready task
    of the oldest instant. The main thread only reads and selects, and blocks while
    ``window`` instants are in flight (nothing is dropped: an offline job).
    """

    def __init__(
        self,
        strands: list[_Strand],
        mv: _Multiview | None,
        decode: Callable[[int, Any, Planes | None], Planes],
        workers: int,
        window: int,
        contact_k: int,
    ) -> None:
        self.strands = strands
        self.mv = mv
        self._decode = decode
        self._window = max(1, window)
        self._batch = self._window  # a run may take every instant in flight (see _work)
        self._contact_k = contact_k
        self.contact: list[tuple[SourceFrame, Planes] | None] = [None] * len(strands)
        self.contact_ready = False
        self._mv_todo: deque[_Instant] = deque()
        self._mv_busy = False
        self._in_flight = 0
        self._mv_frames: list[Any] = []  # free multiview frames (reused)
        self._cond = threading.Condition()
        self._stopping = False
        self._error: BaseException | None = None
        self.cpu = [[0.0, 0.0, 0.0] for _ in range(workers)]  # decode, compose, encode
        self._threads = [
            threading.Thread(target=self._work, args=(w,), name=f"proxy-{w}", daemon=True)
            for w in range(workers)
        ]
        for t in self._threads:
            t.start()

    def add(self, k: int, shown: list[SourceFrame | None], timecode: str) -> None:
        """Queue instant ``k``; blocks while the window is full; raises a worker's error."""
        with self._cond:
            while self._in_flight >= self._window and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            mv_frame = mv_canvas = None
            if self.mv is not None:
                if self._mv_frames:
                    mv_frame = self._mv_frames.pop()
                    mv_canvas = Canvas.of_frame(mv_frame)
                else:
                    mv_frame, mv_canvas = new_frame(*self.mv.size, black=True)
            inst = _Instant(k, timecode, shown, mv_frame, mv_canvas, len(self.strands))
            self._in_flight += 1
            for s in self.strands:
                s.todo.append(inst)
            if self.mv is not None:
                self._mv_todo.append(inst)
            self._cond.notify_all()

    def finish(self) -> None:
        """Wait for every queued instant, stop the workers; raises a worker's error."""
        with self._cond:
            while self._in_flight and self._error is None:
                self._cond.wait()
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()

    def _pick(self) -> tuple[_Strand | None, _Instant] | None:
        """The ready task of the oldest instant (under the lock)."""
        best: tuple[_Strand | None, _Instant] | None = None
        for s in self.strands:
            if not s.busy and s.todo and (best is None or s.todo[0].k < best[1].k):
                best = (s, s.todo[0])
        if not self._mv_busy and self._mv_todo and self._mv_todo[0].pending == 0:
            inst = self._mv_todo[0]
            if best is None or inst.k <= best[1].k:
                best = (None, inst)
        return best

    def _work(self, w: int) -> None:
        cpu = self.cpu[w]
        while True:
            with self._cond:
                while True:
                    if self._stopping or self._error is not None:
                        return
                    task = self._pick()
                    if task is not None:
                        break
                    self._cond.wait()
                strand, inst = task
                self._take(strand)
            # Run up to ``batch`` of this strand's instants in a row: its encoder's state
            # stays in this core's cache (measured: 0.99 ms per 540p encode round-robin
            # over 4 encoders, 0.81 in runs of 8, 0.72 for one encoder alone). A camera's
            # run decodes and draws all its frames first, then encodes them back to back:
            # measured 0.76-0.77 ms per encode instead of 0.88-0.91 with a decode between.
            # Only a run's first encodes pay for bringing the encoder's state back (by
            # position in runs of 12: 1.12, 0.88, 0.75, then 0.70 ms), so runs may be as
            # long as the window: encode 2.65 -> 2.50 s CPU (best of 6) for 20 s of 4
            # cameras, for one proxy frame per instant in flight per camera (not half).
            drawn: list[Any] = []
            for n in range(1, self._batch + 1):
                try:
                    if strand is None:
                        assert self.mv is not None
                        self.mv.finish(inst, cpu)
                    else:
                        drawn.append(self._camera(strand, inst, n - 1, cpu))
                except BaseException as exc:
                    self._fail(exc)
                    return
                with self._cond:
                    # Waiters are woken only when what they wait for may have changed: an
                    # instant retired (the reader), the multiview's task ready or a strand
                    # free (the other workers). A wake-up is a futex call and a context
                    # switch (measured ~2% of the CPU when every task woke everyone).
                    wake = strand is None
                    if strand is None:
                        self._retire(inst)
                    else:
                        inst.pending -= 1
                        wake = inst.pending == 0
                        if wake and self.mv is None:
                            self._retire(inst)
                    nxt = self._next(strand) if n < self._batch else None
                    done = nxt is None or self._stopping or self._error is not None
                    if done and strand is None:
                        self._release(strand)
                    if wake or (done and strand is None):
                        self._cond.notify_all()
                    if done or nxt is None:
                        break
                    inst = nxt
                    self._take(strand)
            if strand is not None:
                t0 = time.thread_time()
                try:
                    for frame in drawn:  # in order, before another worker takes the strand
                        strand.encoder.encode(frame)
                except BaseException as exc:
                    self._fail(exc)
                    return
                cpu[2] += time.thread_time() - t0
                with self._cond:
                    self._release(strand)
                    self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = self._error or exc
            self._cond.notify_all()

    def _next(self, strand: _Strand | None) -> _Instant | None:
        """The strand's next instant if it is ready now (under the lock)."""
        if strand is None:
            ready = self._mv_todo and self._mv_todo[0].pending == 0
            return self._mv_todo[0] if ready else None
        return strand.todo[0] if strand.todo else None

    def _take(self, strand: _Strand | None) -> None:
        if strand is None:
            self._mv_busy = True
            self._mv_todo.popleft()
        else:
            strand.busy = True
            strand.todo.popleft()

    def _release(self, strand: _Strand | None) -> None:
        if strand is None:
            self._mv_busy = False
        else:
            strand.busy = False

    def _retire(self, inst: _Instant) -> None:
        self._in_flight -= 1
        if inst.mv_frame is not None:
            self._mv_frames.append(inst.mv_frame)
        if inst.k == self._contact_k:
            self.contact_ready = True

    def _camera(self, s: _Strand, inst: _Instant, slot: int, cpu: list[float]) -> Any:
        """Decode and draw the camera's proxy frame (the run's ``slot``-th) and multiview
        tile at ``inst``; returns the frame, for the caller to encode."""
        i = s.index
        t0 = time.thread_time()
        while len(s.frames) <= slot:
            f, c = new_frame(*s.size)
            s.frames.append((f, c, Planes(c.y, c.u, c.v, c.width, c.height)))
        out, canvas, view = s.frames[slot]
        # A picture of the proxy's exact size (the usual case: the size comes from the
        # camera's aspect) is decoded straight into the proxy frame: no copy. Its labels
        # are drawn on top, so what they cover is kept (s.under) and put back when the
        # next instant shows the same frame.
        frame = inst.shown[i]
        if frame is not None and frame is not s.cur:
            s.cur = frame
            s.under.clear()
            try:
                s.planes = self._decode(i, frame.data, view)
                s.good = frame
                s.decoded += 1
            except StreamFormatError:
                s.errors += 1  # shows the last good picture
                if s.good is not None and any(s.planes is v for _, _, v in s.frames):
                    try:  # the last good picture was in a proxy frame: decode it again
                        s.planes = self._decode(i, s.good.data, view)
                    except StreamFormatError:
                        s.planes = None
            s.in_frame = s.planes is view
        elif frame is None:
            s.cur = None
        elif s.in_frame:  # the same picture again: from the last frame, without labels
            if s.last != slot:
                s.frames[s.last][1].copy_to(canvas)
            restore(canvas, s.under)
            s.planes = view
        s.last = slot
        planes = s.planes if frame is not None else None
        if inst.k == self._contact_k and frame is not None and planes is not None:
            if s.in_frame:  # the frame is drawn on and reused: keep a copy
                planes = Planes(planes.y.copy(), planes.u.copy(), planes.v.copy(), *s.size)
            self.contact[i] = (frame, planes)
        t1 = time.thread_time()
        full = Rect(0, 0, *s.size)
        if planes is None:
            s.gaps += 1
            s.in_frame = False  # black now: the next picture is drawn in full
            render_tile(
                canvas,
                full,
                None,
                None,
                NO_SIGNAL,
                s.entry.name,
                corner_text=inst.timecode,
                box_alpha=BURN_IN,
            )
        elif not s.in_frame:
            r = fit(planes.width, planes.height, full)
            pic = to_picture(planes, r.w, r.h)
            render_tile(
                canvas,
                full,
                r,
                pic,
                LIVE,
                s.entry.name,
                corner_text=inst.timecode,
                box_alpha=BURN_IN,
            )
        if self.mv is not None and inst.mv_canvas is not None:
            self.mv.tile(inst.mv_canvas, i, planes)  # before the labels cover the picture
        if planes is not None and s.in_frame:
            # What the labels cover is kept only if the strand's next instant may show
            # this picture again (not yet queued, or queued with the same frame): with a
            # new frame there, the picture is decoded anew and the copy is not needed.
            held = not s.todo or s.todo[0].shown[i] is frame
            caption(
                canvas,
                full,
                s.entry.name,
                inst.timecode,
                px=text_px(full.h),
                under=s.under if held else None,
                box_alpha=BURN_IN,
            )
        cpu[0] += t1 - t0
        cpu[1] += time.thread_time() - t1
        return out


def even(v: float) -> int:
    return max(2, round(v / 2) * 2)


def make_proxies(
    take_dir: Path,
    opts: ProxyOptions = ProxyOptions(),
    *,
    progress: Callable[[int, int], None] | None = None,
    decoder: Decoder | None = None,
    warn: Callable[[str], None] | None = None,
) -> ProxyResult:
    """Write every camera's proxy, the multiview and the contact sheet; see module doc."""
    started = time.perf_counter()
    cpu_main = time.thread_time()
    take_dir = Path(take_dir)
    manifest = load_manifest(take_dir)
    warnings: list[str] = []

    def _warn(text: str) -> None:
        warnings.append(text)
        if warn is not None:
            warn(text)

    if manifest.state != "finished":
        _warn(
            f"take {manifest.take_id} was not finished (state {manifest.state!r}); "
            "making proxies of what is there"
        )
    dec = decoder or default_decoder()
    out_dir = Path(opts.out) if opts.out else take_dir / "proxies"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(f"cannot create {out_dir}: {exc.strerror}") from exc

    scans: list[tuple[CameraEntry, CameraScan, tuple[int, int], tuple[int, int]]] = []
    for cam in manifest.cameras:
        scan = scan_camera(take_dir, cam)
        for w in scan.warnings:
            _warn(w)
        span = _span(take_dir, cam, scan)
        size = _first_size(take_dir, cam, scan) if span else None
        if span is None or size is None:
            _warn(f"camera {cam.name!r}: no frames on disk; no proxy")
            continue
        scans.append((cam, scan, span, size))
    if not scans:
        raise TakeError(f"{take_dir}: no camera has any readable frame")

    # Instants at the cameras' capture phase, judged on frames after clock warm-up: so
    # cameras that capture together show the frames they captured together even if their
    # times are off by a few ms (a grid half a period off would split them).
    phase = capture_phase(
        (
            r.time_ns
            for cam, scan, _, _ in scans
            for r in scan.rows[(cam.clock.warmup_frames if cam.clock else 0) :]
        ),
        opts.fps,
    )
    timeline = output_timeline((s[2] for s in scans), opts.fps, phase)
    t0, n_out = timeline.start_ns, timeline.frames
    t1 = max(s[2][1] for s in scans)
    tc_rate = round(opts.fps)
    start_tc = timecode_add(manifest.timecode, t0, tc_rate)
    gap_ns = int(opts.gap_s * NS)

    # Sizes: each proxy at the chosen height and its first frame's aspect; the multiview
    # a 16:9 grid. Decodes are at the scale the larger of the two uses needs.
    sizes = [(even(opts.height * sw / sh), even(opts.height)) for _, _, _, (sw, sh) in scans]
    mv_size = opts.multiview_size or (even(opts.height * 16 / 9), even(opts.height))
    names = [cam.name for cam, _, _, _ in scans]
    mv = _Multiview(names, mv_size) if opts.multiview else None
    mv_cells = grid_layout(len(names), mv_size).cells

    scale_cache: dict[tuple[int, int, int], Fraction] = {}

    def decode(i: int, data: Any, into: Planes | None) -> Planes:
        info = jpeg.parse_header(data)
        if info is None:
            raise StreamFormatError("not a JPEG")
        key = (i, info.width, info.height)
        scale = scale_cache.get(key)
        if scale is None:
            pw, ph = fit(info.width, info.height, Rect(0, 0, *sizes[i])).w, sizes[i][1]
            tw = th = 0
            if opts.multiview:
                r = fit(info.width, info.height, mv_cells[i])
                tw, th = r.w, r.h
            scale = choose_scale(info.width, info.height, max(pw, tw), max(ph, th), dec.scales)
            scale_cache[key] = scale
        return dec.decode(data, scale, into)

    files = [out_dir / f"{n}.mp4" for n in _file_names([cam.dir for cam, _, _, _ in scans])]
    contact_at_ns = t0 + (
        int(opts.contact_at * NS) if opts.contact_at is not None else (t1 - t0) // 2
    )
    contact_at_ns = min(max(contact_at_ns, t0), timeline.instant(n_out - 1))
    contact_k = next(k for k in range(n_out) if timeline.instant(k) >= contact_at_ns)
    encoders: list[_Encoder] = []
    pipeline: _Pipeline | None = None
    sheet: Path | None = out_dir / "contact-sheet.jpg" if opts.contact_sheet else None
    contact_cpu = 0.0
    contact_done = False

    def contact_sheet() -> float:
        assert pipeline is not None and sheet is not None
        c0 = time.thread_time()
        at_ns = timeline.instant(contact_k)
        _contact_sheet(
            sheet,
            names,
            pipeline.contact,
            dec,
            timecode_add(manifest.timecode, at_ns, tc_rate),
            (at_ns - t0) / NS,
        )
        return time.thread_time() - c0

    strands: list[_Strand] = []
    try:
        for (cam, _, _, _), size, path in zip(scans, sizes, files, strict=True):
            encoders.append(_Encoder(path, size, opts, start_tc, cam.name, x264_options(opts)))
            strands.append(_Strand(len(strands), cam, size, encoders[-1]))
        mv_enc = None
        if mv is not None:
            mv_enc = _Encoder(
                out_dir / "multiview.mp4",
                mv_size,
                opts,
                start_tc,
                "multiview",
                x264_options(opts, multiview=True),
            )
            encoders.append(mv_enc)
            mv.encoder = mv_enc
        pipeline = _Pipeline(strands, mv, decode, max(1, opts.threads), opts.window, contact_k)

        def counted(s: _Strand, frames: Iterator[SourceFrame]) -> Iterator[SourceFrame]:
            for f in frames:
                s.read += 1
                yield f

        shown = [
            shown_frames(counted(s, iter_camera(take_dir, cam, scan, _warn)), timeline, gap_ns)
            for s, (cam, scan, _, _) in zip(strands, scans, strict=True)
        ]
        for k in range(n_out):
            t = timeline.instant(k)
            pipeline.add(
                k, [next(sel) for sel in shown], timecode_add(manifest.timecode, t, tc_rate)
            )
            if sheet is not None and not contact_done and pipeline.contact_ready:
                # the main thread has time while the workers draw and encode
                contact_cpu += contact_sheet()
                contact_done = True
            if progress is not None:
                progress(k + 1, n_out)
        pipeline.finish()
        for enc in encoders:
            enc.close()
    finally:
        if pipeline is not None:
            pipeline.stop()
        for enc in encoders:  # after an error: finalize what was written
            with contextlib.suppress(Exception):
                enc.close()
    if sheet is not None and not contact_done:
        contact_cpu += contact_sheet()
    assert pipeline is not None
    cpu = [sum(c[j] for c in pipeline.cpu) for j in range(3)]
    if mv is not None:
        cpu[1] += mv.cpu[0]
        cpu[2] += mv.cpu[1]
    main_cpu = time.thread_time() - cpu_main - contact_cpu
    return ProxyResult(
        out_dir=out_dir,
        cameras=tuple(
            CameraProxy(s.entry.name, p, s.size, s.read, s.decoded, s.errors, s.gaps)
            for s, p in zip(strands, files, strict=True)
        ),
        multiview=out_dir / "multiview.mp4" if opts.multiview else None,
        contact_sheet=sheet,
        frames=n_out,
        fps=opts.fps,
        start_ns=t0,
        duration_s=float(n_out / opts.fps),
        start_timecode=start_tc,
        warnings=tuple(warnings),
        seconds=time.perf_counter() - started,
        cpu=StageCPU(main_cpu, cpu[0], cpu[1] + contact_cpu, cpu[2]),
    )


def _file_names(dirs: list[str]) -> list[str]:
    """Proxy file stems: each camera's folder name (already safe and unique in the take,
    see mmrec.store.names), never one of the take-wide outputs' names."""
    taken = {"multiview", "contact-sheet"}
    out = []
    for d in dirs:
        name = unique_name(safe_name(d), taken)
        taken.add(name)
        out.append(name)
    return out


class _Multiview:
    """All cameras tiled, the timecode on top. Camera strands draw their own tiles
    (disjoint rectangles of the instant's frame); :meth:`finish` labels and encodes."""

    def __init__(self, names: list[str], size: tuple[int, int]) -> None:
        self.names = names
        self.size = size
        layout = grid_layout(len(names), size)
        self.cells = layout.cells
        # What no tile covers (margins, empty cells): black again in each reused frame,
        # since the timecode label may lie on it.
        w, h = size
        x0, y0, cw, ch = self.cells[0].x, self.cells[0].y, self.cells[0].w, self.cells[0].h
        gx, gy = x0 + layout.cols * cw, y0 + layout.rows * ch
        around = [
            Rect(0, 0, w, y0),
            Rect(0, gy, w, h - gy),
            Rect(0, y0, x0, gy - y0),
            Rect(gx, y0, w - gx, gy - y0),
        ]
        empty = [
            Rect(x0 + (i % layout.cols) * cw, y0 + (i // layout.cols) * ch, cw, ch)
            for i in range(len(names), layout.cols * layout.rows)
        ]
        self.background = tuple(r for r in around + empty if r.w > 0 and r.h > 0)
        self.encoder: _Encoder | None = None
        self.cpu = [0.0, 0.0]  # compose, encode (one strand: no lock needed)
        # per (camera, picture size): rectangle, bars, name label (see tile)
        self._plans: dict[tuple[int, int, int], tuple[Rect, tuple[Rect, ...], Any]] = {}

    def tile(self, canvas: Canvas, i: int, planes: Planes | None) -> None:
        cell = self.cells[i]
        if planes is None:
            render_tile(canvas, cell, None, None, NO_SIGNAL, self.names[i], box_alpha=BURN_IN)
            return
        key = (i, planes.width, planes.height)
        plan = self._plans.get(key)
        if plan is None:
            # What render_tile draws for a live picture of this size, worked out once:
            # the black bars beside it, its rectangle, the name label's pixels.
            r = fit(planes.width, planes.height, cell)
            bars = tuple(
                b
                for b in (
                    Rect(cell.x, cell.y, cell.w, r.y - cell.y),
                    Rect(cell.x, r.bottom, cell.w, cell.bottom - r.bottom),
                    Rect(cell.x, r.y, r.x - cell.x, r.h),
                    Rect(r.right, r.y, cell.right - r.right, r.h),
                )
                if b.w > 0 and b.h > 0
            )
            name = (
                opaque_label(self.names[i], text_px(cell.h), r, "bottom-left", BLACK)
                if self.names[i]
                else None
            )
            plan = self._plans[key] = (r, bars, name)
        r, bars, name = plan
        for b in bars:
            canvas.fill(b)
        blit_scaled(canvas, r, planes)  # resized straight into the frame: one copy
        if name is not None:
            blit(canvas, *name)

    def finish(self, inst: _Instant, cpu: list[float]) -> None:
        assert self.encoder is not None and inst.mv_canvas is not None
        t0 = time.thread_time()
        mv = inst.mv_canvas
        for r in self.background:
            mv.fill(r)
        whole = Rect(0, 0, mv.width, mv.height)
        label(
            mv,
            whole,
            inst.timecode,
            px=text_px(mv.height // 2),
            where="top-right",
            box_alpha=BURN_IN,
        )
        t1 = time.thread_time()
        self.encoder.encode(inst.mv_frame)
        t2 = time.thread_time()
        self.cpu[0] += t1 - t0
        self.cpu[1] += t2 - t1


def _contact_sheet(
    path: Path,
    names: list[str],
    frames: list[tuple[SourceFrame, Planes] | None],
    dec: Decoder,
    tc: str,
    at_s: float,
) -> None:
    """One still per camera at the chosen instant, labeled, as a JPEG (quality 92: a PNG
    of it cost 0.2-0.37 s of CPU, a third of all drawing; the JPEG 15 ms). The proxies'
    decodes are reused; a frame is decoded again only if its cell needs more pixels."""
    layout = grid_layout(len(names), (1920, 1080) if len(names) > 1 else (1280, 720))
    head = 2 * (text_px(layout.height // 3) + 8)
    canvas = Canvas.new(layout.width, layout.height + head)
    for name, shown, cell in zip(names, frames, layout.cells, strict=True):
        cell = Rect(cell.x, cell.y + head, cell.w, cell.h)
        pic: Picture | None = None
        r: Rect | None = None
        if shown is not None:
            f, planes = shown
            r = fit(planes.width, planes.height, cell)
            if planes.width < r.w or planes.height < r.h:
                info = jpeg.parse_header(f.data)
                if info is not None:
                    scale = choose_scale(info.width, info.height, r.w, r.h, dec.scales)
                    with contextlib.suppress(StreamFormatError):
                        planes = dec.decode(f.data, scale)
            pic = to_picture(planes, r.w, r.h)
        render_tile(canvas, cell, r, pic, LIVE, name, box_alpha=BURN_IN)
    label(
        canvas,
        Rect(0, 0, canvas.width, head),
        f"{tc}   t = {at_s:.2f} s",
        px=text_px(layout.height // 3),
        where="center",
        box_alpha=BURN_IN,
    )
    try:
        path.write_bytes(encode_jpeg(canvas, 92, dec.turbojpeg))
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc}") from exc
