"""The on-disk layout of a take: its folders, segments and manifest, and reading them back.

A take is one recording session::

    OUT/<take-id>/manifest.json          written at start, kept current, final at the end
    OUT/<take-id>/<camera>/seg-0000.mkv  Matroska, JPEG passthrough, one per segment
    OUT/<take-id>/<camera>/index.csv     one line per frame written  } mmrec.store.index:
    OUT/<take-id>/<camera>/probes.csv    its /status clock probes    } columns, reading

With relay folders (``mmrec record --relay DIR``) a take continues in ``DIR/<take-id>/``
when the first folder fills up: the same take id, segments numbered on, and a manifest
in every folder. Paths in a manifest are relative to its own take folder for files in
it, absolute for files in another (``relays`` lists those folders), so ``take_dir / path``
finds every file from any copy (:func:`resolve`); a camera's ``index`` is always one
file with every row (it moves along with the camera, the old one is left as it was).

Invariants:
- Every camera's pts are on one take timeline: pts 0 is the instant ``start_realtime_ns``
  (host CLOCK_REALTIME), in units of ``time_base`` (1/100000 s since mmrec-take/2: the
  frame's time rounded to 10 µs; takes of mmrec-take/1 counted whole milliseconds).
  pts are strictly increasing per camera across all its segments.
- ``index.csv`` keeps timing at full resolution (ns): ``time_ns`` is the frame's time on
  the take timeline (aligned capture time when the clock model has it, else arrival),
  ``arrival_ns`` the arrival time on the same timeline, ``device_ts`` the part's
  ``X-Timestamp`` exactly as received, ``conn`` the connection that brought it. After the
  take, the whole-take clock refinement (:mod:`mmrec.timeline.refined`) adds
  ``refined_ns``: each frame's best capture time, from all of the camera's evidence before
  and after it. Readers take ``refined_ns`` when a take has it (``IndexRow.best_ns``);
  the live ``time_ns`` stays, and the segments' pts are the live times (the manifest's
  ``pts_from`` says so).
- ``probes.csv`` keeps every ``/status`` round trip the camera answered during the take
  and up to ``PROBE_LEAD_NS`` before it, on the take timeline: what the refinement needs
  besides the index.
- Each segment's ``TIMECODE`` tag is the time-of-day timecode of its own first frame,
  counted at the camera's ``nominal_rate`` (30 when unknown) in the take's zone
  (``utc_offset_s``): see :mod:`mmrec.timeline.timecode`.
- The manifest is replaced atomically (write to a temporary file, fsync, rename), so a crash
  always leaves a complete manifest of a moment shortly before it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from mmrec.errors import (
    ConfigError,
    RecordingError,
    TakeError,
    map_exceptions,
)
from mmrec.store.index import TAKE_ERRORS
from mmrec.timeline.timecode import DayClock, day_clock, time_of_day_at_start, time_of_day_ns

FORMAT: Final = "mmrec-take/2"
READABLE_FORMATS: Final = ("mmrec-take/1", FORMAT)  # /1: pts in ms, no zone or rates
TIME_BASE: Final = Fraction(1, 100_000)  # pts unit: 10 µs (see mmrec.store.mkv)
TICK_NS: Final = 10_000  # ns per pts unit
MANIFEST: Final = "manifest.json"
PROBE_LEAD_NS: Final = 10_000_000_000  # probes kept from this long before the take's start


_SEGMENT_NAME: Final = re.compile(r"seg-(\d+)\.mkv")


def segment_name(n: int) -> str:
    return f"seg-{n:04d}.mkv"


@dataclass(frozen=True, slots=True)
class ClockInfo:
    """How a camera's frames were put on the take timeline (see mmrec.timeline.clock)."""

    source: str  # "device+probe", "device" or "arrival"
    offset_ns: int | None = None  # device clock minus recorder wall clock (+: device ahead)
    drift_ppm: float | None = None
    uncertainty_ns: int | None = None
    warmup_frames: int = 0
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    probes: int = 0  # /status clock probes answered (session-wide: the feed's count)
    note: str | None = None  # what a reader should know (e.g. the node has no /status clock)


@dataclass(frozen=True, slots=True)
class RefinedSegment:
    """A run of frames with one continuous device clock and link, as the refinement fit it."""

    first: int  # index of its first frame (row order in index.csv)
    frames: int
    cause: str  # why it begins: "start", "connection", "step"
    drift_ppm: float
    uncertainty_ns: int
    probes: int  # probes that measured it


