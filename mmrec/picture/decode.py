"""JPEG -> a scaled YUV :class:`~mmrec.picture.yuv.Picture`, with no RGB step and no full-size
decode.

libjpeg-turbo (through PyTurboJPEG) decodes straight to Y, Cb, Cr planes at a DCT scaling
factor M/8; the planes keep the JPEG's own chroma subsampling (4:2:0, 4:2:2, 4:4:4, grey).
When libjpeg-turbo cannot be loaded, PyAV's mjpeg decoder with ``lowres`` (1, 1/2, 1/4,
1/8) is the fallback. Both release the GIL, so a small thread pool decodes in parallel.

libjpeg-turbo is called through its C API directly (:class:`_Turbo`): each thread keeps
one decompressor (PyTurboJPEG creates and destroys one per call, which measured ~0.1 ms a
frame), and a caller may hand in the planes to write, e.g. those of the output frame, so
the picture is not copied again.

Planes are full-range (JFIF) YCbCr. A corrupt JPEG raises :class:`StreamFormatError`
(callers count it and show the tile's previous picture or a gap), and so does one whose
header claims a size no camera sends (:func:`mmrec.wire.jpeg.implausible`): it is never
decoded, which would cost seconds and gigabytes (a 65000x65000 header).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import warnings
from fractions import Fraction
from typing import Any, Final, cast

import numpy as np

from mmrec.errors import StreamFormatError
from mmrec.picture.layout import JPEG_SCALES
from mmrec.picture.yuv import Picture
from mmrec.wire import jpeg

# libjpeg-turbo reports recoverable damage (e.g. "Corrupt JPEG data: premature end of data
# segment") as a warning and still returns a picture; PyTurboJPEG turns that into a Python
# UserWarning. A damaged frame is still worth showing in a preview, so we silence them
# here rather than print one line per frame (pytest's "error" filter still sees them).
warnings.filterwarnings("ignore", category=UserWarning, module="turbojpeg")


TJSAMP_420: Final = 2
TJSAMP_GRAY: Final = 3
TJERR_WARNING: Final = 0


class _TurboHandle:
    """One thread's decompressor, destroyed with the thread's local storage."""

    def __init__(self, turbo: _Turbo) -> None:
        self._destroy = turbo.destroy
        self.handle: int | None = turbo.init()
        if not self.handle:
            raise OSError("tjInitDecompress failed")

    def __del__(self) -> None:
        if self.handle:
            self._destroy(self.handle)
            self.handle = None


class _Turbo:
    """The few TurboJPEG C functions we decode with (libjpeg-turbo's own API, stable
    since 1.4): header, planes' sizes, decompress to planes, error text."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        vp, i, ip = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)
        self.init = lib.tjInitDecompress
        self.init.restype, self.init.argtypes = vp, []
        self.destroy = lib.tjDestroy
        self.destroy.restype, self.destroy.argtypes = i, [vp]
        self.header = lib.tjDecompressHeader3
        self.header.restype, self.header.argtypes = i, [vp, vp, ctypes.c_ulong, ip, ip, ip, ip]
        self.plane_width = lib.tjPlaneWidth
        self.plane_width.restype, self.plane_width.argtypes = i, [i, i, i]
        self.plane_height = lib.tjPlaneHeight
        self.plane_height.restype, self.plane_height.argtypes = i, [i, i, i]
        self.to_planes = lib.tjDecompressToYUVPlanes
        self.to_planes.restype = i
        self.to_planes.argtypes = [vp, vp, ctypes.c_ulong, ctypes.POINTER(vp), i, ip, i, i]
        self.error_code = lib.tjGetErrorCode
        self.error_code.restype, self.error_code.argtypes = i, [vp]
        self.error_str = lib.tjGetErrorStr2
        self.error_str.restype, self.error_str.argtypes = ctypes.c_char_p, [vp]
        self._local = threading.local()

    @staticmethod
    def load() -> _Turbo | None:
        import turbojpeg

        paths = [ctypes.util.find_library("turbojpeg"), *turbojpeg.DEFAULT_LIB_PATHS["Linux"]]
        for path in paths:
            if path:
                try:
                    return _Turbo(path)
                except (OSError, AttributeError):  # not there, or too old (no tjGetErrorCode)
                    continue
        return None

    def _handle(self) -> int:
        h: _TurboHandle | None = getattr(self._local, "h", None)
        if h is None:
            h = self._local.h = _TurboHandle(self)
        assert h.handle is not None
        return h.handle

    def _error(self, handle: int) -> StreamFormatError:
        text = self.error_str(handle).decode("utf-8", "replace")
        self._drop()
        return StreamFormatError(f"cannot decode JPEG: {text}")

    def _drop(self) -> None:
        # After an error a decompressor can be left mid-stream ("Improper call to JPEG
        # library in state ..." on the next frame): the next call makes a new one.
        self._local.h = None

    def decode(self, data: Any, scale: Fraction, into: Picture | None) -> Picture:
        """Decode to planes; into ``into`` when it is the scaled 4:2:0 picture's size."""
        buf = np.frombuffer(data, np.uint8)
        src, n = buf.ctypes.data, buf.size
        handle = self._handle()
        w, h, sub, cs = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        if self.header(handle, src, n, w, h, sub, cs) != 0:
            raise self._error(handle)
        if w.value <= 0 or h.value <= 0:
            self._drop()
            raise StreamFormatError(f"cannot decode JPEG: bad header ({w.value}x{h.value})")
        num, den = scale.numerator, scale.denominator
        sw, sh = -(-w.value * num // den), -(-h.value * num // den)  # TJSCALED
        samp = sub.value
        nplanes = 1 if samp == TJSAMP_GRAY else 3
        shapes = [
            (self.plane_height(c, sh, samp), self.plane_width(c, sw, samp)) for c in range(nplanes)
        ]
        if any(d <= 0 for shape in shapes for d in shape):  # a subsampling it cannot do
            raise StreamFormatError(f"cannot decode JPEG: subsampling {samp} not supported")
        if (
            into is not None
            and samp == TJSAMP_420
            and [p.shape for p in (into.y, into.u, into.v)] == shapes
            and all(p.strides[1] == 1 for p in (into.y, into.u, into.v))
        ):
            out = [into.y, into.u, into.v]
        else:
            into = None
            out = [np.empty(s, np.uint8) for s in shapes]
        ptrs = (ctypes.c_void_p * 3)(*(p.ctypes.data for p in out))
        strides = (ctypes.c_int * 3)(*(p.strides[0] for p in out))
        status = self.to_planes(handle, src, n, ptrs, sw, strides, sh, 0)
        # A warning is recoverable damage (e.g. a premature end of data): still a picture.
        if status != 0:
            if self.error_code(handle) != TJERR_WARNING:
                raise self._error(handle)
            self._drop()
        if into is not None:
            return into
        y = out[0]
        if nplanes == 1:  # greyscale: neutral chroma
            c = np.full(((y.shape[0] + 1) // 2, (y.shape[1] + 1) // 2), 128, np.uint8)
            return Picture(y[:sh, :sw], c, c)
        return Picture(y[:sh, :sw], out[1], out[2])


class Decoder:
    """Decode JPEG bytes to a :class:`Picture` at a scale; thread-safe, one per process."""

    def __init__(self, backend: str = "auto") -> None:
        self._tj: Any = None
        self._turbo: _Turbo | None = None
        self._local = threading.local()
        if backend in ("auto", "turbojpeg"):
            try:
                from turbojpeg import TurboJPEG

                self._tj = TurboJPEG()
                self._turbo = _Turbo.load()
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

    def decode(
        self, data: bytes | memoryview, scale: Fraction = Fraction(1), into: Picture | None = None
    ) -> Picture:
        """Decode ``data`` at ``scale`` (one of :attr:`scales`).

        With ``into`` (writable 4:2:0 planes, rows contiguous) the picture is written there
        when it is exactly their size and 4:2:0, and ``into`` is returned; otherwise new
        planes are. After an error ``into`` may hold part of a picture.
        """
        if not jpeg.is_complete(data):
            raise StreamFormatError("incomplete JPEG (no EOI marker)")
        size = jpeg.dimensions(data)
        why = None if size is None else jpeg.implausible(*size, memoryview(data).nbytes)
        if why is not None:
            raise StreamFormatError(f"JPEG not decoded: its header claims {why}")
        if self._turbo is not None:
            return self._turbo.decode(data, scale, into)
        if self._tj is not None:
            return self._decode_tj(data, scale)
        return self._decode_av(data, scale)

    def _decode_tj(self, data: bytes | memoryview, scale: Fraction) -> Picture:
        try:
            planes = self._tj.decode_to_yuv_planes(
                data, scaling_factor=(scale.numerator, scale.denominator)
            )
        except (OSError, UserWarning, ValueError) as exc:
            raise StreamFormatError(f"cannot decode JPEG: {exc}") from exc
        y = planes[0]
        if len(planes) == 1:  # greyscale: neutral chroma
            c = np.full(((y.shape[0] + 1) // 2, (y.shape[1] + 1) // 2), 128, np.uint8)
            return Picture(y, c, c)
        return Picture(y, planes[1], planes[2])

    def _decode_av(self, data: bytes | memoryview, scale: Fraction) -> Picture:
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
        return Picture(out[0], out[1], out[2])


_default: Decoder | None = None
_default_lock: Final = threading.Lock()


def default_decoder() -> Decoder:
    """The process-wide decoder (libjpeg-turbo if it loads, else PyAV)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Decoder()
        return _default
