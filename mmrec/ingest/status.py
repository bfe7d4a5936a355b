"""Asking a camera node's ``/status``: who it is and what its clock reads, timed at the socket.

The one ``/status`` client, used by discovery (is a camera node at this address, and who),
by the recorder's clock model and by ``mmrec bench`` (NTP-style clock probes). Probes run
over one kept-alive connection per node and are timed at the socket
(:class:`StatusProbe`); :func:`fetch_status` asks once. The body is capped at
:data:`~mmrec.wire.status.MAX_STATUS_BYTES` (a node whose ``/status`` never ends, or that
serves its MJPEG stream on every path, costs at most that), every probe has a deadline,
and every OS, HTTP, JSON or timeout failure becomes a :class:`CameraError` naming the
camera (:func:`~mmrec.errors.map_exceptions`). The body is read by
:func:`mmrec.wire.status.parse_status`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from mmrec.errors import (
    CameraProtocolError,
    CameraUnreachableError,
    ExceptionMap,
    StreamFormatError,
    map_exceptions,
)
from mmrec.wire import http1
from mmrec.wire.status import MAX_STATUS_BYTES, NodeStatus, parse_status

_PROBE_ERRORS: Final[ExceptionMap] = {
    TimeoutError: CameraUnreachableError,  # before OSError: it is one
    OSError: CameraUnreachableError,
    StreamFormatError: CameraProtocolError,
}
_CONNECT_ERRORS: Final[ExceptionMap] = {OSError: CameraUnreachableError}


class _ProbeProtocol(asyncio.Protocol):
    """One persistent HTTP/1.1 connection for /status probes, timed at the socket."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.first_ns = 0  # when the first byte of the current answer arrived
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.buf:
            self.first_ns = time.monotonic_ns()
        self.buf += data
        if len(self.buf) > MAX_STATUS_BYTES + 65536:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        self._wake()

    def eof_received(self) -> bool | None:
        self.closed = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class StatusProbe:
    """NTP-style ``/status`` probes over one kept-alive connection.

    The recorder's clock model trusts a probe to within half its round trip, and only if
    the two legs are alike; so the send time is read right before the request is written
    and the answer time when its first byte reaches the socket, on a connection that is
    already open (no connect, no client-library work inside the interval). Errors are
    :class:`~mmrec.errors.CameraError` naming the camera; a connection left mid-answer
    is closed (the next probe opens a new one).
    """

    def __init__(self, host: str, port: int, camera: str, *, timeout: float = 2.0) -> None:
        self.host, self.port, self.camera, self.timeout = host, port, camera, timeout
        self._proto: _ProbeProtocol | None = None
        self._request: bytes | None = None  # the same bytes every probe: built once

    async def probe(self) -> tuple[int, int, NodeStatus]:
        """One round trip: (sent, answered) monotonic ns and what the node said."""
        t0, t1, status, _ = await self.ask()
        return t0, t1, status

    async def ask(self) -> tuple[int, int, NodeStatus, list[str]]:
        """:meth:`probe`, and the problems found in the node's identity fields."""
        with map_exceptions(_PROBE_ERRORS, "/status", camera=self.camera, timeout=self.timeout):
            async with asyncio.timeout(self.timeout):
                return await self._ask()

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None

    async def _ask(self) -> tuple[int, int, NodeStatus, list[str]]:
        try:
            t0, head, body = await self._exchange()
        except BaseException:
            self.close()  # mid-answer: what is still coming would confuse the next probe
            raise
        proto = self._proto
        assert proto is not None
        t1 = proto.first_ns
        if (
            proto.closed
            or (head.header("connection") or "").lower() == "close"
            or head.http_version == "1.0"
        ):
            self.close()
        if head.status != 200:
            raise CameraProtocolError(self.camera, f"/status answered HTTP {head.status}")
        try:
            status, problems = parse_status(body)
        except StreamFormatError as exc:
            raise CameraProtocolError(self.camera, str(exc)) from exc
        return t0, t1, status, problems

    async def _exchange(self) -> tuple[int, http1.ResponseHead, bytes]:
        """Send the request; the send time, the response head and the complete body."""
        loop = asyncio.get_running_loop()
        proto = self._proto
        if proto is None or proto.closed:
            with map_exceptions(_CONNECT_ERRORS, "cannot connect", camera=self.camera):
                _, proto = await loop.create_connection(_ProbeProtocol, self.host, self.port)
            self._proto = proto
        assert proto.transport is not None
        proto.buf.clear()
        request = self._request
        if request is None:
            request = self._request = http1.build_request(self.host, self.port, "/status")
        t0 = time.monotonic_ns()
        proto.transport.write(request)
        reader = http1.ResponseHeadReader()  # resumes its search as proto.buf grows
        got: tuple[http1.ResponseHead, int] | None = None
        while True:
            if got is None and proto.buf:
                got = reader.parse(proto.buf)
            if got is not None:
                head, used = got
                body = self._body(head, proto, used)
                if body is not None:
                    return t0, head, body
            if proto.closed:
                raise CameraUnreachableError(self.camera, "/status: connection closed early")
            proto.waiter = loop.create_future()
            await proto.waiter

    def _body(self, head: http1.ResponseHead, proto: _ProbeProtocol, used: int) -> bytes | None:
        """The complete body, or None while more bytes are needed."""
        rest = bytes(proto.buf[used:])  # a copy: proto.buf grows while we wait
        if len(rest) > MAX_STATUS_BYTES + 4096:  # + room for chunk framing
            raise CameraProtocolError(
                self.camera, f"/status is larger than {MAX_STATUS_BYTES} bytes"
            )
        length = head.content_length
        if length is not None:
            if length > MAX_STATUS_BYTES:
                raise CameraProtocolError(self.camera, f"/status is {length} bytes: too large")
            return rest[:length] if len(rest) >= length else None
        if head.chunked:
            dec = http1.ChunkedDecoder()
            out = b"".join(bytes(p) for p in dec.feed(rest))
            return out if dec.done else None
        # neither: the body ends with the connection
        return rest if proto.closed else None


async def fetch_status(host: str, port: int, timeout_s: float) -> tuple[NodeStatus, list[str]]:
    """Ask ``http://host:port/status`` once and check it is a camera node's answer.

    Returns the node's status and any oddities in its identity; raises
    :class:`CameraUnreachableError` (nothing answers) or :class:`CameraProtocolError`
    (something answers, but not a camera node) naming ``host:port``.
    """
    probe = StatusProbe(host, port, f"{host}:{port}", timeout=timeout_s)
    try:
        _, _, status, problems = await probe.ask()
    finally:
        probe.close()
    if status.not_a_node is not None:
        raise CameraProtocolError(probe.camera, status.not_a_node)
    return status, problems
