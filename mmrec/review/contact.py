"""The contact sheet: one still per camera at one instant, labeled, as a JPEG.

Quality 92 JPEG, not PNG: a PNG of it cost 0.2-0.37 s of CPU, a third of all drawing; the
JPEG 15 ms. The proxies' decodes are reused; a frame is decoded again only if its cell
needs more pixels than the proxies did.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path

import av

from mmrec.errors import RecordingError, StreamFormatError, TakeError, map_exceptions
from mmrec.picture.compose import LIVE, render_tile, to_picture
from mmrec.picture.decode import Decoder, default_decoder
from mmrec.picture.layout import Rect, choose_scale, fit, grid_layout
from mmrec.picture.still import encode_jpeg
from mmrec.picture.text import label, text_px
from mmrec.picture.yuv import Picture
from mmrec.review.multiview import BURN_IN
from mmrec.review.source import CameraScan, SourceFrame, scan_camera
from mmrec.store.take import CameraEntry, load_manifest, segment_name
from mmrec.timeline.timecode import TIMECODE_RATE, timecode_add
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


def contact_sheet_of_take(
    take_dir: Path, path: Path, at_s: float | None = None, dec: Decoder | None = None
) -> Path:
    """The contact sheet of a recorded take at ``at_s`` (default: its middle), without
    making proxies: per camera, the frame captured at or just before that instant is
    read from its segment by seeking (Cues point to every cluster, at least one a
    second) and decoded once at the size its cell needs. Raises :class:`TakeError` if
    the take cannot be read, :class:`RecordingError` if the sheet cannot be written.
    The console makes one after every take, in a thread."""
    dec = dec or default_decoder()
    manifest = load_manifest(take_dir)
    at_ns = int(at_s * 1e9) if at_s is not None else (manifest.duration_ns or 0) // 2
    names: list[str] = []
    shown: list[tuple[SourceFrame, Picture] | None] = []
    for cam in manifest.cameras:
        names.append(cam.name)
        frame = _frame_at(take_dir, cam, scan_camera(take_dir, cam), at_ns)
        pic = None
        if frame is not None:
            with contextlib.suppress(StreamFormatError):
                pic = dec.decode(frame.data, min(dec.scales))
        shown.append((frame, pic) if frame is not None and pic is not None else None)
    if not names:
        raise TakeError(f"{take_dir}: the take has no cameras")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_contact_sheet(
        path, names, shown, dec, timecode_add(manifest.timecode, at_ns, TIMECODE_RATE), at_ns / 1e9
    )
    return path


def _frame_at(take_dir: Path, cam: CameraEntry, scan: CameraScan, at_ns: int) -> SourceFrame | None:
    """The camera's frame captured at or just before ``at_ns`` (its first if none is)."""
    rows = [r for r in scan.rows if r.time_ns <= at_ns] or scan.rows[:1]
    if not rows:
        return None
    row = rows[-1]
    seg = take_dir / cam.dir / segment_name(row.segment)
    try:
        with av.open(str(seg)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base or Fraction(1, 1000)
            container.seek(int(row.pts / 1000 / tb), stream=stream, backward=True, any_frame=True)
            for packet in container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue
                pts_ms = int(packet.pts * tb * 1000)
                if pts_ms >= row.pts:
                    return SourceFrame(row.time_ns, row.seq, bytes(packet))
    except (av.FFmpegError, OSError, IndexError, EOFError):
        return None
    return None
