"""One take recorded from a session's live feeds: its folder, its writers, its manifest.
Each camera's part of it (its frames of the span, its gaps, its manifest entry) is
:class:`~mmrec.session.takecamera.TakeCamera`; this module is the take's lifecycle.

A take is a span of the session timeline, ``[start, stop)``. A camera's part of it is
every frame *captured* at or after ``start`` and before ``stop`` (by the camera's clock
model, not by arrival), so all cameras start and stop together to within a frame period
whatever their latencies. ``start`` may lie in the past (pre-roll: frames still held in
memory by each feed go first) or in the future (a start agreed with other hosts). A frame
captured before ``stop`` may still be on its way when the stop is asked for: the take
waits, a bounded time, until every streaming camera has delivered a frame captured at or
after ``stop``.

Without a stop instant (``finish()`` after the feeds stopped: a one-take ``mmrec record``)
every frame received is written, as the camera sent it before the connection closed.

The disk: once a second (in a thread) every output folder is checked (there, same folder,
free space) and the manifest written into each; :class:`~mmrec.store.disk.DiskWatch`
turns that into ``disk``/``seconds_left`` (live, and in the manifest) and into events
when time runs low or a folder goes. A camera whose writing fails says so at once
(:class:`~mmrec.store.files.WriteChange`, from its writer thread): an alert, its state
(``disk-full``, ``folder-gone``, ``io-error`` instead of ``streaming``), and on recovery
the gap and the frames lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mmrec import __version__
from mmrec.errors import ConfigError, RecordingError
from mmrec.ingest.stream import CameraState
from mmrec.session.camera import CameraFeed
from mmrec.session.events import EventKind, EventLog
from mmrec.session.folders import DiskStatus, TakeFolders
from mmrec.session.outcome import Outcome, judge_take, strip_camera
from mmrec.session.takecamera import CameraStatus as CameraStatus  # the take's status rows
from mmrec.session.takecamera import TakeCamera
from mmrec.store.disk import CameraRate, Forecast
from mmrec.store.health import WriteChange
from mmrec.store.names import safe_name, unique_name
from mmrec.store.take import Manifest, PreviewInfo, TakeEvent
from mmrec.store.writer import DEFAULT_QUEUE_FRAMES, WriterPool
from mmrec.timeline.timecode import time_of_day_ns, timecode_at, utc_offset_s, zone_name

if TYPE_CHECKING:
    from mmrec.live.preview import LivePreview

MANIFEST_EVERY: Final = 1.0
STOP_GRACE_S: Final = 2.0  # at most this long for frames captured before the stop to arrive


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """How a take's files are written (shared by every camera of the take)."""

    segment_seconds: float = 0.0
    queue_frames: int = DEFAULT_QUEUE_FRAMES
    muxer: str = "mkv"
    direct_io: bool = True
    relays: tuple[Path, ...] = ()  # output folders that continue the take when one fills
    refine: bool = True  # refine every camera's clock over the whole take when it ends


