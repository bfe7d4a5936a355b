"""Following a camera node's ``/events`` (Server-Sent Events) for as long as a session runs.

One :class:`NodeEvents` per node: ``GET /events``, the body's bytes fed to the sans-IO
:class:`~mmrec.wire.sse.SSEParser` (lines and events bounded there), each event handed to
a callback on the event loop. aiohttp is the HTTP client here: nothing about these
few small messages is on the hot path, and it brings chunked bodies and flow control
(its read buffer is bounded; a node that floods its stream is read no faster than the
parser takes it). No redirects, no decompression. A connection that ends, fails or stays
silent for ``read_timeout`` (a node beats every second) is retried with capped
exponential backoff and jitter; a node without ``/events`` (404) is asked again only
rarely. Errors are :class:`~mmrec.errors.CameraError` values naming the camera, kept in
:attr:`NodeEvents.last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import aiohttp

from mmrec.errors import (
    CameraError,
    CameraProtocolError,
    CameraUnreachableError,
    ExceptionMap,
    StreamFormatError,
    map_exceptions,
)
from mmrec.wire.sse import ServerEvent, SSEParser
from mmrec.wire.url import http_url

_ERRORS: Final[ExceptionMap] = {
    TimeoutError: CameraUnreachableError,  # before OSError: it is one
    StreamFormatError: CameraProtocolError,
    aiohttp.ClientResponseError: CameraProtocolError,
    (aiohttp.ClientError, OSError): CameraUnreachableError,
}
NO_EVENTS_RETRY_S: Final = 60.0  # a node that has no /events: ask again this rarely


@dataclass(frozen=True, slots=True)
class EventsConfig:
    connect_timeout: float = 3.0
    read_timeout: float = 15.0  # nothing at all (not even a heartbeat) this long: reconnect
    backoff_initial: float = 0.5
    backoff_max: float = 15.0


@dataclass(frozen=True, slots=True)
class EventsStats:
    connected: bool
    events: int  # dispatched events received (heartbeats too)
    connects: int
    last_error: str | None
    last_event_ns: int | None  # monotonic


class NodeEvents:
    """Follow ``http://HOST:PORT/events`` of camera ``name`` until :meth:`stop`.

    ``where`` is asked for the node's (host, port) before each connection, so a camera
    that moved (retargeted, or on a fallback address) is followed there.
    """

    def __init__(
        self,
        name: str,
        where: Callable[[], tuple[str, int]],
        on_event: Callable[[ServerEvent], None],
        config: EventsConfig | None = None,
    ) -> None:
        self.name = name
        self._where = where
        self._on_event = on_event
        self._config = config or EventsConfig()
        self._stopping = False
        self._wake = asyncio.Event()
        self._connected = False
        self._events = 0
        self._connects = 0
        self._last_error: str | None = None
        self._last_event_ns: int | None = None
        self._response: aiohttp.ClientResponse | None = None

    def stats(self) -> EventsStats:
        return EventsStats(
            self._connected, self._events, self._connects, self._last_error, self._last_event_ns
        )

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._response is not None:
            self._response.close()

    def reconnect_now(self) -> None:
        """Drop the connection and connect again at once (the camera moved)."""
        self._wake.set()
        if self._response is not None:
            self._response.close()

    def wake(self) -> None:
        """Skip the backoff wait, if in one (the camera's stream came back)."""
        self._wake.set()

    async def run(self) -> None:
        """Connect, read, reconnect with backoff; returns after :meth:`stop`."""
        cfg = self._config
        backoff = cfg.backoff_initial
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=cfg.connect_timeout, sock_read=cfg.read_timeout
        )
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as http:
            while not self._stopping:
                before = self._events
                delay: float | None = None
                try:
                    await self._once(http)
                    if not self._stopping:
                        raise CameraUnreachableError(self.name, "/events: the node closed it")
                except CameraError as exc:
                    self._last_error = exc.cause
                    if "HTTP 404" in exc.cause:
                        delay = NO_EVENTS_RETRY_S
                finally:
                    self._connected = False
                    self._response = None
                if self._stopping:
                    break
                if self._events > before:
                    backoff = cfg.backoff_initial
                wait = delay if delay is not None else backoff * random.uniform(0.75, 1.25)
                backoff = min(cfg.backoff_max, backoff * 2)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def _once(self, http: aiohttp.ClientSession) -> None:
        host, port = self._where()
        url = http_url(host, port, "/events")
        parser = SSEParser()
        timeout = self._config.read_timeout
        with map_exceptions(_ERRORS, "/events", camera=self.name, timeout=timeout):
            async with http.get(
                url, allow_redirects=False, headers={"Accept": "text/event-stream"}
            ) as resp:
                self._response = resp
                if resp.status != 200:
                    raise CameraProtocolError(self.name, f"/events answered HTTP {resp.status}")
                ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype != "text/event-stream":
                    raise CameraProtocolError(
                        self.name, f"/events answered {ctype or 'no type'}, not an event stream"
                    )
                self._connected = True
                self._connects += 1
                self._last_error = None
                async for chunk in resp.content.iter_any():
                    for ev in parser.feed(chunk):
                        self._events += 1
                        self._last_event_ns = time.monotonic_ns()
                        self._on_event(ev)
                    if self._stopping:
                        return
