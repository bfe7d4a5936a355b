"""A simulated node's connections: one HTTP/1.x request at a time, then a stream or an answer.

:class:`HttpConnection` reads a request head (and its Content-Length body) and hands it
to the node's :class:`Routes`; a ``/stream`` watcher becomes a :class:`StreamClient`,
whose counters are snapshot as :class:`ConnectionStats`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Protocol

from mmrec.errors import StreamFormatError
from mmrec.sim.wire import (
    MAX_REQUEST_BODY,
    MAX_REQUEST_HEAD,
    RequestHead,
    find_head_end,
    http_response,
    parse_request_head,
)

_conn_ids = itertools.count(1)


class Routes(Protocol):
    """What a node does with its connections."""

    def opened(self, conn: HttpConnection) -> None: ...
    def handle(self, conn: HttpConnection, request: RequestHead, body: bytes) -> None: ...
    def closed(self, conn: HttpConnection) -> None: ...


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """What one client connection to ``/stream`` received, as of when it was taken."""

    node: str
    conn: int
    peer: str
    path: str
    connected_ns: int  # host CLOCK_REALTIME
    closed_ns: int | None
    first_frame: int | None
    last_frame: int | None
    frames_sent: int
    frames_skipped: int  # frames not written because the client was too slow
    first_true_ns: int | None
    last_true_ns: int | None

    @property
    def open(self) -> bool:
        return self.closed_ns is None

    def to_json(self) -> dict[str, object]:
        return {
            "kind": "connection",
            "node": self.node,
            "conn": self.conn,
            "peer": self.peer,
            "path": self.path,
            "open": self.open,
            "connected_ns": self.connected_ns,
            "closed_ns": self.closed_ns,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames_sent": self.frames_sent,
            "frames_skipped": self.frames_skipped,
            "first_true_ns": self.first_true_ns,
            "last_true_ns": self.last_true_ns,
        }


class StreamClient:
    """Mutable per-connection counters of a /stream client (snapshots are ConnectionStats)."""

    __slots__ = (
        "closed_ns",
        "conn",
        "connected_ns",
        "first_frame",
        "first_true_ns",
        "frames_sent",
        "frames_skipped",
        "last_frame",
        "last_true_ns",
        "path",
        "peer",
        "transport",
    )

    def __init__(self, transport: asyncio.Transport, peer: str, path: str) -> None:
        self.transport = transport
        self.conn = next(_conn_ids)
        self.peer = peer
        self.path = path
        self.connected_ns = time.time_ns()
        self.closed_ns: int | None = None
        self.first_frame: int | None = None
        self.last_frame: int | None = None
        self.first_true_ns: int | None = None
        self.last_true_ns: int | None = None
        self.frames_sent = 0
        self.frames_skipped = 0

    def stats(self, node: str) -> ConnectionStats:
        return ConnectionStats(
            node,
            self.conn,
            self.peer,
            self.path,
            self.connected_ns,
            self.closed_ns,
            self.first_frame,
            self.last_frame,
            self.frames_sent,
            self.frames_skipped,
            self.first_true_ns,
            self.last_true_ns,
        )


class HttpConnection(asyncio.Protocol):
    """One TCP connection: read one request head, then serve it until the end."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.handled = False
        self.keep_alive = False
        self.stream: StreamClient | None = None
        self._waiting: tuple[RequestHead, int] | None = None  # a head whose body is coming

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.routes.opened(self)

    def data_received(self, data: bytes) -> None:
        if self.handled:
            return  # a streaming client has nothing more to say; ignore it
        self.buf += data
        if self._waiting is not None:
            self._body_ready()
        else:
            self._next_request()

    def _next_request(self) -> None:
        end = find_head_end(self.buf)
        if end < 0:
            if len(self.buf) > MAX_REQUEST_HEAD:
                self.reply(http_response(431, "Request Header Fields Too Large", b"", "text/plain"))
            return
        self.handled = True
        head = bytes(self.buf[:end])
        del self.buf[:end]
        try:
            request = parse_request_head(head)
        except StreamFormatError as exc:
            self.reply(http_response(400, "Bad Request", f"{exc}\n".encode(), "text/plain"))
            return
        self.keep_alive = request.version == "HTTP/1.1" and not any(
            k == "connection" and v.lower() == "close" for k, v in request.headers
        )
        length = next((v for k, v in request.headers if k == "content-length"), "0").strip()
        if not length.isdigit() or int(length) > MAX_REQUEST_BODY:
            self.reply(http_response(413, "Content Too Large", b"", "text/plain"))
            return
        self._waiting = (request, int(length))
        self._body_ready()

    def _body_ready(self) -> None:
        """Handle the waiting request once its whole body (Content-Length) is here."""
        assert self._waiting is not None
        request, length = self._waiting
        if len(self.buf) < length:
            return
        self._waiting = None
        body = bytes(self.buf[:length])
        del self.buf[:length]
        self.routes.handle(self, request, body)

    def answer(self, data: bytes) -> None:
        """Reply and keep the connection for the next request (HTTP/1.1 keep-alive: the
        recorder's clock probes time their round trips on an open connection)."""
        assert self.transport is not None
        self.transport.write(data)
        self.handled = False
        if self.buf:  # a pipelined request
            self._next_request()

    def eof_received(self) -> bool:
        # Keep sending after the client half-closes (e.g. `nc -N`): HTTP allows it.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.routes.closed(self)

    def reply(self, data: bytes) -> None:
        assert self.transport is not None
        self.handled = True
        self.transport.write(data)
        self.transport.close()  # flushes the buffer first
