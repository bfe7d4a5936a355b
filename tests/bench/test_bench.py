"""Bench measuring logic (pure): fed synthetic traces whose truth is known exactly."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from mmrec.bench.device import BenchReport, DeviceBench
from mmrec.bench.plots import write_bench_plots
from mmrec.commands.bench import (
    config_from_args,
    merge_targets,
    progress_view,
    report_json,
    summary_table,
    targets_from_args,
)
from mmrec.errors import ConfigError
from mmrec.sim.trace import simulate_camera
from mmrec.sim.wire import format_timestamp
from mmrec.wire.status import NodeStatus

MS = 1_000_000


def _bench(**kw: object) -> DeviceBench:
    return DeviceBench("cam", "http://h/stream", "http://h/status", start_ns=0, **kw)  # type: ignore[arg-type]


def _steady(dev: DeviceBench, fps: float, seconds: float, *, drop_every: int = 0) -> int:
    """Feed frames captured at ``fps`` arriving 5 ms later; returns the frames fed."""
    period = round(1e9 / fps)
    fed = 0
    for n in range(int(seconds * fps)):
        if drop_every and n % drop_every == drop_every - 1:
            continue
        capture = 100 * MS + n * period
        dev.frame(
            capture + 5 * MS, 10_000 + n % 7, format_timestamp(1_700_000_000 * 10**9 + capture)
        )
        fed += 1
    return fed


def test_latency_follows_the_truth_of_a_simulated_camera() -> None:
    # 20 s at 30 fps, 20 ms base delay + exponential jitter up to 30 ms, bursts of held
    # frames; probes at 3 Hz with legs of 1-10 ms each. Truth: arrival − capture per frame.
    trace = simulate_camera(
        7,
        offset_ns=2_345_000_000,
        drift_ppm=40.0,
        duration_s=20.0,
        probe_hz=3.0,
        stall=None,
        reconnect_at_s=None,
    )
    dev = _bench()
    epoch = 1_700_000_000 * 10**9  # device clocks are Unix time; the trace starts at 0
    probes = trace.probes.tolist()
    j = 0
    for d, a in zip(trace.device_ns.tolist(), trace.arrival_ns.tolist(), strict=True):
        while j < len(probes) and probes[j][2] <= a:
            t0, dn, t1 = probes[j]
            dev.probe(t0, t1, NodeStatus(device_ns=epoch + dn, fps=30.0))
            j += 1
        dev.frame(a, 20_000, format_timestamp(epoch + d))
    r = dev.result(int(trace.arrival_ns[-1]) + MS)
    truth = (trace.arrival_ns - trace.capture_ns) / MS
    lat = r.latency
    assert lat.measurable and lat.latency is not None and lat.uncertainty_ns is not None
    # Tolerances: p50 and p95 within 2 ms of the truth (probe midpoints are off by up to
    # half the leg difference, 4.5 ms, before the model picks the best quarter).
    assert abs(lat.latency.p50_ns / MS - np.percentile(truth, 50)) < 2.0
    assert abs(lat.latency.p95_ns / MS - np.percentile(truth, 95)) < 2.0
    # ... and the stated uncertainty covers the p50 error
    assert abs(lat.latency.p50_ns - np.percentile(truth, 50) * MS) <= lat.uncertainty_ns
    assert lat.min_delay_ns is not None and abs(lat.min_delay_ns / MS - 20.0) < 2.0
    assert lat.uncertainty_ns < 10 * MS
    assert r.fps == pytest.approx(30.0, rel=0.01)
    assert r.fps_nominal == 30.0 and r.fps_nominal_source == "status"
    assert r.stream.drops == 0
    assert len(lat.samples_ns) == r.stream.frames


def test_fps_drops_sizes_and_series_of_a_steady_stream() -> None:
    dev = _bench(fps_nominal_cli=20.0)
    fed = _steady(dev, 20.0, 10.0, drop_every=10)
    r = dev.result(10_100 * MS)
    assert r.stream.frames == fed == 180
    assert r.stream.drops == 20 - 1  # the last period's drop (frame 199) is never seen
    assert r.drop_rate == pytest.approx(19 / 199)
    assert r.fps == pytest.approx(18.0, rel=0.02)  # (frames − 1) / first-to-last span
    assert r.fps_nominal == 20.0 and r.fps_nominal_source == "cli"
    assert r.stream.size_min == 10_000 and r.stream.size_max == 10_006
    # one point per 250 ms from the first whole second on; 18 frames in each second
    assert len(r.fps_series) == 10_095 // 250 - 3  # up to the last frame's bin (10.095 s)
    assert all(16 <= v <= 20 for v in r.fps_series)


def test_nominal_rate_estimated_from_the_median_interval_without_status_or_cli() -> None:
    dev = _bench()
    _steady(dev, 25.0, 3.0)
    r = dev.result(3_200 * MS)
    assert r.fps_nominal_source == "estimated"
    assert r.fps_nominal == pytest.approx(25.0, rel=0.01)


def test_no_device_timestamps_latency_not_measurable_and_fallback_noted() -> None:
    dev = _bench()
    for n in range(60):
        dev.frame(n * 40 * MS, 5000, None)
    dev.probe(0, 2 * MS, NodeStatus(device_ns=1_700_000_000 * 10**9, fps=25.0))
    r = dev.result(2_500 * MS)
    lat = r.latency
    assert not lat.measurable and lat.latency is None
    assert "not measurable" in lat.note and "X-Timestamp" in lat.note
    assert "fallback: arrival times" in lat.note
    assert lat.arrival_jitter_ns is not None
    assert r.stream.drops is None


def test_device_timestamps_without_status_clock_give_excess_delay_only() -> None:
    dev = _bench()
    dev.probe_failed("/status answered HTTP 404")
    _steady(dev, 20.0, 3.0)
    r = dev.result(3_200 * MS)
    lat = r.latency
    assert not lat.measurable and lat.latency is None and lat.clock_offset_ns is None
    assert "/status" in lat.note and "HTTP 404" in lat.note and "fallback" in lat.note
    assert lat.excess is not None and lat.excess.p50_ns < MS  # constant delay: no excess


def test_unreachable_device_result() -> None:
    dev = _bench()
    dev.probe_failed("/status failed: connection refused")
    r = dev.result(5_000 * MS, ingest_state="backoff", ingest_error="cannot connect", reconnects=3)
    assert r.state == "unreachable" and r.error == "cannot connect"
    assert r.fps == 0.0 and r.stream.frames == 0 and r.fps_series == ()
    assert r.latency.note == "not measurable: no frames arrived"


def test_cli_arguments() -> None:
    # a bare URL is shown by its host (and its port when not the mesh's 8081)
    args = ["A=h:1", "http://x/stream", "10.0.0.7", "http://y:9000/stream"]
    assert [(t.name, t.url) for t in targets_from_args(args)] == [
        ("A", "h:1"),
        ("x", "http://x/stream"),
        ("10.0.0.7", "10.0.0.7"),
        ("y:9000", "http://y:9000/stream"),
    ]
    given = targets_from_args(["cam=http://a/stream"])
    found = targets_from_args(["cam=http://b/stream", "z=http://a/stream"])
    assert [(t.name, t.url) for t in merge_targets(given, found)] == [
        ("cam", "http://a/stream"),
        ("cam-2", "http://b/stream"),
    ]
    ns = argparse.Namespace(
        duration=0.0, fps_nominal=None, probe_hz=3.0, connect_timeout=2.0, read_timeout=3.0
    )
    with pytest.raises(ConfigError, match="--duration"):
        config_from_args(ns)


def _report() -> BenchReport:
    a = _bench(fps_nominal_cli=20.0)
    _steady(a, 20.0, 4.0)
    a.probe(0, 2 * MS, NodeStatus(device_ns=1_700_000_000 * 10**9 + 100 * MS, fps=20.0))
    b = DeviceBench("raw", "http://r/stream", "http://r/status", start_ns=0)
    for n in range(100):
        b.frame(n * 40 * MS, 5000, None)
    c = DeviceBench("dead", "http://d/stream", "http://d/status", start_ns=0)
    c.probe_failed("refused")
    now = 4_100 * MS
    return BenchReport(
        started_wall_ns=1_700_000_000 * 10**9,
        duration_ns=now,
        elapsed_ns=now,
        probe_hz=3.0,
        devices=(
            a.result(now),
            b.result(now),
            c.result(now, ingest_state="backoff", ingest_error="refused"),
        ),
    )


def test_json_shape_units_in_key_names() -> None:
    doc = json.loads(json.dumps(report_json(_report(), [])))
    assert set(doc) == {"started_at", "duration_s", "elapsed_s", "probe_hz", "devices", "plots"}
    ok, raw, dead = doc["devices"]
    for key in (
        "fps", "fps_nominal", "fps_nominal_source", "mbit_s", "frame_bytes_mean",
        "interval_ms_p50", "interval_ms_p95", "interval_ms_p99", "jitter_ms", "gaps",
        "drops", "time_to_first_frame_ms", "stream_head_ms", "status_rtt_ms_p50",
        "latency_measurable", "latency_note", "latency_ms_p50", "latency_ms_p95",
        "latency_ms_p99", "latency_uncertainty_ms", "clock_offset_ms", "fps_series",
    ):  # fmt: skip
        assert key in ok, key
    assert ok["state"] == "ok" and ok["latency_measurable"] is True
    assert isinstance(ok["latency_ms_p50"], float) and ok["fps"] == pytest.approx(20.0, rel=0.01)
    assert raw["latency_measurable"] is False and raw["latency_ms_p50"] is None
    assert raw["drops"] is None and "X-Timestamp" in raw["latency_note"]
    assert dead["state"] == "unreachable" and dead["error"] == "refused"
    assert dead["fps_nominal"] is None and dead["frames"] == 0


def test_plots_are_written_as_png(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    paths = write_bench_plots(_report(), tmp_path / "plots")
    assert [p.name for p in paths] == ["fps.png", "latency.png"]
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def _lines(renderable: object, width: int) -> list[str]:
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_progress_bar_and_table_never_share_a_line() -> None:
    from rich.cells import cell_len

    from mmrec.bench.device import BenchProgress, DeviceProgress

    refused = "cannot connect to 127.0.0.1:9: Connection refused"
    progress = BenchProgress(
        3_000 * MS,
        10_000 * MS,
        (
            DeviceProgress("cam-a", "streaming", 90, 29.9, 30.0, 0, 1_200_000, None),
            DeviceProgress("127.0.0.1:9", "backoff", 0, 0.0, None, None, None, refused),
        ),
    )
    for width in (80, 100, 200):
        head, bar, header, rule, a, b = _lines(progress_view(progress, width), width)
        assert head.startswith("bench   3.0 s / 10 s")
        assert set(bar) <= {"━", "╸", "╺", " "}, bar  # the bar alone on its line
        assert header.split() == [
            "device", "state", "fps", "nominal", "frames", "drops", "rtt", "ms", "error",
        ]  # fmt: skip
        assert set(rule) == {"─"}
        assert a.split() == ["cam-a", "streaming", "29.9", "30", "90", "0", "1.2"]
        assert b.split()[:2] == ["127.0.0.1:9", "backoff"] and "cannot connect" in b
        assert all(cell_len(line) <= width for line in (head, bar, header, rule, a, b))
    assert b.endswith(refused)  # at 200 columns, in full


def test_summary_is_one_line_per_device_at_80_columns_with_notes_in_full() -> None:
    lines = _lines(summary_table(_report(), 80), 80)
    assert all(len(line) <= 80 for line in lines)
    rate_title, rate_head, _, ok, raw, dead, note_raw, note_dead = lines[:8]
    assert rate_title.endswith("- rate")
    assert rate_head.split() == [
        "device", "state", "fps", "nominal", "Mbit/s", "KB/frame", "drops", "gaps",
    ]  # fmt: skip
    assert ok.split()[:3] == ["cam", "ok", "20.00"]
    assert raw.split()[:2] == ["raw", "ok"] and dead.split()[:2] == ["dead", "unreachable"]
    assert note_raw == "  raw: nominal from estimated; latency not measurable"
    assert note_dead == "  dead: refused"
    timing_title, timing_head, _, *timing = lines[8:]
    assert timing_title.endswith("- timing (ms)") and len(timing) == 3
    assert timing_head.split()[:3] == ["device", "interval", "p50/95/99"]
