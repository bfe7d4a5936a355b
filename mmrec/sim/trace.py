"""Ground-truth clock traces: a simulated camera's frames and ``/status`` probes against a
known device clock, and a replay of them through :class:`~mmrec.timeline.clock.ClockModel`.

Pure and seeded (numpy): the harness behind the clock model's tests and
``benchmarks/bench_clock.py``; no sockets and no real time (the replay only times the
model's ``observe``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from mmrec.timeline.clock import ClockEstimate, ClockModel

_PPM: Final = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class SimTrace:
    """One simulated camera: per-frame truth and observations, int64 ns arrays.

    ``capture_ns`` is the true capture instant on the recorder clock; ``device_ns`` the
    device clock then (µs resolution, like ``X-Timestamp``); ``arrival_ns`` when the
    recorder got the frame. ``probes`` rows are ``(t0, device, t1)``.
    """

    capture_ns: npt.NDArray[np.int64]
    device_ns: npt.NDArray[np.int64]
    arrival_ns: npt.NDArray[np.int64]
    probes: npt.NDArray[np.int64]
    offset_ns: int
    drift_ppm: float
    base_delay_ns: int


def simulate_camera(
    seed: int,
    *,
    offset_ns: int,
    drift_ppm: float,
    duration_s: float = 60.0,
    fps: float = 30.0,
    base_delay_ns: int = 20_000_000,
    jitter_max_ns: int = 30_000_000,
    burst_every_s: tuple[float, float] = (3.0, 6.0),
    burst_frames: tuple[int, int] = (5, 10),
    stall: tuple[float, float] | None = (25.0, 3.0),
    reconnect_at_s: float | None = 40.0,
    probe_hz: float = 1.0,
    probe_leg_ns: tuple[int, int] = (1_000_000, 10_000_000),
    jump: tuple[float, int] | None = None,
) -> SimTrace:
    """Simulate one camera's frames and probes against a known device clock.

    Device clock: ``offset + capture·(1 + drift)``, stepping by ``jump[1]`` ns at
    ``jump[0]`` s when given. Delay: ``base`` + jitter, exponential (mean jitter_max/5)
    before the reconnect and uniform 0..jitter_max after it, capped at jitter_max; every
    few seconds a burst holds 5–10 frames and releases them back to back; a stall loses
    all frames (and probes) for its length; the reconnect loses 0.5 s. Delivery is in
    order, as over TCP. Probe legs are each uniform in ``probe_leg_ns``.
    """
    rng = np.random.default_rng(seed)
    period = 1e9 / fps
    capture = np.round(np.arange(100e6, duration_s * 1e9, period)).astype(np.int64)

    def device_at(t: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        d = offset_ns + t.astype(np.float64) * (1.0 + drift_ppm * _PPM)
        if jump is not None:
            d = np.where(t >= jump[0] * 1e9, d + jump[1], d)
        return (np.floor(d / 1000.0) * 1000.0).astype(np.int64)

    keep = np.ones(capture.size, dtype=bool)
    lost: list[tuple[float, float]] = []
    if stall is not None:
        lost.append((stall[0] * 1e9, (stall[0] + stall[1]) * 1e9))
    if reconnect_at_s is not None:
        lost.append((reconnect_at_s * 1e9, (reconnect_at_s + 0.5) * 1e9))
    for lo, hi in lost:
        keep &= ~((capture >= lo) & (capture < hi))
    capture = capture[keep]

    after = capture >= (reconnect_at_s * 1e9 if reconnect_at_s is not None else np.inf)
    jit = np.where(
        after,
        rng.uniform(0, jitter_max_ns, capture.size),
        rng.exponential(jitter_max_ns / 5, capture.size),
    )
    arrival = capture + base_delay_ns + np.minimum(jit, jitter_max_ns).astype(np.int64)
    t = rng.uniform(*burst_every_s)
    while t < duration_s:
        i = int(np.searchsorted(capture, t * 1e9))
        k = int(rng.integers(burst_frames[0], burst_frames[1] + 1))
        if i + k <= capture.size:
            release = int(arrival[i + k - 1]) + int(rng.uniform(0, 20e6))
            arrival[i : i + k] = release + np.arange(k) * 200_000
        t += rng.uniform(*burst_every_s)
    arrival = np.maximum.accumulate(arrival)  # in-order delivery: head-of-line blocking

    t0 = np.round(np.arange(0.5e9, duration_s * 1e9, 1e9 / probe_hz)).astype(np.int64)
    for lo, hi in lost:
        t0 = t0[~((t0 >= lo) & (t0 < hi))]
    leg1 = rng.integers(*probe_leg_ns, size=t0.size, endpoint=True)
    leg2 = rng.integers(*probe_leg_ns, size=t0.size, endpoint=True)
    probes = np.stack([t0, device_at(t0 + leg1), t0 + leg1 + leg2], axis=1)

    return SimTrace(
        capture_ns=capture,
        device_ns=device_at(capture),
        arrival_ns=arrival,
        probes=probes,
        offset_ns=offset_ns,
        drift_ppm=drift_ppm,
        base_delay_ns=base_delay_ns,
    )


@dataclass(frozen=True, slots=True, eq=False)
class ReplayResult:
    """Per-frame mapping errors (ns) of one replay, and the model at its end."""

    error_ns: npt.NDArray[np.int64]  # to_local(device) − target, per frame
    warm: npt.NDArray[np.bool_]  # model warmed up when the frame was mapped
    estimate: ClockEstimate
    observe_ns_per_frame: float


def replay(trace: SimTrace, *, probes: bool, model: ClockModel | None = None) -> ReplayResult:
    """Feed a trace to a model in arrival order, mapping each frame right after it arrives.

    The target is ``capture`` with probes and ``capture + base delay`` without, so the
    error is what an online recorder would write. Probes are fed when their answer lands.
    """
    m = model if model is not None else ClockModel()
    dev = trace.device_ns.tolist()
    arr = trace.arrival_ns.tolist()
    target = trace.capture_ns + (0 if probes else trace.base_delay_ns)
    pr = trace.probes.tolist() if probes else []
    mapped = [0] * len(dev)
    warm = [False] * len(dev)
    j = 0
    spent = 0
    for i, (d, a) in enumerate(zip(dev, arr, strict=True)):
        while j < len(pr) and pr[j][2] <= a:
            m.observe_probe(pr[j][0], pr[j][1], pr[j][2])
            j += 1
        t = time.perf_counter_ns()
        m.observe(d, a)
        spent += time.perf_counter_ns() - t
        mapped[i] = m.to_local(d)
        warm[i] = m.warmed_up
    return ReplayResult(
        error_ns=np.asarray(mapped, dtype=np.int64) - target,
        warm=np.asarray(warm, dtype=np.bool_),
        estimate=m.snapshot(),
        observe_ns_per_frame=spent / max(1, len(dev)),
    )
