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

from mmrec.console.alerts import Alert, AlertKind, Condition
from mmrec.console.devices import DeviceView
from mmrec.console.disk import DiskView
from mmrec.ingest.command import CommandAnswer
from mmrec.ingest.stream import CameraState
from mmrec.store.take import ClockInfo

if TYPE_CHECKING:
    from mmrec.session.camera import CameraFeed
    from mmrec.session.recording import CameraStatus

RATE_WINDOW_NS: Final = 3_000_000_000


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a condition becomes an alert."""

    lost_after_s: float = 2.0  # not streaming this long
    slow_ratio: float = 0.8  # measured fps below this share of nominal
    clock_uncertain_ms: float = 10.0  # a third of a frame period at 30 fps
    disk_low_s: float = 600.0  # recording time left
    disk_full_bytes: int = 256 * 2**20


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
    state: str
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
    return CameraView(
        name=feed.name,
        url=feed.target.url,
        model=feed.model or (status.model if status else None) or None,
        role=feed.role or (status.role if status else None) or None,
        state=str(s.state),
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
    )


def conditions(
    cameras: Sequence[CameraView], disk: DiskView | None, th: Thresholds
) -> list[Condition]:
    """What is wrong now, for :class:`~mmrec.console.alerts.AlertBook`."""
    out: list[Condition] = []
    for c in cameras:
        if c.state != CameraState.STREAMING:
            down = c.down_s
            if down is None or down >= th.lost_after_s:
                since = f" for {down:.0f} s" if down is not None else ""
                why = f": {c.last_error}" if c.last_error else ""
                out.append(Condition(AlertKind.CAMERA_LOST, c.name, f"{c.name} lost{since}{why}"))
        elif (
            c.fps is not None
            and c.nominal_fps
            and c.fps < th.slow_ratio * c.nominal_fps
            and (c.up_s or 0.0) * 1e9 > RATE_WINDOW_NS  # the rate is of streaming alone
        ):
            out.append(
                Condition(
                    AlertKind.CAMERA_SLOW,
                    c.name,
                    f"{c.name} slow: {c.fps:.1f} fps of {c.nominal_fps:g}",
                )
            )
        unc = c.clock_uncertainty_ms
        if c.clock_warm and unc is not None and unc > th.clock_uncertain_ms:
            out.append(
                Condition(
                    AlertKind.CLOCK_UNCERTAIN,
                    c.name,
                    f"{c.name} clock uncertain: ±{c.clock_uncertainty_ms:.1f} ms",
                )
            )
        if c.dropped:
            out.append(
                Condition(
                    AlertKind.FRAMES_DROPPED,
                    c.name,
                    f"{c.name}: {c.dropped} frames not written (the disk is behind)",
                )
            )
    if disk is not None and disk.free_bytes is not None:
        if disk.free_bytes < th.disk_full_bytes:
            out.append(
                Condition(
                    AlertKind.DISK_FULL, "disk", f"disk full: {disk.free_bytes / 2**20:.0f} MiB"
                )
            )
        elif disk.seconds_left is not None and disk.seconds_left < th.disk_low_s:
            out.append(
                Condition(
                    AlertKind.DISK_LOW,
                    "disk",
                    f"disk low: {disk.seconds_left / 60:.1f} min of recording left",
                )
            )
    return out
