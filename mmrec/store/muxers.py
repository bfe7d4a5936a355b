"""The two ways a camera's segment file is written: mmrec's own Matroska writer
(:class:`mmrec.store.mkv.SegmentFile`, one system call per frame, the default) or
libavformat through PyAV (``muxer="pyav"``). Both take a frame's JPEG bytes unchanged,
can make what they wrote durable (``sync``), tell whether their file was deleted while
open (``unlinked``), and finish the file at ``close``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Protocol

import av

from mmrec import __version__
from mmrec.store.ebml import TrackInfo
from mmrec.store.mkv import SegmentFile
from mmrec.store.payload import Bytes
from mmrec.store.take import TICK_NS, TIME_BASE

PYAV_TIME_BASE: Final = Fraction(1, 1000)  # libavformat's Matroska muxer counts ms
PYAV_TICKS: Final = int(TIME_BASE.denominator * PYAV_TIME_BASE)  # take ticks per ms


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """What a segment file is opened with."""

    path: str
    size: tuple[int, int]  # width, height of the camera's pictures
    camera: str  # the track's name
    meta: dict[str, str]  # file tags: title, timecode
    direct: bool  # O_DIRECT asked (mmrec's writer only)
    frame_ns: int | None = None  # the camera's frame duration, if known


class Segment(Protocol):
    direct: bool
    # write_frames() takes several frames in one call, all or nothing (if it raises,
    # none of them is in the file): a run of frames may then be written at once.
    runs: bool

    def write(self, pts: int, data: Bytes) -> None: ...
    def write_frames(self, frames: Sequence[tuple[int, Bytes]]) -> None: ...
    def sync(self) -> None: ...
    def unlinked(self) -> bool: ...
    def close(self, sync: bool) -> None: ...


class _MkvSegment:
    """mmrec's own writer: pts in the take's ticks (10 µs)."""

    def __init__(self, spec: SegmentSpec) -> None:
        self._w = SegmentFile(
            spec.path,
            TrackInfo(
                spec.size[0],
                spec.size[1],
                name=spec.camera,
                title=spec.meta.get("title", spec.camera),
                timecode=spec.meta.get("timecode"),
                app=f"mmrec {__version__}",
                tick_ns=TICK_NS,
                frame_ns=spec.frame_ns,
            ),
            direct=spec.direct,
        )
        self.direct = self._w.direct

    runs = True  # SegmentFile.write_frames is one system call, all or nothing

    def write(self, pts: int, data: Bytes) -> None:
        self._w.write_frame(pts, data)
        self.direct = self._w.direct

    def write_frames(self, frames: Sequence[tuple[int, Bytes]]) -> None:
        self._w.write_frames(frames)
        self.direct = self._w.direct

    def sync(self) -> None:
        self._w.sync()

    def unlinked(self) -> bool:
        return self._w.unlinked()

    def close(self, sync: bool) -> None:
        self._w.close(sync=sync)


class _PyAVSegment:
    """libavformat's Matroska muxer: it counts whole milliseconds (TimestampScale 1 ms),
    so the take's pts are rounded to the nearest one (and kept strictly increasing)."""

    direct = False  # libavformat writes through the page cache
    runs = False  # a packet at a time: a failure may leave part of a run written

    def __init__(self, spec: SegmentSpec) -> None:
        path = self._path = spec.path
        self._c: Any = av.open(path, "w", format="matroska", options={"flush_packets": "1"})
        for key, value in spec.meta.items():
            self._c.metadata[key] = value
        self._s: Any = self._c.add_mux_stream("mjpeg", width=spec.size[0], height=spec.size[1])
        self._s.time_base = PYAV_TIME_BASE
        self._s.metadata["title"] = spec.camera
        self._last = -1
        # To sync and stat the file; libavformat creates it only at the first packet, and
        # then truncates this same inode (so the descriptor stays the file's).
        self._fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, pts: int, data: Bytes) -> None:
        ms = max((pts + PYAV_TICKS // 2) // PYAV_TICKS, self._last + 1)
        self._last = ms
        packet = av.Packet(data if isinstance(data, bytes) else bytes(data))
        packet.stream = self._s
        packet.time_base = PYAV_TIME_BASE
        packet.pts = ms
        packet.dts = ms
        packet.is_keyframe = True
        self._c.mux(packet)

    def write_frames(self, frames: Sequence[tuple[int, Bytes]]) -> None:
        for pts, data in frames:
            self.write(pts, data)

    def sync(self) -> None:
        os.fdatasync(self._fd)  # the same file: its data reach the disk, whichever fd

    def unlinked(self) -> bool:
        return os.fstat(self._fd).st_nlink == 0

    def close(self, sync: bool) -> None:
        try:
            self._c.close()
            if sync:
                os.fdatasync(self._fd)
        finally:
            os.close(self._fd)


MUXERS: Final[dict[str, type[_MkvSegment] | type[_PyAVSegment]]] = {
    "mkv": _MkvSegment,
    "pyav": _PyAVSegment,
}
