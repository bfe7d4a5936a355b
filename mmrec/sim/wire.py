"""The simulator's bytes on the wire, without any I/O (sans-IO, like h11).

:class:`StreamWire` says what a node writes on ``/stream``: the response head once, then
for each frame a *prefix* followed by the JPEG. The prefix holds everything before the
JPEG's first byte: the previous part's line end, the boundary, the part headers, the
chunk-size line when chunked. The JPEG is written as two pieces: ``SOI + COM`` (built
per frame) and the pre-encoded body after its SOI, which is never copied.

Canonical stream (no quirks), every part after the first preceded by CRLF::

    --mmcamsim\\r\\n
    Content-Type: image/jpeg\\r\\n
    Content-Length: 201234\\r\\n
    X-Timestamp: 1764067200.123456\\r\\n
    \\r\\n
    <JPEG>\\r\\n--mmcamsim\\r\\n ...

Each :class:`~mmrec.sim.config.Quirk` changes exactly what its docstring promises.
The module also parses the small HTTP/1.x requests the node answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from mmrec.errors import StreamFormatError
from mmrec.sim.config import Quirk

BOUNDARY: Final = "mmcamsim"
SERVER: Final = "mmcam-sim/0.1"
MAX_REQUEST_HEAD: Final = 16 * 1024
MAX_REQUEST_BODY: Final = 64 * 1024  # a command's JSON
WRONG_LENGTH_DELTA: Final = 3


def format_timestamp(device_ns: int) -> str:
    """A device clock reading as seconds with exactly six decimals (``1764067200.123456``)."""
    sec, rest = divmod(device_ns, 1_000_000_000)
    return f"{sec}.{rest // 1000:06d}"


def declared_length(jpeg_len: int, frame: int, quirks: frozenset[Quirk]) -> int:
    """The Content-Length a part announces: the true length unless ``wrong-length``."""
    if Quirk.WRONG_LENGTH in quirks:
        return jpeg_len + (WRONG_LENGTH_DELTA if frame % 2 == 0 else -WRONG_LENGTH_DELTA)
    return jpeg_len


@dataclass(frozen=True, slots=True)
class StreamWire:
    """The framing of one node's ``/stream`` response, fixed by its quirks."""

    quirks: frozenset[Quirk] = field(default_factory=frozenset)
    boundary: str = BOUNDARY

    @property
    def eol(self) -> bytes:
        return b"\n" if Quirk.LF in self.quirks else b"\r\n"

    @property
    def multipart(self) -> bool:
        return Quirk.RAW_JPEG not in self.quirks

    @property
    def boundary_param(self) -> str:
        """The boundary as declared (``dash-boundary`` declares it with a leading ``--``)."""
        return ("--" + self.boundary) if Quirk.DASH_BOUNDARY in self.quirks else self.boundary

    @property
    def delimiter(self) -> bytes:
        """The delimiter line (without line ends) that opens every part."""
        return b"--" + self.boundary_param.encode("ascii")

    @property
    def content_type(self) -> str:
        q = self.quirks
        if Quirk.OCTET_STREAM in q or Quirk.RAW_JPEG in q:
            return "application/octet-stream"
        if Quirk.NO_BOUNDARY_PARAM in q:
            return "multipart/x-mixed-replace"
        param = self.boundary_param
        if Quirk.QUOTED_BOUNDARY in q:
            param = f'"{param}"'
        return f"multipart/x-mixed-replace; boundary={param}"

    def response_head(self) -> bytes:
        """Status line and headers of the ``/stream`` response, up to the blank line."""
        q = self.quirks
        lines = ["HTTP/1.0 200 OK" if Quirk.HTTP10 in q else "HTTP/1.1 200 OK"]
        lines.append(f"Server: {SERVER}")
        lines.append(f"Content-Type: {self.content_type}")
        lines.append("Cache-Control: no-cache, no-store, must-revalidate")
        lines.append("Pragma: no-cache")
        lines.append("Access-Control-Allow-Origin: *")
        if Quirk.CHUNKED in q:
            lines.append("Transfer-Encoding: chunked")
        else:
            # The body ends when the connection does: say so, in 1.0 and 1.1 alike.
            lines.append("Connection: close")
        eol = self.eol
        return eol.join(s.encode("ascii") for s in lines) + eol + eol

    def part_prefix(self, *, frame: int, jpeg_len: int, timestamp: str, first: bool) -> bytes:
        """Bytes to write before a frame's JPEG (``jpeg_len`` bytes, SOI to EOI).

        ``first`` is the first part this client receives: it has no previous part to
        close, and with ``chunked`` no previous chunk to end.
        """
        q = self.quirks
        eol = self.eol
        if self.multipart:
            pieces: list[bytes] = []
            if not first:
                pieces.append(eol)  # ends the previous part's body (part of the delimiter)
            if Quirk.BLANK_LINES in q:
                # One blank line after the previous part and one before this one.
                pieces.append(eol if first else eol + eol)
            if not (first and Quirk.NO_FIRST_BOUNDARY in q):
                pieces.append(self.delimiter + eol)
            pieces.append(b"Content-Type: image/jpeg" + eol)
            if Quirk.NO_LENGTH not in q:
                length = declared_length(jpeg_len, frame, q)
                pieces.append(b"Content-Length: %d" % length + eol)
            pieces.append(b"X-Timestamp: " + timestamp.encode("ascii") + eol)
            pieces.append(eol)
            prefix = b"".join(pieces)
        else:
            prefix = b""
        if Quirk.CHUNKED in q:
            # One chunk per frame: its data is the prefix above plus the JPEG. The CRLF
            # ending the previous chunk is written here, just before this chunk's size.
            size = b"%x" % (len(prefix) + jpeg_len)
            prefix = (b"" if first else eol) + size + eol + prefix
        return prefix


