"""One camera's output frames: decode the shown frame once, draw its proxy frame and its
multiview tile from the same planes, in the order of the plan.

A picture of the proxy's exact size (the usual case: the size comes from the camera's
aspect) is decoded straight into the proxy frame: no copy. Its labels are drawn on top, so
what they cover is kept and put back when the next instant holds the same frame. A frame
that cannot be decoded is counted and the last good picture stays on screen; a gap is a
black NO SIGNAL frame.

A :class:`CameraStrand` is touched by one worker at a time (see
:class:`mmrec.review.pipeline.Pipeline`), so it needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from mmrec.errors import StreamFormatError
from mmrec.picture.compose import LIVE, NO_SIGNAL, caption, render_tile, to_picture
from mmrec.picture.decode import Decoder
from mmrec.picture.h264 import H264Writer
from mmrec.picture.layout import Rect, choose_scale, fit
from mmrec.picture.text import restore, text_px
from mmrec.picture.yuv import Picture, new_frame
from mmrec.review.multiview import BURN_IN, Multiview
from mmrec.review.plan import OutputFrame, ProxyPlan
from mmrec.review.source import SourceFrame
from mmrec.wire import jpeg


class CameraStrand:
    """Camera ``index``'s proxy (and its multiview tiles), drawn instant by instant."""

    def __init__(
        self,
        index: int,
        name: str,
        plan: ProxyPlan,
        writer: H264Writer,
        decoder: Decoder,
        multiview: Multiview | None,
    ) -> None:
        self.index = index
        self.name = name
        self.size = plan.sizes[index]  # proxy frame size
        self.writer = writer
        self._plan = plan
        self._dec = decoder
        self._mv = multiview
        self._scales: dict[tuple[int, int], Fraction] = {}  # by source size
        self.pic: Picture | None = None  # its picture; the last good one if it failed
        self.good: SourceFrame | None = None  # the frame that picture is from
        # The proxy's frames, one per instant of a run, reused (libx264 copies them): each
        # an av.VideoFrame and a picture on it; a picture of the proxy's exact size is
        # decoded into them.
        self.frames: list[tuple[Any, Picture]] = []
        self.last = -1  # the frame drawn last
        self.in_frame = False  # ``pic`` is that frame's own (its labels' undersides: under)
        self.under: list[tuple[Rect, Picture]] = []
        self.contact: tuple[SourceFrame, Picture] | None = None  # at the plan's contact_k
        self.decoded = 0
        self.errors = 0
        self.gaps = 0

    def decode(self, data: Any, into: Picture | None) -> Picture:
        """The picture at the smallest scale that covers both its uses (see the plan)."""
        info = jpeg.parse_header(data)
        if info is None:
            raise StreamFormatError("not a JPEG")
        key = (info.width, info.height)
        scale = self._scales.get(key)
        if scale is None:
            w, h = self._plan.picture_size(self.index, *key)
            scale = self._scales[key] = choose_scale(*key, w, h, self._dec.scales)
        return self._dec.decode(data, scale, into)

    def draw(
        self,
        out: OutputFrame[SourceFrame],
        slot: int,
        held_next: bool,
        mv_canvas: Picture | None,
        cpu: list[float],
    ) -> Any:
        """Decode and draw the proxy frame (the run's ``slot``-th) and the multiview tile of
        output frame ``out``; returns the frame, for the caller to encode. ``held_next``:
        the next output frame may hold this picture (keep what the labels cover)."""
        i = self.index
        t0 = time.thread_time()
        while len(self.frames) <= slot:
            self.frames.append(new_frame(*self.size))
        frame_out, canvas = self.frames[slot]
        frame = out.shown[i]
        if frame is not None and not out.held[i]:
            self.under.clear()
            try:
                self.pic = self.decode(frame.data, canvas)
                self.good = frame
                self.decoded += 1
            except StreamFormatError:
                self.errors += 1  # shows the last good picture
                if self.good is not None and any(self.pic is c for _, c in self.frames):
                    try:  # the last good picture was in a proxy frame: decode it again
                        self.pic = self.decode(self.good.data, canvas)
                    except StreamFormatError:
                        self.pic = None
            self.in_frame = self.pic is canvas
        elif frame is not None and self.in_frame:
            # the same picture again: from the last frame, without its labels
            if self.last != slot:
                self.frames[self.last][1].copy_to(canvas)
            restore(canvas, self.under)
            self.pic = canvas
        self.last = slot
        pic = self.pic if frame is not None else None
        if out.k == self._plan.contact_k and frame is not None and pic is not None:
            # the frame is drawn on and reused: keep a copy
            self.contact = (frame, pic.copy() if self.in_frame else pic)
        t1 = time.thread_time()
        full = Rect(0, 0, *self.size)
        if pic is None:
            self.gaps += 1
            self.in_frame = False  # black now: the next picture is drawn in full
            render_tile(
                canvas, full, None, None, NO_SIGNAL, self.name,
                corner_text=out.timecode, box_alpha=BURN_IN,
            )  # fmt: skip
        elif not self.in_frame:
            r = fit(pic.width, pic.height, full)
            render_tile(
                canvas, full, r, to_picture(pic, r.w, r.h), LIVE, self.name,
                corner_text=out.timecode, box_alpha=BURN_IN,
            )  # fmt: skip
        if self._mv is not None and mv_canvas is not None:
            self._mv.tile(mv_canvas, i, pic)  # before the labels cover the picture
        if pic is not None and self.in_frame:
            # What the labels cover is kept only if the next instant may show this picture
            # again: with a new frame there, it is decoded anew and the copy is not needed.
            caption(
                canvas, full, self.name, out.timecode, px=text_px(full.h),
                under=self.under if held_next else None, box_alpha=BURN_IN,
            )  # fmt: skip
        cpu[0] += t1 - t0
        cpu[1] += time.thread_time() - t1
        return frame_out

    def encode(self, frames: Sequence[Any]) -> None:
        for f in frames:
            self.writer.write(f)
