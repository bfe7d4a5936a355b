"""The multipart state machine: what the bytes in the receive buffer mean, state by state.

:class:`PartReader` has one handler per :class:`State`; each reads what the buffer holds
and returns the next state, or None when it needs more bytes. The parser
(:mod:`mmrec.wire.multipart`) dispatches to them from a table and owns the receiving.
Handlers never copy framing out of the buffer except header lines; a payload is copied
once, when its part is complete (or not at all: see :class:`~mmrec.wire.receive.DirectReceive`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from mmrec.errors import StreamFormatError
from mmrec.wire import jpeg
from mmrec.wire.boundary import Delimiter
from mmrec.wire.content_type import media_type
from mmrec.wire.headers import LINE, Headers, add_header_line, is_header_line, read_lines
from mmrec.wire.http1 import parse_length
from mmrec.wire.rawjpeg import JpegSplitter
from mmrec.wire.receive import DirectReceive, ReceiveBuffer

_LF: Final = 0x0A
# Padding accepted between a payload of declared length and the next delimiter.
_PAD: Final = re.compile(rb"[\r\n \t\x00]*")
_MAX_PAD: Final = 256


class State(IntEnum):
    """Where the parser is in the stream (an index into the parser's handler table)."""

    START = 0  # between items, nothing known: sniff what comes next
    PREAMBLE = 1  # skipping garbage until a delimiter
    DELIM = 2  # at the start of a validated delimiter line
    HEADERS = 3  # reading part headers
    BODY_LEN = 4  # payload of declared length: wait for it, then check the delimiter
    BODY_SCAN = 5  # payload without (trustworthy) length: search for the delimiter
    AFTER = 6  # after a part of declared length: expect padding and a delimiter
    RAW_JPEG = 7  # back-to-back JPEGs without multipart framing (JpegSplitter)
    DONE = 8  # after feed_eof


# Enum members looked up on their class cost ~0.2 µs each on CPython 3.11; the handlers
# run a few times per frame, so they name the states through these module constants.
_START: Final = State.START
_PREAMBLE: Final = State.PREAMBLE
_DELIM: Final = State.DELIM
_HEADERS: Final = State.HEADERS
_BODY_LEN: Final = State.BODY_LEN
_BODY_SCAN: Final = State.BODY_SCAN
_AFTER: Final = State.AFTER
_RAW_JPEG: Final = State.RAW_JPEG


@dataclass(frozen=True, slots=True)
class Part:
    """One body part of the stream (or one JPEG of a raw JPEG stream)."""

    headers: tuple[tuple[str, str], ...]  # (lower-cased name, stripped value), as received
    data: bytes | memoryview  # the payload: exactly one copy out of the receive buffer, or none
    content_type: str | None  # "image/jpeg" (image/jpg normalised), None without the header
    declared_length: int | None  # Content-Length as declared, None if absent/unparseable
    timestamp: str | None  # raw X-Timestamp header value, if any

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


class PartReader:
    """Multipart handlers over one :class:`ReceiveBuffer` (see :class:`State`).

    Counters: ``truncated`` (parts cut short by EOF, or by a new delimiter before their
    declared length), ``length_mismatches`` (a Content-Length not followed by a
    delimiter, so the part was scanned instead), ``closed`` (a closing delimiter seen).
    """

    def __init__(
        self,
        rx: ReceiveBuffer,
        memory: DirectReceive,
        delim: Delimiter,
        raw: JpegSplitter,
        *,
        max_part_size: int,
        max_header_line: int,
        max_headers: int,
    ) -> None:
        self._rx = rx
        self._memory = memory
        self._delim = delim
        self._raw = raw
        self.max_part_size = max_part_size
        self.max_header_line = max_header_line
        self.max_headers = max_headers
        self._seen_delim = False
        # The part in progress.
        self.headers: Headers = []
        self._header_lines = 0
        self.declared: int | None = None  # its Content-Length
        self.truncated = 0
        self.length_mismatches = 0
        self.closed = False
        # The pattern that reads a whole part head at once, for the current delimiter.
        self._head_needle = b""
        self._head_re: re.Pattern[bytes] | None = None

    def emit(self, out: list[Part], data: bytes | memoryview, ctype: str | None = None) -> None:
        """Hand out the part in progress with payload ``data``."""
        headers = tuple(self.headers)
        timestamp = None
        for key, value in headers:
            if key == "x-timestamp" and timestamp is None:
                timestamp = value
            elif key == "content-type" and ctype is None:
                ctype = media_type(value)
        out.append(Part(headers, data, ctype, self.declared, timestamp))
        self.headers = []

    def _emit(self, out: list[Part], s: int, e: int) -> None:
        self.emit(out, self._memory.copy(self._rx.data, s, e))

    def _line_end(self, i: int) -> int:
        """Index of the LF ending the line at ``i`` (searching max_header_line), or -1."""
        return self._rx.find_lf(i, self.max_header_line + 1)

    # START: sniff what the next item is.
    def sniff(self, out: list[Part]) -> State | None:
        rx = self._rx
        buf, end = rx.data, rx.end
        m = _PAD.match(buf, rx.start, end)
        i = m.end() if m else rx.start
        rx.skip_to(i)
        if end - i < 2:
            if rx.eof:
                rx.skip_to(end)
            return None
        if buf.startswith(jpeg.SOI, i, end):
            if self._delim.boundary is None:
                self._raw.begin(i)
                return _RAW_JPEG
            return self._begin_body(i)  # multipart without a delimiter or headers first
        lf = self._line_end(i)
        if lf < 0 and not rx.eof and end - i <= self.max_header_line:
            return None  # classify whole lines only
        if buf.startswith(b"--", i, end):
            got = self._delim.at(i)
            if got < 0:
                return None
            if got == 0 and not self._seen_delim and self._delim.known:
                # Declared boundary "a" but the first line reads "--b": trust the body.
                got = self._delim.relearn_at(i)
            if got > 0:
                return _DELIM
        elif lf >= 0 and is_header_line(buf, i, lf):
            # No delimiter before the first part: headers straight away.
            self.headers = []
            self._header_lines = 0
            return _HEADERS
        rx.line_start = rx.resume = i
        if self._raw.active:
            self._raw.seek()
            return _RAW_JPEG
        return _PREAMBLE

    # PREAMBLE: garbage until a delimiter line.
    def preamble(self, out: list[Part]) -> State | None:
        rx = self._rx
        q, resume = self._delim.find(rx.resume, rx.line_start)
        if q >= 0:
            rx.skip_to(q)
            return _DELIM
        if rx.eof:
            rx.skip_to(rx.end)
            return None
        # Keep a little context before the resume point for the line-start check.
        rx.skip_to(max(rx.start, resume - 3))
        rx.resume = resume
        return None

    # DELIM: a validated delimiter line starts at rx.start.
    def delimiter(self, out: list[Part]) -> State | None:
        rx = self._rx
        i = rx.start
        lf = self._line_end(i)
        if lf < 0:
            if rx.end - i > self.max_header_line:
                raise StreamFormatError(f"delimiter line longer than {self.max_header_line} bytes")
            if rx.eof:
                rx.start = rx.end
            return None
        self._seen_delim = True
        rx.start = lf + 1
        if self._delim.rest_of_line(i, lf).startswith(b"--"):
            # Closing delimiter: an epilogue may follow, or (sloppy servers) more parts.
            self.closed = True
            rx.line_start = rx.resume = lf + 1
            return _PREAMBLE
        self.headers = []
        self._header_lines = 0
        return _HEADERS

    # HEADERS: part header lines up to a blank line.
    def read_headers(self, out: list[Part]) -> State | None:
        rx = self._rx
        buf, end = rx.data, rx.end
        headers = self.headers
        while True:
            i = rx.start
            if end - i < 2 and not rx.eof:
                return None
            if buf.startswith(jpeg.SOI, i, end):
                # A payload without headers, or without the blank line after them.
                return self._begin_body(i)
            if not headers and buf.startswith(b"--", i, end):
                got = self._delim.at(i)
                if got < 0:
                    return None
                if got > 0:  # an empty part: just another delimiter
                    return _DELIM
            lf = self._line_end(i)
            if lf < 0:
                if end - i > self.max_header_line:
                    raise self._line_too_long()
                if rx.eof:
                    if headers:
                        self.truncated += 1
                        rx.start = end
                    else:
                        rx.skip_to(end)
                return None
            if lf - i > self.max_header_line:
                raise self._line_too_long()
            rx.start = lf + 1
            line_end = lf - 1 if lf > i and buf[lf - 1] == 0x0D else lf
            if line_end == i:
                if headers:
                    return self._begin_body(lf + 1)
                continue  # blank lines between the delimiter and the headers
            self._header_lines += 1
            if self._header_lines > self.max_headers:
                raise StreamFormatError(f"more than {self.max_headers} part header lines")
            add_header_line(headers, buf, i, line_end)

    def _line_too_long(self) -> StreamFormatError:
        return StreamFormatError(f"part header line longer than {self.max_header_line} bytes")

    def _begin_body(self, s: int) -> State:
        rx = self._rx
        rx.start = rx.resume = rx.line_start = s
        cl = None
        for key, value in self.headers:
            if key == "content-length":
                cl = parse_length(value)
                break
        self.declared = cl
        if cl is None:
            self._memory.armed = False
            return _BODY_SCAN
        if cl > self.max_part_size:
            raise StreamFormatError(
                f"part declares {cl} bytes, more than max_part_size={self.max_part_size}"
            )
        return _BODY_LEN

    # BODY_LEN: Content-Length known; jump to its end and check the delimiter.
    def body_len(self, out: list[Part]) -> State | None:
        assert self.declared is not None
        rx = self._rx
        buf, end = rx.data, rx.end
        s = rx.start
        e = s + self.declared
        if end < e:
            return self._to_scan() if rx.eof else None  # at EOF: maybe a delimiter came early
        t = jpeg.end(buf, s, e)
        if t >= 0:
            # The declared bytes are exactly one JPEG (SOI ... EOI): hand it out now rather
            # than one frame interval later, when the next delimiter arrives. A wrong
            # Content-Length almost never lands exactly on an EOI.
            self._emit(out, s, t)
            rx.start = e
            # A stream with trustworthy lengths: read the next big payload in directly.
            self._memory.arm(t == e, e - s)
            return _AFTER
        if end == e and not rx.eof:
            return None
        limit = min(end, e + _MAX_PAD)
        m = _PAD.match(buf, e, limit)
        j = m.end() if m else e
        if j == end and (rx.eof or j - e >= _MAX_PAD):
            # Only padding after the declared bytes, then EOF: the part is complete.
            if rx.eof:
                self._emit(out, s, e)
                rx.start = end
                return None
        elif j == limit and limit == end:
            return None  # only padding so far
        got = self._delim.at(j) if j - e < _MAX_PAD else 0
        if got < 0:
            return None
        if got > 0:
            self._emit(out, s, e)
            rx.start = e
            rx.skip_to(j)
            return _DELIM
        self.length_mismatches += 1
        return self._to_scan()

    # AFTER: a part of declared length was handed out; a delimiter should follow.
    def after(self, out: list[Part]) -> State | None:
        rx = self._rx
        if self._delim.needle:
            got_head = self._whole_head()
            if got_head is not None:
                return got_head
        end, i = rx.end, rx.start
        m = _PAD.match(rx.data, i, min(end, i + _MAX_PAD))
        j = m.end() if m else i
        if j == end and j - i < _MAX_PAD and not rx.eof:
            return None
        got = self._delim.at(j)
        if got < 0:
            return None
        rx.skip_to(j)
        # Not a delimiter: let START sort it out (headers, a bare JPEG or garbage).
        return _DELIM if got > 0 else _START

    def _whole_head(self) -> State | None:
        """The common case in one step: the buffer holds the line end after the last
        payload, a plain delimiter line and the next part's header lines up to their
        blank line. Read with one pattern instead of line by line (bench_parser.py, 40 KB
        parts: 41 -> 34 µs a part); anything else (a line that is not a plain ``name:
        value``, folding, a closing or dashed delimiter, a head not yet whole, limits
        reached) is left to the handlers, which read it exactly as before."""
        rx = self._rx
        if self._head_needle is not self._delim.needle:
            self._compile_head()
        m = self._head_re.match(rx.data, rx.start, rx.end) if self._head_re else None
        if m is None:
            return None
        block = m.group(2)
        if block.startswith(b"--"):
            return None  # maybe an empty part's delimiter (a boundary may hold ":")
        self._seen_delim = True
        self.headers = read_lines(block)
        self._header_lines = len(self.headers)
        rx.skip_to(m.start(1))  # the line end after the payload (padding: not counted)
        return self._begin_body(m.end())

    def _compile_head(self) -> None:
        needle = self._head_needle = self._delim.needle
        if not needle:
            self._head_re = None
            return
        # Each line's LF within max_header_line of its start, as _line_end finds it.
        line = rb"(?=[^\n]{0,%d}\n)" % self.max_header_line
        self._head_re = re.compile(
            rb"(?:\r?\n)?" + line + rb"(" + re.escape(needle) + rb")[ \t]*\r?\n"
            rb"((?:" + line + LINE + rb"){1,%d})\r?\n" % min(self.max_headers, 32)
        )

    def _to_scan(self) -> State:
        self._memory.armed = False
        rx = self._rx
        rx.resume = rx.line_start = rx.start
        return _BODY_SCAN

    # BODY_SCAN: search for the delimiter that ends the payload.
    def body_scan(self, out: list[Part]) -> State | None:
        rx = self._rx
        s = rx.start
        q, resume = self._delim.find(rx.resume, s)
        if q < 0:
            rx.resume = resume
            if rx.end - s > self.max_part_size + len(self._delim.needle or b"--") + 4:
                raise self._too_big()
            if rx.eof:
                e = _payload_end(rx.data, s, rx.end)
                complete = self.declared is None or e - s >= self.declared
                if complete and jpeg.end(rx.data, s, e) == e:
                    self._emit(out, s, e)  # a complete JPEG without closing delimiter
                else:
                    self.truncated += 1
                    self.headers = []
                rx.start = rx.end
            return None
        e = _payload_end(rx.data, s, q)
        if e - s > self.max_part_size:
            raise self._too_big()
        if self.declared is not None and e - s < self.declared:
            self.truncated += 1  # a new delimiter before the declared length
        self._emit(out, s, e)
        rx.start = q
        return _DELIM

    def _too_big(self) -> StreamFormatError:
        return StreamFormatError(f"part larger than max_part_size={self.max_part_size}")


def _payload_end(buf: bytearray, s: int, q: int) -> int:
    """Where the payload at ``s`` before a delimiter at ``q`` ends: the line end before the
    delimiter is framing, and so is padding after a JPEG's EOI."""
    if q - 2 >= s and buf[q - 2] == 0x0D and buf[q - 1] == _LF:
        e = q - 2
    elif q - 1 >= s and buf[q - 1] == _LF:
        e = q - 1
    else:
        e = q
    t = jpeg.end(buf, s, e)
    return e if t < 0 else t
