"""The on-disk layout of a take, and reading it back.

A take is one recording session::

    OUT/<take-id>/manifest.json          written at start, kept current, final at the end
    OUT/<take-id>/<camera>/seg-0000.mkv  Matroska, JPEG passthrough, one per segment
    OUT/<take-id>/<camera>/index.csv     one line per frame written (see INDEX_COLUMNS)
    OUT/<take-id>/<camera>/probes.csv    the camera's /status clock probes (PROBE_COLUMNS)

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
  and after it. Readers take ``refined_ns`` when a take has it (:attr:`IndexRow.best_ns`);
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

import contextlib
import csv
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, TextIO

from mmrec.errors import (
    ConfigError,
    ExceptionMap,
    RecordingError,
    TakeError,
    map_exceptions,
    translate,
)
from mmrec.timeline.timecode import DayClock, day_clock, time_of_day_at_start, time_of_day_ns

FORMAT: Final = "mmrec-take/2"
READABLE_FORMATS: Final = ("mmrec-take/1", FORMAT)  # /1: pts in ms, no zone or rates
TIME_BASE: Final = Fraction(1, 100_000)  # pts unit: 10 µs (see mmrec.store.mkv)
TICK_NS: Final = 10_000  # ns per pts unit
MANIFEST: Final = "manifest.json"
INDEX: Final = "index.csv"
INDEX_COLUMNS: Final = (
    "seq",  # per-camera frame number, 0.. (frames written)
    "segment",  # segment number: <camera>/seg-<segment:04d>.mkv
    "pts",  # presentation timestamp in TIME_BASE units on the take timeline
    "time_ns",  # frame time on the take timeline, ns (aligned capture, else arrival)
    "arrival_ns",  # arrival of the frame's last byte on the take timeline, ns
    "device_ts",  # X-Timestamp as received ('' if none)
    "size",  # JPEG bytes
    "conn",  # connection number (a change: a new connection; frames may have been missed)
)
# Columns of takes written before ``conn`` existed; read as conn = None.
INDEX_COLUMNS_V1: Final = INDEX_COLUMNS[:7]
REFINED_COLUMN: Final = "refined_ns"  # added after the take (mmrec.timeline.refined)
PROBES: Final = "probes.csv"
PROBE_COLUMNS: Final = (
    "t0_ns",  # request written, take timeline (recorder clock), ns
    "device_ns",  # the node's clock in its answer (Unix ns on the device's clock)
    "t1_ns",  # first byte of the answer, take timeline, ns
)
PROBE_LEAD_NS: Final = 10_000_000_000  # probes kept from this long before the take's start


# Reading a take back: what can go wrong, and what it becomes (mmrec.errors.map_exceptions).
# UnicodeDecodeError and json's errors are ValueErrors; a field of the wrong shape is a
# TypeError (dataclass constructors); csv.Error is a line csv cannot read (a field past
# its limit).
_TAKE_ERRORS: Final[ExceptionMap] = {(OSError, ValueError, TypeError, csv.Error): TakeError}


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
    stubs: int = 0  # no picture header (an SOI alone, nothing to show): not written
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
    with map_exceptions(_TAKE_ERRORS, f"{path}: unreadable manifest"):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise TakeError(f"{take_dir}: no {MANIFEST} here; is this a take folder?") from exc
        return Manifest.from_json(text)


@dataclass(frozen=True, slots=True)
class IndexRow:
    seq: int
    segment: int
    pts: int
    time_ns: int
    arrival_ns: int
    device_ts: str
    size: int
    conn: int | None = None  # None: a take from before the column existed
    refined_ns: int | None = None  # None: the take has not been refined

    @property
    def best_ns(self) -> int:
        """The frame's best time on the take timeline: refined when the take has it."""
        return self.time_ns if self.refined_ns is None else self.refined_ns


def read_index(path: Path) -> Iterator[IndexRow]:
    """Rows of a camera's ``index.csv``; a last line cut short by a crash is skipped.

    Takes from before ``conn`` and ``refined_ns`` existed read with those None; columns
    this version does not know are ignored (a newer mmrec's take still reads). Raises
    :class:`FileNotFoundError` if there is none (the caller decides what a camera without
    an index means) and :class:`TakeError` if it cannot be read.
    """
    where = f"cannot read {path}"
    try:
        with open(path, newline="", encoding="utf-8") as f, map_exceptions(_TAKE_ERRORS, where):
            yield from _index_rows(f, path)
    except FileNotFoundError:
        raise
    except OSError as exc:  # from open(); what reading raises is mapped inside
        raise translate(exc, _TAKE_ERRORS, where) from exc


def _index_rows(f: TextIO, path: Path) -> Iterator[IndexRow]:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None:
        return
    cols = _index_columns(header, path)
    seq, seg, pts, time, arrival, device, size = cols.required
    conn, refined = cols.conn, cols.refined
    for row in reader:
        if len(row) != cols.width:
            continue  # a line cut short by a crash
        with contextlib.suppress(ValueError):
            yield IndexRow(
                int(row[seq]),
                int(row[seg]),
                int(row[pts]),
                int(row[time]),
                int(row[arrival]),
                row[device],
                int(row[size]),
                int(row[conn]) if conn >= 0 else None,
                int(row[refined]) if refined >= 0 and row[refined] else None,
            )


