"""Per-camera ingest: the one thin place where network bytes meet the parsers.

One :class:`CameraIngest` task per camera, all on one event loop. Each connection is a
raw ``asyncio.BufferedProtocol`` whose ``get_buffer`` is the multipart parser's: the
kernel writes a part's headers into the parser's preallocated buffer and, once they
declare a length, the rest of the JPEG straight into block-aligned memory of its own
(``payload_alloc``, see mmrec.store.payload), which the writer hands to the disk as it
is: no copy of a frame's bytes in user space. A part without a length is scanned in the
buffer and copied out once. We use a raw protocol rather than aiohttp for
``/stream`` because it is the hot path: measured here, aiohttp costs ~0.7 CPU-s per GB
read from loopback against ~0.2 for a raw protocol, and it buffers every chunk again.
aiohttp remains the client for the JSON API (``/status``) elsewhere.

Around that loop, and never inside the parsers: connect and read timeouts (a node that
stops sending while keeping its socket open is "stalled" and dropped), reconnects with
capped exponential backoff and jitter, no redirects followed, no content decoding.

One module (~600 lines): the protocol and the task that owns it share the connection's
life (its futures, the low-water mark, stopping after the part in flight, the stall and
rate judgements at its watch tick), and splitting them would expose those internals
across modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from mmrec.errors import (
    CameraError,
    CameraProtocolError,
    CameraUnreachableError,
    ConfigError,
    ExceptionMap,
    StreamFormatError,
    map_exceptions,
    translate,
)
from mmrec.ingest.rate import RateChange, RateWatch
from mmrec.store.payload import Bytes
from mmrec.wire import http1, jpeg
from mmrec.wire.content_type import boundary_from_content_type, media_type
from mmrec.wire.multipart import MultipartParser, Part
from mmrec.wire.url import http_url, parse_stream_url

_HEAD_BUFFER: Final = 65536
# SO_RCVLOWAT: Linux honours it in poll/epoll for TCP; elsewhere the loop wakes per segment.
_LOWAT_OK: Final = sys.platform.startswith("linux") and hasattr(socket, "SO_RCVLOWAT")
_LOWAT_MAX: Final = 512 * 1024  # the kernel grows the receive buffer to hold this much
# Reading on in the same callback (see _StreamProtocol._read_on): only for the rest of a
# payload this large, and a few reads at most before the loop serves other sockets.
_READ_ON_MIN: Final = 4096
_READ_ON_MAX: Final = 4

CONNECT_TIMEOUT_S: Final = 3.0
"""Default TCP connect plus response head time (every command; see mmrec.commands.options)."""
READ_TIMEOUT_S: Final = 5.0
"""Default silence after which a stream is stalled and reconnected."""
# Bytes but no complete frame for the read timeout: stalled, unless the bytes come at a
# link's pace (a big frame on a slow link), and then for FRAME_TIMEOUTS read timeouts.
LINK_MIN_BPS: Final = 16 * 1024
FRAME_TIMEOUTS: Final = 4

# Where foreign exceptions become ours (mmrec.errors.map_exceptions).
_CONNECT_ERRORS: Final[ExceptionMap] = {
    TimeoutError: CameraUnreachableError,  # before OSError: it is one
    OSError: CameraUnreachableError,
}
_READ_ERRORS: Final[ExceptionMap] = {
    StreamFormatError: CameraProtocolError,  # the camera's bytes break the wire format
    OSError: CameraUnreachableError,
}


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where a camera's MJPEG stream is."""

    name: str
    host: str
    port: int
    path: str
    url: str

    @property
    def status_url(self) -> str:
        return http_url(self.host, self.port, "/status")

    @staticmethod
    def from_url(name: str, url: str) -> StreamTarget:
        """The camera ``name`` at ``url`` (see :func:`mmrec.wire.url.parse_stream_url`);
        :class:`ConfigError` naming the camera if the URL is unusable."""
        try:
            u = parse_stream_url(url)
        except ValueError as exc:
            raise ConfigError(f"camera {name!r}: {exc}") from None
        return StreamTarget(name, u.host, u.port, u.path, u.url)


