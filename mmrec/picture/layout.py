"""The tile layout of the live mosaic and the multiview: pure arithmetic, no pixels, no I/O.

A layout puts N cameras on a grid of equal cells inside a canvas of a target size.
Invariants (tested with hypothesis in tests/picture/test_layout.py):
- every cell and every picture rectangle lies inside the canvas, and no two cells overlap;
- every x, y, width and height is even, so each rectangle maps onto whole 4:2:0 chroma samples;
- a picture keeps its source's aspect ratio (to within the 2-pixel rounding to even sizes)
  and is centred in its cell; the rest of the cell stays black (letterbox/pillarbox).

It also chooses the libjpeg-turbo DCT scaling factor for a tile: the smallest M/8 whose
scaled output still covers the tile, so a JPEG is never decoded at full size for a small
tile and never upscaled when a factor can cover it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

# libjpeg-turbo's downscaling factors (1/8 .. 8/8); larger ones upscale and are never chosen.
JPEG_SCALES: tuple[Fraction, ...] = tuple(Fraction(m, 8) for m in range(1, 9))


@dataclass(frozen=True, slots=True)
class Rect:
    """A rectangle of pixels in the canvas: x, y of the top-left corner, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def overlaps(self, other: Rect) -> bool:
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )


@dataclass(frozen=True, slots=True)
class Layout:
    """N equal cells on a cols x rows grid, row-major, inside a width x height canvas."""

    width: int
    height: int
    cols: int
    rows: int
    cells: tuple[Rect, ...]


def _even_down(v: float) -> int:
    return max(2, int(v) // 2 * 2)


def grid_layout(n: int, size: tuple[int, int], aspect: Fraction = Fraction(16, 9)) -> Layout:
    """Lay out ``n`` cells of (about) ``aspect`` in a canvas of ``size`` = (width, height).

    The grid is the one that makes pictures of ``aspect`` largest; ties prefer fewer
    empty cells, then more columns. Cells share the whole canvas (less even-rounding);
    the grid is centred.
    """
    width, height = size
    if n < 1:
        raise ValueError("a layout needs at least one camera")
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(f"canvas size must be even and at least 2x2, not {width}x{height}")
    best: tuple[Fraction, int, int, int] | None = None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        # picture of the target aspect fitted in one cell (exact: ties are real ties)
        pw = min(Fraction(width, cols), Fraction(height, rows) * aspect)
        area = pw * pw / aspect
        key = (area, -(cols * rows - n), cols, rows)
        # on a tie, more columns: side by side suits a landscape screen
        if best is None or key[:2] >= best[:2]:
            best = key
    assert best is not None
    _, _, cols, rows = best
    cw = _even_down(width / cols)
    ch = _even_down(height / rows)
    x0 = (width - cw * cols) // 2 // 2 * 2
    y0 = (height - ch * rows) // 2 // 2 * 2
    cells = tuple(Rect(x0 + (i % cols) * cw, y0 + (i // cols) * ch, cw, ch) for i in range(n))
    return Layout(width, height, cols, rows, cells)


def fit(src_w: int, src_h: int, cell: Rect) -> Rect:
    """The largest even-sized rectangle of the source's aspect, centred in ``cell``."""
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"bad source size {src_w}x{src_h}")
    if cell.w * src_h <= cell.h * src_w:  # width-limited
        w = cell.w
        h = min(cell.h, _even_down(round(cell.w * src_h / src_w)))
    else:
        h = cell.h
        w = min(cell.w, _even_down(round(cell.h * src_w / src_h)))
    x = cell.x + (cell.w - w) // 2 // 2 * 2
    y = cell.y + (cell.h - h) // 2 // 2 * 2
    return Rect(x, y, w, h)


def around(cell: Rect, inner: Rect) -> tuple[Rect, ...]:
    """The non-empty parts of ``cell`` that ``inner`` (inside it) leaves: the bars above,
    below, left and right of a picture fitted in its cell."""
    bars = (
        Rect(cell.x, cell.y, cell.w, inner.y - cell.y),
        Rect(cell.x, inner.bottom, cell.w, cell.bottom - inner.bottom),
        Rect(cell.x, inner.y, inner.x - cell.x, inner.h),
        Rect(inner.right, inner.y, cell.right - inner.right, inner.h),
    )
    return tuple(b for b in bars if b.w > 0 and b.h > 0)


def scaled_size(src_w: int, src_h: int, scale: Fraction) -> tuple[int, int]:
    """libjpeg-turbo's scaled output size (TJSCALED: rounded up)."""
    return (
        -(-src_w * scale.numerator // scale.denominator),
        -(-src_h * scale.numerator // scale.denominator),
    )


def choose_scale(
    src_w: int,
    src_h: int,
    dst_w: int,
    dst_h: int,
    scales: Iterable[Fraction] = JPEG_SCALES,
) -> Fraction:
    """The smallest available scale whose output covers ``dst_w`` x ``dst_h``.

    When no downscale covers it (the tile is larger than the source), the largest
    available scale up to 1 is used and the planes are enlarged afterwards.
    """
    usable = sorted(s for s in scales if 0 < s <= 1)
    if not usable:
        raise ValueError("no usable JPEG scaling factor")
    for s in usable:
        w, h = scaled_size(src_w, src_h, s)
        if w >= dst_w and h >= dst_h:
            return s
    return usable[-1]
