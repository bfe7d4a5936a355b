"""Synced review proxies of a take: one H.264 MP4 per camera, a multiview, a contact sheet.

The flow, one module a step: the take's cameras are read back (:mod:`.source`); a pure
plan says what every output frame shows (:mod:`.plan`); the threads render it
(:mod:`.pipeline`: per camera :mod:`.render`, and :mod:`.multiview`), each output written
by the one H.264 writer (:mod:`mmrec.picture.h264`); the contact sheet (:mod:`.contact`)
is drawn on the main thread from the proxies' own decodes.

Streaming, in bounded memory: the main thread reads and plans; ``threads`` workers decode
each newly shown frame once (libjpeg-turbo straight to YUV planes, at the scale the larger
of its two uses needs), draw the proxy frame and the camera's multiview tile from those
planes while they are in cache, and encode; at most ``window`` instants are in flight.
Each picture is copied once into each output frame; no RGB anywhere.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

from mmrec.errors import ExceptionMap, RecordingError, TakeError, map_exceptions
from mmrec.picture.decode import Decoder, default_decoder
from mmrec.picture.h264 import H264Writer
from mmrec.picture.h264 import x264_options as h264_options
from mmrec.review.contact import write_contact_sheet
from mmrec.review.multiview import Multiview
from mmrec.review.options import ProxyOptions
from mmrec.review.pipeline import Pipeline
from mmrec.review.plan import ProxyPlan, plan_proxies
from mmrec.review.render import CameraStrand
from mmrec.review.source import CameraReader, read_cameras
from mmrec.store.names import unique_name
from mmrec.store.reader import WarningLog
from mmrec.store.take import load_manifest
from mmrec.timeline.grid import take_grid

NS: Final = 1_000_000_000
DEFAULT_OPTIONS: Final = ProxyOptions()
_WRITE_ERRORS: Final[ExceptionMap] = {OSError: RecordingError}


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
class StageCPU:
    """CPU seconds by stage (thread CPU time, summed over threads)."""

    read: float  # demux, index matching, selection (main thread)
    decode: float  # JPEG -> planes at the decode scale
    compose: float  # pictures, labels, multiview tiles, contact sheet
    encode: float  # x264 and MP4 muxing


@dataclass(frozen=True, slots=True)
class ProxyResult:
    out_dir: Path
    cameras: tuple[CameraProxy, ...]
    multiview: Path | None
    contact_sheet: Path | None
    frames: int  # output frames per file
    fps: Fraction
    start_ns: int  # the take instant of the start timecode
    duration_s: float
    start_timecode: str
    warnings: tuple[str, ...]
    seconds: float  # wall time it took
    cpu: StageCPU  # where the CPU time went


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
    return h264_options(
        opts.preset,
        qp=opts.qp,
        crf=opts.crf,
        threads=1,
        bframes=opts.multiview_bframes if multiview else None,
    )


def _writer(
    path: Path, size: tuple[int, int], plan: ProxyPlan, title: str, x264: dict[str, str]
) -> H264Writer:
    """An MP4 at the plan's constant rate, with the start timecode in its metadata."""
    fps = plan.grid.rate
    return H264Writer(
        path,
        size,
        rate=fps,
        time_base=Fraction(1) / fps,
        x264=x264,
        container="mp4",
        metadata={"timecode": plan.start_timecode, "title": title},
        stream_metadata=True,
    )


