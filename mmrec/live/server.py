"""The live preview's web server on 127.0.0.1: a page, the mosaic as an MJPEG feed, a snapshot.

``/`` is ``page.html`` (a package file); ``/preview.mjpeg`` sends each MJPEG client the
newest mosaic as it is made, never a backlog; ``/snapshot.jpg`` the newest one once. The
mosaics come from a :class:`MosaicFeed` (the :class:`~mmrec.live.preview.LivePreview`).

Only the names it serves are answered (:class:`~mmrec.wire.host.HostPolicy`: loopback
addresses and ``localhost`` on a loopback bind): any other ``Host`` is refused with 403,
so a web page whose DNS name was pointed at 127.0.0.1 (DNS rebinding) cannot read the
pictures.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Final, Protocol

from aiohttp import web

from mmrec.errors import ConfigError
from mmrec.store.payload import Bytes
from mmrec.wire.host import HostPolicy

BOUNDARY: Final = "mmrecframe"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MosaicFeed(Protocol):
    async def next_mosaic(self, seen: int) -> int | None:
        """Wait for a mosaic newer than version ``seen``: its version, None once stopping."""
        ...

    async def latest_jpeg_async(self) -> bytes | None:
        """A JPEG of the newest mosaic (None before the first)."""
        ...


def listen_socket(host: str, port: int, what: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port) for an aiohttp site; a port
    that cannot be had is a :class:`ConfigError` naming ``what`` listens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = " (--port 0 picks a free one)" if port else ""
        raise ConfigError(f"{what} cannot listen on {host}:{port}: {exc.strerror}{hint}") from exc
    return sock


async def mosaics(feed: MosaicFeed) -> AsyncIterator[bytes]:
    """Each new mosaic as a JPEG, as it is made (a slow reader gets the newest, no backlog)."""
    seen = -1
    while (version := await feed.next_mosaic(seen)) is not None:
        seen = version
        data = await feed.latest_jpeg_async()
        if data is not None:
            yield data


async def write_mjpeg(request: web.Request, jpegs: AsyncIterator[Bytes]) -> web.StreamResponse:
    """Answer ``request`` with ``jpegs`` as a ``multipart/x-mixed-replace`` stream until
    they end or the client goes. Each JPEG is written as it is (no copy of its bytes);
    a write waits while the client's socket buffer is full, so a slow client is sent
    fewer parts rather than queued ones (the producers keep only their newest)."""
    resp = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-cache",
        }
    )
    await resp.prepare(request)
    first = True
    try:
        async for data in jpegs:
            head = (b"" if first else b"\r\n") + (  # the CRLF that ends the previous part
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            first = False
            await resp.write(head)
            await resp.write(data)
    except (ConnectionResetError, ConnectionError):
        pass
    return resp


class PreviewServer:
    """Serves ``feed`` on ``host``:``port`` (0: any free port) until :meth:`stop`."""

    def __init__(self, feed: MosaicFeed, host: str, port: int) -> None:
        self._feed = feed
        self.host = host
        self._port_wanted = port
        self.port: int | None = None
        self.clients = 0  # MJPEG viewers now
        self._page = resources.files("mmrec.live").joinpath("page.html").read_text("utf-8")
        self._runner: web.AppRunner | None = None
        self.hosts = HostPolicy.for_bind(host)
        self.refused = 0  # requests with a Host it does not serve

    async def start(self) -> int:
        """Listen; returns the port. A port that cannot be had is a :class:`ConfigError`."""
        app = web.Application(middlewares=[self._check_host])
        app.router.add_get("/", self._index)
        app.router.add_get("/preview.mjpeg", self._mjpeg)
        app.router.add_get("/snapshot.jpg", self._snapshot)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            sock = listen_socket(self.host, self._port_wanted, "preview")
        except ConfigError:
            await runner.cleanup()
            raise
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self.port = int(sock.getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _check_host(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not self.hosts.allows(host):
            self.refused += 1
            return web.Response(status=403, text=f"Host {host!r} is not served here\n")
        return await handler(request)

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html")

    async def _snapshot(self, request: web.Request) -> web.Response:
        data = await self._feed.latest_jpeg_async()
        if data is None:
            return web.Response(status=503, text="no mosaic yet\n")
        return web.Response(
            body=data, content_type="image/jpeg", headers={"Cache-Control": "no-cache"}
        )

    async def _mjpeg(self, request: web.Request) -> web.StreamResponse:
        self.clients += 1
        try:
            return await write_mjpeg(request, mosaics(self._feed))
        finally:
            self.clients -= 1