@dataclass(frozen=True, slots=True)
class _Columns:
    width: int
    required: tuple[int, ...]  # where each of INDEX_COLUMNS_V1 is
    conn: int  # -1: not there (a take from before the column)
    refined: int  # -1: not refined


def _index_columns(header: list[str], path: Path) -> _Columns:
    """Where each column is, by name (columns this version does not know are ignored);
    TakeError naming the missing ones if the header is not an index's."""
    where = {name: i for i, name in enumerate(header)}
    missing = [c for c in INDEX_COLUMNS_V1 if c not in where]
    if missing:
        raise TakeError(f"{path}: unexpected index columns {header} (no {', '.join(missing)})")
    return _Columns(
        len(header),
        tuple(where[c] for c in INDEX_COLUMNS_V1),
        where.get("conn", -1),
        where.get(REFINED_COLUMN, -1),
    )


@dataclass(frozen=True, slots=True, eq=False)
class IndexTable:
    """A camera's ``index.csv`` as written: the header and each row's fields, as text.

    For a tool that adds a column (the refinement) without touching any other: the rows
    are the ones :func:`read_index` yields, in the same order.
    """

    path: Path
    header: tuple[str, ...]
    rows: list[list[str]]

    def column(self, name: str) -> list[str]:
        """One column's fields; ValueError if the index has no such column."""
        i = self.header.index(name)
        return [r[i] for r in self.rows]


def read_index_table(path: Path) -> IndexTable:
    """The index at ``path`` as an :class:`IndexTable` (a line cut short by a crash is
    left out, as :func:`read_index` leaves it). :class:`FileNotFoundError` if there is
    none, :class:`TakeError` if it cannot be read."""
    where = f"cannot read {path}"
    rows: list[list[str]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f, map_exceptions(_TAKE_ERRORS, where):
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return IndexTable(path, INDEX_COLUMNS, [])
            cols = _index_columns(header, path)
            text = cols.required[5]  # device_ts: any text
            numeric = [i for i in cols.required if i != text]
            if cols.conn >= 0:  # (a refined_ns field is replaced, never a reason to drop a row)
                numeric.append(cols.conn)
            width = cols.width
            for row in reader:
                if len(row) != width:
                    continue
                try:
                    for i in numeric:
                        int(row[i])
                except ValueError:
                    continue
                rows.append(row)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise translate(exc, _TAKE_ERRORS, where) from exc
    return IndexTable(path, tuple(header), rows)


def write_refined(table: IndexTable, refined_ns: Sequence[int]) -> None:
    """Write ``table`` back with its ``refined_ns`` column set, one value per row (a column
    already there is replaced); every other field stays as written.

    Atomic: a temporary file, fsynced, renamed over the index; a crash leaves the old
    index or the new one, never a mix. :class:`RecordingError` if it cannot be written
    (the index is then unchanged), ValueError if the count differs from the rows'.
    """
    if len(refined_ns) != len(table.rows):
        raise ValueError(f"{table.path}: {len(table.rows)} rows, {len(refined_ns)} refined times")
    keep = [i for i, h in enumerate(table.header) if h != REFINED_COLUMN]
    header = [table.header[i] for i in keep] + [REFINED_COLUMN]
    path = table.path
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(
                [row[i] for i in keep] + [str(t)]
                for row, t in zip(table.rows, refined_ns, strict=True)
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RecordingError(f"cannot write {path}: {exc.strerror}") from exc


def read_probes(path: Path) -> list[tuple[int, int, int]]:
    """A camera's ``probes.csv`` as ``(t0_ns, device_ns, t1_ns)`` rows (a line cut short by
    a crash is skipped). :class:`FileNotFoundError` if there is none (a take from before
    probes were kept, or a camera that never answered one), :class:`TakeError` if it
    cannot be read."""
    where = f"cannot read {path}"
    out: list[tuple[int, int, int]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f, map_exceptions(_TAKE_ERRORS, where):
            reader = csv.reader(f)
            header = next(reader, None)
            if header is not None and tuple(header[:3]) != PROBE_COLUMNS:
                raise TakeError(f"{path}: unexpected probe columns {header}")
            for row in reader:
                with contextlib.suppress(ValueError, IndexError):
                    t0, dev, t1 = int(row[0]), int(row[1]), int(row[2])
                    if t1 >= t0:  # else a line cut short
                        out.append((t0, dev, t1))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise translate(exc, _TAKE_ERRORS, where) from exc
    return out


def to_jsonable(obj: Any) -> Any:
    """A dataclass (or tuple of them) as plain JSON types, for --json output."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: to_jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, frozenset | set):
        return sorted(to_jsonable(v) for v in obj)
    return obj
