"""One camera kept live for a whole session: its stream, its clock, its picture, its pre-roll.

A :class:`CameraFeed` connects once and stays connected (reconnecting with backoff) for as
long as the session runs, across any number of takes. Every frame is placed on the
session timeline by the camera's clock model the moment it arrives (a few µs, on the event
loop), then handed to whoever wants it: the take being recorded (if any, and only frames
captured inside its span), the pre-roll ring, and the live preview (a reference, no copy).
So clock models stay warm between takes, and a take starts with frames that are already
placed by offset, not by arrival.

Clock probes (:mod:`mmrec.session.probes`): a burst of ``/status`` round trips before each
connection to the stream, then a few a second while streaming; each answer goes into the
clock model and, while a take is recorded, to its ``probes.csv``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Final

from mmrec.ingest.events import NodeEvents
from mmrec.ingest.rate import RateChange
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
from mmrec.session.probes import PROBE_BURST, PROBE_EVERY, ClockProbes
from mmrec.store import payload
from mmrec.store.payload import Bytes
from mmrec.store.take import PROBE_LEAD_NS, ClockInfo
from mmrec.timeline.align import CameraClock
from mmrec.wire.sse import ServerEvent
from mmrec.wire.status import NodeStatus, clean_text

if TYPE_CHECKING:
    from mmrec.live.preview import LivePreview

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
    flaw: str | None = None  # "truncated", "trailing" or "stub" (ingest.stream.Received)


FrameSink = Callable[[Placed], None]
ProbeSink = Callable[[int, int, int], None]  # (t0, device, t1): monotonic ns, device ns


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
        self.clock = CameraClock(
            options.origin_ns, options.wall_minus_mono_ns, expect_probes=options.probe_clocks
        )
        # Probes answered recently are kept: a take that starts writes those from
        # PROBE_LEAD_NS before its start. Bounded by count: that lead at PROBE_EVERY, the
        # pre-roll, and a few bursts.
        lead_s = (PROBE_LEAD_NS + options.preroll_ns) / 1e9 + 5.0
        self.probes = ClockProbes(
            name,
            self._on_status,
            self._on_probe,
            keep=math.ceil(lead_s / PROBE_EVERY) + 4 * PROBE_BURST,
        )
        self.ingest = CameraIngest(
            target,
            self._on_frame,
            options.ingest,
            on_state=self._on_state,
            on_rate=self._on_rate,
            fallbacks=fallbacks,
            payload_alloc=payload.aligned if options.direct_io else None,
            before_connect=self.probes.burst if options.probe_clocks else None,
        )
        self._judge_rate_by_nominal()
        self.rate_change: RateChange | None = None  # the ingest's latest slow verdict
        self.sink: FrameSink | None = None  # the take being recorded, if any
        self.probe_sink: ProbeSink | None = None  # the take's probes.csv, if any
        self.preview: LivePreview | None = None
        self._preroll: deque[Placed] = deque()
        self._holding: int | None = None  # see hold()
        self._held: list[Placed] = []
        self.last: Placed | None = None
        self._task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
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
            self._probe_task = asyncio.create_task(
                self.probes.run(self.ingest), name=f"probe:{self.name}"
            )
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

    def hold(self, since_ns: int) -> None:
        """Keep every frame captured at or after ``since_ns`` from now until the take that
        starts there attaches (:meth:`preroll` hands them over): a take being set up (its
        folder, its first manifest) must not miss the frames that arrive meanwhile."""
        self._holding = since_ns
        self._held = []

    def preroll(self, since_ns: int) -> list[Placed]:
        """Frames kept in memory (the pre-roll ring, and those held since :meth:`hold`)
        that were captured at or after ``since_ns``, in order; ends the holding."""
        kept = [p for p in self._preroll if p.t_ns >= since_ns]
        held, self._held, self._holding = self._held, [], None
        if held:
            seen = {id(p) for p in kept}
            kept += [p for p in held if p.t_ns >= since_ns and id(p) not in seen]
            kept.sort(key=lambda p: p.t_ns)
        return kept

    @property
    def probes_ok(self) -> int:
        """Clock probes answered with the node's clock, so far."""
        return self.probes.ok

    def recent_probes(self, since_mono_ns: int) -> list[tuple[int, int, int]]:
        """Probes kept in memory sent at or after ``since_mono_ns``: (t0, device, t1)."""
        return self.probes.since(since_mono_ns)

    def clock_info(self) -> ClockInfo:
        """The clock model's state for the manifest, with what the probes found."""
        note = self.probes.note(enabled=self.options.probe_clocks)
        return replace(self.clock.info(), probes=self.probes.ok, note=note)

    def _on_status(self, status: NodeStatus) -> None:
        """What the node says of itself, from each probe's answer (the console shows it)."""
        self.status = status
        if self.nominal_rate is None:
            self.nominal_rate = Identity.of_fps(status.fps)
            self._judge_rate_by_nominal()
        if self.model is None and status.model:
            self.model = status.model

    def _on_probe(self, t0: int, device_ns: int, t1: int) -> None:
        """A probe that read the node's clock: into the model, and the take's probes.csv."""
        self.clock.probe(t0, device_ns, t1)
        sink = self.probe_sink
        if sink is not None:
            sink(t0, device_ns, t1)

    # the hot path, on the event loop

    def _on_frame(self, rx: Received) -> None:
        # The clock model (a few µs), a deque append when pre-rolling, and a queue put.
        if rx.flaw == "stub":  # not a frame: the take counts it by its arrival
            self._on_stub(rx)
            return
        aligned = self.clock.place(rx.arrival_ns, rx.device_ts)
        if aligned.step_ns is not None:
            self._on_clock_step(aligned.step_ns)
        placed = Placed(
            rx.data,
            aligned.t_ns,
            rx.arrival_ns - self.options.origin_ns,
            rx.device_ts,
            self.ingest.connects,
            rx.flaw,
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
        elif self._holding is not None and placed.t_ns >= self._holding:
            self._held.append(placed)  # a take is starting: see hold()
        preview = self.preview
        if preview is not None:
            preview.update(self.name, rx.data, aligned.t_ns)  # a reference, no decode here

    def _judge_rate_by_nominal(self) -> None:
        """Slow is judged against the rate the camera says it runs at, once known (else
        against the best rate it had: mmrec.ingest.rate)."""
        if self.nominal_rate:
            self.ingest.rate.nominal_fps = float(self.nominal_rate)

    def _on_clock_step(self, step_ns: int) -> None:
        way = "back" if step_ns < 0 else "ahead"
        self._events.add(
            EventKind.CLOCK,
            f"device clock stepped {way} {abs(step_ns) / 1e9:.3f} s: a new clock segment "
            "from this frame",
            self.name,
        )

    def _on_stub(self, rx: Received) -> None:
        sink = self.sink
        if sink is not None:
            at = rx.arrival_ns - self.options.origin_ns
            sink(Placed(rx.data, at, at, rx.device_ts, self.ingest.connects, rx.flaw))

    def _on_rate(self, ingest: CameraIngest, change: RateChange) -> None:
        self.rate_change = change
        self._events.add(EventKind.ALERT, change.describe(), self.name)

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