@dataclass(frozen=True, slots=True)
class RefinedClock:
    """The whole-take refinement of one camera's clock (``refined_ns`` in its index).

    ``maps_to`` says what ``refined_ns`` means: "capture" (the capture instant: probes
    measured the min delay), "capture+min_delay" (no /status clock: capture plus the
    camera's unknown minimum delay) or "arrival" (no device timestamps). ``shift_*`` say
    how far the refined times moved from the live ``time_ns`` (the segments' pts).
    """

    source: str  # "device+probe", "device" or "arrival"
    maps_to: str
    uncertainty_ns: int
    drift_ppm: float | None
    min_delay_ns: int | None
    offset_ns: int | None  # device clock minus recorder wall clock at the first frame
    probes_used: int
    probes_dropped: int
    outliers: int
    segments: tuple[RefinedSegment, ...]
    shift_p50_ns: int  # |refined_ns - time_ns|: median ...
    shift_max_ns: int  # ... and largest
    cpu_s: float  # CPU time the refinement of this camera took (reading and writing included)
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CameraEntry:
    """One camera in the manifest."""

    name: str
    dir: str
    url: str
    model: str | None = None
    role: str | None = None
    segments: tuple[str, ...] = ()
    index: str = ""
    frames: int = 0
    bytes: int = 0
    dropped: int = 0
    reconnects: int = 0
    skipped_parts: int = 0
    # JPEGs by what was wrong with them (each also counted in ``frames`` if written):
    truncated: int = 0  # cut short (no EOI), written as received
    trailing: int = 0  # bytes after their EOI, written as received (not trimmed)
    stubs: int = 0  # no picture header that can be read (an SOI alone...): not written
    bad_size: int = 0  # header claims an absurd size (> 8192 a side...): written as received
    width: int | None = None
    height: int | None = None
    first_pts: int | None = None
    last_pts: int | None = None
    state: str = "new"
    slow: bool = False  # streaming far below its rate now (an alert event says since when)
    last_error: str | None = None
    clock: ClockInfo | None = None
    gaps: tuple[tuple[int, int], ...] = ()  # (from_ns, to_ns) on the take timeline: not connected
    io: str | None = None  # how the open segment is written: "direct" (O_DIRECT) or "buffered"
    # Writing (mmrec.store.health.WriteState): "writing", "disk-full", "folder-gone", ...
    write_state: str = "idle"
    lost: int = 0  # of ``dropped``, lost to the disk: disk full, I/O error, folder gone
    # (cause, frames): disk-full, folder-gone, io-error, queue-full (the disk fell behind)
    lost_causes: tuple[tuple[str, int], ...] = ()
    write_gaps: tuple[tuple[int, int, str], ...] = ()  # (from_ns, to_ns, cause): not written
    connections: int = 0  # connections that streamed during the take
    fps: float | None = None  # frames per second while frames came (gaps left out)
    # what the camera's part of the take amounts to (mmrec.session.outcome): complete,
    # gaps, lost or nothing, and the same in words
    outcome: str | None = None
    outcome_detail: str | None = None
    probes: str | None = None  # the camera's probes.csv, relative to the take folder
    refined: RefinedClock | None = None  # set after the take by the whole-take refinement
    # The rate the camera says it runs at (its /status fps, as an exact rate: "30000/1001");
    # its segments' timecode counts at it (30 when None).
    nominal_rate: str | None = None

    @property
    def rate(self) -> Fraction | None:
        """``nominal_rate`` as a rate (None if unknown or unreadable)."""
        try:
            return Fraction(self.nominal_rate) if self.nominal_rate else None
        except (ValueError, ZeroDivisionError):
            return None


@dataclass(frozen=True, slots=True)
class PreviewInfo:
    """What the live preview did during the take."""

    file: str  # relative to the take folder
    fps: float  # achieved mosaic rate
    ticks: int
    tiles_decoded: int
    tiles_skipped: int  # over the CPU budget: recording has priority
    late_ticks: int
    error: str | None = None
    refused: int = 0  # frames not decoded: their header claims an absurd size (BAD JPEG tile)


@dataclass(frozen=True, slots=True)
class DiskInfo:
    """One output folder's disk, as last checked (every second while recording)."""

    folder: str  # the take folder on this disk (absolute)
    free_bytes: int | None  # None: cannot be read (the folder is gone)
    total_bytes: int | None
    rate_bps: float  # bytes per second being written to it (measured over the last seconds)
    seconds_left: float | None  # free / rate; None when nothing is being written
    state: str  # "ok", "low", "critical", "full", "gone", "read-only"


