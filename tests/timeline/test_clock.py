"""Clock model against simulated ground truth, clock jumps, arrival-only mode, Timeline."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmrec.sim.trace import replay, simulate_camera
from mmrec.timeline.clock import ClockModel, Timeline

MS = 1_000_000
# (seed, offset, drift): offsets up to seconds either way, drifts up to ±100 ppm.
DEVICES = [(11, 3_210_000_000, 87.0), (12, -4_900_000_000, -100.0), (13, 40_000_000, 3.0)]


@pytest.mark.parametrize(("seed", "offset", "drift"), DEVICES)
def test_frames_only_map_to_capture_plus_min_delay(seed: int, offset: int, drift: float) -> None:
    trace = simulate_camera(seed, offset_ns=offset, drift_ppm=drift)  # bursts, stall, reconnect
    r = replay(trace, probes=False)
    err = np.abs(r.error_ns[r.warm])
    assert r.warm.mean() > 0.9  # warm-up: 2 s and 30 frames
    assert np.median(err) < 1 * MS
    assert np.percentile(err, 99) < 5 * MS
    est = r.estimate
    assert abs(est.drift_ppm - drift) < 5
    assert (est.source, est.maps_to, est.resets) == ("device", "capture+min_delay", 0)
    assert est.min_delay_ns is None and est.latency is None
    assert est.excess_delay is not None and est.excess_delay.p50_ns > 1 * MS
    assert 0 < est.uncertainty_ns < 5 * MS
    assert est.fit_span_ns > 50_000_000_000


@pytest.mark.parametrize(("seed", "offset", "drift"), DEVICES)
def test_probes_recover_min_delay_and_map_to_capture(seed: int, offset: int, drift: float) -> None:
    trace = simulate_camera(seed, offset_ns=offset, drift_ppm=drift)
    r = replay(trace, probes=True)
    est = r.estimate
    assert (est.source, est.maps_to) == ("device+probe", "capture")
    assert est.min_delay_ns is not None
    assert abs(est.min_delay_ns - trace.base_delay_ns) < 2 * MS
    err = np.abs(r.error_ns[r.warm])
    assert np.median(err) < 2 * MS
    assert np.percentile(err, 99) < 5 * MS
    assert est.latency is not None
    assert est.latency.min_ns >= 15 * MS and est.latency.p50_ns < 40 * MS


def test_warm_up_rule() -> None:
    m = ClockModel()
    for i in range(120):  # 4 s at 30 fps, constant delay
        d = i * 33_333_333
        m.observe(d, d + 5 * MS)
        assert m.warmed_up == (i + 1 >= 30 and d >= 2_000_000_000)
    assert m.to_local(10**10) == 10**10 + 5 * MS


def test_forward_clock_jump_resets_model() -> None:
    trace = simulate_camera(21, offset_ns=1_000_000_000, drift_ppm=50.0, jump=(30.0, 7 * 10**9))
    r = replay(trace, probes=False)
    assert r.estimate.resets == 1
    after = r.warm & (trace.capture_ns > 33 * 10**9)
    assert np.median(np.abs(r.error_ns[after])) < 1 * MS
    assert np.percentile(np.abs(r.error_ns[after]), 99) < 5 * MS


def test_backward_clock_jump_resets_model_after_confirmation() -> None:
    trace = simulate_camera(22, offset_ns=0, drift_ppm=-30.0, jump=(20.0, -5 * 10**9))
    r = replay(trace, probes=False)
    assert r.estimate.resets == 1
    after = r.warm & (trace.capture_ns > 26 * 10**9)
    assert np.median(np.abs(r.error_ns[after])) < 1 * MS


@pytest.mark.parametrize("step_s", [-10, -0.5, 10])
def test_a_clock_step_is_a_new_segment_at_once_never_a_run_of_packed_frames(
    step_s: float,
) -> None:
    """A device clock stepping either way (NTP, a reboot) resets the model at the first
    stepped frame: every frame stays within its delay of the truth and keeps its spacing
    on the timeline (before, a step back packed ~2 s of frames 1 ms apart)."""
    trace = simulate_camera(
        23, offset_ns=0, drift_ppm=20.0, jump=(20.0, round(step_s * 1e9)),
        stall=None, reconnect_at_s=None, burst_every_s=(100.0, 100.0),
    )  # fmt: skip
    model, timeline = ClockModel(), Timeline(0)
    out = []
    for d, a in zip(trace.device_ns.tolist(), trace.arrival_ns.tolist(), strict=True):
        model.observe(d, a)
        out.append(timeline.place(model.to_local(d), model.shift_ns).t_ns)
    assert model.resets == 1
    assert model.last_step_ns is not None
    assert abs(model.last_step_ns - step_s * 1e9) < 40 * MS  # the step, within the jitter
    error = np.array(out) - (trace.capture_ns + trace.base_delay_ns)
    stepped = trace.capture_ns >= 20 * 10**9
    assert np.max(np.abs(error[stepped])) < 100 * MS
    assert np.min(np.diff(out)) > 10 * MS  # 33 ms apart at 30 fps, none packed


def test_arrival_only_mode_states_arrival_jitter() -> None:
    m = ClockModel()
    rng = np.random.default_rng(4)
    jitter = rng.uniform(0, 10 * MS, 600)
    for i, j in enumerate(jitter):
        m.observe_arrival(i * 33_333_333 + int(j))
    est = m.snapshot()
    assert (est.source, est.maps_to, est.samples, est.warmed_up) == (
        "arrival",
        "arrival",
        600,
        True,
    )
    intervals = np.diff(np.arange(600) * 33_333_333 + jitter.astype(np.int64))
    want = np.percentile(intervals, 95) - np.percentile(intervals, 50)
    assert abs(est.uncertainty_ns - want) < 0.5 * MS


def test_bad_use_is_refused() -> None:
    m = ClockModel()
    with pytest.raises(ValueError):
        m.to_local(0)
    with pytest.raises(ValueError):
        m.observe_probe(10, 5, 9)


# -- Timeline --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**10), 10**10), st.integers(-(10**9), 10**9)),
        min_size=1,
        max_size=200,
    ),
    st.integers(-(10**9), 10**9),
)
def test_timeline_strictly_increasing_for_any_input(
    frames: list[tuple[int, int]], origin: int
) -> None:
    tl = Timeline(origin)
    placed = [tl.place(local, shift) for local, shift in frames]
    ts = [p.t_ns for p in placed]
    pts = [p.pts_ms for p in placed]
    assert ts[0] >= 0
    assert all(b - a >= 1 * MS for a, b in pairwise(ts))
    assert all(b > a for a, b in pairwise(pts))
    assert tl.bumps == sum(p.bumped for p in placed)


def test_timeline_counts_duplicates_and_reversals() -> None:
    tl = Timeline(0)
    out = [tl.place(t).t_ns for t in (10 * MS, 10 * MS, 9 * MS, 50 * MS)]
    assert out[:3] == [10 * MS, 11 * MS, 12 * MS]
    assert out[3] > out[2]
    assert tl.bumps == 2


def test_timeline_slews_a_model_step_instead_of_stepping() -> None:
    tl = Timeline(0)
    period = 33_333_333
    out = [tl.place(i * period).t_ns for i in range(30)]
    # The model now maps 10 ms earlier: shift −10 ms, and the inputs move with it.
    out += [tl.place(i * period - 10 * MS, -10 * MS).t_ns for i in range(30, 90)]
    steps = np.diff(out)
    assert steps.min() > 0.9 * period  # no step back, no bunching
    assert steps.max() <= period + 1
    assert out[-1] == 89 * period - 10 * MS  # worked off within 2 s
    assert tl.bumps == 0


def test_timeline_follows_the_model_through_a_whole_take() -> None:
    trace = simulate_camera(31, offset_ns=-2_000_000_000, drift_ppm=-70.0)
    m = ClockModel()
    origin = int(trace.arrival_ns[0]) - 100 * MS
    tl = Timeline(origin)
    dev = trace.device_ns.tolist()
    arr = trace.arrival_ns.tolist()
    ts, lag = [], []
    for d, a in zip(dev, arr, strict=True):
        m.observe(d, a)
        local = m.to_local(d)
        p = tl.place(local, m.shift_ns)
        ts.append(p.t_ns)
        if m.warmed_up:
            lag.append(p.t_ns - (local - origin))
    assert all(b > a for a, b in pairwise(ts))
    assert np.median(np.abs(lag)) < 0.1 * MS
    assert tl.bumps <= 2