@dataclass(frozen=True, slots=True)
class RequestHead:
    """The request line (and headers) of one HTTP/1.x request."""

    method: str
    path: str
    query: str
    version: str
    headers: tuple[tuple[str, str], ...]


def find_head_end(buf: bytes | bytearray) -> int:
    """Index just past the blank line ending a request head, or -1 if not there yet."""
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    ends = [i + 4 for i in (crlf,) if i >= 0] + [i + 2 for i in (lf,) if i >= 0]
    return min(ends) if ends else -1


def parse_request_head(head: bytes | bytearray) -> RequestHead:
    """Parse a complete request head; StreamFormatError if it is not HTTP/1.x."""
    try:
        text = bytes(head).decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes anything
        raise StreamFormatError("request head is not text") from exc
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise StreamFormatError(f"bad request line {lines[0][:80]!r}")
    method, target, version = parts
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for ln in lines[1:]:
        if not ln:
            continue
        name, sep, value = ln.partition(":")
        if not sep:
            raise StreamFormatError(f"bad header line {ln[:80]!r}")
        headers.append((name.strip().lower(), value.strip()))
    return RequestHead(method.upper(), path, query, version, tuple(headers))


def http_response(
    status: int,
    reason: str,
    body: bytes,
    content_type: str,
    *,
    version: str = "HTTP/1.1",
    keep_alive: bool = False,
) -> bytes:
    """A complete response with Content-Length; the connection closes after it unless
    ``keep_alive``."""
    head = (
        f"{version} {status} {reason}\r\n"
        f"Server: {SERVER}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-cache\r\n"
        "Access-Control-Allow-Origin: *\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode("ascii") + body


def json_response(payload: object, *, keep_alive: bool = False) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return http_response(200, "OK", body, "application/json", keep_alive=keep_alive)


def sse_head() -> bytes:
    """Response head of the ``/events`` Server-Sent Events stream."""
    return (
        "HTTP/1.1 200 OK\r\n"
        f"Server: {SERVER}\r\n"
        "Content-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n"
        "Access-Control-Allow-Origin: *\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")


def sse_event(event: str, payload: object) -> bytes:
    """One SSE message: ``event:`` line, one ``data:`` line of compact JSON, blank line."""
    data = json.dumps(payload, separators=(",", ":"))
    return f"event: {event}\ndata: {data}\n\n".encode()
