"""The filler frame: what a camera's MOV shows where the camera has no picture.

Encoded once per camera (its size and chroma subsampling, so the MOV's frames all share
one format): black, "NO SIGNAL" in the middle and the camera's name, drawn as the
proxies and the live preview draw a tile without signal. It carries a COM record
``mmrec-export filler camera=NAME`` so any tool can tell it from a recorded frame
without looking at pixels.
"""

from __future__ import annotations

from typing import Final

from turbojpeg import TJPF_RGB, TurboJPEG

from mmrec.picture.compose import NO_SIGNAL, render_tile
from mmrec.picture.layout import Rect
from mmrec.picture.still import to_rgb
from mmrec.picture.yuv import Picture
from mmrec.wire import jpeg

FILLER_TAG: Final = b"mmrec-export filler"
QUALITY: Final = 85


def filler_jpeg(camera: str, width: int, height: int, subsampling: int = 2) -> bytes:
    """A JFIF JPEG of ``width`` x ``height`` saying NO SIGNAL, with the camera's name."""
    w2, h2 = width + width % 2, height + height % 2  # the canvas is 4:2:0: even sizes
    canvas = Picture.new(w2, h2)
    render_tile(canvas, Rect(0, 0, w2, h2), None, None, NO_SIGNAL, camera, box_alpha=255)
    rgb = to_rgb(canvas)[:height, :width]
    data = bytes(
        TurboJPEG().encode(rgb, quality=QUALITY, pixel_format=TJPF_RGB, jpeg_subsample=subsampling)
    )
    record = FILLER_TAG + b" camera=" + camera.encode("utf-8", "replace")[:200]
    return data[:2] + jpeg.com_segment(record) + data[2:]


def is_filler(data: bytes | bytearray | memoryview) -> bool:
    """Whether a JPEG is an export filler frame (by its COM record)."""
    info = jpeg.parse_header(data)
    return info is not None and any(c.startswith(FILLER_TAG) for c in info.comments)
