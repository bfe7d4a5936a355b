"""What does serving simulated nodes cost? CPU of the `mmrec sim` process and fps achieved.

Starts ``python -m mmrec sim`` (16 nodes at 1920x1080, 30 fps by default, ephemeral ports
on 127.0.0.1, no mDNS) in one process and a lean raw-socket reader in another that only
drains bytes and counts part boundaries. After a warm-up it samples the sim process's
user+system CPU time from /proc over the measuring window and prints % of one core, the
fps each node achieved, the throughput, the machine load, and the exact command.

    .venv/bin/python benchmarks/bench_sim.py                # 16 x 1080p30, 20 s
    .venv/bin/python benchmarks/bench_sim.py --nodes 4 --seconds 10 --width 1280 --height 720
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shlex
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

BOUNDARY = b"--mmcamsim"


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def reader(urls: list[str], warmup: float, seconds: float) -> None:
    """Drain every stream, count boundaries; print counts over the window as JSON."""
    sel = selectors.DefaultSelector()
    k = len(BOUNDARY) - 1
    counts = [0] * len(urls)
    nbytes = [0] * len(urls)
    bufs: list[bytearray] = []
    for i, url in enumerate(urls):
        u = urlsplit(url)
        s = socket.create_connection((u.hostname or "127.0.0.1", u.port or 80))
        s.sendall(f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\n\r\n".encode())
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        bufs.append(bytearray(k + (1 << 20)))
    start = time.monotonic()
    t_window = start + warmup
    t_end = t_window + seconds
    at_window: list[int] | None = None
    bytes_at_window: list[int] = []
    while True:
        now = time.monotonic()
        if at_window is None and now >= t_window:
            at_window, bytes_at_window = list(counts), list(nbytes)
        if now >= t_end:
            break
        for key, _ in sel.select(timeout=0.1):
            i = key.data
            buf = bufs[i]
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            n = sock.recv_into(memoryview(buf)[k:])
            if not n:
                sel.unregister(sock)
                continue
            # The first k bytes hold the previous read's tail: boundaries split across reads
            # count once, and a k-byte tail cannot hold a whole boundary.
            counts[i] += buf.count(BOUNDARY, 0, k + n)
            nbytes[i] += n
            buf[:k] = buf[n : n + k]
    assert at_window is not None
    frames = [c - w for c, w in zip(counts, at_window, strict=True)]
    data = [b - w for b, w in zip(nbytes, bytes_at_window, strict=True)]
    print(json.dumps({"frames": frames, "bytes": data, "seconds": seconds}), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nodes", type=int, default=16)
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=20.0, help="measuring window (20)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (3)")
    p.add_argument("--reader", nargs="+", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.reader:
        reader(args.reader, args.warmup, args.seconds)
        return 0

    sim_cmd = [
        sys.executable, "-m", "mmrec", "sim", "--nodes", str(args.nodes),
        "--width", str(args.width), "--height", str(args.height), "--fps", f"{args.fps:g}",
        "--bind", "127.0.0.1", "--port", "0", "--no-mdns", "--json",
    ]  # fmt: skip
    load_before = os.getloadavg()
    sim = subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        if not line:
            print("simulator did not start", file=sys.stderr)
            return 1
        urls = [n["url"] for n in json.loads(line)["nodes"]]
        cpu_ready = _cpu_seconds(sim.pid)
        read_cmd = [sys.executable, __file__, "--seconds", str(args.seconds),
                    "--warmup", str(args.warmup), "--reader", *urls]  # fmt: skip
        rd = subprocess.Popen(read_cmd, stdout=subprocess.PIPE, text=True)
        time.sleep(args.warmup)
        u0, s0 = _cpu_seconds(sim.pid)
        r0 = sum(_cpu_seconds(rd.pid))
        t0 = time.monotonic()
        time.sleep(args.seconds)
        u1, s1 = _cpu_seconds(sim.pid)
        r1 = sum(_cpu_seconds(rd.pid))
        t1 = time.monotonic()
        out, _ = rd.communicate(timeout=args.seconds + 30)
    finally:
        sim.send_signal(2)
        sim.wait(timeout=30)
    result = json.loads(out)
    wall = t1 - t0
    fps = [f / result["seconds"] for f in result["frames"]]
    mbps = sum(result["bytes"]) / result["seconds"] / 1e6
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"sim:     {shlex.join(sim_cmd[1:])}")
    print(
        f"{args.nodes} nodes x {args.width}x{args.height} @ {args.fps:g} fps, one reader "
        f"connection each, {args.seconds:g} s window after {args.warmup:g} s warm-up"
    )
    print(
        f"sim CPU: {100 * (u1 - u0 + s1 - s0) / wall:.1f}% of one core "
        f"(user {100 * (u1 - u0) / wall:.1f}%, sys {100 * (s1 - s0) / wall:.1f}%); "
        f"startup (ring encoding) took {sum(cpu_ready):.1f} CPU s"
    )
    print(f"reader CPU: {100 * (r1 - r0) / wall:.1f}% of one core")
    print(
        f"fps per node: min {min(fps):.2f}  mean {sum(fps) / len(fps):.2f}  max {max(fps):.2f}"
        f"  (target {args.fps:g}); throughput {mbps:.0f} MB/s"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load avg before {load_before[0]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