class CameraState(StrEnum):
    """Where a camera's ingest is; the value is what JSON and the manifest show."""

    CONNECTING = "connecting"  # TCP connect and request, until the response head
    STREAMING = "streaming"  # receiving the stream
    STALLED = "stalled"  # no bytes for read_timeout: dropping the connection
    BACKOFF = "backoff"  # waiting to reconnect
    STOPPED = "stopped"  # stop() was called; run() has returned or is returning


@dataclass(frozen=True, slots=True)
class IngestConfig:
    connect_timeout: float = CONNECT_TIMEOUT_S  # TCP connect + response head
    read_timeout: float = READ_TIMEOUT_S  # no bytes for this long: stalled, reconnect
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    max_part_size: int = 32 * 2**20


@dataclass(frozen=True, slots=True)
class Received:
    """A JPEG part as it arrived: the bytes and when (monotonic ns of its last chunk)."""

    data: Bytes
    arrival_ns: int
    device_ts: str | None
    complete: bool  # False: cut short (truncated JPEG), still recorded
    # "truncated" (cut short), "trailing" (bytes after its EOI), or "stub": an SOI without
    # a picture header, handed on only to be counted where it falls (never a frame)
    flaw: str | None = None


@dataclass(frozen=True, slots=True)
class IngestStats:
    state: CameraState
    frames: int
    bytes: int
    skipped_parts: int
    truncated: int  # JPEGs cut short (no EOI), recorded as received
    reconnects: int
    connects: int
    last_error: str | None
    first_frame_ns: int | None  # monotonic ns
    last_frame_ns: int | None
    receives: int = 0  # socket reads that brought stream bytes
    read_on: int = 0  # of those, reads of a payload's rest without a pass of the loop
    slow: bool = False  # streaming far below its rate (mmrec.ingest.rate)
    trailing: int = 0  # JPEGs with bytes after their EOI, recorded as received (not trimmed)
    stubs: int = 0  # JPEG parts without a picture header (an SOI alone): not recorded


