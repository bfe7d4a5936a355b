"""The harness of the MultipartParser specification (tests/wire/test_multipart*.py): every
case runs on the whole input, split byte by byte, and through the BufferedProtocol path
(get_buffer/buffer_updated) with a tiny buffer; all must give the same parts and counters
(:func:`check`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from turbojpeg import TurboJPEG

from mmrec.store import payload
from mmrec.wire.multipart import (
    MultipartParser,
    Part,
)

COUNTERS = ("parts", "bytes_in", "bytes_skipped", "truncated", "length_mismatches", "closed")


@cache
def real_jpeg(w: int = 64, h: int = 48, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return bytes(TurboJPEG().encode(img, quality=85))


def fake_jpeg(body: bytes) -> bytes:
    """A JPEG-shaped payload (SOI ... EOI) with chosen bytes inside."""
    return b"\xff\xd8" + body + b"\xff\xd9"


def part(
    payload: bytes,
    boundary: bytes = b"--myb",
    *,
    cl: int | str | None = "auto",
    ctype: bytes | None = b"image/jpeg",
    extra: bytes = b"",
    nl: bytes = b"\r\n",
) -> bytes:
    head = boundary + nl
    if ctype is not None:
        head += b"Content-Type: " + ctype + nl
    if cl == "auto":
        head += b"Content-Length: %d" % len(payload) + nl
    elif cl is not None:
        head += b"Content-Length: " + str(cl).encode() + nl
    return head + extra + nl + payload + nl


def run(
    stream: bytes,
    boundary: str | bytes | None,
    chunks: Callable[[bytes], list[bytes]],
    *,
    via_buffer: int = 0,
    **kw: Any,
) -> tuple[list[Part], MultipartParser]:
    """Parse ``chunks(stream)`` then EOF; via_buffer: use get_buffer/buffer_updated."""
    parser = MultipartParser(boundary, **kw)
    parts: list[Part] = []
    for chunk in chunks(stream):
        if via_buffer:
            pos = 0
            while pos < len(chunk):
                view = parser.get_buffer(-1)
                n = min(len(view), len(chunk) - pos)
                view[:n] = chunk[pos : pos + n]
                del view
                parts += parser.buffer_updated(n)
                pos += n
        else:
            parts += parser.feed(chunk)
    parts += parser.feed_eof()
    return parts, parser


def whole(b: bytes) -> list[bytes]:
    return [b]


def bytewise(b: bytes) -> list[bytes]:
    return [b[i : i + 1] for i in range(len(b))]


def counters(p: MultipartParser) -> tuple[object, ...]:
    return tuple(getattr(p, name) for name in COUNTERS)


def key(parts: list[Part]) -> list[tuple[object, ...]]:
    """Parts as comparable values (payloads as bytes, whatever memory holds them)."""
    return [
        (x.headers, bytes(x.data), x.content_type, x.declared_length, x.timestamp) for x in parts
    ]


# Payloads received straight into their own (aligned) memory, even tiny ones.
DIRECT: dict[str, Any] = {"alloc": payload.aligned, "direct_min": 1}


def check(
    stream: bytes, boundary: str | bytes | None = b"myb", **kw: int
) -> tuple[list[Part], MultipartParser]:
    """Parse whole, byte by byte, and via get_buffer with a small buffer, each also with
    payloads received into their own memory: all must agree."""
    expected, p0 = run(stream, boundary, whole, **kw)

    def in61(b: bytes) -> list[bytes]:
        return [b[i : i + 61] for i in range(0, len(b), 61)]

    for chunks, via, direct in itertools.product((whole, bytewise, in61), (0, 1), (0, 1)):
        opts: dict[str, Any] = dict(kw, **DIRECT) if direct else dict(kw)
        if via:
            opts["buffer_size"] = 256  # forces compaction and growth
        got, p1 = run(stream, boundary, chunks, via_buffer=via, **opts)
        assert key(got) == key(expected)
        assert counters(p1) == counters(p0)
    return expected, p0


def datas(parts: list[Part]) -> list[bytes]:
    return [x.data for x in parts]
