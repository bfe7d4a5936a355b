"""A take: every camera's ingest wired to its writer, and the manifest kept current.

:class:`Take` is the programmatic API (tests and ``mmrec record`` use it)::

    async with Take(out_dir) as take:
        take.add_camera("A-wide", "http://192.168.43.21:8081/stream")
        await asyncio.sleep(60)
    # every file is finalized here; take.dir / "manifest.json" says what was recorded

Cameras may be added at any time (hot-join); a camera that disconnects is retried with
backoff and keeps its folder, its files and its place on the timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from mmrec import __version__
from mmrec.discover import (
    CameraAdded,
    CameraAddressChanged,
    CameraLost,
    DiscoveryEvent,
    DiscoveryWarning,
)
from mmrec.errors import CameraError, ConfigError, MmrecError, RecordingError
from mmrec.ingest.status import StatusProbe
from mmrec.ingest.stream import (
    CameraIngest,
    IngestConfig,
    IngestStats,
    Received,
    StreamTarget,
)
from mmrec.live.preview import PREVIEW_FILE, LivePreview
from mmrec.store import payload
from mmrec.store.names import safe_name, unique_name
from mmrec.store.take import (
    INDEX,
    CameraEntry,
    Manifest,
    PreviewInfo,
    write_manifest,
)
from mmrec.store.writer import DEFAULT_QUEUE_FRAMES, CameraWriter, Frame, WriterPool, WriterStats
from mmrec.timeline.align import CameraClock
from mmrec.timeline.timecode import timecode_at

GAP_NS: Final = 1_000_000_000  # no frame for 1 s: a gap in the camera's coverage
MANIFEST_EVERY: Final = 1.0
PROBE_EVERY: Final = 1.0


@dataclass(frozen=True, slots=True)
class PreviewOptions:
    """The live tiled preview while recording (``preview.mkv`` + a local MJPEG feed)."""

    port: int = 8090  # on 127.0.0.1; a taken port falls back to a free one
    fps: float = 10.0
    size: tuple[int, int] = (1920, 1080)


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A live snapshot of one camera in a take (for the terminal view and --json)."""

    name: str
    dir: str
    url: str
    ingest: IngestStats
    writer: WriterStats
    gaps: int


