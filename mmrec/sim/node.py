"""One simulated camera node: a small HTTP/1.x server on one host:port.

All nodes of a mesh share one event loop. Each node has at most two timers: one paces
frames (``loop.call_at``, only while someone watches ``/stream``), one beats ``/events``
each second. A frame tick builds the frame's prefix (part headers, ``SOI + COM``) once and
writes it, then the pre-encoded body as a memoryview, to every stream client: no copy of
the JPEG body unless the kernel refuses part of it (then asyncio buffers the rest).

A client whose transport buffer is over its limit skips the frame (counted), so a slow
client delays nobody. Frame numbers come from time since the node's first start, so a
client that connects late, or reconnects, simply misses what was captured meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mmrec.errors import ConfigError, StreamFormatError
from mmrec.sim import record
from mmrec.sim.config import NodeConfig
from mmrec.sim.frames import FrameRing
from mmrec.sim.timing import DeviceClock, FrameSchedule
from mmrec.sim.wire import (
    MAX_REQUEST_BODY,
    MAX_REQUEST_HEAD,
    RequestHead,
    StreamWire,
    find_head_end,
    format_timestamp,
    http_response,
    json_response,
    parse_request_head,
    sse_event,
    sse_head,
)
from mmrec.wire.jpeg import SOI
from mmrec.wire.url import http_url

STREAM_PATHS: Final = frozenset({"/stream", "/video", "/mjpeg"})
_conn_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class SentFrame:
    """One frame a node put on the wire (to at least one client)."""

    frame: int
    true_ns: int  # capture time on the host's CLOCK_REALTIME
    device_ns: int  # the device clock at capture: what X-Timestamp says

    @property
    def device_ts(self) -> float:
        """X-Timestamp as a float (seconds)."""
        return self.device_ns / 1e9


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


class _StreamClient:
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


class _HttpConnection(asyncio.Protocol):
    """One TCP connection: read one request head, then serve it until the end."""

    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.handled = False
        self.keep_alive = False
        self.stream: _StreamClient | None = None
        self._waiting: tuple[RequestHead, int] | None = None  # a head whose body is coming

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.node._connections.add(self)

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
                self._reply(
                    http_response(431, "Request Header Fields Too Large", b"", "text/plain")
                )
            return
        self.handled = True
        head = bytes(self.buf[:end])
        del self.buf[:end]
        try:
            request = parse_request_head(head)
        except StreamFormatError as exc:
            self._reply(http_response(400, "Bad Request", f"{exc}\n".encode(), "text/plain"))
            return
        self.keep_alive = request.version == "HTTP/1.1" and not any(
            k == "connection" and v.lower() == "close" for k, v in request.headers
        )
        length = next((v for k, v in request.headers if k == "content-length"), "0").strip()
        if not length.isdigit() or int(length) > MAX_REQUEST_BODY:
            self._reply(http_response(413, "Content Too Large", b"", "text/plain"))
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
        self.node._handle(self, request, body)

    def _answer(self, data: bytes) -> None:
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
        self.node._connection_lost(self)

    def _reply(self, data: bytes) -> None:
        assert self.transport is not None
        self.handled = True
        self.transport.write(data)
        self.transport.close()  # flushes the buffer first


class SimNode:
    """A simulated phone serving ``/stream``, ``/status`` and ``/events`` on ``host:port``.

    Controls: :meth:`stall` / :meth:`resume` (sockets stay open), :meth:`disconnect`
    (drops every client, listener stays), :meth:`stop` / :meth:`start` (listener closed
    and reopened on the same host and port; the frame counter keeps following time).
    """

    def __init__(
        self,
        config: NodeConfig,
        ring: FrameRing,
        host: str,
        port: int,
        *,
        sent_history: int = 10_000,
        connection_history: int = 1_000,
    ) -> None:
        self.config = config
        self.ring = ring
        self.host = host
        self.port = port
        self.wire = StreamWire(config.quirks)
        self.schedule = FrameSchedule(
            fps=config.fps,
            seed=config.picture_seed,
            delay_ns=round(config.delay_ms * 1e6),
            jitter_ns=round(config.jitter_ms * 1e6),
            drop_prob=config.drop_prob,
            drop_every=config.drop_every,
            burst_every=round(config.burst_every_s * config.fps),
            burst_len=round(config.burst_ms / 1000 * config.fps),
        )
        self.client_buffer_limit = config.max_client_buffer or max(2 * ring.max_size, 512 * 1024)
        # Counters.
        self.frames_sent = 0  # frames written to at least one client
        self.frames_dropped = 0  # skipped by the drop knobs
        self.frames_stalled = 0  # due while stalled
        self.frames_late = 0  # skipped because the event loop fell a frame behind
        self.client_writes = 0  # frame writes over all clients
        self.client_skips = 0  # frame writes skipped over all clients (slow readers)
        self.sent: deque[SentFrame] = deque(maxlen=sent_history)
        self.commands: deque[dict[str, object]] = deque(maxlen=1000)  # POST /command bodies
        self._closed_streams: deque[ConnectionStats] = deque(maxlen=connection_history)
        # State.
        self.stalled = False
        self.clock: DeviceClock | None = None
        self._origin_mono: int | None = None
        self._origin_real: int | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_HttpConnection] = set()
        self._streams: dict[_HttpConnection, _StreamClient] = {}
        self._events: set[_HttpConnection] = set()
        self._frame_timer: asyncio.TimerHandle | None = None
        self._beat_timer: asyncio.TimerHandle | None = None
        self._fault_timers: list[asyncio.TimerHandle] = []
        self._next_frame = 0
        self._last_send_mono = 0
        self._stall_done = False
        self._disconnect_done = False
        # Set whenever what a watcher can see changes: a frame tick (sent, dropped,
        # stalled), a stream client coming or going, stall and resume.
        self._changed = asyncio.Event()

    # -- identity -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def base_url(self) -> str:
        return http_url(self.host, self.port, "")

    @property
    def url(self) -> str:
        """The MJPEG stream URL."""
        return f"{self.base_url}/stream"

    @property
    def status_url(self) -> str:
        return f"{self.base_url}/status"

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/events"

    @property
    def running(self) -> bool:
        """True while the listener accepts connections."""
        return self._server is not None

    @property
    def stream_clients(self) -> int:
        return len(self._streams)

    @property
    def connections(self) -> tuple[ConnectionStats, ...]:
        """Every /stream connection so far (closed ones bounded), oldest first."""
        open_ = [c.stats(self.name) for c in self._streams.values()]
        return (*self._closed_streams, *sorted(open_, key=lambda s: s.conn))

    def current_frame(self) -> int:
        """The newest frame captured by now (-1 before the node first starts)."""
        if self._origin_mono is None:
            return -1
        return self.schedule.frame_at(time.monotonic_ns() - self._origin_mono)

    def device_now_ns(self) -> int:
        """The node's clock now."""
        now = time.time_ns()
        return self.clock.device_ns(now) if self.clock is not None else now

    async def wait_sent(self, frames: int, timeout: float = 5.0) -> None:
        """Wait until ``frames_sent`` reaches ``frames`` (TimeoutError after ``timeout`` s)."""
        await self.wait_until(lambda: self.frames_sent >= frames, timeout)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true, checking it each time the node's state
        changes (a frame tick, a stream client coming or going, stall or resume);
        TimeoutError after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_captured(self, frame: int) -> None:
        """Wait until ``frame`` has been captured on the node's schedule, whether or not
        anyone watches (frames go on being captured while the node is stopped)."""
        if self._origin_mono is None:
            raise RuntimeError(f"node {self.name!r} has never started: it captures nothing")
        loop = asyncio.get_running_loop()
        while self.current_frame() < frame:
            due_ns = self._origin_mono + self.schedule.capture_ns(frame)
            woken = loop.create_future()
            timer = loop.call_at(
                loop.time() + (due_ns - time.monotonic_ns()) / 1e9, _resolve, woken
            )
            try:
                await woken
            finally:
                timer.cancel()

    # -- controls -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on host:port (the same port again after :meth:`stop`)."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _HttpConnection(self),
                self.host,
                self.port,
                family=socket.AF_INET,
                reuse_address=True,
                backlog=128,
            )
        except OSError as exc:
            raise ConfigError(
                f"node {self.name}: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        if self._origin_mono is None:
            # Both clocks read back to back: true_ns = origin_real + (capture - origin_mono).
            self._origin_mono = time.monotonic_ns()
            self._origin_real = time.time_ns()
            c = self.config
            self.clock = DeviceClock(
                self._origin_real,
                round(c.clock_offset_s * 1e9),
                c.drift_ppm,
                round((c.clock_step_at or 0.0) * 1e9),
                round(c.clock_step_s * 1e9) if c.clock_step_at is not None else 0,
            )
        self._arm_faults(loop)

    async def stop(self) -> None:
        """Close the listener and drop every connection: reconnects fail until start()."""
        server, self._server = self._server, None
        for h in self._fault_timers:
            h.cancel()
        self._fault_timers.clear()
        if server is not None:
            server.close()
        self._drop_connections()
        self._cancel_timers()
        if server is not None:
            await server.wait_closed()
        # Let the transports deliver connection_lost before we report being stopped.
        for _ in range(3):
            if not self._connections:
                break
            await asyncio.sleep(0)

    def stall(self) -> None:
        """Stop sending frames; connections stay open. Frames due meanwhile are never sent."""
        if not self.stalled:
            self.stalled = True
            self._changed.set()
            self._broadcast_event("state", {"stalled": True})

    def resume(self) -> None:
        """Send again, starting with the frame captured next."""
        if self.stalled:
            self.stalled = False
            self._changed.set()
            self._broadcast_event("state", {"stalled": False})

    def disconnect(self) -> None:
        """Drop every client connection now (stream, events, status); the listener stays."""
        self._drop_connections()

    # -- HTTP ---------------------------------------------------------------------------

    def _handle(self, conn: _HttpConnection, request: RequestHead, body: bytes) -> None:
        transport = conn.transport
        assert transport is not None
        method, path = request.method, request.path
        if path == "/command":
            self._command(conn, method, body)
        elif method not in ("GET", "HEAD"):
            conn._reply(http_response(405, "Method Not Allowed", b"", "text/plain"))
        elif path in STREAM_PATHS:
            head = self.wire.response_head()
            if method == "HEAD":
                conn._reply(head)
                return
            transport.write(head)
            peer = transport.get_extra_info("peername")
            peer_s = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
            client = _StreamClient(transport, peer_s, path)
            conn.stream = client
            self._streams[conn] = client
            self._changed.set()
            self._arm_frames()
        elif path == "/status":
            if conn.keep_alive:
                conn._answer(json_response(self.status(), keep_alive=True))
            else:
                conn._reply(json_response(self.status()))
        elif path == "/events":
            transport.write(sse_head())
            self._events.add(conn)
            transport.write(sse_event("heartbeat", self._heartbeat()))
            self._arm_beat()
        elif path == "/":
            body = (
                f"{self.name}: mmcam-sim node\n"
                f"  stream  {self.url}\n  status  {self.status_url}\n"
                f"  events  {self.events_url}\n  command POST {self.base_url}/command\n"
            ).encode()
            conn._reply(http_response(200, "OK", body, "text/plain; charset=utf-8"))
        else:
            conn._reply(http_response(404, "Not Found", b"not found\n", "text/plain"))

    def _command(self, conn: _HttpConnection, method: str, body: bytes) -> None:
        """``POST /command`` with a JSON object: the node answers it as JSON and tells its
        ``/events`` watchers (event ``command``), as a camera app acknowledges a command
        from the console. Counted in ``commands``."""
        if method != "POST":
            conn._reply(http_response(405, "Method Not Allowed", b"", "text/plain"))
            return
        try:
            command = json.loads(body or b"{}")
        except ValueError:
            command = None
        if not isinstance(command, dict):
            answer = {"ok": False, "deviceName": self.config.label, "error": "not a JSON object"}
            data = json.dumps(answer).encode()
            conn._reply(http_response(400, "Bad Request", data, "application/json"))
            return
        self.commands.append(command)
        transport = conn.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        self._broadcast_event(
            "command", {"command": command, "from": peer[0] if isinstance(peer, tuple) else ""}
        )
        answer = {
            "ok": True,
            "deviceName": self.config.label,
            "command": command,
            "frame": self.current_frame(),
        }
        conn._reply(json_response(answer))

    def status(self) -> dict[str, object]:
        """The /status document (JSON-ready)."""
        c = self.config
        device_ns = self.device_now_ns()
        return {
            "deviceName": c.label,
            "model": c.model,
            "role": c.role,
            "apiPort": self.port,
            "streamPath": "/stream",
            "width": c.width,
            "height": c.height,
            "fps": c.fps,
            "quality": c.quality,
            "clock": device_ns / 1e9,
            "clockNs": device_ns,
            "frame": self.current_frame(),
            "framesSent": self.frames_sent,
            "framesDropped": self.frames_dropped,
            "clientSkips": self.client_skips,
            "streamClients": len(self._streams),
            "eventClients": len(self._events),
            "stalled": self.stalled,
            "sim": {
                "hostClockNs": time.time_ns(),
                "clockOffsetS": c.clock_offset_s,
                "driftPpm": c.drift_ppm,
                "jitterMs": c.jitter_ms,
                "delayMs": c.delay_ms,
                "quirks": sorted(q.value for q in c.quirks),
                "ring": len(self.ring),
            },
        }

    def _heartbeat(self) -> dict[str, object]:
        device_ns = self.device_now_ns()
        return {
            "deviceName": self.config.label,
            "clock": device_ns / 1e9,
            "clockNs": device_ns,
            "frame": self.current_frame(),
            "framesSent": self.frames_sent,
            "streamClients": len(self._streams),
            "stalled": self.stalled,
        }

    def _broadcast_event(self, event: str, payload: dict[str, object]) -> None:
        if not self._events:
            return
        data = sse_event(event, {"deviceName": self.config.label, **payload})
        for conn in self._events:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.write(data)

    def _connection_lost(self, conn: _HttpConnection) -> None:
        self._connections.discard(conn)
        self._events.discard(conn)
        client = self._streams.pop(conn, None)
        if client is not None:
            client.closed_ns = time.time_ns()
            self._closed_streams.append(client.stats(self.name))
            self._changed.set()
        if not self._streams:
            self._cancel_frame_timer()
        if not self._events and self._beat_timer is not None:
            self._beat_timer.cancel()
            self._beat_timer = None

    def _drop_connections(self) -> None:
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()  # connection_lost follows on the next loop pass

    # -- timers -------------------------------------------------------------------------

    def _arm_faults(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._origin_mono is not None
        now = time.monotonic_ns()
        c = self.config

        def at(seconds: float) -> float:
            # loop.time() runs on the monotonic clock too; only the zero point differs.
            assert self._origin_mono is not None
            return loop.time() + (self._origin_mono + seconds * 1e9 - now) / 1e9

        if c.stall_at is not None and not self._stall_done:
            self._fault_timers.append(loop.call_at(at(c.stall_at), self._fault_stall))
        if c.disconnect_at is not None and not self._disconnect_done:
            self._fault_timers.append(loop.call_at(at(c.disconnect_at), self._fault_disconnect))

    def _fault_stall(self) -> None:
        self._stall_done = True
        self.stall()
        if self.config.stall_for is not None:
            loop = asyncio.get_running_loop()
            self._fault_timers.append(loop.call_later(self.config.stall_for, self.resume))

    def _fault_disconnect(self) -> None:
        self._disconnect_done = True
        self.disconnect()

    def _arm_frames(self) -> None:
        if self._frame_timer is not None or self._origin_mono is None:
            return
        loop = asyncio.get_running_loop()
        elapsed = time.monotonic_ns() - self._origin_mono
        # The next frame not yet due: a new watcher gets the next capture, like a live camera.
        self._next_frame = self.schedule.frame_at(elapsed - self.schedule.delay_ns) + 1
        self._schedule_frame(loop)

    def _schedule_frame(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._origin_mono is not None
        due = self._origin_mono + self.schedule.send_ns(self._next_frame)
        # Frames leave in order even when jitter would swap them (a phone has one queue).
        due = max(due, self._last_send_mono)
        now = time.monotonic_ns()
        self._frame_timer = loop.call_at(loop.time() + (due - now) / 1e9, self._tick)

    def _cancel_frame_timer(self) -> None:
        if self._frame_timer is not None:
            self._frame_timer.cancel()
            self._frame_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_frame_timer()
        if self._beat_timer is not None:
            self._beat_timer.cancel()
            self._beat_timer = None

    def _arm_beat(self) -> None:
        if self._beat_timer is None:
            self._beat_timer = asyncio.get_running_loop().call_later(1.0, self._beat)

    def _beat(self) -> None:
        self._beat_timer = None
        if self._events:
            self._broadcast_event("heartbeat", self._heartbeat())
            self._arm_beat()

    def _tick(self) -> None:
        self._frame_timer = None
        if not self._streams or self._origin_mono is None:
            return
        loop = asyncio.get_running_loop()
        now = time.monotonic_ns()
        n = self._next_frame
        sched = self.schedule
        lag = now - self._origin_mono - sched.send_ns(n)
        if lag > sched.capture_ns(1) + sched.jitter_ns:
            # More than a frame behind beyond what jitter explains (a busy loop): skip to
            # the newest frame surely due, as a live camera would. Skipped frames count.
            newest = sched.frame_at(now - self._origin_mono - sched.delay_ns - sched.jitter_ns)
            if newest > n:
                self.frames_late += newest - n
                n = newest
        if self.stalled:
            self.frames_stalled += 1
        elif self.schedule.dropped(n):
            self.frames_dropped += 1
        else:
            self._send(n)
        self._last_send_mono = now
        self._next_frame = n + 1
        self._changed.set()
        self._schedule_frame(loop)

    def _send(self, n: int) -> None:
        assert self._origin_real is not None and self.clock is not None
        true_ns = self._origin_real + self.schedule.capture_ns(n)
        device_ns = self.clock.device_ns(true_ns)
        body = self.ring.bodies[n % len(self.ring)]
        com = record.com_segment(self.name, n, true_ns)
        jpeg_len = 2 + len(com) + len(body)
        ts = format_timestamp(device_ns)
        # Built lazily: most ticks need only the "next part" prefix.
        prefixes: dict[bool, bytes] = {}
        limit = self.client_buffer_limit
        wrote = False
        for client in self._streams.values():
            t = client.transport
            if t.is_closing():
                continue
            if t.get_write_buffer_size() > limit:
                client.frames_skipped += 1
                self.client_skips += 1
                continue
            first = client.first_frame is None
            prefix = prefixes.get(first)
            if prefix is None:
                prefix = self.wire.part_prefix(
                    frame=n, jpeg_len=jpeg_len, timestamp=ts, first=first
                )
                prefix += SOI + com
                prefixes[first] = prefix
            # Two writes, two send() calls when the socket has room; the body is a view into
            # the ring's bytes and is not copied (writelines would join them: a copy).
            t.write(prefix)
            t.write(body)
            if first:
                client.first_frame = n
                client.first_true_ns = true_ns
            client.last_frame = n
            client.last_true_ns = true_ns
            client.frames_sent += 1
            self.client_writes += 1
            wrote = True
        if wrote:
            self.frames_sent += 1
            self.sent.append(SentFrame(n, true_ns, device_ns))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
