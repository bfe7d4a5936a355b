"""One camera's part of a take: which of its frames belong to the take, handed to its
writer, and the take's bookkeeping for it (gaps, odd JPEGs, losses, its manifest entry).

:class:`TakeCamera.offer` is on the hot path (the event loop, every frame): two
comparisons against the take's span, a gap check and a queue put. The take around the
cameras (its lifecycle, folders, manifest) is :mod:`mmrec.session.recording`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mmrec.ingest.stream import CameraState, IngestStats
from mmrec.session.camera import CameraFeed, Placed
from mmrec.session.losses import LossWatch
from mmrec.session.outcome import CameraFacts, fps_while_receiving, judge_camera
from mmrec.store.files import WriterStats
from mmrec.store.index import PROBES
from mmrec.store.take import PROBE_LEAD_NS, CameraEntry
from mmrec.store.writer import CameraWriter, Frame, Probe
from mmrec.timeline.rate import DEFAULT_RATE
from mmrec.timeline.timecode import day_clock

if TYPE_CHECKING:
    from mmrec.session.recording import Recording

GAP_NS: Final = 1_000_000_000  # no frame for 1 s: a gap in the camera's coverage


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A live snapshot of one camera in a take (for the terminal view and --json)."""

    name: str
    dir: str
    url: str
    ingest: IngestStats
    writer: WriterStats
    gaps: int  # so far, counting the one going on (no frame for over a second)
    gap_ns: int = 0  # their total length

    @property
    def state(self) -> str:
        """What a person should see: the writer's failure while it fails (a camera whose
        frames are not being written is never shown as streaming), else the stream's."""
        w = self.writer.state
        return str(w) if w.failing else str(self.ingest.state)


