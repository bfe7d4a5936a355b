"""Recorder memory under hostile servers: RSS over time, per kind of server.

Each kind of :mod:`mmrec.sim.hostile` server (an endless part with and without
Content-Length, a 1-byte-per-100-ms trickle, a header flood, ...) runs in its own process;
one ``mmrec record`` process records ``--cameras`` of them plus one ordinary simulated
camera (640x480, 30 fps) for ``--duration`` seconds. Its RSS (``/proc/PID/status``
VmRSS) is sampled every ``--every`` seconds and printed as a row per kind. A first run
with the ordinary camera alone gives the steady state; for each kind the figures are the
peak above it (VmHWM, between samples too), per hostile camera, and the creep of its
floor from the middle to the last third of the run (a bounded recorder levels off: its
floor does not creep up).

    .venv/bin/python benchmarks/bench_hostile.py [--duration 65] [--cameras 1]
        [--kinds endless,endless-length,trickle,header-flood] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("endless", "endless-length", "trickle", "header-flood")


def status_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A memory figure of ``/proc/PID/status`` (VmRSS: now; VmHWM: the peak so far), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(kind: str) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [sys.executable, "-m", "mmrec.sim.hostile", kind]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"hostile server {kind} did not start")
    return proc, json.loads(line)["url"]


@dataclass
class Run:
    label: str
    times: list[float]
    rss: list[float]
    hwm: float  # VmHWM: the true peak, between samples too
    cpu_pct: float
    command: str

    def creep(self) -> float:
        """Memory kept for good, creeping up: the lowest RSS of the last third of the run
        minus the lowest of the middle third (MB). Transient peaks (a connection holding
        its buffer) do not count; a leak does."""
        n = len(self.rss)
        if n < 6:
            return 0.0
        return min(self.rss[2 * n // 3 :]) - min(self.rss[n // 3 : 2 * n // 3])


def record(label: str, urls: list[str], duration: float, every: float, out: Path) -> Run:
    cmd = [
        sys.executable, "-m", "mmrec", "record", "--sim", "1", "--sim-size", "640x480",
        "--no-preview", "--json", "--duration", f"{duration:g}", "--out", str(out),
        *[f"h{i}={u}" for i, u in enumerate(urls)],
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    t0 = time.monotonic()
    times: list[float] = []
    rss: list[float] = []
    cpu0 = cpu_s(proc.pid)
    hwm = 0.0
    try:
        while proc.poll() is None:
            time.sleep(every)  # sampling interval of the measurement
            t = time.monotonic() - t0
            if t > duration:
                break
            value = status_mb(proc.pid)
            if value is not None:
                times.append(t)
                rss.append(value)
                hwm = status_mb(proc.pid, "VmHWM") or hwm
        cpu = cpu_s(proc.pid) - cpu0
        wall = time.monotonic() - t0
        proc.wait(timeout=duration + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Run(label, times, rss, hwm, 100 * cpu / max(wall, 1e-9), shlex.join(cmd))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=65.0)
    ap.add_argument("--cameras", type=int, default=1, help="hostile cameras per run (1)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--every", type=float, default=5.0, help="RSS sampling interval, s (5)")
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    print(f"# {shlex.join([sys.executable, *sys.argv])}")
    print(f"# load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        base = record("steady", [], args.duration, args.every, Path(tmp) / "steady")
        runs.append(base)
        for kind in kinds:
            servers = [start_server(kind) for _ in range(args.cameras)]
            try:
                run = record(
                    kind, [u for _, u in servers], args.duration, args.every, Path(tmp) / kind
                )
            finally:
                for proc, _ in servers:
                    proc.send_signal(signal.SIGINT)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            runs.append(run)
    steady = sorted(base.rss)[len(base.rss) // 2] if base.rss else 0.0
    print(f"# steady state (recorder + 1 ordinary camera, median RSS): {steady:.0f} MB")
    print(f"# recorder command (steady): {base.command}")
    width = max(len(r.label) for r in runs)
    header = " ".join(f"{t:>5.0f}" for t in base.times)
    print(f"{'kind':<{width}}  RSS MB at t (s): {header}")
    for r in runs:
        print(f"{r.label:<{width}}                  " + " ".join(f"{v:5.0f}" for v in r.rss))
    print()
    print(f"{'kind':<{width}}  peak (VmHWM) MB  above steady per camera  floor creep MB  CPU %")
    for r in runs:
        above = (r.hwm - steady) / (args.cameras if r is not base else 1)
        print(
            f"{r.label:<{width}}  {r.hwm:15.0f}  {above:24.0f}  "
            f"{r.creep():+14.0f}  {r.cpu_pct:5.1f}"
        )


if __name__ == "__main__":
    main()
