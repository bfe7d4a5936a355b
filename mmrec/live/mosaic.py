"""Compose decoded pictures, labels and stale/lost marks into 4:2:0 frames.

Everything here works on a :class:`Canvas`: three numpy planes (Y at full size, Cb/Cr at
half size each way, full-range JFIF values as libjpeg-turbo produces them). A canvas can
wrap the planes of a freshly allocated ``av.VideoFrame`` so a picture is copied exactly
once, from the decoder's planes into the frame the encoder gets.

Invariants:
- A picture only ever lands in whole chroma samples (rectangles are even, see mmrec.live.tile).
- A tile that is not live is never left looking live: a stale tile is dimmed with a red
  border and "STALE 3.2 s"; a lost tile is dimmed further with "LOST"; a tile without any
  picture is black with "NO SIGNAL" (or the text given).
- Text is rendered once per (text, size) with Pillow and cached as an alpha bitmap.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from mmrec.live.decode import Plane, Planes
from mmrec.live.tile import Rect

# Full-range BT.601 YCbCr (what JPEG uses).
RED: Final = (76, 85, 255)
WHITE: Final = (255, 128, 128)
BLACK: Final = (0, 128, 128)


@dataclass(frozen=True, slots=True)
class Picture:
    """A picture at its tile's size in 4:2:0: Y (h x w), Cb and Cr (h/2 x w/2)."""

    y: Plane
    u: Plane
    v: Plane

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, slots=True)
class Mark:
    """How a tile is shown: ``live``, ``stale``, ``lost`` or ``nosignal``, with its text."""

    kind: str = "live"
    text: str = ""

    @staticmethod
    def stale(age_s: float) -> Mark:
        return Mark("stale", f"STALE {age_s:.1f} s")


LIVE: Final = Mark()
LOST: Final = Mark("lost", "LOST")
NO_SIGNAL: Final = Mark("nosignal", "NO SIGNAL")


