from __future__ import annotations

import pickle

import numpy as np
import pytest
from turbojpeg import TJFLAG_PROGRESSIVE, TJSAMP_420, TJSAMP_GRAY, TurboJPEG

from mmrec.sim.record import SimRecord, sim_record
from mmrec.wire import jpeg


def _encode(w: int, h: int) -> bytes:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, :, 1] = np.arange(w, dtype=np.uint8)[None, :]
    return bytes(TurboJPEG().encode(img, quality=80))


def test_parse_header_reads_size_and_comments() -> None:
    data = _encode(64, 48)
    patched = data[:2] + jpeg.com_segment(b"mmcam-sim node=cam-a frame=7 true_ns=123") + data[2:]
    info = jpeg.parse_header(patched)
    assert info is not None
    assert (info.width, info.height) == (64, 48)
    rec = sim_record(patched)
    assert rec == SimRecord("cam-a", 7, 123)


def test_is_complete_and_garbage() -> None:
    data = _encode(32, 16)
    assert jpeg.is_complete(data)
    assert jpeg.is_complete(data + b"\r\n")
    assert not jpeg.is_complete(data[:-10])
    assert jpeg.parse_header(b"hello world") is None
    assert jpeg.parse_header(data[:20]) is None
    assert sim_record(data) is None


# --- the one marker walker -----------------------------------------------------------------


def test_standalone_markers_are_the_ones_without_a_length_field() -> None:
    # ITU T.81 Table B.1: TEM, RST0-7, SOI and EOI carry no length; every other does.
    assert frozenset({0x01, *range(0xD0, 0xD8), 0xD8, 0xD9}) == jpeg.STANDALONE


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def test_walk_stops_at_the_scan_and_finds_frame_size_and_comments() -> None:
    data = _encode(64, 48)
    data = data[:2] + jpeg.com_segment(b"hello") + data[2:]
    found: list[int] = []
    stop, pos = jpeg.walk(data, 2, len(data), found)
    assert stop is jpeg.Stop.SCAN and data[pos : pos + 2] == b"\xff\xda"
    assert jpeg.segment_end(data, pos) < len(data)
    assert [data[i + 1] for i in found] == [0xFE, 0xC0]


def test_walk_skips_fill_bytes_and_standalone_markers() -> None:
    head = b"\xff\xff\xff\xd0\xff\x01\xff\xd8" + _segment(0xE0, b"x" * 10) + b"\xff\xd9rest"
    stop, pos = jpeg.walk(head, 0, len(head))
    assert (stop, head[pos : pos + 2]) == (jpeg.Stop.END, b"\xff\xd9")
    # An EOI is found with only its two bytes in hand.
    assert jpeg.walk(head, 0, pos + 2) == (jpeg.Stop.END, pos)


@pytest.mark.parametrize(
    "data", [b"\x00\x11\x22\x33", b"\xff\x00\x00\x10", b"\xff\xe0\x00\x01", b"\xff\xe0\x00\x00"]
)
def test_walk_stops_where_no_marker_can_be(data: bytes) -> None:
    assert jpeg.walk(data, 0, len(data)) == (jpeg.Stop.BAD, 0)


def test_walk_resumes_from_where_it_needed_more_bytes() -> None:
    data = _encode(32, 16)
    whole = jpeg.walk(data, 2, len(data))
    for n in range(2, len(data)):
        stop, pos = jpeg.walk(data, 2, n)
        if stop is not jpeg.Stop.MORE:
            assert (stop, pos) == whole
            continue
        # A segment is jumped on its length alone: the position may lie past the end.
        assert pos >= 2
        assert jpeg.walk(data, pos, len(data)) == whole


def test_a_complete_jpeg_is_soi_to_eoi_with_framing_padding_left_out() -> None:
    data = _encode(32, 16)
    n = len(data)
    assert jpeg.end(data, 0, n) == n
    for pad in (b"\r\n", b"\n", b"\x00\x00", b" \r\n", b"\r\n\r\n"):
        assert jpeg.end(data + pad, 0, n + len(pad)) == n
        assert jpeg.is_complete(data + pad)
    assert jpeg.end(b"xx" + data + b"yy", 2, n + 2) == n + 2  # offsets into a buffer
    for bad in (data[:-1], data + b"x", data[1:], b"\xff\xd8\xff", b"\xff\xd8\r\n"):
        assert jpeg.end(bad, 0, len(bad)) == -1
        assert not jpeg.is_complete(bad)
    assert jpeg.is_complete(b"\xff\xd8\xff\xd9")


def test_header_with_odd_markers_before_the_scan() -> None:
    data = _encode(32, 16)
    # A stray SOI or RST marker stands alone; the header goes on after it.
    assert jpeg.dimensions(data[:2] + b"\xff\xd8\xff\xd3" + data[2:]) == (32, 16)
    # A header that ends (EOI) before any scan still says its size, as a cut one does.
    sof = data.index(b"\xff\xc0")
    cut = data[: jpeg.segment_end(data, sof)]
    assert jpeg.dimensions(cut) == (32, 16)
    assert jpeg.dimensions(cut + b"\xff\xd9garbage") == (32, 16)
    # A segment cut short, or a byte that is no marker where one should be: no size.
    assert jpeg.dimensions(cut[:-1]) is None
    assert jpeg.dimensions(cut + b"garbage") is None


