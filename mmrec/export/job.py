"""One export of a take: plan the grid, write every camera's MOV, then the timelines.

1. Read the manifest and each chosen camera's index (times only, through the one take
   reader, :mod:`mmrec.store.reader`): refuse a take still in ``recording`` state unless
   asked (a crash leaves that; ``mmrec repair`` finalizes it).
2. The take's grid (:func:`mmrec.timeline.grid.take_grid`, shared with the proxies so
   they relink): the rate
   (given, else what the cameras said they run at, else measured), the time-of-day grid
   covering every chosen camera's frames, cut to ``--in``/``--out``; per camera, the slot
   plan (:mod:`mmrec.timeline.slots`).
3. Per camera, in ``threads`` threads: demux its segments, mux the planned packets into its
   MOV (a filler where the plan or a missing packet says so). Byte moving only; PyAV
   releases the GIL while it reads and writes.
4. The OTIO timeline from what was written, in each asked format; ``export.json`` last.

Every file is written under a temporary name and renamed when whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from mmrec.errors import MmrecError, RecordingError, TakeError
from mmrec.export.filler import filler_jpeg, turbojpeg
from mmrec.export.manifest import CameraRecord, ExportManifest, write_manifest
from mmrec.export.mov import MovWriter, packet
from mmrec.export.timeline import TrackSpec, build_timeline, load_adapters, write_timelines
from mmrec.store.reader import CameraFrames, WarningLog, open_cameras
from mmrec.store.take import CameraEntry, Manifest, load_manifest
from mmrec.timeline.grid import FrameGrid, take_grid
from mmrec.timeline.rate import NS
from mmrec.timeline.slots import FILLER_SLOT, CameraPlan, SlotKind, plan_camera, runs

DEFAULT_FORMATS: Final = ("mov", "xml", "fcpxml", "edl", "otio", "mlt")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    cameras: tuple[str, ...] = ()  # names or folders; empty: every camera
    in_point: str | None = None  # timecode or seconds from the take's start
    out_point: str | None = None  # exclusive
    out: Path | None = None  # default: TAKE_DIR/export
    formats: tuple[str, ...] = DEFAULT_FORMATS
    fps: Fraction | None = None  # default: the cameras' nominal rate, else measured
    hold_s: float = 0.5  # a picture is held (repeat) at most this long, then the filler
    unfinished: bool = False  # export a take left in "recording" state as it is
    threads: int = 2


@dataclass(frozen=True, slots=True)
class CameraExport:
    camera: str
    file: Path | None
    size: tuple[int, int]
    slots: int
    fresh: int
    repeats: int
    fillers: int
    frames_skipped: int
    missing_packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ExportResult:
    out_dir: Path
    take_id: str
    rate: Fraction
    rate_from: str  # "given", "nominal" (the cameras said) or "measured"
    start_timecode: str
    frames: int
    duration_s: float
    cameras: tuple[CameraExport, ...]
    timelines: tuple[Path, ...]
    manifest: Path
    warnings: tuple[str, ...]
    seconds: float  # wall time
    cpu_s: float  # process CPU time spent


class ExportCancelled(MmrecError):
    """Another camera's export failed; this one stopped and removed its partial file."""


@dataclass
class _Camera:
    source: CameraFrames
    plan: CameraPlan
    size: tuple[int, int]
    subsampling: int
    file: Path
    kinds: list[SlotKind] = field(default_factory=list)
    bytes: int = 0
    missing: int = 0


