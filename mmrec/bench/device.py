"""Benchmark camera nodes: frame rate, bitrate, jitter, drops, round trips and latency.

The pure half: what one device's measurements add up to.

Two layers, as everywhere in mmrec:

* Pure accumulators (no I/O, no clock reads): :class:`DeviceBench` takes one device's
  frames (arrival ns, size, raw ``X-Timestamp``), ``/status`` round trips and stream
  connection times, and builds a frozen :class:`DeviceResult`. Tests feed it synthetic
  traces with known truth.
* :class:`mmrec.bench.run.Bench`, the thin I/O layer, feeds it.

Latency (capture to arrival) needs both the camera's device timestamps and its clock
in ``/status``: the probes measure the device clock's offset, so the clock model can
place each capture instant on our clock. It is computed after the run with the final
model for the newest ``max_latency_samples`` frames, so early frames are not judged by
a model that had not settled yet. Without either input the result says why and gives
what can still be measured (the excess delay over the fastest frame, or arrival jitter).

Memory is bounded: per device, the stats accumulators are fixed-size, the fps-over-time
series holds one counter per ``fps_bin_ns`` (at most ``max_fps_bins``) and the latency
samples are a ring of ``max_latency_samples`` (device, arrival) pairs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from mmrec.ingest.stream import CameraState
from mmrec.stats import LatencySnapshot, LatencyStats, StreamSnapshot, StreamStats
from mmrec.timeline.clock import ClockModel
from mmrec.wire.status import NodeStatus
from mmrec.wire.timestamp import parse_device_ts

NominalSource = Literal["status", "cli", "estimated", "unknown"]


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Capture-to-arrival latency of one device, or why it cannot be measured.

    ``measurable`` is True only with device timestamps *and* ``/status`` clock probes.
    ``note`` always says in words what was (not) measured and the fallback used.
    ``excess`` (arrival − (capture + min delay): the network/queue jitter) needs device
    timestamps only; ``arrival_jitter_ns`` (interval p95 − p50) is the last resort.
    """

    measurable: bool
    note: str
    source: str  # ClockModel source: device+probe | device | arrival
    latency: LatencySnapshot | None
    uncertainty_ns: int | None
    min_delay_ns: int | None
    excess: LatencySnapshot | None
    arrival_jitter_ns: int | None
    clock_offset_ns: int | None  # device clock − this machine's wall clock
    drift_ppm: float | None
    clock_resets: int
    samples_ns: tuple[int, ...]  # per-frame latency (or excess), for plots


@dataclass(frozen=True, slots=True)
class DeviceResult:
    """Everything ``mmrec bench`` measured about one device."""

    name: str
    url: str
    status_url: str
    state: str  # ok | no-frames | unreachable | error; plus the ingest state at the end
    ingest_state: str
    error: str | None
    stream: StreamSnapshot
    fps: float  # frames − 1 over first-to-last arrival: the achieved steady rate
    fps_nominal: float | None
    fps_nominal_source: NominalSource
    drop_rate: float | None  # drops / (frames + drops)
    stream_head_ns: int | None  # first /stream connect + request → response head
    reconnects: int
    probes_ok: int
    probes_failed: int
    probe_error: str | None
    status_rtt: LatencySnapshot | None
    latency: LatencyResult
    fps_bin_ns: int  # fps_series[i] is at (i + window/bin) * fps_bin_ns after the start
    fps_window_ns: int
    fps_series: tuple[float, ...]  # frames per second over the trailing window


@dataclass(frozen=True, slots=True)
class BenchReport:
    """One bench run: when, how long, and one result per device (in the order given)."""

    started_wall_ns: int
    duration_ns: int  # asked for
    elapsed_ns: int  # actually measured
    probe_hz: float
    devices: tuple[DeviceResult, ...]