def test_any_buffer_is_read_where_it_lies() -> None:
    data = _encode(32, 16)
    # PickleBuffer: the buffer protocol and nothing else, as a demuxer's av.Packet
    buffers = (data, bytearray(data), np.frombuffer(data, np.uint8), pickle.PickleBuffer(data))
    for buf in buffers:
        assert jpeg.dimensions(buf) == (32, 16)  # type: ignore[arg-type]
        assert jpeg.is_complete(buf)  # type: ignore[arg-type]


def test_image_end_finds_the_eoi_after_the_scan_not_in_a_comment() -> None:
    data = _encode(32, 16)
    assert jpeg.image_end(data) == len(data)
    assert jpeg.image_end(data + b"trailer \xff\xd9 more") == len(data)  # bytes after it
    tricky = data[:2] + jpeg.com_segment(b"\xff\xd9 in a comment") + data[2:]
    assert jpeg.image_end(tricky + b"xyz") == len(tricky)
    assert jpeg.image_end(data[: len(data) // 2]) == -1  # cut inside the scan
    assert jpeg.image_end(data[:40]) == -1  # cut inside the header
    assert jpeg.image_end(b"\xff\xd8") == -1  # a stub
    assert jpeg.image_end(memoryview(data + b"zz")) == len(data)


@pytest.mark.parametrize(
    ("size", "nbytes", "why"),
    [
        ((65000, 65000), 20_000, "65000x65000: more than 8192 pixels a side"),
        ((8192, 8000), 10**7, "8192x8000: more than 50 megapixels"),
        ((7680, 4320), 2_000, "7680x4320: more than 2000 bytes can hold"),
        ((7680, 4320), 500_000, None),  # 8K
        ((8160, 6120), 3_000_000, None),  # a 50 MP phone still
        ((16, 16), 125, None),  # a tiny picture
    ],
)
def test_implausible_sizes_are_named_with_the_rule_they_break(
    size: tuple[int, int], nbytes: int, why: str | None
) -> None:
    assert jpeg.implausible(*size, nbytes) == why


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("grey", [False, True])
def test_a_flat_picture_is_never_implausible(progressive: bool, grey: bool) -> None:
    """The bytes rule leaves room for the flattest pictures an encoder makes (a black 8K
    frame, progressive and grey, is ~255 pixels a byte; the rule allows 4096)."""
    w, h = 7680, 4320
    flat = bytes(
        TurboJPEG().encode(
            np.zeros((h, w, 3), np.uint8),
            quality=1,
            flags=TJFLAG_PROGRESSIVE if progressive else 0,
            jpeg_subsample=TJSAMP_GRAY if grey else TJSAMP_420,
        )
    )
    assert jpeg.dimensions(flat) == (w, h) and jpeg.implausible(w, h, len(flat)) is None


def test_flaw_names_what_is_wrong_with_a_jpeg() -> None:
    data = _encode(64, 48)
    assert jpeg.flaw(data) is None
    assert jpeg.flaw(data + b"\r\n") is None  # framing padding is not a flaw
    assert jpeg.flaw(memoryview(data + b"trailer")) == "trailing"
    assert jpeg.flaw(data[: len(data) - 10]) == "truncated"
    assert jpeg.flaw(b"\xff\xd8") == "stub"
    assert jpeg.flaw(b"\xff\xd8\xff\xd9") == "stub"  # whole, but no picture in it
    assert jpeg.flaw(data[:30]) == "stub"  # cut inside the header


def test_a_header_of_endless_markers_is_not_walked_to_its_end() -> None:
    """A hostile "header" of tens of thousands of empty segments is walked only as far as
    MAX_MARKERS (a camera writes a few dozen): it is not a picture the recorder can size
    (a stub, counted, when cut short); its end is still found; a header of a few hundred
    segments is read as any other."""
    j = _encode(64, 48)
    empty_com = b"\xff\xfe\x00\x02"
    bomb = j[:2] + empty_com * 60_000 + j[2:]
    assert jpeg.walk(bomb, 2, len(bomb)) == (jpeg.Stop.BAD, 2 + 4 * jpeg.MAX_MARKERS)
    assert jpeg.dimensions(bomb) is None and jpeg.parse_header(bomb) is None
    assert jpeg.flaw(bomb[:-2]) == "stub"
    assert jpeg.image_end(bomb) == len(bomb)
    fills = j[:2] + b"\xff" * 200_000 + j[2:]
    assert jpeg.dimensions(fills) is None
    many = j[:2] + empty_com * (jpeg.MAX_MARKERS // 2) + j[2:]
    assert jpeg.dimensions(many) == jpeg.dimensions(j) is not None
