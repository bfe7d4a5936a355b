"""The shoot: a session that runs all day, takes cut from it on the operator's word.

:class:`Shoot` owns the :class:`~mmrec.session.engine.Session` (cameras connected and
clocks warm across takes, each node's ``/events`` followed), the live preview (one
``preview.mkv`` per take, the mosaic and one-camera relays for the page), discovery's
follower (hot-join, moved cameras), the output folders' watch between takes, the slate,
the alerts and the list of takes. Once a second it samples every camera's counters
(rates), evaluates the alerts and publishes a new
:class:`~mmrec.console.view.ConsoleState`; events (a camera lost, a take started, a
node's own event) publish one at once. After each take its contact sheet is made in a
niced child process (:class:`_SheetMaker`). What the engine judges itself, the console
shows as it is: a slow camera (the ingest's verdict), the disk (the take's folders as
its recording checks them; between takes the output folders by the same rules), a
camera whose frames are not written. The web side (:mod:`mmrec.console.web`) only reads
:meth:`state` and calls the actions; JSON is made there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import multiprocessing
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Final

from mmrec.config import CameraSpec
from mmrec.console.alerts import AlertBook, AlertKind
from mmrec.console.devices import DeviceView, device_map
from mmrec.console.diskpanel import DiskPanel
from mmrec.console.slate import Slate
from mmrec.console.takes import take_summary
from mmrec.console.view import (
    AlertRules,
    ConsoleState,
    EventView,
    RateMeter,
    RecordingView,
    TakeSummary,
    Thresholds,
    camera_view,
)
from mmrec.discover import Discovery
from mmrec.errors import MmrecError, RecordingError
from mmrec.ingest.command import Command, CommandAnswer, CommandTarget, fan_out
from mmrec.ingest.stream import CameraState, IngestConfig
from mmrec.live.preview import LivePreview, nice_worker
from mmrec.session.camera import CameraFeed
from mmrec.session.engine import PreviewOptions, Session
from mmrec.session.events import Event, EventKind
from mmrec.session.folders import OutputFolders
from mmrec.session.identify import CameraRequest
from mmrec.session.recording import WriteOptions
from mmrec.store.take import ClockInfo, Manifest
from mmrec.store.writer import DEFAULT_RUN, DEFAULT_SYNC_INTERVAL
from mmrec.timeline.timecode import timecode_at

TICK_S: Final = 1.0
EVENTS_SHOWN: Final = 60
TAKES_KEPT: Final = 500
CONTACT_FILE: Final = "proxies/contact-sheet.jpg"  # where mmrec proxy puts its own
# alerts whose news the engine itself logs (the ingest's slow verdict, the disk watch's
# notices): the console shows them, and does not log them twice
LOGGED_BY_ENGINE: Final = frozenset(
    {AlertKind.CAMERA_SLOW, AlertKind.DISK_LOW, AlertKind.DISK_FULL, AlertKind.FOLDER_GONE}
)


@dataclass(frozen=True, slots=True)
class ShootOptions:
    out: Path = Path("takes")
    write: WriteOptions = field(default_factory=WriteOptions)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    preview: PreviewOptions = field(default_factory=lambda: PreviewOptions(port=None))
    preroll_s: float = 0.0
    writer_threads: int = 4
    sync_interval: float = DEFAULT_SYNC_INTERVAL  # files durable at least this often (0: OS)
    write_run: int = DEFAULT_RUN  # frames per write system call (see mmrec.store.writer)
    thresholds: Thresholds = field(default_factory=Thresholds)
    contact_sheets: bool = True


@dataclass(slots=True)
class _Take:
    summary: TakeSummary
    dir: Path


class Shoot:
    """The console's engine room; see the module docstring."""

    def __init__(self, options: ShootOptions, *, token_required: bool = False) -> None:
        self.options = options
        self.token_required = token_required
        self.session = Session(
            ingest_config=options.ingest,
            writer_threads=options.writer_threads,
            direct_io=options.write.direct_io and options.write.muxer == "mkv",
            preroll_seconds=options.preroll_s,
            sync_interval=options.sync_interval,
            write_run=options.write_run,
            node_events=True,
        )
        self.slate = Slate()
        self.alerts = AlertBook()
        self.rules = AlertRules(options.thresholds)
        self.disk = DiskPanel(self.session, OutputFolders(options.out, options.write.relays))
        self.discovery: Discovery | None = None
        self.given: dict[str, CameraSpec] = {}
        self._meters: dict[str, RateMeter] = {}
        self._seen_ns: dict[str, int] = {}  # when each camera was first seen by a tick
        self._up_ns: dict[str, int] = {}  # since when each streaming camera streams
        self._clocks: dict[str, ClockInfo] = {}  # each camera's clock estimate, this second
        self._devices: tuple[DeviceView, ...] = ()  # the device map, this second
        self._takes: deque[_Take] = deque(maxlen=TAKES_KEPT)
        self._note = ""
        self._take_slate = ""  # the slate of the take being recorded
        self._commands: tuple[CommandAnswer, ...] = ()
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Condition()
        self._version = 0
        self._state: ConsoleState | None = None
        self._busy = asyncio.Lock()  # one take start/stop at a time
        self._sheets = _SheetMaker()
        self._started_ns = time.monotonic_ns()
        self.session.events.subscribe(self._on_event)

    # lifecycle

    @property
    def preview(self) -> LivePreview | None:
        return self.session.preview

    async def start(self, cameras: Sequence[CameraSpec] = ()) -> None:
        await self.session.start_preview(None, self.options.preview)
        await self.add_cameras(cameras)
        await self.disk.check()
        self._tasks.append(asyncio.create_task(self.disk.run(), name="console:disk"))
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="console:tick"))
        self.publish()

    async def add_cameras(self, cameras: Sequence[CameraSpec]) -> list[CameraFeed]:
        """Add cameras given by hand, each asked its ``/status`` first (as ``mmrec record``
        does): one given only by its address is named by the node's deviceName."""
        requests = [
            CameraRequest(c.url, c.name if c.named else None, fallbacks=c.fallbacks)
            for c in cameras
        ]
        feeds = await self.session.join(requests)
        for cam, feed in zip(cameras, feeds, strict=True):
            self.given[feed.name] = cam
        return feeds

    async def close(self) -> Manifest | None:
        """Stop the take being recorded (now), every camera, the preview, the writers."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        async with self._changed:
            self._changed.notify_all()
        rec = self.session.recording
        manifest = await self.session.close()
        await self._sheets.close()
        if manifest is not None and rec is not None:
            self._add_take(manifest, rec.dir)
        return manifest

    # actions (the web page and the JSON API)

    def set_slate(self, scene: str | None, take: int | None, note: str | None) -> Slate:
        self.slate = self.slate.set(scene, take, note)
        self.publish()
        return self.slate

    async def start_take(self) -> RecordingView:
        """Begin a take now, named by the slate; its note goes into its log."""
        async with self._busy:
            if self.session.recording is not None:
                raise RecordingError(f"take {self.session.recording.id} is already recording")
            slate = self.slate
            # with pre-roll the take begins that long before the press: the frames are
            # still in memory (Session(preroll_seconds=...))
            at = time.monotonic_ns() - int(self.options.preroll_s * 1e9)
            await self.session.start_take(
                self.options.out, name=slate.name, at_mono_ns=at, write=self.options.write
            )
            self._note = slate.note
            self._take_slate = slate.name
            if slate.note:
                self.session.note(f"slate {slate.name}: {slate.note}")
            self.publish()
            view = self._recording_view()
            assert view is not None
            return view

    async def stop_take(self) -> TakeSummary:
        """End the take now; its summary (the contact sheet follows in a thread)."""
        async with self._busy:
            rec = self.session.recording
            if rec is None:
                raise RecordingError("no take is recording")
            manifest = await self.session.stop_take()
            self.slate = self.slate.after_take()
            take = self._add_take(manifest, rec.dir)
            self.publish()
        if self.options.contact_sheets:
            self._tasks.append(
                asyncio.create_task(self._contact_sheet(take), name=f"contact:{rec.id}")
            )
        return take.summary

    def ack(self, alert_id: int | None) -> int:
        n = self.alerts.ack(alert_id)
        self.publish()
        return n

    def note(self, text: str) -> None:
        self.session.note(text)

    async def send(
        self, command: Command, cameras: Sequence[str] | None, deadline_s: float
    ) -> list[CommandAnswer]:
        """Fan ``command`` out to the selected cameras' nodes (None: all)."""
        feeds = self.session.feeds
        names = list(feeds) if cameras is None else [c for c in cameras if c in feeds]
        targets = [CommandTarget(n, feeds[n].target.host, feeds[n].target.port) for n in names]
        answers = await fan_out(targets, command, deadline_s=deadline_s)
        self._commands = tuple(answers)
        for a in answers:
            outcome = f"HTTP {a.status}" if a.error is None else a.error
            self.session.note(
                f"{command.method} {command.path}: {outcome}", EventKind.NOTE, camera=a.node
            )
        self.publish()
        return answers

    def take_dir(self, take_id: str) -> Path | None:
        for t in self._takes:
            if t.summary.id == take_id:
                return t.dir
        return None

    # state

    def state(self) -> ConsoleState:
        if self._state is None:
            self._state = self._build()
        return self._state

    @property
    def version(self) -> int:
        return self._version

    async def wait_change(self, seen: int, timeout: float) -> int:
        """Wait (at most ``timeout``) for a state newer than version ``seen``."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._version != seen), timeout
                )
        return self._version

    def camera_totals(self) -> dict[str, tuple[int, int, int]]:
        out = {}
        for name, feed in self.session.feeds.items():
            s = feed.stats()
            out[name] = (s.frames, s.bytes, s.reconnects)
        return out

    # internals

    def publish(self) -> None:
        """A new state: wake whoever waits for one (the pages' event streams)."""
        self._state = None
        self._version += 1
        with contextlib.suppress(RuntimeError):  # no running loop: nobody waits
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _on_event(self, ev: Event) -> None:
        self.publish()

    async def _tick_loop(self) -> None:
        while True:
            now = time.monotonic_ns()
            for name, feed in self.session.feeds.items():
                s = feed.stats()
                self._meters.setdefault(name, RateMeter()).add(now, s.frames, s.bytes)
                self._seen_ns.setdefault(name, now)
                self._clocks[name] = feed.clock.info()
                if s.state == CameraState.STREAMING:
                    self._up_ns.setdefault(name, now)
                else:
                    self._up_ns.pop(name, None)
            self._devices = device_map(self.session.feeds, self.discovery, self.given)
            self._state = None
            st = self._build()
            raised = self.alerts.update(self.rules.conditions(st.cameras, st.disk, now), now)
            for a in raised:
                if a.kind in LOGGED_BY_ENGINE:
                    continue
                self.session.note(
                    a.message,
                    EventKind.ALERT,
                    camera=a.subject if a.subject in self.session.feeds else None,
                )
            self.publish()
            await asyncio.sleep(TICK_S)

    def _recording_view(self) -> RecordingView | None:
        rec = self.session.recording
        if rec is None:
            return None
        now = time.monotonic_ns()
        return RecordingView(
            rec.id,
            str(rec.dir),
            self._take_slate,
            self._note,
            max(0.0, (now - rec.start_monotonic_ns) / 1e9),
            rec.timecode,
            timecode_at(now + self.session.wall_minus_mono_ns),
        )

    def _build(self) -> ConsoleState:
        now = time.monotonic_ns()
        rec = self.session.recording
        in_take = {cs.name: cs for cs in rec.status()} if rec is not None else {}
        cams = tuple(
            camera_view(
                f,
                self._meters.get(f.name, RateMeter()).rates(),
                in_take.get(f.name),
                now,
                self._seen_ns.get(f.name, now),
                self._up_ns.get(f.name),
                self._clocks.get(f.name),
            )
            for f in self.session.feeds.values()
        )
        recent = self.session.events.recent(EVENTS_SHOWN)
        preview = self.session.preview
        return ConsoleState(
            version=self._version,
            uptime_s=round((now - self._started_ns) / 1e9, 1),
            slate=asdict(self.slate),
            recording=self._recording_view(),
            cameras=cams,
            takes=tuple(t.summary for t in reversed(self._takes)),
            alerts=tuple(self.alerts.visible()),
            disk=self.disk.view(in_take),
            devices=self._devices,
            events=tuple(
                EventView(round((now - e.mono_ns) / 1e9, 1), str(e.kind), e.camera, e.detail)
                for e in reversed(recent)
            ),
            commands=self._commands,
            preview_fps=round(preview.stats().fps, 1) if preview is not None else None,
            token_required=self.token_required,
        )

    def _add_take(self, m: Manifest, take_dir: Path) -> _Take:
        summary = take_summary(m, take_dir, self._take_slate, self._note)
        take = _Take(summary, take_dir)
        self._takes.append(take)
        return take

    async def _contact_sheet(self, take: _Take) -> None:
        path = take.dir / CONTACT_FILE
        try:
            await self._sheets.make(take.dir, path)
            take.summary = replace(
                take.summary, contact_sheet=f"/takes/{take.summary.id}/contact-sheet.jpg"
            )
        except MmrecError as exc:
            take.summary = replace(take.summary, contact_error=str(exc))
        self.publish()


class _SheetMaker:
    """Contact sheets in one child process at nice +10, started at the first sheet and
    kept for the session: a sheet (a decode per camera, drawing, a JPEG) takes no CPU
    and no GIL from the recording of the next take. "spawn": the recorder's process has
    threads (writers, x264), which a forked child must not inherit mid-lock."""

    def __init__(self) -> None:
        self._pool: cf.ProcessPoolExecutor | None = None

    async def make(self, take_dir: Path, path: Path) -> None:
        """Write ``take_dir``'s contact sheet to ``path``; a failure is a MmrecError."""
        from mmrec.review.contact import contact_sheet_of_take

        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=nice_worker
            )
        # submit starts the process the first time (fork + exec): off the loop
        fut = await asyncio.to_thread(self._pool.submit, contact_sheet_of_take, take_dir, path)
        try:
            await asyncio.wrap_future(fut)
        except cf.process.BrokenProcessPool as exc:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None  # the next sheet starts a new process
            raise RecordingError(f"the contact sheet's process died: {exc}") from exc

    async def close(self) -> None:
        """Let a sheet being made finish (at most a minute), then end the process."""
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True), 60
                )