class _Camera:
    def __init__(
        self,
        take: Take,
        name: str,
        cam_dir: str,
        target: StreamTarget,
        model: str | None,
        role: str | None,
        fallbacks: Sequence[StreamTarget] = (),
    ) -> None:
        self.name = name
        self.dir = cam_dir
        self.target = target
        self.model = model
        self.role = role
        self._take = take
        self.writer = CameraWriter(
            name,
            take.dir,
            cam_dir,
            segment_ns=int(take.segment_seconds * 1e9),
            queue_frames=take.queue_frames,
            metadata={"timecode": take.timecode, "title": name, "comment": f"mmrec take {take.id}"},
            pool=take.writer_pool,
            muxer=take.muxer,
            direct_io=take.direct_io,
        )
        direct = take.direct_io and take.muxer == "mkv"
        self.ingest = CameraIngest(
            target,
            self._on_frame,
            take.ingest_config,
            on_state=self._on_state,
            fallbacks=fallbacks,
            # frames land in block-aligned memory, so direct writes need no further copy
            payload_alloc=payload.aligned if direct else None,
        )
        self.clock = CameraClock(
            take.start_monotonic_ns,
            take.start_realtime_ns - take.start_monotonic_ns,
            expect_probes=take.probe_clocks,
        )
        self.gaps: list[tuple[int, int]] = []
        self._last_ns: int | None = None
        self._conn = 0
        self.task: asyncio.Task[None] | None = None
        self.probe_task: asyncio.Task[None] | None = None
        self._prober: StatusProbe | None = None
        self.probes_ok = 0

    async def probe_clock(self) -> None:
        """NTP-style round trips to the node's ``/status`` clock, about once a second.

        Each answer gives an independent sample (t0, device clock, t1) that lets the clock
        model target the capture instant rather than capture + min delay. A node whose
        ``/status`` fails or has no clock is asked again only rarely. The body is capped
        and the request timed (mmrec.ingest.status), so a hostile node costs nothing more.
        """
        try:
            await self._probe_loop()
        finally:
            if self._prober is not None:
                self._prober.close()

    async def _probe_loop(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(PROBE_EVERY if failures < 3 else PROBE_EVERY * 10)
            if self.ingest.stats().state != "streaming":
                continue
            t = self.ingest.target
            if self._prober is None or (self._prober.host, self._prober.port) != (t.host, t.port):
                if self._prober is not None:
                    self._prober.close()
                self._prober = StatusProbe(t.host, t.port, self.name)
            try:
                t0, t1, status = await self._prober.probe()
            except CameraError:
                failures += 1
                continue
            if status.device_ns is None:
                failures += 1
                continue
            failures = 0
            self.probes_ok += 1
            self.clock.probe(t0, status.device_ns, t1)

    def _on_frame(self, rx: Received) -> None:
        # Hot path, on the event loop: the clock model (a few µs) and a queue put.
        t = rx.arrival_ns - self._take.start_monotonic_ns
        conn = self.ingest.connects
        if self._last_ns is not None and (t - self._last_ns > GAP_NS or conn != self._conn):
            # a silence, or a reconnect however quick: frames were missed in between
            self.gaps.append((self._last_ns, t))
        self._last_ns = t
        self._conn = conn
        aligned = self.clock.place(rx.arrival_ns, rx.device_ts)
        self.writer.offer(Frame(rx.data, aligned.t_ns, t, rx.device_ts))
        preview = self._take.preview
        if preview is not None:
            preview.update(self.name, rx.data, aligned.t_ns)  # a reference, no decode here

    def _on_state(self, _ingest: CameraIngest, state: str) -> None:
        preview = self._take.preview
        if preview is not None:
            preview.set_state(self.name, state)

    def entry(self) -> CameraEntry:
        w = self.writer.stats()
        i = self.ingest.stats()
        gaps = list(self.gaps)
        if i.state != "streaming" and self._last_ns is not None:
            # currently not receiving: an open gap up to now
            now = time.monotonic_ns() - self._take.start_monotonic_ns
            if now - self._last_ns > GAP_NS:
                gaps.append((self._last_ns, now))
        return CameraEntry(
            name=self.name,
            dir=self.dir,
            url=self.ingest.target.url,
            model=self.model,
            role=self.role,
            segments=w.segments,
            index=f"{self.dir}/{INDEX}",
            frames=w.frames,
            bytes=w.bytes,
            dropped=w.dropped,
            reconnects=i.reconnects,
            skipped_parts=i.skipped_parts,
            truncated=i.truncated,
            width=w.width,
            height=w.height,
            first_pts=w.first_pts,
            last_pts=w.last_pts,
            state=i.state,
            last_error=w.error or i.last_error,
            clock=self.clock.info(),
            gaps=tuple(gaps),
            io=None if w.direct_io is None else ("direct" if w.direct_io else "buffered"),
        )

    def status(self) -> CameraStatus:
        return CameraStatus(
            self.name,
            self.dir,
            self.ingest.target.url,
            self.ingest.stats(),
            self.writer.stats(),
            len(self.gaps),
        )


class Take:
    """Record any number of cameras into ``out/<take-id>/`` until closed."""

    def __init__(
        self,
        out: Path,
        *,
        name: str | None = None,
        segment_seconds: float = 0.0,
        ingest_config: IngestConfig | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        on_event: Callable[[str], None] | None = None,
        probe_clocks: bool = True,
        writer_threads: int = 4,
        muxer: str = "mkv",
        preview: PreviewOptions | None = None,
        direct_io: bool = True,
    ) -> None:
        self.out = Path(out)
        self.muxer = muxer
        self.direct_io = direct_io
        self.preview_options = preview
        self.preview: LivePreview | None = None
        self.segment_seconds = segment_seconds
        self.ingest_config = ingest_config or IngestConfig()
        self.queue_frames = queue_frames
        self._on_event = on_event
        # One instant, read on both clocks: pts 0 of the take timeline.
        self.start_realtime_ns = time.time_ns()
        self.start_monotonic_ns = time.monotonic_ns()
        started = dt.datetime.fromtimestamp(self.start_realtime_ns / 1e9, dt.UTC)
        local = started.astimezone()
        base = local.strftime("%Y%m%d-%H%M%S")
        if name:
            base += "-" + safe_name(name, max_len=40)
        self.id = base
        self.timecode = timecode_at(self.start_realtime_ns)
        self._manifest = Manifest(
            take_id=self.id,
            started_utc=started.isoformat().replace("+00:00", "Z"),
            start_realtime_ns=self.start_realtime_ns,
            timecode=self.timecode,
            tool={"name": "mmrec", "version": __version__},
        )
        self.dir = self.out / self.id
        self._cameras: dict[str, _Camera] = {}
        self._updater: asyncio.Task[None] | None = None
        self.probe_clocks = probe_clocks
        self._closed = False
        self.events: list[str] = []
        self.writer_pool = WriterPool(writer_threads)
        self._stop_updates = asyncio.Event()

    async def __aenter__(self) -> Take:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            n = 1
            while True:
                try:
                    self.dir.mkdir()
                    break
                except FileExistsError:
                    n += 1
                    self.id = f"{self._manifest.take_id}-{n}"
                    self.dir = self.out / self.id
        except OSError as exc:
            raise RecordingError(
                f"cannot create take folder in {self.out}: {exc.strerror}"
            ) from exc
        self._manifest = replace(self._manifest, take_id=self.id)
        await asyncio.to_thread(write_manifest, self.dir, self._manifest)
        self._updater = asyncio.create_task(self._keep_manifest(), name="manifest")
        if self.preview_options is not None:
            await self._start_preview(self.preview_options)
        return self

    async def _start_preview(self, opts: PreviewOptions) -> None:
        """Start the live mosaic; a taken port falls back to any free one, and a preview
        that cannot start at all is reported and skipped: recording goes on regardless."""
        for port in dict.fromkeys((opts.port, 0)):
            preview = LivePreview(self.dir, size=opts.size, fps=opts.fps, port=port)
            try:
                await preview.start()
            except MmrecError as exc:
                self.note(f"preview on port {port}: {exc}")
                await preview.stop()
                continue
            self.preview = preview
            for name in self._cameras:
                preview.add_camera(name)
            return
        self.note("preview: not started; recording without it")

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # cameras

    def add_camera(
        self,
        name: str,
        url: str,
        *,
        model: str | None = None,
        role: str | None = None,
        fallbacks: Sequence[str] = (),
    ) -> str:
        """Start recording a camera; returns its folder name. Names must be unique.

        ``fallbacks`` are other URLs of the same camera (e.g. its Tailscale address),
        tried in turn when the current one does not answer.
        """
        if self._closed:
            raise RecordingError("the take is closed")
        if name in self._cameras:
            raise ConfigError(f"camera {name!r} is already in this take")
        target = StreamTarget.from_url(name, url)
        others = [StreamTarget.from_url(name, u) for u in fallbacks]
        cam_dir = unique_name(name, {c.dir for c in self._cameras.values()})
        cam = _Camera(self, name, cam_dir, target, model, role, others)
        self._cameras[name] = cam
        cam.task = asyncio.create_task(cam.ingest.run(), name=f"ingest:{name}")
        if self.preview is not None:
            self.preview.add_camera(name)
        if self.probe_clocks:
            cam.probe_task = asyncio.create_task(cam.probe_clock(), name=f"probe:{name}")
        self._event(f"camera {name!r}: recording {target.url} into {cam_dir}/")
        return cam_dir

    @property
    def closed(self) -> bool:
        return self._closed

    def has_camera(self, name: str) -> bool:
        return name in self._cameras

    def retarget(self, name: str, url: str) -> None:
        """A camera moved (new address): reconnect to the new URL, same folder and files."""
        cam = self._cameras[name]
        cam.target = StreamTarget.from_url(name, url)
        cam.ingest.retarget(cam.target)

    def status(self) -> list[CameraStatus]:
        return [c.status() for c in self._cameras.values()]

    def manifest(self, *, final: bool = False) -> Manifest:
        cams = tuple(c.entry() for c in self._cameras.values())
        m = replace(self._manifest, cameras=cams, events=tuple(self.events[-200:]))
        if self.preview is not None:
            st = self.preview.stats()
            m = replace(
                m,
                preview=PreviewInfo(
                    file=PREVIEW_FILE,
                    fps=round(st.fps, 2),
                    ticks=st.ticks,
                    tiles_decoded=st.tiles_decoded,
                    tiles_skipped=st.tiles_skipped,
                    late_ticks=st.late_ticks,
                    error=st.error,
                ),
            )
        if final:
            now_rt = time.time_ns()
            m = replace(
                m,
                state="finished",
                ended_utc=dt.datetime.fromtimestamp(now_rt / 1e9, dt.UTC)
                .isoformat()
                .replace("+00:00", "Z"),
                duration_ns=time.monotonic_ns() - self.start_monotonic_ns,
            )
        return m

    # lifecycle

    async def close(self) -> Manifest:
        """Stop every camera, finalize every file and write the final manifest.

        Each step is guarded: a failing preview or probe never keeps the writers from
        finalizing their files, nor the final manifest from being written.
        """
        if self._closed:
            return self.manifest(final=True)
        self._closed = True
        self._stop_updates.set()
        try:
            for cam in self._cameras.values():
                cam.ingest.stop(finish_part=True)  # a frame already coming is kept
                if cam.probe_task is not None:
                    cam.probe_task.cancel()
            tasks = [c.task for c in self._cameras.values() if c.task is not None]
            tasks += [c.probe_task for c in self._cameras.values() if c.probe_task is not None]
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=2.0)
                for t in pending:
                    t.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=1.0)
            if self.preview is not None:
                try:
                    await self.preview.stop()
                except Exception as exc:  # the preview must never cost the recording
                    self.note(f"preview: could not stop cleanly: {exc!r}")
        finally:
            await asyncio.gather(
                *(asyncio.to_thread(c.writer.close) for c in self._cameras.values())
            )
            await asyncio.to_thread(self.writer_pool.shutdown)
            if self._updater is not None:
                # cooperative: the updater finishes the write it may be in, then returns
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._updater, timeout=10.0)
            final = self.manifest(final=True)
            await asyncio.to_thread(write_manifest, self.dir, final)
        return final

    async def _keep_manifest(self) -> None:
        while not self._stop_updates.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_updates.wait(), MANIFEST_EVERY)
            if self._stop_updates.is_set():
                return
            try:
                await asyncio.to_thread(write_manifest, self.dir, self.manifest())
            except RecordingError as exc:
                self._event(str(exc))

    def note(self, text: str) -> None:
        """Record an event in the manifest's ``events`` and show it."""
        self.events.append(text)
        self._event(text)

    def _event(self, text: str) -> None:
        if self._on_event is not None:
            self._on_event(text)


