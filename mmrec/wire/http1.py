"""Minimal sans-IO HTTP/1.x client pieces: the request bytes, the response head, chunked bodies.

Only what the MJPEG ingest needs: one GET, one response whose body is streamed. Heads
are parsed leniently (LF-only line ends, obsolete folding, odd lines skipped, a missing
reason phrase) because camera firmware is sloppy; anything that cannot be read raises
:class:`~mmrec.errors.StreamFormatError` and nothing else. Bodies are never decompressed
(the request sends no Accept-Encoding). No I/O library is imported here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mmrec import __version__
from mmrec.errors import StreamFormatError
from mmrec.wire.headers import LINE, Headers, add_header_line, read_lines
from mmrec.wire.url import host_header

__all__ = [
    "ChunkedDecoder",
    "ResponseHead",
    "ResponseHeadReader",
    "build_request",
    "parse_response_head",
]

USER_AGENT: Final = f"mmrec/{__version__}"
_ACCEPT: Final = "multipart/x-mixed-replace, image/jpeg, */*"

_HEAD_END_RE: Final = re.compile(rb"\r?\n\r?\n")
# The reason phrase takes every blank after the code's separator (stripped after), so a
# status line matches one way only: with blanks allowed on both sides of the reason, a
# hostile 2000-byte status line of blanks and a stray CR took 31 ms to refuse, a 64 KiB
# one most of a minute.
_STATUS_RE: Final = re.compile(rb"HTTP/(\d)\.(\d)[ \t]+(\d{3})(?:[ \t]([^\r\n]*))?\r*")
_LEADING_BLANKS_RE: Final = re.compile(rb"[\r\n]*")
_LINES_RE: Final = re.compile(rb"(?:" + LINE + rb")*")  # header lines read at once
_CHUNK_SIZE_RE: Final = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?")
_FORBIDDEN: Final = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """The status line and headers of an HTTP/1.x response."""

    http_version: str  # "1.1" / "1.0"
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]  # (lower-cased name, stripped value), as received

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive); repeated headers joined by ", "."""
        name = name.lower()
        values = [value for key, value in self.headers if key == name]
        return ", ".join(values) if values else None

    @property
    def chunked(self) -> bool:
        """True if the body uses chunked transfer coding (the last coding is "chunked")."""
        te = self.header("transfer-encoding")
        if te is None:
            return False
        codings = [c.strip().lower() for c in te.split(",") if c.strip()]
        return bool(codings) and codings[-1] == "chunked"

    @property
    def content_length(self) -> int | None:
        """Content-Length, or None if absent, malformed or contradictory."""
        value = self.header("content-length")
        if value is None:
            return None
        found = {v.strip() for v in value.split(",")}
        return parse_length(found.pop()) if len(found) == 1 else None


