"""Measure each camera node: fps vs nominal, Mbit/s, frame sizes, jitter, drops, latency.

Every device is measured at the same time, on one event loop, for --duration seconds:
achieved fps (nominal from the node's /status "fps", else --fps-nominal, else the median
interval), Mbit/s, frame size, inter-frame interval p50/p95/p99, gaps and drops (from
X-Timestamp), time to first frame, /stream connect-to-head time and /status round trip,
and capture-to-arrival latency with its uncertainty. Latency needs the camera's
X-Timestamp *and* a clock in its /status (probed --probe-hz times a second, NTP-style);
without them the row says "not measurable" and what is shown instead.

A device that cannot be reached gets its own row with the cause; the others go on.
Plots (fps over time, latency CDF) go to --plots DIR, default ./bench-<timestamp>/.
Exit status: 0 if every device delivered frames, 1 if any did not.

examples:
  mmrec sim --nodes 4 &                              # 4 simulated phones
  mmrec bench 127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14 --duration 20
  mmrec bench A=http://192.168.43.21:8081/stream B=192.168.43.22 --plots out/bench
  mmrec bench --discover --interface 192.168.43.10 --duration 30
  mmrec bench --discover --no-mdns --scan 192.168.43.0/24 --host 100.101.7.21
  mmrec bench http://10.0.0.5:8080/video --fps-nominal 25 --json > bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mmrec.bench.device import BenchProgress, BenchReport, DeviceResult
from mmrec.bench.run import Bench, BenchConfig, BenchTarget
from mmrec.commands import options
from mmrec.commands.tables import Cell, fit_table
from mmrec.config import camera_arg
from mmrec.errors import ConfigError
from mmrec.ingest.stream import CameraState
from mmrec.stats import LatencySnapshot


def configure(p: argparse.ArgumentParser) -> None:
    options.add_cameras(p)
    p.add_argument(
        "--duration", type=float, default=10.0, metavar="S", help="seconds to measure (10)"
    )
    options.add_output(p, json_help="no live view; print the results as JSON")
    p.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="folder for fps.png and latency.png (default: ./bench-<timestamp>/)",
    )
    p.add_argument("--no-plots", action="store_true", help="write no plots")
    p.add_argument(
        "--fps-nominal",
        type=float,
        metavar="F",
        help="nominal fps when a node's /status has none (default: the median interval)",
    )
    p.add_argument(
        "--probe-hz",
        type=float,
        default=3.0,
        metavar="HZ",
        help="/status clock probes per second per device (3)",
    )
    options.add_timeouts(p)
    d = options.add_discovery(p, opt_in="also bench the camera nodes discovery finds")
    d.add_argument(
        "--discover-timeout",
        type=float,
        default=options.LISTEN_S,
        metavar="S",
        help=f"how long --discover listens before the bench starts ({options.LISTEN_S:g})",
    )


def targets_from_args(values: list[str]) -> list[BenchTarget]:
    """``URL`` or ``NAME=URL`` arguments as targets (a bare URL is named by its host)."""
    return [BenchTarget(*camera_arg(v)) for v in values]


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    duration = float(args.duration)
    return BenchConfig(
        duration_s=duration,
        fps_nominal=args.fps_nominal,
        probe_hz=args.probe_hz,
        connect_timeout_s=args.connect_timeout,
        read_timeout_s=args.read_timeout,
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(bench_main(args))


async def bench_main(
    args: argparse.Namespace, *, out: IO[str] | None = None, console: Console | None = None
) -> int:
    """The whole command on the running loop (tests await this; ``run`` wraps it)."""
    out = out if out is not None else sys.stdout
    err = console or Console(stderr=True)
    config = config_from_args(args)
    targets = targets_from_args(args.cameras)
    if args.discover:
        targets = merge_targets(targets, await _discover(args, err))
    if not targets:
        raise ConfigError(
            "nothing to bench: give URLs (mmrec bench http://HOST:8081/stream) or --discover"
        )
    bench = Bench(targets, config)
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    with contextlib.suppress(NotImplementedError, RuntimeError):
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, bench.stop)
            handled.append(sig)
    try:
        if args.json:
            report = await bench.run()
        else:
            report = await _run_live(bench, err)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    plots: list[Path] = []
    if not args.no_plots:
        from mmrec.bench.plots import write_bench_plots

        folder = args.plots or Path(f"bench-{_stamp(report.started_wall_ns)}")
        # matplotlib rendering is blocking C work: keep it off the loop.
        plots = await asyncio.to_thread(write_bench_plots, report, folder)
    if args.json:
        json.dump(report_json(report, plots), out, indent=2)
        out.write("\n")
    else:
        shown = Console(file=out)
        shown.print(summary_table(report, shown.width))
        for d in report.devices:
            if not d.latency.measurable:
                err.print(f"[dim]{d.name}: latency {d.latency.note}[/]")
        if plots:
            err.print("plots: " + ", ".join(str(p) for p in plots))
    return 0 if all(d.stream.frames for d in report.devices) else 1


def _stamp(wall_ns: int) -> str:
    return dt.datetime.fromtimestamp(wall_ns / 1e9).strftime("%Y%m%d-%H%M%S")


def merge_targets(given: list[BenchTarget], found: list[BenchTarget]) -> list[BenchTarget]:
    """Given targets first; discovered ones added unless their URL is already there.
    A discovered name that clashes gets a ``-2``, ``-3``... suffix."""
    out = list(given)
    urls = {t.url for t in out}
    names = {t.name for t in out}
    for t in found:
        if t.url in urls:
            continue
        name, k = t.name, 2
        while name in names:
            name, k = f"{t.name}-{k}", k + 1
        out.append(BenchTarget(name, t.url))
        urls.add(t.url)
        names.add(name)
    return out


async def _discover(args: argparse.Namespace, err: Console) -> list[BenchTarget]:
    """Run discovery for --discover-timeout seconds; the answering nodes as targets."""
    from mmrec.discover import survey

    if not args.discover_timeout > 0:
        raise ConfigError("--discover-timeout must be positive")
    config = options.discovery_config(options.discovery_spec(args))
    where = ", ".join(config.interfaces) or "all interfaces"
    if not args.json:
        err.print(f"discovering camera nodes for {args.discover_timeout:g} s on {where}…")
    found = await survey(config, args.discover_timeout)
    cams = [c for c in found.cameras if c.answering]
    if not args.json:
        err.print(f"found {len(cams)} node(s)")
    return [BenchTarget(c.id, c.stream_url) for c in cams]


# -- terminal output ------------------------------------------------------------------


_STATE_COLOR: dict[str, str] = {  # progress rows also say "probing"
    CameraState.STREAMING: "green",
    CameraState.STALLED: "red",
    CameraState.BACKOFF: "yellow",
}


def _ms(ns: int | None, digits: int = 1) -> str:
    return "-" if ns is None else f"{ns / 1e6:.{digits}f}"


def progress_view(p: BenchProgress, width: int = 80) -> Group:
    """Elapsed/remaining, a bar on a line of its own, and one line per device at
    ``width`` columns: its live fps and its current error."""
    elapsed = p.elapsed_ns / 1e9
    total = p.duration_ns / 1e9
    head = Text(
        f"bench {elapsed:5.1f} s / {total:g} s   remaining {max(0.0, total - elapsed):5.1f} s"
    )
    # in a grid row: a bare ProgressBar ends without a line break, and whatever came
    # next (the table's border) was drawn on its line
    bar = Table.grid()
    bar.add_row(ProgressBar(total=total, completed=min(elapsed, total), width=min(50, width)))
    headers = [("device", False), ("state", False), ("fps", True), ("nominal", True)]
    headers += [("frames", True), ("drops", True), ("rtt ms", True), ("error", False)]
    rows: list[list[Cell]] = [
        [
            d.name,
            (d.state, _STATE_COLOR.get(d.state, "")),
            f"{d.fps_window:.1f}",
            f"{d.fps_nominal:g}" if d.fps_nominal else "-",
            str(d.frames),
            "-" if d.drops is None else str(d.drops),
            _ms(d.status_rtt_p50_ns),
            (d.error or "", "red"),
        ]
        for d in p.devices
    ]
    return Group(head, bar, fit_table(None, headers, rows, width, flex="error"))


async def _run_live(bench: Bench, console: Console) -> BenchReport:
    task = asyncio.create_task(bench.run(), name="bench")
    view = progress_view(bench.progress(), console.width)
    with Live(view, console=console, refresh_per_second=4) as live:
        # Bounded by the bench itself: run() ends at its duration (or on stop()).
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            live.update(progress_view(bench.progress(), console.width))
    if not console.is_terminal:
        console.line()  # the last view ends without a line end off a terminal
    return task.result()


def summary_table(report: BenchReport, width: int = 80) -> Group:
    """The final report as two tables (rate, then timing) of one line per device at
    ``width`` columns, then each device's notes (errors, estimates) in full."""
    title = f"mmrec bench: {len(report.devices)} device(s), {report.elapsed_ns / 1e9:.1f} s"
    rate_head = [("device", False), ("state", False), ("fps", True), ("nominal", True)]
    rate_head += [("Mbit/s", True), ("KB/frame", True), ("drops", True), ("gaps", True)]
    timing_head = [("device", False), ("interval p50/95/99", True), ("first", True)]
    timing_head += [("head", True), ("rtt", True), ("latency p50/95", True), ("±", True)]
    rate: list[list[Cell]] = []
    timing: list[list[Cell]] = []
    notes: list[Text] = []
    for d in report.devices:
        s = d.stream
        lat = d.latency
        ok = d.state == "ok"
        note = d.error or ""
        if ok and not lat.measurable:
            note = "latency not measurable" + (f"; {note}" if note else "")
        if d.fps_nominal_source not in ("status", "unknown"):
            note = f"nominal from {d.fps_nominal_source}" + (f"; {note}" if note else "")
        if note:
            notes.append(Text(f"  {d.name}: {note}"))
        rate.append(
            [
                d.name,
                ("ok", "green") if ok else (d.state, "red"),
                f"{d.fps:.2f}" if ok else "-",
                f"{d.fps_nominal:g}" if d.fps_nominal else "-",
                f"{s.mbps_total:.2f}" if ok else "-",
                f"{s.size_mean / 1e3:.1f}" if ok else "-",
                "-" if s.drops is None else str(s.drops),
                str(s.gaps),
            ]
        )
        timing.append(
            [
                d.name,
                f"{_ms(s.interval_p50_ns)}/{_ms(s.interval_p95_ns)}/{_ms(s.interval_p99_ns)}"
                if s.interval_p50_ns is not None
                else "-",
                _ms(s.time_to_first_frame_ns),
                _ms(d.stream_head_ns),
                _ms(d.status_rtt.p50_ns if d.status_rtt else None),
                f"{_ms(lat.latency.p50_ns)}/{_ms(lat.latency.p95_ns)}" if lat.latency else "n/m",
                _ms(lat.uncertainty_ns) if lat.measurable else "-",
            ]
        )
    return Group(
        fit_table(title + " - rate", rate_head, rate, width),
        *notes,
        fit_table(title + " - timing (ms)", timing_head, timing, width),
    )


