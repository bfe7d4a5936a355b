"""The one H.264 writer: pictures in, a video file out (the live preview's Matroska, each
proxy's MP4), through libx264 in PyAV.

Not thread-safe: one thread at a time writes a file (the preview's encode thread, a proxy's
strand). libx264 copies the frame on ``encode``, so the caller may draw into the same
``av.VideoFrame`` again afterwards; PyAV releases the GIL while encoding and muxing.
PyAV's and the OS's errors become :class:`~mmrec.errors.RecordingError` naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av

from mmrec.errors import ExceptionMap, RecordingError, map_exceptions

_WRITE_ERRORS: Final[ExceptionMap] = {(av.FFmpegError, OSError): RecordingError}


def x264_options(
    preset: str,
    *,
    qp: int | None = None,
    crf: int | None = None,
    tune: str | None = None,
    threads: int | None = 1,
    bframes: int | None = None,
) -> dict[str, str]:
    """libx264 settings: ``preset``; ``threads`` (None: x264 chooses); ``tune``; CRF rate
    control with ``crf``, else a constant quantizer with ``qp``; with ``bframes``, that many
    B-frames in a fixed pattern (no adaptive placement) coded at the P-frames' quantizer."""
    out = {"preset": preset}
    if threads is not None:
        out["threads"] = str(threads)
    if tune is not None:
        out["tune"] = tune
    if crf is not None:
        out["crf"] = str(crf)
    elif qp is not None:
        out["qp"] = str(qp)
    if bframes is not None:
        out["x264-params"] = f"bframes={bframes}:b-adapt=0:pbratio=1"
    return out


class H264Writer:
    """One H.264 video (yuv420p, full range: the planes are JPEG's) in a container.

    ``rate`` is the nominal frame rate; pts are in ``time_base`` units: the frame count
    unless :meth:`write` is given one (always made strictly increasing). ``metadata`` goes
    on the container and, with ``stream_metadata``, on the stream too.
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        *,
        rate: Fraction,
        time_base: Fraction,
        x264: Mapping[str, str],
        container: str,
        container_options: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        stream_metadata: bool = False,
    ) -> None:
        self.path = path
        self.frames = 0
        self._last_pts = -1
        self._closed = False
        with map_exceptions(_WRITE_ERRORS, f"cannot write {path}"):
            self._c: Any = av.open(
                str(path), "w", format=container, options=dict(container_options or {})
            )
            for k, v in (metadata or {}).items():
                self._c.metadata[k] = v
            s = self._c.add_stream("libx264", rate=rate, options=dict(x264))
            s.width, s.height = size
            s.pix_fmt = "yuv420p"
            s.codec_context.color_range = 2  # AVCOL_RANGE_JPEG
            s.time_base = time_base
            # Frames are stamped in ``time_base``: the encoder must count in it too (left
            # alone it counts in 1/rate, and a ms pts at 10 fps came out 100x too late).
            s.codec_context.time_base = time_base
            if stream_metadata:
                for k, v in (metadata or {}).items():
                    s.metadata[k] = v
            self._s: Any = s

    def write(self, frame: Any, pts: int | None = None) -> None:
        """Encode and mux the next frame (an ``av.VideoFrame`` of the video's size)."""
        p = max(self.frames if pts is None else pts, self._last_pts + 1)
        self._last_pts = p
        frame.pts = p
        self.frames += 1
        with map_exceptions(_WRITE_ERRORS, f"cannot write {self.path}"):
            for packet in self._s.encode(frame):
                self._c.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finalize the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with map_exceptions(_WRITE_ERRORS, f"cannot write {self.path}"):
            try:
                for packet in self._s.encode(None):
                    self._c.mux(packet)
            finally:
                self._c.close()
