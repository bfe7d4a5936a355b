"""Prometheus metrics at ``/metrics``: a collector that reads the console's state when
scraped (nothing is counted twice, nothing runs between scrapes).

Names follow Prometheus conventions: ``mmrec_`` prefix, base units (seconds, bytes),
``_total`` for counters, one ``camera`` label per camera. Checked by
``promtool check metrics`` in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mmrec.console.view import ConsoleState
from mmrec.ingest.stream import CameraState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ConsoleCollector(Collector):
    """Metrics of one console, from ``state()`` at scrape time."""

    def __init__(
        self,
        state: Callable[[], ConsoleState],
        camera_totals: Callable[[], dict[str, tuple[int, int, int]]],
    ) -> None:
        self._state = state
        self._totals = camera_totals  # camera -> (frames, bytes, reconnects) this session

    def collect(self) -> Iterator[Metric]:
        st = self._state()
        totals = self._totals()
        up = GaugeMetricFamily("mmrec_camera_up", "1 while the camera streams", labels=["camera"])
        state = GaugeMetricFamily(
            "mmrec_camera_state", "the camera's ingest state (1 for the current one)",
            labels=["camera", "state"],
        )  # fmt: skip
        fps = GaugeMetricFamily(
            "mmrec_camera_fps", "frames per second received (last 3 s)", labels=["camera"]
        )
        nominal = GaugeMetricFamily(
            "mmrec_camera_nominal_fps", "the rate the node says it captures at", labels=["camera"]
        )
        rate = GaugeMetricFamily(
            "mmrec_camera_receive_bytes_per_second",
            "bytes per second received (last 3 s)",
            labels=["camera"],
        )
        latency = GaugeMetricFamily(
            "mmrec_camera_latency_seconds", "capture-to-arrival latency, median", labels=["camera"]
        )
        unc = GaugeMetricFamily(
            "mmrec_camera_clock_uncertainty_seconds",
            "uncertainty of the camera's clock offset",
            labels=["camera"],
        )
        down = GaugeMetricFamily(
            "mmrec_camera_down_seconds",
            "time since the last frame while not streaming",
            labels=["camera"],
        )
        frames = CounterMetricFamily(
            "mmrec_camera_frames", "frames received this session", labels=["camera"]
        )
        nbytes = CounterMetricFamily(
            "mmrec_camera_received_bytes", "JPEG bytes received this session", labels=["camera"]
        )
        recon = CounterMetricFamily(
            "mmrec_camera_reconnects", "reconnects this session", labels=["camera"]
        )
        dropped = GaugeMetricFamily(
            "mmrec_take_camera_dropped_frames",
            "frames not written in the take being recorded (disk behind)",
            labels=["camera"],
        )
        for c in st.cameras:
            up.add_metric([c.name], 1.0 if c.stream == CameraState.STREAMING else 0.0)
            for s in CameraState:
                state.add_metric([c.name, str(s)], 1.0 if c.stream == s else 0.0)
            f, b, r = totals.get(c.name, (c.frames, 0, c.reconnects))
            frames.add_metric([c.name], f)
            nbytes.add_metric([c.name], b)
            recon.add_metric([c.name], r)
            if c.fps is not None:
                fps.add_metric([c.name], c.fps)
            if c.nominal_fps is not None:
                nominal.add_metric([c.name], c.nominal_fps)
            if c.mbps is not None:
                rate.add_metric([c.name], c.mbps * 1e6 / 8)
            if c.latency_ms is not None:
                latency.add_metric([c.name], c.latency_ms / 1e3)
            if c.clock_uncertainty_ms is not None:
                unc.add_metric([c.name], c.clock_uncertainty_ms / 1e3)
            down.add_metric([c.name], c.down_s or 0.0)
            dropped.add_metric([c.name], c.dropped)
        yield from (
            up,
            state,
            fps,
            nominal,
            rate,
            latency,
            unc,
            down,
            frames,
            nbytes,
            recon,
            dropped,
        )
        rec = st.recording
        yield GaugeMetricFamily(
            "mmrec_take_recording", "1 while a take is being recorded", value=1.0 if rec else 0.0
        )
        yield GaugeMetricFamily(
            "mmrec_take_elapsed_seconds",
            "length of the take being recorded so far",
            value=rec.elapsed_s if rec else 0.0,
        )
        yield CounterMetricFamily("mmrec_takes", "takes recorded this session", value=len(st.takes))
        yield GaugeMetricFamily(
            "mmrec_alerts_active",
            "alerts whose condition holds now",
            value=sum(1 for a in st.alerts if a.active),
        )
        yield GaugeMetricFamily(
            "mmrec_alerts_unacknowledged", "alerts shown until acknowledged", value=len(st.alerts)
        )
        disk = st.disk
        if disk is not None:
            free = GaugeMetricFamily(
                "mmrec_disk_free_bytes",
                "free space of each output folder (--out, then each --relay)",
                labels=["folder"],
            )
            size = GaugeMetricFamily(
                "mmrec_disk_size_bytes", "size of that file system", labels=["folder"]
            )
            for folder in disk.folders:
                if folder.free_bytes is not None:
                    free.add_metric([folder.root], folder.free_bytes)
                    size.add_metric([folder.root], folder.total_bytes or 0)
            yield from (free, size)
            if disk.seconds_left is not None:
                yield GaugeMetricFamily(
                    "mmrec_disk_recording_left_seconds",
                    "recording time left in every output folder: at the rate written during"
                    " a take, at the rate the cameras would write between takes",
                    value=disk.seconds_left,
                )
        yield GaugeMetricFamily(
            "mmrec_console_uptime_seconds", "time since the console started", value=st.uptime_s
        )


def registry_for(collector: ConsoleCollector) -> CollectorRegistry:
    """A registry of its own (not the process-wide default): one console, one registry."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
