"""What the console shows, as values: per camera, the take, the takes, the whole state.

Rates (fps, Mbit/s) come from :class:`RateMeter`, the difference of the ingest's counters
over the last few seconds; :func:`camera_view` reads a feed (counters, clock, node
events) into a :class:`CameraView`. :func:`conditions` reads the views for the alerts
(:mod:`mmrec.console.alerts`). Pure, except for reading a feed; JSON is made from these
dataclasses at the HTTP edge.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mmrec.console.alerts import Alert, AlertKind, Condition, Sustained
from mmrec.console.devices import DeviceView
from mmrec.console.disk import DiskView, writable
from mmrec.ingest.command import CommandAnswer
from mmrec.ingest.stream import CameraState
from mmrec.store.disk import human_bytes, human_duration
from mmrec.store.take import ClockInfo

if TYPE_CHECKING:
    from mmrec.session.camera import CameraFeed
    from mmrec.session.recording import CameraStatus

RATE_WINDOW_NS: Final = 3_000_000_000


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a condition becomes an alert. Slow cameras and the disk are the engine's own
    verdicts (:mod:`mmrec.ingest.rate`, :mod:`mmrec.store.disk`), not thresholds here."""

    lost_after_s: float = 2.0  # not streaming this long
    clock_uncertain_ms: float = 10.0  # a third of a frame period at 30 fps...
    clock_hold_s: float = 5.0  # ...for this long (a spike under CPU load is no alert)
    clock_clear_ms: float = 7.5  # cleared once under this...
    clock_clear_s: float = 3.0  # ...for this long


class RateMeter:
    """fps and bytes/s of one counter pair over the last :data:`RATE_WINDOW_NS`."""

    def __init__(self) -> None:
        self._samples: deque[tuple[int, int, int]] = deque()

    def add(self, now_ns: int, frames: int, nbytes: int) -> None:
        s = self._samples
        s.append((now_ns, frames, nbytes))
        while len(s) > 2 and now_ns - s[1][0] >= RATE_WINDOW_NS:
            s.popleft()

    def rates(self) -> tuple[float | None, float | None]:
        """(frames/s, bytes/s), None until two samples half a second apart."""
        s = self._samples
        if len(s) < 2 or s[-1][0] - s[0][0] < 500_000_000:
            return None, None
        dt = (s[-1][0] - s[0][0]) / 1e9
        return (s[-1][1] - s[0][1]) / dt, (s[-1][2] - s[0][2]) / dt


@dataclass(frozen=True, slots=True)
class NodeEventView:
    ago_s: float
    detail: str


@dataclass(frozen=True, slots=True)
class CameraView:
    name: str
    url: str
    model: str | None
    role: str | None
    state: str  # what a person should see: a failing writer's state, else the stream's
    fps: float | None
    nominal_fps: float | None
    mbps: float | None
    latency_ms: float | None
    frames: int  # received this session
    take_frames: int | None  # written in the take being recorded
    dropped: int  # not written in the take (disk behind), this take
    reconnects: int
    down_s: float | None  # since the last frame, when not streaming
    up_s: float | None  # streaming this long (None: not streaming)
    clock_source: str | None
    clock_uncertainty_ms: float | None
    clock_warm: bool  # past the clock model's warm-up (its uncertainty means something)
    last_error: str | None
    events_connected: bool  # following the node's /events
    node_events: tuple[NodeEventView, ...]
    width: int | None = None
    height: int | None = None
    stream: str = ""  # the stream's own state (CameraState), whatever the writer does
    slow: str | None = None  # the ingest's verdict, in its words, while it is slow
    write_error: str | None = None  # why its frames are not being written now
    folder: int | None = None  # the output folder it writes into (0: --out, n: a relay)


@dataclass(frozen=True, slots=True)
class TakeCameraSummary:
    name: str
    frames: int
    dropped: int
    gaps: int
    reconnects: int
    state: str
    outcome: str | None = None  # complete | gaps | lost | nothing (mmrec.session.outcome)
    outcome_detail: str | None = None


@dataclass(frozen=True, slots=True)
class TakeSummary:
    id: str
    dir: str
    slate: str
    note: str
    started_utc: str
    timecode: str
    duration_s: float
    cameras: tuple[TakeCameraSummary, ...]
    ok: bool  # the take's outcome is "complete"
    outcome: str | None = None  # the worst of its cameras' outcomes
    outcome_detail: str | None = None
    contact_sheet: str | None = None  # URL on the console, once made
    contact_error: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingView:
    id: str
    dir: str
    slate: str
    note: str
    elapsed_s: float
    start_timecode: str
    timecode: str  # now (time of day), as the take's files count it


@dataclass(frozen=True, slots=True)
class EventView:
    ago_s: float
    kind: str
    camera: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class ConsoleState:
    version: int
    uptime_s: float
    slate: dict[str, object]
    recording: RecordingView | None
    cameras: tuple[CameraView, ...]
    takes: tuple[TakeSummary, ...]
    alerts: tuple[Alert, ...]
    disk: DiskView | None
    devices: tuple[DeviceView, ...]
    events: tuple[EventView, ...]
    commands: tuple[CommandAnswer, ...]
    preview_fps: float | None
    token_required: bool