class TakeCamera:
    """One camera's part of a take: the frames of the span, handed to its writer."""

    def __init__(self, rec: Recording, feed: CameraFeed, cam_dir: str, backlog: int) -> None:
        self.feed = feed
        self.dir = cam_dir
        self._rec = rec
        opts = rec.options
        # Each segment carries the time of day of its own first frame, counted at the
        # camera's rate as it is known now (its files' DefaultDuration too).
        self.rate = feed.nominal_rate
        clock = day_clock(rec.time_of_day_ns, self.rate or DEFAULT_RATE)
        self.writer = CameraWriter(
            feed.name,
            rec.dir,
            cam_dir,
            segment_ns=int(opts.segment_seconds * 1e9),
            # pre-roll frames are queued at once: room for them besides the usual backlog
            queue_frames=opts.queue_frames + backlog,
            metadata={"title": feed.name, "comment": f"mmrec take {rec.id}"},
            pool=rec.pool,
            muxer=opts.muxer,
            direct_io=opts.direct_io,
            relays=rec.folders.relay_dirs,
            on_change=rec.write_changed,
            timecode=clock.timecode,
            frame_ns=round(clock.period) if self.rate else None,
        )
        self.base = feed.stats()  # the feed's counters when the take began: the take counts its own
        # since when the take expects frames from it (a camera that joins mid-take: then)
        self.joined_ns = max(0, feed.added_t_ns - rec.start_t_ns)
        self.gaps: list[tuple[int, int]] = []
        self._first_ns: int | None = None  # arrival of the first frame taken, take timeline
        self._last_ns: int | None = None  # arrival of the last frame taken, take timeline
        self._taken = 0
        self._conn: int | None = None
        self.reached_stop = asyncio.Event()  # a frame captured at/after the stop arrived
        # odd JPEGs handed to the writer (the feed's counters also count those received
        # outside the take's span)
        self.truncated = 0
        self.trailing = 0
        self.stubs = 0  # not written: an SOI without a picture header
        self.losses = LossWatch(feed.name, rec.events)
        # The feed's probes from PROBE_LEAD_NS before the start on: the refinement places
        # the first frames with the probes sent before them (a burst precedes each stream).
        for t0, dev, t1 in feed.recent_probes(rec.start_monotonic_ns - PROBE_LEAD_NS):
            self.offer_probe(t0, dev, t1)

    def offer_probe(self, t0: int, device_ns: int, t1: int) -> None:
        """A clock probe (monotonic ns) into this camera's probes.csv, on the take timeline."""
        start = self._rec.start_monotonic_ns
        self.writer.offer_probe(Probe(t0 - start, device_ns, t1 - start))

    def offer(self, p: Placed) -> None:
        # Hot path, on the event loop: two comparisons, a gap check and a queue put.
        rec = self._rec
        if p.t_ns < rec.start_t_ns:
            return  # captured before the take began
        stop = rec.stop_t_ns
        if stop is not None and p.t_ns >= stop:
            self.reached_stop.set()
            return
        flaw = p.flaw
        if flaw is not None and flaw == "stub":
            self.stubs += 1
            return
        t = p.t_ns - rec.start_t_ns
        arrival = p.arrival_ns - rec.start_t_ns
        last = self._last_ns
        if last is None:
            self._first_ns = arrival
            if arrival - self.joined_ns > GAP_NS:  # the first frame came late
                self._gap(self.joined_ns, arrival, "before the first frame")
        elif arrival - last > GAP_NS or p.connection != self._conn:
            # a silence, or a reconnect however quick: frames were missed in between
            self._gap(last, arrival, "reconnected" if p.connection != self._conn else "connected")
        self._last_ns = arrival
        self._conn = p.connection
        self._taken += 1
        queued = self.writer.offer(Frame(p.data, t, arrival, p.device_ts, p.connection))
        if flaw is not None and queued:
            if flaw == "truncated":
                self.truncated += 1
            else:
                self.trailing += 1

    def _gap(self, start: int, end: int, how: str) -> None:
        self.gaps.append((start, end))
        self._rec.log_gap(
            self.feed.name, start, end, f"no frames for {(end - start) / 1e9:.2f} s ({how})"
        )

    def open_gap(self, now_t_ns: int) -> tuple[int, int] | None:
        """The gap going on at ``now_t_ns`` (no frame for over ``GAP_NS``), if any."""
        last = self._last_ns
        if last is not None and now_t_ns - last > GAP_NS:
            return (last, now_t_ns)
        return None

    def finish(self, end_t_ns: int, end_mono_ns: int) -> None:
        """At the end of the take: what is still going on (a gap, a run of drops) is
        logged as of the stop."""
        self.losses.finish(self.writer.stats(), end_mono_ns)
        gap = self.open_gap(end_t_ns)
        if gap is not None:
            self._rec.log_gap(
                self.feed.name,
                gap[0],
                gap[1],
                f"no frames for the last {(gap[1] - gap[0]) / 1e9:.2f} s of the take",
            )

    def all_gaps(self, now_t_ns: int) -> list[tuple[int, int]]:
        gaps = list(self.gaps)
        gap = self.open_gap(now_t_ns)  # not receiving now: an open gap
        if gap is not None:
            gaps.append(gap)
        return gaps

    def connections(self, i: IngestStats) -> int:
        """Connections that streamed in the take (one already streaming when it began)."""
        b = self.base
        return i.connects - b.connects + (b.state == CameraState.STREAMING)

    def entry(self, now_t_ns: int, causes: tuple[str, ...] = ()) -> CameraEntry:
        w = self.writer.stats()
        i = self.feed.stats()
        b = self.base
        gaps = self.all_gaps(now_t_ns)  # the camera's (spans not written: write_gaps)
        feed = self.feed
        verdict = judge_camera(
            CameraFacts(
                name=feed.name,
                frames=w.frames,
                dropped=w.dropped,
                write_error=w.error,
                write_failure=w.last_failure,
                gaps=tuple(gaps),
                connections=self.connections(i),
                error=i.last_error,
                skipped_parts=i.skipped_parts - b.skipped_parts,
                causes=causes,
            )
        )
        return CameraEntry(
            name=feed.name,
            dir=self.dir,
            url=feed.target.url,
            model=feed.model,
            role=feed.role,
            segments=w.segments,
            index=w.index,
            frames=w.frames,
            bytes=w.bytes,
            dropped=w.dropped,
            reconnects=i.reconnects - b.reconnects,
            skipped_parts=i.skipped_parts - b.skipped_parts,
            truncated=self.truncated,
            trailing=self.trailing,
            stubs=self.stubs + w.not_jpeg,
            bad_size=w.bad_size,
            width=w.width,
            height=w.height,
            first_pts=w.first_pts,
            last_pts=w.last_pts,
            state=str(w.state) if w.state.failing else str(i.state),
            slow=i.slow,
            last_error=w.error or i.last_error,
            clock=feed.clock_info(),
            gaps=tuple(gaps),
            io=None if w.direct_io is None else ("direct" if w.direct_io else "buffered"),
            write_state=str(w.state),
            lost=w.lost,
            lost_causes=w.lost_causes,
            write_gaps=w.write_gaps,
            probes=f"{self.dir}/{PROBES}" if w.probes else None,
            connections=self.connections(i),
            fps=_round(fps_while_receiving(self._taken, self._first_ns, self._last_ns, gaps)),
            outcome=verdict.outcome,
            outcome_detail=verdict.detail,
            nominal_rate=str(self.rate) if self.rate else None,
        )

    def status(self, now_t_ns: int) -> CameraStatus:
        feed = self.feed
        gaps = self.all_gaps(now_t_ns)
        return CameraStatus(
            feed.name,
            self.dir,
            feed.target.url,
            feed.stats(),
            self.writer.stats(),
            len(gaps),
            sum(b - a for a, b in gaps),
        )


def _round(fps: float | None) -> float | None:
    return None if fps is None else round(fps, 2)
