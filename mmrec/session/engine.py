"""The session: every camera kept connected, clocks warm, preview live; takes cut from it.

:class:`Session` is the recording engine. It runs for as long as a shoot (a console) or
a single take (``mmrec record``) needs it::

    async with Session(ingest_config=...) as session:
        session.add_camera("A-wide", "http://192.168.43.21:8081/stream")
        await session.join([CameraRequest("192.168.43.22")])   # named by its /status
        rec = await session.start_take(Path("takes"), name="scene-12")
        ...
        manifest = await session.stop_take()      # stops on an instant, waits for stragglers

One timeline for everything: ``origin_ns`` (the session's start on the monotonic clock)
is 0 of the session timeline, on which every camera's clock model places every frame.
A take is a span of it (see :mod:`mmrec.session.recording`). Cameras may be added at any
time (hot-join); a camera that disconnects is retried with backoff and keeps its place.
:meth:`Session.join` asks each new camera who it is first (:mod:`mmrec.session.identify`):
its name when given only an address, its model, its frame rate (its files' timecode
counts at it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from mmrec.errors import ConfigError, MmrecError, RecordingError
from mmrec.ingest.stream import IngestConfig, StreamTarget
from mmrec.session.camera import CameraFeed, FeedOptions, stop_feeds
from mmrec.session.events import Event, EventKind, EventLog
from mmrec.session.identify import IDENTIFY_TIMEOUT_S, CameraRequest, identify_all
from mmrec.session.recording import Recording, WriteOptions
from mmrec.store.take import Manifest
from mmrec.store.writer import DEFAULT_RUN, DEFAULT_SYNC_INTERVAL, WriterPool
from mmrec.wire.url import short_name

if TYPE_CHECKING:
    from mmrec.live.preview import LivePreview


@dataclass(frozen=True, slots=True)
class PreviewOptions:
    """The live tiled preview (``preview.mkv`` + a local MJPEG feed and page)."""

    port: int | None = 8090  # on 127.0.0.1; a taken port falls back to a free one; None:
    # not served by the preview itself (the console serves its mosaic on its own page)
    fps: float = 10.0
    size: tuple[int, int] = (1920, 1080)


class Session:
    """Cameras, their clocks and the live preview for as long as it runs; takes on demand."""

    def __init__(
        self,
        *,
        ingest_config: IngestConfig | None = None,
        probe_clocks: bool = True,
        writer_threads: int = 4,
        direct_io: bool = True,
        preroll_seconds: float = 0.0,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
        write_run: int = DEFAULT_RUN,
        node_events: bool = False,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        if preroll_seconds < 0:
            raise ConfigError("pre-roll must be 0 or more seconds")
        # One instant, read on both clocks: 0 of the session timeline.
        realtime = time.time_ns()
        self.origin_ns = time.monotonic_ns()
        self.wall_minus_mono_ns = realtime - self.origin_ns
        self.feed_options = FeedOptions(
            origin_ns=self.origin_ns,
            wall_minus_mono_ns=self.wall_minus_mono_ns,
            ingest=ingest_config or IngestConfig(),
            probe_clocks=probe_clocks,
            direct_io=direct_io,
            preroll_ns=int(preroll_seconds * 1e9),
            node_events=node_events,
        )
        self.events = EventLog()
        if on_event is not None:
            self.events.subscribe(on_event)
        # every camera's files made durable at least every sync_interval (0: never); its
        # frames written in runs of up to write_run (one system call each)
        self.writer_pool = WriterPool(writer_threads, sync_interval=sync_interval, run=write_run)
        self.feeds: dict[str, CameraFeed] = {}
        self.recording: Recording | None = None
        self.preview: LivePreview | None = None
        self._closed = False

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # cameras

    def add_camera(
        self,
        name: str,
        url: str,
        *,
        model: str | None = None,
        role: str | None = None,
        fallbacks: Sequence[str] = (),
        nominal_rate: Fraction | None = None,
    ) -> CameraFeed:
        """Connect a camera and keep it connected; it joins the take being recorded, if any.

        ``fallbacks`` are other URLs of the same camera (e.g. its Tailscale address),
        tried in turn when the current one does not answer. ``nominal_rate``: the rate
        the camera runs at, if known (:meth:`join` asks the camera).
        """
        if self._closed:
            raise RecordingError("the session is closed")
        if name in self.feeds:
            raise ConfigError(f"camera {name!r} is already in this session")
        target = StreamTarget.from_url(name, url)
        others = [StreamTarget.from_url(name, u) for u in fallbacks]
        feed = CameraFeed(
            name,
            target,
            self.feed_options,
            self.events,
            model=model,
            role=role,
            fallbacks=others,
            nominal_rate=nominal_rate,
        )
        self.feeds[name] = feed
        feed.preview = self.preview
        if self.preview is not None:
            self.preview.add_camera(name)
        feed.start()
        where = ""
        if self.recording is not None:
            where = f" into {self.recording.add(feed)}/"
        self.events.add(EventKind.CAMERA_ADDED, f"{target.url}{where}", name)
        return feed

    async def join(
        self, requests: Sequence[CameraRequest], timeout: float = IDENTIFY_TIMEOUT_S
    ) -> list[CameraFeed]:
        """Add cameras after asking each its ``/status`` (all at once, within ``timeout``):
        a camera given without a name is named by its deviceName (its address if it does
        not answer), and its model and frame rate are recorded. Added in the order given.
        """
        targets = [StreamTarget.from_url(r.name or short_name(r.url), r.url) for r in requests]
        found = await identify_all(targets, timeout)
        feeds = []
        for req, ident in zip(requests, found, strict=True):
            name = req.name
            if name is None:
                name = ident.name or short_name(req.url)
                if name in self.feeds:  # two nodes with one deviceName: tell them apart
                    name = f"{name}@{short_name(req.url)}"
            if ident.error is not None:
                self.note(f"no identity from /status ({ident.error})", EventKind.NOTE, name)
            feeds.append(
                self.add_camera(
                    name,
                    req.url,
                    model=req.model or ident.model,
                    role=req.role,
                    fallbacks=req.fallbacks,
                    nominal_rate=ident.rate,
                )
            )
        return feeds

    def has_camera(self, name: str) -> bool:
        return name in self.feeds

    def retarget(self, name: str, url: str) -> None:
        """A camera moved (new address): reconnect to the new URL, same folder and files."""
        feed = self.feeds[name]
        target = StreamTarget.from_url(name, url)
        feed.retarget(target)
        self.events.add(EventKind.CAMERA_MOVED, target.url, name)

    def note(self, text: str, kind: EventKind = EventKind.NOTE, camera: str | None = None) -> None:
        """Record an event (shown, and kept in the manifest of the take it falls in)."""
        self.events.add(kind, text, camera)

    # takes

    async def start_take(
        self,
        out: Path,
        *,
        name: str | None = None,
        at_mono_ns: int | None = None,
        write: WriteOptions | None = None,
    ) -> Recording:
        """Begin a take at ``at_mono_ns`` (default: now; earlier for pre-roll, later for an
        agreed start): every camera's first frame is the first captured at or after it."""
        if self._closed:
            raise RecordingError("the session is closed")
        if self.recording is not None:
            raise RecordingError(f"take {self.recording.id} is still recording")
        start = time.monotonic_ns() if at_mono_ns is None else at_mono_ns
        rec = Recording(
            out,
            start_mono_ns=start,
            origin_ns=self.origin_ns,
            wall_minus_mono_ns=self.wall_minus_mono_ns,
            pool=self.writer_pool,
            events=self.events,
            options=write,
            name=name,
        )
        for feed in self.feeds.values():
            feed.hold(rec.start_t_ns)  # frames arriving while the take's folder is made
        try:
            await rec.open()
        except BaseException:
            for feed in self.feeds.values():
                feed.preroll(1 << 62)  # ends the holding
            raise
        self.recording = rec
        for feed in self.feeds.values():
            rec.add(feed)
        if self.preview is not None:  # a session-long preview: this take's preview.mkv
            await self.preview.switch_file(rec.dir)
            rec.preview = self.preview
        self.events.add(EventKind.TAKE, f"take {rec.id} started into {rec.dir}", mono_ns=start)
        if self.feeds:
            await rec.announce_forecast()  # free space, and how long it lasts for these cameras
        return rec

    async def stop_take(self, at_mono_ns: int | None = None) -> Manifest:
        """End the take at ``at_mono_ns`` (default: now): every camera's last frame is the
        last captured before it. Returns the final manifest."""
        rec = self.recording
        if rec is None:
            raise RecordingError("no take is recording")
        stop = time.monotonic_ns() if at_mono_ns is None else at_mono_ns
        await rec.stop(stop)
        self.events.add(EventKind.TAKE, f"take {rec.id} stopped", mono_ns=stop)
        if self.preview is not None:
            try:
                await self.preview.switch_file(None)  # preview.mkv of this take is complete
            except Exception as exc:  # the preview must never cost the recording
                self.note(f"preview: could not finish its file: {exc!r}")
        return await self._finish(rec)

    async def _finish(self, rec: Recording) -> Manifest:
        try:
            return await rec.finish()
        finally:
            if self.recording is rec:
                self.recording = None

    # preview

    async def start_preview(self, folder: Path | None, opts: PreviewOptions) -> LivePreview | None:
        """Start the live mosaic (``preview.mkv`` in ``folder``; None: no file until a take
        starts, then one per take); a taken port falls back to any free one, and a preview
        that cannot start at all is reported and skipped: recording goes on regardless."""
        from mmrec.live.preview import LivePreview

        ports = (None,) if opts.port is None else dict.fromkeys((opts.port, 0))
        for port in ports:
            preview = LivePreview(folder, size=opts.size, fps=opts.fps, port=port)
            try:
                await preview.start()
            except MmrecError as exc:
                after = "; trying any free port" if port else ""
                self.note(f"{exc}{after}")
                await preview.stop()
                continue
            self.preview = preview
            for name, feed in self.feeds.items():
                preview.add_camera(name)
                feed.preview = preview
            if self.recording is not None:
                self.recording.preview = preview
            return preview
        self.note("preview: not started; recording without it")
        return None

    # lifecycle

    async def close(self) -> Manifest | None:
        """Stop the take being recorded (now: its frames captured before now are all
        written), every camera, the preview and the writer threads. Returns the take's
        manifest, if one was recording.

        Each step is guarded: a failing preview or probe never keeps the writers from
        finalizing their files, nor the final manifest from being written.
        """
        if self._closed:
            return None
        self._closed = True
        manifest: Manifest | None = None
        try:
            rec = self.recording
            if rec is not None and rec.stop_t_ns is None:
                stop = time.monotonic_ns()
                await rec.stop(stop)
                self.events.add(EventKind.TAKE, f"take {rec.id} stopped", mono_ns=stop)
            await stop_feeds(list(self.feeds.values()))  # a frame already coming is kept
            if self.preview is not None:
                try:
                    await self.preview.stop()
                except Exception as exc:  # the preview must never cost the recording
                    self.note(f"preview: could not stop cleanly: {exc!r}")
        finally:
            try:
                if self.recording is not None:
                    manifest = await self._finish(self.recording)
            finally:
                await asyncio.to_thread(self.writer_pool.shutdown)
        return manifest
