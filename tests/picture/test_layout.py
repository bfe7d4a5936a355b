"""The tile layout: pure, synchronous, property-tested."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmrec.picture.layout import (
    JPEG_SCALES,
    Rect,
    around,
    choose_scale,
    fit,
    grid_layout,
    scaled_size,
)

sizes = st.tuples(st.integers(32, 2000), st.integers(32, 2000)).map(
    lambda s: (s[0] // 2 * 2, s[1] // 2 * 2)
)


def inside(r: Rect, w: int, h: int) -> bool:
    return r.x >= 0 and r.y >= 0 and r.right <= w and r.bottom <= h and r.w > 0 and r.h > 0


def even(r: Rect) -> bool:
    return r.x % 2 == 0 and r.y % 2 == 0 and r.w % 2 == 0 and r.h % 2 == 0


@given(n=st.integers(1, 64), size=sizes)
def test_cells_are_inside_even_and_disjoint(n: int, size: tuple[int, int]) -> None:
    layout = grid_layout(n, size)
    assert len(layout.cells) == n
    assert layout.cols * layout.rows >= n
    for i, a in enumerate(layout.cells):
        assert inside(a, *size), a
        assert even(a), a
        for b in layout.cells[i + 1 :]:
            assert not a.overlaps(b), (a, b)


@given(
    n=st.integers(1, 64),
    size=sizes,
    src=st.tuples(st.integers(16, 4000), st.integers(16, 4000)),
)
def test_pictures_keep_their_aspect_inside_their_cell(
    n: int, size: tuple[int, int], src: tuple[int, int]
) -> None:
    for cell in grid_layout(n, size).cells:
        r = fit(*src, cell)
        assert even(r)
        assert cell.x <= r.x and cell.y <= r.y and r.right <= cell.right and r.bottom <= cell.bottom
        # one dimension fills the cell; the other keeps the aspect to within even-rounding
        assert r.w == cell.w or r.h == cell.h
        if r.w == cell.w:
            assert abs(r.h - r.w * src[1] / src[0]) <= 2 or r.h == cell.h
        else:
            assert abs(r.w - r.h * src[0] / src[1]) <= 2


@given(size=sizes, src=st.tuples(st.integers(16, 4000), st.integers(16, 4000)))
def test_the_bars_around_a_picture_fill_the_rest_of_its_cell(
    size: tuple[int, int], src: tuple[int, int]
) -> None:
    cell = Rect(0, 0, *size)
    r = fit(*src, cell)
    bars = around(cell, r)
    assert all(b.w > 0 and b.h > 0 and inside(b, *size) for b in bars)
    parts = [r, *bars]
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    assert sum(p.w * p.h for p in parts) == cell.w * cell.h


def test_common_grids_fill_a_1080p_canvas() -> None:
    assert (grid_layout(1, (1920, 1080)).cols, grid_layout(1, (1920, 1080)).rows) == (1, 1)
    four = grid_layout(4, (1920, 1080))
    assert (four.cols, four.rows) == (2, 2)
    assert four.cells[3] == Rect(960, 540, 960, 540)
    sixteen = grid_layout(16, (1920, 1080))
    assert (sixteen.cols, sixteen.rows) == (4, 4)
    assert sixteen.cells[0] == Rect(0, 0, 480, 270)
    three = grid_layout(3, (1920, 1080))
    assert (three.cols, three.rows) == (2, 2)  # 16:9 pictures are larger on 2x2 than 3x1


def test_bad_layouts_are_refused() -> None:
    with pytest.raises(ValueError):
        grid_layout(0, (1920, 1080))
    with pytest.raises(ValueError):
        grid_layout(4, (1921, 1080))


def test_scale_is_the_smallest_that_covers_the_tile() -> None:
    assert choose_scale(1920, 1080, 960, 540) == Fraction(1, 2)
    assert choose_scale(1920, 1080, 480, 270) == Fraction(1, 4)
    assert choose_scale(1920, 1080, 240, 135) == Fraction(1, 8)
    assert choose_scale(1920, 1080, 200, 100) == Fraction(1, 8)
    assert choose_scale(1920, 1080, 640, 360) == Fraction(3, 8)
    assert choose_scale(1920, 1080, 1920, 1080) == Fraction(1)
    assert choose_scale(640, 480, 1920, 1080) == Fraction(1)  # never upscale in the decoder
    # only the factors this libjpeg-turbo offers
    assert choose_scale(1920, 1080, 640, 360, [Fraction(1, 4), Fraction(1, 2)]) == Fraction(1, 2)


@given(
    src=st.tuples(st.integers(16, 4000), st.integers(16, 4000)),
    dst=st.tuples(st.integers(2, 4000), st.integers(2, 4000)),
)
def test_chosen_scale_covers_or_is_full_size(src: tuple[int, int], dst: tuple[int, int]) -> None:
    s = choose_scale(*src, *dst)
    w, h = scaled_size(*src, s)
    if s < 1:
        assert w >= dst[0] and h >= dst[1]
        smaller = [f for f in JPEG_SCALES if f < s]
        for f in smaller:  # no smaller factor would do
            fw, fh = scaled_size(*src, f)
            assert fw < dst[0] or fh < dst[1]