class _StreamProtocol(asyncio.BufferedProtocol):
    """Receives one HTTP response: the head into a small buffer, the body into the parser."""

    def __init__(self, ingest: CameraIngest) -> None:
        self._ingest = ingest
        self.transport: asyncio.Transport | None = None
        self.head: asyncio.Future[http1.ResponseHead] = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_rx_ns = time.monotonic_ns()
        self._head_buf = bytearray(_HEAD_BUFFER)
        self._head_len = 0
        self._head = http1.ResponseHeadReader()
        self._parser: MultipartParser | None = None
        self._chunked: http1.ChunkedDecoder | None = None
        self._scratch = bytearray(65536)
        self._sock: Any = None  # for SO_RCVLOWAT (Linux)
        self._fd = -1  # the socket's descriptor, for reading on (see _read_on)
        self.close_after_part = False  # stopping: close once the part in flight is complete
        self._lowat = 1

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._fd = sock.fileno()
            if _LOWAT_OK:
                self._sock = sock

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._parser is None:
            if self._head_len >= len(self._head_buf):
                self._head_buf.extend(bytes(len(self._head_buf)))
            return memoryview(self._head_buf)[self._head_len :]
        if self._chunked is not None:
            return memoryview(self._scratch)
        return self._parser.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        now = time.monotonic_ns()
        self.last_rx_ns = now
        ingest = self._ingest
        ingest._receives += 1
        ingest._rx_bytes += nbytes
        try:
            if self._parser is None:
                self._head_len += nbytes
                self._on_head_bytes(now)
            elif self._chunked is not None:
                for piece in self._chunked.feed(memoryview(self._scratch)[:nbytes]):
                    self._deliver(self._parser.feed(piece), now)
            else:
                self._deliver(self._parser.buffer_updated(nbytes), now)
                if self._fd >= 0:
                    self._read_on()
                if self._sock is not None:
                    self._set_lowat(self._parser.bytes_wanted())
        except (StreamFormatError, CameraError) as exc:
            self._fail(exc)
        except Exception as exc:  # a bug in a frame handler must not blame the camera
            self._fail(CameraProtocolError(self._ingest.name, f"internal error: {exc!r}"))

    def eof_received(self) -> bool | None:
        if self._parser is not None:
            try:
                self._deliver(self._parser.feed_eof(), time.monotonic_ns())
            except StreamFormatError as exc:
                self._fail(exc)
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        name = self._ingest.name
        if not self.head.done():
            why = "connection closed before a response"
            self.head.set_exception(
                CameraUnreachableError(name, f"{why} (EOF)")
                if exc is None
                else translate(exc, _READ_ERRORS, why, camera=name)
            )
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(
                    translate(exc, _READ_ERRORS, "connection lost", camera=name)
                )

    # parsing

    def _on_head_bytes(self, now: int) -> None:
        got = self._head.parse(memoryview(self._head_buf)[: self._head_len])
        if got is None:
            return
        head, used = got
        self._parser = self._ingest._parser_for(head)  # raises CameraError on a bad response
        # A new connection, counted before the first part it brings (which may be in these
        # very bytes): every frame carries the number of the connection it came on.
        self._ingest._on_stream_start()
        if head.chunked:
            self._chunked = http1.ChunkedDecoder()
        if not self.head.done():
            self.head.set_result(head)
        rest = memoryview(self._head_buf)[used : self._head_len]
        if self._chunked is not None:
            for piece in self._chunked.feed(rest):
                self._deliver(self._parser.feed(piece), now)
        elif rest:
            self._deliver(self._parser.feed(rest), now)
        del rest
        self._head_buf = bytearray()

    def _read_on(self) -> None:
        """Read the rest of a payload that is already in the socket now, in this callback:
        a frame then costs one pass of the loop, not two (and no low-water mark changes).
        Over loopback and fast links the bytes after a part's headers are usually all
        there by the time the headers are parsed. What is not there yet is left to the
        loop (the low-water mark wakes it once the rest is in); a closed or failed socket
        too: the loop's own read then reports it."""
        parser = self._parser
        assert parser is not None
        ingest = self._ingest
        for _ in range(_READ_ON_MAX):
            if parser.bytes_wanted() < _READ_ON_MIN or self._parser is not parser:
                return
            view = parser.get_buffer(-1)
            try:
                n = os.readv(self._fd, (view,))
            except OSError:  # nothing there yet (EAGAIN), or a socket error
                n = 0
            size = len(view)
            view.release()
            parts = parser.buffer_updated(n)
            if n:
                now = time.monotonic_ns()
                self.last_rx_ns = now
                ingest._receives += 1
                ingest._read_on += 1
                ingest._rx_bytes += n
                self._deliver(parts, now)
            if n < size:
                return

    def _set_lowat(self, want: int) -> None:
        """Wake the loop only once ``want`` bytes are queued (at most ``_LOWAT_MAX``):
        a 200 KB frame then costs one wakeup and one receive instead of one per TCP
        segment burst (measured: ~4 at low load). EOF and errors still wake it at once."""
        want = min(want, _LOWAT_MAX)
        if want != self._lowat:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, want)
                self._lowat = want
            except OSError:
                if want == 1:
                    return  # keep trying to relax it: a high mark must not stay behind
                self._sock = None  # not supported here: wake per segment, as before

    def relax_lowat(self) -> None:
        """Back to waking for every byte: a slow link must not look stalled while part
        of a frame waits in the socket below the low-water mark."""
        if self._sock is not None and self._lowat > 1:
            self._set_lowat(1)

    def _deliver(self, parts: list[Part], now: int) -> None:
        for part in parts:
            self._ingest._on_part(part, now)
        if self.close_after_part and not self.in_part() and self.transport is not None:
            self.transport.close()  # stopping: the frame in flight is complete

    def in_part(self) -> bool:
        return self._parser is not None and self._parser.in_part()

    def release(self) -> None:
        """The connection is over (its transport aborted): drop the parser and buffers now.

        Not left to reference counting alone: an error kept in :attr:`done` may hold
        frames that hold this protocol, a cycle only the cyclic collector frees, and it
        may not run for minutes; a hostile camera's parser holds up to the part cap."""
        self._parser = None
        self._chunked = None
        self._head_buf = bytearray()
        self._scratch = bytearray()

    def _fail(self, exc: Exception) -> None:
        # The cause is kept, its frames not: they hold this protocol and its parser, and
        # through the error kept in ``done`` would keep them (and their buffers) alive.
        exc.__traceback__ = None
        err = translate(exc, _READ_ERRORS, "bad stream", camera=self._ingest.name)
        if not self.head.done():
            self.head.set_exception(err)
        if not self.done.done():
            self.done.set_exception(err)
        if self.transport is not None:
            self.transport.abort()


