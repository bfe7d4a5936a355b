"""Reading a take's cameras back: each frame's time and its JPEG, in order. The one reader
that export, proxies and tools share.

A camera's frames are its ``index.csv`` rows (read through
:func:`mmrec.store.index.read_index`), in capture order. Each row's time is its best
time column (:data:`TIME_COLUMNS`: the whole-take refinement where the take has it, else
the live aligned time), made strictly increasing. Its JPEG is the packet at the row's
pts in the row's segment: segments are demuxed in order (PyAV) and matched to the rows by
(segment, pts). The match allows for files that count coarser than the index (a PyAV
muxed take counts ms; the index 10 µs): a row's expected file pts is its pts rounded to
the file's time base and kept increasing, as the writer did.

What a crash or a damaged disk leaves is read as far as it goes, each oddity counted or
warned about, never fatal: a row whose packet is not in the file gives ``None`` (counted
in ``missing``); a packet without a row is skipped (``unindexed``); a segment that cannot
be opened or is cut short is a warning; a camera with no index is read from the packets'
own times (with a warning). An index that cannot be read at all is a
:class:`~mmrec.errors.TakeError` naming the camera. Packets are PyAV's own buffers,
handed on without a copy.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av

from mmrec.errors import ConfigError, TakeError
from mmrec.store.index import INDEX, IndexRow, read_index
from mmrec.store.take import CameraEntry, Manifest, camera_segments, resolve, segment_number

NS: Final = 1_000_000_000
# Columns of index.csv that give a frame's time on the take timeline, best first.
TIME_COLUMNS: Final = ("refined_ns", "time_ns")
NO_INDEX: Final = "pts"  # the time "column" of a camera read without an index

_READ_FAILURES: Final = (av.FFmpegError, OSError, EOFError)


class WarningLog:
    """The warnings of one job over a take: kept for its result, and each passed on to
    ``forward`` (the command's printer) as it comes."""

    def __init__(self, forward: Callable[[str], None] | None = None) -> None:
        self.texts: list[str] = []
        self._forward = forward

    def __call__(self, text: str) -> None:
        self.texts.append(text)
        if self._forward is not None:
            self._forward(text)


def row_time(row: IndexRow) -> tuple[int, str]:
    """The row's time (ns on the take timeline) and the column it came from."""
    if row.refined_ns is not None:
        return row.refined_ns, "refined_ns"
    return row.time_ns, "time_ns"


@dataclass
class CameraFrames:
    """One camera's frames as found on disk, in capture order; :meth:`packets` reads their
    JPEGs. Not thread-safe: one reader at a time (counters and warnings accumulate)."""

    entry: CameraEntry
    take_dir: Path
    rows: list[IndexRow]
    times: list[int]  # per row, ns on the take timeline, strictly increasing
    time_column: str  # "refined_ns", "time_ns", both ("refined_ns+time_ns") or NO_INDEX
    segments: list[Path]
    ticks_per_second: int  # the index's pts unit (the manifest's time base)
    warnings: list[str] = field(default_factory=list)
    missing: int = 0  # rows whose packet is not in the segments (this pass)
    unindexed: int = 0  # packets without a row (this pass)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def span(self) -> tuple[int, int] | None:
        """First and last frame time, or None without frames."""
        return (self.times[0], self.times[-1]) if self.times else None

    def packets(self) -> Generator[tuple[int, Any], None, None]:
        """``(row number, packet or None)`` for every row, in order. Counts ``missing`` and
        ``unindexed`` afresh for this pass."""
        self.missing = self.unindexed = 0
        by_segment: dict[int, deque[int]] = {}
        for i, r in enumerate(self.rows):
            by_segment.setdefault(r.segment, deque()).append(i)
        files = _numbered(self.segments)
        for seg in sorted(set(by_segment) | set(files)):
            todo = by_segment.get(seg, deque())
            path = files.get(seg)
            if path is not None:
                yield from self._segment_packets(path, todo)
            for i in todo:  # indexed, not in the file
                self.missing += 1
                yield i, None

    def packet_at(self, i: int) -> Any:
        """Row ``i``'s JPEG alone (an ``av.Packet``), found by seeking in its segment (Cues
        point to every cluster); None if it is not there. For one frame, not a pass."""
        row = self.rows[i]
        path = _numbered(self.segments).get(row.segment)
        if path is None:
            return None
        try:
            with av.open(str(path), "r") as container:
                stream = container.streams.video[0]
                tb = stream.time_base or Fraction(1, 1000)
                # the row's pts as the file counts it (as the writer did, from the
                # segment's first row: a coarser file rounds and bumps)
                expect = _FilePts(tb, self.ticks_per_second)
                want = row.pts
                for r in self.rows if not expect.same else ():
                    if r.segment == row.segment:
                        want = expect.of(r.pts)
                    if r is row:
                        break
                container.seek(want, stream=stream, backward=True, any_frame=True)
                for packet in container.demux(stream):
                    if packet.pts is None or not packet.size or packet.pts < want:
                        continue
                    return packet if packet.pts == want else None
        except (*_READ_FAILURES, IndexError):
            return None
        return None

    def _segment_packets(self, path: Path, todo: deque[int]) -> Iterator[tuple[int, Any]]:
        rows = self.rows
        with _demuxed(self, path) as found:
            if found is None:
                return
            packets, tb = found
            expect = _FilePts(tb, self.ticks_per_second)
            want = expect.of(rows[todo[0]].pts) if todo else 0
            for packet in packets:
                if packet.size == 0 or packet.pts is None:
                    continue
                pts = packet.pts
                while todo and want < pts:
                    self.missing += 1
                    yield todo.popleft(), None
                    want = expect.of(rows[todo[0]].pts) if todo else 0
                if todo and want == pts:
                    yield todo.popleft(), packet
                    want = expect.of(rows[todo[0]].pts) if todo else 0
                else:
                    self.unindexed += 1
                if not todo:
                    break


class _FilePts:
    """A row's pts as its segment file stores it: rounded to the file's time base and kept
    strictly increasing, as the writer did (identity when both count alike)."""

    def __init__(self, file_tb: Fraction, ticks_per_second: int) -> None:
        self._scale = file_tb * ticks_per_second  # index ticks per file unit
        self.same = self._scale == 1
        self._last = -1

    def of(self, pts: int) -> int:
        if self.same:
            return pts
        got = max(math.floor(pts / self._scale + Fraction(1, 2)), self._last + 1)  # half up
        self._last = got
        return got


@contextlib.contextmanager
def _demuxed(cam: CameraFrames, path: Path) -> Iterator[tuple[Iterator[Any], Fraction] | None]:
    """The segment's video packets and time base (None, warned, if it cannot be opened);
    a file cut short ends its packets with a warning."""
    try:
        container = av.open(str(path), "r")
    except _READ_FAILURES as exc:
        cam.warnings.append(f"camera {cam.name!r}: cannot open {path.name}: {exc}; skipped")
        yield None
        return
    try:
        if not container.streams.video:
            cam.warnings.append(f"camera {cam.name!r}: {path.name} has no video stream")
            yield None
            return
        stream = container.streams.video[0]
        yield _guarded(cam, path, container.demux(stream)), stream.time_base or Fraction(1, 1000)
    finally:
        with contextlib.suppress(*_READ_FAILURES):
            container.close()


def _guarded(cam: CameraFrames, path: Path, packets: Iterator[Any]) -> Iterator[Any]:
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except _READ_FAILURES as exc:
            cam.warnings.append(
                f"camera {cam.name!r}: {path.name} is cut short ({exc}); read what is there"
            )
            return
        yield packet


def _numbered(segments: list[Path]) -> dict[int, Path]:
    return {n: p for p in segments if (n := segment_number(p)) >= 0}


def open_camera(take_dir: Path, manifest: Manifest, entry: CameraEntry) -> CameraFrames:
    """Read the camera's index and list its segments (the manifest's, wherever a relay
    folder put them, and any more in its folders: after a crash the manifest may lag the
    files). :class:`TakeError` names the camera if its index cannot be read."""
    take_dir = Path(take_dir)
    index = resolve(take_dir, entry.index or f"{entry.dir}/{INDEX}")
    segments = camera_segments(take_dir, entry)
    cam = CameraFrames(entry, take_dir, [], [], NO_INDEX, segments, manifest.ticks_per_second)
    try:
        cam.rows = list(read_index(index))
    except FileNotFoundError:
        where = index.relative_to(take_dir) if index.is_relative_to(take_dir) else index
        cam.warnings.append(f"camera {entry.name!r}: no {where}; using the files' own times")
        cam.rows = _rows_from_packets(cam)
    except TakeError as exc:
        raise TakeError(f"camera {entry.name!r}: {exc}") from exc
    else:
        cam.time_column = _column(cam.rows)
    last = -(1 << 62)
    times = cam.times
    for r in cam.rows:
        t = r.refined_ns if r.refined_ns is not None else r.time_ns
        last = t if t > last else last + 1  # strictly increasing, as pts are
        times.append(last)
    return cam


def open_cameras(
    take_dir: Path, manifest: Manifest, names: tuple[str, ...] = ()
) -> list[CameraFrames]:
    """:func:`open_camera` for every camera of the take, or those named (by name or
    folder, in the order given; :class:`ConfigError` names one the take does not have)."""
    if not names:
        return [open_camera(take_dir, manifest, c) for c in manifest.cameras]
    chosen: list[CameraEntry] = []
    for n in names:
        found = [c for c in manifest.cameras if n in (c.name, c.dir)]
        if not found:
            known = ", ".join(c.name for c in manifest.cameras) or "none"
            raise ConfigError(f"no camera {n!r} in take {manifest.take_id} (cameras: {known})")
        chosen.extend(c for c in found if c not in chosen)
    return [open_camera(take_dir, manifest, c) for c in chosen]


def _column(rows: list[IndexRow]) -> str:
    refined = sum(1 for r in rows if r.refined_ns is not None)
    if refined == 0:
        return "time_ns"
    return "refined_ns" if refined == len(rows) else "refined_ns+time_ns"


def _rows_from_packets(cam: CameraFrames) -> list[IndexRow]:
    """Rows made from the packets themselves (their pts on the take timeline), for a
    camera whose index is gone: its frames' times are then the files' (rounded) ones."""
    rows: list[IndexRow] = []
    tps = cam.ticks_per_second
    for seg, path in sorted(_numbered(cam.segments).items()):
        with _demuxed(cam, path) as found:
            if found is None:
                continue
            packets, tb = found
            for packet in packets:
                if packet.size == 0 or packet.pts is None:
                    continue
                t_ns = round(packet.pts * tb * NS)
                pts = round(packet.pts * tb * tps)
                rows.append(IndexRow(len(rows), seg, pts, t_ns, t_ns, "", packet.size))
    return rows
