"""HTTP/1.x pieces as a specification: request bytes, response heads (every prefix of a head
is "need more", never an error), chunked bodies split byte by byte."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmrec import __version__
from mmrec.errors import StreamFormatError
from mmrec.wire.headers import add_header_line
from mmrec.wire.http1 import (
    ChunkedDecoder,
    ResponseHead,
    ResponseHeadReader,
    build_request,
    parse_response_head,
)
from mmrec.wire.multipart import MultipartParser

# --- request -----------------------------------------------------------------------------


def test_build_request_for_an_mjpeg_stream() -> None:
    assert build_request("cam-a.local", 80, "/stream") == (
        b"GET /stream HTTP/1.1\r\n"
        b"Host: cam-a.local\r\n"
        b"Connection: keep-alive\r\n"
        b"Accept: multipart/x-mixed-replace, image/jpeg, */*\r\n"
        b"User-Agent: mmrec/" + __version__.encode() + b"\r\n"
        b"\r\n"
    )


def test_build_request_port_ipv6_and_extra_headers() -> None:
    req = build_request("fe80::1", 8080, "video?x=1", headers=[("Authorization", "Basic eDp5")])
    assert req.startswith(b"GET /video?x=1 HTTP/1.1\r\nHost: [fe80::1]:8080\r\n")
    assert b"Authorization: Basic eDp5\r\n\r\n" in req
    assert b"accept-encoding" not in req.lower()


@pytest.mark.parametrize(
    ("host", "path", "headers"),
    [("cam\r\nX: y", "/", ()), ("cam", "/a\nb", ()), ("cam", "/", (("X", "a\r\nb"),))],
)
def test_build_request_refuses_header_injection(
    host: str, path: str, headers: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(ValueError):
        build_request(host, 80, path, headers=headers)


# --- response head -----------------------------------------------------------------------

MJPEG_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: multipart/x-mixed-replace; boundary=frame\r\n"
    b"Cache-Control: no-cache\r\n"
    b"\r\n"
)


def parse_growing(data: bytes, **kw: int) -> tuple[ResponseHead, int]:
    """Every proper prefix needs more bytes; the whole gives the head (h11 style). One
    ResponseHeadReader fed the growing buffer byte by byte gives the same."""
    reader = ResponseHeadReader(**kw)
    buf = bytearray()
    for n in range(len(data)):
        got = parse_response_head(data[:n], **kw)
        if got is not None:
            assert reader.parse(data[:n]) == got
            return got
        assert reader.parse(buf) is None
        buf.append(data[n])
    got = parse_response_head(data, **kw)
    assert got is not None
    assert reader.parse(buf) == got
    return got


def test_head_with_crlf_and_the_body_after_it() -> None:
    head, used = parse_growing(MJPEG_HEAD)
    assert used == len(MJPEG_HEAD)
    assert (head.http_version, head.status, head.reason) == ("1.1", 200, "OK")
    assert head.header("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    assert head.headers[1] == ("cache-control", "no-cache")
    got = parse_response_head(bytearray(MJPEG_HEAD + b"--frame\r\n"))
    assert got is not None and got[1] == len(MJPEG_HEAD)
    assert not head.chunked and head.content_length is None


def test_head_with_bare_lf_http_1_0_and_no_reason() -> None:
    data = b"HTTP/1.0 200\nContent-Type: image/jpeg\nContent-Length:  1234 \n\n\xff\xd8"
    head, used = parse_growing(data[:-2])
    assert used == len(data) - 2
    assert (head.http_version, head.status, head.reason) == ("1.0", 200, "")
    assert head.content_length == 1234


def test_head_mixed_line_ends_and_memoryview_input() -> None:
    data = b"HTTP/1.1 404 Not Found\r\nServer: x\n\r\n"
    got = parse_response_head(memoryview(data))
    assert got is not None
    assert got[0].status == 404 and got[0].reason == "Not Found" and got[1] == len(data)


def test_folded_odd_and_repeated_headers() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\n"
        b"X-Long: first\r\n"
        b"\t second\r\n"
        b"this line has no colon\r\n"
        b"Bad Name: ignored\r\n"
        b"Transfer-Encoding: gzip\r\n"
        b"transfer-encoding: Chunked\r\n"
        b"Content-Length: 5, 5\r\n"
        b"Server :  sloppy  \r\n"
        b"\r\n"
    )
    head, _ = parse_growing(data)
    assert head.header("x-long") == "first second"
    assert head.header("bad name") is None
    assert head.header("server") == "sloppy"
    assert head.header("transfer-encoding") == "gzip, Chunked"
    assert head.chunked
    assert head.content_length == 5


def test_content_length_contradictions_are_none() -> None:
    for value in (b"5, 6", b"abc", b"-1", b"1_0"):
        head, _ = parse_growing(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n")
        assert head.content_length is None


def test_stray_line_ends_before_the_status_line_are_skipped() -> None:
    got = parse_response_head(b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
    assert got is not None and got[0].status == 200 and got[1] == 23


def test_the_head_reader_resumes_where_it_stopped() -> None:
    # The contract: each call sees the bytes of the last one, and maybe more. The reader
    # does not look again at what it searched (here rewritten behind its back).
    buf = bytearray(b"HTTP/1.1 200 OK\r\nServer: cam\r\nX-A: b")
    reader = ResponseHeadReader()
    assert reader.parse(buf) is None
    buf[17:19] = b"\r\n"  # a blank line where "Se" was: not searched again
    assert reader.parse(buf) is None
    buf += b"\r\n\r\nbody"
    got = reader.parse(buf)
    assert got is not None and got[1] == len(buf) - 4
    fresh = parse_response_head(buf)
    assert fresh is not None and fresh[1] == 19  # a fresh parse finds the planted line


def test_stray_line_ends_split_across_reads() -> None:
    reader = ResponseHeadReader()
    data = b"\r\n\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    for n in range(len(data)):
        assert reader.parse(data[:n]) is None
    got = reader.parse(data)
    assert got is not None and got[0].status == 204 and got[1] == len(data)


def test_response_heads_and_part_heads_read_header_lines_alike() -> None:
    lines = (
        b"Content-Type: image/jpeg\r\n"
        b"X-Long: first\r\n"
        b"\t second\r\n"
        b"no colon here\r\n"
        b"Bad Name: ignored\r\n"
        b"X-Cr: a\rb\r\n"
        b"X-Timestamp :  17.5  \n"
    )
    got = parse_response_head(b"HTTP/1.1 200 OK\r\n" + lines + b"\r\n")
    assert got is not None
    jpeg = b"\xff\xd8\xff\xd9"
    (part,) = MultipartParser(b"b").feed(b"--b\r\n" + lines + b"\r\n" + jpeg + b"\r\n--b--")
    assert (
        got[0].headers
        == part.headers
        == (
            ("content-type", "image/jpeg"),
            ("x-long", "first second"),
            ("x-timestamp", "17.5"),
        )
    )


@pytest.mark.parametrize(
    "data",
    [
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"\xff\xd8\xff\xe0",
        b"<html>",
    ],
)
def test_malformed_heads(data: bytes) -> None:
    with pytest.raises(StreamFormatError):
        parse_response_head(data)


def test_oversized_head() -> None:
    big = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 2000 + b"\r\n"
    assert parse_response_head(big, max_size=4096) is None
    with pytest.raises(StreamFormatError, match="longer than 1024"):
        parse_response_head(big, max_size=1024)
    with pytest.raises(StreamFormatError, match="longer than 1024"):
        parse_response_head(big + b"\r\n", max_size=1024)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_head_parser_only_raises_stream_format_error(data: bytes) -> None:
    try:
        parse_response_head(b"HTTP/1.1 200 OK\r\n" + data, max_size=200)
        parse_response_head(data, max_size=200)
    except StreamFormatError:
        pass


# --- chunked bodies ----------------------------------------------------------------------

CHUNKED = (
    b"4\r\nWiki\r\n"
    b'6;name=value;x="q"\r\npedia \r\n'
    b"D\r\nin\r\n\r\nchunks.\r\n"
    b"0\r\n"
    b"Trailer: x\r\n"
    b"\r\n"
)


def decode(chunks: list[bytes]) -> tuple[bytes, ChunkedDecoder]:
    dec = ChunkedDecoder()
    out = bytearray()
    for chunk in chunks:
        for piece in dec.feed(chunk):
            out += piece
    return bytes(out), dec


def test_chunked_whole_and_byte_by_byte() -> None:
    for chunks in ([CHUNKED], [CHUNKED[i : i + 1] for i in range(len(CHUNKED))]):
        body, dec = decode(chunks)
        assert body == b"Wikipedia in\r\n\r\nchunks."
        assert dec.done and dec.chunks == 4


def test_chunked_lf_only_padded_sizes_and_unused_data() -> None:
    body, dec = decode([b"  3 \nabc\n0\n\nHTTP/1.1 200 OK"])
    assert body == b"abc" and dec.done
    assert dec.unused_data == b"HTTP/1.1 200 OK"


def test_chunked_pieces_are_zero_copy_views() -> None:
    data = b"5\r\nhello\r\n"
    pieces = ChunkedDecoder().feed(data)
    assert [bytes(p) for p in pieces] == [b"hello"]
    assert isinstance(pieces[0], memoryview) and pieces[0].obj is data


@pytest.mark.parametrize(
    "data",
    [b"zz\r\n", b"5\r\nhelloXX\r\n", b"0x5\r\nhello\r\n", b"1_0\r\n", b"F" * 20 + b"\r\n"],
)
def test_chunked_malformed(data: bytes) -> None:
    with pytest.raises(StreamFormatError):
        decode([data])


def test_chunked_size_line_too_long() -> None:
    with pytest.raises(StreamFormatError, match="longer than"):
        decode([b"5;" + b"x" * 5000])
    with pytest.raises(StreamFormatError, match="longer than"):
        decode([b"5;" + b"x" * 100] * 50)


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, len(CHUNKED)), max_size=20))
def test_chunked_any_split(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [CHUNKED[a:b] for a, b in zip([0, *points], [*points, len(CHUNKED)], strict=True)]
    body, dec = decode(chunks)
    assert body == b"Wikipedia in\r\n\r\nchunks." and dec.done


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_chunked_garbage_only_raises_stream_format_error(data: bytes) -> None:
    with contextlib.suppress(StreamFormatError):
        decode([data[i : i + 7] for i in range(0, len(data), 7)])


# --- a head's header lines read at once (http1._parse_head) against line by line ------

_RESPONSE_LINES = [
    b"Content-Type: application/json",
    b"Content-Length: 440",
    b"X-Odd \t:\t v\xa0 ",  # padding around the colon; latin-1 whitespace in the value
    b"Empty:",
    b" folded on",  # obsolete folding
    b"no colon here",
    b"Bad\rCR: x",  # a stray CR
    b"Trailing: cr\r",  # one CR more before the line end
    b"Dup: 1",
    b"dup: 2",
]


def _line_by_line(head: bytes) -> tuple[tuple[str, str], ...]:
    """The headers as headers.add_header_line reads them one line at a time."""
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\n")[1:]
    out: list[tuple[str, str]] = []
    for line in lines:
        end = len(line) - 1 if line.endswith(b"\r") else len(line)
        add_header_line(out, line, 0, end)
    return tuple(out)


@settings(max_examples=300, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(_RESPONSE_LINES) - 1), max_size=8),
    nl=st.sampled_from([b"\r\n", b"\n"]),
)
def test_header_lines_read_at_once_as_line_by_line(picks: list[int], nl: bytes) -> None:
    head = b"HTTP/1.1 200 OK" + b"".join(nl + _RESPONSE_LINES[k] for k in picks) + b"\r\n\r\n"
    got = parse_response_head(head)
    assert got is not None
    assert got[0].headers == _line_by_line(head)
