"""One camera kept live for a whole session: its stream, its clock, its picture, its pre-roll.

A :class:`CameraFeed` connects once and stays connected (reconnecting with backoff) for as
long as the session runs, across any number of takes. Every frame is placed on the
session timeline by the camera's clock model the moment it arrives (a few µs, on the event
loop), then handed to whoever wants it: the take being recorded (if any, and only frames
captured inside its span), the pre-roll ring, and the live preview (a reference, no copy).
So clock models stay warm between takes, and a take starts with frames that are already
placed by offset, not by arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Final

from mmrec.errors import CameraError
from mmrec.ingest.events import NodeEvents
from mmrec.ingest.status import StatusProbe
from mmrec.ingest.stream import (
    CameraIngest,
    CameraState,
    IngestConfig,
    IngestStats,
    Received,
    StreamTarget,
)
from mmrec.session.events import Event, EventKind, EventLog
from mmrec.session.identify import Identity
from mmrec.store import payload
from mmrec.store.payload import Bytes
from mmrec.timeline.align import CameraClock
from mmrec.wire.sse import ServerEvent
from mmrec.wire.status import NodeStatus, clean_text

if TYPE_CHECKING:
    from mmrec.live.preview import LivePreview

PROBE_EVERY: Final = 1.0
NODE_EVENTS_KEPT: Final = 50  # a node's own recent events, for the console
NODE_EVENT_TEXT: Final = 300  # characters of a node event kept in the log


@dataclass(frozen=True, slots=True)
class Placed:
    """A frame on the session timeline (ns since the session's origin)."""

    data: Bytes
    t_ns: int  # aligned capture time (arrival when the camera sends no timestamps)
    arrival_ns: int  # when its last byte arrived
    device_ts: str | None
    connection: int  # which connection brought it (a change: frames may have been missed)


FrameSink = Callable[[Placed], None]


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """What every camera of a session shares."""

    origin_ns: int  # the session timeline's 0 on the monotonic clock
    wall_minus_mono_ns: int  # CLOCK_REALTIME - CLOCK_MONOTONIC at the origin
    ingest: IngestConfig
    probe_clocks: bool = True
    direct_io: bool = True  # frames land in block-aligned memory, ready for O_DIRECT
    preroll_ns: int = 0
    node_events: bool = False  # follow each node's /events into the event log


class CameraFeed:
    """One camera's live stream, clock model and clock probes, for the whole session."""

    def __init__(
        self,
        name: str,
        target: StreamTarget,
        options: FeedOptions,
        events: EventLog,
        *,
        model: str | None = None,
        role: str | None = None,
        fallbacks: Sequence[StreamTarget] = (),
        nominal_rate: Fraction | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.role = role
        # The rate the camera says it runs at (its /status fps); its segments' timecode
        # counts at it. Asked when it joined, else filled in by the first clock probe.
        self.nominal_rate = nominal_rate
        self.options = options
        self._events = events
        self.ingest = CameraIngest(
            target,
            self._on_frame,
            options.ingest,
            on_state=self._on_state,
            fallbacks=fallbacks,
            payload_alloc=payload.aligned if options.direct_io else None,
        )
        self.clock = CameraClock(
            options.origin_ns, options.wall_minus_mono_ns, expect_probes=options.probe_clocks
        )
        self.sink: FrameSink | None = None  # the take being recorded, if any
        self.preview: LivePreview | None = None
        self._preroll: deque[Placed] = deque()
        self.probes_ok = 0
        self.last: Placed | None = None
        self._task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._prober: StatusProbe | None = None
        self._state = self.ingest.stats().state
        self.status: NodeStatus | None = None  # the node's last /status answer
        self.node_events: deque[Event] = deque(maxlen=NODE_EVENTS_KEPT)
        self.node: NodeEvents | None = None
        self._node_task: asyncio.Task[None] | None = None
        self._reported: str | None = None  # the not-streaming cause last put in the log
        # when the camera joined, on the session timeline (a take counts its absence since)
        self.added_t_ns = time.monotonic_ns() - options.origin_ns

    @property
    def target(self) -> StreamTarget:
        return self.ingest.target

    # lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self.ingest.run(), name=f"ingest:{self.name}")
        if self.options.probe_clocks:
            self._probe_task = asyncio.create_task(self._probe_clock(), name=f"probe:{self.name}")
        if self.options.node_events:
            t = self.ingest
            self.node = NodeEvents(self.name, lambda: (t.target.host, t.target.port),
                                   self._on_node_event)  # fmt: skip
            self._node_task = asyncio.create_task(self.node.run(), name=f"events:{self.name}")

    def stop(self) -> None:
        """Ask the stream to end; a frame already arriving is kept (see :meth:`wait_stopped`)."""
        self.ingest.stop(finish_part=True)
        if self._probe_task is not None:
            self._probe_task.cancel()
        if self.node is not None:
            self.node.stop()

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in (self._task, self._probe_task, self._node_task) if t is not None]

    def retarget(self, target: StreamTarget) -> None:
        self.ingest.retarget(target)
        if self.node is not None:
            self.node.reconnect_now()

    def stats(self) -> IngestStats:
        return self.ingest.stats()

    def preroll(self, since_ns: int) -> list[Placed]:
        """Frames kept in memory that were captured at or after ``since_ns``, in order."""
        return [p for p in self._preroll if p.t_ns >= since_ns]

    # clock probes

    async def _probe_clock(self) -> None:
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
            if self.ingest.stats().state != CameraState.STREAMING:
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
            if self.nominal_rate is None:
                self.nominal_rate = Identity.of_fps(status.fps)
            if self.model is None and status.model:
                self.model = status.model
            if status.device_ns is None:
                failures += 1
                continue
            failures = 0
            self.probes_ok += 1
            self.status = status
            self.clock.probe(t0, status.device_ns, t1)

    # the hot path, on the event loop

    def _on_frame(self, rx: Received) -> None:
        # The clock model (a few µs), a deque append when pre-rolling, and a queue put.
        aligned = self.clock.place(rx.arrival_ns, rx.device_ts)
        placed = Placed(
            rx.data,
            aligned.t_ns,
            rx.arrival_ns - self.options.origin_ns,
            rx.device_ts,
            self.ingest.connects,
        )
        self.last = placed
        if self.options.preroll_ns:
            ring = self._preroll
            ring.append(placed)
            oldest = placed.t_ns - self.options.preroll_ns
            while ring and ring[0].t_ns < oldest:
                ring.popleft()
        sink = self.sink
        if sink is not None:
            sink(placed)
        preview = self.preview
        if preview is not None:
            preview.update(self.name, rx.data, aligned.t_ns)  # a reference, no decode here

    def _on_node_event(self, ev: ServerEvent) -> None:
        """A node's own event: heartbeats only say it is alive (kept in the stats); any
        other goes into the session's log (and the take's manifest), as untrusted text
        made printable and bounded."""
        if ev.event == "heartbeat":
            return
        text, _ = clean_text(f"{ev.event}: {ev.data}", "node event", NODE_EVENT_TEXT)
        self.node_events.append(self._events.add(EventKind.NODE, text, self.name))

    def _on_state(self, ingest: CameraIngest, state: CameraState) -> None:
        # The ingest sets its error before it changes state, so ``last_error`` here is
        # the cause of this change, not of an earlier one.
        before, self._state = self._state, state
        if state == CameraState.STREAMING:
            self._reported = None
            if self.node is not None:
                self.node.wake()  # the node is back: follow its events now, not after backoff
            self._events.add(EventKind.CONNECTED, f"streaming from {ingest.target.url}", self.name)
        elif before == CameraState.STREAMING:
            cause = "stopped" if state == CameraState.STOPPED else ingest.stats().last_error
            self._reported = cause or str(state)
            self._events.add(EventKind.DISCONNECTED, self._reported, self.name)
        elif state == CameraState.BACKOFF:
            # A failed attempt: said once per cause while the camera stays away, not at
            # every retry (an unreachable camera retries every few seconds for hours).
            cause = ingest.stats().last_error
            if cause is not None and cause != self._reported:
                self._reported = cause
                self._events.add(EventKind.CONNECT_FAILED, cause, self.name)
        preview = self.preview
        if preview is not None:
            preview.set_state(self.name, state)


async def stop_feeds(feeds: Sequence[CameraFeed], timeout: float = 2.0) -> None:
    """Stop every feed and wait (bounded) for their tasks; stragglers are cancelled."""
    for feed in feeds:
        feed.stop()
    tasks = [t for f in feeds for t in f.tasks()]
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    if pending:
        with contextlib.suppress(Exception):
            await asyncio.wait(pending, timeout=1.0)
