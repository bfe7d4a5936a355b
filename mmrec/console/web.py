"""The console's web server: the page, its live updates (SSE), the JSON API, the pictures
and ``/metrics``, behind the access checks of :mod:`mmrec.console.access`.

Routes (GET unless said)::

    /                      the page (static/index.html; console.js and console.css beside it)
    /api/state             the whole state as JSON
    /api/events            the state again each time it changes, as Server-Sent Events
    /api/session           the token the page sends with its changes
    POST /api/take/start   {scene?, take?, note?}: slate, then record
    POST /api/take/stop
    POST /api/slate        {scene?, take?, note?}
    POST /api/alerts/ack   {id?}: one alert, or all
    POST /api/command      {method, path, body?, cameras?, deadline_s?}: fan-out to nodes
    POST /api/note         {text}
    /multiview.mjpeg       the live mosaic, one stream for every camera
    /multiview.jpg         the newest mosaic
    /camera/NAME.mjpeg     one camera's own JPEGs, relayed as they arrive (no decode)
    /takes/ID/contact-sheet.jpg
    /metrics               Prometheus text format

Every response carries a strict Content-Security-Policy (no inline script, nothing from
elsewhere) besides the page's own rule of putting node text in with ``textContent``.
No CORS header is sent, ever.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import asdict, is_dataclass
from importlib import resources
from typing import Any, Final

from aiohttp import web

from mmrec.console.access import COOKIE, HEADER, Access, Request
from mmrec.console.alerts import Alert
from mmrec.console.metrics import CONTENT_TYPE, ConsoleCollector, exposition, registry_for
from mmrec.console.shoot import CONTACT_FILE, Shoot
from mmrec.errors import ConfigError, MmrecError
from mmrec.ingest.command import Command, CommandAnswer
from mmrec.live.server import listen_socket, mosaics, write_mjpeg

STATIC: Final = {"console.js": "text/javascript", "console.css": "text/css"}
SSE_MIN_INTERVAL_S: Final = 0.25  # at most 4 state pushes a second per page
SSE_KEEPALIVE_S: Final = 15.0
MAX_REQUEST: Final = 256 * 1024
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def to_json(obj: Any) -> str:
    """``obj`` (dataclasses, with lists, tuples and dicts of them) as compact JSON: the
    encoder walks it in C and asks :func:`_fields` only for each dataclass (the page's
    state, pushed a few times a second, has hundreds of values)."""
    return json.dumps(obj, default=_fields, separators=(",", ":"))


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass as its fields (an alert with its ``active``, an answer with its ``ok``)."""
    if isinstance(obj, Alert):
        return {**asdict(obj), "active": obj.active}
    if isinstance(obj, CommandAnswer):
        return {**asdict(obj), "ok": obj.ok}
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f: getattr(obj, f) for f in obj.__dataclass_fields__}
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


