"""Pure, bounded-memory stream statistics: per-camera rates, sizes, intervals, gaps, drops.

Invariants:

* Every update is O(1) and allocates nothing that grows with the frame count. Percentiles
  come from :class:`LatencyStats`, a histogram with logarithmic buckets; rates over the
  recent window come from a fixed ring of time bins.
* Times are integer nanoseconds on one monotonic scale chosen by the caller (arrival
  times from ``time.monotonic_ns()``; device times from the camera's ``X-Timestamp``).
* Snapshots are frozen dataclasses; nothing here does I/O or reads a clock.

Percentile error bound: a value ``v >= 1 µs`` lands in the bucket ``[g**i, g**(i+1))`` with
``g = 1.01``; a percentile is reported as that bucket's geometric centre clamped to the
exact observed min/max, so it is within ``sqrt(1.01) - 1 ≈ 0.5 %`` (relative) of the true
nearest-rank percentile. Values below 1 µs share one bucket reported as the exact minimum,
so their absolute error is below 1 µs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

_GROWTH: Final = 1.01
_LOG_GROWTH: Final = math.log(_GROWTH)
_FLOOR_NS: Final = 1_000  # values below 1 µs share bucket -1
# Relative half-width of a bucket around its geometric centre: the stated error bound.
RELATIVE_ERROR: Final = math.sqrt(_GROWTH) - 1.0


@dataclass(frozen=True, slots=True)
class LatencySnapshot:
    """Summary of a distribution of non-negative durations, all in ns."""

    count: int
    min_ns: int
    p50_ns: int
    p95_ns: int
    p99_ns: int
    max_ns: int
    mean_ns: int


class LatencyStats:
    """Streaming percentiles of non-negative integer durations (ns) in bounded memory.

    ``add`` is O(1): one ``log`` and one dict update. Memory is at most one counter per
    occupied bucket; buckets grow by 1 % so every value an int64 can hold fits in
    about 4200 buckets, whatever the number of samples. Negative values are clamped to 0
    (they come from estimates that briefly undershoot, never from real durations).
    """

    __slots__ = ("_counts", "_max", "_min", "_n", "_sum")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._n = 0
        self._sum = 0
        self._min = 0
        self._max = 0

    @staticmethod
    def _bucket(value: int) -> int:
        if value < _FLOOR_NS:
            return -1
        return int(math.log(value / _FLOOR_NS) / _LOG_GROWTH)

    def add(self, value_ns: int) -> None:
        """Count one duration."""
        v = value_ns if value_ns > 0 else 0
        b = self._bucket(v)
        self._counts[b] = self._counts.get(b, 0) + 1
        if self._n == 0:
            self._min = self._max = v
        elif v < self._min:
            self._min = v
        elif v > self._max:
            self._max = v
        self._n += 1
        self._sum += v

    @property
    def count(self) -> int:
        return self._n

    @property
    def buckets(self) -> int:
        """Occupied buckets: the memory this accumulator holds."""
        return len(self._counts)

    def percentile(self, q: float) -> int:
        """Nearest-rank percentile for ``q`` in [0, 1]; 0 when empty. Error: see module doc."""
        return self.percentiles((q,))[0]

    def percentiles(self, qs: tuple[float, ...]) -> tuple[int, ...]:
        """:meth:`percentile` of each of ``qs`` (increasing), in one pass over the buckets
        (a snapshot's three cost one sort, not three)."""
        n = self._n
        if n == 0:
            return tuple(0 for _ in qs)
        out: list[int] = []
        counts = self._counts
        order = iter(sorted(counts))
        seen, b = 0, None
        for q in qs:
            rank = max(1, math.ceil(q * n))
            if rank >= n:
                out.append(self._max)  # the extremes are tracked exactly
                continue
            if rank == 1:
                out.append(self._min)
                continue
            while seen < rank:
                b = next(order)
                seen += counts[b]
            assert b is not None
            if b < 0:
                out.append(self._min)
            else:
                centre = _FLOOR_NS * math.pow(_GROWTH, b + 0.5)
                out.append(min(self._max, max(self._min, round(centre))))
        return tuple(out)

    def snapshot(self) -> LatencySnapshot | None:
        """Frozen summary, or None before the first value."""
        if self._n == 0:
            return None
        p50, p95, p99 = self.percentiles((0.50, 0.95, 0.99))
        return LatencySnapshot(
            count=self._n,
            min_ns=self._min,
            p50_ns=p50,
            p95_ns=p95,
            p99_ns=p99,
            max_ns=self._max,
            mean_ns=self._sum // self._n,
        )


class _PeriodTracker:
    """Running median of an interval series, for "k times the period" decisions.

    The first ``_WARM`` intervals are held back and judged against their own median once
    they are all in, so a gap among the very first frames is still counted exactly; after
    that the median is refreshed every ``_REFRESH`` intervals (a histogram scan is too
    dear to do per frame, and the median of a steady stream barely moves).
    """

    _WARM: Final = 8
    _REFRESH: Final = 32

    __slots__ = ("_early", "_median", "_since", "hist")

    def __init__(self) -> None:
        self.hist = LatencyStats()
        self._early: list[int] | None = []
        self._median = 0
        self._since = 0

    def add(self, interval_ns: int) -> list[tuple[int, int]]:
        """Record one interval; return (interval, median) pairs now ready to be judged."""
        self.hist.add(interval_ns)
        if self._early is not None:
            self._early.append(interval_ns)
            if len(self._early) < self._WARM:
                return []
            self._median = self.hist.percentile(0.5)
            early, self._early = self._early, None
            return [(i, self._median) for i in early]
        self._since += 1
        if self._since >= self._REFRESH:
            self._since = 0
            self._median = self.hist.percentile(0.5)
        return [(interval_ns, self._median)]


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """One camera's stream statistics at ``now_ns``.

    Rates: ``*_window`` cover the last ``window_ns`` before ``now_ns``; ``*_total`` cover the
    run from ``start_ns`` (or the first frame when no start was given) to ``now_ns``.
    Intervals are arrival-to-arrival, in ns; ``jitter_ns`` is p95 − p50 of them, robust to
    the occasional gap that would dominate a standard deviation. A *gap* is an interval
    longer than 1.5 × the nominal period (2 × the median interval when no nominal rate is
    set). ``drops`` counts frames missing by device timestamps (an interval of about k
    periods means k − 1 frames lost); None when the camera sends no device times.
    """

    frames: int
    bytes: int
    fps_window: float
    fps_total: float
    mbps_window: float
    mbps_total: float
    size_mean: int
    size_min: int
    size_max: int
    interval_p50_ns: int | None
    interval_p95_ns: int | None
    interval_p99_ns: int | None
    jitter_ns: int | None
    gaps: int
    longest_gap_ns: int
    drops: int | None
    device_steps_back: int
    time_to_first_frame_ns: int | None
    last_frame_age_ns: int | None


class StreamStats:
    """Accumulates one camera's frames; ``frame`` per frame, ``snapshot`` whenever a view asks.

    ``nominal_fps`` (when known) fixes the period for gap and drop decisions; otherwise the
    running median interval stands in. ``start_ns`` is when the recorder asked for the
    stream, for time-to-first-frame and whole-run rates.
    """

    __slots__ = (
        "_bin_bytes",
        "_bin_frames",
        "_bin_id",
        "_bin_ns",
        "_bytes",
        "_dev_period",
        "_drops",
        "_first_arrival",
        "_frames",
        "_gaps",
        "_intervals",
        "_last_arrival",
        "_last_device",
        "_longest_gap",
        "_nominal_ns",
        "_size_max",
        "_size_min",
        "_steps_back",
        "_window_bins",
        "start_ns",
    )

    def __init__(
        self,
        *,
        nominal_fps: float | None = None,
        start_ns: int | None = None,
        window_ns: int = 2_000_000_000,
        bin_ns: int = 100_000_000,
    ) -> None:
        if window_ns <= 0 or bin_ns <= 0 or window_ns % bin_ns:
            raise ValueError("window_ns must be a positive multiple of bin_ns")
        self.start_ns = start_ns
        self._nominal_ns = round(1e9 / nominal_fps) if nominal_fps else None
        self._bin_ns = bin_ns
        self._window_bins = window_ns // bin_ns
        # Ring of time bins: slot i holds bin id, frames and bytes; a slot whose id is
        # stale is treated as empty, so nothing has to be cleared as time passes.
        self._bin_id = [-1] * self._window_bins
        self._bin_frames = [0] * self._window_bins
        self._bin_bytes = [0] * self._window_bins
        self._frames = 0
        self._bytes = 0
        self._size_min = 0
        self._size_max = 0
        self._first_arrival: int | None = None
        self._last_arrival: int | None = None
        self._last_device: int | None = None
        self._intervals = _PeriodTracker()
        self._dev_period = _PeriodTracker()
        self._gaps = 0
        self._longest_gap = 0
        self._drops: int | None = None
        self._steps_back = 0

    @property
    def memory_cells(self) -> int:
        """Number of stored counters: bounded, whatever the frame count (for tests)."""
        return 3 * self._window_bins + self._intervals.hist.buckets + self._dev_period.hist.buckets

    def frame(self, arrival_ns: int, size: int, device_ns: int | None = None) -> None:
        """Count one frame of ``size`` bytes that arrived at ``arrival_ns``."""
        self._frames += 1
        self._bytes += size
        if self._frames == 1:
            self._size_min = self._size_max = size
            self._first_arrival = arrival_ns
        else:
            self._size_min = min(self._size_min, size)
            self._size_max = max(self._size_max, size)

        bin_id = arrival_ns // self._bin_ns
        slot = bin_id % self._window_bins
        if self._bin_id[slot] != bin_id:
            self._bin_id[slot] = bin_id
            self._bin_frames[slot] = 0
            self._bin_bytes[slot] = 0
        self._bin_frames[slot] += 1
        self._bin_bytes[slot] += size

        if self._last_arrival is not None:
            interval = max(0, arrival_ns - self._last_arrival)
            if self._nominal_ns:
                self._intervals.hist.add(interval)
                self._judge_gap(interval, self._nominal_ns * 3 // 2)
            else:
                for held, median in self._intervals.add(interval):
                    self._judge_gap(held, 2 * median)
        self._last_arrival = arrival_ns

        if device_ns is not None:
            if self._drops is None:
                self._drops = 0
            if self._last_device is not None:
                step = device_ns - self._last_device
                if step <= 0:
                    # Duplicate or stepped-back device clock: not a frame interval.
                    self._steps_back += 1
                elif self._nominal_ns:
                    self._dev_period.hist.add(step)
                    self._drops += self._missing(step, self._nominal_ns)
                else:
                    for held, median in self._dev_period.add(step):
                        self._drops += self._missing(held, median)
            self._last_device = device_ns

    def _judge_gap(self, interval: int, limit: int) -> None:
        if interval > limit:
            self._gaps += 1
            self._longest_gap = max(self._longest_gap, interval)

    @staticmethod
    def _missing(interval: int, period: int) -> int:
        """Frames lost in a device-time interval of about k periods: k − 1 (rounded k)."""
        if period <= 0:
            return 0
        k = (interval + period // 2) // period
        return k - 1 if k >= 2 else 0

    def snapshot(self, now_ns: int) -> StreamSnapshot:
        """Statistics as of ``now_ns`` (same scale as the arrival times)."""
        now_bin = now_ns // self._bin_ns
        oldest = now_bin - self._window_bins + 1
        w_frames = w_bytes = 0
        for slot in range(self._window_bins):
            if oldest <= self._bin_id[slot] <= now_bin:
                w_frames += self._bin_frames[slot]
                w_bytes += self._bin_bytes[slot]
        # The window is whole bins back from the bin holding now: its true span.
        w_span = max(1, now_ns - oldest * self._bin_ns)

        t0 = self.start_ns if self.start_ns is not None else self._first_arrival
        total_span = now_ns - t0 if t0 is not None else 0
        iv = self._intervals.hist
        p50 = iv.percentile(0.5) if iv.count else None
        p95 = iv.percentile(0.95) if iv.count else None
        return StreamSnapshot(
            frames=self._frames,
            bytes=self._bytes,
            fps_window=w_frames * 1e9 / w_span,
            fps_total=self._frames * 1e9 / total_span if total_span > 0 else 0.0,
            mbps_window=w_bytes * 8e3 / w_span,
            mbps_total=self._bytes * 8e3 / total_span if total_span > 0 else 0.0,
            size_mean=self._bytes // self._frames if self._frames else 0,
            size_min=self._size_min,
            size_max=self._size_max,
            interval_p50_ns=p50,
            interval_p95_ns=p95,
            interval_p99_ns=iv.percentile(0.99) if iv.count else None,
            jitter_ns=p95 - p50 if p95 is not None and p50 is not None else None,
            gaps=self._gaps,
            longest_gap_ns=self._longest_gap,
            drops=self._drops,
            device_steps_back=self._steps_back,
            time_to_first_frame_ns=(
                self._first_arrival - self.start_ns
                if self._first_arrival is not None and self.start_ns is not None
                else None
            ),
            last_frame_age_ns=now_ns - self._last_arrival
            if self._last_arrival is not None
            else None,
        )