@dataclass(frozen=True, slots=True)
class Recovery:
    """What ``mmrec repair`` found and fixed (the take's state is then "recovered")."""

    repaired_utc: str
    tool: str
    fixed: tuple[str, ...]  # one line per thing fixed, naming the camera and file


@dataclass(frozen=True, slots=True)
class TakeEvent:
    """Something that happened during the take, at ``t_ns`` on the take timeline."""

    t_ns: int
    kind: str  # connected, disconnected, gap, clock, disk, alert, node, take, note, ...
    detail: str
    camera: str | None = None


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One recorder host of a cluster take (``mmrec record --cluster``; see
    :mod:`mmrec.cluster.merge`): where its part is, and how its clock was mapped."""

    name: str
    dir: str  # its own take folder (relative to this take's folder, or absolute)
    state: str  # finished, recording (it died or was cut off mid-take), failed, missing
    cameras: tuple[str, ...] = ()
    clock_offset_ns: int | None = None  # reference minus host monotonic, at the start
    clock_drift_ppm: float | None = None
    clock_uncertainty_ns: int | None = None  # NTP-style probes' half round trip + residual
    clock_samples: int = 0
    chrony_uncertainty_ns: int | None = None  # chrony's bound on its wall clock, if any
    note: str | None = None  # what is missing, in words


@dataclass(frozen=True, slots=True)
class Manifest:
    take_id: str
    started_utc: str
    start_realtime_ns: int
    timecode: str
    cameras: tuple[CameraEntry, ...] = ()
    # "recording" -> "finished" (a crash leaves "recording"; ``mmrec repair`` -> "recovered")
    state: str = "recording"
    ended_utc: str | None = None
    duration_ns: int | None = None
    format: str = FORMAT
    time_base: str = str(TIME_BASE)
    tool: dict[str, str] = field(default_factory=dict)
    preview: PreviewInfo | None = None
    events: tuple[TakeEvent, ...] = ()  # in order of time
    relays: tuple[str, ...] = ()  # the take's folders in relay output folders (absolute)
    disk: tuple[DiskInfo, ...] = ()  # every output folder's disk, first one first
    seconds_left: float | None = None  # recording time left on all of them at the current rate
    recovery: Recovery | None = None
    outcome: str | None = None  # the worst of the cameras' outcomes (nothing: no camera)
    outcome_detail: str | None = None
    # Which index column the segments' pts were written from: the live time. The refined
    # time (index column refined_ns, per camera ``refined``) is better; export and the
    # proxies use it, the segment files are not rewritten.
    pts_from: str = "time_ns"
    # The recorder's local zone at the start: the timecodes are its time of day.
    utc_offset_s: int | None = None  # east of UTC positive (None: a mmrec-take/1 take)
    zone: str | None = None  # its abbreviation, for people ("CEST")
    # A cluster take's recorder hosts (mmrec.cluster.merge); () for a one-host take.
    hosts: tuple[HostEntry, ...] = ()

    def time_of_day_ns(self) -> int:
        """Local time of day (ns since midnight) at take time 0: from the recorded zone,
        else (mmrec-take/1) inferred from the wall clock and the take's timecode."""
        if self.utc_offset_s is not None:
            return time_of_day_ns(self.start_realtime_ns, self.utc_offset_s)
        try:
            return time_of_day_at_start(self.timecode, self.start_realtime_ns)
        except ConfigError as exc:
            raise TakeError(f"take {self.take_id}: {exc}") from exc

    def day_clock(self, rate: Fraction) -> DayClock:
        """Time-of-day frame labels at ``rate`` for this take's instants."""
        return day_clock(self.time_of_day_ns(), rate)

    @property
    def ticks_per_second(self) -> int:
        """pts units per second (``time_base`` is 1/N)."""
        return Fraction(self.time_base).denominator

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @staticmethod
    def from_json(text: str) -> Manifest:
        raw = json.loads(text)
        if raw.get("format") not in READABLE_FORMATS:
            raise TakeError(f"not an mmrec take manifest (format {raw.get('format')!r})")
        cams = []
        for c in raw.get("cameras", []):
            clock = c.get("clock")
            c = dict(c)
            c["clock"] = ClockInfo(**clock) if clock else None
            refined = c.get("refined")
            if refined:
                segs = tuple(RefinedSegment(**g) for g in refined.get("segments", ()))
                c["refined"] = RefinedClock(**{**refined, "segments": segs})
            c["segments"] = tuple(c.get("segments", ()))
            c["gaps"] = tuple(tuple(g) for g in c.get("gaps", ()))
            c["lost_causes"] = tuple(tuple(g) for g in c.get("lost_causes", ()))
            c["write_gaps"] = tuple(tuple(g) for g in c.get("write_gaps", ()))
            cams.append(CameraEntry(**c))
        raw["cameras"] = tuple(cams)
        if raw.get("preview"):
            raw["preview"] = PreviewInfo(**raw["preview"])
        raw["relays"] = tuple(raw.get("relays", ()))
        raw["hosts"] = tuple(
            HostEntry(**{**h, "cameras": tuple(h.get("cameras", ()))}) for h in raw.get("hosts", ())
        )
        raw["disk"] = tuple(DiskInfo(**d) for d in raw.get("disk", ()))
        if raw.get("recovery"):
            rec = dict(raw["recovery"])
            rec["fixed"] = tuple(rec.get("fixed", ()))
            raw["recovery"] = Recovery(**rec)
        raw["events"] = tuple(
            TakeEvent(**e) if isinstance(e, dict) else TakeEvent(0, "note", str(e))
            for e in raw.get("events", ())
        )
        return Manifest(**raw)


