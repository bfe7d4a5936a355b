"""The mosaic: each camera's picture lands in its tile; marks and labels are visible."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from turbojpeg import TJPF_RGB, TJSAMP_420, TJSAMP_422, TJSAMP_444, TurboJPEG

from mmrec.errors import StreamFormatError
from mmrec.picture.compose import LIVE, LOST, Mark, render_tile, to_picture
from mmrec.picture.decode import Decoder
from mmrec.picture.layout import Rect, choose_scale, fit, grid_layout
from mmrec.picture.still import encode_jpeg, to_rgb
from mmrec.picture.yuv import BLACK, RED, Picture

TJ = TurboJPEG()
COLOURS = [(200, 30, 30), (30, 180, 40), (40, 60, 220), (230, 220, 40)]


def solid_jpeg(rgb: tuple[int, int, int], w: int, h: int, sub: int = TJSAMP_420) -> bytes:
    img = np.empty((h, w, 3), np.uint8)
    img[...] = rgb
    data: bytes = TJ.encode(img, quality=95, pixel_format=TJPF_RGB, jpeg_subsample=sub)
    return data


def close(a: np.ndarray, b: tuple[int, int, int], tol: int = 14) -> bool:
    return bool(np.all(np.abs(a.astype(int) - np.array(b)) <= tol))


@pytest.fixture(params=["turbojpeg", "pyav"])
def decoder(request: pytest.FixtureRequest) -> Decoder:
    return Decoder(request.param)


def compose(decoder: Decoder, jpegs: list[bytes], marks: list[Mark]) -> tuple[np.ndarray, list]:
    layout = grid_layout(len(jpegs), (640, 360))
    canvas = Picture.new(640, 360)
    for data, cell, m, i in zip(jpegs, layout.cells, marks, range(len(jpegs)), strict=True):
        info = TJ.decode_header(data)
        r = fit(info[0], info[1], cell)
        planes = decoder.decode(data, choose_scale(info[0], info[1], r.w, r.h, decoder.scales))
        render_tile(canvas, cell, r, to_picture(planes, r.w, r.h), m, f"cam-{i}")
    # through a real JPEG and back, as a viewer of the preview sees it
    rgb = TJ.decode(encode_jpeg(canvas, 95, TJ), pixel_format=TJPF_RGB)
    return rgb, list(layout.cells)


def test_each_camera_is_in_its_tile(decoder: Decoder) -> None:
    jpegs = [
        solid_jpeg(COLOURS[0], 1920, 1080, TJSAMP_420),
        solid_jpeg(COLOURS[1], 1280, 720, TJSAMP_422),  # phones send 4:2:2 too
        solid_jpeg(COLOURS[2], 720, 1280, TJSAMP_420),  # portrait
        solid_jpeg(COLOURS[3], 640, 480, TJSAMP_444),
    ]
    rgb, cells = compose(decoder, jpegs, [LIVE] * 4)
    for colour, cell in zip(COLOURS, cells, strict=True):
        centre = rgb[cell.y + cell.h // 3, cell.x + cell.w // 2]
        assert close(centre, colour), (centre, colour)
    # the portrait camera is pillarboxed, not stretched: black at its cell's sides
    c = cells[2]
    assert close(rgb[c.y + c.h // 3, c.x + 4], (0, 0, 0))


def test_stale_and_lost_tiles_are_marked_not_frozen(decoder: Decoder) -> None:
    jpegs = [solid_jpeg(COLOURS[1], 320, 180) for _ in range(3)]
    rgb, cells = compose(decoder, jpegs, [LIVE, Mark.stale(3.2), LOST])
    live, stale, lost = cells
    # a red border on the stale and lost tiles, none on the live one
    assert close(rgb[stale.y + 1, stale.x + stale.w // 4], (255, 0, 0), 40)
    assert close(rgb[lost.y + 1, lost.x + lost.w // 4], (255, 0, 0), 40)
    assert close(rgb[live.y + 1, live.x + live.w // 4], COLOURS[1])

    # the picture is dimmed (darker than the live one)
    def luma(c) -> float:  # type: ignore[no-untyped-def]
        return float(rgb[c.y + c.h // 5, c.x + c.w // 5].astype(int).sum())

    assert luma(stale) < 0.7 * luma(live)
    assert luma(lost) < luma(stale)
    # the STALE text sits on a red box in the middle of the tile
    mid = rgb[stale.y + stale.h // 2 - 8 : stale.y + stale.h // 2 + 8, stale.x : stale.right]
    assert (mid[..., 0].astype(int) - mid[..., 1] > 100).any()  # red box
    assert (mid.min(axis=-1) > 200).any()  # white text


def test_label_names_the_camera() -> None:
    canvas = Picture.new(320, 180)
    cell = grid_layout(1, (320, 180)).cells[0]
    render_tile(canvas, cell, None, None, LIVE, "A-wide")
    rgb = to_rgb(canvas)
    bottom = rgb[-30:, :100]
    assert (bottom.min(axis=-1) > 200).any()  # white label text bottom-left
    # no picture at all: NO SIGNAL in the middle
    mid = rgb[80:100]
    assert (mid.min(axis=-1) > 200).any()


def test_chroma_subsampling_maps_to_420() -> None:
    dec = Decoder("turbojpeg")
    for sub in (TJSAMP_420, TJSAMP_422, TJSAMP_444):
        planes = dec.decode(solid_jpeg(COLOURS[2], 320, 240, sub), Fraction(1, 2))
        pic = to_picture(planes, 160, 120)
        assert pic.y.shape == (120, 160)
        assert pic.u.shape == pic.v.shape == (60, 80)


def test_scaled_decode_has_the_scaled_size() -> None:
    dec = Decoder()
    planes = dec.decode(solid_jpeg(COLOURS[0], 1920, 1080), Fraction(1, 4))
    assert (planes.width, planes.height) == (480, 270)


def test_a_corrupt_jpeg_raises_one_error_type(decoder: Decoder) -> None:
    data = solid_jpeg(COLOURS[0], 320, 240)
    with pytest.raises(StreamFormatError):
        decoder.decode(data[: len(data) // 2], Fraction(1))
    with pytest.raises(StreamFormatError):
        decoder.decode(b"\xff\xd8" + b"\x00" * 100 + b"\xff\xd9", Fraction(1))


def test_an_opaque_label_is_the_same_on_any_picture_and_matches_the_blend() -> None:
    """The window burn (box_alpha=255) is copied from cached pixels: it must equal what the
    per-frame blend gives at full opacity, whatever lies under it."""
    from mmrec.picture.text import label, restore

    rng = np.random.default_rng(1)
    cell = Rect(0, 0, 320, 180)
    out = []
    for shade in (0, 200):
        c = Picture.new(320, 180)
        c.y[:] = shade
        c.u[:] = rng.integers(0, 255, c.u.shape)
        c.v[:] = 128
        before = c.y.copy()
        under: list = []
        label(c, cell, "10:00:01:02", px=20, where="bottom-right", box_alpha=255, under=under)
        out.append((c.y.copy(), c.u.copy()))
        slow = Picture.new(320, 180)
        slow.y[:] = shade
        label(slow, cell, "10:00:01:02", px=20, where="bottom-right", box_alpha=254)
        ((r, _),) = under
        assert np.abs(c.y[r.y : r.bottom, r.x : r.right].astype(int)
                      - slow.y[r.y : r.bottom, r.x : r.right]).max() <= 2  # fmt: skip
        assert (c.y != before).any()
        restore(c, under)
        assert (c.y == before).all()
    (y0, _), (y1, _) = out
    assert (y0[r.y : r.bottom, r.x : r.right] == y1[r.y : r.bottom, r.x : r.right]).all()


@pytest.mark.parametrize(
    ("src", "dst", "offset"),
    [
        ((960, 540), (480, 270), 0),  # exact halving (the multiview's tiles)
        ((960, 540), (480, 270), 1),  # halving from planes at an odd address
        ((640, 360), (320, 180), 0),
        ((400, 300), (240, 180), 0),  # any other size: nearest neighbour
        ((320, 180), (320, 180), 0),  # no resize
    ],
)
def test_a_tile_drawn_from_planes_equals_one_drawn_from_its_picture(
    src: tuple[int, int], dst: tuple[int, int], offset: int
) -> None:
    """render_tile resizes planes straight into the canvas: the same pixels as
    to_picture then a copy, wherever the planes lie in memory."""
    rng = np.random.default_rng(2)
    (w, h), (tw, th) = src, dst

    def plane(ph: int, pw: int) -> np.ndarray:
        buf = rng.integers(0, 256, ph * pw + offset, dtype=np.uint8)
        return buf[offset:].reshape(ph, pw)

    planes = Picture(plane(h, w), plane(h // 2, w // 2), plane(h // 2, w // 2))
    cell = Rect(40, 20, tw, th)
    a, b = Picture.new(640, 400), Picture.new(640, 400)
    render_tile(a, cell, cell, to_picture(planes, tw, th), LIVE, "cam")
    render_tile(b, cell, cell, planes, LIVE, "cam")
    for pa, pb in zip((a.y, a.u, a.v), (b.y, b.u, b.v), strict=True):
        assert np.array_equal(pa, pb)
    # and the picture is there: its first sample is the planes' first
    assert b.y[cell.y, cell.x] == planes.y[0, 0]


@pytest.mark.parametrize("where", ["bottom-right", "top-right", "bottom-left", "center"])
@pytest.mark.parametrize(("size", "px"), [((960, 540), 38), ((480, 270), 19), ((90, 60), 13)])
def test_a_timecode_label_from_digit_patches_equals_the_whole_label_rendered(
    where: str, size: tuple[int, int], px: int
) -> None:
    """A new timecode every frame is drawn as the cached label of its shape (digits as 0)
    plus one cached patch per other digit: the pixels must be those of the label rendered
    from the whole text, at every digit position (odd columns too) and when cut off."""
    from mmrec.picture.text import _opaque, label

    w, h = size
    rect = Rect(2, 4, w - 6, h - 8)
    seen = set()
    for text in ("10:00:00:00", "10:00:01:02", "23:59:59:29", "07:48:36;15", "1:2.5", "98"):
        for box in (BLACK, RED):
            fast, whole = Picture.new(w, h), Picture.new(w, h)
            label(fast, rect, text, px=px, where=where, box=box, box_alpha=255)
            got = _opaque(text, px, rect, where, box)  # the text's own bitmap
            if got is not None:
                whole.paste(*got)
            for a, b in ((fast.y, whole.y), (fast.u, whole.u), (fast.v, whole.v)):
                assert np.array_equal(a, b), (text, box)
            seen.add(fast.y.tobytes())
    assert len(seen) == 12  # every timecode and box looks different


def test_opaque_label_pixels_are_what_label_draws() -> None:
    from mmrec.picture.text import label, opaque_label

    rect = Rect(10, 6, 300, 170)
    for text in ("cam-1", "12", "10:00:01:02"):
        drawn, copied = Picture.new(320, 180), Picture.new(320, 180)
        label(drawn, rect, text, px=20, where="bottom-left", box_alpha=255)
        got = opaque_label(text, 20, rect, "bottom-left", BLACK)
        assert got is not None
        copied.paste(*got)
        for a, b in ((drawn.y, copied.y), (drawn.u, copied.u), (drawn.v, copied.v)):
            assert np.array_equal(a, b), text
        assert (copied.y > 200).any()  # white text
