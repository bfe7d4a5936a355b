"""How close `mmrec bench` comes to what simulated devices really do, on this machine.

Five simulated nodes on loopback (the set ``tests/bench/test_bench_net.py`` checks): four
with known frame rates, capture-to-send delays, uniform send jitter and clock offsets (one
drops 10 % of its frames), and one raw-JPEG node without timestamps. ``Bench`` runs for
``--duration`` seconds and this prints, per node, what it measured against what the node
was set to do: fps against what the node sent, latency p50 against delay + median jitter,
the clock offset's error, the stated uncertainty, time to first frame and to the stream's
response head; and how long the run overran its duration.

The tests keep only bounds that hold on a loaded machine (latency never below the knob,
the run ends within one probe's timeouts); these are the figures the machine decides.

    .venv/bin/python benchmarks/bench_device.py [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys

from mmrec.bench.device import Bench, BenchConfig, BenchTarget
from mmrec.sim import NodeConfig, Quirk, SimMesh

MS = 1_000_000

# name: (fps, capture-to-send delay ms, jitter ms, clock offset s, drop probability)
NODES = {
    "a": (10.0, 0.0, 0.0, 3.2, 0.0),
    "b": (15.0, 20.0, 10.0, -4.5, 0.0),
    "c": (20.0, 50.0, 4.0, 0.12, 0.0),
    "d": (30.0, 20.0, 0.0, 0.0, 0.1),
}


def _node(name: str, fps: float, **kw: object) -> NodeConfig:
    return NodeConfig(name, width=320, height=240, quality=70, fps=fps, ring=8, **kw)  # type: ignore[arg-type]


def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / MS:.1f}"


async def run(duration: float, probe_hz: float) -> None:
    configs = [
        _node(n, fps, delay_ms=dl, jitter_ms=jt, clock_offset_s=off, drop_prob=dp, drift_ppm=20)
        for n, (fps, dl, jt, off, dp) in NODES.items()
    ]
    configs.append(_node("raw", 25.0, quirks=frozenset({Quirk.RAW_JPEG})))
    cfg = BenchConfig(duration_s=duration, probe_hz=probe_hz)
    async with SimMesh(configs, base_host="127.0.0.1", port=0, mdns=False) as mesh:
        targets = [BenchTarget(n.name, n.url) for n in mesh.nodes]
        report = await Bench(targets, cfg).run()
        sent = {n.name: n.connections[-1] for n in mesh.nodes}
    print(f"run: {report.elapsed_ns / 1e9:.3f} s for {duration:g} s asked", end="")
    print(f" (overran by {(report.elapsed_ns - report.duration_ns) / MS:.0f} ms)")
    print(
        f"{'node':5s} {'fps':>6s} {'sent':>6s} {'lat p50':>8s} {'knob':>6s} {'error':>6s}"
        f" {'offset err':>10s} {'uncert.':>8s} {'1st frame':>9s} {'head':>6s} {'probes':>6s}"
    )
    for r in report.devices:
        conn = sent[r.name]
        fps_sent = "-"
        if conn.first_frame is not None and conn.last_frame is not None:
            span = conn.last_frame - conn.first_frame
            nominal = configs[[c.name for c in configs].index(r.name)].fps
            fps_sent = f"{(conn.frames_sent - 1) * nominal / span:.2f}" if span else "-"
        lat = r.latency
        knob = err = offset_err = "-"
        if r.name in NODES:
            _fps, delay_ms, jitter_ms, offset_s, _drop = NODES[r.name]
            expected = delay_ms + jitter_ms / 2
            knob = f"{expected:.1f}"
            if lat.latency is not None:
                err = f"{lat.latency.p50_ns / MS - expected:+.1f}"
            if lat.clock_offset_ns is not None:
                offset_err = f"{(lat.clock_offset_ns / 1e9 - offset_s) * 1000:+.2f}"
        p50 = _ms(lat.latency.p50_ns) if lat.latency is not None else "-"
        print(
            f"{r.name:5s} {r.fps:6.2f} {fps_sent:>6s} {p50:>8s} {knob:>6s} {err:>6s}"
            f" {offset_err:>10s} {_ms(lat.uncertainty_ns):>8s}"
            f" {_ms(r.stream.time_to_first_frame_ns):>9s} {_ms(r.stream_head_ns):>6s}"
            f" {r.probes_ok:6d}"
        )
    print("(times in ms; error = lat p50 - knob; offset err = measured - set clock offset)")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--probe-hz", type=float, default=4.0)
    args = ap.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    asyncio.run(run(args.duration, args.probe_hz))


if __name__ == "__main__":
    main()
