"""Benchmark camera nodes: the thin I/O layer around :class:`~mmrec.bench.device.DeviceBench`.

One :class:`~mmrec.ingest.stream.CameraIngest` per device and one ``/status`` prober per
device (:class:`mmrec.ingest.status.StatusProbe`, timed at the socket), all on one event
loop, for a fixed duration. A device that cannot be reached ends in its own row (state
and cause) and never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mmrec.bench.device import BenchProgress, BenchReport, DeviceBench
from mmrec.errors import CameraError, ConfigError
from mmrec.ingest.status import StatusProbe
from mmrec.ingest.stream import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    CameraIngest,
    CameraState,
    IngestConfig,
    Received,
    StreamTarget,
)


@dataclass(frozen=True, slots=True)
class BenchTarget:
    """One device to bench: its name and ``/stream`` URL (``/status`` is on the same port)."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class BenchConfig:
    duration_s: float = 10.0
    fps_nominal: float | None = None  # used when /status has no fps
    probe_hz: float = 3.0  # /status clock probes per second per device
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S  # stream silent this long: stalled; also /status
    fps_bin_ns: int = 250_000_000  # fps-over-time resolution
    fps_window_ns: int = 1_000_000_000  # ... each point counts the frames of this window
    max_latency_samples: int = 65_536

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ConfigError("--duration must be positive")
        if self.fps_nominal is not None and not 0 < self.fps_nominal <= 1000:
            raise ConfigError("--fps-nominal must be in (0, 1000]")
        if not 0 < self.probe_hz <= 50:
            raise ConfigError("probe rate must be in (0, 50] per second")
        if not (self.connect_timeout_s > 0 and self.read_timeout_s > 0):
            raise ConfigError("timeouts must be positive")


class _Device:
    """One device's live parts: target, accumulator, ingest (set while running)."""

    def __init__(self, target: StreamTarget, bench: DeviceBench) -> None:
        self.target = target
        self.bench = bench
        self.ingest: CameraIngest | None = None


class Bench:
    """Bench every target at once on the running loop; ``await run()`` returns the report.

    ``stop()`` ends the run early (Ctrl-C); the report then covers what was measured.
    Nothing outlives :meth:`run`: ingests are stopped and awaited, probe tasks end with
    it and the HTTP session is closed.
    """

    def __init__(
        self,
        targets: Sequence[BenchTarget],
        config: BenchConfig,
    ) -> None:
        names = [t.name for t in targets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"device name {dup[0]!r} is given twice")
        if not targets:
            raise ConfigError("nothing to bench: give URLs or --discover")
        self.config = config
        self._targets = [StreamTarget.from_url(t.name, t.url) for t in targets]
        self._devices: list[_Device] = []
        self._start_ns = 0
        self._end_ns: int | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def progress(self) -> BenchProgress:
        now = time.monotonic_ns()
        rows = []
        for d in self._devices:
            st = d.ingest.stats() if d.ingest is not None else None
            # the error that is current: a device streaming again shows none of its
            # earlier connect errors
            stream_error = st.last_error if st and st.state != CameraState.STREAMING else None
            rows.append(
                d.bench.progress(
                    now,
                    st.state if st else "probing",
                    stream_error or (d.bench.probe_error if d.bench.probe_failing else None),
                )
            )
        return BenchProgress(
            elapsed_ns=(self._end_ns or now) - self._start_ns if self._start_ns else 0,
            duration_ns=round(self.config.duration_s * 1e9),
            devices=tuple(rows),
        )

    async def run(self) -> BenchReport:
        cfg = self.config
        loop = asyncio.get_running_loop()
        wall = time.time_ns()
        self._start_ns = time.monotonic_ns()
        wall_minus_mono = wall - self._start_ns
        self._devices = [
            _Device(
                t,
                DeviceBench(
                    t.name,
                    t.url,
                    t.status_url,
                    start_ns=self._start_ns,
                    wall_minus_mono_ns=wall_minus_mono,
                    fps_nominal_cli=cfg.fps_nominal,
                    fps_bin_ns=cfg.fps_bin_ns,
                    fps_window_ns=cfg.fps_window_ns,
                    max_latency_samples=cfg.max_latency_samples,
                ),
            )
            for t in self._targets
        ]
        timer = loop.call_later(cfg.duration_s, self._stop.set)
        try:
            async with asyncio.TaskGroup() as tg:
                for d in self._devices:
                    tg.create_task(self._run_device(d), name=f"bench:{d.target.name}")
        finally:
            timer.cancel()
        end = self._end_ns = time.monotonic_ns()
        results = []
        for d in self._devices:
            st = d.ingest.stats() if d.ingest is not None else None
            results.append(
                d.bench.result(
                    end,
                    ingest_state=st.state if st else "not started",
                    ingest_error=st.last_error if st else None,
                    reconnects=st.reconnects if st else 0,
                )
            )
        return BenchReport(
            started_wall_ns=wall,
            duration_ns=round(cfg.duration_s * 1e9),
            elapsed_ns=end - self._start_ns,
            probe_hz=cfg.probe_hz,
            devices=tuple(results),
        )

    async def _run_device(self, d: _Device) -> None:
        # Probes are timed at the socket on a kept-alive connection (mmrec.ingest.status).
        prober = StatusProbe(
            d.target.host,
            d.target.port,
            d.target.name,
            timeout=self.config.connect_timeout_s + self.config.read_timeout_s,
        )
        try:
            await self._run_device_with(d, prober)
        finally:
            prober.close()

    async def _run_device_with(self, d: _Device, prober: StatusProbe) -> None:
        cfg = self.config
        # The first /status answer fixes the nominal rate before the first frame.
        await self._probe(d, prober)
        if self._stop.is_set():
            return

        def on_state(_: CameraIngest, state: CameraState) -> None:
            if state == CameraState.CONNECTING:
                d.bench.stream_requested(time.monotonic_ns())
            elif state == CameraState.STREAMING:
                d.bench.stream_head(time.monotonic_ns())

        def sink(rx: Received) -> None:
            d.bench.frame(rx.arrival_ns, len(rx.data), rx.device_ts)

        ingest = CameraIngest(
            d.target,
            sink,
            IngestConfig(connect_timeout=cfg.connect_timeout_s, read_timeout=cfg.read_timeout_s),
            on_state=on_state,
        )
        d.bench.stream_requested(time.monotonic_ns())
        d.ingest = ingest
        task = asyncio.create_task(ingest.run(), name=f"bench-ingest:{d.target.name}")
        try:
            period = 1.0 / cfg.probe_hz
            # Bounded: at most duration × rate rounds, each bounded by its timeouts.
            for _ in range(int(cfg.duration_s * cfg.probe_hz) + 2):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), period)
                if self._stop.is_set():
                    break
                await self._probe(d, prober)
        finally:
            ingest.stop()
            await task

    async def _probe(self, d: _Device, prober: StatusProbe) -> None:
        """One NTP-style round trip to ``/status``; failures are counted, never raised."""
        try:
            t0, t1, status = await prober.probe()
        except CameraError as exc:
            d.bench.probe_failed(exc.cause)
            return
        d.bench.probe(t0, t1, status)