@dataclass(frozen=True, slots=True)
class Canvas:
    """Three writable planes of one 4:2:0 frame."""

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
    def new(width: int, height: int) -> Canvas:
        c = Canvas(
            np.zeros((height, width), np.uint8),
            np.full((height // 2, width // 2), 128, np.uint8),
            np.full((height // 2, width // 2), 128, np.uint8),
        )
        return c

    @staticmethod
    def of_frame(frame: Any) -> Canvas:
        """Views on the planes of a yuv420p ``av.VideoFrame`` (no copy)."""
        arrs = []
        for p in frame.planes[:3]:
            a = np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]
            arrs.append(a)
        return Canvas(arrs[0], arrs[1], arrs[2])

    def fill(self, rect: Rect, color: tuple[int, int, int] = BLACK) -> None:
        self.y[rect.y : rect.bottom, rect.x : rect.right] = color[0]
        cy, cx, ch, cw = rect.y // 2, rect.x // 2, rect.h // 2, rect.w // 2
        self.u[cy : cy + ch, cx : cx + cw] = color[1]
        self.v[cy : cy + ch, cx : cx + cw] = color[2]

    def copy_to(self, other: Canvas) -> None:
        """Copy all planes (one copy of the frame: counted by the caller)."""
        np.copyto(other.y, self.y)
        np.copyto(other.u, self.u)
        np.copyto(other.v, self.v)


def new_frame(width: int, height: int, *, black: bool = False) -> tuple[Any, Canvas]:
    """A fresh yuv420p ``av.VideoFrame`` (full range) and a canvas on its planes.

    The planes are uninitialised unless ``black``: a caller that does not draw every
    pixel (a mosaic with empty cells or margins) asks for black.
    """
    import av

    frame = av.VideoFrame(width, height, "yuv420p")
    frame.color_range = 2  # AVCOL_RANGE_JPEG: the planes keep JPEG's full range
    canvas = Canvas.of_frame(frame)
    if black:
        canvas.fill(Rect(0, 0, width, height), BLACK)
    return frame, canvas


@functools.lru_cache(maxsize=64)
def _index(src: int, dst: int) -> npt.NDArray[np.intp]:
    """Nearest-neighbour source index for each destination sample (sample centres)."""
    return ((np.arange(dst, dtype=np.intp) * 2 + 1) * src // (2 * dst)).astype(np.intp)


def _halve_into(out: Plane, plane: Plane) -> bool:
    """Every other sample of every other row of ``plane`` into ``out`` (half its size each
    way), taken as the low byte of each 16-bit pair: one contiguous cast per row instead of
    a byte-strided copy (measured 11 us vs 40 us for 480x270, including a blit). False if
    the rows are not contiguous and 2-byte aligned (the caller copies some other way)."""
    if plane.strides[1] != 1:
        return False
    pairs = plane[::2].view(np.uint16)
    if not pairs.flags.aligned:
        return False
    np.copyto(out, pairs, casting="unsafe")
    return True


def _resize(plane: Plane, h: int, w: int) -> Plane:
    sh, sw = plane.shape
    if (sh, sw) == (h, w):
        return plane
    if sh == 2 * h and sw == 2 * w:  # exact halving
        out = np.empty((h, w), np.uint8)
        return out if _halve_into(out, plane) else plane[::2, ::2]
    if sh == 2 * h and sw == w:  # 4:2:2 chroma -> 4:2:0
        return plane[::2]
    return plane[np.ix_(_index(sh, h), _index(sw, w))]


def _resize_into(out: Plane, plane: Plane) -> None:
    """``plane`` resized to ``out``'s size, written there (as :func:`_resize`, one copy)."""
    h, w = out.shape
    sh, sw = plane.shape
    if sh == 2 * h and sw == 2 * w and _halve_into(out, plane):
        return
    out[...] = _resize(plane, h, w)


def to_picture(planes: Planes | Picture, width: int, height: int) -> Picture:
    """The planes at ``width`` x ``height`` (even) in 4:2:0, by nearest-neighbour.

    No work at all when the decode already has the size; otherwise strided views or one
    gather per plane. Any chroma subsampling (4:2:0, 4:2:2, 4:4:4) maps onto 4:2:0.
    """
    return Picture(
        _resize(planes.y, height, width),
        _resize(planes.u, height // 2, width // 2),
        _resize(planes.v, height // 2, width // 2),
    )


def blit(canvas: Canvas, rect: Rect, pic: Picture) -> None:
    """Copy ``pic`` (which must be ``rect``'s size) into the canvas: the one picture copy."""
    canvas.y[rect.y : rect.bottom, rect.x : rect.right] = pic.y
    cy, cx = rect.y // 2, rect.x // 2
    canvas.u[cy : cy + rect.h // 2, cx : cx + rect.w // 2] = pic.u
    canvas.v[cy : cy + rect.h // 2, cx : cx + rect.w // 2] = pic.v


def blit_scaled(canvas: Canvas, rect: Rect, planes: Planes | Picture) -> None:
    """:func:`blit` of ``to_picture(planes, rect.w, rect.h)``, the same pixels, but resized
    straight into the canvas: the one picture copy, no intermediate picture."""
    cy, cx, ch, cw = rect.y // 2, rect.x // 2, rect.h // 2, rect.w // 2
    _resize_into(canvas.y[rect.y : rect.bottom, rect.x : rect.right], planes.y)
    _resize_into(canvas.u[cy : cy + ch, cx : cx + cw], planes.u)
    _resize_into(canvas.v[cy : cy + ch, cx : cx + cw], planes.v)


def dim(canvas: Canvas, rect: Rect, shift: int = 1) -> None:
    """Darken and desaturate a rectangle (luma / 2**shift, chroma halfway to grey)."""
    ys = canvas.y[rect.y : rect.bottom, rect.x : rect.right]
    ys >>= shift
    cy, cx, ch, cw = rect.y // 2, rect.x // 2, rect.h // 2, rect.w // 2
    for c in (canvas.u, canvas.v):
        cs = c[cy : cy + ch, cx : cx + cw]
        cs >>= 1
        cs += 64


def border(canvas: Canvas, rect: Rect, thickness: int, color: tuple[int, int, int] = RED) -> None:
    t = max(2, min(thickness, rect.w // 2, rect.h // 2)) // 2 * 2
    for r in (
        Rect(rect.x, rect.y, rect.w, t),
        Rect(rect.x, rect.bottom - t, rect.w, t),
        Rect(rect.x, rect.y, t, rect.h),
        Rect(rect.right - t, rect.y, t, rect.h),
    ):
        canvas.fill(r, color)


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
    for a caller that draws the same label on every frame (``blit(canvas, *got)``)."""
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
    canvas: Canvas,
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
            cy, cx = r.y // 2, r.x // 2
            under.append(
                (
                    r,
                    Picture(
                        canvas.y[r.y : r.bottom, r.x : r.right].copy(),
                        canvas.u[cy : cy + r.h // 2, cx : cx + r.w // 2].copy(),
                        canvas.v[cy : cy + r.h // 2, cx : cx + r.w // 2].copy(),
                    ),
                )
            )
        blit(canvas, r, pic)
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
    x, y, w, h = st.rect.x, st.rect.y, st.rect.w, st.rect.h
    cy, cx = y // 2, x // 2
    ys = canvas.y[y : y + h, x : x + w]
    us = canvas.u[cy : cy + h // 2, cx : cx + w // 2]
    vs = canvas.v[cy : cy + h // 2, cx : cx + w // 2]
    if under is not None:
        under.append((st.rect, Picture(ys.copy(), us.copy(), vs.copy())))
    # Box: blend towards the box colour, then the text: blend towards white (in place, on
    # one 16-bit copy per plane; the weights are the stamp's).
    for plane, bc, keep, ink in (
        (ys, box[0], st.keep, st.ink),
        (us, box[1], st.keep_c, st.ink_c),
        (vs, box[2], st.keep_c, st.ink_c),
    ):
        t = plane.astype(np.uint16)
        t *= 256 - box_alpha
        t += bc * box_alpha
        t >>= 8
        t *= keep
        t += ink
        t //= 255
        plane[...] = t


def mark(canvas: Canvas, rect: Rect, m: Mark) -> None:
    """Show a non-live state over the picture already in ``rect``."""
    if m.kind == "live":
        return
    px = max(12, min(72, rect.h // 7))
    if m.kind == "nosignal":
        canvas.fill(rect, BLACK)
        label(canvas, rect, m.text, px=px, where="center", box=(40, 128, 128), box_alpha=255)
        return
    dim(canvas, rect, 1 if m.kind == "stale" else 2)
    border(canvas, rect, max(4, rect.h // 40))
    label(canvas, rect, m.text, px=px, where="center", box=RED, box_alpha=220)


def render_tile(
    canvas: Canvas,
    cell: Rect,
    pic_rect: Rect | None,
    pic: Picture | Planes | None,
    m: Mark,
    name: str,
    *,
    corner_text: str = "",
    box_alpha: int = 160,
) -> None:
    """Draw one tile: black cell, the picture (if any), its mark, and its labels (on boxes
    of ``box_alpha``, see :func:`label`). ``pic`` is drawn at ``pic_rect``'s size: planes
    of another size are resized into the canvas as :func:`to_picture` would."""
    if pic is not None and pic_rect is not None:
        # black bars around the picture only: the picture overwrites the rest
        r = pic_rect
        for bar in (
            Rect(cell.x, cell.y, cell.w, r.y - cell.y),
            Rect(cell.x, r.bottom, cell.w, cell.bottom - r.bottom),
            Rect(cell.x, r.y, r.x - cell.x, r.h),
            Rect(r.right, r.y, cell.right - r.right, r.h),
        ):
            if bar.w > 0 and bar.h > 0:
                canvas.fill(bar, BLACK)
        blit_scaled(canvas, pic_rect, pic)
    else:
        canvas.fill(cell, BLACK)
        if m.kind == "live":
            m = NO_SIGNAL
    target = pic_rect if pic is not None and pic_rect is not None else cell
    mark(canvas, target, m if pic is not None or m.kind != "lost" else Mark("nosignal", "LOST"))
    # Labels sit on the picture (the cell's bars may be far from it), on the cell if none.
    where = pic_rect if pic is not None and pic_rect is not None else cell
    caption(canvas, where, name, corner_text, px=text_px(cell.h), box_alpha=box_alpha)


def caption(
    canvas: Canvas,
    rect: Rect,
    name: str,
    corner_text: str = "",
    *,
    px: int,
    under: list[tuple[Rect, Picture]] | None = None,
    box_alpha: int = 160,
) -> None:
    """A tile's labels on ``rect``: the name bottom left, ``corner_text`` bottom right
    (top right when both do not fit on one line). ``under`` and ``box_alpha`` as for
    :func:`label`."""
    label(canvas, rect, name, px=px, where="bottom-left", under=under, box_alpha=box_alpha)
    if corner_text:
        fits = label_width(name, px) + label_width(corner_text, px) + 2 * px <= rect.w
        where = "bottom-right" if fits else "top-right"
        label(canvas, rect, corner_text, px=px, where=where, under=under, box_alpha=box_alpha)


def restore(canvas: Canvas, under: list[tuple[Rect, Picture]]) -> None:
    """Put back what labels covered (saved by :func:`label`), newest first, and forget it."""
    while under:
        rect, pic = under.pop()
        blit(canvas, rect, pic)


def encode_jpeg(canvas: Canvas, quality: int = 80, tj: Any = None) -> bytes:
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


def to_rgb(canvas: Canvas) -> npt.NDArray[np.uint8]:
    """Full-range BT.601 4:2:0 -> RGB (h x w x 3), for stills (contact sheet, checks)."""
    y = canvas.y.astype(np.float32)
    u = np.repeat(np.repeat(canvas.u, 2, 0), 2, 1).astype(np.float32) - 128.0
    v = np.repeat(np.repeat(canvas.v, 2, 0), 2, 1).astype(np.float32) - 128.0
    r = y + 1.402 * v
    g = y - 0.344136 * u - 0.714136 * v
    b = y + 1.772 * u
    rgb: npt.NDArray[np.uint8] = np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
    return rgb
