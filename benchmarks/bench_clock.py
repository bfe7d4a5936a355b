"""Clock model against simulated ground truth: alignment error, drift error, observe() cost.

Four simulated cameras, 60 s each at 30 fps, offsets up to seconds, drifts up to ±100 ppm,
one-way delay 20 ms + jitter 0–30 ms (exponential, then uniform after a reconnect at 40 s),
bursts of 5–10 held frames every 3–6 s, a 3 s stall at 25 s; probes at 1 Hz with legs of
1–10 ms each. Errors are taken online, right after each frame's observe(), for frames
mapped after warm-up (2 s of device time and 30 frames since the last reset). Frames
only: error against capture + 20 ms. With probes: error against capture.

Run:  .venv/bin/python benchmarks/bench_clock.py
"""

from __future__ import annotations

import sys

import numpy as np

from mmrec.sim.trace import replay, simulate_camera

DEVICES = [  # (seed, offset ns, drift ppm)
    (1, 3_210_000_000, 87.0),
    (2, -4_500_000_000, -100.0),
    (3, 120_000_000, 15.0),
    (4, -800_000_000, -42.0),
]


def main() -> int:
    print("command: .venv/bin/python benchmarks/bench_clock.py")
    print("warm-up: 2 s of device time and 30 frames; errors from then on, online")
    header = (
        f"{'cam':>3} {'offset s':>9} {'ppm':>6} {'mode':>12} {'frames':>6} "
        f"{'err p50 ms':>10} {'err p99 ms':>10} {'err max ms':>10} {'unc ms':>7} "
        f"{'drift err ppm':>13} {'min delay ms':>12} {'observe µs':>10}"
    )
    print(header)
    for seed, offset, drift in DEVICES:
        trace = simulate_camera(seed, offset_ns=offset, drift_ppm=drift)
        for probes in (False, True):
            r = replay(trace, probes=probes)
            err = np.abs(r.error_ns[r.warm]) / 1e6
            est = r.estimate
            md = f"{est.min_delay_ns / 1e6:.2f}" if est.min_delay_ns is not None else "-"
            print(
                f"{seed:>3} {offset / 1e9:>9.3f} {drift:>6.0f} {est.source:>12} "
                f"{int(r.warm.sum()):>6} {np.median(err):>10.3f} "
                f"{np.percentile(err, 99):>10.3f} {err.max():>10.3f} "
                f"{est.uncertainty_ns / 1e6:>7.3f} {est.drift_ppm - drift:>13.3f} "
                f"{md:>12} {r.observe_ns_per_frame / 1e3:>10.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
