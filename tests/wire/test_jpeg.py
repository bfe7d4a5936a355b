from __future__ import annotations

import pickle

import numpy as np
import pytest
from turbojpeg import TurboJPEG

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
