"""Sans-IO parser for MJPEG ``multipart/x-mixed-replace`` streams (and raw JPEG streams).

The parser is fed bytes and hands back complete :class:`Part` events; it imports no I/O
library and never blocks. It is assembled from pieces with one job each: the receive
buffer and the direct-receive policy (:mod:`~mmrec.wire.receive`), the multipart state
machine (:mod:`~mmrec.wire.parts`, one handler per :class:`State`, dispatched here from a
table), delimiter lines (:mod:`~mmrec.wire.boundary`), raw JPEG streams
(:mod:`~mmrec.wire.rawjpeg`), header lines (:mod:`~mmrec.wire.headers`).

Invariants:

- Bad input raises :class:`~mmrec.errors.StreamFormatError` and nothing else; after that
  the parser is dead and every later call raises the same error again.
- Parsing is O(n) however the bytes are chunked: every search resumes where the last one
  stopped (minus the length of the pattern), and a part with a trustworthy
  ``Content-Length`` is not searched at all.
- Memory is bounded whatever the input: no state keeps more than ``max_part_size`` plus a
  few header lines unconsumed; anything larger is an error, garbage is dropped as it is
  skipped.
- Copies: with ``alloc`` (memory for payloads, e.g. aligned for direct I/O: see
  mmrec.store.payload), a payload of declared length with at least ``direct_min`` bytes
  still to come is received straight into its own memory (``get_buffer`` hands that out)
  and not copied at all; after such a part, reads between parts are kept short, to the
  next part's headers, and :meth:`MultipartParser.bytes_wanted` asks for them whole. Any
  other payload is copied once, out of the receive buffer into ``Part.data`` (``bytes``,
  or memory from ``alloc``). A payload that turns out not to end where declared goes
  back through the receive buffer (one copy back) and the ordinary checks. ``feed`` adds
  one copy in (``get_buffer`` / ``buffer_updated`` do not). Compaction moves only the
  unconsumed tail, and only when free space runs low (counted in ``bytes_moved``).
- All reads of the buffer are bounded by the filled end: bytes past it are stale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from mmrec.errors import StreamFormatError
from mmrec.wire.boundary import Delimiter
from mmrec.wire.content_type import boundary_from_content_type, parse_content_type
from mmrec.wire.parts import Part, PartReader, State
from mmrec.wire.rawjpeg import JpegSplitter
from mmrec.wire.receive import DIRECT_MIN, DirectReceive, ReceiveBuffer

__all__ = [
    "DIRECT_MIN",
    "MultipartParser",
    "Part",
    "State",
    "boundary_from_content_type",
    "parse_content_type",
]

# Between parts of a stream whose payloads are received directly, read at most this much
# (a part's headers are ~100 B), and wake for no less than the least a part's delimiter
# and headers take.
_HEAD_READ: Final = 4096
_HEAD_MIN: Final = 32
_BETWEEN_PARTS: Final = frozenset({State.AFTER, State.DELIM, State.HEADERS})
_IN_PART: Final = frozenset({State.BODY_LEN, State.BODY_SCAN})
# Module constants, not class lookups, on the per-frame path (see mmrec.wire.parts).
_START: Final = State.START
_BODY_LEN: Final = State.BODY_LEN
_HEADERS: Final = State.HEADERS
_AFTER: Final = State.AFTER
_RAW_JPEG: Final = State.RAW_JPEG


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
        # The buffer never needs more than one part, its delimiter and a header line.
        self._rx = ReceiveBuffer(buffer_size, max_part_size + max_header_line + 4096)
        self._memory = DirectReceive(alloc, direct_min)
        self._delim = Delimiter(self._rx, boundary)
        self._raw = JpegSplitter(self._rx, self._memory, max_part_size)
        self._reader = reader = PartReader(
            self._rx,
            self._memory,
            self._delim,
            self._raw,
            max_part_size=max_part_size,
            max_header_line=max_header_line,
            max_headers=max_headers,
        )
        handlers: dict[State, Callable[[list[Part]], State | None]] = {
            State.START: reader.sniff,
            State.PREAMBLE: reader.preamble,
            State.DELIM: reader.delimiter,
            State.HEADERS: reader.read_headers,
            State.BODY_LEN: reader.body_len,
            State.BODY_SCAN: reader.body_scan,
            State.AFTER: reader.after,
            State.RAW_JPEG: _raw_jpeg_handler(self._raw),
            State.DONE: _done,
        }
        # The table, indexed by the state's value (a tuple index is the cheapest lookup).
        # No handler is a method of the parser itself: the table would then hold the
        # parser, a reference cycle that keeps a dead parser's buffers (up to the part
        # cap, 32 MiB in the ingest) alive until the cyclic garbage collector runs.
        self._handlers = tuple(handlers[state] for state in State)
        self._state = State.START
        # What killed the parser: its text, not the exception, whose traceback holds the
        # frames of this parser's methods (a cycle that would keep its buffers alive
        # until the cyclic garbage collector happens to run).
        self._error: str | None = None
        self._view_len = 0  # length of the last view handed out by get_buffer
        self._view_direct = False  # ... and whether it was into a payload's own memory
        self.parts = 0
        self.bytes_in = 0

    # --- counters ----------------------------------------------------------------------

    @property
    def boundary(self) -> bytes | None:
        """The boundary as declared or learned; None until one is known."""
        return self._delim.boundary

    @property
    def bytes_skipped(self) -> int:
        return self._rx.bytes_skipped

    @property
    def bytes_moved(self) -> int:
        return self._rx.bytes_moved

    @property
    def truncated(self) -> int:
        return self._reader.truncated + self._raw.truncated

    @property
    def length_mismatches(self) -> int:
        return self._reader.length_mismatches

    @property
    def closed(self) -> bool:
        return self._reader.closed

    # --- receiving ---------------------------------------------------------------------

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable memory for the next bytes; never empty.

        Fill a prefix of it and call :meth:`buffer_updated` with the byte count. The
        view must be released (dropped) before the next ``get_buffer``: the parser may
        then move or replace its buffer. It never resizes a bytearray it has handed a
        view of (growth allocates a new one), so a view held too long cannot raise
        ``BufferError``, but bytes written through it would be lost.
        """
        self._check_alive()
        rx, memory = self._rx, self._memory
        if rx.eof:
            raise RuntimeError("get_buffer() after feed_eof()")
        state = self._state
        if memory.memory is None and memory.armed and state is _BODY_LEN:
            declared = self._reader.declared
            assert declared is not None
            if memory.wants(declared, declared - (rx.end - rx.start)):
                memory.begin(rx, declared)
        if memory.memory is not None:
            view = memory.view()
            self._view_len = len(view)
            self._view_direct = True
            return view
        view = rx.writable(
            # Between parts of a stream that declares its lengths, read little more than
            # the next part's headers: its payload is then read straight into its own
            # memory (above) instead of being copied there.
            _HEAD_READ if memory.armed and state in _BETWEEN_PARTS else 0,
            sizehint,
        )
        self._view_len = len(view)
        self._view_direct = False
        return view

    def buffer_updated(self, nbytes: int) -> list[Part]:
        """The first ``nbytes`` of the last :meth:`get_buffer` view were filled."""
        self._check_alive()
        if not 0 <= nbytes <= self._view_len:
            raise ValueError(f"buffer_updated({nbytes}) outside the {self._view_len}-byte view")
        self._view_len = 0
        self.bytes_in += nbytes
        if self._view_direct:
            self._view_direct = False
            if not self._memory.received(nbytes):
                return []
            data = self._memory.finish()
            if data is None:  # not one JPEG as declared: the ordinary checks decide
                self._memory.give_back(self._rx)
                return self._run()
            out: list[Part] = []
            self._reader.emit(out, data)
            self._state = _AFTER
            self.parts += 1
            return out + self._run()
        self._rx.filled(nbytes)
        return self._run()

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
        rx = self._rx
        if rx.eof:
            return []
        if self._memory.memory is not None:
            self._memory.give_back(rx)  # cut short: the ordinary end-of-stream rules apply
        rx.eof = True
        parts = self._run()
        self._state = State.DONE
        rx.clear()
        return parts

    def in_part(self) -> bool:
        """True while a part has begun (headers or payload bytes received) and is not
        yet returned: stopping now would lose it."""
        state = self._state
        if state is _HEADERS:
            return bool(self._reader.headers)
        if state is _RAW_JPEG:
            return self._raw.in_image
        return state in _IN_PART or self._memory.memory is not None

    def bytes_wanted(self) -> int:
        """Bytes still to come before the part in progress can be returned: the rest of a
        declared payload; 1 when that is not known. The ingest sets the socket's receive
        low-water mark to it, so the loop wakes once per frame, not once per segment."""
        declared = self._reader.declared
        memory = self._memory
        if self._state is _BODY_LEN and declared is not None:
            if memory.memory is not None:
                return max(1, declared - memory.have)
            return max(1, self._rx.start + declared - self._rx.end)
        if memory.armed and self._state in _BETWEEN_PARTS:
            # After a payload read straight into its memory, the line end that follows it
            # waits in the socket for the next part's headers: one read for both.
            return _HEAD_MIN
        return 1

    # --- the state machine -------------------------------------------------------------

    def _run(self) -> list[Part]:
        out: list[Part] = []
        handlers = self._handlers
        try:
            while (state := handlers[self._state](out)) is not None:
                self._state = state
        except StreamFormatError as exc:
            self._error = str(exc)
            raise
        self.parts += len(out)
        self._rx.rewind()
        return out

    def _check_alive(self) -> None:
        if self._error is not None:
            raise StreamFormatError(self._error)


def _raw_jpeg_handler(raw: JpegSplitter) -> Callable[[list[Part]], State | None]:
    """The RAW_JPEG handler: each image the splitter finds is a part of its own."""
    images: list[bytes | memoryview] = []  # what one step found (one list, reused)

    def raw_jpeg(out: list[Part]) -> State | None:
        at_next = raw.step(images)
        if images:
            out += [Part((), data, "image/jpeg", None, None) for data in images]
            images.clear()
        return _START if at_next else None

    return raw_jpeg


def _done(out: list[Part]) -> State | None:
    return None
