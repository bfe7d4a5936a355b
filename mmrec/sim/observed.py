"""A simulated camera's take as the recorder observes it: frames, probes and the truth.

No sockets: the node's own timing model (:class:`~mmrec.sim.timing.FrameSchedule` for
capture, encode delay, jitter, bursts and drops; :class:`~mmrec.sim.timing.DeviceClock`
for the phone's clock) plus a model of the WiFi link gives, for every frame the recorder
would receive, its arrival and ``X-Timestamp`` and its true capture instant, and for
every ``/status`` round trip ``(t0, device clock, t1)``. Hours of take cost a second, so
the clock fit can be measured where end-to-end recording would take hours
(``benchmarks/bench_align.py``, ``tests/timeline/test_refine.py``).

One clock stands for the host's: the recorder's arrival clock and the truth are the same
timeline (0 = the take's start), as in the end-to-end simulator where both are read on
one machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from mmrec.sim.config import NodeConfig
from mmrec.sim.timing import DeviceClock, FrameSchedule
from mmrec.sim.wire import format_timestamp
from mmrec.timeline.align import CameraClock

I64 = npt.NDArray[np.int64]

EPOCH_NS: Final = 1_764_067_200 * 1_000_000_000  # device clocks are Unix wall clocks


@dataclass(frozen=True, slots=True)
class Link:
    """One node's WiFi path to the recorder, each way.

    A frame takes at least ``frame_floor_ns`` (its size over the link rate) and a probe leg
    ``probe_floor_ns``; each adds an exponential excess of mean ``tail_ns``. With
    ``doze_prob`` a request waits up to ``doze_max_ns`` for the phone's radio to wake from
    power save (answers and frames go out while it is awake), so probe legs are asymmetric.
    """

    frame_floor_ns: int = 2_000_000
    probe_floor_ns: int = 1_000_000
    tail_ns: int = 1_500_000
    doze_prob: float = 0.1
    doze_max_ns: int = 100_000_000


@dataclass(frozen=True, slots=True)
class Outage:
    """The node unreachable from ``at_s`` for ``for_s`` seconds: frames lost, probes fail,
    and the stream comes back on a new connection."""

    at_s: float
    for_s: float


@dataclass(frozen=True, slots=True)
class ClockStep:
    """The device clock jumps by ``by_ns`` (NTP step, reboot) at host time ``at_s``."""

    at_s: float
    by_ns: int


@dataclass(frozen=True, slots=True, eq=False)
class ObservedCamera:
    """What the recorder saw of one camera, and the truth (int64 ns, recorder clock)."""

    name: str
    capture_ns: I64  # truth: each received frame's capture instant
    arrival_ns: I64
    device_ns: I64  # X-Timestamp (µs resolution, as the simulator sends it)
    connection: I64  # connection number per frame
    probes: I64  # rows (t0, device ns, t1)
    min_delay_ns: int  # true capture → arrival minimum: encode delay + frame floor
    drift_ppm: float

    @property
    def target_ns(self) -> I64:
        """Capture + min delay: what a fit without probes can reach."""
        return self.capture_ns + self.min_delay_ns


def observe(
    config: NodeConfig,
    *,
    duration_s: float,
    join_s: float = 0.0,
    outages: Sequence[Outage] = (),
    steps: Sequence[ClockStep] = (),
    link: Link | None = None,
    seed: int = 0,
    probes: bool = True,
    probe_every_s: float = 1.0,
    first_probe_s: float = 1.0,
    pre_probes: int = 0,
    fast_s: float | None = None,
    slow_every_s: float = 1.0,
    wander_ppm: float = 0.0,
) -> ObservedCamera:
    """Simulate one camera's take: joined at ``join_s``, recorded until ``duration_s``.

    Probes follow the recorder's loop today: the first ``first_probe_s`` after each
    connection starts, then one every ``probe_every_s``, only while streaming; with
    ``fast_s``, every ``slow_every_s`` from ``fast_s`` after the connection's start on (the
    recorder's PROBE_FAST_NS and PROBE_SLOW_EVERY; a take here is one connection's span).
    ``pre_probes`` adds that many back-to-back probes just before each connection's first
    frame (a burst before the stream, as issue 16's phase 2 plans). ``wander_ppm`` makes
    the drift change linearly by that much over ``duration_s`` (a phone warming up).
    """
    lk = link or Link()
    rng = np.random.default_rng(seed)
    sched = FrameSchedule.of(config)  # as SimNode keeps it
    clock = DeviceClock(0, EPOCH_NS + round(config.clock_offset_s * 1e9), config.drift_ppm)

    wander = wander_ppm * 1e-6 / (duration_s * 1e9)  # drift change per ns

    def device_at(host_ns: int) -> int:
        d = clock.device_ns(host_ns) + round(wander * host_ns * host_ns / 2)
        for st in steps:
            if host_ns >= st.at_s * 1e9:
                d += st.by_ns
        return d

    # Connections: from the join, and again after each outage.
    spans: list[tuple[int, int]] = []
    start = round(join_s * 1e9)
    for out in sorted(outages, key=lambda o: o.at_s):
        spans.append((start, round(out.at_s * 1e9)))
        start = round((out.at_s + out.for_s) * 1e9)
    end = round(duration_s * 1e9)
    spans.append((start, end))

    cap: list[int] = []
    send: list[int] = []
    conn: list[int] = []
    t_probe: list[tuple[int, int, int]] = []
    last_send = 0
    for c, (lo, hi) in enumerate(spans):
        if hi <= lo:
            continue
        # A new watcher gets the next frame due to be sent (SimNode._arm_frames).
        n = sched.frame_at(lo - sched.delay_ns) + 1
        first_send: int | None = None
        while True:
            s = max(sched.send_ns(n), last_send)  # one queue on the phone: order kept
            if s >= hi:
                break
            if not sched.dropped(n):
                cap.append(sched.capture_ns(n))
                send.append(s)
                conn.append(c)
                last_send = s
                first_send = s if first_send is None else first_send
            n += 1
        if probes and first_send is not None:
            t = first_send - pre_probes * 3 * lk.probe_floor_ns - 1_000_000
            for _ in range(pre_probes):
                t = _probe(t, device_at, lk, rng, t_probe)
            t = lo + round(first_probe_s * 1e9)
            slow_from = hi if fast_s is None else lo + round(fast_s * 1e9)
            while t < hi:
                _probe(t, device_at, lk, rng, t_probe)
                t += round((probe_every_s if t < slow_from else slow_every_s) * 1e9)

    capture = np.asarray(cap, dtype=np.int64)
    sent = np.asarray(send, dtype=np.int64)
    net = lk.frame_floor_ns + rng.exponential(lk.tail_ns, sent.size).astype(np.int64)
    arrival = np.maximum.accumulate(sent + net)  # one TCP stream: in order
    device = np.asarray([device_at(int(t)) for t in cap], dtype=np.int64)
    device = device // 1000 * 1000  # X-Timestamp has microseconds
    return ObservedCamera(
        name=config.name,
        capture_ns=capture,
        arrival_ns=arrival,
        device_ns=device,
        connection=np.asarray(conn, dtype=np.int64),
        probes=np.asarray(t_probe, dtype=np.int64).reshape(-1, 3),
        min_delay_ns=sched.delay_ns + lk.frame_floor_ns,
        drift_ppm=config.drift_ppm,
    )


def _probe(
    t0: int,
    device_at: Callable[[int], int],
    lk: Link,
    rng: np.random.Generator,
    out: list[tuple[int, int, int]],
) -> int:
    """One round trip sent at ``t0``; appends it and returns when its answer came back."""
    leg1 = lk.probe_floor_ns + round(rng.exponential(lk.tail_ns))
    if rng.random() < lk.doze_prob:
        leg1 += round(rng.uniform(0, lk.doze_max_ns))
    leg2 = lk.probe_floor_ns + round(rng.exponential(lk.tail_ns))
    out.append((t0, device_at(t0 + leg1), t0 + leg1 + leg2))
    return t0 + leg1 + leg2


def live_times(camera: ObservedCamera, origin_ns: int = 0) -> I64:
    """The times the recorder writes today (``time_ns``): the online ``CameraClock``, fed
    each probe as its answer lands and each frame as it arrives."""
    cc = CameraClock(origin_ns, expect_probes=True)
    pr = camera.probes[np.argsort(camera.probes[:, 2], kind="stable")].tolist()
    out = np.empty(camera.arrival_ns.size, dtype=np.int64)
    j = 0
    for i, (a, d) in enumerate(
        zip(camera.arrival_ns.tolist(), camera.device_ns.tolist(), strict=True)
    ):
        while j < len(pr) and pr[j][2] <= a:
            cc.probe(pr[j][0], pr[j][1], pr[j][2])
            j += 1
        out[i] = cc.place(a, format_timestamp(d)).t_ns + origin_ns
    return out
