"""PNG plots of a bench run: fps over time and the latency distribution, per device.

Rendering uses matplotlib's object API with the Agg canvas (no pyplot, no global figure
state, no display needed), so it is safe in a worker thread; callers on the event loop
should run :func:`write_bench_plots` in one (it is blocking C work, ~0.3 s a figure).
Each figure has a title, axis labels with units and a legend naming every device.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mmrec.bench.device import BenchReport, DeviceResult
from mmrec.errors import RecordingError

_DPI = 110
_SIZE = (9.0, 5.0)  # inches: 990x550 px, legible in a report or a terminal image viewer


def _label(d: DeviceResult) -> str:
    return d.name if d.state == "ok" else f"{d.name} ({d.state})"


def _window_s(report: BenchReport) -> float:
    return report.devices[0].fps_window_ns / 1e9 if report.devices else 1.0


def _figure() -> Figure:
    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def fps_figure(report: BenchReport) -> Figure:
    """Achieved fps in each time bin, one line per device; nominal rates dashed."""
    fig = _figure()
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(report.devices))]
    for d, color in zip(report.devices, colors, strict=True):
        if not d.fps_series:
            continue
        step = d.fps_bin_ns / 1e9
        first = d.fps_window_ns / 1e9  # the first point covers the first whole window
        xs = [first + i * step for i in range(len(d.fps_series))]
        ax.plot(
            xs,
            d.fps_series,
            color=color,
            lw=1.8,
            label=f"{_label(d)}: {d.fps:.1f} fps",
        )
        if d.fps_nominal is not None:
            ax.axhline(d.fps_nominal, color=color, ls="--", lw=0.9, alpha=0.7)
    ax.set_title(
        f"Frame rate over time (frames in the last {_window_s(report):g} s; dashed: nominal)",
        fontsize=13,
    )
    ax.set_xlabel("time since bench start (s)")
    ax.set_ylabel("frames per second (fps)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    missing = [d.name for d in report.devices if not d.fps_series]
    if missing:
        ax.text(
            0.01,
            0.02,
            "no frames: " + ", ".join(missing),
            transform=ax.transAxes,
            fontsize=9,
            color="0.35",
        )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=9, framealpha=0.9)
    return fig


def latency_figure(report: BenchReport) -> Figure:
    """Empirical CDF of capture-to-arrival latency, one line per measurable device."""
    fig = _figure()
    ax = fig.add_subplot()
    unmeasurable: list[str] = []
    for i, d in enumerate(report.devices):
        lat = d.latency
        if not lat.measurable or not lat.samples_ns or lat.latency is None:
            unmeasurable.append(d.name)
            continue
        xs = sorted(v / 1e6 for v in lat.samples_ns)
        n = len(xs)
        ys = [(k + 1) / n for k in range(n)]
        unc = (lat.uncertainty_ns or 0) / 1e6
        ax.plot(
            xs,
            ys,
            drawstyle="steps-post",
            color=f"C{i % 10}",
            lw=1.8,
            label=f"{d.name}: p50 {lat.latency.p50_ns / 1e6:.1f} ms (± {unc:.1f})",
        )
    ax.set_title("Capture-to-arrival latency (CDF per device)", fontsize=13)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of frames")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.axhline(0.95, color="0.6", lw=0.8, ls=":")
    ax.grid(True, alpha=0.3)
    if unmeasurable:
        ax.text(
            0.99,
            0.03,
            "not measurable: " + ", ".join(unmeasurable),
            transform=ax.transAxes,
            ha="right",
            fontsize=9,
            color="0.35",
        )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="center right", fontsize=9, framealpha=0.9)
    else:
        ax.text(
            0.5,
            0.5,
            "latency not measurable for any device\n(needs X-Timestamp and a /status clock)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=11,
        )
    return fig


def write_bench_plots(report: BenchReport, out_dir: Path) -> list[Path]:
    """Write ``fps.png`` and ``latency.png`` into ``out_dir`` (created); returns the paths."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, make in (("fps.png", fps_figure), ("latency.png", latency_figure)):
            path = out_dir / name
            make(report).savefig(path, dpi=_DPI)
            paths.append(path)
    except OSError as exc:
        raise RecordingError(f"cannot write plots to {out_dir}: {exc.strerror or exc}") from exc
    return paths
