"""Per-camera clock model: maps a device's capture times onto the recorder clock.

A phone stamps each frame with its own clock (``X-Timestamp``); the recorder notes when the
frame arrived. For every frame, ``arrival − device = offset(t) + delay`` where ``offset``
drifts linearly (device oscillators are off by up to ±100 ppm) and ``delay`` is a constant
minimum (encode + queue) plus positive, heavy-tailed network jitter. The least-delayed
frames therefore trace the *lower envelope* ``offset(t) + min_delay``; everything else,
bursts and stalls included, sits above it.

Invariants:

* Sans-IO and synchronous: callers pass integer ns times and read results; nothing here
  reads a clock, sleeps or does I/O.
* ``ClockModel.observe`` is O(1) amortized: one half-second bucket minimum is kept per
  bucket over a sliding window, and the line is refitted from those (at most
  ``window / bucket`` ≈ 240 points) only when a bucket closes or a new low appears.
* Frames alone give ``capture + min_delay``; NTP-style probes of the node's clock measure
  ``min_delay`` so the mapping targets the capture instant itself. ``ClockEstimate.maps_to``
  says which one a mapping means.
* ``Timeline`` turns mapped times into strictly increasing take-relative ns and ms pts,
  absorbing small model updates by slewing (never stepping back).

One module (~500 lines) because ``Timeline`` is the model's only consumer and is
tuned to its correction sizes; the ground-truth harness that exercises both lives in
:mod:`mmrec.sim.trace`.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

from mmrec.stats import LatencySnapshot, LatencyStats
from mmrec.timeline.minima import Minima

Source = Literal["device+probe", "device", "arrival"]
MapsTo = Literal["capture", "capture+min_delay", "arrival"]

_PPM: Final = 1e-6
PROBE_SLOPE_MIN: Final = 16  # probes needed before they set the drift
PROBE_SLOPE_SPAN_NS: Final = 20_000_000_000  # ...spanning this much device time


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """What a ``ClockModel`` believes now. All times in ns, rates in ppm.

    ``offset_ns`` is ``to_local(d) − d`` at the newest device time ``at_device_ns``.
    ``drift_ppm`` is the device clock's rate error: +50 means it gains 50 µs per second
    of recorder time. ``uncertainty_ns`` is the envelope spread (10th percentile of the
    half-second minima's height above the fitted line; with fewer than 10 minima, the
    largest) plus the drift uncertainty over the distance from the fit's centre, plus,
    with probes, the standard error of the min-delay estimate. In ``arrival`` mode it is
    the arrival jitter: p95 − p50 of the inter-arrival interval.
    ``excess_delay`` is ``arrival − (capture + min_delay)`` per frame since warm-up: the
    network jitter. ``latency`` (probe mode only) is ``arrival − capture``.
    """

    source: Source
    maps_to: MapsTo
    offset_ns: int
    drift_ppm: float
    uncertainty_ns: int
    samples: int
    warmed_up: bool
    min_delay_ns: int | None
    latency: LatencySnapshot | None
    excess_delay: LatencySnapshot | None
    resets: int
    at_device_ns: int | None
    fit_span_ns: int


_rtt: Final = operator.itemgetter(2)  # a probe's round trip


class ClockModel:
    """Online offset + drift estimate for one camera, from frames and optional probes.

    Call ``observe(device_ns, arrival_ns)`` for each frame (or ``observe_arrival`` when the
    camera sends no device time), ``observe_probe`` after each ``/status`` round trip, and
    ``to_local`` to map a device time. Warm-up: the model is warmed up once it has
    ``warmup_samples`` frames spanning ``warmup_ns`` of device time since the last reset;
    before that the mapping is the minimum of ``arrival − device`` so far (zero drift).
    Drift is fitted only once the kept minima span ``drift_span_ns``, and clamped to
    ``±max_drift_ppm``.

    Clock jumps (device reboot, NTP step) reset the model: a new clock segment, so no
    frame is mapped through the old line (``resets`` counts them; ``last_step_ns`` is
    the step's size, negative when the device clock went back). A frame more than
    ``jump_ns`` *below* the envelope is impossible by delay alone, so it resets at once
    (counted after warm-up). A frame whose device time is *earlier* than the previous
    frame's while it sits more than ``jump_ns`` above the envelope is a step back: a
    camera captures and sends in order, and delay never turns its clock back, so it
    resets at once too (else frames stamped up to the step's size too early would all be
    packed behind the last good one). Frames all more than ``jump_back_ns`` above it for
    ``jump_confirm_ns`` of arrival time (and ≥ 10 frames) without turning back (a step
    back smaller than a frame period, or a path that gained that much delay for good)
    reset it too. A burst never does that: its frames arrive back to back and the next
    ones are low. Steps below ``jump_ns`` are slewed by :class:`Timeline` (its
    ``absorb_limit_ns`` is the same 100 ms) and placed exactly afterwards by
    :mod:`mmrec.timeline.refine` (which finds steps from 20 ms, :mod:`~mmrec.timeline.steps`).

    One class of ~380 lines because frames, probes, the envelope fit and jump detection
    share one state (the kept minima, the fitted line, the warm-up) that each of them
    reads and resets; split, every piece would need the others' internals.
    """

    def __init__(
        self,
        *,
        bucket_ns: int = 500_000_000,
        window_ns: int = 120_000_000_000,
        warmup_ns: int = 2_000_000_000,
        warmup_samples: int = 30,
        drift_span_ns: int = 4_000_000_000,
        max_drift_ppm: float = 300.0,
        jump_ns: int = 100_000_000,
        jump_back_ns: int = 1_000_000_000,
        jump_confirm_ns: int = 2_000_000_000,
        probes_kept: int = 64,
    ) -> None:
        if bucket_ns <= 0 or window_ns < 2 * bucket_ns:
            raise ValueError("need bucket_ns > 0 and window_ns >= 2 * bucket_ns")
        self.bucket_ns = bucket_ns
        self.window_ns = window_ns
        self.warmup_ns = warmup_ns
        self.warmup_samples = warmup_samples
        self.drift_span_ns = drift_span_ns
        self.max_slope = max_drift_ppm * _PPM
        self.jump_ns = jump_ns
        self.jump_back_ns = jump_back_ns
        self.jump_confirm_ns = jump_confirm_ns
        self.resets = 0
        self.last_step_ns: int | None = None  # the last counted reset's step (- : back)
        self._prev_device: int | None = None  # the previous frame's device time
        # Cumulative step of the mapping (at the newest device time) caused by refits,
        # probe updates and resets; ``Timeline`` absorbs small steps from it.
        self.shift_ns = 0
        self._probes: deque[tuple[int, int, int]] = deque(maxlen=probes_kept)
        self._probe_fit: tuple[float, float] | None = None  # (slope, its standard error)
        self._probe_fit_valid = False  # cached until the probes (or the origin) change
        # The quarter of the probes with the shortest round trips: cached until the probes
        # change (a refit, ~2 a second, reuses it).
        self._best: list[tuple[int, int, int]] | None = None
        self._min_delay: float | None = None
        self._min_delay_err = 0.0
        self._arrival_last: int | None = None
        self._arrival_intervals = LatencyStats()
        self._arrival_samples = 0
        self._clear(None, None)

    def _clear(self, device_ns: int | None, arrival_ns: int | None) -> None:
        # Fit coordinates are relative to the first frame since the reset, as floats:
        # x = device − x0, y = arrival − device − y0 stay far below 2**53 ns (104 days).
        self._x0 = device_ns if device_ns is not None else 0
        self._y0 = arrival_ns - device_ns if device_ns is not None and arrival_ns is not None else 0
        self._started = device_ns is not None
        self._probe_fit_valid = False  # the probe fit is in these coordinates
        self._minima = Minima(self.window_ns // self.bucket_ns + 2)  # closed buckets
        self._cur_id = 0
        self._cur_x = 0.0
        self._cur_y = 0.0
        self._a = 0.0
        self._b = 0.0
        self._xbar = 0.0
        self._x_last = 0.0
        self._samples = 1 if self._started else 0
        self._warm = False
        self._since_refit = 0
        self._high_since: int | None = None
        self._high_count = 0
        self._excess = LatencyStats()

    # -- feeding ---------------------------------------------------------------------

    def observe(self, device_ns: int, arrival_ns: int) -> None:
        """Account one frame: device clock at capture, recorder clock at arrival (ns)."""
        prev, self._prev_device = self._prev_device, device_ns
        if not self._started:
            self._clear(device_ns, arrival_ns)
            # Probes sent before the first frame (the burst before each stream) measure the
            # min delay at once: the very first frame is placed by offset, not by arrival.
            self._update_min_delay()
            return
        x = float(device_ns - self._x0)
        y = float(arrival_ns - device_ns - self._y0)
        r = y - (self._a + self._b * x)
        if r < -self.jump_ns:
            # Before warm-up this can also be a first frame that was held back for long;
            # starting afresh is right either way, but only a warm model counts a jump.
            self._reset(device_ns, arrival_ns, count=self._warm, step=-round(r))
            return
        if r > self.jump_ns and prev is not None and device_ns < prev:
            self._reset(device_ns, arrival_ns, step=-round(r))  # stepped back (see above)
            return
        if self._warm:
            if r > self.jump_back_ns:
                if self._high_since is None:
                    self._high_since, self._high_count = arrival_ns, 0
                self._high_count += 1
                if arrival_ns - self._high_since >= self.jump_confirm_ns and self._high_count >= 10:
                    self._reset(device_ns, arrival_ns, step=-round(r))
                    return
            else:
                self._high_since = None
            self._excess.add(round(r))
        self._samples += 1
        if x > self._x_last:
            self._x_last = x

        refit = False
        bucket = int(x // self.bucket_ns)
        if bucket == self._cur_id:
            if y < self._cur_y:
                self._cur_x, self._cur_y = x, y
                refit = not self._warm or self._since_refit >= 4
        elif bucket > self._cur_id:
            self._minima.append(self._cur_x, self._cur_y)
            self._minima.drop_before(x - self.window_ns)
            self._cur_id, self._cur_x, self._cur_y = bucket, x, y
            refit = True
        # else: a frame older than the open bucket (out of order); it cannot move the
        # envelope in a way later minima would not, so only the jump check saw it.

        if not self._warm and self._samples >= self.warmup_samples and x >= self.warmup_ns:
            self._warm = True
        self._since_refit += 1
        if refit:
            self._refit()

    def observe_probe(self, t0_ns: int, device_ns: int, t1_ns: int) -> None:
        """Account one round trip: request sent at ``t0_ns``, node clock read ``device_ns``,
        answer received at ``t1_ns`` (recorder clock). The node read its clock somewhere in
        ``[t0, t1]``; the midpoint is taken, so the estimate assumes symmetric legs and the
        shortest round trips are trusted most."""
        if t1_ns < t0_ns:
            raise ValueError("probe answer received before it was sent (t1 < t0)")
        # Store twice the capture offset so the midpoint stays an exact integer.
        self._probes.append((device_ns, t0_ns + t1_ns - 2 * device_ns, t1_ns - t0_ns))
        self._probe_fit_valid = False
        self._best = None
        if self._started:
            before = self._map_rel(self._x_last)
            self._update_min_delay()
            self.shift_ns += round(self._map_rel(self._x_last) - before)

    def observe_arrival(self, arrival_ns: int) -> None:
        """Account one frame of a camera that sends no device time (arrival-only mode)."""
        if self._arrival_last is not None:
            self._arrival_intervals.add(arrival_ns - self._arrival_last)
        self._arrival_last = arrival_ns
        self._arrival_samples += 1

    # -- fitting ---------------------------------------------------------------------

    def _reset(self, device_ns: int, arrival_ns: int, *, step: int, count: bool = True) -> None:
        before = device_ns + self._y0 + self._map_rel(float(device_ns - self._x0))
        self.resets += count
        if count:
            self.last_step_ns = step
        self._clear(device_ns, arrival_ns)
        # Probes read the old device timebase; the min delay itself (encode + queue) is a
        # property of the phone and survives, until new probes refine it.
        self._probes.clear()
        self._probe_fit_valid = False
        self._best = None
        self.shift_ns += round(device_ns + self._y0 + self._map_rel(0.0) - before)

    def _map_rel(self, x: float) -> float:
        md = self._min_delay if self._min_delay is not None else 0.0
        return self._a + self._b * x - md

    def _refit(self) -> None:
        """Fit the envelope line to the bucket minima.

        The line lies below every minimum and, among such lines, minimises the summed
        height of the minima above it (Moon, Skelly & Towsley's linear programme). Its
        solution is the lower convex hull's edge over the minima's mean x: the hull is the
        kept minima's monotone chain with the open bucket's minimum pushed on (see
        mmrec.timeline.minima; exactly a pass over every minimum, at the cost of a few
        vertices). Delays are never negative, so bursts and jitter can only add points
        above the line and never pull it.
        """
        before = self._map_rel(self._x_last)
        self._since_refit = 0
        kept = self._minima
        cur = (self._cur_x, self._cur_y)
        n = len(kept) + 1
        # The mean of the minima's x, exactly (they are integers: see _clear).
        xbar = float(kept.sum_x + int(cur[0])) / n
        self._xbar = xbar
        span = cur[0] - (kept.first_x() if len(kept) else cur[0])
        if n < 2 or span < self.drift_span_ns:
            self._a, self._b = kept.min_y(cur), 0.0
        else:
            hull = kept.hull_with(cur)
            i = 0
            while i < len(hull) - 2 and hull[i + 1][0] <= xbar:
                i += 1
            (x1, y1), (x2, y2) = hull[i], hull[i + 1]
            b = (y2 - y1) / (x2 - x1)
            if abs(b) <= self.max_slope:
                self._a, self._b = y1 - b * x1, b
            else:
                b = math.copysign(self.max_slope, b)
                self._a, self._b = kept.min_below(b, cur), b
            # Probes may pin the drift better than the envelope, when delays rarely reach
            # their minimum (uniform jitter) and round trips are short: take whichever
            # slope is the less uncertain.
            env_err = 2 * kept.residual_quantile(self._a, self._b, cur) / span
            probe = self._probe_slope()
            if probe is not None and probe[1] < env_err:
                b = probe[0]
                self._a, self._b = kept.min_below(b, cur), b
        self._update_min_delay()
        self.shift_ns += round(self._map_rel(self._x_last) - before)

    def _probe_slope(self) -> tuple[float, float] | None:
        """Drift from the probes alone: least squares of their capture offsets over device
        time, using the round trips no longer than twice the median, with the slope's
        standard error; None until there are ``PROBE_SLOPE_MIN`` of them spanning
        ``PROBE_SLOPE_SPAN_NS``."""
        if self._probe_fit_valid:
            return self._probe_fit
        self._probe_fit_valid = True
        self._probe_fit = None
        probes = self._probes
        if len(probes) < PROBE_SLOPE_MIN or not self._started:
            return None
        rtts = sorted(p[2] for p in probes)
        limit = 2 * rtts[len(rtts) // 2]
        good = [(float(d - self._x0), c2 / 2 - self._y0) for d, c2, rtt in probes if rtt <= limit]
        if len(good) < PROBE_SLOPE_MIN or good[-1][0] - good[0][0] < PROBE_SLOPE_SPAN_NS:
            return None
        mx = math.fsum(x for x, _ in good) / len(good)
        my = math.fsum(y for _, y in good) / len(good)
        sxx = math.fsum((x - mx) ** 2 for x, _ in good)
        if sxx <= 0:
            return None
        b = math.fsum((x - mx) * (y - my) for x, y in good) / sxx
        a = my - b * mx
        sse = math.fsum((y - a - b * x) ** 2 for x, y in good)
        se = math.sqrt(sse / (len(good) - 2) / sxx)
        self._probe_fit = max(-self.max_slope, min(self.max_slope, b)), se
        return self._probe_fit

    def _update_min_delay(self) -> None:
        """Min delay = envelope minus probe-measured capture offset, from the best probes.

        A probe's midpoint error is half the difference of its two legs, bounded by half
        its round trip, so the quarter with the shortest round trips is used (median).
        """
        if not self._probes or not self._started:
            return
        best = self._best
        if best is None:
            probes = self._probes
            best = self._best = heapq.nsmallest(max(1, len(probes) // 4), probes, key=_rtt)
        est = sorted(self._y0 + self._a + self._b * (d - self._x0) - c2 / 2 for d, c2, _ in best)
        m = len(est)
        self._min_delay = est[m // 2] if m % 2 else (est[m // 2 - 1] + est[m // 2]) / 2
        if m >= 2:
            mean = math.fsum(est) / m
            sd = math.sqrt(math.fsum((e - mean) ** 2 for e in est) / (m - 1))
            self._min_delay_err = sd / math.sqrt(m)
        else:
            self._min_delay_err = best[0][2] / 2

    # -- reading ---------------------------------------------------------------------

    @property
    def warmed_up(self) -> bool:
        return self._warm

    @property
    def source(self) -> Source:
        if not self._started:
            return "arrival"
        return "device+probe" if self._min_delay is not None else "device"

    def to_local(self, device_ns: int) -> int:
        """Map a device time to the recorder clock (ns): the capture instant when probes
        measured the min delay, else capture + min delay. Needs one observed frame."""
        if not self._started:
            raise ValueError("to_local needs at least one observe() with a device time")
        return device_ns + self._y0 + round(self._map_rel(float(device_ns - self._x0)))

    def snapshot(self) -> ClockEstimate:
        """The current estimate (O(window) work: call it for views, not per frame)."""
        if not self._started:
            iv = self._arrival_intervals
            p50, p95 = iv.percentiles((0.5, 0.95))
            jitter = p95 - p50
            return ClockEstimate(
                source="arrival",
                maps_to="arrival",
                offset_ns=0,
                drift_ppm=0.0,
                uncertainty_ns=jitter,
                samples=self._arrival_samples,
                warmed_up=iv.count + 1 >= self.warmup_samples,
                min_delay_ns=None,
                latency=None,
                excess_delay=None,
                resets=self.resets,
                at_device_ns=None,
                fit_span_ns=0,
            )
        kept = self._minima
        cur = (self._cur_x, self._cur_y)
        env = kept.residual_quantile(self._a, self._b, cur)
        span = cur[0] - (kept.first_x() if len(kept) else cur[0])
        # The slope is pinned by minima about half the span apart, each uncertain by env.
        drift_err = 2 * env / span if self._b != 0.0 and span > 0 else 0.0
        unc = env + drift_err * abs(self._x_last - self._xbar)
        excess = self._excess.snapshot()
        latency = None
        if self._min_delay is not None:
            unc += self._min_delay_err
            if excess is not None:
                md = round(self._min_delay)
                latency = LatencySnapshot(
                    count=excess.count,
                    min_ns=excess.min_ns + md,
                    p50_ns=excess.p50_ns + md,
                    p95_ns=excess.p95_ns + md,
                    p99_ns=excess.p99_ns + md,
                    max_ns=excess.max_ns + md,
                    mean_ns=excess.mean_ns + md,
                )
        x_last = round(self._x_last)
        return ClockEstimate(
            source=self.source,
            maps_to="capture" if self._min_delay is not None else "capture+min_delay",
            offset_ns=self._y0 + round(self._map_rel(float(x_last))),
            drift_ppm=-self._b / (1.0 + self._b) / _PPM,
            uncertainty_ns=round(unc),
            samples=self._samples,
            warmed_up=self._warm,
            min_delay_ns=round(self._min_delay) if self._min_delay is not None else None,
            latency=latency,
            excess_delay=excess,
            resets=self.resets,
            at_device_ns=self._x0 + x_last,
            fit_span_ns=round(span),
        )


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one frame goes on the take's timeline."""

    t_ns: int  # take-relative, strictly increasing per camera
    pts_ms: int  # t_ns // 1 ms, strictly increasing per camera
    bumped: bool  # pushed later than asked, to keep the timeline increasing


class Timeline:
    """Turns mapped recorder times into strictly increasing take-relative times and pts.

    ``place(local_ns, shift_ns)`` per frame, where ``shift_ns`` is ``ClockModel.shift_ns``
    (0 in arrival mode). A model update that moves the mapping by at most
    ``absorb_limit_ns`` is absorbed into a correction that then decays at
    ``slew_ppm`` of elapsed time (5 % by default: a 10 ms refit is worked off in 0.2 s),
    so the output slews instead of stepping. Larger steps (a clock reset) pass through.
    Whatever the input, each output is at least ``min_step_ns`` (≥ 1 ms, so the ms pts are
    strictly increasing too) after the previous one and never below 0; ``bumps`` counts
    the frames that had to be pushed.
    """

    __slots__ = (
        "_c",
        "_last_in",
        "_last_out",
        "_last_shift",
        "absorb_limit_ns",
        "bumps",
        "min_step_ns",
        "origin_ns",
        "slew_ppm",
    )

    def __init__(
        self,
        origin_ns: int,
        *,
        min_step_ns: int = 1_000_000,
        slew_ppm: int = 50_000,
        absorb_limit_ns: int = 100_000_000,
    ) -> None:
        if min_step_ns < 1_000_000:
            raise ValueError("min_step_ns must be >= 1 ms so ms pts stay strictly increasing")
        self.origin_ns = origin_ns
        self.min_step_ns = min_step_ns
        self.slew_ppm = slew_ppm
        self.absorb_limit_ns = absorb_limit_ns
        self.bumps = 0
        self._c = 0
        self._last_in: int | None = None
        self._last_out = -min_step_ns
        self._last_shift = 0

    @property
    def correction_ns(self) -> int:
        """Current output − input, still being slewed away."""
        return self._c

    def place(self, local_ns: int, shift_ns: int = 0) -> Placement:
        """Place one frame mapped to ``local_ns`` (recorder clock, ns)."""
        t = local_ns - self.origin_ns
        c = self._c
        if self._last_in is not None:
            step = shift_ns - self._last_shift
            if step and abs(step) <= self.absorb_limit_ns:
                c -= step
            allow = max(0, t - self._last_in) * self.slew_ppm // 1_000_000
            c = max(0, c - allow) if c > 0 else min(0, c + allow)
        out = t + c
        floor = self._last_out + self.min_step_ns
        bumped = out < floor
        if bumped:
            out = floor
            self.bumps += 1
            # Small reversals become part of the correction and slew away smoothly;
            # a large one (clock stepped back) is held at min_step spacing instead of
            # dragging every later frame behind a long slew.
            if out - t <= self.absorb_limit_ns:
                c = out - t
        self._c = c
        self._last_in = t
        self._last_out = out
        self._last_shift = shift_ns
        return Placement(out, out // 1_000_000, bumped)
