"""The live multiview while recording: a mosaic of every camera's latest frame.

The recorder calls :meth:`LivePreview.update` on the event loop for every frame it
receives; that only stores a reference to the JPEG (O(1), no decode, no copy). At the
preview rate (10 fps by default, :class:`~mmrec.live.schedule.Ticker`) a tick decodes the
cameras whose frame changed, at the DCT scale that fits their tile, in a small pool of
worker threads, composes the mosaic (labels, stale/lost marks) and writes it to
``preview.mkv`` (H.264 in Matroska, flushed per frame, so a crash keeps what was written)
in one more thread. The newest mosaic is served as a JPEG snapshot and a live MJPEG feed
on 127.0.0.1 (:mod:`mmrec.live.server`).

Recording has priority, and the preview stays within a stated budget:
- worker threads run at nice +10, so under CPU contention the recorder's threads win;
- a tick decodes at most as many tiles as fit ``cpu_budget`` x the tick period (from a
  running estimate of the decode time); changed tiles beyond that are skipped round-robin
  (a skipped tile keeps its previous picture and is decoded first next tick), counted in
  ``tiles_skipped``;
- if a tick is still running when the next one is due, that tick is skipped (the preview
  rate drops) and counted in ``late_ticks``; the file's pts follow the clock, so it stays
  real-time.
- a JPEG is encoded only when someone watches (an MJPEG client, or a snapshot asked for
  within the last 2 s); each MJPEG client gets the newest mosaic, never a backlog.

Times (arrival, staleness, pts) are read from ``clock``, ``time.monotonic_ns`` unless a
test gives another.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import av

from mmrec.errors import ConfigError, MmrecError, RecordingError
from mmrec.live.mosaic import Mosaic, TileDraw, decode_tile, draw
from mmrec.live.relay import FrameRelay
from mmrec.live.schedule import Ticker
from mmrec.live.server import PreviewServer
from mmrec.picture.decode import Decoder, default_decoder
from mmrec.picture.h264 import H264Writer, x264_options
from mmrec.picture.still import encode_jpeg
from mmrec.picture.yuv import Picture, new_frame
from mmrec.store.payload import Bytes
from mmrec.timeline.rate import as_rate

PREVIEW_FILE: Final = "preview.mkv"
JPEG_WANTED_NS: Final = 2_000_000_000  # a snapshot request keeps JPEG encoding on this long
WORKER_NICE: Final = 10
# x264 for a live file: fast, no lookahead (zerolatency), threads as x264 chooses.
PREVIEW_X264: Final = x264_options("ultrafast", tune="zerolatency", crf=26, threads=None)


@dataclass(frozen=True, slots=True)
class PreviewStats:
    """Counters of the live preview since it started."""

    ticks: int  # mosaics made
    fps: float  # achieved mosaic rate (over the last few seconds)
    tiles_decoded: int
    tiles_skipped: int  # changed tiles not decoded in their tick (over budget)
    late_ticks: int  # ticks skipped because the previous one was still running
    decode_errors: int
    refused: int  # frames not decoded: their header claims an absurd size (tile says so)
    encode_ms: float  # compose + H.264 (+ JPEG when watched) per tick, running mean
    decode_ms: float  # one tile's decode, running mean
    frames_written: int  # to the current preview.mkv
    jpegs: int  # JPEG snapshots encoded
    clients: int  # MJPEG viewers now
    error: str | None  # why preview.mkv stopped being written, if it did


def nice_worker() -> None:
    """Thread initializer: run this thread at nice +:data:`WORKER_NICE` (recording wins
    the CPU from it); for pools of picture work beside a recording."""
    # Linux: niceness is per thread (task); threads x264 starts from here inherit it.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)


def _preview_writer(path: Path, size: tuple[int, int], fps: float) -> H264Writer:
    """H.264 in Matroska, one packet flushed per frame; pts in ms of the clock."""
    return H264Writer(
        path,
        size,
        rate=as_rate(fps),  # 29.97 -> 30000/1001
        time_base=Fraction(1, 1000),
        x264=PREVIEW_X264,
        container="matroska",
        container_options={"flush_packets": "1"},
        metadata={"title": "mmrec live preview"},
    )


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
        clock: Callable[[], int] = time.monotonic_ns,
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
        self._workers = max(1, workers)
        self._cpu_budget = cpu_budget
        self._quality = jpeg_quality
        self._dec = decoder or default_decoder()
        self._clock = clock
        self._mosaic = Mosaic(size, clock, int(stale_after * 1e9), int(lost_after * 1e9))
        # counters
        self._ticks = 0
        self._jpegs = 0
        self._encode_ms = 0.0
        self._tick_times: list[int] = []
        self._error: str | None = None
        # output
        self._jpeg: bytes | None = None
        self._jpeg_version = 0
        self._jpeg_wanted_until = 0
        self._last_canvas: Picture | None = None
        self._cond: asyncio.Condition | None = None
        self._writer: H264Writer | None = None
        self._start_ns = 0
        self._decode_pool: cf.ThreadPoolExecutor | None = None
        self._encode_pool: cf.ThreadPoolExecutor | None = None
        self._ticker = Ticker(self._tick, 1.0 / fps)
        self._server: PreviewServer | None = None
        self._stopping = False
        self.relay = FrameRelay()  # one camera's frames as they come, to web clients
        for name in cameras:
            self.add_camera(name)

    # -- called by the recorder, on the event loop --------------------------------------

    def add_camera(self, name: str) -> None:
        self._mosaic.tile(name)

    def update(self, camera: str, data: Bytes, time_ns: int) -> None:
        """The camera's newest JPEG: a reference is kept, nothing else (O(1)); handed on to
        whoever watches this camera alone (:mod:`mmrec.live.relay`)."""
        self._mosaic.update(camera, data, time_ns)
        self.relay.offer(camera, data)

    def set_state(self, camera: str, state: str) -> None:
        """streaming | stalled | connecting | backoff | stopped | lost."""
        self._mosaic.tile(camera).state = state

    # -- what others read ---------------------------------------------------------------

    @property
    def port(self) -> int | None:
        return self._server.port if self._server is not None else None

    @property
    def url(self) -> str | None:
        return f"http://{self.host}:{self.port}/" if self.port is not None else None

    def latest_jpeg(self) -> bytes | None:
        """A JPEG of the newest mosaic (None before the first tick)."""
        self._jpeg_wanted_until = self._clock() + JPEG_WANTED_NS
        if self._jpeg is None and self._last_canvas is not None:
            self._jpeg = encode_jpeg(self._last_canvas, self._quality, self._dec.turbojpeg)
            self._jpegs += 1
        return self._jpeg

    async def latest_jpeg_async(self) -> bytes | None:
        """:meth:`latest_jpeg` for the HTTP handlers: a JPEG that still has to be encoded
        (about 9 ms for a 1080p mosaic) is made in the encode thread, not on the loop."""
        self._jpeg_wanted_until = self._clock() + JPEG_WANTED_NS
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

    async def wait_tick(self) -> int:
        """Wait for the next mosaic; returns the number of mosaics made so far."""
        await self.next_mosaic(self._jpeg_version)
        return self._ticks

    async def next_mosaic(self, seen: int) -> int | None:
        """Wait for a mosaic newer than version ``seen``: its version, None once stopping."""
        assert self._cond is not None, "start() first"
        async with self._cond:
            await self._cond.wait_for(lambda: self._stopping or self._jpeg_version != seen)
        return None if self._stopping else self._jpeg_version

    def stats(self) -> PreviewStats:
        recent = self._tick_times[-32:]
        fps = 0.0
        if len(recent) >= 2 and recent[-1] > recent[0]:
            fps = (len(recent) - 1) / ((recent[-1] - recent[0]) / 1e9)
        return PreviewStats(
            ticks=self._ticks,
            fps=fps,
            tiles_decoded=self._mosaic.decoded_tiles,
            tiles_skipped=self._mosaic.skipped,
            late_ticks=self._ticker.late,
            decode_errors=self._mosaic.errors,
            refused=self._mosaic.refused,
            encode_ms=self._encode_ms,
            decode_ms=self._mosaic.decode_ms,
            frames_written=self._writer.frames if self._writer else 0,
            jpegs=self._jpegs,
            clients=self._server.clients if self._server is not None else 0,
            error=self._error,
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> LivePreview:
        """Start ticking, writing preview.mkv (if take_dir) and serving (if port is not None)."""
        self._cond = asyncio.Condition()
        self._decode_pool = cf.ThreadPoolExecutor(
            self._workers, thread_name_prefix="preview-decode", initializer=nice_worker
        )
        self._encode_pool = cf.ThreadPoolExecutor(
            1, thread_name_prefix="preview-encode", initializer=nice_worker
        )
        self._start_ns = self._clock()
        if self.take_dir is not None:
            try:
                self._writer = await asyncio.get_running_loop().run_in_executor(
                    self._encode_pool,
                    _preview_writer,
                    self.take_dir / PREVIEW_FILE,
                    self.size,
                    self.fps,
                )
            except RecordingError as exc:
                self._error = str(exc)
        if self._port_wanted is not None:
            server = PreviewServer(self, self.host, self._port_wanted)
            await server.start()
            self._server = server
        self._ticker.start()
        return self

    async def switch_file(self, folder: Path | None) -> None:
        """Finalize the current ``preview.mkv`` and, with ``folder``, begin a new one there
        (pts from 0): a console's preview runs for the whole session and writes one file
        per take. Done in the encode thread between two ticks; a file that cannot be
        made is reported in :attr:`PreviewStats.error`, and the live feed goes on."""
        assert self._encode_pool is not None, "start() first"
        await asyncio.get_running_loop().run_in_executor(self._encode_pool, self._swap, folder)

    def _swap(self, folder: Path | None) -> None:
        old, self._writer = self._writer, None
        self.take_dir = folder
        if old is not None:
            with contextlib.suppress(RecordingError):
                old.close()
        self._error = None
        self._start_ns = self._clock()
        if folder is not None:
            try:
                self._writer = _preview_writer(folder / PREVIEW_FILE, self.size, self.fps)
            except RecordingError as exc:
                self._error = str(exc)

    async def stop(self) -> None:
        """Stop ticking and serving; finalize preview.mkv."""
        if self._stopping:
            return
        self._stopping = True
        self.relay.close()
        await self._ticker.stop()
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()
        if self._server is not None:
            await self._server.stop()
        loop = asyncio.get_running_loop()
        if self._writer is not None and self._encode_pool is not None:
            with contextlib.suppress(RecordingError):
                await loop.run_in_executor(self._encode_pool, self._writer.close)
        for pool in (self._decode_pool, self._encode_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> LivePreview:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- ticks --------------------------------------------------------------------------

    async def _tick(self) -> None:
        try:
            await self._tick_once()
        except (MmrecError, ValueError, av.FFmpegError, OSError) as exc:
            # A preview problem must never reach the recorder: note it and carry on.
            self._error = f"preview tick failed: {exc}"

    async def _tick_once(self) -> None:
        loop = asyncio.get_running_loop()
        if not len(self._mosaic):
            return
        jobs = self._mosaic.due(self._cpu_budget, self.fps, self._encode_ms)
        assert self._decode_pool is not None and self._encode_pool is not None
        results = await asyncio.gather(
            *(loop.run_in_executor(self._decode_pool, decode_tile, self._dec, j) for j in jobs)
        )
        self._mosaic.decoded(jobs, results)
        now = self._clock()
        tiles = self._mosaic.tiles(now)
        clients = self._server.clients if self._server is not None else 0
        want_jpeg = clients > 0 or now < self._jpeg_wanted_until
        ms, canvas, data = await loop.run_in_executor(
            self._encode_pool, self._compose, tiles, now, want_jpeg
        )
        self._encode_ms += (ms - self._encode_ms) * 0.2
        self._last_canvas = canvas
        self._ticks += 1
        self._tick_times.append(self._clock())
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

    def _compose(
        self, tiles: list[TileDraw], now: int, want_jpeg: bool
    ) -> tuple[float, Picture, bytes | None]:
        """Encode thread: draw every tile into a fresh frame, write it, maybe JPEG it."""
        started = time.perf_counter()
        frame, canvas = new_frame(*self.size, black=True)
        draw(canvas, tiles)
        if self._writer is not None and self._error is None:
            # pts from the file's own start, read here in the encode thread, which is also
            # where switch_file() swaps files: a tick never lands in the wrong file's time
            pts_ms = (now - self._start_ns) // 1_000_000
            try:
                self._writer.write(frame, pts_ms)
            except RecordingError as exc:
                self._error = str(exc)
        data = encode_jpeg(canvas, self._quality, self._dec.turbojpeg) if want_jpeg else None
        return (time.perf_counter() - started) * 1000.0, canvas, data