Sink = Callable[[Received], None]


class CameraIngest:
    """Pull one camera's ``/stream`` forever (until :meth:`stop`), handing JPEGs to ``sink``.

    ``sink`` runs on the event loop for every JPEG part and must not block.
    """

    def __init__(
        self,
        target: StreamTarget,
        sink: Sink,
        config: IngestConfig | None = None,
        *,
        on_state: Callable[[CameraIngest, CameraState], None] | None = None,
        on_rate: Callable[[CameraIngest, RateChange], None] | None = None,
        fallbacks: Sequence[StreamTarget] = (),
        payload_alloc: Callable[[int], memoryview] | None = None,
        before_connect: Callable[[StreamTarget], Awaitable[None]] | None = None,
    ) -> None:
        self.target = target
        # Awaited before each connection attempt (the session's clock-probe burst); it
        # bounds its own time, and what it raises is not the stream's concern.
        self._before_connect = before_connect
        # Memory for each frame's payload (see mmrec.store.payload): the parser receives a
        # payload of declared length straight into it, or copies one out of its buffer
        # into it; None: payloads are copied out into bytes.
        self._payload_alloc = payload_alloc
        # Other paths to the same camera (e.g. its Tailscale address): after a connection
        # attempt that brought no frame, the next path is tried.
        self._paths = [target, *fallbacks]
        self._path_index = 0
        self.name = target.name
        self._sink = sink
        self._config = config or IngestConfig()
        self._on_state = on_state
        self._on_rate = on_rate
        # Slow or not, judged at the watch tick; its nominal_fps is the node's /status fps
        # when someone reads it (mmrec.session.camera).
        self.rate = RateWatch()
        self._state = CameraState.CONNECTING
        self._frames = 0
        self._bytes = 0
        self._skipped = 0
        self._truncated = 0
        self._trailing = 0
        self._stubs = 0
        self._receives = 0
        self._read_on = 0
        self._rx_bytes = 0  # bytes of stream bodies and heads received, all connections
        self._rx_at_frame = 0  # ... when the last frame completed
        self._reconnects = 0
        self._connects = 0
        self._last_error: str | None = None
        self._first_frame_ns: int | None = None
        self._last_frame_ns: int | None = None
        self._stopping = False
        self._protocol: _StreamProtocol | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # public

    def stats(self) -> IngestStats:
        return IngestStats(
            state=self._state,
            frames=self._frames,
            bytes=self._bytes,
            skipped_parts=self._skipped,
            truncated=self._truncated,
            reconnects=self._reconnects,
            connects=self._connects,
            last_error=self._last_error,
            first_frame_ns=self._first_frame_ns,
            last_frame_ns=self._last_frame_ns,
            receives=self._receives,
            read_on=self._read_on,
            slow=self.rate.slow and self._state == CameraState.STREAMING,
            trailing=self._trailing,
            stubs=self._stubs,
        )

    @property
    def connects(self) -> int:
        """Successful connections so far (a change means frames may have been missed)."""
        return self._connects

    @property
    def state(self) -> CameraState:
        """Where the ingest is now (what :meth:`stats` says, without building the rest)."""
        return self._state

    def stop(self, *, finish_part: bool = False) -> None:
        """Ask the task to end: the connection is closed and :meth:`run` returns.

        ``finish_part``: if a frame is arriving, close only once it is complete (the
        camera sent it before the stop), within the watch tick (at most a second)."""
        self._stopping = True
        self._wake.set()
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            if finish_part and protocol.in_part():
                protocol.close_after_part = True
            else:
                protocol.transport.close()
        elif self._connecting is not None:
            self._connecting.cancel()  # don't wait out a connect timeout at shutdown

    def retarget(self, target: StreamTarget) -> None:
        """Use ``target`` as the camera's main path from the next connection on."""
        self._paths[0] = target
        self._path_index = 0
        self.target = target
        self.reconnect_now()

    def reconnect_now(self) -> None:
        """Skip the current backoff wait (e.g. discovery saw the node come back)."""
        self._wake.set()

    async def run(self) -> None:
        """Connect, stream, reconnect with backoff; returns only after :meth:`stop`."""
        cfg = self._config
        backoff = cfg.backoff_initial
        while not self._stopping:
            frames_before = self._frames
            try:
                self._connecting = asyncio.ensure_future(self._stream_once())
                try:
                    await self._connecting
                except asyncio.CancelledError:
                    if not self._stopping:
                        raise
                    break
                finally:
                    self._connecting = None
                if not self._stopping:
                    raise CameraUnreachableError(self.name, "the node closed the stream")
            except CameraError as exc:
                if self._stopping:
                    break
                self._last_error = exc.cause
            except (OSError, ValueError, RuntimeError) as exc:
                # unexpected, but this camera's task must go on and say why
                self._last_error = f"{type(exc).__name__}: {exc}"
            if self._stopping:
                break
            if self._frames > frames_before:
                backoff = cfg.backoff_initial  # it worked for a while: retry quickly
            elif len(self._paths) > 1:
                self._path_index = (self._path_index + 1) % len(self._paths)
                self.target = self._paths[self._path_index]
            self._reconnects += 1
            self._set_state(CameraState.BACKOFF)
            delay = backoff * random.uniform(0.75, 1.25)
            backoff = min(cfg.backoff_max, backoff * 2)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
        self._set_state(CameraState.STOPPED)

    # one connection

    async def _stream_once(self) -> None:
        cfg = self._config
        t = self.target
        loop = asyncio.get_running_loop()
        self._set_state(CameraState.CONNECTING)
        if self._before_connect is not None:
            await self._before_connect(t)
        protocol = _StreamProtocol(self)
        with map_exceptions(
            _CONNECT_ERRORS,
            f"cannot connect to {t.host}:{t.port}",
            camera=self.name,
            timeout=cfg.connect_timeout,
        ):
            async with asyncio.timeout(cfg.connect_timeout):
                transport, _ = await loop.create_connection(lambda: protocol, t.host, t.port)
        self._protocol = protocol
        try:
            transport.write(http1.build_request(t.host, t.port, t.path))
            with map_exceptions(
                _CONNECT_ERRORS, "no response", camera=self.name, timeout=cfg.connect_timeout
            ):
                async with asyncio.timeout(cfg.connect_timeout):
                    await asyncio.shield(protocol.head)
            await self._watch(protocol)
        finally:
            transport.abort()
            protocol.release()
            self._protocol = None
            for fut in (protocol.head, protocol.done):
                if fut.done() and not fut.cancelled():
                    fut.exception()  # mark retrieved

    async def _watch(self, protocol: _StreamProtocol) -> None:
        """Wait for the connection to end; each tick also judges the rate.

        The connection is stalled (dropped, to be reconnected) when no bytes come for
        read_timeout, and when bytes come but no frame completes: after read_timeout if
        they come slower than a link would carry a frame (``LINK_MIN_BPS``: a byte at a
        time, a hostile trickle), after ``FRAME_TIMEOUTS`` read timeouts whatever their
        pace (a big frame on a slow link passes; nothing stays live for ever without a
        frame)."""
        cfg = self._config
        timeout_ns = int(cfg.read_timeout * 1e9)
        tick = min(1.0, cfg.read_timeout / 4)
        since = time.monotonic_ns()
        rx_at_start = self._rx_bytes
        self.rate.connected(since, self._frames)
        while True:
            try:
                async with asyncio.timeout(tick):
                    await asyncio.shield(protocol.done)
                return
            except TimeoutError:
                pass
            if self._stopping:
                return
            now = time.monotonic_ns()
            idle = now - protocol.last_rx_ns
            if idle > tick * 1e9:
                protocol.relax_lowat()
            if idle > timeout_ns:
                self._stalled(f"stalled: no data for {cfg.read_timeout:g} s")
            last = self._last_frame_ns
            if last is not None and last > since:
                frameless, got = now - last, self._rx_bytes - self._rx_at_frame
            else:
                frameless, got = now - since, self._rx_bytes - rx_at_start
            if frameless > timeout_ns and (
                got < LINK_MIN_BPS * frameless / 1e9 or frameless > FRAME_TIMEOUTS * timeout_ns
            ):
                self._stalled(
                    f"stalled: no complete frame for {frameless / 1e9:.0f} s "
                    f"({_amount(got)} received in that time)"
                )
            change = self.rate.sample(now, self._frames)
            if change is not None and self._on_rate is not None:
                self._on_rate(self, change)

    def _stalled(self, cause: str) -> None:
        err = CameraUnreachableError(self.name, cause)
        # the cause first: whoever the state change wakes reads it as the reason
        self._last_error = err.cause
        self._set_state(CameraState.STALLED)
        raise err

    def _on_stream_start(self) -> None:
        """The stream's response head arrived (before any of its parts is delivered)."""
        self._connects += 1
        self._set_state(CameraState.STREAMING)

    def _parser_for(self, head: http1.ResponseHead) -> MultipartParser:
        if 300 <= head.status < 400:
            where = head.header("location") or "?"
            raise CameraProtocolError(
                self.name, f"HTTP {head.status} redirect to {where} (redirects are not followed)"
            )
        if head.status != 200:
            raise CameraProtocolError(self.name, f"HTTP {head.status} {head.reason}".rstrip())
        ctype = media_type(head.header("content-type")) or ""
        if ctype.startswith("text/") or ctype in ("application/json", "application/xml"):
            raise CameraProtocolError(
                self.name,
                f"{self.target.url} answered {ctype}, not an MJPEG stream (is the path right?"
                " camera nodes serve it at /stream)",
            )
        encoding = (head.header("content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", ""):
            raise CameraProtocolError(self.name, f"compressed stream ({encoding}) not supported")
        # multipart/x-mixed-replace with or without a boundary, application/octet-stream,
        # or no type at all: the parser learns the boundary or finds raw JPEGs itself.
        boundary = boundary_from_content_type(head.header("content-type"))
        return MultipartParser(
            boundary, max_part_size=self._config.max_part_size, alloc=self._payload_alloc
        )

    def _on_part(self, part: Part, now: int) -> None:
        data = part.data
        is_jpeg = data[:2] == b"\xff\xd8"
        if not is_jpeg:
            # a text/plain heartbeat, a JSON status part, an empty part: skip, count
            self._skipped += 1
            return
        flaw = jpeg.flaw(data)  # O(1) for a whole JPEG; each other kind counted by name
        if flaw is not None:
            if flaw == "stub":  # an SOI without a picture header: nothing to show
                self._stubs += 1
                # not a frame (the writer could not size it either): only counted
                self._sink(Received(data, now, part.timestamp, False, flaw))
                return
            if flaw == "trailing":
                self._trailing += 1  # kept as received, not trimmed (cameras add trailers)
            else:
                self._truncated += 1  # cut short: kept, readers show what it holds
        self._frames += 1
        self._bytes += len(data)
        if self._first_frame_ns is None:
            self._first_frame_ns = now
        self._last_frame_ns = now
        self._rx_at_frame = self._rx_bytes
        self._sink(Received(data, now, part.timestamp, flaw != "truncated", flaw))

    def _set_state(self, state: CameraState) -> None:
        if state != self._state:
            self._state = state
            if self._on_state is not None:
                self._on_state(self, state)


def _amount(nbytes: int) -> str:
    if nbytes < 10_000:
        return f"{nbytes} bytes"
    return f"{nbytes / 1e3:.0f} kB" if nbytes < 10_000_000 else f"{nbytes / 1e6:.0f} MB"