class Recording:
    """A take being written into ``out/<take-id>/`` from a session's feeds."""

    def __init__(
        self,
        out: Path,
        *,
        start_mono_ns: int,
        origin_ns: int,
        wall_minus_mono_ns: int,
        pool: WriterPool,
        events: EventLog,
        options: WriteOptions | None = None,
        name: str | None = None,
    ) -> None:
        self.out = Path(out)
        self.options = options or WriteOptions()
        self.pool = pool
        self.events = events  # the session's log: the take's events are its span of it
        # One instant, on both clocks: pts 0 of the take timeline.
        self.start_monotonic_ns = start_mono_ns
        self.start_realtime_ns = start_mono_ns + wall_minus_mono_ns
        self.start_t_ns = start_mono_ns - origin_ns  # on the session timeline
        self.stop_t_ns: int | None = None
        self._origin_ns = origin_ns
        self._end_mono_ns: int | None = None
        started = dt.datetime.fromtimestamp(self.start_realtime_ns / 1e9, dt.UTC)
        base = started.astimezone().strftime("%Y%m%d-%H%M%S")
        if name:
            base += "-" + safe_name(name, max_len=40)
        self.id = base
        # The recorder's zone at the start: every timecode of the take is its time of day.
        offset = utc_offset_s(self.start_realtime_ns)
        self.time_of_day_ns = time_of_day_ns(self.start_realtime_ns, offset)
        self.timecode = timecode_at(self.start_realtime_ns, offset_s=offset)
        self._manifest = Manifest(
            take_id=self.id,
            started_utc=started.isoformat().replace("+00:00", "Z"),
            start_realtime_ns=self.start_realtime_ns,
            timecode=self.timecode,
            tool={"name": "mmrec", "version": __version__},
            utc_offset_s=offset,
            zone=zone_name(self.start_realtime_ns) or None,
        )
        self.dir = self.out / self.id
        self.folders = TakeFolders(self.out, self.options.relays)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cameras: dict[str, TakeCamera] = {}
        self.preview: LivePreview | None = None  # the session's, while it writes into this take
        self._updater: asyncio.Task[None] | None = None
        self._stop_updates = asyncio.Event()
        self.finished = False
        self._final: Manifest | None = None

    # lifecycle

    async def open(self) -> None:
        """Make the take folder (a unique name, the same in every output folder) and
        write the first manifest."""
        self._loop = asyncio.get_running_loop()
        self.id = self.folders.create(self.id)
        self.dir = self.folders.dir
        self._manifest = replace(
            self._manifest,
            take_id=self.id,
            relays=tuple(str(d) for d in self.folders.relay_dirs),
        )
        await asyncio.to_thread(self.folders.write_manifests, self._manifest)
        self._updater = asyncio.create_task(self._keep_manifest(), name=f"manifest:{self.id}")

    def add(self, feed: CameraFeed) -> str:
        """Record ``feed`` in this take from now on (and its pre-roll); returns its folder."""
        if self.finished:
            raise RecordingError("the take is finished")
        if feed.name in self._cameras:
            raise ConfigError(f"camera {feed.name!r} is already in this take")
        held = feed.preroll(self.start_t_ns)
        cam_dir = unique_name(feed.name, {c.dir for c in self._cameras.values()})
        cam = TakeCamera(self, feed, cam_dir, backlog=len(held))
        self._cameras[feed.name] = cam
        for p in held:
            cam.offer(p)
        feed.sink = cam.offer
        feed.probe_sink = cam.offer_probe
        feed.probes.hurry()  # the take's refinement wants many probes from its start
        st = cam.base
        if st.state != CameraState.STREAMING and st.last_error is not None:
            # away since before this take: its timeline starts with why
            self.events.add(EventKind.CONNECT_FAILED, st.last_error, feed.name)
        return cam_dir

    def dir_of(self, camera: str) -> str:
        return self._cameras[camera].dir

    async def stop(self, at_mono_ns: int, grace_s: float = STOP_GRACE_S) -> None:
        """Set the stop instant and wait (at most ``grace_s``) until every streaming camera
        has delivered a frame captured at or after it: the take's last frames are then
        exactly those captured before the stop."""
        self.stop_t_ns = at_mono_ns - self._origin_ns
        self._end_mono_ns = at_mono_ns
        waits = [
            asyncio.create_task(c.reached_stop.wait())
            for c in self._cameras.values()
            if c.feed.stats().state == CameraState.STREAMING
        ]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=grace_s)
            for t in pending:
                t.cancel()
            late = [c.feed.name for c in self._cameras.values() if not c.reached_stop.is_set()]
            for name in late:
                if self._cameras[name].feed.stats().state == CameraState.STREAMING:
                    self.events.add(
                        EventKind.TAKE,
                        f"no frame captured after the stop within {grace_s:g} s; "
                        "its last frames may be missing",
                        name,
                        at_mono_ns,  # about the stop: in the take's timeline, at its end
                    )

    async def finish(self) -> Manifest:
        """Close every writer (after what is queued), refine the clocks over the whole take
        (in a thread: ~1.3 s of CPU per camera-hour, see mmrec.timeline.refined), write the
        final manifest."""
        if self.finished:
            return self._final or self.manifest(final=True)
        self.finished = True
        if self._end_mono_ns is None:
            self._end_mono_ns = time.monotonic_ns()
        for cam in self._cameras.values():
            if cam.feed.sink == cam.offer:
                cam.feed.sink = None
            if cam.feed.probe_sink == cam.offer_probe:
                cam.feed.probe_sink = None
        self._stop_updates.set()
        try:
            await asyncio.gather(
                *(asyncio.to_thread(c.writer.close) for c in self._cameras.values())
            )
        finally:
            if self._updater is not None:
                # cooperative: the updater finishes the write it may be in, then returns
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._updater, timeout=10.0)
            end = self._end_mono_ns
            for cam in self._cameras.values():
                cam.finish(end - self.start_monotonic_ns, end)
            final = self.manifest(final=True)
            try:
                await asyncio.to_thread(self.folders.write_manifests, final, strict=True)
                # Finished on disk before the refinement: a crash during it (seconds for
                # long takes) leaves a finished take without refined_ns, which repair adds.
                if self.options.refine:
                    final = await asyncio.to_thread(self._refine, final)
                    await asyncio.to_thread(self.folders.write_manifests, final, strict=True)
            finally:
                self.folders.release()
            self._final = final
        return final

    def _refine(self, final: Manifest) -> Manifest:
        """The final manifest with every camera refined; never fails the take (a camera
        that cannot be refined keeps its live times, and an event says why)."""
        from mmrec.timeline.refined import refine_cameras  # numpy: only when a take ends

        try:
            return refine_cameras(self.dir, final)
        except Exception as exc:  # the recording is on disk: refinement must not cost it
            event = TakeEvent(final.duration_ns or 0, "clock", f"clock refinement failed: {exc!r}")
            return replace(final, events=(*final.events, event))

    # views

    def status(self) -> list[CameraStatus]:
        now_t = time.monotonic_ns() - self.start_monotonic_ns
        return [c.status(now_t) for c in self._cameras.values()]

    def log_gap(self, camera: str, start_t_ns: int, end_t_ns: int, detail: str) -> None:
        """A gap in a camera's frames, logged when its length is known (its end), with
        where it began on the take timeline."""
        self.events.add(
            EventKind.GAP,
            f"{detail}, from {start_t_ns / 1e9:.2f} s",
            camera,
            self.start_monotonic_ns + end_t_ns,
        )

    @property
    def disk(self) -> DiskStatus:
        """Free space and time left on every output folder (updated once a second)."""
        return self.folders.status()

    async def announce_forecast(self) -> Forecast:
        """How long the free space lasts for the take's cameras: an event, and
        ``disk.forecast``. Call once the cameras are known; a ``statvfs`` per folder, in a
        thread (a hung network mount must not stop the event loop)."""
        rates = [camera_rate(c.feed) for c in self._cameras.values()]
        fc = await asyncio.to_thread(self.folders.make_forecast, rates)
        where = " + relay folders" if self.folders.relay_dirs else ""
        self.events.add(EventKind.DISK, f"{self.dir}{where}: {fc.describe()}")
        return fc

    def manifest(self, *, final: bool = False) -> Manifest:
        now_mono = self._end_mono_ns if final and self._end_mono_ns else time.monotonic_ns()
        now_t = now_mono - self.start_monotonic_ns
        end = self._end_mono_ns
        events = _take_events(self.events, self.start_monotonic_ns, end)
        causes: dict[str, list[str]] = {}
        for e in events:
            if e.kind == EventKind.DISCONNECTED and e.camera is not None:
                causes.setdefault(e.camera, []).append(e.detail)
        cams = tuple(
            c.entry(now_t, tuple(causes.get(name, ()))) for name, c in self._cameras.items()
        )
        take = judge_take([(c.name, Outcome(c.outcome or Outcome.NOTHING)) for c in cams])
        m = replace(
            self._manifest,
            cameras=cams,
            events=tuple(events),
            preview=_preview_info(self.preview),
            outcome=take.outcome,
            outcome_detail=take.detail,
            disk=self.folders.watch.infos,
            seconds_left=self.folders.watch.seconds_left,
        )
        if final:
            now_rt = time.time_ns()
            m = replace(
                m,
                state="finished",
                ended_utc=dt.datetime.fromtimestamp(now_rt / 1e9, dt.UTC)
                .isoformat()
                .replace("+00:00", "Z"),
                duration_ns=now_t,
            )
        return m

    async def _keep_manifest(self) -> None:
        """Once a second: what the writers lost, the disks (said when they change), the
        manifest into every folder."""
        reported: set[str] = set()  # why folders refused the manifest, as last said
        while not self._stop_updates.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_updates.wait(), MANIFEST_EVERY)
            if self._stop_updates.is_set():
                return
            for cam in self._cameras.values():
                cam.losses.look(cam.writer.stats())
            checks = await asyncio.to_thread(self.folders.check)
            writers = [c.writer.stats() for c in self._cameras.values()]
            active = [any(w.folder == i for w in writers) for i in range(len(checks))]
            written = sum(w.bytes for w in writers)
            for notice in self.folders.watch.update(time.monotonic_ns(), written, checks, active):
                self.events.add(EventKind.ALERT if notice.alert else EventKind.DISK, notice.text)
            errors = set(await asyncio.to_thread(self.folders.write_manifests, self.manifest()))
            for text in sorted(errors - reported):  # once per cause, not every second
                self.events.add(EventKind.DISK, text)
            if reported and not errors:
                self.events.add(EventKind.DISK, "the manifest is written again")
            reported = errors

    def write_changed(self, change: WriteChange) -> None:
        """A camera's writing failed or recovered (called in its writer thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # a loop closing as the take ends
            loop.call_soon_threadsafe(self._record_change, change)

    def _record_change(self, change: WriteChange) -> None:
        kind = EventKind.ALERT if change.state.failing else EventKind.DISK
        detail = strip_camera(change.detail, change.camera)  # the event names the camera
        at = change.mono_ns
        if self._end_mono_ns is not None:
            at = min(at, self._end_mono_ns)  # said as the files close: part of the take
        self.events.add(kind, detail, change.camera, mono_ns=at)
        if change.gap is not None:
            a, b = change.gap
            detail = f"no frames written for {(b - a) / 1e9:.2f} s ({change.lost} lost to the disk)"
            self.log_gap(change.camera, a, b, detail)


def camera_rate(feed: CameraFeed) -> CameraRate:
    """A camera's measured write rate, if it has streamed for a couple of seconds."""
    st = feed.stats()
    if st.first_frame_ns is not None and st.last_frame_ns is not None:
        span = st.last_frame_ns - st.first_frame_ns
        if span >= 2_000_000_000 and st.frames > 1:
            return CameraRate(feed.name, st.bytes * 1e9 / span)
    return CameraRate(feed.name)


def _take_events(log: EventLog, start_mono_ns: int, end_mono_ns: int | None) -> list[TakeEvent]:
    """The take's span of the session's events, its stop instant included (what the stop
    itself logs is stamped there), on the take timeline in order of time (a gap is logged
    when it ends, stamped then)."""
    return sorted(
        (
            TakeEvent(e.mono_ns - start_mono_ns, str(e.kind), e.detail, e.camera)
            for e in log.between(start_mono_ns, None if end_mono_ns is None else end_mono_ns + 1)
        ),
        key=lambda e: e.t_ns,
    )


def _preview_info(preview: LivePreview | None) -> PreviewInfo | None:
    """The manifest's record of the live preview written into the take, if any."""
    if preview is None:
        return None
    from mmrec.live.preview import PREVIEW_FILE

    st = preview.stats()
    return PreviewInfo(
        file=PREVIEW_FILE,
        fps=round(st.fps, 2),
        ticks=st.ticks,
        tiles_decoded=st.tiles_decoded,
        tiles_skipped=st.tiles_skipped,
        late_ticks=st.late_ticks,
        error=st.error,
        refused=st.refused,
    )
