"""The one picture type: three YCbCr planes, full range (JFIF), as libjpeg-turbo gives them.

A :class:`Picture` is what a JPEG decodes to, what a tile is resized to, and the frame an
encoder gets: drawing works on it in place (numpy views), so a picture is copied exactly
once, from the decoder's planes into the output frame. Y is ``height x width``; Cb and Cr
are at half size each way (4:2:0), except straight from a decode, where they keep the
JPEG's own subsampling (4:2:2, 4:4:4; a grey JPEG gets neutral chroma) until resized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from mmrec.picture.layout import Rect

Plane = npt.NDArray[np.uint8]

# Full-range BT.601 YCbCr (what JPEG uses).
RED: Final = (76, 85, 255)
WHITE: Final = (255, 128, 128)
BLACK: Final = (0, 128, 128)


@dataclass(frozen=True, slots=True)
class Picture:
    """Y (h x w), Cb and Cr (h/2 x w/2 in 4:2:0); the planes may be views into a frame."""

    y: Plane
    u: Plane
    v: Plane

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def new(width: int, height: int) -> Picture:
        """A black 4:2:0 picture in memory of its own."""
        return Picture(
            np.zeros((height, width), np.uint8),
            np.full((height // 2, width // 2), 128, np.uint8),
            np.full((height // 2, width // 2), 128, np.uint8),
        )

    @staticmethod
    def of_frame(frame: Any) -> Picture:
        """Views on the planes of a yuv420p ``av.VideoFrame`` (no copy)."""
        arrs = []
        for p in frame.planes[:3]:
            a = np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]
            arrs.append(a)
        return Picture(arrs[0], arrs[1], arrs[2])

    def fill(self, rect: Rect, color: tuple[int, int, int] = BLACK) -> None:
        part = self.crop(rect)
        part.y[...] = color[0]
        part.u[...] = color[1]
        part.v[...] = color[2]

    def crop(self, rect: Rect) -> Picture:
        """Views on the pixels of ``rect`` (even), no copy."""
        cy, cx, ch, cw = rect.y // 2, rect.x // 2, rect.h // 2, rect.w // 2
        return Picture(
            self.y[rect.y : rect.bottom, rect.x : rect.right],
            self.u[cy : cy + ch, cx : cx + cw],
            self.v[cy : cy + ch, cx : cx + cw],
        )

    def paste(self, rect: Rect, pic: Picture) -> None:
        """Copy ``pic`` (which must be ``rect``'s size) into ``rect``: the one picture copy."""
        part = self.crop(rect)
        part.y[...] = pic.y
        part.u[...] = pic.u
        part.v[...] = pic.v

    def copy(self) -> Picture:
        """The planes copied into memory of their own."""
        return Picture(self.y.copy(), self.u.copy(), self.v.copy())

    def copy_to(self, other: Picture) -> None:
        """Copy all planes (one copy of the frame: counted by the caller)."""
        np.copyto(other.y, self.y)
        np.copyto(other.u, self.u)
        np.copyto(other.v, self.v)


def new_frame(width: int, height: int, *, black: bool = False) -> tuple[Any, Picture]:
    """A fresh yuv420p ``av.VideoFrame`` (full range) and a picture on its planes.

    The planes are uninitialised unless ``black``: a caller that does not draw every
    pixel (a mosaic with empty cells or margins) asks for black.
    """
    import av

    frame = av.VideoFrame(width, height, "yuv420p")
    frame.color_range = 2  # AVCOL_RANGE_JPEG: the planes keep JPEG's full range
    pic = Picture.of_frame(frame)
    if black:
        pic.fill(Rect(0, 0, width, height), BLACK)
    return frame, pic
