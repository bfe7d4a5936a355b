"""Per-camera alignment onto the take timeline: clock model and pts from each frame's
``X-Timestamp`` (read by :mod:`mmrec.wire.timestamp`).

Pure logic (sans-IO): the recorder feeds it each frame's arrival time and ``X-Timestamp``,
and NTP-style ``/status`` round trips when the node answers them; it returns the frame's
time on the take timeline. Invariants: output times are take-relative ns, strictly
increasing per camera and at least 1 ms apart (so millisecond pts are too); a camera
without usable device timestamps falls back to arrival times, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mmrec.store.take import ClockInfo
from mmrec.timeline.clock import ClockModel, Timeline
from mmrec.wire.timestamp import parse_device_ts

PROBE_GRACE_FRAMES: Final = 150  # ~5 s at 30 fps without a probe answer: frames only
SETTLED_NS: Final = 1_000_000  # the timeline's pending correction, below which it is settled


@dataclass(frozen=True, slots=True)
class Aligned:
    t_ns: int  # on the take timeline, strictly increasing per camera
    device_ns: int | None
    warm: bool  # the clock model was warmed up (or arrival mode)
    step_ns: int | None = None  # the device clock stepped by this much at this frame (- : back)


class CameraClock:
    """One camera's mapping from (arrival, device time) to the take timeline."""

    def __init__(
        self, origin_ns: int, wall_minus_arrival_ns: int = 0, *, expect_probes: bool = False
    ) -> None:
        """``origin_ns``: the take's start on the arrival clock (monotonic ns);
        ``wall_minus_arrival_ns``: the recorder's wall clock minus its arrival clock, so
        the manifest can state each device's offset against the recorder's wall clock."""
        self.origin_ns = origin_ns
        self.wall_minus_arrival_ns = wall_minus_arrival_ns
        self.model = ClockModel()
        self.timeline = Timeline(origin_ns)
        self.expect_probes = expect_probes
        self.warm = False
        self.warmup_frames = 0
        self._model_warm_frames = 0
        self.device_frames = 0
        self.arrival_frames = 0
        self._resets = 0  # the model's count when the last frame was placed

    def place(self, arrival_ns: int, device_ts: str | None) -> Aligned:
        device_ns = parse_device_ts(device_ts)
        model = self.model
        if device_ns is not None:
            model.observe(device_ns, arrival_ns)
            self.device_frames += 1
            p = self.timeline.place(model.to_local(device_ns), model.shift_ns)
            if not self.warm:
                self.warm = self._warm_now()
                if not self.warm:
                    self.warmup_frames += 1
            if model.resets != self._resets:  # a clock step: a new segment from this frame
                self._resets = model.resets
                return Aligned(p.t_ns, device_ns, self.warm, model.last_step_ns)
            return Aligned(p.t_ns, device_ns, self.warm)
        model.observe_arrival(arrival_ns)
        self.arrival_frames += 1
        return Aligned(self.timeline.place(arrival_ns).t_ns, None, True)

    def _warm_now(self) -> bool:
        """Warm-up ends when the model is warmed up, the probes have measured the min
        delay (when the node answers them; else after ~5 s of waiting for them), and the
        timeline has slewed away the step that the min delay caused."""
        model = self.model
        if not model.warmed_up:
            return False
        self._model_warm_frames += 1
        probes_settled = (
            not self.expect_probes
            or model.source == "device+probe"
            or self._model_warm_frames > PROBE_GRACE_FRAMES
        )
        return probes_settled and abs(self.timeline.correction_ns) < SETTLED_NS

    def probe(self, t0_ns: int, device_ns: int, t1_ns: int) -> None:
        """A ``/status`` round trip: sent at t0, answered with the device clock, back at t1."""
        if t1_ns >= t0_ns:
            self.model.observe_probe(t0_ns, device_ns, t1_ns)

    def info(self) -> ClockInfo:
        """The estimate as the manifest states it (O(window): call about once a second)."""
        est = self.model.snapshot()
        if self.device_frames == 0:
            return ClockInfo(
                source="arrival",
                uncertainty_ns=est.uncertainty_ns,
                warmup_frames=0,
            )
        lat = est.latency
        return ClockInfo(
            source=est.source,
            # device clock minus recorder wall clock (est.offset_ns maps device -> arrival)
            offset_ns=-(est.offset_ns + self.wall_minus_arrival_ns),
            drift_ppm=round(est.drift_ppm, 3),
            uncertainty_ns=est.uncertainty_ns,
            warmup_frames=self.warmup_frames,
            latency_ms_p50=round(lat.p50_ns / 1e6, 3) if lat else None,
            latency_ms_p95=round(lat.p95_ns / 1e6, 3) if lat else None,
        )
