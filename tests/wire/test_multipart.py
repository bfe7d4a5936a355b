"""MultipartParser as a specification: the ordinary stream, garbage, truncation and EOF, and
the Content-Type helpers. Every case runs through :func:`tests.wire.multipart_check.check`
(whole, byte by byte, through the BufferedProtocol path); raw JPEG streams, limits, the
receive path and the properties are in the test_multipart_*.py beside this one.
"""

from __future__ import annotations

import pytest

from mmrec.wire.multipart import (
    boundary_from_content_type,
    parse_content_type,
)
from tests.wire.multipart_check import (
    check,
    datas,
    fake_jpeg,
    part,
    real_jpeg,
)

# --- the ordinary stream ---------------------------------------------------------------


def test_parts_with_content_length_headers_and_timestamps() -> None:
    j = real_jpeg()
    stream = (
        b"".join(part(j, extra=b"X-Timestamp: 1700000000.%03d\r\n" % k) for k in range(3))
        + b"--myb--\r\n"
    )
    parts, p = check(stream)
    assert datas(parts) == [j] * 3
    assert [x.timestamp for x in parts] == [f"1700000000.{k:03d}" for k in range(3)]
    first = parts[0]
    assert first.content_type == "image/jpeg"
    assert first.declared_length == len(j)
    assert first.header("CONTENT-TYPE") == "image/jpeg"
    assert first.headers[0] == ("content-type", "image/jpeg")
    assert (p.parts, p.bytes_skipped, p.truncated, p.length_mismatches) == (3, 0, 0, 0)
    assert p.closed
    assert p.bytes_in == len(stream)
    assert p.boundary == b"myb"


def test_parts_without_content_length_are_found_by_scanning() -> None:
    j = real_jpeg()
    stream = b"".join(part(j, cl=None) for _ in range(3)) + b"--myb--\r\n"
    parts, p = check(stream)
    assert datas(parts) == [j] * 3
    assert parts[0].declared_length is None
    assert p.length_mismatches == 0 and p.truncated == 0


def test_ffmpeg_mpjpeg_without_boundary_parameter_learns_it() -> None:
    j1, j2 = real_jpeg(seed=1), real_jpeg(seed=2)
    stream = b"".join(
        b"--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: %d\r\n\r\n" % len(j) + j + b"\r\n"
        for j in (j1, j2, j1)
    )
    parts, p = check(stream, None)
    assert datas(parts) == [j1, j2, j1]
    assert p.boundary == b"ffmpeg"
    assert (p.truncated, p.bytes_skipped, p.length_mismatches) == (0, 0, 0)


def test_learned_boundary_without_content_length() -> None:
    j = real_jpeg()
    stream = b"".join(part(j, b"--xyz", cl=None) for _ in range(2)) + b"--xyz--\r\n"
    parts, p = check(stream, None)
    assert datas(parts) == [j, j]
    assert p.boundary == b"xyz" and p.closed


@pytest.mark.parametrize("line", [b"--myboundary", b"----myboundary"])
def test_boundary_declared_with_leading_dashes(line: bytes) -> None:
    j = real_jpeg()
    declared = boundary_from_content_type('multipart/x-mixed-replace; boundary="--myboundary"')
    assert declared == b"--myboundary"
    for cl in ("auto", None):
        stream = b"".join(part(j, line, cl=cl) for _ in range(3))
        parts, p = check(stream, declared)
        assert datas(parts) == [j] * 3
        assert p.bytes_skipped == 0 and p.length_mismatches == 0


def test_lf_only_line_ends() -> None:
    j = real_jpeg()
    for cl in ("auto", None):
        stream = b"".join(part(j, cl=cl, nl=b"\n") for _ in range(3)) + b"--myb--\n"
        parts, _ = check(stream)
        assert datas(parts) == [j] * 3


def test_extra_blank_lines_before_between_and_after_parts() -> None:
    j = real_jpeg()
    one = b"--myb\r\n\r\n\r\nContent-Type: image/jpeg\r\n\r\n" + j + b"\r\n\r\n\r\n"
    one_cl = (
        b"--myb\r\n\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(j)
        + j
        + b"\r\n\r\n\n"
    )
    stream = b"\r\n\r\n" + one + one_cl + one + b"--myb--\r\n\r\n"
    parts, p = check(stream)
    assert datas(parts) == [j] * 3
    assert (p.bytes_skipped, p.length_mismatches) == (0, 0)


