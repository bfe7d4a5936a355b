"""A simulated node's HTTP face: its routes, ``/status``, ``/events`` and ``POST /command``.

``/events`` is a server-sent event stream: a ``heartbeat`` each second (one timer, only
while someone listens), ``state`` when the node stalls or resumes, ``command`` when one
is posted. ``/stream`` is handed back to the node, which paces and sends the frames.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Final

from mmrec.sim.connection import HttpConnection
from mmrec.sim.wire import RequestHead, http_response, json_response, sse_event, sse_head

if TYPE_CHECKING:
    from mmrec.sim.node import SimNode

STREAM_PATHS: Final = frozenset({"/stream", "/video", "/mjpeg"})


class NodeApi:
    """The routes of one :class:`~mmrec.sim.node.SimNode`, and its ``/events`` listeners."""

    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.listeners: set[HttpConnection] = set()  # /events clients
        self._beat_timer: asyncio.TimerHandle | None = None

    def handle(self, conn: HttpConnection, request: RequestHead, body: bytes) -> None:
        node = self.node
        transport = conn.transport
        assert transport is not None
        method, path = request.method, request.path
        if path == "/command":
            self._command(conn, method, body)
        elif method not in ("GET", "HEAD"):
            conn.reply(http_response(405, "Method Not Allowed", b"", "text/plain"))
        elif path in STREAM_PATHS:
            head = node.wire.response_head()
            if method == "HEAD":
                conn.reply(head)
                return
            transport.write(head)
            node.watch(conn, path)
        elif path == "/status":
            if conn.keep_alive:
                conn.answer(json_response(node.status(), keep_alive=True))
            else:
                conn.reply(json_response(node.status()))
        elif path == "/events":
            transport.write(sse_head())
            self.listeners.add(conn)
            transport.write(sse_event("heartbeat", self._heartbeat()))
            self._arm_beat()
        elif path == "/":
            body = (
                f"{node.name}: mmcam-sim node\n"
                f"  stream  {node.url}\n  status  {node.status_url}\n"
                f"  events  {node.events_url}\n  command POST {node.base_url}/command\n"
            ).encode()
            conn.reply(http_response(200, "OK", body, "text/plain; charset=utf-8"))
        else:
            conn.reply(http_response(404, "Not Found", b"not found\n", "text/plain"))

    def _command(self, conn: HttpConnection, method: str, body: bytes) -> None:
        """``POST /command`` with a JSON object: the node answers it as JSON and tells its
        ``/events`` watchers (event ``command``), as a camera app acknowledges a command
        from the console. Counted in the node's ``commands``."""
        label = self.node.config.label
        if method != "POST":
            conn.reply(http_response(405, "Method Not Allowed", b"", "text/plain"))
            return
        try:
            command = json.loads(body or b"{}")
        except ValueError:
            command = None
        if not isinstance(command, dict):
            answer = {"ok": False, "deviceName": label, "error": "not a JSON object"}
            data = json.dumps(answer).encode()
            conn.reply(http_response(400, "Bad Request", data, "application/json"))
            return
        self.node.commands.append(command)
        transport = conn.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        self.broadcast(
            "command", {"command": command, "from": peer[0] if isinstance(peer, tuple) else ""}
        )
        answer = {
            "ok": True,
            "deviceName": label,
            "command": command,
            "frame": self.node.current_frame(),
        }
        conn.reply(json_response(answer))

    def status_document(self) -> dict[str, object]:
        """The /status document (JSON-ready); served through ``SimNode.status``, which a
        test may replace (a node whose /status has no clock)."""
        node = self.node
        c = node.config
        device_ns = node.device_now_ns()
        return {
            "deviceName": c.label,
            "model": c.model,
            "role": c.role,
            "apiPort": node.port,
            "streamPath": "/stream",
            "width": c.width,
            "height": c.height,
            "fps": c.fps,
            "quality": c.quality,
            "clock": device_ns / 1e9,
            "clockNs": device_ns,
            "frame": node.current_frame(),
            "framesSent": node.frames_sent,
            "framesDropped": node.frames_dropped,
            "clientSkips": node.client_skips,
            "streamClients": node.stream_clients,
            "eventClients": len(self.listeners),
            "stalled": node.stalled,
            "sim": {
                "hostClockNs": time.time_ns(),
                "clockOffsetS": c.clock_offset_s,
                "driftPpm": c.drift_ppm,
                "jitterMs": c.jitter_ms,
                "delayMs": c.delay_ms,
                "quirks": sorted(q.value for q in c.quirks),
                "ring": len(node.ring),
            },
        }

    def _heartbeat(self) -> dict[str, object]:
        node = self.node
        device_ns = node.device_now_ns()
        return {
            "deviceName": node.config.label,
            "clock": device_ns / 1e9,
            "clockNs": device_ns,
            "frame": node.current_frame(),
            "framesSent": node.frames_sent,
            "streamClients": node.stream_clients,
            "stalled": node.stalled,
        }

    def broadcast(self, event: str, payload: dict[str, object]) -> None:
        """Send ``event`` to every ``/events`` listener."""
        if not self.listeners:
            return
        data = sse_event(event, {"deviceName": self.node.config.label, **payload})
        for conn in self.listeners:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.write(data)

    def closed(self, conn: HttpConnection) -> None:
        """``conn`` is gone: the heartbeat stops with the last listener."""
        self.listeners.discard(conn)
        if not self.listeners:
            self.cancel_beat()

    def cancel_beat(self) -> None:
        if self._beat_timer is not None:
            self._beat_timer.cancel()
            self._beat_timer = None

    def _arm_beat(self) -> None:
        if self._beat_timer is None:
            self._beat_timer = asyncio.get_running_loop().call_later(1.0, self._beat)

    def _beat(self) -> None:
        self._beat_timer = None
        if self.listeners:
            self.broadcast("heartbeat", self._heartbeat())
            self._arm_beat()
