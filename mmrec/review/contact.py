"""The contact sheet: one still per camera at one instant, labeled, as a JPEG.

Quality 92 JPEG, not PNG: a PNG of it cost 0.2-0.37 s of CPU, a third of all drawing; the
JPEG 15 ms. The proxies' decodes are reused; a frame is decoded again only if its cell
needs more pixels than the proxies did.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from mmrec.errors import RecordingError, StreamFormatError, map_exceptions
from mmrec.picture.compose import LIVE, render_tile, to_picture
from mmrec.picture.decode import Decoder
from mmrec.picture.layout import Rect, choose_scale, fit, grid_layout
from mmrec.picture.still import encode_jpeg
from mmrec.picture.text import label, text_px
from mmrec.picture.yuv import Picture
from mmrec.review.multiview import BURN_IN
from mmrec.review.source import SourceFrame
from mmrec.wire import jpeg


def write_contact_sheet(
    path: Path,
    names: list[str],
    shown: list[tuple[SourceFrame, Picture] | None],
    dec: Decoder,
    timecode: str,
    at_s: float,
) -> None:
    """Each camera's ``shown`` frame (with the picture the proxies decoded; None: no
    picture) in a grid under the timecode and ``at_s``, written to ``path``."""
    layout = grid_layout(len(names), (1920, 1080) if len(names) > 1 else (1280, 720))
    head = 2 * (text_px(layout.height // 3) + 8)
    canvas = Picture.new(layout.width, layout.height + head)
    for name, got, cell in zip(names, shown, layout.cells, strict=True):
        cell = Rect(cell.x, cell.y + head, cell.w, cell.h)
        tile: Picture | None = None
        r: Rect | None = None
        if got is not None:
            f, pic = got
            r = fit(pic.width, pic.height, cell)
            if pic.width < r.w or pic.height < r.h:
                info = jpeg.parse_header(f.data)
                if info is not None:
                    scale = choose_scale(info.width, info.height, r.w, r.h, dec.scales)
                    with contextlib.suppress(StreamFormatError):
                        pic = dec.decode(f.data, scale)
            tile = to_picture(pic, r.w, r.h)
        render_tile(canvas, cell, r, tile, LIVE, name, box_alpha=BURN_IN)
    label(
        canvas,
        Rect(0, 0, canvas.width, head),
        f"{timecode}   t = {at_s:.2f} s",
        px=text_px(layout.height // 3),
        where="center",
        box_alpha=BURN_IN,
    )
    data = encode_jpeg(canvas, 92, dec.turbojpeg)
    with map_exceptions({OSError: RecordingError}, f"cannot write {path}"):
        path.write_bytes(data)