# -- JSON (made here, at the edge) -------------------------------------------------------


def _r(ns: int | None, digits: int = 3) -> float | None:
    return None if ns is None else round(ns / 1e6, digits)


def _dist(prefix: str, snap: LatencySnapshot | None) -> dict[str, float | None]:
    keys = ("p50", "p95", "p99", "min", "max", "mean")
    if snap is None:
        return {f"{prefix}_{k}": None for k in keys}
    vals = (snap.p50_ns, snap.p95_ns, snap.p99_ns, snap.min_ns, snap.max_ns, snap.mean_ns)
    return {f"{prefix}_{k}": _r(v) for k, v in zip(keys, vals, strict=True)}


def device_json(d: DeviceResult) -> dict[str, Any]:
    """One device's results; units are in the key names (ms, s, bytes, mbit_s, ppm)."""
    s = d.stream
    lat = d.latency
    return {
        "name": d.name,
        "url": d.url,
        "status_url": d.status_url,
        "state": d.state,
        "error": d.error,
        "ingest_state": d.ingest_state,
        "frames": s.frames,
        "bytes": s.bytes,
        "fps": round(d.fps, 3),
        "fps_nominal": d.fps_nominal,
        "fps_nominal_source": d.fps_nominal_source,
        "fps_ratio": round(d.fps / d.fps_nominal, 4) if d.fps_nominal else None,
        "mbit_s": round(s.mbps_total, 3),
        "frame_bytes_mean": s.size_mean if s.frames else None,
        "frame_bytes_min": s.size_min if s.frames else None,
        "frame_bytes_max": s.size_max if s.frames else None,
        "interval_ms_p50": _r(s.interval_p50_ns),
        "interval_ms_p95": _r(s.interval_p95_ns),
        "interval_ms_p99": _r(s.interval_p99_ns),
        "jitter_ms": _r(s.jitter_ns),
        "gaps": s.gaps,
        "longest_gap_ms": _r(s.longest_gap_ns) if s.gaps else None,
        "drops": s.drops,
        "drop_rate": round(d.drop_rate, 4) if d.drop_rate is not None else None,
        "time_to_first_frame_ms": _r(s.time_to_first_frame_ns),
        "stream_head_ms": _r(d.stream_head_ns),
        "reconnects": d.reconnects,
        "status_rtt_ms_p50": _r(d.status_rtt.p50_ns if d.status_rtt else None),
        "status_rtt_ms_min": _r(d.status_rtt.min_ns if d.status_rtt else None),
        "probes_ok": d.probes_ok,
        "probes_failed": d.probes_failed,
        "probe_error": d.probe_error,
        "latency_measurable": lat.measurable,
        "latency_note": lat.note,
        "latency_source": lat.source,
        **_dist("latency_ms", lat.latency),
        "latency_uncertainty_ms": _r(lat.uncertainty_ns) if lat.measurable else None,
        "latency_samples": lat.latency.count if lat.latency else 0,
        "min_delay_ms": _r(lat.min_delay_ns),
        "excess_delay_ms_p50": _r(lat.excess.p50_ns if lat.excess else None),
        "excess_delay_ms_p95": _r(lat.excess.p95_ns if lat.excess else None),
        "arrival_jitter_ms": _r(lat.arrival_jitter_ns),
        "clock_offset_ms": _r(lat.clock_offset_ns),
        "clock_drift_ppm": round(lat.drift_ppm, 3) if lat.drift_ppm is not None else None,
        "clock_resets": lat.clock_resets,
        "fps_series_step_s": d.fps_bin_ns / 1e9,
        "fps_series_window_s": d.fps_window_ns / 1e9,
        "fps_series": [round(v, 2) for v in d.fps_series],
    }


def report_json(report: BenchReport, plots: list[Path]) -> dict[str, Any]:
    """The ``--json`` document: one object, per-device results under ``devices``."""
    started = dt.datetime.fromtimestamp(report.started_wall_ns / 1e9).astimezone()
    return {
        "started_at": started.isoformat(timespec="milliseconds"),
        "duration_s": report.duration_ns / 1e9,
        "elapsed_s": round(report.elapsed_ns / 1e9, 3),
        "probe_hz": report.probe_hz,
        "devices": [device_json(d) for d in report.devices],
        "plots": [str(p) for p in plots],
    }
