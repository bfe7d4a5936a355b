"""MultipartParser on raw JPEG streams (application/octet-stream): split on the one JPEG
marker walker, every case through :func:`tests.wire.multipart_check.check`.
"""

from __future__ import annotations

import pytest

from mmrec.wire import jpeg
from tests.wire.multipart_check import (
    check,
    datas,
    part,
    real_jpeg,
)

# --- raw JPEG streams (application/octet-stream) ---------------------------------------


def test_concatenated_raw_jpegs_are_split_on_soi_eoi() -> None:
    j1, j2 = real_jpeg(seed=3), real_jpeg(32, 16, seed=4)
    parts, p = check(j1 + j2 + j1, None)
    assert datas(parts) == [j1, j2, j1]
    assert all(x.content_type == "image/jpeg" and x.headers == () for x in parts)
    assert p.boundary is None and p.bytes_skipped == 0


def test_raw_jpeg_with_eoi_bytes_in_a_comment_is_not_split() -> None:
    j = real_jpeg()
    with_com = j[:2] + jpeg.com_segment(b"evil \xff\xd9\xff\xd8 bytes") + j[2:]
    assert jpeg.parse_header(with_com) is not None
    parts, _ = check(with_com + with_com, None)
    assert datas(parts) == [with_com, with_com]


def test_raw_jpeg_markers_are_walked_by_the_one_jpeg_walker() -> None:
    j = real_jpeg()
    sos = j.index(b"\xff\xda")
    # Before the scan: fill bytes, standalone markers (TEM, RST, a stray SOI) and an
    # APP segment holding EOI bytes; in the scan: stuffed zeros and RST markers.
    odd = (
        j[:2]
        + b"\xff\xff\xff\x01\xff\xd8\xff\xd0"
        + b"\xff\xe1\x00\x06\xff\xd9\xff\xd8"
        + j[2:sos]
        + j[sos : jpeg.segment_end(j, sos)]
        + b"\x12\xff\x00\x34\xff\xd3\x56"
        + j[jpeg.segment_end(j, sos) :]
    )
    # An EOI before any scan ends an image (a header-only JPEG).
    header_only = j[:sos] + b"\xff\xd9"
    parts, p = check(odd + header_only + odd, None)
    assert datas(parts) == [odd, header_only, odd]
    assert (p.bytes_skipped, p.truncated) == (0, 0)


@pytest.mark.parametrize("pad", [b"\x00", b"  ", b"\r\n\x00"])
def test_padding_after_the_eoi_is_framing_not_image(pad: bytes) -> None:
    j = real_jpeg()
    # Counted in Content-Length, or before a delimiter, or at the end of the stream: the
    # JPEG ends at its EOI wherever the padding is (the same rule as jpeg.is_complete).
    stream = part(j + pad) + part(j + pad, cl=None) + b"--myb\r\n\r\n" + j + pad
    parts, p = check(stream)
    assert datas(parts) == [j, j, j]
    assert (p.truncated, p.length_mismatches) == (0, 0)


def test_raw_jpegs_with_garbage_between_and_a_truncated_last_one() -> None:
    j = real_jpeg()
    parts, p = check(j + b"\r\nxx" + j + j[:300], None)
    assert datas(parts) == [j, j]
    assert (p.bytes_skipped, p.truncated) == (2, 1)