def parse_length(value: str | None) -> int | None:
    """A Content-Length value (space padding allowed), or None if absent or not a number."""
    if value is None:
        return None
    text = value.strip()  # space-padded values are common and harmless
    if not text or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def build_request(
    host: str, port: int, path: str, *, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The bytes of ``GET path HTTP/1.1`` for an MJPEG stream.

    Sends Host (:func:`~mmrec.wire.url.host_header`: port omitted when 80, IPv6 bracketed
    without its zone), ``Connection: keep-alive``, an Accept for MJPEG, a
    ``User-Agent: mmrec/<version>`` and no Accept-Encoding, then ``headers``. Raises
    ValueError for CR/LF/NUL in any field.
    """
    if not path:
        path = "/"
    if not path.startswith("/"):
        path = "/" + path
    for field in (host, path, *(x for pair in headers for x in pair)):
        if _FORBIDDEN.search(field):
            raise ValueError(f"CR, LF or NUL in an HTTP request field: {field!r}")
    if " " in path:
        raise ValueError(f"space in request path: {path!r}")
    host_value = host_header(host.strip("[]"), port)
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host_value}",
        "Connection: keep-alive",
        f"Accept: {_ACCEPT}",
        f"User-Agent: {USER_AGENT}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class ResponseHeadReader:
    """Finds and parses a response head in a buffer that grows as bytes arrive.

    Call :meth:`parse` with everything received so far (the same bytes as before, and
    maybe more) until it returns the head. The search for the blank line that ends the
    head resumes where the last one stopped, so reading a head costs O(n) however the
    bytes are chunked. Anything that cannot be a head raises
    :class:`~mmrec.errors.StreamFormatError`, as does a head longer than ``max_size``.
    """

    __slots__ = ("_begin", "_searched", "max_size")

    def __init__(self, *, max_size: int = 65536) -> None:
        self.max_size = max_size
        self._begin = -1  # where the status line starts, once known
        self._searched = 0  # searched up to here: for the status line, then the head's end

    def parse(self, buf: bytes | bytearray | memoryview) -> tuple[ResponseHead, int] | None:
        """The head and the number of bytes it used (through the blank line, ``\\r\\n``
        or bare ``\\n``), or None if more bytes are needed."""
        max_size = self.max_size
        with memoryview(buf) as mv, mv.cast("B") as data:
            n = len(data)
            begin = self._begin
            if begin < 0:
                # Stray line ends before the status line.
                m = _LEADING_BLANKS_RE.match(data, self._searched)
                begin = self._searched = m.end() if m else self._searched
                if begin > max_size:
                    raise StreamFormatError(f"response head longer than {max_size} bytes")
                if begin == n:
                    return None
                self._begin = begin
            # The head ends at the first empty line; a bare "\n" right after the status
            # line start cannot be one (begin skipped leading line ends). A match may
            # begin up to 3 bytes before where the last search stopped.
            stop = min(n, max_size + 4)
            end_m = _HEAD_END_RE.search(data, max(begin, self._searched - 3), stop)
            if end_m is None:
                self._searched = max(self._searched, stop)
                if n - begin > max_size:
                    raise StreamFormatError(f"response head longer than {max_size} bytes")
                if not _could_be_status(bytes(data[begin : min(n, begin + 8)])):
                    raise StreamFormatError(
                        f"not an HTTP response: {bytes(data[begin : begin + 40])!r}"
                    )
                return None
            used = end_m.end()
            if used > max_size:
                raise StreamFormatError(f"response head longer than {max_size} bytes")
            return _parse_head(data, begin, end_m.start()), used


def parse_response_head(
    buf: bytes | bytearray | memoryview, *, max_size: int = 65536
) -> tuple[ResponseHead, int] | None:
    """Parse a response head from the start of ``buf`` in one go (see
    :class:`ResponseHeadReader`, which a caller whose buffer grows should keep instead).

    Returns the head and the number of bytes it used, or None if more bytes are needed.
    Raises StreamFormatError if the head is malformed or longer than ``max_size``.
    """
    return ResponseHeadReader(max_size=max_size).parse(buf)


def _could_be_status(prefix: bytes) -> bool:
    return b"HTTP/"[: len(prefix)] == prefix[:5]


def _parse_head(data: memoryview, begin: int, end: int) -> ResponseHead:
    """The head in ``data[begin:end]`` (its lines, without the blank line)."""
    text = bytes(data[begin:end])  # a head is small: one copy to read its lines from
    lf = text.find(b"\n")
    first = text if lf < 0 else text[:lf]
    status = _STATUS_RE.fullmatch(first)
    if status is None:
        raise StreamFormatError(f"bad HTTP status line: {first[:80]!r}")
    version = f"{int(status.group(1))}.{int(status.group(2))}"
    if version not in ("1.0", "1.1"):
        raise StreamFormatError(f"unsupported HTTP version {version}")
    reason = (status.group(4) or b"").decode("latin-1").strip()
    headers: Headers = []
    i = len(text) if lf < 0 else lf + 1
    # The usual head, every line a plain "name: value", in two passes of one pattern (a
    # /status probe's head several times a second per camera); else line by line.
    lines = text[i:] + b"\n"
    if i < len(text) and _LINES_RE.fullmatch(lines):
        headers = read_lines(lines)
        i = len(text)
    while i < len(text):
        e = text.find(b"\n", i)
        if e < 0:
            e = len(text)
        line_end = e - 1 if e > i and text[e - 1] == 0x0D else e
        add_header_line(headers, text, i, line_end)
        i = e + 1
    return ResponseHead(version, int(status.group(3)), reason, tuple(headers))


# ChunkedDecoder states
_SIZE: Final = 0
_DATA: Final = 1
_DATA_END: Final = 2
_TRAILER: Final = 3
_FINISHED: Final = 4


class ChunkedDecoder:
    """Decode a ``Transfer-Encoding: chunked`` body incrementally.

    ``feed`` returns the payload pieces in order, as memoryviews into the data it was
    given where possible (no copy): they are valid until the next ``feed`` call and
    only while the caller's buffer is unchanged. Chunk extensions and trailers are
    read and ignored. Bytes after the terminal chunk are kept in ``unused_data``.
    """

    max_line: int = 4096

    def __init__(self) -> None:
        self._state = _SIZE
        self._remaining = 0
        self._line = bytearray()  # a size/trailer line split across feeds (small)
        self.done = False
        self.unused_data = b""
        self.chunks = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | memoryview]:
        """Decode ``data``; return the body pieces now available."""
        out: list[bytes | memoryview] = []
        mv = memoryview(data).cast("B")
        i, n = 0, len(mv)
        while i < n:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, n - i)
                out.append(mv[i : i + take])
                i += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DATA_END
                continue
            if state == _FINISHED:
                self.unused_data += bytes(mv[i:])
                break
            line, i = self._take_line(mv, i, n)
            if line is None:
                break
            if state == _SIZE:
                m = _CHUNK_SIZE_RE.fullmatch(line)
                if m is None:
                    raise StreamFormatError(f"bad chunk size line: {line[:40]!r}")
                self._remaining = int(m.group(1), 16)
                self.chunks += 1
                self._state = _DATA if self._remaining else _TRAILER
            elif state == _DATA_END:
                if line.strip(b"\r"):
                    raise StreamFormatError(f"chunk not followed by CRLF: {line[:40]!r}")
                self._state = _SIZE
            elif state == _TRAILER and not line.strip(b"\r"):
                self._state = _FINISHED
                self.done = True
        return out

    def _take_line(self, mv: memoryview, i: int, n: int) -> tuple[bytes | None, int]:
        """The next line (without LF) from the partial line plus ``mv[i:]``, or None."""
        lf = _find_lf(mv, i, n, self.max_line + 1 - len(self._line))
        if lf < 0:
            self._line += mv[i:n]
            if len(self._line) > self.max_line:
                raise StreamFormatError(f"chunk line longer than {self.max_line} bytes")
            return None, n
        if self._line:
            self._line += mv[i:lf]
            line = bytes(self._line)
            self._line.clear()
        else:
            line = bytes(mv[i:lf])
        if len(line) > self.max_line:
            raise StreamFormatError(f"chunk line longer than {self.max_line} bytes")
        return line, lf + 1


def _find_lf(mv: memoryview, i: int, n: int, limit: int) -> int:
    stop = min(n, i + max(limit, 0))
    if stop <= i:
        return -1
    # bytes(mv[i:stop]) is a copy of at most max_line bytes of framing, never payload.
    pos = bytes(mv[i:stop]).find(b"\n")
    return -1 if pos < 0 else i + pos
