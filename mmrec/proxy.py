"""Synced review proxies of a take: one H.264 MP4 per camera, a multiview, a contact sheet.

Every output shares one constant-rate timeline: output frame k is the instant
``t0 + k / fps`` on the take timeline, where ``t0`` is the first frame of any camera and
the last instant covers the last frame of any camera (the union of all spans). So every
file starts at the same instant, has the same number of frames, and carries the same
start timecode (the take's timecode + t0), in its metadata and burned into the picture.

At instant t a camera shows its newest frame with ``time_ns <= t + period/2`` (the frame
nearest t for cameras at the output rate), as long as it is not older than the gap
threshold; otherwise a black NO SIGNAL frame.

Data flow (streaming, bounded memory): per camera a reader demuxes packets from its
segments in order and matches them to ``index.csv`` rows by pts (a packet with no row
falls back to its pts; a row with no packet is skipped). The main thread walks the
instants and submits each newly selected source frame once to a decode pool (libjpeg-turbo
at the scale the larger of its two uses needs); every output has its own thread that waits
for those decodes, composes its frame and encodes it, fed by a queue of at most ``window``
instants. A source frame held across several
instants, and shown in both its proxy and the multiview, is decoded once.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import math
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av

from mmrec import jpeg
from mmrec.decode import Decoder, Planes, default_decoder
from mmrec.errors import MmrecError, RecordingError, StreamFormatError
from mmrec.mosaic import (
    LIVE,
    NO_SIGNAL,
    Canvas,
    Picture,
    label,
    new_frame,
    render_tile,
    text_px,
    to_picture,
    to_rgb,
)
from mmrec.take import CameraEntry, IndexRow, load_manifest, read_index
from mmrec.tile import Rect, choose_scale, fit, grid_layout

NS: Final = 1_000_000_000
TIMECODE_RATE: Final = 30  # mmrec.record.timecode_at writes the take timecode at 30 fps


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
    crf: int = 23
    threads: int = 2
    window: int = 8  # instants queued per output (bounds decodes in flight and memory)
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
class _Scan:
    rows: list[IndexRow]
    segments: list[Path]
    warnings: list[str] = field(default_factory=list)


def _scan_camera(take_dir: Path, cam: CameraEntry) -> _Scan:
    cam_dir = take_dir / cam.dir
    warnings: list[str] = []
    rows: list[IndexRow] = []
    index = take_dir / (cam.index or f"{cam.dir}/index.csv")
    try:
        rows = list(read_index(index))
    except FileNotFoundError:
        warnings.append(f"camera {cam.name!r}: no {index}; using packet times")
    except OSError as exc:
        raise MmrecError(f"cannot read {index}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise MmrecError(f"cannot read {index}: not text ({exc.reason})") from exc
    # The manifest may lag the files by a moment after a crash: trust the folder too.
    names = {Path(s).name for s in cam.segments}
    if cam_dir.is_dir():
        names |= {p.name for p in cam_dir.glob("seg-*.mkv")}
    segments = [cam_dir / n for n in sorted(names)]
    return _Scan(rows, segments, warnings)


def iter_camera(
    take_dir: Path, cam: CameraEntry, scan: _Scan, warn: Callable[[str], None]
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


def _span(take_dir: Path, cam: CameraEntry, scan: _Scan) -> tuple[int, int] | None:
    if scan.rows:
        return scan.rows[0].time_ns, scan.rows[-1].time_ns
    first = last = None
    for f in iter_camera(take_dir, cam, scan, lambda _: None):
        first = f.time_ns if first is None else first
        last = f.time_ns
    return None if first is None or last is None else (first, last)


def _first_size(take_dir: Path, cam: CameraEntry, scan: _Scan) -> tuple[int, int] | None:
    if cam.width and cam.height:
        return cam.width, cam.height
    for f in iter_camera(take_dir, cam, scan, lambda _: None):
        info = jpeg.parse_header(f.data)
        if info is not None:
            return info.width, info.height
    return None


# -- encoding ------------------------------------------------------------------------------


class _Encoder:
    """One H.264 MP4 at a constant rate, with the start timecode in its metadata.

    Each output has a worker thread of its own fed by a bounded queue of *render jobs*:
    the thread waits for the job's decodes, composes the frame (picture, labels) and
    encodes it with a single-threaded x264 (PyAV releases the GIL while encoding). So the
    outputs compose and encode in parallel with each other and with the decodes, and the
    main thread only selects frames. When a queue is full the main thread waits (an
    offline job: nothing is dropped); an error is raised to the main thread at its next
    job or at close.
    """

    def __init__(
        self, path: Path, size: tuple[int, int], opts: ProxyOptions, timecode: str, title: str
    ) -> None:
        self.path = path
        try:
            self._c: Any = av.open(str(path), "w", format="mp4")
            self._c.metadata["timecode"] = timecode
            self._c.metadata["title"] = title
            s = self._c.add_stream(
                "libx264",
                rate=opts.fps,
                options={"preset": opts.preset, "crf": str(opts.crf), "threads": "1"},
            )
            s.width, s.height = size
            s.pix_fmt = "yuv420p"
            s.codec_context.color_range = 2  # full range: the planes are JPEG's
            s.time_base = Fraction(1) / opts.fps
            s.metadata["timecode"] = timecode
            s.metadata["title"] = title
            self._s: Any = s
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(f"cannot write {path}: {exc}") from exc
        self.frames = 0
        self._error: Exception | None = None
        self._queue: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=opts.window)
        self._thread = threading.Thread(
            target=self._run, name=f"proxy-encode:{path.name}", daemon=True
        )
        self._thread.start()

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue a job that returns the next ``av.VideoFrame``; blocks while the queue is full."""
        if self._error is not None:
            raise self._error
        self._queue.put(job)

    def close(self) -> None:
        """Flush and finalize the file (waits for the queued jobs)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            while True:
                job = self._queue.get()
                if self._error is not None:
                    if job is None:
                        break
                    continue  # keep draining so the main thread never blocks forever
                try:
                    frame = None if job is None else job()
                    if frame is not None:
                        frame.pts = self.frames
                        self.frames += 1
                    for p in self._s.encode(frame):
                        self._c.mux(p)
                except (av.FFmpegError, OSError) as exc:
                    self._error = RecordingError(f"cannot write {self.path}: {exc}")
                except Exception as exc:  # a bug: hand it to the main thread, do not hang
                    self._error = exc
                if job is None:
                    break
        finally:
            try:
                self._c.close()
            except (av.FFmpegError, OSError) as exc:
                self._error = self._error or RecordingError(f"cannot write {self.path}: {exc}")


# -- the pass ------------------------------------------------------------------------------


@dataclass
class _Cam:
    entry: CameraEntry
    frames: Iterator[SourceFrame]
    size: tuple[int, int]  # proxy frame size
    cur: SourceFrame | None = None
    nxt: SourceFrame | None = None
    future: cf.Future[Planes] | None = None
    planes: Planes | None = None  # last good decode, for a frame that fails to decode
    read: int = 0
    decoded: int = 0
    errors: int = 0
    gaps: int = 0
    encoder: _Encoder | None = None
    last_future: cf.Future[Planes] | None = None

    def advance(self, limit_ns: int) -> bool:
        """Select the newest frame with time_ns <= limit_ns; True if it changed."""
        changed = False
        while True:
            if self.nxt is None:
                self.nxt = next(self.frames, None)
                if self.nxt is None:
                    return changed
                self.read += 1
            if self.nxt.time_ns > limit_ns:
                return changed
            self.cur, self.nxt, changed = self.nxt, None, True


@dataclass(frozen=True, slots=True)
class _Slot:
    """What one camera shows at one instant."""

    future: cf.Future[Planes] | None  # None: a gap
    frame: SourceFrame | None


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

    scans: list[tuple[CameraEntry, _Scan, tuple[int, int], tuple[int, int]]] = []
    for cam in manifest.cameras:
        scan = _scan_camera(take_dir, cam)
        for w in scan.warnings:
            _warn(w)
        span = _span(take_dir, cam, scan)
        size = _first_size(take_dir, cam, scan) if span else None
        if span is None or size is None:
            _warn(f"camera {cam.name!r}: no frames on disk; no proxy")
            continue
        scans.append((cam, scan, span, size))
    if not scans:
        raise MmrecError(f"{take_dir}: no camera has any readable frame")

    t0 = min(s[2][0] for s in scans)
    t1 = max(s[2][1] for s in scans)
    period_ns = Fraction(NS) / opts.fps
    # The last instant is the first one that shows the last frame (t + period/2 >= t1).
    n_out = max(0, math.ceil((t1 - t0 - period_ns / 2) / period_ns)) + 1
    tc_rate = round(opts.fps)
    start_tc = timecode_add(manifest.timecode, t0, tc_rate)
    gap_ns = int(opts.gap_s * NS)
    half_ns = int(period_ns / 2)

    # Sizes: each proxy at the chosen height and its first frame's aspect; the multiview
    # a 16:9 grid. Decodes are at the scale the larger of the two uses needs.
    cams: list[_Cam] = []
    for cam, scan, _, (sw, sh) in scans:
        size = (even(opts.height * sw / sh), even(opts.height))
        cams.append(_Cam(cam, iter_camera(take_dir, cam, scan, _warn), size))
    mv_size = opts.multiview_size or (even(opts.height * 16 / 9), even(opts.height))
    mv = _Multiview([c.entry.name for c in cams], mv_size) if opts.multiview else None
    mv_cells = grid_layout(len(cams), mv_size).cells

    scale_cache: dict[tuple[int, int, int], Fraction] = {}

    def decode_job(i: int, data: Any) -> Planes:
        info = jpeg.parse_header(data)
        if info is None:
            raise StreamFormatError("not a JPEG")
        key = (i, info.width, info.height)
        scale = scale_cache.get(key)
        if scale is None:
            pw, ph = fit(info.width, info.height, Rect(0, 0, *cams[i].size)).w, cams[i].size[1]
            tw = th = 0
            if opts.multiview:
                r = fit(info.width, info.height, mv_cells[i])
                tw, th = r.w, r.h
            scale = choose_scale(info.width, info.height, max(pw, tw), max(ph, th), dec.scales)
            scale_cache[key] = scale
        return dec.decode(data, scale)

    files = [out_dir / f"{_file_safe(c.entry.name)}.mp4" for c in cams]
    contact_at_ns = t0 + (
        int(opts.contact_at * NS) if opts.contact_at is not None else (t1 - t0) // 2
    )
    contact_at_ns = min(max(contact_at_ns, t0), t0 + int((n_out - 1) * period_ns))
    contact: list[SourceFrame | None] | None = None
    mv_enc: _Encoder | None = None
    pool = cf.ThreadPoolExecutor(max(1, opts.threads), thread_name_prefix="proxy-decode")
    try:
        for c, path in zip(cams, files, strict=True):
            c.encoder = _Encoder(path, c.size, opts, start_tc, c.entry.name)
        if opts.multiview:
            mv_enc = _Encoder(out_dir / "multiview.mp4", mv_size, opts, start_tc, "multiview")
        # The main thread only selects: each instant's newly shown source frames go to the
        # decode pool, and one render job per output to its encoder's bounded queue (which
        # is what bounds the decodes in flight and the memory).
        for k in range(n_out):
            t = t0 + int(k * period_ns)
            slots = []
            for i, c in enumerate(cams):
                if c.advance(t + half_ns) and c.cur is not None:
                    c.future = pool.submit(decode_job, i, c.cur.data)
                if c.cur is None or t - c.cur.time_ns > gap_ns:
                    slots.append(_Slot(None, None))
                else:
                    slots.append(_Slot(c.future, c.cur))
            if contact is None and t >= contact_at_ns:
                contact = [s.frame for s in slots]
            tc = timecode_add(manifest.timecode, t, tc_rate)
            for c, slot in zip(cams, slots, strict=True):
                assert c.encoder is not None
                c.encoder.submit(functools.partial(_camera_frame, c, slot, tc))
            if mv_enc is not None and mv is not None:
                mv_enc.submit(functools.partial(mv.frame, slots, tc))
            if progress is not None:
                progress(k + 1, n_out)
        for c in cams:
            assert c.encoder is not None
            c.encoder.close()
        if mv_enc is not None:
            mv_enc.close()
    finally:
        for enc in [c.encoder for c in cams] + [mv_enc]:
            if enc is not None:  # after an error: finalize what was written
                with contextlib.suppress(Exception):
                    enc.close()
        pool.shutdown(wait=True, cancel_futures=True)

    sheet: Path | None = None
    if opts.contact_sheet:
        sheet = out_dir / "contact-sheet.png"
        at_ns = contact_at_ns if contact is not None else t0
        _contact_sheet(
            sheet,
            [c.entry.name for c in cams],
            contact or [None] * len(cams),
            dec,
            timecode_add(manifest.timecode, at_ns, tc_rate),
            (at_ns - t0) / NS,
        )
    return ProxyResult(
        out_dir=out_dir,
        cameras=tuple(
            CameraProxy(c.entry.name, p, c.size, c.read, c.decoded, c.errors, c.gaps)
            for c, p in zip(cams, files, strict=True)
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
    )


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "camera"


def _resolve(c: _Cam, slot: _Slot) -> Planes | None:
    """(In the camera's encoder thread) the picture for a slot; a frame that fails to
    decode shows the last good one. Counts each source frame's decode once."""
    fut = slot.future
    if fut is None:
        return None
    if fut is not c.last_future:
        c.last_future = fut
        try:
            c.planes = fut.result()
            c.decoded += 1
        except StreamFormatError:
            c.errors += 1
    return c.planes


def _camera_frame(c: _Cam, slot: _Slot, tc: str) -> Any:
    planes = _resolve(c, slot)
    w, h = c.size
    frame, canvas = new_frame(w, h)
    full = Rect(0, 0, w, h)
    if planes is None:
        c.gaps += 1
        render_tile(canvas, full, None, None, NO_SIGNAL, c.entry.name, corner_text=tc)
    else:
        r = fit(planes.width, planes.height, full)
        pic = to_picture(planes, r.w, r.h)
        render_tile(canvas, full, r, pic, LIVE, c.entry.name, corner_text=tc)
    return frame


class _Multiview:
    """(In the multiview's encoder thread) all cameras tiled, the timecode on top."""

    def __init__(self, names: list[str], size: tuple[int, int]) -> None:
        self.names = names
        self.size = size
        self.cells = grid_layout(len(names), size).cells
        self._last: list[cf.Future[Planes] | None] = [None] * len(names)
        self._planes: list[Planes | None] = [None] * len(names)

    def frame(self, slots: list[_Slot], tc: str) -> Any:
        frame, mv = new_frame(*self.size, black=True)
        for i, slot in enumerate(slots):
            planes: Planes | None = None
            if slot.future is not None:
                if slot.future is not self._last[i]:
                    self._last[i] = slot.future
                    with contextlib.suppress(StreamFormatError):
                        self._planes[i] = slot.future.result()
                planes = self._planes[i]
            cell = self.cells[i]
            if planes is None:
                render_tile(mv, cell, None, None, NO_SIGNAL, self.names[i])
            else:
                r = fit(planes.width, planes.height, cell)
                render_tile(mv, cell, r, to_picture(planes, r.w, r.h), LIVE, self.names[i])
        whole = Rect(0, 0, mv.width, mv.height)
        label(mv, whole, tc, px=text_px(mv.height // 2), where="top-right")
        return frame


def _contact_sheet(
    path: Path,
    names: list[str],
    frames: list[SourceFrame | None],
    dec: Decoder,
    tc: str,
    at_s: float,
) -> None:
    """One still per camera at the chosen instant, labeled, as a PNG."""
    from PIL import Image

    layout = grid_layout(len(names), (1920, 1080) if len(names) > 1 else (1280, 720))
    head = 2 * (text_px(layout.height // 3) + 8)
    canvas = Canvas.new(layout.width, layout.height + head)
    for name, f, cell in zip(names, frames, layout.cells, strict=True):
        cell = Rect(cell.x, cell.y + head, cell.w, cell.h)
        pic: Picture | None = None
        r: Rect | None = None
        if f is not None:
            info = jpeg.parse_header(f.data)
            if info is not None:
                r = fit(info.width, info.height, cell)
                try:
                    planes = dec.decode(
                        f.data, choose_scale(info.width, info.height, r.w, r.h, dec.scales)
                    )
                    pic = to_picture(planes, r.w, r.h)
                except StreamFormatError:
                    pic = None
        render_tile(canvas, cell, r, pic, LIVE, name)
    label(
        canvas,
        Rect(0, 0, canvas.width, head),
        f"{tc}   t = {at_s:.2f} s",
        px=text_px(layout.height // 3),
        where="center",
    )
    try:
        Image.fromarray(to_rgb(canvas)).save(path, compress_level=1)
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc}") from exc