def make_proxies(
    take_dir: Path,
    opts: ProxyOptions = DEFAULT_OPTIONS,
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
    _warn = WarningLog(warn)

    if manifest.state == "recording":
        _warn(
            f"take {manifest.take_id} was not finished (state {manifest.state!r}): it is "
            "being recorded, or its recorder stopped without finishing it; making proxies "
            f"of what is there. If no recorder is running, 'mmrec repair {take_dir}' "
            "finalizes it"
        )
    dec = decoder or default_decoder()
    out_dir = Path(opts.out) if opts.out else take_dir / "proxies"
    with map_exceptions(_WRITE_ERRORS, f"cannot create {out_dir}"):
        out_dir.mkdir(parents=True, exist_ok=True)
    cams = read_cameras(take_dir, manifest, _warn)
    if not cams:
        raise TakeError(f"{take_dir}: no camera has any readable frame")
    # on the export's grid, named as the export names the MOVs (after the camera's
    # folder): an editor relinks proxy and original by name, timecode and length
    grid = take_grid(
        manifest.day_clock, [(c.frames.entry.rate, c.frames.times) for c in cams], opts.fps
    ).grid
    if opts.cameras:  # on the whole take's grid, only these
        cams = [c for c in cams if c.name in opts.cameras or c.frames.entry.dir in opts.cameras]
        if not cams:
            raise TakeError(f"{take_dir}: none of {', '.join(opts.cameras)} has readable frames")
    plan = plan_proxies(grid, [c.frames.times for c in cams], [c.size for c in cams], opts)
    stems = [c.frames.entry.dir for c in cams]
    files = [out_dir / f"{n}.mp4" for n in stems]
    readers = [CameraReader(c) for c in cams]
    # the take-wide files give way to a camera of the same name
    mv_path = out_dir / f"{unique_name('multiview', stems)}.mp4"
    run = _Run(plan, [c.name for c in cams], files, mv_path, opts, dec)
    sheet = out_dir / f"{unique_name('contact-sheet', stems)}.jpg" if opts.contact_sheet else None
    try:
        contact_cpu = run.render(readers, sheet, progress)
    finally:
        for r in readers:
            r.close()
    for c in cams:
        for w in c.frames.warnings:
            _warn(w)
        if c.frames.missing:
            _warn(
                f"camera {c.name!r}: {c.frames.missing} frame(s) in the index are not in "
                "its segments; NO SIGNAL there"
            )
    cpu = run.cpu()
    return ProxyResult(
        out_dir=out_dir,
        cameras=tuple(
            CameraProxy(s.name, p, s.size, r.read, s.decoded, s.errors, s.gaps)
            for s, p, r in zip(run.strands, files, readers, strict=True)
        ),
        multiview=run.mv.writer.path if run.mv is not None else None,
        contact_sheet=sheet,
        frames=grid.frames,
        fps=grid.rate,
        start_ns=grid.start_ns,
        duration_s=grid.duration_s,
        start_timecode=plan.start_timecode,
        warnings=tuple(_warn.texts),
        seconds=time.perf_counter() - started,
        cpu=StageCPU(
            time.thread_time() - cpu_main - contact_cpu, cpu[0], cpu[1] + contact_cpu, cpu[2]
        ),
    )


class _Run:
    """One pass over the plan: the files open, the threads, the contact sheet."""

    def __init__(
        self,
        plan: ProxyPlan,
        names: list[str],
        files: list[Path],
        mv_path: Path,
        opts: ProxyOptions,
        dec: Decoder,
    ) -> None:
        self.plan = plan
        self.names = names
        self.dec = dec
        self.writers: list[H264Writer] = []
        self.mv: Multiview | None = None
        self.pipeline: Pipeline | None = None
        try:
            for name, path, size in zip(names, files, plan.sizes, strict=True):
                self.writers.append(_writer(path, size, plan, name, x264_options(opts)))
            if plan.multiview_size is not None:
                x264 = x264_options(opts, multiview=True)
                self.writers.append(_writer(mv_path, plan.multiview_size, plan, "multiview", x264))
                self.mv = Multiview(names, plan.multiview_size, self.writers[-1])
            self.strands = [
                CameraStrand(i, name, plan, self.writers[i], dec, self.mv)
                for i, name in enumerate(names)
            ]
            self.pipeline = Pipeline(
                self.strands, self.mv, max(1, opts.threads), opts.window, plan.contact_k
            )
        except BaseException:
            self._close()
            raise

    def render(
        self,
        cameras: list[CameraReader],
        sheet: Path | None,
        progress: Callable[[int, int], None] | None,
    ) -> float:
        """Every output frame of the plan, from these cameras' frames; the contact sheet if
        ``sheet``. Returns the contact sheet's CPU seconds."""
        assert self.pipeline is not None
        contact_cpu: float | None = None
        try:
            for out in self.plan.frames(cameras):
                self.pipeline.add(out)
                if sheet is not None and contact_cpu is None and self.pipeline.contact_ready:
                    # the main thread has time while the workers draw and encode
                    contact_cpu = self._contact_sheet(sheet)
                if progress is not None:
                    progress(out.k + 1, self.plan.grid.frames)
            self.pipeline.finish()
            for wr in self.writers:
                wr.close()
        finally:
            self._close()
        if sheet is not None and contact_cpu is None:
            contact_cpu = self._contact_sheet(sheet)
        return contact_cpu or 0.0

    def cpu(self) -> list[float]:
        """Decode, compose and encode CPU seconds of the workers (and the multiview)."""
        assert self.pipeline is not None
        cpu = [sum(c[j] for c in self.pipeline.cpu) for j in range(3)]
        if self.mv is not None:
            cpu[1] += self.mv.cpu[0]
            cpu[2] += self.mv.cpu[1]
        return cpu

    def _contact_sheet(self, sheet: Path) -> float:
        c0 = time.thread_time()
        k, grid = self.plan.contact_k, self.plan.grid
        write_contact_sheet(
            sheet,
            self.names,
            [s.contact for s in self.strands],
            self.dec,
            self.plan.timecode(k),
            (grid.begin(k) - grid.start_ns) / NS,
        )
        return time.thread_time() - c0

    def _close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
        for wr in self.writers:  # after an error: finalize what was written
            with contextlib.suppress(Exception):
                wr.close()
