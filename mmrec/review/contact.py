"""The contact sheet: one still per camera at one instant, labeled, as a JPEG.

Quality 92 JPEG, not PNG: a PNG of it cost 0.2-0.37 s of CPU, a third of all drawing; the
JPEG 15 ms. The proxies' decodes are reused; a frame is decoded again only if its cell
needs more pixels than the proxies did.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Final

from mmrec.errors import RecordingError, StreamFormatError, TakeError, map_exceptions
from mmrec.picture.compose import LIVE, render_tile, to_picture
from mmrec.picture.decode import Decoder, default_decoder
from mmrec.picture.layout import Rect, choose_scale, fit, grid_layout
from mmrec.picture.still import encode_jpeg
from mmrec.picture.text import label, text_px
from mmrec.picture.yuv import Picture
from mmrec.review.multiview import BURN_IN
from mmrec.review.options import ProxyOptions
from mmrec.review.plan import contact_slot
from mmrec.review.source import SourceFrame
from mmrec.store.reader import open_cameras
from mmrec.store.take import load_manifest
from mmrec.timeline.grid import take_grid
from mmrec.timeline.slots import FILLER_SLOT, plan_camera
from mmrec.wire import jpeg

HOLD_NS: Final = int(ProxyOptions().gap_s * 1e9)  # as the proxies hold a picture


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


def contact_sheet_of_take(
    take_dir: Path, path: Path, at_s: float | None = None, dec: Decoder | None = None
) -> Path:
    """The contact sheet of a recorded take, without making proxies: at ``at_s`` seconds
    from the start of the take's grid, else where the most cameras have a picture (the
    proxies' choice, :func:`mmrec.review.plan.contact_slot`); per camera the frame its
    proxy and exported MOV show there, read by seeking in its segment and decoded once.
    Raises :class:`TakeError` if the take cannot be read, :class:`RecordingError` if the
    sheet cannot be written. The console makes one after every take, in a thread."""
    dec = dec or default_decoder()
    manifest = load_manifest(take_dir)
    cams = [c for c in open_cameras(take_dir, manifest) if c.times]
    if not cams:
        raise TakeError(f"{take_dir}: the take has no camera with frames")
    grid = take_grid(manifest.day_clock, [(c.entry.rate, c.times) for c in cams], None).grid
    instants = grid.instants()
    plans = [plan_camera(c.times, grid, HOLD_NS, instants) for c in cams]
    k = contact_slot(plans, grid, at_s)
    shown: list[tuple[SourceFrame, Picture] | None] = []
    for cam, plan in zip(cams, plans, strict=True):
        i = plan.source[k]
        packet = cam.packet_at(i) if i != FILLER_SLOT else None
        pic = None
        if packet is not None:
            with contextlib.suppress(StreamFormatError):
                pic = dec.decode(packet, min(dec.scales))
        frame = SourceFrame(cam.times[i], cam.rows[i].seq, packet) if packet is not None else None
        shown.append((frame, pic) if frame is not None and pic is not None else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_contact_sheet(
        path,
        [c.name for c in cams],
        shown,
        dec,
        grid.timecode_at(k),
        (grid.begin(k) - grid.start_ns) / 1e9,
    )
    return path