def resolve(take_dir: Path, path: str) -> Path:
    """A path from a manifest (relative to its take folder, or absolute) as a real path."""
    return Path(take_dir) / path


def rebase(manifest: Manifest, from_dir: Path, to_dir: Path) -> Manifest:
    """``manifest`` (paths relative to ``from_dir``) as a copy in ``to_dir`` says it:
    files inside ``to_dir`` relative to it, all others absolute."""
    to_dir = Path(os.path.abspath(to_dir))

    def move(path: str) -> str:
        full = Path(os.path.abspath(Path(from_dir) / path))
        return str(full.relative_to(to_dir)) if full.is_relative_to(to_dir) else str(full)

    cams = tuple(
        replace(
            c,
            segments=tuple(move(s) for s in c.segments),
            index=move(c.index) if c.index else c.index,
            probes=move(c.probes) if c.probes else c.probes,
        )
        for c in manifest.cameras
    )
    relays = tuple(r for r in (*manifest.relays, os.path.abspath(from_dir)) if Path(r) != to_dir)
    return replace(manifest, cameras=cams, relays=tuple(dict.fromkeys(relays)))


def camera_segments(take_dir: Path, cam: CameraEntry, relays: tuple[str, ...] = ()) -> list[Path]:
    """Every segment file of ``cam``, in order: those the manifest names, and those found
    in the camera's folders (the take's and each relay folder's), since after a crash the
    manifest may lag the files by a moment."""
    found = {Path(os.path.abspath(resolve(take_dir, s))) for s in cam.segments}
    for folder in (Path(take_dir), *map(Path, relays)):
        cam_dir = folder / cam.dir
        if cam_dir.is_dir():
            found |= {Path(os.path.abspath(p)) for p in cam_dir.glob("seg-*.mkv")}
    return sorted(found, key=lambda p: (segment_number(p), str(p)))


def segment_number(path: Path) -> int:
    """The NNNN of ``seg-NNNN.mkv`` (numbered per camera across every folder); -1 if none."""
    m = _SEGMENT_NAME.fullmatch(path.name)
    return int(m.group(1)) if m else -1


def write_manifest(take_dir: Path, manifest: Manifest) -> None:
    """Atomically replace ``manifest.json`` (temp file, fsync, rename)."""
    # a name of its own per writer thread: two writes never share a temporary file
    tmp = take_dir / f"{MANIFEST}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(manifest.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, take_dir / MANIFEST)
    except OSError as exc:
        raise RecordingError(f"cannot write {take_dir / MANIFEST}: {exc.strerror}") from exc


def load_manifest(take_dir: Path) -> Manifest:
    """The take's manifest; :class:`TakeError` if there is none or it cannot be read."""
    path = Path(take_dir) / MANIFEST
    if not Path(take_dir).is_dir():
        what = "not a folder" if Path(take_dir).exists() else "no such folder"
        raise TakeError(f"{take_dir}: {what}; a take is a folder with a {MANIFEST}")
    with map_exceptions(TAKE_ERRORS, f"{path}: unreadable manifest"):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise TakeError(f"{take_dir}: no {MANIFEST} here; is this a take folder?") from exc
        return Manifest.from_json(text)


def to_jsonable(obj: Any) -> Any:
    """A dataclass (or tuple of them) as plain JSON types, for --json output."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: to_jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, frozenset | set):
        return sorted(to_jsonable(v) for v in obj)
    return obj