def camera_view(
    feed: CameraFeed,
    rates: tuple[float | None, float | None],
    in_take: CameraStatus | None,
    now: int,
    seen_ns: int,
    up_since_ns: int | None,
    clock: ClockInfo | None = None,
) -> CameraView:
    """One camera as the page shows it: its feed's counters, clock and node events, its
    rates (:class:`RateMeter`), its part of the take being recorded (if any). ``seen_ns``
    is when the console first saw it (down since then if it never streamed),
    ``up_since_ns`` since when it streams; ``clock`` its clock model's estimate if one
    was read this second (it costs ~0.2 ms a camera: once a second, not per view)."""
    s = feed.stats()
    fps, bps = rates
    clock = clock or feed.clock.info()
    status = feed.status
    streaming = s.state == CameraState.STREAMING
    down = None if streaming else max(0.0, (now - (s.last_frame_ns or seen_ns)) / 1e9)
    node = feed.node.stats() if feed.node is not None else None
    w = in_take.writer if in_take is not None else None
    change = feed.rate_change
    return CameraView(
        name=feed.name,
        url=feed.target.url,
        model=feed.model or (status.model if status else None) or None,
        role=feed.role or (status.role if status else None) or None,
        state=in_take.state if in_take is not None else str(s.state),
        fps=None if fps is None else round(fps, 2),
        nominal_fps=status.fps if status else None,
        mbps=None if bps is None else round(bps * 8 / 1e6, 2),
        latency_ms=clock.latency_ms_p50,
        frames=s.frames,
        take_frames=w.frames if w is not None else None,
        dropped=w.dropped if w is not None else 0,
        reconnects=s.reconnects,
        down_s=None if down is None else round(down, 1),
        up_s=(
            round((now - up_since_ns) / 1e9, 1) if streaming and up_since_ns is not None else None
        ),
        clock_source=clock.source,
        clock_uncertainty_ms=(
            None if clock.uncertainty_ns is None else round(clock.uncertainty_ns / 1e6, 2)
        ),
        clock_warm=feed.clock.warm,
        last_error=None if streaming else s.last_error,
        events_connected=bool(node and node.connected),
        node_events=tuple(
            NodeEventView(round((now - e.mono_ns) / 1e9, 1), e.detail)
            for e in list(feed.node_events)[-5:]
        ),
        width=w.width if w is not None else None,
        height=w.height if w is not None else None,
        stream=str(s.state),
        # the ingest's verdict (the same as record's table and the manifest), in the
        # words it logged when the camera became slow
        slow=(change.describe() if change is not None and change.slow else "slow")
        if s.slow
        else None,
        write_error=w.error if w is not None else None,
        folder=w.folder if w is not None and w.frames else None,
    )


class AlertRules:
    """What is wrong now, for :class:`~mmrec.console.alerts.AlertBook`: a camera lost, slow
    (the ingest's verdict), its clock uncertain for a sustained time, frames not written,
    an output folder low, full or gone (the disk's levels). Pure; the clock is the
    caller's (monotonic ns), one :meth:`conditions` call per tick."""

    def __init__(self, th: Thresholds | None = None) -> None:
        self.th = th = th or Thresholds()
        self._clock = Sustained(
            th.clock_uncertain_ms,
            int(th.clock_hold_s * 1e9),
            th.clock_clear_ms,
            int(th.clock_clear_s * 1e9),
        )

    def conditions(
        self, cameras: Sequence[CameraView], disk: DiskView | None, now_ns: int
    ) -> list[Condition]:
        th = self.th
        out: list[Condition] = []
        for c in cameras:
            stream = c.stream or c.state
            if stream != CameraState.STREAMING:
                down = c.down_s
                if down is None or down >= th.lost_after_s:
                    since = f" for {down:.0f} s" if down is not None else ""
                    why = f": {c.last_error}" if c.last_error else ""
                    text = f"{c.name} lost{since}{why}"
                    out.append(Condition(AlertKind.CAMERA_LOST, c.name, text))
            elif c.slow is not None:
                out.append(Condition(AlertKind.CAMERA_SLOW, c.name, f"{c.name} {c.slow}"))
            unc = c.clock_uncertainty_ms if c.clock_warm else None
            held = self._clock.update(c.name, unc, now_ns)
            if held is not None and unc is not None:
                for_s = (now_ns - held.since_ns) / 1e9
                text = (
                    f"{c.name} clock uncertain: ±{unc:.1f} ms for {for_s:.0f} s "
                    f"(peak ±{held.peak:.1f} ms; alert above ±{th.clock_uncertain_ms:g} ms)"
                )
                out.append(Condition(AlertKind.CLOCK_UNCERTAIN, c.name, text))
            if c.dropped:
                why = c.write_error or "the disk is behind"
                text = f"{c.name}: {c.dropped} frames not written ({why})"
                out.append(Condition(AlertKind.FRAMES_DROPPED, c.name, text))
        self._clock.forget({c.name for c in cameras})
        if disk is not None:
            out += disk_conditions(disk)
        return out


def disk_conditions(disk: DiskView) -> list[Condition]:
    """Each output folder at the disk's own level (:mod:`mmrec.store.disk`): low or
    critical, full, gone or read-only; a relay folder that takes over is said."""
    out = []
    for f in disk.folders:
        free = "?" if f.free_bytes is None else human_bytes(f.free_bytes)
        others = [g for g in disk.folders if g is not f and g.relay > f.relay]
        relay = any(writable(g.state) and g.state != "full" for g in others)
        goes_on = "; the take goes on in the next relay folder" if relay else ""
        what = "take folder" if disk.recording else "output folder"
        match f.state:
            case "low" | "critical":
                left = "?" if f.seconds_left is None else human_duration(f.seconds_left)
                only = "only " if f.state == "critical" else ""
                text = f"disk {f.state}: {f.root}: {free} free, {only}{left} of recording left"
                out.append(Condition(AlertKind.DISK_LOW, f.root, text))
            case "full":
                text = f"disk full: {f.root}: {free} free{goes_on}"
                out.append(Condition(AlertKind.DISK_FULL, f.root, text))
            case "read-only" | "gone":
                text = f"{what} {f.state}: {f.root}{goes_on}"
                out.append(Condition(AlertKind.FOLDER_GONE, f.root, text))
    return out
