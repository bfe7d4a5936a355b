"""Sans-IO parser for MJPEG ``multipart/x-mixed-replace`` streams (and raw JPEG streams).

The parser owns one preallocated receive buffer. The ingest loop lets the kernel write
straight into it (``get_buffer`` / ``buffer_updated``, the ``asyncio.BufferedProtocol``
pair) or copies bytes in with ``feed``; either way the parser hands back complete
:class:`Part` events. It imports no I/O library and never blocks.

Invariants:

- Bad input raises :class:`~mmrec.errors.StreamFormatError` and nothing else; after that
  the parser is dead and every later call raises the same error again.
- Parsing is O(n) however the bytes are chunked: every search resumes where the last one
  stopped (minus the length of the pattern), and a part with a trustworthy
  ``Content-Length`` is not searched at all.
- Memory is bounded whatever the input: no state keeps more than ``max_part_size`` plus a
  few header lines unconsumed; anything larger is an error, garbage is dropped as it is
  skipped.
- Copies: a part's payload is copied at most once, out of the receive buffer into
  ``Part.data`` (``bytes``, or memory the caller supplies with ``alloc``, e.g. aligned
  for direct I/O: see mmrec.store.payload). With ``alloc``, a payload of declared length with
  at least ``direct_min`` bytes still to come is not copied at all: ``get_buffer`` then
  hands out the rest of that payload's own memory, so the kernel writes it there (after
  such a part, reads between parts are kept short, to the next part's headers, and
  :meth:`MultipartParser.bytes_wanted` asks for them whole). A part that turns out not
  to end where declared goes back through the receive buffer (one copy back) and the
  ordinary checks. ``feed`` adds one copy in (``get_buffer`` / ``buffer_updated`` does
  not).
  Compaction moves only the unconsumed tail, and only when free space runs low; it is
  counted in :attr:`MultipartParser.bytes_moved`.
- All reads of the buffer are bounded by the filled end: bytes past it are stale.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mmrec.errors import StreamFormatError
from mmrec.wire.http1 import parse_length

__all__ = [
    "MultipartParser",
    "Part",
    "boundary_from_content_type",
    "parse_content_type",
]

_LF: Final = 0x0A
_DASH: Final = 0x2D
# What may follow "--boundary" on a delimiter line: the closing "--", padding, line end.
_AFTER_DELIM: Final = frozenset(b"-\r\n \t")
# Padding accepted between a payload of declared length and the next delimiter.
_PAD_RE: Final = re.compile(rb"[\r\n \t\x00]*")
_MAX_PAD: Final = 256
_WS_RE: Final = re.compile(rb"[\r\n \t\x00]*")
_HEADER_LINE_RE: Final = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*:[ \t]*(.*)")
# RFC 2046 bchars (space allowed inside, not last); we allow longer than 70 but bounded.
_BOUNDARY_RE: Final = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,199}[0-9A-Za-z'()+_,\-./:=?]")
_MAX_BOUNDARY: Final = 200
_SOI: Final = b"\xff\xd8"
_EOI: Final = b"\xff\xd9"
# JPEG markers without a length field.
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD9)})
_JPEG_TYPES: Final = frozenset({"image/jpeg", "image/jpg", "image/pjpeg"})
# Receiving payloads straight into ``alloc``'d memory (MultipartParser.get_buffer): only
# for at least this many bytes still to come (below it the copy is cheaper than another
# read), and reading at most _HEAD_READ bytes between parts (a part's headers, ~100 B).
DIRECT_MIN: Final = 32 * 1024
_HEAD_READ: Final = 4096
_HEAD_MIN: Final = 32  # the least a part's delimiter and headers take

# Parser states.
_START: Final = 0  # between items, nothing known: sniff what comes next
_PREAMBLE: Final = 1  # skipping garbage until a delimiter
_DELIM: Final = 2  # at the start of a validated delimiter line
_HEADERS: Final = 3  # reading part headers
_BODY_LEN: Final = 4  # payload of declared length: wait for it, then check the delimiter
_BODY_SCAN: Final = 5  # payload without (trustworthy) length: search for the delimiter
_JPEG_SEEK: Final = 6  # raw JPEG mode: skip to the next SOI
_JPEG_WALK: Final = 7  # raw JPEG mode: walk marker segments up to SOS
_JPEG_SCAN: Final = 8  # raw JPEG mode: entropy-coded data, search for EOI
_AFTER: Final = 9  # after a part of declared length: expect padding and a delimiter
_DONE: Final = 10  # after feed_eof
_BETWEEN_PARTS: Final = frozenset({_AFTER, _DELIM, _HEADERS})
_IN_PART: Final = frozenset({_BODY_LEN, _BODY_SCAN, _JPEG_WALK, _JPEG_SCAN})


@dataclass(frozen=True, slots=True)
class Part:
    """One body part of the stream (or one JPEG of a raw JPEG stream)."""

    headers: tuple[tuple[str, str], ...]  # (lower-cased name, stripped value), as received
    data: bytes | memoryview  # the payload: exactly one copy out of the receive buffer
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


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into the lower-cased media type and its parameters.

    Parameter names are lower-cased; quoted values are unquoted (backslash escapes
    resolved), unquoted values stripped. Malformed parameters are skipped, never fatal.
    """
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for m in _PARAM_RE.finditer(";" + rest):
        name = m.group(1).lower()
        if m.group(2) is not None:
            val = re.sub(r"\\(.)", r"\1", m.group(2))
        else:
            val = (m.group(3) or "").strip()
        params.setdefault(name, val)
    return media.strip().lower(), params


