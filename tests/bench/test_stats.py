"""Stream statistics: percentiles within the stated bound, exact gap and drop counts,
rates over the window and the run, and memory that does not grow with frames."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mmrec.stats import RELATIVE_ERROR, LatencyStats, StreamStats

PERIOD = 33_333_333  # 30 fps


def nearest_rank(values: list[int], q: float) -> int:
    s = sorted(values)
    return s[max(1, math.ceil(q * len(s))) - 1]


def assert_close(got: int, want: int) -> None:
    # Stated bound: 0.5 % relative at >= 1 µs, < 1 µs absolute below it.
    assert abs(got - want) <= max(RELATIVE_ERROR * want, 1_000) + 1, (got, want)


def test_percentiles_of_known_inputs() -> None:
    ls = LatencyStats()
    values = list(range(1_000, 10_001_000, 1_000))  # 1 µs .. 10 ms, uniform
    for v in values:
        ls.add(v)
    snap = ls.snapshot()
    assert snap is not None
    assert snap.count == len(values)
    assert (snap.min_ns, snap.max_ns) == (1_000, 10_000_000)
    assert_close(snap.p50_ns, 5_000_000)
    assert_close(snap.p95_ns, 9_500_000)
    assert_close(snap.p99_ns, 9_900_000)
    assert snap.mean_ns == sum(values) // len(values)


def test_empty_and_negative() -> None:
    ls = LatencyStats()
    assert ls.snapshot() is None
    assert ls.percentile(0.5) == 0
    ls.add(-5)
    ls.add(300)
    assert ls.percentile(0.0) == 0
    assert ls.percentile(1.0) == 300


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 10**12), min_size=1, max_size=300),
    st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_percentile_error_bound(values: list[int], q: float) -> None:
    ls = LatencyStats()
    for v in values:
        ls.add(v)
    assert_close(ls.percentile(q), nearest_rank(values, q))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 10**12), min_size=0, max_size=300),
    st.lists(st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0]), max_size=5),
)
def test_several_percentiles_in_one_pass_are_each_within_the_bound(
    values: list[int], qs: list[float]
) -> None:
    ls = LatencyStats()
    for v in values:
        ls.add(v)
    qs.sort()
    got = ls.percentiles(tuple(qs))
    assert len(got) == len(qs)
    for g, q in zip(got, qs, strict=True):
        assert g == (ls.percentile(q) if values else 0)
        if values:
            assert_close(g, nearest_rank(values, q))


def test_histogram_memory_is_bounded() -> None:
    rng = np.random.default_rng(1)
    ls = LatencyStats()
    for v in rng.integers(0, 2**62, 20_000).tolist():
        ls.add(v)
    assert ls.buckets < 4_200


def steady(n: int, *, skip: frozenset[int] | set[int] = frozenset(), t0: int = 10**9) -> list[int]:
    return [t0 + i * PERIOD for i in range(n) if i not in skip]


def test_gaps_counted_exactly_with_and_without_nominal_rate() -> None:
    # Gaps of 2, 4 and 3 missing frames; one among the first frames.
    times = steady(300, skip={3, 4, 100, 101, 102, 103, 200, 201, 202})
    for nominal in (30.0, None):
        s = StreamStats(nominal_fps=nominal)
        for t in times:
            s.frame(t, 1_000)
        snap = s.snapshot(times[-1])
        assert snap.gaps == 3
        assert snap.longest_gap_ns == 5 * PERIOD
        assert snap.drops is None  # no device times given


def test_drops_from_device_timestamps() -> None:
    skip = {10, 50, 51, 52, 250}
    dev = steady(400, skip=skip, t0=7_000_000_000)
    rng = np.random.default_rng(3)
    # Arrivals are jittered by up to 30 ms; device times carry the truth.
    arr = [
        d - 6_000_000_000 + int(j) for d, j in zip(dev, rng.uniform(0, 30e6, len(dev)), strict=True)
    ]
    arr = np.maximum.accumulate(arr).tolist()
    for nominal in (30.0, None):
        s = StreamStats(nominal_fps=nominal)
        for a, d in zip(arr, dev, strict=True):
            s.frame(a, 1_000, device_ns=d)
        assert s.snapshot(arr[-1]).drops == len(skip)


def test_device_clock_step_back_is_not_a_drop() -> None:
    s = StreamStats(nominal_fps=30.0)
    dev = [*steady(10), *steady(10, t0=0)]
    for i, d in enumerate(dev):
        s.frame(i * PERIOD, 10, device_ns=d)
    snap = s.snapshot(20 * PERIOD)
    assert (snap.drops, snap.device_steps_back) == (0, 1)


def test_rates_sizes_intervals_and_first_frame() -> None:
    start = 5_000_000_000
    s = StreamStats(start_ns=start)
    times = steady(600, t0=start + 250_000_000)  # 20 s at 30 fps, first frame after 250 ms
    for i, t in enumerate(times):
        s.frame(t, 10_000 + (i % 3) * 1_000)
    now = times[-1] + 1
    snap = s.snapshot(now)
    assert snap.frames == 600
    assert snap.bytes == 200 * (10_000 + 11_000 + 12_000)
    assert (snap.size_min, snap.size_max, snap.size_mean) == (10_000, 12_000, 11_000)
    assert snap.time_to_first_frame_ns == 250_000_000
    assert abs(snap.fps_window - 30.0) < 0.6
    assert abs(snap.mbps_window - 30 * 11_000 * 8 / 1e6) < 0.06
    assert abs(snap.fps_total - 600 / ((now - start) / 1e9)) < 1e-9
    assert snap.interval_p50_ns is not None and snap.jitter_ns is not None
    assert_close(snap.interval_p50_ns, PERIOD)
    assert snap.jitter_ns <= RELATIVE_ERROR * PERIOD * 2
    assert snap.gaps == 0
    assert snap.last_frame_age_ns == 1
    # Nothing arrived in the last window: window rates fall to zero.
    later = s.snapshot(now + 3_000_000_000)
    assert later.fps_window == 0.0
    assert later.mbps_window == 0.0


def test_stream_memory_does_not_grow_with_frames() -> None:
    rng = np.random.default_rng(5)
    s = StreamStats()
    t = 0
    cells = []
    for n in (2_000, 20_000):
        while s.snapshot(t).frames < n:
            t += int(rng.uniform(20e6, 45e6))
            s.frame(t, int(rng.integers(5_000, 50_000)), device_ns=t)
        cells.append(s.memory_cells)
    # Interval buckets between 20 and 45 ms: at most ~82 occupied, whatever the count.
    assert cells[1] - cells[0] <= 5
    assert cells[1] < 3 * 20 + 2 * 100
