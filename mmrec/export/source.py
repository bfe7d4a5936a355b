"""A camera of a take, read back for export: its frames' times and its JPEG packets.

Times come from ``index.csv`` (read through :func:`mmrec.store.take.read_index`); the
packets from the camera's Matroska segments, demuxed in order and matched to index rows by
(segment, pts). A row whose packet is missing (cut off by a crash) yields ``None``; a
packet without a row is counted and skipped. Packets are PyAV's own buffers: they are
muxed into the MOV by reference, never copied (see :mod:`mmrec.export.mov`).
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av

from mmrec.errors import MmrecError, TakeError
from mmrec.store.take import CameraEntry, IndexRow, camera_segments, read_index

# Columns of index.csv that give a frame's time on the take timeline, best first: a
# refined time (issue 16 adds one, computed after the take) when a take has it, else the
# live aligned time that every take has.
TIME_COLUMNS: Final = ("refined_ns", "time_ns")

_SEGMENT = re.compile(r"seg-(\d+)\.mkv$")


def frame_time(row: IndexRow) -> tuple[int, str]:
    """The row's time (ns on the take timeline) and the column it came from."""
    for column in TIME_COLUMNS:
        value = getattr(row, column, None)
        if isinstance(value, int):
            return value, column
    raise MmrecError(f"index row {row.seq} has no time")  # pragma: no cover: time_ns exists


@dataclass
class CameraSource:
    """One camera's frames as found on disk, in capture order."""

    entry: CameraEntry
    take_dir: Path
    rows: list[IndexRow]
    times: list[int]  # strictly increasing, ns
    time_column: str
    segments: list[Path]
    warnings: list[str] = field(default_factory=list)
    missing: int = 0  # rows whose packet is not in the segments
    unindexed: int = 0  # packets without a row

    @property
    def name(self) -> str:
        return self.entry.name


def open_camera(take_dir: Path, entry: CameraEntry) -> CameraSource:
    """Read the camera's index and list its segments; TakeError names the camera."""
    index = take_dir / (entry.index or f"{entry.dir}/index.csv")
    warnings: list[str] = []
    try:
        rows = list(read_index(index))
    except FileNotFoundError:
        rows = []
        warnings.append(f"camera {entry.name!r}: no {entry.index or index}; not exported")
    except TakeError as exc:
        raise TakeError(f"camera {entry.name!r}: {exc}") from exc
    times: list[int] = []
    column = TIME_COLUMNS[-1]
    last = -(1 << 62)
    for r in rows:
        t, column = frame_time(r)
        t = max(t, last + 1)  # strictly increasing, as pts are (a tie never reorders)
        times.append(t)
        last = t
    # The manifest may lag the folder by a moment after a crash: the folder counts too
    # (and segments in relay folders are where the manifest says).
    segments = camera_segments(take_dir, entry)
    return CameraSource(entry, take_dir, rows, times, column, segments, warnings)


def iter_packets(src: CameraSource) -> Generator[tuple[int, Any], None, None]:
    """``(row index, packet or None)`` for every row, in order."""
    by_segment: dict[int, deque[int]] = {}
    for i, r in enumerate(src.rows):
        by_segment.setdefault(r.segment, deque()).append(i)
    files = {}
    for path in src.segments:
        m = _SEGMENT.search(path.name)
        if m is not None:
            files[int(m.group(1))] = path
    for seg in sorted(set(by_segment) | set(files)):
        todo = by_segment.get(seg, deque())
        seg_path = files.get(seg)
        if seg_path is not None:
            yield from _segment_packets(src, seg_path, todo)
        for i in todo:  # indexed, not in the file
            src.missing += 1
            yield i, None


def _segment_packets(src: CameraSource, path: Path, todo: deque[int]) -> Iterator[tuple[int, Any]]:
    rows = src.rows
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        src.warnings.append(f"camera {src.name!r}: cannot open {path.name}: {exc}")
        return
    try:
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 1000)
        packets = container.demux(stream)
        while todo:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.FFmpegError, OSError, EOFError) as exc:
                src.warnings.append(
                    f"camera {src.name!r}: {path.name} is cut short ({exc}); exported what is there"
                )
                break
            if packet.size == 0 or packet.pts is None:
                continue
            pts_ms = round(packet.pts * tb * 1000)
            while todo and rows[todo[0]].pts < pts_ms:
                src.missing += 1
                yield todo.popleft(), None
            if todo and rows[todo[0]].pts == pts_ms:
                yield todo.popleft(), packet
            else:
                src.unindexed += 1
    except IndexError:
        src.warnings.append(f"camera {src.name!r}: {path.name} has no video stream")
    finally:
        with contextlib.suppress(av.FFmpegError, OSError):
            container.close()