_PARAM_RE: Final = re.compile(r';\s*([^\s;=]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"?|([^;]*)))?')


def boundary_from_content_type(value: str | None) -> bytes | None:
    """The ``boundary`` parameter of a Content-Type value, or None if there is none.

    The value is returned as declared (quotes removed). A boundary declared with a
    leading ``--`` is kept as is: :class:`MultipartParser` accepts delimiter lines equal
    to the declared string as well as ``--`` + the declared string.
    """
    if not value:
        return None
    _, params = parse_content_type(value)
    boundary = params.get("boundary", "").strip()
    if not boundary:
        return None
    return boundary.encode("latin-1", "replace")


def _content_type(value: str | None) -> str | None:
    if value is None:
        return None
    media = value.partition(";")[0].strip().lower()
    return "image/jpeg" if media in _JPEG_TYPES else media


_content_length = parse_length


class MultipartParser:
    """Incremental parser: bytes in, complete :class:`Part` events out.

    ``boundary`` is the Content-Type's boundary parameter (as declared) or None to learn
    it from the first ``--token`` line; a body that starts with a JPEG SOI and no
    boundary switches to raw JPEG mode (concatenated JPEGs split on SOI...EOI).

    Counters: ``parts`` returned, ``bytes_in`` received, ``bytes_skipped`` (garbage
    outside parts, line ends not counted), ``truncated`` (parts cut short by EOF, or by
    a new delimiter before their declared length; the former are dropped, the latter
    returned since their end is known), ``length_mismatches`` (Content-Length not
    followed by a delimiter, so the part was scanned instead), ``bytes_moved``
    (compaction/growth memmoves) and ``closed`` (a closing delimiter was seen).
    """

    def __init__(
        self,
        boundary: str | bytes | None = None,
        *,
        max_part_size: int = 16 * 2**20,
        max_header_line: int = 8192,
        max_headers: int = 64,
        buffer_size: int = 2**20,
        alloc: Callable[[int], memoryview] | None = None,
        direct_min: int = DIRECT_MIN,
    ) -> None:
        if max_part_size < 1 or max_header_line < 80 or max_headers < 1 or buffer_size < 1:
            raise ValueError("limits must be positive (max_header_line >= 80)")
        if direct_min < 1:
            raise ValueError("direct_min must be positive")
        self._direct_min = direct_min
        self.max_part_size = max_part_size
        self.max_header_line = max_header_line
        self.max_headers = max_headers
        self._alloc = alloc
        # The buffer never needs more than one part, its delimiter and a header line.
        self._max_capacity = max(buffer_size, max_part_size + max_header_line + 4096)
        self._buf = bytearray(min(buffer_size, self._max_capacity))
        self._start = 0  # first unconsumed byte
        self._end = 0  # end of the filled region
        self._view_len = 0  # length of the last view handed out by get_buffer
        # Receiving a payload straight into ``alloc``'d memory (see get_buffer):
        self._direct: memoryview | None = None  # the part's payload memory
        self._have = 0  # payload bytes in it so far
        self._view_direct = False  # the last view handed out was into it
        # The last big part ended exactly at its declared length: receive the next one
        # straight into its memory, and keep reads between parts short until then.
        self._direct_ok = False
        self._state = _START
        self._eof = False
        self._error: StreamFormatError | None = None
        self._seen_delim = False
        self._jpeg_mode = False
        # The part in progress.
        self._headers: list[tuple[str, str]] = []
        self._hdr_lines = 0
        self._payload = 0  # payload start
        self._cl: int | None = None
        self._pos = 0  # where the current search / walk resumes
        self._lo = -1  # a position known to be at a line start (-1: none)
        self._mismatch = False

        self.boundary: bytes | None = None
        self._needle = b""
        self._dashed = False
        if boundary is not None:
            raw = boundary.encode("latin-1", "replace") if isinstance(boundary, str) else boundary
            raw = raw.strip().strip(b'"').strip()
            if raw:
                self._set_boundary(raw)

        self.parts = 0
        self.bytes_in = 0
        self.bytes_skipped = 0
        self.truncated = 0
        self.length_mismatches = 0
        self.bytes_moved = 0
        self.closed = False

    # --- buffer management -------------------------------------------------------------

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable free space at the end of the receive buffer; never empty.

        Fill a prefix of it and call :meth:`buffer_updated` with the byte count. The
        view must be released (dropped) before the next ``get_buffer``: the parser may
        then move or replace its buffer. It never resizes a bytearray it has handed a
        view of (growth allocates a new one), so a view held too long cannot raise
        ``BufferError``, but bytes written through it would be lost.
        """
        self._check_alive()
        if self._eof:
            raise RuntimeError("get_buffer() after feed_eof()")
        if self._alloc is not None:
            if self._direct is None and self._direct_ok and self._state == _BODY_LEN:
                assert self._cl is not None
                if self._cl - (self._end - self._payload) >= self._direct_min:
                    self._begin_direct()
            if self._direct is not None:
                view = self._direct[self._have :]
                self._view_len = len(view)
                self._view_direct = True
                return view
        view = self._buffer_view(
            # Between parts of a stream that declares its lengths, read little more than
            # the next part's headers: its payload is then read straight into its own
            # memory (above) instead of being copied there.
            _HEAD_READ if self._direct_ok and self._state in _BETWEEN_PARTS else 0,
            sizehint,
        )
        self._view_len = len(view)
        self._view_direct = False
        return view

    def _buffer_view(self, limit: int = 0, sizehint: int = -1) -> memoryview:
        """Free space at the end of the receive buffer (at most ``limit`` bytes if > 0)."""
        cap = len(self._buf)
        # Keep at least a socket read's worth of room; compaction and growth are rare.
        want = min(65536, max(cap // 4, 1))
        if sizehint > 0:
            want = min(want, sizehint)
        if cap - self._end < want:
            self._make_room(want)
        if limit > 0:
            return memoryview(self._buf)[self._end : self._end + limit]
        return memoryview(self._buf)[self._end :]

    def _begin_direct(self) -> None:
        """Move the payload received so far into its own memory; the rest goes there too."""
        assert self._alloc is not None and self._cl is not None
        have = self._end - self._payload
        dst = self._alloc(self._cl)
        dst[:have] = memoryview(self._buf)[self._payload : self._end]
        self._direct, self._have = dst, have
        self._end = self._start = self._payload  # nothing of the part stays in the buffer

    def _end_direct(self) -> None:
        """Back to the receive buffer with the payload received so far (an unusual part:
        the ordinary checks then run on it there)."""
        d, have = self._direct, self._have
        assert d is not None
        self._direct, self._have = None, 0
        self._direct_ok = False
        pos = 0
        while pos < have:
            with self._buffer_view() as view:
                n = min(len(view), have - pos)
                view[:n] = d[pos : pos + n]
            self._end += n
            pos += n
        self.bytes_moved += have

    def _direct_done(self, out: list[Part]) -> bool:
        """The whole declared payload is in its own memory: hand it out if it is exactly
        one JPEG (as in :meth:`_body_len`), else go back to the buffer."""
        d = self._direct
        assert d is not None and self._cl is not None and self._alloc is not None
        n = self._cl
        t = _trim_jpeg(d, 0, n)
        if t >= 4 and _is_jpeg(d, 0, t):
            self._direct, self._have = None, 0
            # A length that counts the line end: the JPEG is shorter than its memory, so
            # it is copied once (as without direct reads), and the next parts go through
            # the buffer (one allocation each instead of two).
            self._direct_ok = t == n
            if t < n:
                dst = self._alloc(t)
                dst[:] = d[:t]
                d = dst
            self._emit_data(out, d.toreadonly(), None)
            self._state = _AFTER
            return True
        self._end_direct()
        return False

    def _make_room(self, want: int) -> None:
        buf = self._buf
        cap = len(buf)
        used = self._end - self._start
        # Grow only when one item in flight fills more than half the buffer: then each
        # compaction frees at least half of it, so moves stay amortised O(1) per byte.
        if used > cap // 2 and cap < self._max_capacity:
            new_cap = min(self._max_capacity, max(2 * cap, used + 2 * want))
            new = bytearray(new_cap)
            # A new bytearray, never a resize: views handed out earlier stay valid.
            new[:used] = memoryview(buf)[self._start : self._end]
        elif self._start > 0:
            new = buf
            # Equal-length memoryview slice assignment: a memmove, no resize.
            with memoryview(buf) as mv:
                mv[:used] = mv[self._start : self._end]
        else:
            if cap - self._end > 0:
                return
            # Cannot happen: every state errors out before holding max_capacity bytes.
            raise StreamFormatError("receive buffer full (internal limit)")
        self.bytes_moved += used
        self._shift(self._start)
        self._buf = new

    def _shift(self, delta: int) -> None:
        """Rebase every buffer offset after moving the unconsumed bytes to the front."""
        self._start -= delta
        self._end -= delta
        self._payload -= delta
        self._pos -= delta
        if self._lo >= 0:
            self._lo = max(self._lo - delta, -1)

    def buffer_updated(self, nbytes: int) -> list[Part]:
        """The first ``nbytes`` of the last :meth:`get_buffer` view were filled."""
        self._check_alive()
        if not 0 <= nbytes <= self._view_len:
            raise ValueError(f"buffer_updated({nbytes}) outside the {self._view_len}-byte view")
        self._view_len = 0
        self.bytes_in += nbytes
        if self._view_direct:
            self._view_direct = False
            self._have += nbytes
            assert self._cl is not None
            if self._have < self._cl:
                return []
            out: list[Part] = []
            if self._direct_done(out):
                return out + self._run()
            return self._run()
        self._end += nbytes
        return self._run()

    def in_part(self) -> bool:
        """True while a part has begun (headers or payload bytes received) and is not
        yet returned: stopping now would lose it."""
        state = self._state
        if state == _HEADERS:
            return bool(self._headers)
        return state in _IN_PART or self._direct is not None

    def bytes_wanted(self) -> int:
        """Bytes still to come before the part in progress can be returned: the rest of a
        declared payload; 1 when that is not known. The ingest sets the socket's receive
        low-water mark to it, so the loop wakes once per frame, not once per segment."""
        if self._state == _BODY_LEN and self._cl is not None:
            if self._direct is not None:
                return max(1, self._cl - self._have)
            return max(1, self._payload + self._cl - self._end)
        if self._direct_ok and self._state in _BETWEEN_PARTS:
            # After a payload read straight into its memory, the line end that follows it
            # waits in the socket for the next part's headers: one read for both.
            return _HEAD_MIN
        return 1

    def feed(self, data: bytes | bytearray | memoryview) -> list[Part]:
        """Copy ``data`` into the receive buffer and parse it (one copy in)."""
        out: list[Part] = []
        with memoryview(data) as src, src.cast("B") as flat:
            pos, total = 0, len(flat)
            while pos < total:
                with self.get_buffer(total - pos) as view:
                    n = min(len(view), total - pos)
                    view[:n] = flat[pos : pos + n]
                out += self.buffer_updated(n)
                pos += n
        return out

    def feed_eof(self) -> list[Part]:
        """The stream ended: return a last part whose end is known, count the rest."""
        self._check_alive()
        if self._eof:
            return []
        if self._direct is not None:
            self._end_direct()  # cut short: the ordinary end-of-stream rules apply
        self._eof = True
        parts = self._run()
        self._state = _DONE
        self._start = self._end = 0
        return parts

    def _too_big(self, what: str) -> StreamFormatError:
        return StreamFormatError(f"{what} larger than max_part_size={self.max_part_size}")

    def _check_alive(self) -> None:
        if self._error is not None:
            raise StreamFormatError(str(self._error))

    # --- the state machine -------------------------------------------------------------

    def _run(self) -> list[Part]:
        out: list[Part] = []
        try:
            while self._step(out):
                pass
        except StreamFormatError as exc:
            self._error = exc
            raise
        if self._start == self._end and self._start > 0:
            # Everything consumed: rewind for free (no bytes to move).
            self._lo = 0 if self._lo == self._start else -1
            self._pos = max(self._pos - self._start, 0)
            self._payload = max(self._payload - self._start, 0)
            self._start = self._end = 0
        return out

    def _step(self, out: list[Part]) -> bool:
        """Advance one state; False when more bytes are needed (or the stream is done)."""
        state = self._state
        if state == _BODY_LEN:
            return self._body_len(out)
        if state == _BODY_SCAN:
            return self._body_scan(out)
        if state == _HEADERS:
            return self._read_headers(out)
        if state == _AFTER:
            return self._after()
        if state == _DELIM:
            return self._delim_line()
        if state == _START:
            return self._sniff()
        if state == _PREAMBLE:
            return self._preamble()
        if state == _JPEG_SEEK:
            return self._jpeg_seek()
        if state == _JPEG_WALK:
            return self._jpeg_walk(out)
        if state == _JPEG_SCAN:
            return self._jpeg_scan(out)
        return False

    def _set_boundary(self, raw: bytes) -> None:
        if len(raw) > _MAX_BOUNDARY or b"\r" in raw or b"\n" in raw:
            raise StreamFormatError(f"unusable multipart boundary {raw[:40]!r}")
        self.boundary = raw
        # A delimiter line is "--" + boundary; sloppy servers that declare "--b" may write
        # "--b" (the declared string) or "----b": search for the declared string, and
        # accept "--" before it (see _line_at).
        self._dashed = raw.startswith(b"--")
        self._needle = raw if self._dashed else b"--" + raw

    def _skip(self, a: int, b: int) -> None:
        """Drop bytes [a, b) as garbage; line ends are padding, not counted."""
        if b > a:
            buf = self._buf
            self.bytes_skipped += (b - a) - buf.count(b"\n", a, b) - buf.count(b"\r", a, b)

    def _line_end(self, i: int) -> int:
        """Index of the LF ending the line at ``i`` (searching max_header_line), or -1."""
        return self._buf.find(b"\n", i, min(self._end, i + self.max_header_line + 1))

    def _delim_here(self, i: int) -> int:
        """Is a delimiter line at ``i``? 1 yes, 0 no, -1 need more bytes. May learn."""
        if not self._needle:
            return self._learn_at(i)
        buf, end = self._buf, self._end
        forms = (self._needle, b"--" + self._needle) if self._dashed else (self._needle,)
        pending = False
        for form in forms:
            k = len(form)
            avail = end - i
            if avail > k:
                if buf.startswith(form, i, end) and buf[i + k] in _AFTER_DELIM:
                    return 1
            elif avail == k and buf.startswith(form, i, end):
                if self._eof:
                    return 1
                pending = True
            elif avail < k and form.startswith(buf[i:end]):
                pending = not self._eof
        return -1 if pending else 0

    def _learn_at(self, i: int) -> int:
        """Learn the boundary from a ``--token`` line at ``i``: 1 learned, 0 no, -1 more."""
        buf, end = self._buf, self._end
        if end - i < 2:
            return 0 if self._eof else -1
        if not buf.startswith(b"--", i, end):
            return 0
        lf = buf.find(b"\n", i, min(end, i + _MAX_BOUNDARY + 8))
        if lf < 0:
            if self._eof or end - i >= _MAX_BOUNDARY + 8:
                return 0
            return -1
        token = bytes(buf[i + 2 : lf]).rstrip(b"\r \t")
        if token.endswith(b"--") and len(token) > 2:
            token = token[:-2]
        if not _BOUNDARY_RE.fullmatch(token):
            return 0
        self._set_boundary(b"--" + token if token.startswith(b"--") else token)
        if self._dashed:  # learned "----x": keep the literal line as the needle
            self._needle = b"--" + token
            self._dashed = False
            self.boundary = token
        return 1

    def _at_line_start(self, q: int, lo: int) -> bool:
        buf = self._buf
        if q == lo:
            return True
        if q > self._start and buf[q - 1] == _LF:
            return True
        # Some servers put the delimiter right after the JPEG's EOI, without a line end.
        return q - 2 >= self._start and buf[q - 2] == 0xFF and buf[q - 1] == 0xD9

    def _find_delim(self, pos: int, lo: int) -> tuple[int, int]:
        """Search for a delimiter line from ``pos``: (line start or -1, resume position)."""
        buf, end = self._buf, self._end
        learning = not self._needle
        needle = b"--" if learning else self._needle
        n = len(needle)
        while True:
            p = buf.find(needle, pos, end)
            if p < 0:
                return -1, max(pos, end - n + 1)
            q = -1
            if self._at_line_start(p, lo):
                q = p
            elif (
                self._dashed
                and p - 2 >= self._start
                and buf[p - 2] == _DASH
                and buf[p - 1] == _DASH
                and self._at_line_start(p - 2, lo)
            ):
                q = p - 2
            if q < 0:
                pos = p + 1
                continue
            if learning:
                got = self._learn_at(p)
                if got < 0:
                    return -1, p
                if got == 0:
                    pos = p + 1
                    continue
                return q, p
            if p + n >= end:
                if not self._eof:
                    return -1, p
            elif buf[p + n] not in _AFTER_DELIM:
                pos = p + 1
                continue
            return q, p

    # START: sniff what the next item is.
    def _sniff(self) -> bool:
        buf, end = self._buf, self._end
        m = _WS_RE.match(buf, self._start, end)
        i = m.end() if m else self._start
        self._skip(self._start, i)
        self._start = i
        if end - i < 2:
            if self._eof:
                self._skip(i, end)
                self._start = end
            return False
        if buf.startswith(_SOI, i, end):
            if self.boundary is None:
                self._jpeg_mode = True
                self._payload = self._pos = i
                self._state = _JPEG_WALK
                self._pos = i + 2
            else:  # multipart without a first delimiter or headers: a bare payload
                self._begin_body(i)
            return True
        lf = self._line_end(i)
        if lf < 0 and not self._eof and end - i <= self.max_header_line:
            return False  # classify whole lines only
        if buf.startswith(b"--", i, end):
            got = self._delim_here(i)
            if got < 0:
                return False
            if got == 0 and not self._seen_delim and self._needle:
                # Declared boundary "a" but the first line reads "--b": trust the body.
                saved = (self.boundary, self._needle, self._dashed)
                self._needle = b""
                got = self._learn_at(i)
                if got <= 0:
                    self.boundary, self._needle, self._dashed = saved
                    got = 0
            if got > 0:
                self._state = _DELIM
                return True
        elif lf >= 0 and _HEADER_LINE_RE.match(buf, i, lf):
            # No delimiter before the first part: headers straight away.
            self._headers = []
            self._hdr_lines = 0
            self._state = _HEADERS
            return True
        self._lo = i
        self._pos = i
        self._state = _JPEG_SEEK if self._jpeg_mode else _PREAMBLE
        return True

    # PREAMBLE: garbage until a delimiter line.
    def _preamble(self) -> bool:
        q, resume = self._find_delim(self._pos, self._lo)
        if q >= 0:
            self._skip(self._start, q)
            self._start = q
            self._state = _DELIM
            return True
        if self._eof:
            self._skip(self._start, self._end)
            self._start = self._end
            return False
        # Keep a little context before the resume point for the line-start check.
        keep = max(self._start, resume - 3)
        self._skip(self._start, keep)
        self._start = keep
        self._pos = resume
        return False

    # DELIM: a validated delimiter line starts at self._start.
    def _delim_line(self) -> bool:
        buf, end, i = self._buf, self._end, self._start
        lf = self._line_end(i)
        if lf < 0:
            if end - i > self.max_header_line:
                raise StreamFormatError(f"delimiter line longer than {self.max_header_line} bytes")
            if self._eof:
                self._start = end
            return False
        self._seen_delim = True
        p = i
        if self._dashed and not buf.startswith(self._needle, i, end):
            p = i + 2
        rest = buf[p + len(self._needle) : lf].strip()
        if rest.startswith(b"--"):
            # Closing delimiter: an epilogue may follow, or (sloppy servers) more parts.
            self.closed = True
            self._start = lf + 1
            self._lo = self._pos = lf + 1
            self._state = _PREAMBLE
            return True
        self._start = lf + 1
        self._headers = []
        self._hdr_lines = 0
        self._state = _HEADERS
        return True

    # HEADERS: part header lines up to a blank line.
    def _read_headers(self, out: list[Part]) -> bool:
        buf, end = self._buf, self._end
        headers = self._headers
        while True:
            i = self._start
            if end - i < 2 and not self._eof:
                return False
            if buf.startswith(_SOI, i, end):
                # A payload without headers, or without the blank line after them.
                self._begin_body(i)
                return True
            if not headers and buf.startswith(b"--", i, end):
                got = self._delim_here(i)
                if got < 0:
                    return False
                if got > 0:  # an empty part: just another delimiter
                    self._state = _DELIM
                    return True
            lf = self._line_end(i)
            if lf < 0:
                if end - i > self.max_header_line:
                    raise StreamFormatError(
                        f"part header line longer than {self.max_header_line} bytes"
                    )
                if self._eof:
                    if headers:
                        self.truncated += 1
                    else:
                        self._skip(i, end)
                    self._start = end
                return False
            if lf - i > self.max_header_line:
                raise StreamFormatError(
                    f"part header line longer than {self.max_header_line} bytes"
                )
            self._start = lf + 1
            line_end = lf - 1 if lf > i and buf[lf - 1] == 0x0D else lf
            if line_end == i:
                if headers:
                    self._begin_body(lf + 1)
                    return True
                continue  # blank lines between the delimiter and the headers
            self._hdr_lines += 1
            if self._hdr_lines > self.max_headers:
                raise StreamFormatError(f"more than {self.max_headers} part header lines")
            first = buf[i]
            if first in (0x20, 0x09) and headers:  # obsolete line folding
                name, value = headers[-1]
                more = bytes(buf[i:line_end]).decode("latin-1").strip()
                headers[-1] = (name, f"{value} {more}".strip())
                continue
            m = _HEADER_LINE_RE.match(buf, i, line_end)
            if m is None:
                continue  # an odd line: skip it (it still counts against max_headers)
            headers.append(
                (m.group(1).decode("latin-1").lower(), m.group(2).decode("latin-1").strip())
            )

    def _header(self, name: str) -> str | None:
        for key, value in self._headers:
            if key == name:
                return value
        return None

    def _begin_body(self, s: int) -> None:
        self._start = self._payload = self._pos = self._lo = s
        self._mismatch = False
        cl = self._cl = _content_length(self._header("content-length"))
        if cl is not None and cl > self.max_part_size:
            raise StreamFormatError(
                f"part declares {cl} bytes, more than max_part_size={self.max_part_size}"
            )
        self._state = _BODY_LEN if cl is not None else _BODY_SCAN
        if cl is None:
            self._direct_ok = False

    def _emit(self, out: list[Part], s: int, e: int, ctype: str | None = None) -> None:
        # The one copy of the payload: out of the receive buffer into immutable bytes, or
        # into memory from ``alloc`` (handed out read-only).
        data: bytes | memoryview
        if self._alloc is None:
            data = bytes(memoryview(self._buf)[s:e])
        else:
            dst = self._alloc(e - s)
            dst[:] = memoryview(self._buf)[s:e]
            data = dst.toreadonly()
        self._emit_data(out, data, ctype)

    def _emit_data(self, out: list[Part], data: bytes | memoryview, ctype: str | None) -> None:
        headers = tuple(self._headers)
        timestamp = None
        for key, value in headers:
            if key == "x-timestamp" and timestamp is None:
                timestamp = value
            elif key == "content-type" and ctype is None:
                ctype = _content_type(value)
        out.append(Part(headers, data, ctype, self._cl, timestamp))
        self.parts += 1
        self._headers = []

    # BODY_LEN: Content-Length known; jump to its end and check the delimiter.
    def _body_len(self, out: list[Part]) -> bool:
        assert self._cl is not None
        buf, end = self._buf, self._end
        s = self._payload
        e = s + self._cl
        if end < e:
            if self._eof:
                self._to_scan()  # maybe a delimiter arrived early; else truncated
                return True
            return False
        t = _trim_jpeg(self._buf, s, e)
        if t - s >= 4 and _is_jpeg(buf, s, t):
            # The declared bytes are exactly one JPEG (SOI ... EOI): hand it out now rather
            # than one frame interval later, when the next delimiter arrives. A wrong
            # Content-Length almost never lands exactly on an EOI.
            self._emit(out, s, t)
            self._start = e
            self._state = _AFTER
            # A stream with trustworthy lengths: read the next big payload in directly.
            self._direct_ok = self._alloc is not None and t == e and e - s >= self._direct_min
            return True
        if end == e and not self._eof:
            return False
        limit = min(end, e + _MAX_PAD)
        m = _PAD_RE.match(buf, e, limit)
        j = m.end() if m else e
        if j == end and (self._eof or j - e >= _MAX_PAD):
            # Only padding after the declared bytes, then EOF: the part is complete.
            if self._eof:
                self._emit(out, s, t)
                self._start = end
                return False
        elif j == limit and limit == end:
            return False  # only padding so far
        got = self._delim_here(j) if j - e < _MAX_PAD else 0
        if got < 0:
            return False
        if got > 0:
            self._emit(out, s, t)
            self._skip(e, j)
            self._start = j
            self._state = _DELIM
            return True
        self.length_mismatches += 1
        self._to_scan()
        return True

    # AFTER: a part of declared length was handed out; a delimiter should follow.
    def _after(self) -> bool:
        buf, end, i = self._buf, self._end, self._start
        limit = min(end, i + _MAX_PAD)
        m = _PAD_RE.match(buf, i, limit)
        j = m.end() if m else i
        if j == end and j - i < _MAX_PAD and not self._eof:
            return False
        got = self._delim_here(j)
        if got < 0:
            return False
        self._skip(i, j)
        self._start = j
        # Not a delimiter: let START sort it out (headers, a bare JPEG or garbage).
        self._state = _DELIM if got > 0 else _START
        return True

    def _to_scan(self) -> None:
        self._mismatch = True
        self._direct_ok = False
        self._pos = self._lo = self._payload
        self._state = _BODY_SCAN

    def _payload_end(self, s: int, q: int) -> int:
        buf = self._buf
        if q - 2 >= s and buf[q - 2] == 0x0D and buf[q - 1] == _LF:
            e = q - 2
        elif q - 1 >= s and buf[q - 1] == _LF:
            e = q - 1
        else:
            e = q
        return _trim_jpeg(self._buf, s, e)

    # BODY_SCAN: search for the delimiter that ends the payload.
    def _body_scan(self, out: list[Part]) -> bool:
        s = self._payload
        q, resume = self._find_delim(self._pos, s)
        if q < 0:
            self._pos = resume
            if self._end - s > self.max_part_size + len(self._needle or b"--") + 4:
                raise self._too_big("part")
            if self._eof:
                e = self._payload_end(s, self._end)
                complete = self._cl is None or e - s >= self._cl
                if complete and e - s >= 4 and _is_jpeg(self._buf, s, e):
                    self._emit(out, s, e)  # a complete JPEG without closing delimiter
                else:
                    self.truncated += 1
                    self._headers = []
                self._start = self._end
            return False
        e = self._payload_end(s, q)
        if e - s > self.max_part_size:
            raise self._too_big("part")
        if self._cl is not None and e - s < self._cl:
            self.truncated += 1  # a new delimiter before the declared length
        self._emit(out, s, e)
        self._start = q
        self._state = _DELIM
        return True

    # Raw JPEG mode -------------------------------------------------------------------

    def _jpeg_seek(self) -> bool:
        buf, end = self._buf, self._end
        p = buf.find(_SOI, self._start, end)
        if p < 0:
            keep = end - 1 if end > self._start and buf[end - 1] == 0xFF else end
            if self._eof:
                keep = end
            self._skip(self._start, keep)
            self._start = keep
            return False
        self._skip(self._start, p)
        self._start = p
        self._state = _START  # a JPEG, or (sloppy servers) a delimiter after all
        return True

    def _jpeg_walk(self, out: list[Part]) -> bool:
        buf, end = self._buf, self._end
        s, w = self._payload, self._pos
        while True:
            if w - s > self.max_part_size:
                raise self._too_big("JPEG")
            if end - w < 4:
                if end - w >= 2 and buf[w] == 0xFF and buf[w + 1] == 0xD9:
                    return self._jpeg_done(out, w + 2)
                self._pos = w
                if self._eof:
                    return self._jpeg_truncated()
                return False
            if buf[w] != 0xFF:
                break  # not a marker: fall back to searching for EOI
            marker = buf[w + 1]
            if marker == 0xFF:  # fill byte
                w += 1
                continue
            if marker == 0xD9:
                return self._jpeg_done(out, w + 2)
            if marker in _STANDALONE:
                w += 2
                continue
            seglen = (buf[w + 2] << 8) | buf[w + 3]
            if marker == 0x00 or seglen < 2:
                break
            w += 2 + seglen
            if marker == 0xDA:  # SOS: entropy-coded data follows
                break
        self._pos = w
        self._state = _JPEG_SCAN
        return True

    def _jpeg_scan(self, out: list[Part]) -> bool:
        buf, end, s = self._buf, self._end, self._payload
        # In entropy-coded data 0xFF is always followed by 0x00 or RSTn: FF D9 is the EOI.
        p = buf.find(_EOI, self._pos, end) if self._pos < end else -1
        if p < 0:
            self._pos = max(self._pos, end - 1)
            if end - s > self.max_part_size:
                raise self._too_big("JPEG")
            if self._eof:
                return self._jpeg_truncated()
            return False
        return self._jpeg_done(out, p + 2)

    def _jpeg_done(self, out: list[Part], e: int) -> bool:
        s = self._payload
        if e - s > self.max_part_size:
            raise self._too_big("JPEG")
        self._headers = []
        self._cl = None
        self._emit(out, s, e, "image/jpeg")
        self._start = e
        self._state = _START
        return True

    def _jpeg_truncated(self) -> bool:
        self.truncated += 1
        self._start = self._end
        self._state = _JPEG_SEEK
        return False


def _is_jpeg(buf: bytearray | memoryview, s: int, e: int) -> bool:
    return buf[s] == 0xFF and buf[s + 1] == 0xD8 and buf[e - 2] == 0xFF and buf[e - 1] == 0xD9


def _trim_jpeg(buf: bytearray | memoryview, s: int, e: int) -> int:
    """Where the JPEG in ``buf[s:e]`` ends: extra line ends after its EOI belong to the
    framing, not to the image (blank lines before the delimiter, or a Content-Length
    that counts the CRLF)."""
    if (
        e - s >= 4
        and buf[s] == 0xFF
        and buf[s + 1] == 0xD8
        and not (buf[e - 2] == 0xFF and buf[e - 1] == 0xD9)
    ):
        k = e
        while k - s > 4 and buf[k - 1] in (0x0D, _LF):
            k -= 1
        if buf[k - 2] == 0xFF and buf[k - 1] == 0xD9:
            return k
    return e
