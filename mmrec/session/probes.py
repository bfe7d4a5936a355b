"""A camera's clock probes: NTP-style round trips to its node's ``/status`` clock.

Before each connection to the stream (the first and every reconnect) a burst of
``PROBE_BURST`` round trips measures the node's clock, so even the first frame of a
connection is placed by the measured offset rather than by its arrival (which is late by
the node's latency, 2-40 ms); then, while streaming, one probe every ``PROBE_EVERY`` for
the first ``PROBE_FAST_NS`` of the connection and of each take, one every
``PROBE_SLOW_EVERY`` after that. The recent probes are kept (a bounded window) and handed
to a take, which writes them to ``probes.csv`` for the whole-take refinement.
:class:`ClockProbes` does the asking; what an answer means (the clock model, the node's
identity) is its camera's (:class:`mmrec.session.camera.CameraFeed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from mmrec.errors import CameraError
from mmrec.ingest.status import StatusProbe
from mmrec.ingest.stream import CameraIngest, CameraState, StreamTarget
from mmrec.wire.status import NodeStatus

# Probe cadence, chosen by measurement (benchmarks/bench_align.py, simulated WiFi-like
# links, 5 seeds x 6 cameras): with a burst of 8 before each stream the first second is
# placed within 1 ms live (without it: 50-150 ms off, by arrival); 4 Hz over a 60 s take
# puts the refined drift within 1 ppm for 93 % of cameras, worst 1.2 ppm (2 Hz: 80 %, worst
# 2.1; 1 Hz: 77 %, worst 4.0; 1 Hz without the burst: 67 %, worst 5.7) and the refined p99
# under 0.08 ms (1-2 Hz: 0.16-0.17 ms). What a take needs is many probes over a long span,
# so the fast rate is kept for PROBE_FAST_NS from each connection and from each take's
# start, then PROBE_SLOW_EVERY: a longer take only gains span (bench_align's "4 Hz for
# 60 s, then 1 Hz" runs) and a camera kept connected all day (the console) costs a quarter.
# Cost: ~0.2 ms of the loop's CPU per probe (benchmarks/bench_probe.py), so 0.08 % of a
# core per camera at 4 Hz, 0.02 % at 1 Hz; one round trip in flight at a time.
PROBE_EVERY: Final = 0.25
PROBE_SLOW_EVERY: Final = 1.0
PROBE_FAST_NS: Final = 60_000_000_000  # fast probing after a connection or a take's start
PROBE_BURST: Final = 8  # probes back to back before each connection to the stream
BURST_DEADLINE_S: Final = 1.0  # a burst never holds a connection back longer than this
BURST_MIN_GAP_NS: Final = 5_000_000_000  # at most one burst per 5 s (a flapping link)
PROBE_RETRY_S: Final = 10.0  # after 3 failures in a row (no /status, no clock): slowly


class ClockProbes:
    """One camera's probes: the cadence, the burst before each connection, one round trip
    at a time on a kept-alive ``/status`` link. Every answer goes to ``on_status``; one
    that reads the node's clock to ``on_sample(t0, device_ns, t1)`` (monotonic ns)."""

    def __init__(
        self,
        camera: str,
        on_status: Callable[[NodeStatus], None],
        on_sample: Callable[[int, int, int], None],
        *,
        keep: int,
    ) -> None:
        self.camera = camera
        self._on_status = on_status
        self._on_sample = on_sample
        self.ok = 0  # probes answered with the node's clock
        self.no_clock = False  # the node's /status answers without a clock
        self.error: str | None = None  # why the last probe failed
        self._recent: deque[tuple[int, int, int]] = deque(maxlen=keep)  # (t0, device, t1)
        self._lock = asyncio.Lock()  # one round trip at a time on the kept-alive link
        self._last_burst_ns: int | None = None
        self._prober: StatusProbe | None = None
        self._fast_until_ns = 0  # monotonic: probe every PROBE_EVERY until then

    def hurry(self, now_ns: int | None = None) -> None:
        """Probe at the fast rate for the next ``PROBE_FAST_NS`` (a take starts, or a
        connection): the refinement of a take wants many probes from its start."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        self._fast_until_ns = max(self._fast_until_ns, now + PROBE_FAST_NS)

    def period(self, now_ns: int) -> float:
        """Seconds to the next probe of a camera that answers."""
        return PROBE_EVERY if now_ns < self._fast_until_ns else PROBE_SLOW_EVERY

    def since(self, since_mono_ns: int) -> list[tuple[int, int, int]]:
        """Probes kept in memory sent at or after ``since_mono_ns``: (t0, device, t1)."""
        return [p for p in self._recent if p[0] >= since_mono_ns]

    def note(self, *, enabled: bool) -> str | None:
        """What the manifest says of the camera's clock when no probe could measure it."""
        if not enabled:
            return "clock probes off: times are capture + min delay"
        if self.ok == 0 and self.no_clock:
            return (
                "the node's /status has no clock: times are capture + this camera's min delay"
                " (unknown, not measured), from its X-Timestamps"
            )
        if self.ok == 0 and self.error:
            return f"no clock probe answered ({self.error}): times are capture + min delay"
        return None

    async def run(self, ingest: CameraIngest) -> None:
        """Probe while ``ingest`` streams: every ``PROBE_EVERY`` for ``PROBE_FAST_NS`` after
        a connection or a take's start (:meth:`hurry`), else every ``PROBE_SLOW_EVERY``.

        Each answer gives an independent sample (t0, device clock, t1) that lets the clock
        model target the capture instant rather than capture + min delay. A node whose
        ``/status`` fails or has no clock is asked again only every ``PROBE_RETRY_S``. The
        body is capped and the request timed (mmrec.ingest.status), so a hostile node costs
        nothing more.
        """
        try:
            failures = 0
            while True:
                wait = self.period(time.monotonic_ns()) if failures < 3 else PROBE_RETRY_S
                await asyncio.sleep(wait)
                if ingest.state != CameraState.STREAMING:
                    continue
                failures = 0 if await self.once(ingest.target) else failures + 1
                if self.no_clock:  # it answered, without a clock: no use asking often
                    failures = max(failures, 3)
        finally:
            if self._prober is not None:
                self._prober.close()

    async def burst(self, target: StreamTarget) -> None:
        """Before a connection to the stream: ``PROBE_BURST`` probes back to back, so the
        connection's first frame is placed by the measured clock offset. Bounded: at most
        ``BURST_DEADLINE_S``, one answered burst per ``BURST_MIN_GAP_NS``, none for a node
        whose ``/status`` has no clock, and the first failure ends it (the stream's own
        connect then says what is wrong; a node that is away costs one request per
        attempt, and the attempt that finds it back gets its burst)."""
        now = time.monotonic_ns()
        self.hurry(now)  # a new connection: its clock model wants probes
        if self.no_clock or (
            self._last_burst_ns is not None and now - self._last_burst_ns < BURST_MIN_GAP_NS
        ):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BURST_DEADLINE_S):
                for _ in range(PROBE_BURST):
                    if not await self.once(target):
                        break
                    self._last_burst_ns = now

    async def once(self, target: StreamTarget) -> bool:
        """One round trip over the kept-alive ``/status`` connection; True if it read the
        node's clock."""
        async with self._lock:
            prober = self._prober
            if prober is None or (prober.host, prober.port) != (target.host, target.port):
                if prober is not None:
                    prober.close()
                self._prober = prober = StatusProbe(target.host, target.port, self.camera)
            try:
                t0, t1, status = await prober.probe()
            except CameraError as exc:
                self.error = exc.cause
                return False
        self._on_status(status)
        if status.device_ns is None:
            self.no_clock = True
            return False
        self.no_clock = False
        self.ok += 1
        self._recent.append((t0, status.device_ns, t1))
        self._on_sample(t0, status.device_ns, t1)
        return True
