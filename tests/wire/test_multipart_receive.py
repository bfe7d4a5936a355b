"""MultipartParser's receive path (get_buffer/buffer_updated, as asyncio's BufferedProtocol
calls it): the buffer is never empty and never resized under a view, small parts reuse it,
big payloads land straight in their own memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mmrec.store import payload
from mmrec.wire.multipart import (
    MultipartParser,
    Part,
)
from tests.wire.multipart_check import (
    counters,
    datas,
    fake_jpeg,
    key,
    part,
    real_jpeg,
    run,
    whole,
)

# --- the BufferedProtocol path -----------------------------------------------------------


def test_get_buffer_is_never_empty_and_holding_a_view_never_raises_buffer_error() -> None:
    j = real_jpeg()
    stream = b"".join(part(j) for _ in range(20))
    parser = MultipartParser(b"myb", buffer_size=512)
    parts: list[Part] = []
    held = []
    pos = 0
    while pos < len(stream):
        view = parser.get_buffer()
        assert len(view) > 0
        n = min(len(view), 1000, len(stream) - pos)
        view[:n] = stream[pos : pos + n]
        held.append(view)  # a careless caller keeps every view alive
        parts += parser.buffer_updated(n)
        pos += n
    assert datas(parts) == [j] * 20
    with pytest.raises(ValueError):
        parser.buffer_updated(1)  # no view outstanding


def test_buffer_is_reused_not_grown_for_small_parts() -> None:
    j = real_jpeg()
    stream = b"".join(part(j) for _ in range(200))
    parser = MultipartParser(b"myb", buffer_size=64 * 1024)
    n = 0
    for i in range(0, len(stream), 4096):
        n += len(parser.feed(stream[i : i + 4096]))
        assert len(parser.get_buffer()) <= 64 * 1024
    assert n == 200
    assert parser.bytes_moved < len(stream)


@dataclass
class Recv:
    """What a socket-like feed saw: bytes per read, and the memory each read went to."""

    parts: list[Part]
    reads: list[int]
    into: list[object]  # per read: the object owning the memory it was written to


def _recv_like(parser: MultipartParser, arrivals: list[bytes]) -> Recv:
    """Feed as a socket with the parser's low-water mark would: after each arrival, read
    (filling the views offered) while at least ``bytes_wanted()`` bytes wait; at the
    end (EOF) read the rest."""
    got = Recv([], [], [])
    waiting = b""
    for i, data in enumerate(arrivals):
        waiting += data
        last = i == len(arrivals) - 1
        while waiting and (last or len(waiting) >= parser.bytes_wanted()):
            view = parser.get_buffer()
            n = min(len(view), len(waiting))
            view[:n] = waiting[:n]
            got.into.append(view.obj)
            del view
            got.reads.append(n)
            got.parts += parser.buffer_updated(n)
            waiting = waiting[n:]
    got.parts += parser.feed_eof()
    return got


class Allocs:
    """An ``alloc`` for the parser that keeps what it handed out."""

    def __init__(self) -> None:
        self.made: list[memoryview] = []

    def __call__(self, n: int) -> memoryview:
        self.made.append(payload.aligned(n))
        return self.made[-1]


def test_big_payloads_are_received_straight_into_their_own_memory() -> None:
    big = [fake_jpeg(bytes([i]) * 100_000) for i in range(4)]
    stream = [part(j) for j in big]  # one frame at a time, as a camera sends them
    alloc = Allocs()
    parser = MultipartParser(b"myb", alloc=alloc)
    got = _recv_like(parser, stream)
    assert key(got.parts) == key(run(b"".join(stream), b"myb", whole)[0])
    # The first part is read whole into the buffer and copied out; each later one takes
    # a short read into the buffer (its headers and a few KB, copied) and one read of the
    # rest straight into the memory it is handed out in (the line end after the last
    # payload is read at EOF). One allocation per part, nothing moved back.
    assert len(got.reads) == 1 + 2 * 3 + 1 and got.reads[-1] == 2
    assert all(r <= 4096 for r in got.reads[1:-1:2])
    for k in range(3):
        assert got.reads[2 + 2 * k] > 90_000
        assert got.into[2 + 2 * k] is alloc.made[1 + k].obj  # the kernel's read went there
        assert got.parts[1 + k].data.obj is alloc.made[1 + k].obj
        assert payload.region(got.parts[1 + k].data) is not None
    assert len(alloc.made) == 4 and parser.bytes_moved == 0


def test_a_wrong_length_goes_back_to_scanning_and_to_one_copy_per_frame() -> None:
    j = fake_jpeg(b"x" * 100_000)
    stream = [part(j), part(j), part(j, cl=len(j) - 7), part(j), part(j, cl=len(j) + 5)]
    stream += [part(j, cl=len(j) + 5)] * 2 + [part(j)] * 2
    alloc = Allocs()
    parser = MultipartParser(b"myb", alloc=alloc)
    got = _recv_like(parser, stream)
    expected, p0 = run(b"".join(stream), b"myb", whole)
    assert key(got.parts) == key(expected) and len(got.parts) == 9
    assert counters(parser) == counters(p0)
    assert parser.length_mismatches == 4
    # Parts 3 and 5 were read directly and went back to the buffer when their lengths
    # proved wrong (an allocation more each, their bytes moved back). After a wrong
    # length, parts go through the buffer until one ends where declared (part 4, part 8):
    # one allocation each. Part 9 is read directly again.
    assert len(alloc.made) == 9 + 2
    assert got.into[-2] is alloc.made[-1].obj


@pytest.mark.parametrize("extra", [b"\r\n", b"\n"])
def test_a_length_that_counts_the_line_end_is_read_through_the_buffer(extra: bytes) -> None:
    j = fake_jpeg(b"x" * 100_000)
    one = b"--myb\r\nContent-Length: %d\r\n\r\n" % (len(j) + len(extra)) + j + extra + b"\r\n"
    alloc = Allocs()
    parser = MultipartParser(b"myb", alloc=alloc)
    got = _recv_like(parser, [one] * 4)
    assert [bytes(x.data) for x in got.parts] == [j] * 4
    assert parser.length_mismatches == 0 and parser.bytes_moved == 0
    assert len(alloc.made) == 4  # one copy per frame, as without direct reads


def test_a_stream_cut_inside_a_direct_payload_counts_it_truncated() -> None:
    j = fake_jpeg(b"x" * 100_000)
    stream = [part(j), part(j), part(j)[:50_000]]
    parser = MultipartParser(b"myb", alloc=payload.aligned)
    got = _recv_like(parser, stream)
    assert len(got.parts) == 2 and parser.truncated == 1


def test_feed_after_eof_is_a_usage_error() -> None:
    parser = MultipartParser(b"myb")
    parser.feed_eof()
    assert parser.feed_eof() == []
    with pytest.raises(RuntimeError):
        parser.feed(b"x")
