"""A camera node's ``/status``: NTP-style probes of its clock, and the fields mmrec reads.

Used by the recorder's clock model and by ``mmrec bench``. Probes run over one kept-alive
connection per node and are timed at the socket (:class:`StatusProbe`). The body is
capped (a node whose ``/status`` never ends, or that serves its MJPEG stream on every
path, costs at most ``MAX_STATUS_BYTES``), every probe has a deadline, and every OS,
HTTP, JSON or timeout failure becomes a :class:`CameraError` naming the camera.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Final

from mmrec.errors import CameraProtocolError, CameraUnreachableError, StreamFormatError
from mmrec.timeline.align import parse_device_ts
from mmrec.wire import http1

MAX_STATUS_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """What one ``/status`` answer told us: its clock (device ns) and nominal rate."""

    device_ns: int | None
    fps: float | None


def parse_status(body: bytes) -> StatusInfo:
    """The clock (``clockNs``, else ``clock`` seconds) and ``fps`` from a ``/status`` body.

    Raises :class:`ValueError` when the body is not a JSON object; missing or odd fields
    are simply None (many cameras have a ``/status`` without a clock).
    """
    try:
        doc = json.loads(body)
    except RecursionError as exc:  # absurdly nested JSON
        raise ValueError("/status is nested too deeply") from exc
    if not isinstance(doc, dict):
        raise ValueError("/status is not a JSON object")
    device_ns: int | None = None
    ns = doc.get("clockNs")
    if isinstance(ns, int) and not isinstance(ns, bool) and ns > 0:
        device_ns = ns
    else:
        v = doc.get("clock")
        if isinstance(v, str):
            device_ns = parse_device_ts(v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            device_ns = parse_device_ts(repr(v))
    fps = doc.get("fps")
    nominal = (
        float(fps)
        if isinstance(fps, int | float) and not isinstance(fps, bool) and 0 < fps <= 1000
        else None
    )
    return StatusInfo(device_ns, nominal)


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
    already open (no connect, no client-library work inside the interval). Returns what
    :func:`get_status` returns; errors are :class:`CameraError` naming the camera.
    """

    def __init__(self, host: str, port: int, camera: str, *, timeout: float = 2.0) -> None:
        self.host, self.port, self.camera, self.timeout = host, port, camera, timeout
        self._proto: _ProbeProtocol | None = None

    async def probe(self) -> tuple[int, int, StatusInfo]:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._probe()
        except TimeoutError as exc:
            self.close()
            raise CameraUnreachableError(
                self.camera, f"/status: no answer within {self.timeout:g} s"
            ) from exc
        except OSError as exc:
            self.close()
            raise CameraUnreachableError(self.camera, f"/status failed: {exc}") from exc
        except StreamFormatError as exc:
            self.close()
            raise CameraProtocolError(self.camera, f"/status: {exc}") from exc

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None

    async def _probe(self) -> tuple[int, int, StatusInfo]:
        loop = asyncio.get_running_loop()
        proto = self._proto
        if proto is None or proto.closed:
            _, proto = await loop.create_connection(_ProbeProtocol, self.host, self.port)
            self._proto = proto
        assert proto.transport is not None
        proto.buf.clear()
        request = http1.build_request(self.host, self.port, "/status")
        t0 = time.monotonic_ns()
        proto.transport.write(request)
        while True:
            got = http1.parse_response_head(proto.buf) if proto.buf else None
            if got is not None:
                head, used = got
                body = self._body(head, proto, used)
                if body is not None:
                    break
            if proto.closed:
                raise CameraUnreachableError(self.camera, "/status: connection closed early")
            proto.waiter = loop.create_future()
            await proto.waiter
        t1 = proto.first_ns
        if head.status != 200:
            raise CameraProtocolError(self.camera, f"/status answered HTTP {head.status}")
        if (head.header("connection") or "").lower() == "close" or head.http_version == "1.0":
            self.close()
        try:
            return t0, t1, parse_status(body)
        except ValueError as exc:
            raise CameraProtocolError(self.camera, f"/status is not usable JSON ({exc})") from None

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
        if proto.closed:
            self.close()
            return rest
        return None
