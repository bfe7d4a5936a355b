"""JPEG -> scaled YUV planes, with no RGB step and no full-size decode.

libjpeg-turbo (through PyTurboJPEG) decodes straight to Y, Cb, Cr planes at a DCT scaling
factor M/8; the planes keep the JPEG's own chroma subsampling (4:2:0, 4:2:2, 4:4:4, grey).
When libjpeg-turbo cannot be loaded, PyAV's mjpeg decoder with ``lowres`` (1, 1/2, 1/4,
1/8) is the fallback. Both release the GIL, so a small thread pool decodes in parallel.

Planes are full-range (JFIF) YCbCr. A corrupt JPEG raises :class:`StreamFormatError`
(callers count it and show the tile's previous picture or a gap).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from mmrec import jpeg
from mmrec.errors import StreamFormatError
from mmrec.tile import JPEG_SCALES

Plane = npt.NDArray[np.uint8]

# libjpeg-turbo reports recoverable damage (e.g. "Corrupt JPEG data: premature end of data
# segment") as a warning and still returns a picture; PyTurboJPEG turns that into a Python
# UserWarning. A damaged frame is still worth showing in a preview, so we silence them
# here rather than print one line per frame (pytest's "error" filter still sees them).
warnings.filterwarnings("ignore", category=UserWarning, module="turbojpeg")


@dataclass(frozen=True, slots=True)
class Planes:
    """One decoded picture: Y (h x w), and Cb, Cr at the JPEG's own subsampling."""

    y: Plane
    u: Plane
    v: Plane
    width: int
    height: int


class Decoder:
    """Decode JPEG bytes to :class:`Planes` at a scale; thread-safe, one per process."""

    def __init__(self, backend: str = "auto") -> None:
        self._tj: Any = None
        self._local = threading.local()
        if backend in ("auto", "turbojpeg"):
            try:
                from turbojpeg import TurboJPEG

                self._tj = TurboJPEG()
            except (ImportError, OSError, RuntimeError):
                if backend == "turbojpeg":
                    raise
        if self._tj is not None:
            self.backend = "turbojpeg"
            available = {Fraction(n, d) for n, d in self._tj.scaling_factors}
            self.scales: tuple[Fraction, ...] = tuple(s for s in JPEG_SCALES if s in available)
        else:
            self.backend = "pyav"
            self.scales = (Fraction(1, 8), Fraction(1, 4), Fraction(1, 2), Fraction(1))

    @property
    def turbojpeg(self) -> Any:
        """The TurboJPEG handle (None with the PyAV fallback); also used to encode."""
        return self._tj

    def decode(self, data: bytes | memoryview, scale: Fraction = Fraction(1)) -> Planes:
        """Decode ``data`` at ``scale`` (one of :attr:`scales`)."""
        if not jpeg.is_complete(data):
            raise StreamFormatError("incomplete JPEG (no EOI marker)")
        if self._tj is not None:
            return self._decode_tj(data, scale)
        return self._decode_av(data, scale)

    def _decode_tj(self, data: bytes | memoryview, scale: Fraction) -> Planes:
        try:
            planes = self._tj.decode_to_yuv_planes(
                data, scaling_factor=(scale.numerator, scale.denominator)
            )
        except (OSError, UserWarning, ValueError) as exc:
            raise StreamFormatError(f"cannot decode JPEG: {exc}") from exc
        y = planes[0]
        if len(planes) == 1:  # greyscale: neutral chroma
            c = np.full(((y.shape[0] + 1) // 2, (y.shape[1] + 1) // 2), 128, np.uint8)
            return Planes(y, c, c, y.shape[1], y.shape[0])
        return Planes(y, planes[1], planes[2], y.shape[1], y.shape[0])

    def _decode_av(self, data: bytes | memoryview, scale: Fraction) -> Planes:
        import av

        lowres = {Fraction(1): 0, Fraction(1, 2): 1, Fraction(1, 4): 2, Fraction(1, 8): 3}.get(
            scale, 0
        )
        # One codec context per thread and scale: opening one costs more than a decode.
        key = f"ctx{lowres}"
        ctx = getattr(self._local, key, None)
        if ctx is None:
            ctx = av.CodecContext.create("mjpeg", "r")
            ctx.options = {"lowres": str(lowres)}
            ctx.open()
            setattr(self._local, key, ctx)
        try:
            frames = ctx.decode(av.Packet(data if isinstance(data, bytes) else bytes(data)))
        except (av.FFmpegError, ValueError) as exc:
            raise StreamFormatError(f"cannot decode JPEG: {exc}") from exc
        if not frames:
            raise StreamFormatError("cannot decode JPEG: no picture")
        frame = frames[0]
        out = []
        for p in frame.planes[:3]:
            a = np.frombuffer(cast(Any, p), np.uint8).reshape(p.height, p.line_size)[:, : p.width]
            out.append(a)
        if len(out) == 1:
            c = np.full(((frame.height + 1) // 2, (frame.width + 1) // 2), 128, np.uint8)
            out += [c, c]
        return Planes(out[0], out[1], out[2], frame.width, frame.height)


_default: Decoder | None = None
_default_lock: Final = threading.Lock()


def default_decoder() -> Decoder:
    """The process-wide decoder (libjpeg-turbo if it loads, else PyAV)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Decoder()
        return _default