def _fmt_ranges(r: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((a, b) for a, b in r)


def check_take(manifest: Manifest, take_dir: Path, unfinished: bool) -> str | None:
    """None if the take can be exported; else why not (or a warning if ``unfinished``)."""
    if manifest.state in ("finished", "recovered"):  # recovered: finished by mmrec repair
        return None
    text = (
        f"take {manifest.take_id} is in state {manifest.state!r}, not 'finished': it is being "
        "recorded right now, or its recorder stopped without finishing it (a crash, a power "
        f"cut). If no recorder is running, 'mmrec repair {take_dir}' finalizes it; or export "
        "what is on disk with --unfinished"
    )
    if not unfinished:
        raise TakeError(text)
    return (
        f"take {manifest.take_id} was not finished (state {manifest.state!r}); "
        "exported what is on disk"
    )


def _format(src: CameraFrames) -> tuple[tuple[int, int], int] | None:
    """Size and chroma subsampling from the camera's first readable JPEG."""
    tj = turbojpeg()
    with contextlib.closing(src.packets()) as packets:
        for _, pkt in packets:
            if pkt is None:
                continue
            try:
                w, h, sub, _ = tj.decode_header(bytes(pkt))
            except OSError:
                continue
            return (int(w), int(h)), int(sub)
    return None


def _warm_slot(src: CameraFrames, grid: FrameGrid, instants: Sequence[int]) -> int | None:
    clock = src.entry.clock
    warm = clock.warmup_frames if clock else 0
    if src.time_column != "time_ns" or warm <= 0:
        return 0
    if warm >= len(src.times):
        return None
    t = src.times[warm]
    return next((k for k, i in enumerate(instants) if i >= t), None)


def export_take(
    take_dir: Path,
    opts: ExportOptions = ExportOptions(),
    *,
    progress: Callable[[int, int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``take_dir``; see the module docstring."""
    started = time.perf_counter()
    cpu0 = time.process_time()
    take_dir = Path(take_dir)
    manifest = load_manifest(take_dir)
    _warn = WarningLog(warn)

    note = check_take(manifest, take_dir, opts.unfinished)
    if note:
        _warn(note)
    sources = []
    for src in open_cameras(take_dir, manifest, opts.cameras):
        for w in src.warnings:
            _warn(w)
        src.warnings.clear()
        if not src.times:
            _warn(f"camera {src.name!r}: no frames recorded; not exported")
            continue
        sources.append(src)
    if not sources:
        raise TakeError(f"{take_dir}: no chosen camera has any frame to export")

    chosen = take_grid(
        manifest.day_clock,
        [(s.entry.rate, s.times) for s in sources],
        opts.fps,
        opts.in_point,
        opts.out_point,
    )
    grid, rate = chosen.grid, chosen.grid.rate
    if chosen.rate_from == "default":
        _warn(f"could not tell or measure the frame rate; exporting at {rate}")
    instants = grid.instants()
    hold_ns = int(opts.hold_s * NS)

    out_dir = Path(opts.out) if opts.out else take_dir / "export"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(f"cannot create {out_dir}: {exc.strerror}") from exc

    cams: list[_Camera] = []
    for src in sources:
        fmt = _format(src)
        src.warnings.clear()  # the main pass reads the same packets again and reports
        if fmt is None:
            _warn(f"camera {src.name!r}: no readable JPEG in its segments; not exported")
            continue
        size, sub = fmt
        plan = plan_camera(src.times, grid, hold_ns, instants)
        # named after the camera's folder, as its proxy is: an editor relinks them by name
        cams.append(_Camera(src, plan, size, sub, out_dir / f"{src.entry.dir}.mov"))
    if not cams:
        raise TakeError(f"{take_dir}: no chosen camera has a readable frame")

    if "mov" in opts.formats:
        # the timeline adapters load (~0.1 s, once a process) while the MOVs are written
        _write_movs(
            cams, grid, manifest, opts.threads, progress, lambda: load_adapters(opts.formats)
        )
    else:
        for c in cams:
            c.kinds = list(c.plan.kinds)
            if not c.file.exists():
                _warn(f"camera {c.source.name!r}: {c.file.name} does not exist (no 'mov' asked)")
    for c in cams:
        for w in c.source.warnings:
            _warn(w)
        if c.missing:
            _warn(
                f"camera {c.source.name!r}: {c.missing} frame(s) in the index are not in "
                "its segments; their slots show the filler"
            )

    column = sources[0].time_column
    clocks = {c.source.name: _clock(c.source.entry) for c in cams}
    meta = {
        "take_id": manifest.take_id,
        "take_dir": str(take_dir.resolve()),
        "started_utc": manifest.started_utc,
        "rate": str(rate),
        "rate_from": chosen.rate_from,
        "start_timecode": grid.timecode,
        "start_ns": grid.start_ns,
        "time_column": column,
        "clock": clocks,
    }
    specs = [
        TrackSpec(
            c.source.name,
            c.file,
            c.size,
            c.kinds,
            {"camera": c.source.name, "take_id": manifest.take_id, "clock": clocks[c.source.name]},
        )
        for c in cams
    ]
    tl = build_timeline(manifest.take_id, grid, specs, meta)
    timelines = write_timelines(tl, opts.formats, out_dir, _stem(manifest.take_id))

    records = []
    results = []
    for c in cams:
        repeats = list(runs(c.kinds, SlotKind.REPEAT))
        fillers = list(runs(c.kinds, SlotKind.FILLER))
        fresh = sum(1 for k in c.kinds if k is SlotKind.FRESH)
        written = "mov" in opts.formats
        records.append(
            CameraRecord(
                name=c.source.name,
                dir=c.source.entry.dir,
                file=c.file.name if written or c.file.exists() else None,
                width=c.size[0],
                height=c.size[1],
                slots=grid.frames,
                fresh=fresh,
                repeat_slots=_fmt_ranges(repeats),
                filler_slots=_fmt_ranges(fillers),
                frames_shown=c.plan.frames_shown,
                frames_skipped=c.plan.frames_skipped,
                missing_packets=c.missing,
                warm_from_slot=_warm_slot(c.source, grid, instants),
                bytes=c.bytes,
                clock=clocks[c.source.name],
            )
        )
        results.append(
            CameraExport(
                c.source.name,
                c.file if written else None,
                c.size,
                grid.frames,
                fresh,
                sum(b - a + 1 for a, b in repeats),
                sum(b - a + 1 for a, b in fillers),
                c.plan.frames_skipped,
                c.missing,
                c.bytes,
            )
        )
    record = ExportManifest(
        take_id=manifest.take_id,
        take_dir=str(take_dir.resolve()),
        created_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        rate=str(rate),
        rate_from=chosen.rate_from,
        start_timecode=grid.timecode,
        frames=grid.frames,
        duration_s=grid.duration_s,
        start_ns=grid.start_ns,
        period_ns=float(grid.period),
        hold_s=opts.hold_s,
        time_column=column,
        utc_offset_s=manifest.utc_offset_s,
        cameras=tuple(records),
        timelines=tuple(p.name for p in timelines),
        warnings=tuple(_warn.texts),
    )
    path = write_manifest(out_dir, record)
    return ExportResult(
        out_dir=out_dir,
        take_id=manifest.take_id,
        rate=rate,
        rate_from=chosen.rate_from,
        start_timecode=grid.timecode,
        frames=grid.frames,
        duration_s=grid.duration_s,
        cameras=tuple(results),
        timelines=tuple(timelines),
        manifest=path,
        warnings=tuple(_warn.texts),
        seconds=time.perf_counter() - started,
        cpu_s=time.process_time() - cpu0,
    )


def _stem(take_id: str) -> str:
    from mmrec.store.names import safe_name

    return safe_name(take_id)


def _clock(entry: CameraEntry) -> dict[str, Any] | None:
    return asdict(entry.clock) if entry.clock is not None else None


def _write_movs(
    cams: list[_Camera],
    grid: FrameGrid,
    manifest: Manifest,
    threads: int,
    progress: Callable[[int, int], None] | None,
    meanwhile: Callable[[], None] = lambda: None,
) -> None:
    """Write every camera's MOV in ``threads`` threads; the calling thread runs
    ``meanwhile`` while they write."""
    total = grid.frames * len(cams)
    done = 0
    lock = threading.Lock()
    stop = threading.Event()

    def advance(n: int) -> None:
        nonlocal done
        if progress is None:
            return
        with lock:
            done += n
            progress(done, total)

    def one(c: _Camera) -> None:
        try:
            _write_camera(c, grid, manifest, stop, advance)
        except BaseException:
            stop.set()
            raise

    with ThreadPoolExecutor(max(1, min(threads, len(cams))), "mmrec-export") as pool:
        futures = [pool.submit(one, c) for c in cams]
        try:
            meanwhile()
            errors = []
            for f in futures:
                try:
                    f.result()
                except ExportCancelled:
                    pass
                except BaseException as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
        finally:
            stop.set()


PROGRESS_EVERY: Final = 64  # slots between progress reports (a lock and a callback each)


def _write_camera(
    c: _Camera,
    grid: FrameGrid,
    manifest: Manifest,
    stop: threading.Event,
    advance: Callable[[int], None],
) -> None:
    src = c.source
    writer = MovWriter(
        c.file,
        c.size,
        grid.rate,
        grid.timecode,
        subsampling=c.subsampling,
        title=src.name,
        comment=f"mmrec take {manifest.take_id}, camera {src.name}",
    )
    filler = packet(filler_jpeg(src.name, *c.size, c.subsampling))
    packets = src.packets()
    row, pkt = -1, None
    kinds = list(c.plan.kinds)
    reported = 0
    try:
        for k, i in enumerate(c.plan.source):
            if k - reported >= PROGRESS_EVERY:
                if stop.is_set():
                    raise ExportCancelled(f"camera {src.name!r}: stopped")
                advance(k - reported)
                reported = k
            if i == FILLER_SLOT:
                writer.write(filler)
                continue
            while row < i:
                row, pkt = next(packets, (i, None))
            if pkt is None:
                kinds[k] = SlotKind.FILLER  # indexed, but its JPEG is not on disk
                writer.write(filler)
            else:
                writer.write(pkt)
        advance(len(c.plan.source) - reported)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        packets.close()
    c.kinds = kinds
    c.bytes = writer.bytes
    c.missing = src.missing
