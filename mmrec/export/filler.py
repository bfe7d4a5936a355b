"""The filler frame: what a camera's MOV shows where the camera has no picture.

Encoded once per camera (its size and chroma subsampling, so the MOV's frames all share
one format): black, "NO SIGNAL" in the middle and the camera's name, drawn as the
proxies and the live preview draw a tile without signal. It carries a COM record
``mmrec-export filler camera=NAME`` so any tool can tell it from a recorded frame
without looking at pixels.
"""

from __future__ import annotations

import functools
from typing import Final

from turbojpeg import TJPF_RGB, TJSAMP_420, TurboJPEG

from mmrec.picture.compose import NO_SIGNAL, render_tile
from mmrec.picture.layout import Rect
from mmrec.picture.still import encode_jpeg, to_rgb
from mmrec.picture.yuv import Picture
from mmrec.wire import jpeg

FILLER_TAG: Final = b"mmrec-export filler"
QUALITY: Final = 85


@functools.cache
def turbojpeg() -> TurboJPEG:
    """One TurboJPEG for the export (it keeps no state between calls): each new one looks
    its library up again, which runs ``ldconfig -p`` (~5-10 ms a time here)."""
    return TurboJPEG()


def filler_jpeg(camera: str, width: int, height: int, subsampling: int = TJSAMP_420) -> bytes:
    """A JFIF JPEG of ``width`` x ``height`` saying NO SIGNAL, with the camera's name."""
    w2, h2 = width + width % 2, height + height % 2  # the canvas is 4:2:0: even sizes
    canvas = Picture.new(w2, h2)
    render_tile(canvas, Rect(0, 0, w2, h2), None, None, NO_SIGNAL, camera, box_alpha=255)
    tj = turbojpeg()
    if subsampling == TJSAMP_420 and (w2, h2) == (width, height):
        # straight from the planes, as phones' JPEGs are: 75 ms of RGB conversion less
        # per 1080p camera (measured: a third of a 20 s export's CPU went to it)
        data = encode_jpeg(canvas, QUALITY, tj)
    else:
        rgb = to_rgb(canvas)[:height, :width]
        data = bytes(
            tj.encode(rgb, quality=QUALITY, pixel_format=TJPF_RGB, jpeg_subsample=subsampling)
        )
    record = FILLER_TAG + b" camera=" + camera.encode("utf-8", "replace")[:200]
    return data[:2] + jpeg.com_segment(record) + data[2:]


def is_filler(data: bytes | bytearray | memoryview) -> bool:
    """Whether a JPEG is an export filler frame (by its COM record)."""
    info = jpeg.parse_header(data)
    return info is not None and any(c.startswith(FILLER_TAG) for c in info.comments)
