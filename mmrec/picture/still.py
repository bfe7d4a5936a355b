"""A picture as a still: a JPEG (for the live feed, snapshots, the contact sheet) or RGB."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mmrec.picture.yuv import Picture, new_frame


def encode_jpeg(canvas: Picture, quality: int = 80, tj: Any = None) -> bytes:
    """JPEG (4:2:0, full range) of the canvas: TurboJPEG from YUV, else PyAV's mjpeg.

    One copy: the planes are packed into the buffer layout tjCompressFromYUV wants
    (rows padded to 4 bytes).
    """
    w, h = canvas.width, canvas.height
    if tj is not None:
        parts = []
        for p in (canvas.y, canvas.u, canvas.v):
            ph, pw = p.shape
            stride = (pw + 3) // 4 * 4
            buf = np.zeros((ph, stride), np.uint8) if stride != pw else np.empty((ph, pw), np.uint8)
            buf[:, :pw] = p
            parts.append(buf.ravel())
        packed = np.concatenate(parts)
        return bytes(tj.encode_from_yuv(packed, h, w, quality=quality, jpeg_subsample=2))
    import av

    frame, c = new_frame(w, h)
    canvas.copy_to(c)
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuvj420p"
    ctx.options = {"qscale": str(max(2, (100 - quality) // 3))}
    frame = frame.reformat(format="yuvj420p")
    packets = ctx.encode(frame) + ctx.encode(None)
    return b"".join(bytes(p) for p in packets)


def to_rgb(canvas: Picture) -> npt.NDArray[np.uint8]:
    """Full-range BT.601 4:2:0 -> RGB (h x w x 3), for stills (contact sheet, checks)."""
    y = canvas.y.astype(np.float32)
    u = np.repeat(np.repeat(canvas.u, 2, 0), 2, 1).astype(np.float32) - 128.0
    v = np.repeat(np.repeat(canvas.v, 2, 0), 2, 1).astype(np.float32) - 128.0
    r = y + 1.402 * v
    g = y - 0.344136 * u - 0.714136 * v
    b = y + 1.772 * u
    rgb: npt.NDArray[np.uint8] = np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
    return rgb
