"""The live multiview while recording: a mosaic of every camera's latest frame.

The recorder calls :meth:`LivePreview.update` on the event loop for every frame it
receives; that only stores a reference to the JPEG (O(1), no decode, no copy). At the
preview rate (10 fps by default) a tick decodes the cameras whose frame changed, at the
DCT scale that fits their tile, in a small pool of worker threads, composes the mosaic
(labels, stale/lost marks) and encodes it to ``preview.mkv`` (H.264 in Matroska, flushed
per frame, so a crash keeps what was written) in one more thread. The newest mosaic is
served as a JPEG snapshot and a live MJPEG feed by aiohttp on 127.0.0.1.

Recording has priority, and the preview stays within a stated budget:
- worker threads run at nice +10, so under CPU contention the recorder's threads win;
- a tick decodes at most as many tiles as fit ``cpu_budget`` x the tick period (from a
  running estimate of the decode time); changed tiles beyond that are skipped round-robin
  (a skipped tile keeps its previous picture and is decoded first next tick), counted in
  ``tiles_skipped``;
- if a tick is still running when the next one is due, that tick is skipped (the preview
  rate drops) and counted in ``late_ticks``; the file's pts follow wall time, so it stays
  real-time.
- a JPEG is encoded only when someone watches (an MJPEG client, or a snapshot asked for
  within the last 2 s); each MJPEG client gets the newest mosaic, never a backlog.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
from aiohttp import web

from mmrec.errors import ConfigError, MmrecError, StreamFormatError
from mmrec.live.decode import Decoder, default_decoder
from mmrec.live.mosaic import LIVE, LOST, NO_SIGNAL, Canvas, Mark, Picture, encode_jpeg, new_frame
from mmrec.live.mosaic import render_tile as _render_tile
from mmrec.live.mosaic import to_picture as _to_picture
from mmrec.live.tile import Layout, Rect, choose_scale, fit, grid_layout
from mmrec.store.payload import Bytes
from mmrec.wire import jpeg

PREVIEW_FILE: Final = "preview.mkv"
BOUNDARY: Final = "mmrecframe"
JPEG_WANTED_NS: Final = 2_000_000_000  # a snapshot request keeps JPEG encoding on this long
WORKER_NICE: Final = 10
LOST_STATES: Final = frozenset({"lost", "stopped"})
WAITING: Final = Mark("nosignal", "")  # black with the camera's name only

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>mmrec preview</title>
<style>body{margin:0;background:#111;color:#ccc;font:14px sans-serif}
img{display:block;max-width:100vw;max-height:calc(100vh - 24px);margin:auto}
p{margin:4px;text-align:center}</style></head>
<body><img src="preview.mjpeg" alt="live multiview">
<p>mmrec live preview &middot; <a href="snapshot.jpg">snapshot</a></p></body></html>
"""


@dataclass(frozen=True, slots=True)
class PreviewStats:
    """Counters of the live preview since it started."""

    ticks: int  # mosaics made
    fps: float  # achieved mosaic rate (over the last few seconds)
    tiles_decoded: int
    tiles_skipped: int  # changed tiles not decoded in their tick (over budget)
    late_ticks: int  # ticks skipped because the previous one was still running
    decode_errors: int
    encode_ms: float  # compose + H.264 (+ JPEG when watched) per tick, running mean
    decode_ms: float  # one tile's decode, running mean
    frames_written: int  # to preview.mkv
    jpegs: int  # JPEG snapshots encoded
    clients: int  # MJPEG viewers now
    error: str | None  # why preview.mkv stopped being written, if it did


