"""One simulated camera node: a small HTTP/1.x server on one host:port.

All nodes of a mesh share one event loop. Each node has at most two timers: one paces
frames (``loop.call_at``, only while someone watches ``/stream``), one beats ``/events``
each second. A frame tick builds the frame's prefix (part headers, ``SOI + COM``) once and
writes it, then the pre-encoded body as a memoryview, to every stream client: no copy of
the JPEG body unless the kernel refuses part of it (then asyncio buffers the rest).

A client whose transport buffer is over its limit skips the frame (counted), so a slow
client delays nobody. Frame numbers come from time since the node's first start, so a
client that connects late, or reconnects, simply misses what was captured meanwhile.

The node's parts, in the order a frame meets them: :mod:`~mmrec.sim.pacing` (which frame
is due when), this module (sending it to every watcher), :mod:`~mmrec.sim.connection`
(one HTTP connection), :mod:`~mmrec.sim.api` (the routes, ``/status``, ``/events``,
``/command``), :mod:`~mmrec.sim.faults` (the stall and disconnect its config scripts).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from mmrec.errors import ConfigError
from mmrec.sim import record
from mmrec.sim.api import NodeApi
from mmrec.sim.config import NodeConfig
from mmrec.sim.connection import ConnectionStats, HttpConnection, StreamClient
from mmrec.sim.faults import ScriptedFaults
from mmrec.sim.frames import FrameRing
from mmrec.sim.pacing import FramePacer
from mmrec.sim.timing import DeviceClock, FrameSchedule
from mmrec.sim.wire import RequestHead, StreamWire, format_timestamp
from mmrec.wire.jpeg import SOI
from mmrec.wire.url import http_url

__all__ = ["ConnectionStats", "SentFrame", "SimNode"]


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
        self.schedule = FrameSchedule.of(config)
        self.pacer = FramePacer(self.schedule, self._on_frame, lambda: bool(self._streams))
        self.api = NodeApi(self)
        self.client_buffer_limit = config.max_client_buffer or max(2 * ring.max_size, 512 * 1024)
        # Counters.
        self.frames_sent = 0  # frames written to at least one client
        self.frames_dropped = 0  # skipped by the drop knobs
        self.frames_stalled = 0  # due while stalled
        self.client_writes = 0  # frame writes over all clients
        self.client_skips = 0  # frame writes skipped over all clients (slow readers)
        self.sent: deque[SentFrame] = deque(maxlen=sent_history)
        self.commands: deque[dict[str, object]] = deque(maxlen=1000)  # POST /command bodies
        self._closed_streams: deque[ConnectionStats] = deque(maxlen=connection_history)
        # State.
        self.stalled = False
        self.clock: DeviceClock | None = None
        self._origin_real: int | None = None  # CLOCK_REALTIME at the pacer's origin_mono
        self._server: asyncio.Server | None = None
        self._connections: set[HttpConnection] = set()
        self._streams: dict[HttpConnection, StreamClient] = {}
        self.faults = ScriptedFaults(self)
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

    @property
    def frames_late(self) -> int:
        """Frames skipped because the event loop fell a frame behind."""
        return self.pacer.frames_late

    def current_frame(self) -> int:
        """The newest frame captured by now (-1 before the node first starts)."""
        return self.pacer.current_frame()

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
        if self.pacer.origin_mono is None:
            raise RuntimeError(f"node {self.name!r} has never started: it captures nothing")
        await self.pacer.wait_captured(frame)

    def status(self) -> dict[str, object]:
        """The /status document (JSON-ready)."""
        return self.api.status_document()

    # -- controls -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on host:port (the same port again after :meth:`stop`)."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: HttpConnection(self),
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
        if self.pacer.origin_mono is None:
            # Both clocks read back to back: true_ns = origin_real + (capture - origin_mono).
            self.pacer.origin_mono = time.monotonic_ns()
            self._origin_real = time.time_ns()
            c = self.config
            self.clock = DeviceClock(
                self._origin_real,
                round(c.clock_offset_s * 1e9),
                c.drift_ppm,
                round((c.clock_step_at or 0.0) * 1e9),
                round(c.clock_step_s * 1e9) if c.clock_step_at is not None else 0,
            )
        self.faults.arm(loop, self.pacer.origin_mono)

    async def stop(self) -> None:
        """Close the listener and drop every connection: reconnects fail until start()."""
        server, self._server = self._server, None
        self.faults.cancel()
        if server is not None:
            server.close()
        self._drop_connections()
        self.pacer.cancel()
        self.api.cancel_beat()
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
            self.api.broadcast("state", {"stalled": True})

    def resume(self) -> None:
        """Send again, starting with the frame captured next."""
        if self.stalled:
            self.stalled = False
            self._changed.set()
            self.api.broadcast("state", {"stalled": False})

    def disconnect(self) -> None:
        """Drop every client connection now (stream, events, status); the listener stays."""
        self._drop_connections()

    # -- connections (the node's Routes) ---------------------------------------------

    def opened(self, conn: HttpConnection) -> None:
        self._connections.add(conn)

    def handle(self, conn: HttpConnection, request: RequestHead, body: bytes) -> None:
        self.api.handle(conn, request, body)

    def watch(self, conn: HttpConnection, path: str) -> None:
        """``conn`` has had the stream's response head: send it frames from the next one."""
        transport = conn.transport
        assert transport is not None
        peer = transport.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        client = StreamClient(transport, peer_s, path)
        conn.stream = client
        self._streams[conn] = client
        self._changed.set()
        self.pacer.arm()

    def closed(self, conn: HttpConnection) -> None:
        self._connections.discard(conn)
        self.api.closed(conn)
        client = self._streams.pop(conn, None)
        if client is not None:
            client.closed_ns = time.time_ns()
            self._closed_streams.append(client.stats(self.name))
            self._changed.set()
        if not self._streams:
            self.pacer.cancel()

    def _drop_connections(self) -> None:
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()  # connection_lost follows on the next loop pass

    # -- frames ---------------------------------------------------------------------------

    def _on_frame(self, n: int) -> None:
        """Frame ``n`` is due (the pacer's tick): send it, unless stalled or dropped."""
        if self.stalled:
            self.frames_stalled += 1
        elif self.schedule.dropped(n):
            self.frames_dropped += 1
        else:
            self._send(n)
        self._changed.set()

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
