"""The live multiview while recording: a mosaic of every camera's latest frame.

The recorder calls :meth:`LivePreview.update` on the event loop for every frame it
receives; that only stores a reference to the JPEG (O(1), no decode, no copy). At the
preview rate (10 fps by default, :class:`~mmrec.live.schedule.Ticker`) a tick picks the
cameras whose frame changed and hands their JPEGs, with what every tile shows (name,
stale/lost), to the picture worker, a child process (:mod:`mmrec.live.worker`, which
says why a process). It decodes them at the DCT scale that fits their tile, composes the
mosaic, writes it to ``preview.mkv`` (H.264 in Matroska, flushed per frame, so a crash
keeps what was written) and answers with its timings, and a JPEG when someone watches.
The newest mosaic is served as a JPEG snapshot and a live MJPEG feed on 127.0.0.1
(:mod:`mmrec.live.server`), from this process.

Recording has priority, and the preview stays within a stated budget:
- the worker runs at nice +10, in its own interpreter: under CPU contention the
  recorder's threads win, and picture work takes no GIL from them;
- a tick decodes at most as many tiles as fit ``cpu_budget`` x the tick period (from a
  running estimate of the decode time); changed tiles beyond that are skipped round-robin
  (a skipped tile keeps its previous picture and is decoded first next tick), counted in
  ``tiles_skipped``;
- one tick at a time: if the worker has not answered a tick when the next one is due,
  that tick is skipped (the preview rate drops) and counted in ``late_ticks``; the
  file's pts follow the clock, so it stays real-time;
- a JPEG is encoded only when someone watches (an MJPEG client, or a snapshot asked for
  within the last 2 s); each MJPEG client gets the newest mosaic, never a backlog.

A worker that cannot start, dies or stops answering (each wait is bounded) only stops
the mosaics: :attr:`PreviewStats.error` says why, recording and :meth:`update` go on. It
is not restarted: a worker that died once likely dies again, and the preview is a
convenience, the recording is what matters.

Times (arrival, staleness, pts) are read from ``clock``, ``time.monotonic_ns`` unless a
test gives another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mmrec.errors import ConfigError, MmrecError, PictureWorkerError
from mmrec.live.channel import Opened, OpenFile, PictureWorker, Setup, Tick, Ticked
from mmrec.live.mosaic import Mosaic
from mmrec.live.relay import FrameRelay
from mmrec.live.schedule import WORKER_NICE, Ticker, nice_worker
from mmrec.live.server import PreviewServer
from mmrec.live.worker import PREVIEW_FILE, PREVIEW_X264
from mmrec.picture.decode import Decoder
from mmrec.store.payload import Bytes

JPEG_WANTED_NS: Final = 2_000_000_000  # a snapshot request keeps JPEG encoding on this long
# Bounds on waiting for the worker (it runs niced, on a machine busy recording): to
# start (a Python with numpy, PyAV and TurboJPEG to import), to answer a tick, to switch
# files (finalize one, open the next) and to finalize the last file.
START_TIMEOUT_S: Final = 30.0
TICK_TIMEOUT_S: Final = 10.0
FILE_TIMEOUT_S: Final = 30.0

__all__ = [
    "PREVIEW_FILE",
    "PREVIEW_X264",
    "WORKER_NICE",
    "LivePreview",
    "PreviewStats",
    "nice_worker",
]


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
    error: str | None  # why preview.mkv stopped being written, or the mosaics stopped


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
        """``workers`` decode threads in the worker; ``decoder`` names its backend (the
        worker makes its own decoder of that kind: a decoder does not cross processes)."""
        if size[0] % 2 or size[1] % 2 or size[0] < 64 or size[1] < 64:
            raise ConfigError(f"preview size must be even and at least 64x64, not {size}")
        if not 0 < fps <= 60:
            raise ConfigError("preview fps must be in (0, 60]")
        self.take_dir = Path(take_dir) if take_dir is not None else None
        self.size = size
        self.fps = fps
        self.host = host
        self._port_wanted = port
        self._setup = Setup(
            size, fps, jpeg_quality, max(1, workers), decoder.backend if decoder else "auto"
        )
        self._cpu_budget = cpu_budget
        self._clock = clock
        self._mosaic = Mosaic(size, clock, int(stale_after * 1e9), int(lost_after * 1e9))
        # counters
        self._ticks = 0
        self._jpegs = 0
        self._encode_ms = 0.0
        self._frames = 0
        self._tick_times: list[int] = []
        self._error: str | None = None
        # output
        self._jpeg: bytes | None = None  # the newest JPEG the worker made
        self._jpeg_of = -1  # the mosaic version it shows
        self._jpeg_version = 0  # mosaics made (the feed's version)
        self._marks: dict[str, str] = {}  # each tile's words in the newest mosaic
        self._jpeg_wanted_until = 0
        self._cond: asyncio.Condition | None = None
        self._worker: PictureWorker | None = None
        self._files = asyncio.Lock()  # one switch_file at a time
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

    @property
    def worker_pid(self) -> int | None:
        """The picture worker's process id (None before start)."""
        return self._worker.pid if self._worker is not None else None

    def latest_jpeg(self) -> bytes | None:
        """The newest JPEG of a mosaic (None before the first); asking makes the next
        ticks JPEG theirs, so ask again after a tick for a fresh one."""
        self._jpeg_wanted_until = self._clock() + JPEG_WANTED_NS
        return self._jpeg

    async def latest_jpeg_async(self) -> bytes | None:
        """A JPEG of the newest mosaic, for the HTTP handlers: when nobody watched the
        newest one, it waits (at most a few ticks) for the next, which the worker then
        JPEGs; if none comes, the newest JPEG there is."""
        self._jpeg_wanted_until = self._clock() + JPEG_WANTED_NS
        if self._jpeg_of != self._jpeg_version and self._working():
            assert self._cond is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3.0 / self.fps + 1.0):
                    async with self._cond:
                        await self._cond.wait_for(
                            lambda: (
                                self._stopping
                                or not self._working()
                                or self._jpeg_of == self._jpeg_version
                            )
                        )
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

    def marks(self) -> dict[str, str]:
        """The words on each camera's tile in the newest mosaic, as the worker drew them
        ("" for a live picture; e.g. ``STALE 3 s``, ``BAD JPEG 65000x65000``)."""
        return dict(self._marks)

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
            frames_written=self._frames,
            jpegs=self._jpegs,
            clients=self._server.clients if self._server is not None else 0,
            error=self._problem(),
        )

    def _working(self) -> bool:
        """The worker makes mosaics (started, not gone)."""
        return self._worker is not None and self._worker.error is None and self._cond is not None

    def _problem(self) -> str | None:
        """Why the worker is gone, before anything it said about a file."""
        gone = self._worker.error if self._worker is not None else None
        return gone or self._error

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> LivePreview:
        """Start the picture worker, ticking, writing preview.mkv (if take_dir) and
        serving (if port is not None). A worker that cannot start is noted in
        :attr:`PreviewStats.error`: the page is served, without mosaics."""
        self._cond = asyncio.Condition()
        if self._port_wanted is not None:  # first: a port that cannot be had costs no worker
            server = PreviewServer(self, self.host, self._port_wanted)
            await server.start()
            self._server = server
        worker = self._worker = PictureWorker(self._setup)
        try:
            await worker.start(START_TIMEOUT_S)
            await self._open(self.take_dir)
        except PictureWorkerError as exc:
            self._error = str(exc)
        self._ticker.start()
        return self

    async def switch_file(self, folder: Path | None) -> None:
        """Finalize the current ``preview.mkv`` and, with ``folder``, begin a new one there
        (pts from 0): a console's preview runs for the whole session and writes one file
        per take. The worker does it between two ticks; a file that cannot be made is
        reported in :attr:`PreviewStats.error`, and the live feed goes on."""
        assert self._worker is not None, "start() first"
        self.take_dir = folder
        with contextlib.suppress(PictureWorkerError):  # noted in self._error
            await self._open(folder)

    async def _open(self, folder: Path | None) -> None:
        assert self._worker is not None
        async with self._files:
            try:
                answer = await self._worker.ask(OpenFile(folder, self._clock()), FILE_TIMEOUT_S)
            except PictureWorkerError as exc:
                self._error = str(exc)
                raise
            assert isinstance(answer, Opened)
            self._error, self._frames = answer.error, 0

    async def stop(self) -> None:
        """Stop ticking and serving; finalize preview.mkv and end the worker."""
        if self._stopping:
            return
        self._stopping = True
        self.relay.close()
        await self._ticker.stop()  # a running tick waits at most TICK_TIMEOUT_S
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()
        if self._server is not None:
            await self._server.stop()
        if self._worker is not None:
            error = await self._worker.close(FILE_TIMEOUT_S)
            self._error = self._error or error

    async def __aenter__(self) -> LivePreview:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- ticks --------------------------------------------------------------------------

    async def _tick(self) -> None:
        try:
            await self._tick_once()
        except (MmrecError, ValueError) as exc:
            # A preview problem must never reach the recorder: note it and carry on.
            self._error = f"preview tick failed: {exc}"

    async def _tick_once(self) -> None:
        worker = self._worker
        if worker is None or worker.error is not None or not len(self._mosaic):
            return
        jobs = self._mosaic.due(self._cpu_budget, self.fps, self._encode_ms)
        now = self._clock()
        clients = self._server.clients if self._server is not None else 0
        tiles = tuple(self._mosaic.tiles(now))
        request = Tick(
            now,
            self._mosaic.epoch,
            tiles,
            tuple(jobs),
            clients > 0 or now < self._jpeg_wanted_until,
        )
        try:
            # the request's JPEGs are references: the sender thread writes them out
            answer = await worker.ask(request, TICK_TIMEOUT_S)
        except PictureWorkerError as exc:
            # A preview problem must never reach the recorder: note it, mosaics stop.
            self._error = str(exc)
            assert self._cond is not None
            async with self._cond:
                self._cond.notify_all()  # a snapshot waiting for a JPEG: there is none
            return
        assert isinstance(answer, Ticked)
        self._frames = answer.frames
        if answer.failed is not None:
            self._error = answer.failed
            return
        if answer.error is not None:  # the file stopped being written: why
            self._error = answer.error
        self._mosaic.decoded(jobs, answer.results)
        self._marks = dict(zip((t.name for t in tiles), answer.marks, strict=False))
        self._encode_ms += (answer.encode_ms - self._encode_ms) * 0.2
        self._ticks += 1
        self._tick_times.append(self._clock())
        del self._tick_times[:-64]
        self._jpeg_version += 1
        if answer.jpeg is not None:
            self._jpeg, self._jpeg_of = answer.jpeg, self._jpeg_version
            self._jpegs += 1
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()