def default_out() -> Path:
    return Path(os.environ.get("MMREC_OUT", "takes"))


async def follow_discovery(
    take: Take,
    events: AsyncIterator[DiscoveryEvent],
    *,
    skip: frozenset[tuple[str, int]] = frozenset(),
    report_unreachable: Callable[[str], None] | None = None,
) -> None:
    """Record every camera discovery finds, for as long as ``events`` runs.

    A camera that joins mid-take gets its folder and manifest entry from that moment; one
    that changes address is reconnected at the new one; one that is lost keeps retrying
    with backoff and, when found again, continues in the same folder and files (its gap
    is in the index and the manifest). Cameras whose ``(host, port)`` is in ``skip`` are
    already recorded from a URL given by hand.
    """
    async for ev in events:
        if take.closed:
            return
        try:
            _follow_one(take, ev, skip)
        except MmrecError as exc:  # e.g. disk full at a hot-join: say so, keep following
            take.note(f"discovery: {exc}")


def _follow_one(take: Take, ev: DiscoveryEvent, skip: frozenset[tuple[str, int]]) -> None:
    match ev:
        case CameraAdded(camera=cam) | CameraAddressChanged(camera=cam):
            if (cam.host, cam.port) in skip:
                return
            if take.has_camera(cam.id):
                take.retarget(cam.id, cam.stream_url)
                take.note(f"camera {cam.id!r}: {type(ev).__name__} -> {cam.stream_url}")
            else:
                take.add_camera(
                    cam.id, cam.stream_url, model=cam.model or None, role=cam.role or None
                )
        case CameraLost(camera=cam):
            if take.has_camera(cam.id):
                take.note(f"camera {cam.id!r}: lost by discovery; retrying")
        case DiscoveryWarning():
            take.note(f"discovery: {ev.subject}: {ev.message}")
