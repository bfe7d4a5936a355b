"""MultipartParser's properties (hypothesis: any split gives the same parts, garbage only
ever raises StreamFormatError) and the simulator's quirky wire, end to end through http1.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mmrec.errors import StreamFormatError
from mmrec.sim.config import Quirk
from mmrec.sim.wire import StreamWire
from mmrec.wire import jpeg
from mmrec.wire.http1 import ChunkedDecoder, parse_response_head
from mmrec.wire.multipart import boundary_from_content_type
from tests.wire.multipart_check import (
    DIRECT,
    bytewise,
    check,
    counters,
    datas,
    fake_jpeg,
    key,
    part,
    real_jpeg,
    run,
    whole,
)

# --- properties --------------------------------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_streams() -> list[tuple[bytes, bytes | None]]:
    j = real_jpeg(24, 16, seed=5)
    tricky = fake_jpeg(b"\r\n--myb\r\n")
    return [
        (part(j) + part(tricky) + b"--myb--\r\n", b"myb"),
        (part(j, cl=None) + part(j, cl=None, nl=b"\n"), b"myb"),
        (b"--ffmpeg\r\nContent-length: %d\r\n\r\n" % len(j) + j + b"\r\n", None),
        (j + j, None),
        (b"junk" + part(j, cl=len(j) + 3) + part(j), b"myb"),
    ]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@FUZZ
@given(
    which=st.integers(0, 4),
    cuts=st.lists(st.integers(0, 10**6), max_size=30),
    buf=st.booleans(),
    direct=st.booleans(),
)
def test_any_split_gives_the_same_parts(
    which: int, cuts: list[int], buf: bool, direct: bool
) -> None:
    stream, boundary = _valid_streams()[which]
    expected, p0 = run(stream, boundary, whole)
    opts = DIRECT if direct else {}
    got, p1 = run(stream, boundary, lambda b: _split(b, cuts), via_buffer=buf, **opts)
    assert key(got) == key(expected)
    assert counters(p1) == counters(p0)


@FUZZ
@given(data=st.binary(max_size=600), boundary=st.sampled_from([b"myb", b"--myb", None]))
def test_garbage_only_ever_raises_stream_format_error(data: bytes, boundary: bytes | None) -> None:
    for chunks in (whole, bytewise):
        with contextlib.suppress(StreamFormatError):
            run(data, boundary, chunks, max_part_size=300, max_header_line=100, max_headers=4)


@FUZZ
@given(
    which=st.integers(0, 4),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=4), st.integers(0, 3))),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
)
def test_mutated_streams_parse_or_raise_stream_format_error(
    which: int, edits: list[tuple[int, bytes, int]], cuts: list[int]
) -> None:
    stream, boundary = _valid_streams()[which]
    data = bytearray(stream)
    for at, insert, drop in edits:
        at %= len(data) + 1
        data[at : at + drop] = insert
    outcomes: list[object] = []
    split = lambda b: _split(b, cuts)  # noqa: E731
    for chunks, opts in ((whole, {}), (split, {}), (split, DIRECT)):
        try:
            parts, p = run(bytes(data), boundary, chunks, max_part_size=4000, **opts)
            outcomes.append((key(parts), counters(p)))
        except StreamFormatError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1] == outcomes[2]


# --- the simulator's quirky wire, end to end through http1 -------------------------------


def _sim_cases() -> list[frozenset[Quirk]]:
    singles = [frozenset({q}) for q in Quirk]
    combos = [
        {Quirk.NO_LENGTH, Quirk.LF, Quirk.BLANK_LINES},
        {Quirk.NO_BOUNDARY_PARAM, Quirk.NO_FIRST_BOUNDARY, Quirk.NO_LENGTH},
        {Quirk.DASH_BOUNDARY, Quirk.QUOTED_BOUNDARY, Quirk.WRONG_LENGTH, Quirk.CHUNKED},
        {Quirk.OCTET_STREAM, Quirk.LF, Quirk.WRONG_LENGTH, Quirk.BLANK_LINES},
        {Quirk.RAW_JPEG, Quirk.CHUNKED},
        {Quirk.DASH_BOUNDARY, Quirk.NO_LENGTH, Quirk.NO_FIRST_BOUNDARY, Quirk.HTTP10},
    ]
    return singles + [frozenset(c) for c in combos]


@pytest.mark.parametrize("quirks", _sim_cases(), ids=lambda q: "+".join(sorted(q)))
def test_simulator_wire_quirks(quirks: frozenset[Quirk]) -> None:
    wire = StreamWire(quirks)
    frames = [
        real_jpeg(48, 32, seed=k)[:2]
        + jpeg.com_segment(b"frame %d \xff\xd9" % k)
        + real_jpeg(48, 32, seed=k)[2:]
        for k in range(4)
    ]
    body = b"".join(
        wire.part_prefix(frame=k, jpeg_len=len(f), timestamp=f"17.{k:06d}", first=k == 0) + f
        for k, f in enumerate(frames)
    )
    got = parse_response_head(wire.response_head() + body)
    assert got is not None
    head, used = got
    assert used == len(wire.response_head())
    if head.chunked:
        body += b"\r\n0\r\n\r\n"
        decoder = ChunkedDecoder()
        body = b"".join(bytes(piece) for piece in decoder.feed(body))
        assert decoder.done
    parts, p = check(body, boundary_from_content_type(head.header("content-type")))
    assert datas(parts) == frames
    assert p.bytes_skipped == 0
    if Quirk.RAW_JPEG not in quirks:
        assert [x.timestamp for x in parts] == [f"17.{k:06d}" for k in range(4)]
    if Quirk.WRONG_LENGTH in quirks and Quirk.NO_LENGTH not in quirks:
        # -3 always misses the delimiter; +3 does too unless it only covers line ends
        # (blank-lines + lf), which is indistinguishable from a right length. A +3 part
        # meets the next delimiter before its declared end: counted as truncated.
        assert p.length_mismatches >= 2
        assert p.truncated == p.length_mismatches - 2
    else:
        assert (p.length_mismatches, p.truncated) == (0, 0)


# --- a part's head read whole (PartReader._whole_head) against line by line ---------------

_HEAD_LINES = [
    b"Content-Type: image/jpeg\r\n",
    b"content-length: {n}\r\n",
    b"X-Timestamp:  1764067200.5 \r\n",
    b"X-Odd \t:\tv\xa0\r\n",  # padding around the colon; latin-1 whitespace in the value
    b" folded on\r\n",  # obsolete folding
    b"no colon here\r\n",
    b"Bad\rCR: x\r\n",  # a stray CR: skipped line by line
    b"LF-only: yes\n",
    b"Long: " + b"x" * 120 + b"\r\n",  # over max_header_line below
    b"\r\n",  # a blank line (before the headers: skipped; after: the end of the head)
    b"--{b}\r\n",  # an empty part's delimiter (a header line too if the boundary has ":")
    b"--{b}: x\r\n",  # a header line that looks like the delimiter
    b"--{b}--\r\n",  # a closing delimiter
]


@FUZZ
@given(
    heads=st.lists(st.lists(st.integers(0, len(_HEAD_LINES) - 1), max_size=6), max_size=4),
    boundary=st.sampled_from([b"myb", b"my:b"]),
    delim=st.sampled_from([b"--{b}", b"----{b}", b"--{b} \t", b"--{b} junk"]),
    pad=st.sampled_from([b"", b"\r\n", b"\n", b"\r\n\r\n", b" \x00\r\n"]),
    direct=st.booleans(),
)
@example(heads=[[10, 0, 1]], boundary=b"my:b", delim=b"--{b}", pad=b"", direct=False)
def test_a_head_read_whole_is_read_as_line_by_line(
    heads: list[list[int]], boundary: bytes, delim: bytes, pad: bytes, direct: bool
) -> None:
    """The whole-head pattern (used when a part's head is all in the buffer) must give
    the same parts, counters and errors as the line-by-line handlers (bytewise feeding
    never has a whole head in the buffer)."""
    j = real_jpeg(24, 16, seed=3)
    stream = part(j, b"--" + boundary)  # read line by line; the next parts may be whole
    for lines in heads:
        head = delim + b"\r\n" + b"".join(_HEAD_LINES[k] for k in lines)
        head = head.replace(b"{n}", b"%d" % len(j)).replace(b"{b}", boundary)
        stream += pad + head + b"\r\n" + j + b"\r\n"
    opts = DIRECT if direct else {}
    outcomes: list[object] = []
    for chunks in (whole, bytewise):
        try:
            parts, p = run(stream, boundary, chunks, max_header_line=100, max_headers=5, **opts)
            outcomes.append((key(parts), counters(p)))
        except StreamFormatError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