def test_no_delimiter_before_the_first_part() -> None:
    j = real_jpeg()
    rest = part(j) + b"--myb--\r\n"
    headers_first = b"Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(j) + j + b"\r\n"
    parts, _ = check(headers_first + rest)
    assert datas(parts) == [j, j]
    assert parts[0].content_type == "image/jpeg"
    jpeg_first = j + b"\r\n"
    parts, _ = check(jpeg_first + rest)
    assert datas(parts) == [j, j]
    assert parts[0].headers == () and parts[0].content_type is None


def test_headers_first_without_boundary_parameter() -> None:
    j = real_jpeg()
    stream = b"Content-Type: image/jpeg\r\n\r\n" + j + b"\r\n" + part(j, b"--cam", cl=None)
    parts, p = check(stream, None)
    assert datas(parts) == [j, j]
    assert p.boundary == b"cam"


def test_jpeg_first_then_multipart_without_boundary_parameter() -> None:
    j = real_jpeg()
    stream = j + b"\r\n" + part(j, b"--cam", extra=b"X-Timestamp: 5\r\n") + b"--cam--\r\n"
    parts, p = check(stream, None)
    assert datas(parts) == [j, j]
    assert parts[1].timestamp == "5"
    assert p.boundary == b"cam"


def test_space_padded_content_length_is_trusted() -> None:
    j = real_jpeg()
    stream = b"".join(part(j, cl=f"  {len(j)}  ") for _ in range(2))
    parts, p = check(stream)
    assert datas(parts) == [j, j]
    assert parts[0].declared_length == len(j)
    assert p.length_mismatches == 0


@pytest.mark.parametrize("delta", [-10, -1, 3, 7, 5000])
def test_wrong_content_length_falls_back_to_scanning(delta: int) -> None:
    j = real_jpeg()
    stream = part(j, cl=len(j) + delta) + part(j) * 3 + b"--myb--\r\n"
    parts, p = check(stream)
    assert datas(parts) == [j] * 4
    assert parts[0].declared_length == len(j) + delta
    assert p.length_mismatches == 1
    # A new delimiter before the declared length: the part is returned and counted.
    assert p.truncated == (1 if delta > 0 else 0)


@pytest.mark.parametrize("delta", [1, 2])
def test_content_length_counting_the_line_end_is_accepted(delta: int) -> None:
    j = real_jpeg()
    parts, p = check(part(j, cl=len(j) + delta) * 2)
    assert datas(parts) == [j, j]  # the CR/LF after the EOI is framing, not image
    assert (p.length_mismatches, p.truncated) == (0, 0)


def test_unparseable_content_length_is_ignored() -> None:
    j = real_jpeg()
    parts, p = check(part(j, cl="12abc") + part(j, cl="-5") + part(j, cl="1_000"))
    assert datas(parts) == [j] * 3
    assert [x.declared_length for x in parts] == [None] * 3
    assert p.length_mismatches == 0


def test_payload_containing_the_delimiter_is_safe_only_with_content_length() -> None:
    tricky = fake_jpeg(b"abc\r\n--myb\r\nContent-Type: text/plain\r\n\r\nxyz")
    parts, p = check(part(tricky) + part(tricky) + b"--myb--\r\n")
    assert datas(parts) == [tricky, tricky]  # Content-Length jumps over the fake delimiter
    assert p.length_mismatches == 0
    parts, _ = check(part(tricky, cl=None) + b"--myb--\r\n")
    assert datas(parts)[0] == b"\xff\xd8abc"  # without it, scanning must stop there


def test_payload_with_dashes_and_line_ends_but_no_full_delimiter() -> None:
    tricky = fake_jpeg(b"\r\n--\r\n--my\r\n--mybx\r\n-\n--myb2\r\n")
    parts, _ = check(part(tricky, cl=None) + part(tricky, cl=None))
    assert datas(parts) == [tricky, tricky]


def test_image_jpg_and_parameters_on_the_part_type() -> None:
    j = real_jpeg()
    parts, _ = check(part(j, ctype=b"IMAGE/JPG; charset=binary") + part(j, ctype=b"image/jpeg;q=1"))
    assert [x.content_type for x in parts] == ["image/jpeg", "image/jpeg"]
    assert parts[0].header("content-type") == "IMAGE/JPG; charset=binary"


