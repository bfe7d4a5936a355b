"""A QuickTime MOV of JPEG packets passed through: constant rate, timecode, color tags.

Each packet is muxed as it is (codec ``mjpeg``, sample description ``jpeg``, Photo-JPEG as
every NLE reads it): nothing is decoded or encoded. Slot k is sample k at pts k in a time
base of 1/rate, each lasting one frame, so the track has a constant rate (29.97 is
30000/1001, stored at timescale 30000 with 1001-tick samples). A repeated slot muxes the
same packet again (PyAV takes a new reference to its buffer: no copy).

FFmpeg's MOV muxer writes the ``tmcd`` timecode track from the stream's ``timecode``
metadata, and a ``colr`` atom from the codec parameters: the JPEGs are JFIF, full range,
BT.601 matrix; phones capture sRGB, so BT.709 primaries and the sRGB transfer.

The file is written as ``NAME.mov.part`` and renamed when complete: a file under its final
name is always whole.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av

from mmrec.errors import RecordingError

PART_SUFFIX: Final = ".part"

# AVColorRange / AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic values
RANGE_JPEG: Final = 2  # full range (0-255), as JFIF
MATRIX_BT601: Final = 5  # BT470BG: the BT.601 matrix JFIF specifies
PRIMARIES_BT709: Final = 1
TRANSFER_SRGB: Final = 13  # IEC 61966-2-1

# TurboJPEG's subsampling codes (TJSAMP_*) -> the full-range pixel format FFmpeg declares
PIX_FMT: Final = {
    0: "yuvj444p",
    1: "yuvj422p",
    2: "yuvj420p",
    3: "gray",
    4: "yuvj440p",
    5: "yuvj411p",
}


class MovWriter:
    """One camera's MOV. Not thread-safe: one thread writes a file."""

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        rate: Fraction,
        timecode: str,
        *,
        subsampling: int = 2,
        title: str = "",
        comment: str = "",
    ) -> None:
        self.path = path
        self.part = path.with_name(path.name + PART_SUFFIX)
        self.frames = 0
        self.bytes = 0
        self._tb = 1 / Fraction(rate)
        self._done = False
        try:
            self._c: Any = av.open(str(self.part), "w", format="mov")
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(f"cannot write {self.part}: {exc}") from exc
        try:
            if title:
                self._c.metadata["title"] = title
            if comment:
                self._c.metadata["comment"] = comment
            s = self._c.add_stream("mjpeg", rate=rate)
            s.width, s.height = size
            s.pix_fmt = PIX_FMT.get(subsampling, "yuvj420p")
            cc = s.codec_context
            cc.color_range = RANGE_JPEG
            cc.colorspace = MATRIX_BT601
            cc.color_primaries = PRIMARIES_BT709
            cc.color_trc = TRANSFER_SRGB
            s.time_base = self._tb
            s.metadata["timecode"] = timecode
            if title:
                s.metadata["title"] = title
            self._s: Any = s
        except (av.FFmpegError, ValueError) as exc:
            self.abort()
            raise RecordingError(f"cannot set up {self.part}: {exc}") from exc

    def write(self, packet: Any) -> None:
        """Mux ``packet`` (an ``av.Packet``) as the next slot; it may be muxed again."""
        packet.stream = self._s
        packet.time_base = self._tb
        packet.pts = packet.dts = self.frames
        packet.duration = 1
        packet.is_keyframe = True
        try:
            self._c.mux_one(packet)
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(f"cannot write {self.part}: {exc}") from exc
        self.frames += 1
        self.bytes += packet.size

    def close(self) -> Path:
        """Finalize, then rename to the final name; returns it."""
        if self._done:
            return self.path
        try:
            self._c.close()
            os.replace(self.part, self.path)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise RecordingError(f"cannot finish {self.path}: {exc}") from exc
        self._done = True
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file (idempotent)."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):
            self._c.close()
        with contextlib.suppress(OSError):
            self.part.unlink()


def packet(data: bytes) -> Any:
    """An ``av.Packet`` holding ``data`` (made once, muxed as often as needed)."""
    return av.Packet(data)
