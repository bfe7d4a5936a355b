"""Labels burned into pictures: camera names, timecodes, STALE / NO SIGNAL texts.

Text is rendered once per (text, size) with Pillow and cached as an alpha bitmap; a label
is a box in a corner (or the centre) of a rectangle, translucent (blended anew each frame)
or opaque, a "window burn" whose pixels are cached and copied. A timecode that changes
every frame is put together from cached digit patches: the same pixels as the whole label
rendered, for a few small copies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from mmrec.picture.layout import Rect
from mmrec.picture.yuv import BLACK, Picture


@functools.lru_cache(maxsize=32)
def _font(px: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=px)


def _metrics(px: int) -> tuple[int, int]:
    from PIL import ImageFont

    font = _font(px)
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return int(ascent), int(descent)
    return px, px // 4  # Pillow without FreeType: a fixed bitmap font


_TIMECODE_CHARS: Final = frozenset("0123456789:;. ")


@functools.lru_cache(maxsize=512)
def _glyph(ch: str, px: int) -> npt.NDArray[np.uint16]:
    """One character at its advance width, on the label's line height (no padding)."""
    from PIL import Image, ImageDraw

    font = _font(px)
    ascent, descent = _metrics(px)
    pad = max(1, px // 6)
    w = max(1, round(font.getlength(ch)))
    img = Image.new("L", (w, ascent + descent + pad), 0)
    ImageDraw.Draw(img).text((0, pad // 2), ch, fill=255, font=font)
    return np.asarray(img, dtype=np.uint16)


@functools.lru_cache(maxsize=1024)
def text_bitmap(text: str, px: int) -> npt.NDArray[np.uint16]:
    """``text`` rendered white on black at ``px`` pixels high: an alpha map (0..255).

    Timecodes change every frame, so they are put together from cached glyphs (digits
    have equal advances: nothing moves) instead of being rendered each time.
    """
    from PIL import Image, ImageDraw

    ascent, descent = _metrics(px)
    pad = max(1, px // 6)
    h = ascent + descent + pad
    if text and set(text) <= _TIMECODE_CHARS:
        side = np.zeros((h, pad), np.uint16)
        out = np.hstack([side, *(_glyph(ch, px) for ch in text), side])
        if out.shape[1] % 2:
            out = np.hstack([out, np.zeros((h, 1), np.uint16)])
        if h % 2:
            out = np.vstack([out, np.zeros((1, out.shape[1]), np.uint16)])
        return out
    font = _font(px)
    # Box height from the font's metrics, not the text's ink: labels line up.
    left, _, right, _ = (int(v) for v in font.getbbox(text))
    w = right - left + 2 * pad
    img = Image.new("L", (w + w % 2, h + h % 2), 0)
    ImageDraw.Draw(img).text((pad - left, pad // 2), text, fill=255, font=font)
    return np.asarray(img, dtype=np.uint16)


def text_px(rect_h: int) -> int:
    """Label text height for a tile of this height (legible from 180p to 1080p)."""
    return max(10, min(44, rect_h // 14))


def fit_px(text: str, px: int, width: int) -> int:
    """The largest text size up to ``px`` whose label fits in ``width`` (margins included)."""
    while px > 8 and text_bitmap(_shape(text, px), px).shape[1] + 2 * max(2, px // 4) > width:
        px = max(8, px * 5 // 6)
    return px


def label_width(text: str, px: int) -> int:
    return int(text_bitmap(_shape(text, px), px).shape[1]) + max(2, px // 4)


_ZEROS: Final = str.maketrans("123456789", "000000000")


@functools.lru_cache(maxsize=64)
def _equal_digits(px: int) -> bool:
    """Whether the ten digits have one advance width at ``px`` (true of the fonts we use;
    a timecode's label then has the same size and place whatever its digits)."""
    return len({_glyph(d, px).shape[1] for d in "0123456789"}) == 1


def _shape(text: str, px: int) -> str:
    """A text with the same bitmap size as ``text`` at ``px``: a timecode's digits as 0."""
    if len(text) > 1 and set(text) <= _TIMECODE_CHARS and _equal_digits(px):
        return text.translate(_ZEROS)
    return text


@dataclass(frozen=True, slots=True)
class _Stamp:
    """A label's placement and text-blend weights, for one (text, size, rectangle)."""

    rect: Rect
    keep: npt.NDArray[np.uint16]  # luma: 255 - alpha (what the box keeps)
    ink: npt.NDArray[np.uint16]  # luma: 255 * alpha (white text)
    keep_c: npt.NDArray[np.uint16]  # chroma (alpha at every other sample)
    ink_c: npt.NDArray[np.uint16]  # 128 * alpha (neutral text)


@functools.lru_cache(maxsize=256)
def _stamp(text: str, px: int, rect: Rect, where: str) -> _Stamp | None:
    px = fit_px(text, px, rect.w)
    alpha = text_bitmap(text, px)
    h, w = alpha.shape
    h, w = min(h, rect.h), min(w, rect.w)
    if h < 2 or w < 2:
        return None
    m = max(2, px // 4) // 2 * 2
    if where == "center":
        x = rect.x + (rect.w - w) // 2
        y = rect.y + (rect.h - h) // 2
    else:
        x = rect.x + m if where.endswith("left") else rect.right - m - w
        y = rect.y + m if where.startswith("top") else rect.bottom - m - h
    x, y = max(rect.x, x // 2 * 2), max(rect.y, y // 2 * 2)
    w, h = min(w, rect.right - x) // 2 * 2, min(h, rect.bottom - y) // 2 * 2
    alpha = alpha[:h, :w]
    ca = alpha[::2, ::2][: h // 2, : w // 2]
    return _Stamp(Rect(x, y, w, h), 255 - alpha, 255 * alpha, 255 - ca, 128 * ca)


@functools.lru_cache(maxsize=256)
def _opaque(
    text: str, px: int, rect: Rect, where: str, box: tuple[int, int, int]
) -> tuple[Rect, Picture] | None:
    """An opaque label's pixels: they do not depend on the picture, so they are made once
    and copied (a translucent label is blended anew every frame)."""
    st = _stamp(text, px, rect, where)
    if st is None:
        return None
    planes = [
        ((bc * keep + ink) // 255).astype(np.uint8)
        for bc, keep, ink in (
            (box[0], st.keep, st.ink),
            (box[1], st.keep_c, st.ink_c),
            (box[2], st.keep_c, st.ink_c),
        )
    ]
    return st.rect, Picture(*planes)


@dataclass(frozen=True, slots=True)
class _Patch:
    """Pixels of one digit of an opaque label: luma at (y, x), chroma at (y/2, cx)."""

    y: int
    x: int
    cx: int
    pic: Picture


@functools.lru_cache(maxsize=256)
def _digit_patch(
    digit: str, px: int, box: tuple[int, int, int], y: int, x: int, h: int, w: int
) -> _Patch:
    """The opaque pixels of ``digit``'s glyph put at (y, x), cut to ``h`` rows and ``w``
    columns: computed as :func:`_opaque` computes a whole label, so the same values."""
    g = _glyph(digit, px)
    alpha = np.zeros((h, w), np.uint16)
    gh = min(h, g.shape[0])
    alpha[:gh] = g[:gh, :w]
    # chroma samples sit on even luma columns: those of the glyph at even x + j
    first = x % 2
    ca = alpha[::2, first::2]
    return _Patch(
        y,
        x,
        (x + first) // 2,
        Picture(
            ((box[0] * (255 - alpha) + 255 * alpha) // 255).astype(np.uint8),
            ((box[1] * (255 - ca) + 128 * ca) // 255).astype(np.uint8),
            ((box[2] * (255 - ca) + 128 * ca) // 255).astype(np.uint8),
        ),
    )


@functools.lru_cache(maxsize=64)
def _digit_slots(
    shape: str, px: int, rect: Rect, where: str
) -> tuple[int, tuple[int | None, ...]] | None:
    """For a timecode's shape (digits as 0): the text size the label is drawn at and each
    character's column in the label (None: not a digit, or cut off); None if the digits'
    glyphs would not be placed independently of each other."""
    fpx = fit_px(shape, px, rect.w)
    st = _stamp(shape, px, rect, where)
    if st is None or not _equal_digits(fpx):
        return None
    x = max(1, fpx // 6)  # text_bitmap's side padding
    slots: list[int | None] = []
    for ch in shape:
        slots.append(x if ch == "0" and x < st.rect.w else None)
        x += int(_glyph(ch, fpx).shape[1])
    return fpx, tuple(slots)


def opaque_label(
    text: str, px: int, rect: Rect, where: str, box: tuple[int, int, int] = BLACK
) -> tuple[Rect, Picture] | None:
    """The pixels :func:`label` copies for a fixed text with ``box_alpha=255``, and where:
    for a caller that draws the same label on every frame (``canvas.paste(*got)``)."""
    return _opaque(text, px, rect, where, box)


def _opaque_text(
    text: str, px: int, rect: Rect, where: str, box: tuple[int, int, int]
) -> tuple[Rect, Picture, list[_Patch]] | None:
    """An opaque label as cached pixels: for a timecode, the label of its shape (digits as
    0) and one cached patch per other digit, so a new timecode costs a few small copies
    instead of a new bitmap, placement and blend (the pixels are the same)."""
    shape = _shape(text, px)
    got = _opaque(shape, px, rect, where, box)
    if got is None or shape == text:
        return None if got is None else (*got, [])
    r, pic = got
    slots = _digit_slots(shape, px, rect, where)
    if slots is None:
        got = _opaque(text, px, rect, where, box)
        return None if got is None else (*got, [])
    fpx, xs = slots
    patches = []
    for ch, x in zip(text, xs, strict=True):
        if x is not None and ch != "0":
            w = min(int(_glyph(ch, fpx).shape[1]), r.w - x)
            patches.append(_digit_patch(ch, fpx, box, r.y, r.x + x, r.h, w))
    return r, pic, patches


def label(
    canvas: Picture,
    rect: Rect,
    text: str,
    *,
    px: int,
    where: str = "bottom-left",
    box: tuple[int, int, int] = BLACK,
    box_alpha: int = 160,
    under: list[tuple[Rect, Picture]] | None = None,
) -> None:
    """Draw ``text`` on a box in a corner (or the centre) of ``rect``: translucent, or
    opaque with ``box_alpha=255`` (a "window burn", which costs a copy).

    With ``under``, a copy of the pixels the label covers is appended to it first, so the
    picture can be put back (:func:`restore`) instead of drawn again.
    """
    if not text:
        return
    if box_alpha >= 255:
        parts = _opaque_text(text, px, rect, where, box)
        if parts is None:
            return
        r, pic, patches = parts
        if under is not None:
            under.append((r, canvas.crop(r).copy()))
        canvas.paste(r, pic)
        for p in patches:
            h, w = p.pic.y.shape
            ch, cw = p.pic.u.shape
            canvas.y[p.y : p.y + h, p.x : p.x + w] = p.pic.y
            canvas.u[p.y // 2 : p.y // 2 + ch, p.cx : p.cx + cw] = p.pic.u
            canvas.v[p.y // 2 : p.y // 2 + ch, p.cx : p.cx + cw] = p.pic.v
        return
    st = _stamp(text, px, rect, where)
    if st is None:
        return
    part = canvas.crop(st.rect)
    if under is not None:
        under.append((st.rect, part.copy()))
    # Box: blend towards the box colour, then the text: blend towards white (in place, on
    # one 16-bit copy per plane; the weights are the stamp's).
    for plane, bc, keep, ink in (
        (part.y, box[0], st.keep, st.ink),
        (part.u, box[1], st.keep_c, st.ink_c),
        (part.v, box[2], st.keep_c, st.ink_c),
    ):
        t = plane.astype(np.uint16)
        t *= 256 - box_alpha
        t += bc * box_alpha
        t >>= 8
        t *= keep
        t += ink
        t //= 255
        plane[...] = t


def restore(canvas: Picture, under: list[tuple[Rect, Picture]]) -> None:
    """Put back what labels covered (saved by :func:`label`), newest first, and forget it."""
    while under:
        rect, pic = under.pop()
        canvas.paste(rect, pic)