class ConsoleServer:
    """Serves one :class:`Shoot` on ``host:port`` (0: a free port) until :meth:`stop`."""

    def __init__(self, shoot: Shoot, access: Access, host: str, port: int) -> None:
        self.shoot = shoot
        self.access = access
        self.host = host
        self._port_wanted = port
        self.port: int | None = None
        pkg = resources.files("mmrec.console").joinpath("static")
        self._page = pkg.joinpath("index.html").read_bytes()
        self._static = {name: pkg.joinpath(name).read_bytes() for name in STATIC}
        self._metrics = registry_for(ConsoleCollector(shoot.state, shoot.camera_totals))
        self._runner: web.AppRunner | None = None
        self._json_cache: tuple[int, bytes] = (-1, b"")
        self._closing = asyncio.Event()

    # lifecycle

    async def start(self) -> int:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_REQUEST)
        app.on_response_prepare.append(_security_headers)
        r = app.router
        r.add_get("/", self._index)
        r.add_get("/static/{name}", self._static_file)
        r.add_get("/api/state", self._api_state)
        r.add_get("/api/events", self._api_events)
        r.add_get("/api/session", self._api_session)
        r.add_post("/api/take/start", self._take_start)
        r.add_post("/api/take/stop", self._take_stop)
        r.add_post("/api/slate", self._slate)
        r.add_post("/api/alerts/ack", self._ack)
        r.add_post("/api/command", self._command)
        r.add_post("/api/note", self._note)
        r.add_get("/multiview.mjpeg", self._multiview)
        r.add_get("/multiview.jpg", self._multiview_jpg)
        r.add_get("/camera/{name}.mjpeg", self._camera)
        r.add_get("/takes/{take}/contact-sheet.jpg", self._contact)
        r.add_get("/metrics", self._metrics_text)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        try:
            sock = listen_socket(self.host, self._port_wanted, "console")
        except ConfigError:
            await runner.cleanup()
            raise
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self.port = int(sock.getsockname()[1])
        return self.port

    async def stop(self) -> None:
        self._closing.set()
        self.shoot.publish()  # wakes every page's event stream, which then ends
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        assert self.port is not None
        host = socket.gethostname() if self.host in ("0.0.0.0", "::") else self.host
        return self.access.url(host, self.port)

    # access

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        header_token = request.headers.get(HEADER) or (
            auth[7:] if auth.lower().startswith("bearer ") else None
        )
        query_token = request.query.get("token")
        verdict = self.access.check(
            Request(
                request.method,
                request.headers.get("Host"),
                request.headers.get("Origin"),
                header_token,
                request.cookies.get(COOKIE),
                query_token,
            )
        )
        if not verdict.ok:
            return web.Response(status=verdict.status, text=verdict.reason + "\n")
        if self.access.matches(query_token) and request.method == "GET" and request.path == "/":
            # the token from the printed URL: into a cookie, and out of the address bar
            found = web.HTTPFound("/")
            found.set_cookie(COOKIE, self.access.token, httponly=True, samesite="Strict", path="/")
            raise found
        response: web.StreamResponse = await handler(request)
        return response

    # the page

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(body=self._page, content_type="text/html", charset="utf-8")

    async def _static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._static:
            raise web.HTTPNotFound()
        return web.Response(body=self._static[name], content_type=STATIC[name], charset="utf-8")

    # state

    def _state_json(self) -> bytes:
        version = self.shoot.version
        if self._json_cache[0] != version:
            data = to_json(self.shoot.state()).encode()
            self._json_cache = (version, data)
        return self._json_cache[1]

    async def _api_state(self, request: web.Request) -> web.Response:
        return web.Response(body=self._state_json(), content_type="application/json")

    async def _api_session(self, request: web.Request) -> web.Response:
        return web.json_response({"token": self.access.token, "header": HEADER})

    async def _api_events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await resp.prepare(request)
        seen = -1
        try:
            while not self._closing.is_set():
                version = self.shoot.version
                if version != seen:
                    seen = version
                    await resp.write(b"event: state\ndata: " + self._state_json() + b"\n\n")
                    await asyncio.sleep(SSE_MIN_INTERVAL_S)
                    continue
                if await self.shoot.wait_change(seen, SSE_KEEPALIVE_S) == seen:
                    await resp.write(b": keep-alive\n\n")  # quiet for a while: still here
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    # actions

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not JSON\n") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object\n")
        return data

    async def _act(self, request: web.Request, action: Any) -> web.Response:
        try:
            result = await action(await self._body(request))
        except MmrecError as exc:
            status = 400 if isinstance(exc, ConfigError) else 409
            return web.json_response({"error": str(exc)}, status=status)
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)
        return web.json_response(result, dumps=to_json)

    def _set_slate(self, body: dict[str, Any]) -> None:
        if any(k in body for k in ("scene", "take", "note")):
            take = body.get("take")
            self.shoot.set_slate(
                None if body.get("scene") in (None, "") else str(body["scene"]),
                None if take in (None, "") else int(take),
                None if body.get("note") is None else str(body["note"]),
            )

    async def _take_start(self, request: web.Request) -> web.Response:
        async def go(body: dict[str, Any]) -> Any:
            self._set_slate(body)
            return await self.shoot.start_take()

        return await self._act(request, go)

    async def _take_stop(self, request: web.Request) -> web.Response:
        async def go(body: dict[str, Any]) -> Any:
            return await self.shoot.stop_take()

        return await self._act(request, go)

    async def _slate(self, request: web.Request) -> web.Response:
        async def go(body: dict[str, Any]) -> Any:
            self._set_slate(body)
            return self.shoot.slate

        return await self._act(request, go)

    async def _ack(self, request: web.Request) -> web.Response:
        async def go(body: dict[str, Any]) -> Any:
            aid = body.get("id")
            return {"acknowledged": self.shoot.ack(None if aid is None else int(aid))}

        return await self._act(request, go)

    async def _command(self, request: web.Request) -> web.Response:
        async def go(body: dict[str, Any]) -> Any:
            raw = body.get("body", "")
            text = raw if isinstance(raw, str) else json.dumps(raw)
            cmd = Command(str(body.get("method", "POST")), str(body.get("path", "")),
                          text.encode())  # fmt: skip
            cams = body.get("cameras")
            if cams is not None and not (
                isinstance(cams, list) and all(isinstance(c, str) for c in cams)
            ):
                raise ConfigError("cameras: a list of camera names, or null for all")
            deadline = float(body.get("deadline_s", 3.0))
            if not 0 < deadline <= 30:
                raise ConfigError("deadline_s: 0-30 seconds")
            return {"answers": await self.shoot.send(cmd, cams, deadline)}

        return await self._act(request, go)

    async def _note(self, request: web.Request) -> web.Response:
        async def go(body: dict[str, Any]) -> Any:
            text = str(body.get("text", "")).strip()
            if not text:
                raise ConfigError("a note needs text")
            self.shoot.note(text[:500])
            return {"ok": True}

        return await self._act(request, go)

    # pictures

    async def _multiview(self, request: web.Request) -> web.StreamResponse:
        preview = self.shoot.preview
        if preview is None:
            raise web.HTTPServiceUnavailable(text="no live preview in this session\n")
        return await write_mjpeg(request, mosaics(preview))

    async def _multiview_jpg(self, request: web.Request) -> web.Response:
        preview = self.shoot.preview
        data = await preview.latest_jpeg_async() if preview is not None else None
        if data is None:
            raise web.HTTPServiceUnavailable(text="no mosaic yet\n")
        return web.Response(body=data, content_type="image/jpeg")

    async def _camera(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        preview = self.shoot.preview
        if name not in self.shoot.session.feeds or preview is None:
            raise web.HTTPNotFound(text="no such camera\n")
        return await write_mjpeg(request, preview.relay.watch(name))

    async def _contact(self, request: web.Request) -> web.StreamResponse:
        take_dir = self.shoot.take_dir(request.match_info["take"])
        path = take_dir / CONTACT_FILE if take_dir is not None else None
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text="no contact sheet\n")
        return web.FileResponse(path, headers={"Content-Type": "image/jpeg"})

    async def _metrics_text(self, request: web.Request) -> web.Response:
        return web.Response(body=exposition(self._metrics), headers={"Content-Type": CONTENT_TYPE})


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