@dataclass(frozen=True, slots=True)
class DeviceProgress:
    """A live view row: cheap to build twice a second."""

    name: str
    state: str
    frames: int
    fps_window: float
    fps_nominal: float | None
    drops: int | None
    status_rtt_p50_ns: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class BenchProgress:
    elapsed_ns: int
    duration_ns: int
    devices: tuple[DeviceProgress, ...]


# -- pure accumulator -----------------------------------------------------------------


class DeviceBench:
    """One device's measurements. Every method is O(1) except :meth:`result`.

    ``start_ns`` is the bench start (monotonic ns): the zero of the fps series.
    ``wall_minus_mono_ns`` converts our monotonic clock to wall time, so the clock
    offset can be stated against this machine's wall clock.
    """

    def __init__(
        self,
        name: str,
        url: str,
        status_url: str,
        *,
        start_ns: int,
        wall_minus_mono_ns: int = 0,
        fps_nominal_cli: float | None = None,
        fps_bin_ns: int = 250_000_000,
        fps_window_ns: int = 1_000_000_000,
        max_fps_bins: int = 400_000,
        max_latency_samples: int = 65_536,
    ) -> None:
        if min(fps_bin_ns, fps_window_ns, max_fps_bins, max_latency_samples) <= 0:
            raise ValueError("bins and sample limits must be positive")
        self.name = name
        self.url = url
        self.status_url = status_url
        self.start_ns = start_ns
        self.wall_minus_mono_ns = wall_minus_mono_ns
        self.fps_nominal_cli = fps_nominal_cli
        self.fps_bin_ns = fps_bin_ns
        self.fps_window_ns = fps_window_ns
        self.max_fps_bins = max_fps_bins
        self.status_fps: float | None = None
        self.model = ClockModel()
        self._stats: StreamStats | None = None
        self._stream_start_ns: int | None = None
        self._first_arrival: int | None = None
        self._last_arrival: int | None = None
        self._bins: list[int] = []
        self._samples: deque[tuple[int, int]] = deque(maxlen=max_latency_samples)
        self._resets_seen = 0
        self._device_frames = 0
        self._arrival_frames = 0
        self._head_ns: int | None = None
        self._connect_started: int | None = None
        self._rtt = LatencyStats()
        self.probes_ok = 0
        self.probes_failed = 0
        self.probe_error: str | None = None  # the last probe failure
        self.probe_failing = False  # the last probe failed (its error is current)
        self.status_has_clock = False

    # -- feeding ---------------------------------------------------------------------

    @property
    def fps_nominal(self) -> tuple[float | None, NominalSource]:
        if self.status_fps is not None:
            return self.status_fps, "status"
        if self.fps_nominal_cli is not None:
            return self.fps_nominal_cli, "cli"
        return None, "unknown"

    def stream_requested(self, t_ns: int) -> None:
        """The /stream connection is being opened (ingest state ``connecting``)."""
        if self._stream_start_ns is None:
            self._stream_start_ns = t_ns
        self._connect_started = t_ns

    def stream_head(self, t_ns: int) -> None:
        """The /stream response head arrived (ingest state ``streaming``)."""
        if self._head_ns is None and self._connect_started is not None:
            self._head_ns = t_ns - self._connect_started

    def frame(self, arrival_ns: int, size: int, device_ts: str | None) -> None:
        """Account one JPEG as it arrived."""
        if self._stats is None:
            # Created at the first frame: by then the first /status answer (or its
            # failure) is in, so the nominal rate is fixed for gap and drop decisions.
            self._stats = StreamStats(
                nominal_fps=self.fps_nominal[0],
                start_ns=self._stream_start_ns if self._stream_start_ns is not None else None,
            )
        device_ns = parse_device_ts(device_ts)
        self._stats.frame(arrival_ns, size, device_ns)
        if self._first_arrival is None:
            self._first_arrival = arrival_ns
        self._last_arrival = arrival_ns
        i = (arrival_ns - self.start_ns) // self.fps_bin_ns
        if 0 <= i < self.max_fps_bins:
            if i >= len(self._bins):
                self._bins.extend([0] * (i + 1 - len(self._bins)))
            self._bins[i] += 1
        if device_ns is None:
            self._arrival_frames += 1
            self.model.observe_arrival(arrival_ns)
            return
        self._device_frames += 1
        self.model.observe(device_ns, arrival_ns)
        if self.model.resets != self._resets_seen:
            # The device clock stepped: earlier pairs are in the old timebase.
            self._resets_seen = self.model.resets
            self._samples.clear()
        self._samples.append((device_ns, arrival_ns))

    def probe(self, t0_ns: int, t1_ns: int, status: NodeStatus) -> None:
        """A /status round trip: sent at ``t0_ns``, answered at ``t1_ns``."""
        self.probes_ok += 1
        self.probe_failing = False
        self._rtt.add(t1_ns - t0_ns)
        if status.fps is not None:
            self.status_fps = status.fps
        if status.device_ns is not None:
            self.status_has_clock = True
            self.model.observe_probe(t0_ns, status.device_ns, t1_ns)

    def probe_failed(self, cause: str) -> None:
        self.probes_failed += 1
        self.probe_error = cause
        self.probe_failing = True

    # -- reading ---------------------------------------------------------------------

    def progress(self, now_ns: int, state: str, error: str | None) -> DeviceProgress:
        snap = self._stats.snapshot(now_ns) if self._stats is not None else None
        return DeviceProgress(
            name=self.name,
            state=state,
            frames=snap.frames if snap else 0,
            fps_window=snap.fps_window if snap else 0.0,
            fps_nominal=self.fps_nominal[0],
            drops=snap.drops if snap else None,
            status_rtt_p50_ns=self._rtt.percentile(0.5) if self._rtt.count else None,
            error=error,
        )

    def result(
        self,
        now_ns: int,
        *,
        ingest_state: str = CameraState.STOPPED,
        ingest_error: str | None = None,
        reconnects: int = 0,
    ) -> DeviceResult:
        """The final result (O(samples): call once, at the end)."""
        stats = self._stats or StreamStats(start_ns=self._stream_start_ns)
        snap = stats.snapshot(now_ns)
        fps = 0.0
        if self._first_arrival is not None and self._last_arrival is not None:
            span = self._last_arrival - self._first_arrival
            if span > 0 and snap.frames >= 2:
                fps = (snap.frames - 1) * 1e9 / span
        nominal, source = self.fps_nominal
        if nominal is None and snap.interval_p50_ns:
            nominal, source = 1e9 / snap.interval_p50_ns, "estimated"
        drops = snap.drops
        drop_rate = drops / (snap.frames + drops) if drops is not None and snap.frames else None
        if snap.frames:
            state = "ok"
            error = ingest_error if ingest_state != CameraState.STOPPED else None
        elif ingest_error is not None:
            state, error = "unreachable", ingest_error
        else:
            state, error = "no-frames", self.probe_error
        # fps over time: frames in the trailing window, at the end of each whole bin
        # (a moving window, not disjoint bins, so 15 fps does not alias into 14/16).
        k = max(1, self.fps_window_ns // self.fps_bin_ns)
        # Whole bins only, up to the one before the last frame's (it may be cut by the stop).
        last = self._last_arrival if self._last_arrival is not None else now_ns
        n_full = min(len(self._bins), (min(now_ns, last) - self.start_ns) // self.fps_bin_ns)
        window_s = k * self.fps_bin_ns / 1e9
        series = [sum(self._bins[i + 1 - k : i + 1]) / window_s for i in range(k - 1, n_full)]
        return DeviceResult(
            name=self.name,
            url=self.url,
            status_url=self.status_url,
            state=state,
            ingest_state=ingest_state,
            error=error,
            stream=snap,
            fps=fps,
            fps_nominal=nominal,
            fps_nominal_source=source,
            drop_rate=drop_rate,
            stream_head_ns=self._head_ns,
            reconnects=reconnects,
            probes_ok=self.probes_ok,
            probes_failed=self.probes_failed,
            probe_error=self.probe_error,
            status_rtt=self._rtt.snapshot(),
            latency=self._latency(snap),
            fps_bin_ns=self.fps_bin_ns,
            fps_window_ns=self.fps_window_ns,
            fps_series=tuple(series),
        )

    def _latency(self, snap: StreamSnapshot) -> LatencyResult:
        est = self.model.snapshot()
        if self._device_frames == 0:
            jitter = snap.jitter_ns
            why = (
                "no frames arrived"
                if snap.frames == 0
                else "the camera sends no X-Timestamp (device capture times)"
            )
            fallback = (
                f"; fallback: arrival times only, interval jitter p95−p50 {jitter / 1e6:.1f} ms"
                if jitter is not None
                else ""
            )
            return LatencyResult(
                measurable=False,
                note=f"not measurable: {why}{fallback}",
                source="arrival",
                latency=None,
                uncertainty_ns=None,
                min_delay_ns=None,
                excess=None,
                arrival_jitter_ns=jitter,
                clock_offset_ns=None,
                drift_ppm=None,
                clock_resets=self.model.resets,
                samples_ns=(),
            )
        # Map every kept frame with the final model: arrival − mapped capture. With
        # probes that is the latency; without, the excess over capture + min delay.
        to_local = self.model.to_local
        values = tuple(max(0, a - to_local(d)) for d, a in self._samples)
        dist = LatencyStats()
        for v in values:
            dist.add(v)
        summary = dist.snapshot()
        offset = -(est.offset_ns + self.wall_minus_mono_ns)
        if est.min_delay_ns is not None:
            md = est.min_delay_ns
            # The model's spread (clamped: it can dip below 0 between refits) plus half
            # the shortest probe round trip: a probe's midpoint is wrong by at most that
            # much when its two legs differ, and the standard error does not see it.
            rtt_min = self._rtt.snapshot()
            unc = max(0, est.uncertainty_ns) + (rtt_min.min_ns // 2 if rtt_min else 0)
            excess = None
            if summary is not None:
                excess = LatencySnapshot(
                    count=summary.count,
                    min_ns=max(0, summary.min_ns - md),
                    p50_ns=max(0, summary.p50_ns - md),
                    p95_ns=max(0, summary.p95_ns - md),
                    p99_ns=max(0, summary.p99_ns - md),
                    max_ns=max(0, summary.max_ns - md),
                    mean_ns=max(0, summary.mean_ns - md),
                )
            return LatencyResult(
                measurable=True,
                note=(
                    f"capture to arrival, from X-Timestamp and {self.probes_ok} /status "
                    f"clock probes (± {unc / 1e6:.1f} ms)"
                ),
                source=est.source,
                latency=summary,
                uncertainty_ns=unc,
                min_delay_ns=md,
                excess=excess,
                arrival_jitter_ns=snap.jitter_ns,
                clock_offset_ns=offset,
                drift_ppm=est.drift_ppm,
                clock_resets=self.model.resets,
                samples_ns=values,
            )
        why = (
            "/status gives no device clock"
            if self.probes_ok
            else f"no /status clock probe succeeded ({self.probe_error or 'none answered'})"
        )
        return LatencyResult(
            measurable=False,
            note=(
                f"not measurable: {why}; fallback: delay above the fastest frame "
                "(network and queue jitter) from X-Timestamp"
            ),
            source=est.source,
            latency=None,
            uncertainty_ns=max(0, est.uncertainty_ns),
            min_delay_ns=None,
            excess=summary,
            arrival_jitter_ns=snap.jitter_ns,
            # Without probes the offset includes the unknown min delay: not stated.
            clock_offset_ns=None,
            drift_ppm=est.drift_ppm,
            clock_resets=self.model.resets,
            samples_ns=values,
        )
