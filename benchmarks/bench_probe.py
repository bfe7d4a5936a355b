"""What a /status clock probe costs the recorder: CPU per round trip on the event loop.

One simulated node runs in its own process (``mmrec sim``, loopback, no mDNS); this
process sends ``--probes`` probes over one kept-alive connection with
:class:`mmrec.ingest.status.StatusProbe` (what each ``CameraFeed`` does at
``PROBE_EVERY``, and in a burst before each stream) and prints the CPU it took per probe
and the round trips, and what the recorder's cadence costs per camera and for 64 cameras.

    .venv/bin/python benchmarks/bench_probe.py --probes 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import subprocess
import sys
import time

import numpy as np

from mmrec.ingest.status import StatusProbe
from mmrec.session.probes import (
    BURST_MIN_GAP_NS,
    PROBE_BURST,
    PROBE_EVERY,
    PROBE_FAST_NS,
    PROBE_SLOW_EVERY,
)


async def probe(host: str, port: int, count: int) -> tuple[float, list[int]]:
    p = StatusProbe(host, port, "bench")
    await p.probe()  # connect outside the measurement
    rtts = []
    cpu = time.process_time()
    for _ in range(count):
        t0, t1, _ = await p.probe()
        rtts.append(t1 - t0)
    cpu = time.process_time() - cpu
    p.close()
    return cpu / count, rtts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--probes", type=int, default=2000)
    args = ap.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    sim = subprocess.Popen(
        [sys.executable, "-m", "mmrec", "sim", "--nodes", "1", "--no-mdns", "--port", "0",
         "--width", "320", "--height", "240", "--fps", "5", "--json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        info = json.loads(sim.stdout.readline())
        node = info["nodes"][0] if "nodes" in info else info
        host, port = node["host"], int(node["port"])
        per, rtts = asyncio.run(probe(host, port, args.probes))
    finally:
        sim.terminate()
        sim.wait(10)
    rate = 1 / PROBE_EVERY + PROBE_BURST / (BURST_MIN_GAP_NS / 1e9)
    print(
        f"per probe: {per * 1e6:.0f} µs CPU in the recorder; round trip p50"
        f" {np.median(rtts) / 1e3:.0f} µs, p99 {np.percentile(rtts, 99) / 1e3:.0f} µs (loopback)"
    )
    print(
        f"cadence: {1 / PROBE_EVERY:g} Hz for {PROBE_FAST_NS / 1e9:g} s after a connection or a"
        f" take's start: {per / PROBE_EVERY * 100:.3f} % of a core per camera"
        f" ({per / PROBE_EVERY * 64 * 100:.1f} % for 64 cameras); then {1 / PROBE_SLOW_EVERY:g}"
        f" Hz: {per / PROBE_SLOW_EVERY * 100:.3f} % ({per / PROBE_SLOW_EVERY * 64 * 100:.1f} %"
        f" for 64); a burst of {PROBE_BURST} before each connection, at most one per"
        f" {BURST_MIN_GAP_NS / 1e9:g} s: at most {rate:.1f} probes/s per camera on a flapping"
        f" link, {per * rate * 100:.3f} %"
    )


if __name__ == "__main__":
    main()