class _Tile:
    __slots__ = (
        "arrived_ns",
        "data",
        "decoded_version",
        "name",
        "picture",
        "rect",
        "state",
        "time_ns",
        "version",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: Bytes | None = None
        self.arrived_ns = 0  # monotonic, when update() got it: staleness is measured here
        self.time_ns = 0  # the frame's time on the take timeline, as the recorder gave it
        self.version = 0  # bumped by update()
        self.decoded_version = 0
        self.state = "streaming"
        self.picture: Picture | None = None
        self.rect: Rect | None = None


def _nice_worker() -> None:
    # Linux: niceness is per thread (task); threads x264 starts from here inherit it.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)


class _MkvWriter:
    """H.264 in Matroska, one packet flushed per frame; pts in ms of wall time."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float) -> None:
        self.path = path
        self._c: Any = av.open(str(path), "w", format="matroska", options={"flush_packets": "1"})
        self._c.metadata["title"] = "mmrec live preview"
        s = self._c.add_stream(
            "libx264",
            rate=Fraction(fps).limit_denominator(1000),
            options={"preset": "ultrafast", "tune": "zerolatency", "crf": "26"},
        )
        s.width, s.height = size
        s.pix_fmt = "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.color_range = 2
        self._s: Any = s
        self._last_pts = -1
        self.frames = 0

    def write(self, frame: Any, pts_ms: int) -> None:
        pts = max(pts_ms, self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        for p in self._s.encode(frame):
            self._c.mux(p)
        self.frames += 1

    def close(self) -> None:
        try:
            for p in self._s.encode(None):
                self._c.mux(p)
        finally:
            self._c.close()


class LivePreview:
    """A live mosaic of the latest frame of every camera; see the module docstring.

    Usage (on the recorder's event loop)::

        preview = LivePreview(take.dir, ["A", "B"], port=8090)
        await preview.start()              # http://127.0.0.1:8090/
        preview.update("A", jpeg_bytes, time_ns)   # for every received frame
        preview.set_state("B", "stalled")
        await preview.stop()
    """

    def __init__(
        self,
        take_dir: Path | None,
        cameras: Iterable[str] = (),
        *,
        size: tuple[int, int] = (1920, 1080),
        fps: float = 10.0,
        port: int | None = 0,
        host: str = "127.0.0.1",
        workers: int = 2,
        cpu_budget: float = 0.75,
        stale_after: float = 1.0,
        lost_after: float = 10.0,
        jpeg_quality: int = 75,
        decoder: Decoder | None = None,
    ) -> None:
        if size[0] % 2 or size[1] % 2 or size[0] < 64 or size[1] < 64:
            raise ConfigError(f"preview size must be even and at least 64x64, not {size}")
        if not 0 < fps <= 60:
            raise ConfigError("preview fps must be in (0, 60]")
        self.take_dir = Path(take_dir) if take_dir is not None else None
        self.size = size
        self.fps = fps
        self.host = host
        self._port_wanted = port
        self.port: int | None = None
        self._workers = max(1, workers)
        self._cpu_budget = cpu_budget
        self._stale_ns = int(stale_after * 1e9)
        self._lost_ns = int(lost_after * 1e9)
        self._quality = jpeg_quality
        self._dec = decoder or default_decoder()
        self._tiles: dict[str, _Tile] = {}
        self._layout: Layout | None = None
        self._rr = 0
        # counters
        self._ticks = 0
        self._decoded = 0
        self._skipped = 0
        self._late = 0
        self._errors = 0
        self._jpegs = 0
        self._encode_ms = 0.0
        self._decode_ms = 5.0  # prior: a 1080p JPEG's entropy decoding dominates
        self._tick_times: list[float] = []
        self._error: str | None = None
        # output
        self._jpeg: bytes | None = None
        self._jpeg_version = 0
        self._jpeg_wanted_until = 0
        self._last_canvas: Canvas | None = None
        self._clients = 0
        self._cond: asyncio.Condition | None = None
        self._writer: _MkvWriter | None = None
        self._start_ns = 0
        self._decode_pool: cf.ThreadPoolExecutor | None = None
        self._encode_pool: cf.ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = False
        for name in cameras:
            self.add_camera(name)

    # -- called by the recorder, on the event loop --------------------------------------

    def add_camera(self, name: str) -> None:
        if name not in self._tiles:
            self._tiles[name] = _Tile(name)
            self._layout = None  # re-layout at the next tick

    def update(self, camera: str, data: Bytes, time_ns: int) -> None:
        """The camera's newest JPEG: a reference is kept, nothing else (O(1))."""
        tile = self._tiles.get(camera)
        if tile is None:
            self.add_camera(camera)
            tile = self._tiles[camera]
        tile.data = data
        tile.time_ns = time_ns
        tile.arrived_ns = time.monotonic_ns()
        tile.version += 1

    def set_state(self, camera: str, state: str) -> None:
        """streaming | stalled | connecting | backoff | stopped | lost."""
        tile = self._tiles.get(camera)
        if tile is None:
            self.add_camera(camera)
            tile = self._tiles[camera]
        tile.state = state

    # -- what others read ---------------------------------------------------------------

    @property
    def url(self) -> str | None:
        return f"http://{self.host}:{self.port}/" if self.port is not None else None

    def latest_jpeg(self) -> bytes | None:
        """A JPEG of the newest mosaic (None before the first tick)."""
        self._jpeg_wanted_until = time.monotonic_ns() + JPEG_WANTED_NS
        if self._jpeg is None and self._last_canvas is not None:
            self._jpeg = encode_jpeg(self._last_canvas, self._quality, self._dec.turbojpeg)
            self._jpegs += 1
        return self._jpeg

    async def latest_jpeg_async(self) -> bytes | None:
        """:meth:`latest_jpeg` for the HTTP handlers: a JPEG that still has to be encoded
        (about 9 ms for a 1080p mosaic) is made in the encode thread, not on the loop."""
        self._jpeg_wanted_until = time.monotonic_ns() + JPEG_WANTED_NS
        canvas = self._last_canvas
        if self._jpeg is None and canvas is not None and self._encode_pool is not None:
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(
                self._encode_pool, encode_jpeg, canvas, self._quality, self._dec.turbojpeg
            )
            if self._jpeg is None and self._last_canvas is canvas:
                self._jpeg = data
                self._jpegs += 1
            return data
        return self._jpeg

    def stats(self) -> PreviewStats:
        recent = self._tick_times[-32:]
        fps = 0.0
        if len(recent) >= 2 and recent[-1] > recent[0]:
            fps = (len(recent) - 1) / (recent[-1] - recent[0])
        return PreviewStats(
            ticks=self._ticks,
            fps=fps,
            tiles_decoded=self._decoded,
            tiles_skipped=self._skipped,
            late_ticks=self._late,
            decode_errors=self._errors,
            encode_ms=self._encode_ms,
            decode_ms=self._decode_ms,
            frames_written=self._writer.frames if self._writer else 0,
            jpegs=self._jpegs,
            clients=self._clients,
            error=self._error,
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> LivePreview:
        """Start ticking, writing preview.mkv (if take_dir) and serving (if port is not None)."""
        self._cond = asyncio.Condition()
        self._decode_pool = cf.ThreadPoolExecutor(
            self._workers, thread_name_prefix="preview-decode", initializer=_nice_worker
        )
        self._encode_pool = cf.ThreadPoolExecutor(
            1, thread_name_prefix="preview-encode", initializer=_nice_worker
        )
        self._start_ns = time.monotonic_ns()
        if self.take_dir is not None:
            path = self.take_dir / PREVIEW_FILE
            try:
                self._writer = await asyncio.get_running_loop().run_in_executor(
                    self._encode_pool, _MkvWriter, path, self.size, self.fps
                )
            except (av.FFmpegError, OSError) as exc:
                self._error = f"cannot write {path}: {exc}"
        if self._port_wanted is not None:
            await self._serve()
        self._task = asyncio.create_task(self._run(), name="preview")
        return self

    async def stop(self) -> None:
        """Stop ticking and serving; finalize preview.mkv."""
        if self._stopping:
            return
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._tick_task is not None:
            with contextlib.suppress(asyncio.CancelledError, MmrecError):
                await self._tick_task
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
        loop = asyncio.get_running_loop()
        if self._writer is not None and self._encode_pool is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                await loop.run_in_executor(self._encode_pool, self._writer.close)
        for pool in (self._decode_pool, self._encode_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> LivePreview:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- ticks --------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.fps
        due = loop.time()
        while True:
            if self._tick_task is not None and not self._tick_task.done():
                self._late += 1  # the CPU is short: skip this tick, the rate drops
            else:
                self._tick_task = asyncio.create_task(self._tick(), name="preview-tick")
            due += period
            now = loop.time()
            if due < now:  # never burst to catch up
                due = now + period
            await asyncio.sleep(due - now)

    def _relayout(self) -> Layout:
        layout = grid_layout(len(self._tiles), self.size)
        for tile in self._tiles.values():  # new tile sizes: decode every camera again
            tile.rect = None
            tile.picture = None
            tile.decoded_version = 0
        self._layout = layout
        return layout

    async def wait_tick(self) -> int:
        """Wait for the next mosaic; returns the number of mosaics made so far."""
        assert self._cond is not None, "start() first"
        await self._newer_than(self._jpeg_version)
        return self._ticks

    async def _newer_than(self, version: int) -> None:
        assert self._cond is not None
        async with self._cond:
            await self._cond.wait_for(lambda: self._stopping or self._jpeg_version != version)

    async def _tick(self) -> None:
        try:
            await self._tick_once()
        except (MmrecError, ValueError, av.FFmpegError, OSError) as exc:
            # A preview problem must never reach the recorder: note it and carry on.
            self._error = f"preview tick failed: {exc}"

    async def _tick_once(self) -> None:
        loop = asyncio.get_running_loop()
        if not self._tiles:
            return
        layout = self._layout or self._relayout()
        tiles = list(self._tiles.values())
        changed = [
            i for i, t in enumerate(tiles) if t.data is not None and t.version != t.decoded_version
        ]
        # Budget: decode CPU per tick <= cpu_budget x period, less what encoding takes.
        budget_ms = self._cpu_budget * 1000.0 / self.fps - self._encode_ms
        n = max(1, int(budget_ms / max(self._decode_ms, 0.1)))
        if len(changed) > n:
            # round-robin: start after the last tile decoded in the previous tick
            start = next((k for k, i in enumerate(changed) if i >= self._rr), 0)
            order = changed[start:] + changed[:start]
            self._skipped += len(order) - n
            changed = sorted(order[:n])
            self._rr = order[n - 1] + 1
        assert self._decode_pool is not None and self._encode_pool is not None
        jobs = []
        for i in changed:
            t = tiles[i]
            jobs.append(
                loop.run_in_executor(
                    self._decode_pool, self._decode, t.data, layout.cells[i], t.version
                )
            )
        results = await asyncio.gather(*jobs)
        for i, res in zip(changed, results, strict=True):
            t = tiles[i]
            if res is None:
                self._errors += 1
                t.decoded_version = t.version
                continue
            pic, rect, version, ms = res
            t.picture, t.rect, t.decoded_version = pic, rect, version
            self._decoded += 1
            self._decode_ms += (ms - self._decode_ms) * 0.1
        now = time.monotonic_ns()
        draws = [
            (layout.cells[i], t.rect, t.picture, self._mark(t, now), t.name)
            for i, t in enumerate(tiles)
        ]
        want_jpeg = self._clients > 0 or now < self._jpeg_wanted_until
        pts_ms = (now - self._start_ns) // 1_000_000
        ms, canvas, data = await loop.run_in_executor(
            self._encode_pool, self._compose, draws, pts_ms, want_jpeg
        )
        self._encode_ms += (ms - self._encode_ms) * 0.2
        self._last_canvas = canvas
        self._ticks += 1
        self._tick_times.append(time.monotonic())
        del self._tick_times[:-64]
        if data is not None:
            self._jpeg = data
            self._jpegs += 1
        else:
            self._jpeg = None  # stale: encoded on demand from the last canvas
        self._jpeg_version += 1
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    def _mark(self, t: _Tile, now: int) -> Mark:
        if t.data is None:
            return NO_SIGNAL
        if t.picture is None:
            return WAITING  # frames arrive but none is decoded yet (just joined, re-laid out)
        age = now - t.arrived_ns
        if t.state in LOST_STATES or (t.state != "streaming" and age > self._lost_ns):
            return LOST
        if t.state != "streaming" or age > self._stale_ns:
            return Mark.stale(age / 1e9)
        return LIVE

    def _decode(
        self, data: Bytes | None, cell: Rect, version: int
    ) -> tuple[Picture, Rect, int, float] | None:
        """Worker thread: JPEG -> a picture at its tile's size (None if it will not decode)."""
        started = time.perf_counter()
        info = jpeg.parse_header(data) if data is not None else None
        if data is None or info is None:
            return None
        rect = fit(info.width, info.height, cell)
        scale = choose_scale(info.width, info.height, rect.w, rect.h, self._dec.scales)
        try:
            planes = self._dec.decode(data, scale)
        except StreamFormatError:
            return None
        pic = _to_picture(planes, rect.w, rect.h)
        return pic, rect, version, (time.perf_counter() - started) * 1000.0

    def _compose(
        self,
        draws: list[tuple[Rect, Rect | None, Picture | None, Mark, str]],
        pts_ms: int,
        want_jpeg: bool,
    ) -> tuple[float, Canvas, bytes | None]:
        """Encode thread: draw every tile into a fresh frame, write it, maybe JPEG it."""
        started = time.perf_counter()
        frame, canvas = new_frame(*self.size, black=True)
        for cell, rect, pic, m, name in draws:
            _render_tile(canvas, cell, rect, pic, m, name)
        if self._writer is not None and self._error is None:
            try:
                self._writer.write(frame, pts_ms)
            except (av.FFmpegError, OSError) as exc:
                self._error = f"cannot write {self._writer.path}: {exc}"
        data = encode_jpeg(canvas, self._quality, self._dec.turbojpeg) if want_jpeg else None
        return (time.perf_counter() - started) * 1000.0, canvas, data

    # -- HTTP -----------------------------------------------------------------------------

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/preview.mjpeg", self._mjpeg)
        app.router.add_get("/snapshot.jpg", self._snapshot)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._port_wanted or 0))
        except OSError as exc:
            sock.close()
            await runner.cleanup()
            raise ConfigError(
                f"preview: cannot listen on {self.host}:{self._port_wanted}: {exc.strerror}"
            ) from exc
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self.port = int(sock.getsockname()[1])

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html")

    async def _snapshot(self, request: web.Request) -> web.Response:
        data = await self.latest_jpeg_async()
        if data is None:
            return web.Response(status=503, text="no mosaic yet\n")
        return web.Response(
            body=data, content_type="image/jpeg", headers={"Cache-Control": "no-cache"}
        )

    async def _mjpeg(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Cache-Control": "no-cache",
            }
        )
        await resp.prepare(request)
        assert self._cond is not None
        self._clients += 1
        seen = -1
        try:
            while not self._stopping:
                await self._newer_than(seen)
                if self._stopping:
                    break
                seen = self._jpeg_version
                data = await self.latest_jpeg_async()
                if data is None:
                    continue
                head = (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                ).encode()
                await resp.write(head + data + b"\r\n")  # one copy per part: small (JPEG)
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self._clients -= 1
        return resp
