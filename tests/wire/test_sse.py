"""SSEParser as a specification: every case whole, byte by byte and in odd chunks, giving
the same events; hypothesis for arbitrary splits, and garbage that raises only
StreamFormatError. Cases follow the WHATWG event-stream interpretation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmrec.errors import StreamFormatError
from mmrec.sim.wire import sse_event
from mmrec.wire.sse import ServerEvent, SSEParser

Chunker = Callable[[bytes], list[bytes]]


def whole(b: bytes) -> list[bytes]:
    return [b]


def bytewise(b: bytes) -> list[bytes]:
    return [b[i : i + 1] for i in range(len(b))]


def odd(b: bytes) -> list[bytes]:
    out, i, n = [], 0, 1
    while i < len(b):
        out.append(b[i : i + n])
        i += n
        n = n % 7 + 2
    return out


CHUNKERS = [whole, bytewise, odd]


def parse(stream: bytes, chunks: Chunker, **kw: int) -> tuple[list[ServerEvent], SSEParser]:
    p = SSEParser(**kw)
    out: list[ServerEvent] = []
    for c in chunks(stream):
        out += p.feed(c)
    out += p.feed_eof()
    return out, p


CASES: list[tuple[str, bytes, list[ServerEvent]]] = [
    ("one message", b"data: hello\n\n", [ServerEvent("message", "hello")]),
    (
        "named, CRLF",
        b"event: heartbeat\r\ndata: {\"a\":1}\r\n\r\n",
        [ServerEvent("heartbeat", '{"a":1}')],
    ),
    ("CR only", b"event: x\rdata: y\r\r", [ServerEvent("x", "y")]),
    ("data lines join with LF", b"data: a\ndata:b\ndata\n\n", [ServerEvent("message", "a\nb\n")]),
    ("comments are skipped", b": keep-alive\n\ndata: z\n\n", [ServerEvent("message", "z")]),
    ("no data, no event", b"event: empty\n\ndata: q\n\n", [ServerEvent("message", "q")]),
    (
        "id and retry are kept",
        b"id: 7\nretry: 1500\ndata: r\n\nretry: x\ndata: s\n\n",
        [ServerEvent("message", "r", "7", 1500), ServerEvent("message", "s", "7", 1500)],
    ),
    ("id with NUL is ignored", b"id: a\x00b\ndata: t\n\n", [ServerEvent("message", "t")]),
    ("unknown fields ignored", b"foo: bar\ndata: u\n\n", [ServerEvent("message", "u")]),
    ("only one leading space goes", b"data:  two\n\n", [ServerEvent("message", " two")]),
    ("BOM at the start", b"\xef\xbb\xbfdata: v\n\n", [ServerEvent("message", "v")]),
    ("bad UTF-8 is replaced", b"data: \xff\n\n", [ServerEvent("message", "\ufffd")]),
    ("unfinished event dropped at EOF", b"data: w\n\ndata: no\n", [ServerEvent("message", "w")]),
    (
        "the simulator's events",
        sse_event("heartbeat", {"deviceName": "A"}) + sse_event("command", {"x": 1}),
        [ServerEvent("heartbeat", '{"deviceName":"A"}'), ServerEvent("command", '{"x":1}')],
    ),
    ("markup stays text", b"data: <script>alert(1)</script>\n\n",
     [ServerEvent("message", "<script>alert(1)</script>")]),
]  # fmt: skip


@pytest.mark.parametrize("chunks", CHUNKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("stream", "events"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cases(stream: bytes, events: list[ServerEvent], chunks: Chunker) -> None:
    got, _ = parse(stream, chunks)
    assert got == events


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    p = SSEParser()
    assert p.feed(b"data: a\r") == []
    assert p.feed(b"\n\r") == [ServerEvent("message", "a")]
    assert p.feed(b"\ndata: b\n\n") == [ServerEvent("message", "b")]


@pytest.mark.parametrize("chunks", CHUNKERS, ids=lambda c: c.__name__)
def test_a_line_that_never_ends_is_refused_within_the_bound(chunks: Chunker) -> None:
    with pytest.raises(StreamFormatError, match="line longer than 100"):
        parse(b"data: " + b"x" * 200, chunks, max_line=100)


@pytest.mark.parametrize("chunks", CHUNKERS, ids=lambda c: c.__name__)
def test_an_event_that_never_ends_is_refused_within_the_bound(chunks: Chunker) -> None:
    with pytest.raises(StreamFormatError, match="data longer than 500"):
        parse(b"data: 0123456789\n" * 100, chunks, max_line=100, max_event=500)


def test_comments_are_counted_and_hold_nothing() -> None:
    _, p = parse(b": ping\n" * 1000, whole)
    assert p.comments == 1000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=30))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    stream = b"".join(c[1] for c in CASES if not c[1].startswith(b"\xef"))
    expected, _ = parse(stream, whole)
    pieces, i = [], 0
    for n in cuts:
        pieces.append(stream[i : i + n])
        i += n
    pieces.append(stream[i:])
    got, _ = parse(stream, lambda _b: pieces)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 50), max_size=10))
def test_garbage_raises_only_stream_format_error(data: bytes, cuts: list[int]) -> None:
    p = SSEParser(max_line=64, max_event=128)
    i = 0
    try:
        for n in [*cuts, len(data)]:
            for ev in p.feed(data[i : i + n]):
                assert isinstance(ev.data, str) and isinstance(ev.event, str)
            i += n
        p.feed_eof()
    except StreamFormatError:
        pass
