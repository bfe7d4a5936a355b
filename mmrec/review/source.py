"""A take's cameras read back for review, through the one take reader
(:mod:`mmrec.store.reader`): each camera's frame times (for the plan) and, as the plan
asks for them in order, the frames themselves.

A take that was not finished, a missing index, a truncated or unreadable segment: each is
a warning, and what can be read is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrec.store.reader import CameraFrames, open_cameras
from mmrec.store.take import Manifest
from mmrec.wire import jpeg


@dataclass(frozen=True, slots=True)
class SourceFrame:
    time_ns: int
    seq: int
    data: Any  # bytes-like (an av.Packet: its buffer, not a copy)


@dataclass(frozen=True, slots=True)
class CameraSource:
    """A camera of the take that has frames: its frames on disk and picture size."""

    frames: CameraFrames
    size: tuple[int, int]  # the first frame's width and height

    @property
    def name(self) -> str:
        return self.frames.name


class CameraReader:
    """One camera's frames, fetched by row number in increasing order (what the plan
    shows); counts the frames read. A row whose JPEG is not on disk is None."""

    def __init__(self, cam: CameraSource) -> None:
        self._cam = cam.frames
        self._packets = cam.frames.packets()
        self._row = -1
        self._frame: SourceFrame | None = None
        self.read = 0

    def at(self, i: int) -> SourceFrame | None:
        """Row ``i``'s frame (``i`` never goes back); the same object while ``i`` stays."""
        if i == self._row:
            return self._frame
        packet = None
        while self._row < i:
            row, packet = next(self._packets, (i, None))
            self._row = row
            self.read += 1
        cam = self._cam
        self._frame = None if packet is None else SourceFrame(cam.times[i], cam.rows[i].seq, packet)
        return self._frame

    def close(self) -> None:
        self._packets.close()


def read_cameras(
    take_dir: Path, manifest: Manifest, warn: Callable[[str], None]
) -> list[CameraSource]:
    """Every camera of the take with readable frames, in manifest order (the others are
    warned about)."""
    out = []
    for cam in open_cameras(take_dir, manifest):
        for w in cam.warnings:
            warn(w)
        cam.warnings.clear()
        size = _first_size(cam) if cam.times else None
        if size is None:
            warn(f"camera {cam.name!r}: no frames on disk; no proxy")
            continue
        out.append(CameraSource(cam, size))
    return out


def _first_size(cam: CameraFrames) -> tuple[int, int] | None:
    entry = cam.entry
    if entry.width and entry.height:
        return entry.width, entry.height
    with contextlib.closing(cam.packets()) as packets:
        for _, packet in packets:
            info = jpeg.parse_header(packet) if packet is not None else None
            if info is not None:
                return info.width, info.height
    return None