def test_non_jpeg_parts_are_returned_for_the_caller_to_skip() -> None:
    j = real_jpeg()
    stream = (
        part(b'{"fps": 30}', ctype=b"application/json") + part(j) + part(b"", cl=None) + b"--myb--"
    )
    parts, _ = check(stream)
    assert [x.content_type for x in parts] == ["application/json", "image/jpeg", "image/jpeg"]
    assert datas(parts) == [b'{"fps": 30}', j, b""]


def test_delimiter_right_after_eoi_without_line_end() -> None:
    j = real_jpeg()
    stream = (
        b"--myb\r\nContent-Type: image/jpeg\r\n\r\n" + j + b"--myb\r\n\r\n" + j + b"\r\n--myb--"
    )
    parts, _ = check(stream)
    assert datas(parts) == [j, j]


def test_empty_parts_and_repeated_delimiters() -> None:
    j = real_jpeg()
    parts, p = check(b"--myb\r\n--myb\r\n" + part(j) + b"--myb\r\n\r\n--myb--\r\n")
    assert datas(parts) == [j]
    assert p.truncated == 0


def test_declared_boundary_that_the_body_does_not_use_is_relearned() -> None:
    j = real_jpeg()
    parts, p = check(part(j, b"--other") * 2, b"declared")
    assert datas(parts) == [j, j]
    assert p.boundary == b"other"


def test_odd_and_folded_part_headers() -> None:
    j = real_jpeg()
    extra = b"garbage line without colon\r\nX-Note: first\r\n  continued\r\nX-Timestamp:  42 \r\n"
    parts, _ = check(part(j, extra=extra))
    assert parts[0].header("x-note") == "first continued"
    assert parts[0].timestamp == "42"


# --- garbage, truncation, EOF ----------------------------------------------------------


def test_garbage_before_first_delimiter_and_between_parts_is_skipped_and_counted() -> None:
    j = real_jpeg()
    stream = (
        b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n"
        + part(j)
        + b"junk!\r\n"
        + part(j)
        + b"--myb--\r\ntail"
    )
    parts, p = check(stream)
    assert datas(parts) == [j, j]
    # Line ends are padding, not garbage: "HTTP/1.0 200 OK" + "Server: x" + "tail".
    assert p.bytes_skipped == len(b"HTTP/1.0 200 OKServer: xjunk!tail")
    assert p.length_mismatches == 0  # the declared length was right; "junk!" is garbage


def test_complete_jpeg_without_closing_delimiter_is_returned_at_eof() -> None:
    j = real_jpeg()
    for cl in ("auto", None):
        parts, p = check(part(j, cl=cl) + part(j, cl=cl)[:-2])
        assert datas(parts) == [j, j]
        assert p.truncated == 0


def test_part_cut_short_by_eof_is_counted_not_returned() -> None:
    j = real_jpeg()
    for cl in ("auto", None):
        parts, p = check(part(j, cl=cl) + part(j, cl=cl)[:-100])
        assert datas(parts) == [j]
        assert p.truncated == 1
    parts, p = check(part(j) + b"--myb\r\nContent-Type: image/jpeg\r\n")
    assert (len(parts), p.truncated) == (1, 1)


def test_stream_of_only_garbage() -> None:
    parts, p = check(b"\x00\x01hello\r\nworld" * 10)
    assert parts == [] and p.bytes_skipped == 10 * len(b"\x00\x01helloworld")


# --- Content-Type helpers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "boundary"),
    [
        ("multipart/x-mixed-replace; boundary=myboundary", b"myboundary"),
        ('multipart/x-mixed-replace;boundary="my boundary"', b"my boundary"),
        ("multipart/x-mixed-replace; boundary=--myboundary", b"--myboundary"),
        ("multipart/x-mixed-replace; BOUNDARY=abc ; charset=x", b"abc"),
        ("multipart/x-mixed-replace", None),
        ("multipart/x-mixed-replace; boundary=", None),
        ('multipart/x-mixed-replace; boundary=""', None),
        ("application/octet-stream", None),
        (None, None),
        ("", None),
    ],
)
def test_boundary_from_content_type(value: str | None, boundary: bytes | None) -> None:
    assert boundary_from_content_type(value) == boundary


def test_parse_content_type() -> None:
    assert parse_content_type('Multipart/X-Mixed-Replace; Boundary="a;b\\"c"; x = 1;;junk') == (
        "multipart/x-mixed-replace",
        {"boundary": 'a;b"c', "x": "1", "junk": ""},
    )
    assert parse_content_type("image/jpeg") == ("image/jpeg", {})
