"""Each quirk puts on the wire exactly what it promises (raw bytes from a plain socket).

The expected bytes are spelled out here, independently of ``mmrec.sim.wire``: each part's
JPEG is rebuilt from the node's ring and its sent record (SOI, the COM record, the body).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable

from mmrec.sim import NodeConfig, Quirk, SentFrame, SimNode
from mmrec.wire import jpeg
from tests.helpers import loopback_mesh

Q = Quirk
PARTS = 4


def _name() -> str:
    return f"q-{secrets.token_hex(4)}"


def _ts(ns: int) -> bytes:
    return b"%d.%06d" % (ns // 1_000_000_000, ns % 1_000_000_000 // 1000)


def _jpeg(node: SimNode, f: SentFrame) -> bytes:
    rec = b"mmcam-sim node=%s frame=%d true_ns=%d" % (node.name.encode(), f.frame, f.true_ns)
    body = node.ring.jpegs[f.frame % len(node.ring)]
    return body[:2] + jpeg.com_segment(rec) + body[2:]


async def _read_raw(node: SimNode, eol: bytes, expected_body: Callable[[], bytes]) -> bytes:
    """GET /stream on a plain socket; read until PARTS frames went out and all arrived."""
    reader, writer = await asyncio.open_connection(node.host, node.port)
    raw = bytearray()
    try:
        writer.write(b"GET /stream HTTP/1.1\r\nHost: sim\r\n\r\n")
        async with asyncio.timeout(10):
            while True:
                end = raw.find(eol + eol)
                have = len(raw) - end - 2 * len(eol)
                if end >= 0 and node.frames_sent >= PARTS and have >= len(expected_body()):
                    break
                chunk = await reader.read(1 << 16)
                assert chunk, "stream ended early"
                raw += chunk
    finally:
        writer.close()
        await writer.wait_closed()
    return bytes(raw)


async def _run(
    quirks: set[Quirk], part: Callable[[int, bytes, bytes, int], bytes]
) -> tuple[bytes, bytes]:
    """Serve one node with ``quirks``; return (raw bytes read, expected body of PARTS parts).

    ``part(i, jpeg, timestamp, frame)`` spells out the bytes of the client's i-th part.
    """
    cfg = NodeConfig(_name(), width=160, height=120, fps=60, ring=3, quirks=frozenset(quirks))
    async with loopback_mesh([cfg]) as mesh:
        node = mesh.nodes[0]

        def expected_body() -> bytes:
            frames = list(node.sent)[:PARTS]
            return b"".join(
                part(i, _jpeg(node, f), _ts(f.device_ns), f.frame) for i, f in enumerate(frames)
            )

        eol = b"\n" if Quirk.LF in quirks else b"\r\n"
        raw = await _read_raw(node, eol, expected_body)
        return raw, expected_body()


def _split_head(raw: bytes, eol: bytes = b"\r\n") -> tuple[bytes, bytes]:
    end = raw.index(eol + eol) + 2 * len(eol)
    return raw[:end], raw[end:]


def _std(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
    return (
        (b"\r\n" if i else b"")
        + b"--mmcamsim\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n" % len(jpg)
        + b"X-Timestamp: "
        + ts
        + b"\r\n\r\n"
        + jpg
    )


def _headers(head: bytes, eol: bytes = b"\r\n") -> dict[str, str]:
    lines = head.decode().split(eol.decode())
    out = {}
    for ln in lines[1:]:
        if ln:
            k, _, v = ln.partition(":")
            out[k.strip().lower()] = v.strip()
    return out


async def test_canonical_stream() -> None:
    raw, body = await _run(set(), _std)
    head, rest = _split_head(raw)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    h = _headers(head)
    assert h["content-type"] == "multipart/x-mixed-replace; boundary=mmcamsim"
    assert h["connection"] == "close"
    assert "content-length" not in h and "transfer-encoding" not in h
    assert rest[: len(body)] == body
    assert re.search(rb"X-Timestamp: \d{10}\.\d{6}\r\n", rest)


async def test_no_length() -> None:
    def part(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
        return (
            (b"\r\n" if i else b"")
            + b"--mmcamsim\r\nContent-Type: image/jpeg\r\nX-Timestamp: "
            + ts
            + b"\r\n\r\n"
            + jpg
        )

    raw, body = await _run({Q.NO_LENGTH}, part)
    _, rest = _split_head(raw)
    assert rest[: len(body)] == body
    assert b"Content-Length" not in rest


async def test_quoted_boundary() -> None:
    raw, body = await _run({Q.QUOTED_BOUNDARY}, _std)
    head, rest = _split_head(raw)
    assert _headers(head)["content-type"] == 'multipart/x-mixed-replace; boundary="mmcamsim"'
    assert rest[: len(body)] == body


async def test_dash_boundary() -> None:
    def part(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
        return _std(i, jpg, ts, frame).replace(b"--mmcamsim\r\n", b"----mmcamsim\r\n", 1)

    raw, body = await _run({Q.DASH_BOUNDARY}, part)
    head, rest = _split_head(raw)
    assert _headers(head)["content-type"] == "multipart/x-mixed-replace; boundary=--mmcamsim"
    assert rest.startswith(b"----mmcamsim\r\n")
    assert rest[: len(body)] == body


async def test_lf_line_ends() -> None:
    def part(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
        return (
            (b"\n" if i else b"")
            + b"--mmcamsim\nContent-Type: image/jpeg\nContent-Length: %d\n" % len(jpg)
            + b"X-Timestamp: "
            + ts
            + b"\n\n"
            + jpg
        )

    raw, body = await _run({Q.LF}, part)
    head, rest = _split_head(raw, b"\n")
    assert b"\r" not in head
    assert head.startswith(b"HTTP/1.1 200 OK\n")
    assert rest[: len(body)] == body


async def test_no_first_boundary() -> None:
    def part(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
        p = _std(i, jpg, ts, frame)
        return p[len(b"--mmcamsim\r\n") :] if i == 0 else p

    raw, body = await _run({Q.NO_FIRST_BOUNDARY}, part)
    _, rest = _split_head(raw)
    assert rest.startswith(b"Content-Type: image/jpeg\r\n")
    assert rest[: len(body)] == body


async def test_octet_stream() -> None:
    raw, body = await _run({Q.OCTET_STREAM}, _std)
    head, rest = _split_head(raw)
    assert _headers(head)["content-type"] == "application/octet-stream"
    assert rest[: len(body)] == body


async def test_http10() -> None:
    raw, body = await _run({Q.HTTP10}, _std)
    head, rest = _split_head(raw)
    assert head.startswith(b"HTTP/1.0 200 OK\r\n")
    assert _headers(head)["connection"] == "close"
    assert rest[: len(body)] == body


async def test_blank_lines() -> None:
    def part(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
        # After a body: its CRLF, one blank line after the part, one before the next.
        return (b"\r\n\r\n\r\n" if i else b"\r\n") + _std(0, jpg, ts, frame)

    raw, body = await _run({Q.BLANK_LINES}, part)
    _, rest = _split_head(raw)
    assert rest.startswith(b"\r\n--mmcamsim\r\n")
    assert rest[: len(body)] == body


async def test_chunked() -> None:
    def part(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
        data = _std(i, jpg, ts, frame)
        # One chunk per part; the CRLF closing the previous chunk comes before the size.
        return (b"\r\n" if i else b"") + b"%x\r\n" % len(data) + data

    raw, body = await _run({Q.CHUNKED}, part)
    head, rest = _split_head(raw)
    h = _headers(head)
    assert h["transfer-encoding"] == "chunked" and "connection" not in h
    assert rest[: len(body)] == body


async def test_no_boundary_param() -> None:
    raw, body = await _run({Q.NO_BOUNDARY_PARAM}, _std)
    head, rest = _split_head(raw)
    assert _headers(head)["content-type"] == "multipart/x-mixed-replace"
    assert rest[: len(body)] == body


async def test_wrong_length() -> None:
    def part(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
        wrong = len(jpg) + (3 if frame % 2 == 0 else -3)
        return _std(i, jpg, ts, frame).replace(
            b"Content-Length: %d\r\n" % len(jpg), b"Content-Length: %d\r\n" % wrong, 1
        )

    raw, body = await _run({Q.WRONG_LENGTH}, part)
    _, rest = _split_head(raw)
    assert rest[: len(body)] == body


async def test_raw_jpeg() -> None:
    raw, body = await _run({Q.RAW_JPEG}, lambda i, jpg, ts, frame: jpg)
    head, rest = _split_head(raw)
    assert _headers(head)["content-type"] == "application/octet-stream"
    assert rest.startswith(b"\xff\xd8\xff\xfe")
    assert rest[: len(body)] == body


async def test_quirks_combine() -> None:
    def part(i: int, jpg: bytes, ts: bytes, frame: int) -> bytes:
        data = (
            (b"\n\n\n" if i else b"\n")
            + (b"--mmcamsim\n" if i else b"")
            + b"Content-Type: image/jpeg\nX-Timestamp: "
            + ts
            + b"\n\n"
            + jpg
        )
        return (b"\n" if i else b"") + b"%x\n" % len(data) + data

    quirks = {Q.LF, Q.NO_LENGTH, Q.QUOTED_BOUNDARY, Q.BLANK_LINES, Q.NO_FIRST_BOUNDARY, Q.CHUNKED}
    raw, body = await _run(quirks, part)
    head, rest = _split_head(raw, b"\n")
    assert _headers(head, b"\n")["content-type"] == 'multipart/x-mixed-replace; boundary="mmcamsim"'
    assert rest[: len(body)] == body
