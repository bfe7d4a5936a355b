"""A take's cameras read back for review: each camera's frames in order, on the take timeline.

Per camera, packets are demuxed from its segments in order and matched to ``index.csv``
rows by pts (a packet with no row falls back to its pts; a row with no packet is skipped,
as after a crash), so every frame carries its full-resolution time: the refined time when
the take has one (``refined_ns``, every frame placed with the whole take's evidence), else
the live one. Times are made strictly increasing per camera (a refined time is not
guaranteed to be: a glitched frame keeps its own). A take that was not
finished, a missing index, a truncated or unreadable segment: each is a warning, and what
can be read is read.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av

from mmrec.store.take import CameraEntry, IndexRow, Manifest, camera_segments, read_index
from mmrec.wire import jpeg

NS: Final = 1_000_000_000


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
    warnings: list[str] = []
    rows: list[IndexRow] = []
    index = take_dir / (cam.index or f"{cam.dir}/index.csv")
    try:
        rows = list(read_index(index))
    except FileNotFoundError:  # an unreadable one raises TakeError
        warnings.append(f"camera {cam.name!r}: no {index}; using packet times")
    # The manifest may lag the files by a moment after a crash: trust the folder too
    # (and segments in relay folders are where the manifest says).
    return CameraScan(rows, camera_segments(take_dir, cam), warnings)


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
                    t, seq = r.best_ns, r.seq
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


@dataclass(frozen=True, slots=True)
class CameraSource:
    """A camera of the take that has frames: where they are, their span and picture size."""

    entry: CameraEntry
    scan: CameraScan
    span: tuple[int, int]  # first and last frame time on the take timeline, ns
    size: tuple[int, int]  # the first frame's width and height


class CameraReader:
    """One camera's frames in order (:func:`iter_camera`), counting those read."""

    def __init__(self, take_dir: Path, cam: CameraSource, warn: Callable[[str], None]) -> None:
        self._frames = iter_camera(take_dir, cam.entry, cam.scan, warn)
        self.read = 0

    def __iter__(self) -> Iterator[SourceFrame]:
        for f in self._frames:
            self.read += 1
            yield f


def read_cameras(
    take_dir: Path, manifest: Manifest, warn: Callable[[str], None]
) -> list[CameraSource]:
    """Every camera of the take with readable frames, in manifest order (the others are
    warned about)."""
    out = []
    for cam in manifest.cameras:
        scan = scan_camera(take_dir, cam)
        for w in scan.warnings:
            warn(w)
        span = _span(take_dir, cam, scan)
        size = _first_size(take_dir, cam, scan) if span else None
        if span is None or size is None:
            warn(f"camera {cam.name!r}: no frames on disk; no proxy")
            continue
        out.append(CameraSource(cam, scan, span, size))
    return out


def _span(take_dir: Path, cam: CameraEntry, scan: CameraScan) -> tuple[int, int] | None:
    if scan.rows:
        # as iter_camera yields them: strictly increasing from the first row's time
        end = scan.rows[0].best_ns
        for r in scan.rows[1:]:
            end = max(end + 1, r.best_ns)
        return scan.rows[0].best_ns, end
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
