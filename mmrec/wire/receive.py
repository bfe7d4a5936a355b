"""Where received bytes go: one preallocated receive buffer, or a payload's own memory.

:class:`ReceiveBuffer` is the memory the kernel writes into (``writable`` / ``filled``,
the ``asyncio.BufferedProtocol`` pair). It keeps the parser's positions in it (the first
unconsumed byte, where the current search resumes, a known line start) and moves them
with the bytes when it compacts, so a search never starts over: parsing stays O(n)
however the bytes are chunked. Compaction moves only the unconsumed tail, and only when
free space runs low; growth allocates a new bytearray, never resizing one a view was
handed out of (that would raise ``BufferError`` in whoever holds it).

:class:`DirectReceive` is the policy for payloads of declared length: received straight
into memory of their own (``alloc``, e.g. block-aligned for direct I/O, see
mmrec.store.payload) instead of into the buffer and copied out. Without ``alloc``, or for
a payload below ``min_bytes``, a payload is copied once out of the buffer (:meth:`copy`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from mmrec.errors import StreamFormatError
from mmrec.wire import jpeg

Alloc = Callable[[int], memoryview]

# Receiving payloads straight into ``alloc``'d memory: only for at least this many bytes
# still to come (below it the copy is cheaper than another read)...
DIRECT_MIN: Final = 32 * 1024
# ...and for a declared length of at most this many: a payload received directly that
# turns out not to be one JPEG goes back through the receive buffer, and both then hold
# it at once. A bigger part (no phone sends an 8 MiB frame) costs one copy instead, and a
# hostile server's endless part of declared length costs the receive buffer alone.
DIRECT_MAX: Final = 8 * 2**20


class ReceiveBuffer:
    """A preallocated bytearray filled at :attr:`end` and consumed from :attr:`start`.

    Bytes ``data[start:end]`` are unconsumed; everything past ``end`` is stale and never
    read. :attr:`resume` (where the current search or marker walk goes on) and
    :attr:`line_start` (an offset known to begin a line, -1 if none) are the parser's,
    kept here so that compaction moves them with the bytes. :attr:`eof`: no more bytes
    will come.
    """

    __slots__ = (
        "_max_capacity",
        "bytes_moved",
        "bytes_skipped",
        "data",
        "end",
        "eof",
        "line_start",
        "resume",
        "start",
    )

    def __init__(self, size: int, max_capacity: int) -> None:
        self._max_capacity = max(size, max_capacity)
        self.data = bytearray(min(size, self._max_capacity))
        self.start = 0
        self.end = 0
        self.resume = 0
        self.line_start = -1
        self.eof = False
        self.bytes_moved = 0  # compaction and growth memmoves
        self.bytes_skipped = 0  # garbage dropped by skip_to (line ends not counted)

    def writable(self, limit: int = 0, sizehint: int = -1) -> memoryview:
        """Free space after :attr:`end` (at most ``limit`` bytes if > 0); never empty."""
        cap = len(self.data)
        # Keep at least a socket read's worth of room; compaction and growth are rare.
        want = min(65536, max(cap // 4, 1))
        if sizehint > 0:
            want = min(want, sizehint)
        if cap - self.end < want:
            self._make_room(want)
        if limit > 0:
            return memoryview(self.data)[self.end : self.end + limit]
        return memoryview(self.data)[self.end :]

    def filled(self, nbytes: int) -> None:
        """The first ``nbytes`` of the last :meth:`writable` view hold new bytes."""
        self.end += nbytes

    def skip_to(self, i: int) -> None:
        """Drop ``data[start:i]`` as garbage; line ends are padding, not counted."""
        a = self.start
        if i > a:
            data = self.data
            self.bytes_skipped += (i - a) - data.count(b"\n", a, i) - data.count(b"\r", a, i)
        self.start = i

    def find_lf(self, i: int, limit: int) -> int:
        """Index of the first LF in ``data[i:end]`` within ``limit`` bytes of ``i``, or -1."""
        return self.data.find(b"\n", i, min(self.end, i + limit))

    def rewind(self) -> None:
        """Everything consumed: start over at the front of the buffer (no bytes move)."""
        start = self.start
        if start == self.end and start > 0:
            self.line_start = 0 if self.line_start == start else -1
            self.resume = max(self.resume - start, 0)
            self.start = self.end = 0

    def clear(self) -> None:
        self.start = self.end = 0

    def _make_room(self, want: int) -> None:
        buf = self.data
        cap = len(buf)
        used = self.end - self.start
        # Grow only when one item in flight fills more than half the buffer: then each
        # compaction frees at least half of it, so moves stay amortised O(1) per byte.
        if used > cap // 2 and cap < self._max_capacity:
            new_cap = min(self._max_capacity, max(2 * cap, used + 2 * want))
            if 2 * new_cap > self._max_capacity:
                # The last step goes to the limit at once: not 16 -> 32 -> 32 MiB + a
                # header line, which held two 32 MiB buffers for a few KiB more.
                new_cap = self._max_capacity
            new = bytearray(new_cap)
            # A new bytearray, never a resize: views handed out earlier stay valid. Copied
            # view to view: a slice assignment into a bytearray from anything else first
            # copies the source into a temporary bytearray (CPython), a third buffer.
            with memoryview(new) as dst:
                dst[:used] = memoryview(buf)[self.start : self.end]
        elif self.start > 0:
            new = buf
            # Equal-length memoryview slice assignment: a memmove, no resize.
            with memoryview(buf) as mv:
                mv[:used] = mv[self.start : self.end]
        else:
            if cap - self.end > 0:
                return
            # Cannot happen: every parser state errors out before holding max_capacity.
            raise StreamFormatError("receive buffer full (internal limit)")
        self.bytes_moved += used
        delta = self.start
        self.start = 0
        self.end -= delta
        self.resume -= delta
        if self.line_start >= 0:
            self.line_start = max(self.line_start - delta, -1)
        self.data = new


class DirectReceive:
    """Payload memory: copies out of the receive buffer, and direct receives.

    A payload of declared length (at most ``DIRECT_MAX``) with at least ``min_bytes``
    still to come, in a stream whose last big part ended exactly where declared
    (:attr:`armed`), is received straight into memory from ``alloc``: the receive
    buffer's bytes of it move there once
    (:meth:`begin`), the kernel writes the rest there (:meth:`view`), and it is handed out
    as it is (:meth:`finish`) if it is exactly one JPEG. Otherwise it goes back through the
    receive buffer (:meth:`give_back`, one copy back) and the ordinary checks.
    """

    __slots__ = ("_alloc", "armed", "have", "length", "memory", "min_bytes")

    def __init__(self, alloc: Alloc | None, min_bytes: int = DIRECT_MIN) -> None:
        if min_bytes < 1:
            raise ValueError("direct_min must be positive")
        self._alloc = alloc
        self.min_bytes = min_bytes
        # The last big part ended exactly at its declared length: receive the next one
        # straight into its memory, and keep reads between parts short until then.
        self.armed = False
        self.memory: memoryview | None = None  # the payload's own memory while receiving
        self.have = 0  # payload bytes in it so far
        self.length = 0  # declared length

    def copy(self, buf: bytearray, s: int, e: int) -> bytes | memoryview:
        """The one copy of a payload: out of the receive buffer into immutable bytes, or
        into memory from ``alloc`` (handed out read-only)."""
        if self._alloc is None:
            return bytes(memoryview(buf)[s:e])
        dst = self._alloc(e - s)
        dst[:] = memoryview(buf)[s:e]
        return dst.toreadonly()

    def arm(self, exact_length: bool, length: int) -> None:
        """A payload of declared length ended: was it exact, and big enough to go direct?"""
        self.armed = self._alloc is not None and exact_length and length >= self.min_bytes

    def wants(self, declared: int, remaining: int) -> bool:
        """Receive a payload of ``declared`` bytes, ``remaining`` still to come, directly?"""
        return (
            self.armed
            and self.memory is None
            and remaining >= self.min_bytes
            and declared <= DIRECT_MAX
        )

    def begin(self, rx: ReceiveBuffer, length: int) -> None:
        """Move the payload received so far (``rx.data[rx.start:rx.end]``) into its own
        memory; the rest goes there too. Nothing of the part stays in the buffer."""
        assert self._alloc is not None
        have = rx.end - rx.start
        dst = self._alloc(length)
        dst[:have] = memoryview(rx.data)[rx.start : rx.end]
        self.memory, self.have, self.length = dst, have, length
        rx.end = rx.start

    def view(self) -> memoryview:
        """The rest of the payload's memory, for the kernel to write into."""
        assert self.memory is not None
        return self.memory[self.have :]

    def received(self, nbytes: int) -> bool:
        """``nbytes`` more arrived through :meth:`view`; True once the payload is whole."""
        self.have += nbytes
        return self.have >= self.length

    def finish(self) -> memoryview | None:
        """The whole declared payload, read-only, if it is exactly one JPEG (line ends
        after its EOI left out); else None, and it is still held for :meth:`give_back`."""
        d, n = self.memory, self.length
        assert d is not None and self._alloc is not None
        t = jpeg.end(d, 0, n)
        if t < 0:
            return None
        self.memory, self.have = None, 0
        # A length that counts the line end: the JPEG is shorter than its memory, so it
        # is copied once (as without direct reads), and the next parts go through the
        # buffer (one allocation each instead of two).
        self.armed = t == n
        if t < n:
            dst = self._alloc(t)
            dst[:] = d[:t]
            d = dst
        return d.toreadonly()

    def give_back(self, rx: ReceiveBuffer) -> None:
        """Back to the receive buffer with the payload received so far (an unusual part:
        the ordinary checks then run on it there)."""
        d, have = self.memory, self.have
        assert d is not None
        self.memory, self.have = None, 0
        self.armed = False
        pos = 0
        while pos < have:
            with rx.writable() as view:
                n = min(len(view), have - pos)
                view[:n] = d[pos : pos + n]
            rx.filled(n)
            pos += n
        rx.bytes_moved += have
