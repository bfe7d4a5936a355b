"""The multiview proxy: every camera tiled on one frame, the timecode on top.

Each camera's strand draws its own tile (:meth:`Multiview.tile`, disjoint rectangles of
the instant's frame) right after it decoded the picture, while the planes are in cache;
once every camera has drawn, :meth:`Multiview.finish` labels and encodes the frame.
Labels are a "window burn" (see :data:`BURN_IN`).
"""

from __future__ import annotations

import time
from typing import Any, Final

from mmrec.picture.compose import NO_SIGNAL, paste_scaled, render_tile
from mmrec.picture.h264 import H264Writer
from mmrec.picture.layout import Rect, around, fit, grid_layout
from mmrec.picture.text import label, opaque_label, text_px
from mmrec.picture.yuv import BLACK, Picture

# Labels on the proxies are a "window burn": white text on an opaque black box, as
# editors know it; legible on any picture, and a copy of cached pixels rather than a blend
# per frame (measured: ~0.3 s of CPU of ~11.5 for four 20 s proxies and the multiview).
BURN_IN: Final = 255


class Multiview:
    """The multiview of ``names`` at ``size``, written by ``writer``."""

    def __init__(self, names: list[str], size: tuple[int, int], writer: H264Writer) -> None:
        self.names = names
        self.size = size
        self.writer = writer
        layout = grid_layout(len(names), size)
        self.cells = layout.cells
        # What no tile covers (margins, empty cells): black again in each reused frame,
        # since the timecode label may lie on it.
        w, h = size
        x0, y0, cw, ch = self.cells[0].x, self.cells[0].y, self.cells[0].w, self.cells[0].h
        grid = Rect(x0, y0, layout.cols * cw, layout.rows * ch)
        empty = [
            Rect(x0 + (i % layout.cols) * cw, y0 + (i // layout.cols) * ch, cw, ch)
            for i in range(len(names), layout.cols * layout.rows)
        ]
        self.background = around(Rect(0, 0, w, h), grid) + tuple(empty)
        self.cpu = [0.0, 0.0]  # compose, encode (one strand: no lock needed)
        # per (camera, picture size): rectangle, bars, name label (see tile)
        self._tiles: dict[tuple[int, int, int], tuple[Rect, tuple[Rect, ...], Any]] = {}

    def tile(self, canvas: Picture, i: int, pic: Picture | None) -> None:
        """Draw camera ``i``'s tile: ``pic`` resized into it, or NO SIGNAL."""
        cell = self.cells[i]
        if pic is None:
            render_tile(canvas, cell, None, None, NO_SIGNAL, self.names[i], box_alpha=BURN_IN)
            return
        key = (i, pic.width, pic.height)
        plan = self._tiles.get(key)
        if plan is None:
            # What render_tile draws for a live picture of this size, worked out once:
            # the black bars beside it, its rectangle, the name label's pixels.
            r = fit(pic.width, pic.height, cell)
            name = (
                opaque_label(self.names[i], text_px(cell.h), r, "bottom-left", BLACK)
                if self.names[i]
                else None
            )
            plan = self._tiles[key] = (r, around(cell, r), name)
        r, bars, name = plan
        for b in bars:
            canvas.fill(b)
        paste_scaled(canvas, r, pic)  # resized straight into the frame: one copy
        if name is not None:
            canvas.paste(*name)

    def finish(self, frame: Any, canvas: Picture, timecode: str) -> None:
        """Black what no tile covers, burn in the timecode, encode the frame."""
        t0 = time.thread_time()
        for r in self.background:
            canvas.fill(r)
        whole = Rect(0, 0, canvas.width, canvas.height)
        label(
            canvas,
            whole,
            timecode,
            px=text_px(canvas.height // 2),
            where="top-right",
            box_alpha=BURN_IN,
        )
        t1 = time.thread_time()
        self.writer.write(frame)
        t2 = time.thread_time()
        self.cpu[0] += t1 - t0
        self.cpu[1] += t2 - t1
