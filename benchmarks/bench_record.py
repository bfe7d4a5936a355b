"""Recorder cost and loss: mmrec vs one `ffmpeg -c copy` per camera, in the same run.

N simulated 1080p30 nodes run in their own process (`mmrec sim`); each tool records all N
for --duration seconds. For each tool and N it prints the recorder's CPU per stream (% of
one core, from /proc over the steady-state window), the frames lost (holes in the
simulator's frame numbers found in the recorded files, plus frames the simulator had to
skip because the recorder did not read fast enough), and the simulator's own CPU and late
frames (when the simulator itself cannot keep up, the run says so instead of blaming the
recorder). Frames lost = frames the nodes sent to the recorder (their own log, per
connection; the nodes are stopped first so nothing is in flight) minus frames in the
recorded files, plus frames the nodes skipped because the recorder read too slowly.
Finally the largest N each tool kept with zero loss.

Durability's cost: ``--sync-intervals 1,0`` records with mmrec's ``--sync-interval 1`` (every
file fdatasync'ed at least once a second, the default) and ``0`` (left to the OS), run after
run (A/B interleaved, ``--repeat`` times, since the machine may be shared), and prints
what syncing costs per stream with the load average around each run.

    .venv/bin/python benchmarks/bench_record.py --streams 8,16,32,64 --duration 15
    .venv/bin/python benchmarks/bench_record.py --streams 16,64 --tools mmrec \
        --sync-intervals 1,0 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av

SIM_FRAME = re.compile(rb"mmcam-sim node=\S+ frame=(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes (and their waited-for children), in s."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (after the state field)
    return total / CLK_TCK


@dataclass
class Result:
    tool: str
    streams: int
    cpu_pct_per_stream: float
    recorded: int
    lost: int
    sim_cpu_pct: float
    sim_late: int
    sim_skips: int
    preview: str = ""
    sync: str = ""  # mmrec's --sync-interval for this run ("" for other tools)
    load: str = ""  # the 1-minute load average before and after the run


def start_sim(
    n: int, size: str, fps: float, log: Path
) -> tuple[subprocess.Popen[bytes], list[str]]:
    w, h = size.split("x")
    cmd = [
        sys.executable, "-m", "mmrec", "sim", "--nodes", str(n), "--bind", "127.0.0.1",
        "--port", "0", "--no-mdns", "--json", "--width", w, "--height", h, "--fps", str(fps),
        "--sent-log", str(log),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("simulator did not start")
    urls = [node["url"] for node in json.loads(line)["nodes"]]
    return proc, urls


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def holes(files: list[Path]) -> tuple[int, int]:
    """(frames recorded, frames missing between the first and last recorded) over files."""
    recorded = lost = 0
    for f in files:
        try:
            with av.open(str(f)) as c:
                frames = []
                for p in c.demux(video=0):
                    if p.size:
                        m = SIM_FRAME.search(bytes(p)[:200])  # the COM record follows SOI
                        if m is not None:
                            frames.append(int(m.group(1)))
        except av.FFmpegError:
            continue
        recorded += len(frames)
        if frames:
            lost += (max(frames) - min(frames) + 1) - len(set(frames))
    return recorded, lost


def sim_counters(log: Path) -> tuple[int, int, int]:
    """(frames sent to recorders, frames the nodes were late for, frames skipped for slow
    readers) from the simulator's sent log."""
    sent = late = skips = 0
    for line in log.read_text().splitlines():
        d = json.loads(line)
        if d.get("kind") == "node":
            late += int(d["frames_late"])
            skips += int(d["client_skips"])
        elif d.get("path", "").startswith("/stream"):
            sent += int(d["frames_sent"])
    return sent, late, skips


def run_one(tool: str, n: int, args: argparse.Namespace, work: Path, sync: str = "") -> Result:
    load0 = os.getloadavg()[0]
    out = Path(tempfile.mkdtemp(prefix=f"{tool}-{n}-", dir=work))
    log = out.with_suffix(".jsonl")
    sim, urls = start_sim(n, args.size, args.fps, log)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if tool in ("mmrec", "mmrec+preview", "mmrec-buffered"):
            cmd = [sys.executable, "-m", "mmrec", "record", "--json", "--out", str(out)]
            if tool != "mmrec+preview":
                cmd.append("--no-preview")  # ffmpeg makes no preview either
            if tool == "mmrec-buffered":
                cmd.append("--buffered-io")  # through the page cache, as ffmpeg writes
            if sync:
                cmd += ["--sync-interval", sync]
            cmd += shlex.split(args.mmrec_args)
            cmd += [f"cam{i:02d}={u}" for i, u in enumerate(urls)]
            procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        else:
            procs = [
                subprocess.Popen(
                    [
                        "ffmpeg",
                        "-nostdin",
                        "-loglevel",
                        "error",
                        "-f",
                        "mpjpeg",
                        "-i",
                        u,
                        "-c",
                        "copy",
                        "-y",
                        str(out / f"cam{i:02d}.mkv"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i, u in enumerate(urls)
            ]
        time.sleep(args.warmup)  # startup (imports, connects) is not steady-state cost
        pids = [p.pid for p in procs]
        c0, s0, t0 = cpu_seconds(pids), cpu_seconds([sim.pid]), time.monotonic()
        time.sleep(args.duration)
        c1, s1, t1 = cpu_seconds(pids), cpu_seconds([sim.pid]), time.monotonic()
        # Stop the nodes first: every frame they sent reaches the recorders, then stop
        # those. Frames sent minus frames recorded is then exactly what a recorder lost.
        stop(sim)
        time.sleep(1.5)
        for p in procs:
            stop(p)
    finally:
        stop(sim)
        for p in procs:
            stop(p, signal.SIGKILL)
    files = sorted(out.rglob("*.mkv"))
    recorded, _ = holes(files)
    sent, late, skips = sim_counters(log)
    preview = ""
    for manifest in out.glob("*/manifest.json"):
        m = json.loads(manifest.read_text())
        dropped = sum(int(c.get("dropped", 0)) for c in m.get("cameras", []))
        if dropped:
            preview += f"  | {dropped} dropped at full write queues"
        p = m.get("preview")
        if p:
            preview += (
                f"  | preview {p['fps']:.1f} fps, {p['tiles_skipped']}/"
                f"{p['tiles_decoded'] + p['tiles_skipped']} tiles skipped"
            )
    shutil.rmtree(out, ignore_errors=True)
    wall = t1 - t0
    return Result(
        tool,
        n,
        100 * (c1 - c0) / wall / n,
        recorded,
        sent - recorded + skips,
        100 * (s1 - s0) / wall,
        late,
        skips,
        preview,
        sync,
        f"{load0:.1f}->{os.getloadavg()[0]:.1f}",
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--streams", default="8,16,32,64", help="comma-separated N values")
    ap.add_argument("--duration", type=float, default=15.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument(
        "--tools",
        default="mmrec,ffmpeg",
        help="mmrec, ffmpeg, mmrec+preview (recording with the live 1080p mosaic at 10 fps), "
        "mmrec-buffered (--buffered-io: through the page cache instead of O_DIRECT)",
    )
    ap.add_argument(
        "--mmrec-args", default="", help='extra `mmrec record` options, e.g. "--writer-threads 4"'
    )
    ap.add_argument(
        "--workdir", type=Path, default=None, help="where files go (default: a temp dir)"
    )
    ap.add_argument(
        "--sync-intervals",
        default="",
        help="mmrec --sync-interval values to compare, run after run, e.g. 1,0 (default: "
        "mmrec's own default only)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="run every (N, tool) this many times")
    args = ap.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    if "ffmpeg" in tools and shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg not found: apt-get install ffmpeg, or --tools mmrec")
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(
        f"machine: {os.cpu_count()} cores; {args.size}@{args.fps:g} per stream; "
        f"{args.duration:g} s measured after {args.warmup:g} s warm-up"
    )
    results: list[Result] = []
    syncs = [x for x in args.sync_intervals.split(",") if x] or [""]
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in [int(x) for x in args.streams.split(",")]:
            for _ in range(args.repeat):
                for tool in tools:
                    for sync in syncs if tool.startswith("mmrec") else [""]:
                        r = run_one(tool, n, args, Path(tmp), sync)
                        results.append(r)
                        label = f"{r.tool}{f' sync={sync}' if sync else ''}"
                        print(
                            f"{label:20s} N={r.streams:3d}  "
                            f"recorder {r.cpu_pct_per_stream:5.2f} %core/stream"
                            f"  recorded {r.recorded:6d}  lost {r.lost:5d}"
                            f"  | sim {r.sim_cpu_pct:5.1f} %core, late {r.sim_late}, "
                            f"skipped {r.sim_skips} | load {r.load}{r.preview}",
                            flush=True,
                        )
    print()
    for tool in tools:
        # the recorder's loss only: frames the nodes were late for were never sent
        ok = [r.streams for r in results if r.tool == tool and r.lost == 0]
        costs = [r.cpu_pct_per_stream for r in results if r.tool == tool]
        print(
            f"{tool}: largest N with zero loss: {max(ok) if ok else 'none'}; "
            f"CPU per stream {min(costs):.2f}-{max(costs):.2f} % of a core"
        )
        # Total CPU = fixed + N x marginal: what one more stream costs, apart from what the
        # process costs at all (timers, probes, the manifest; idle wake-ups in a VM).
        pts = [(r.streams, r.cpu_pct_per_stream * r.streams) for r in results if r.tool == tool]
        if len({n for n, _ in pts}) >= 2:
            mn = sum(n for n, _ in pts) / len(pts)
            mc = sum(c for _, c in pts) / len(pts)
            slope = sum((n - mn) * (c - mc) for n, c in pts) / sum((n - mn) ** 2 for n, _ in pts)
            print(
                f"{tool}: fit over N: {mc - slope * mn:.1f} % of a core fixed + "
                f"{slope:.2f} % per stream"
            )
    if len(syncs) > 1:
        print()
        for n in sorted({r.streams for r in results}):
            means = {}
            for sync in syncs:
                runs = [r for r in results if r.streams == n and r.sync == sync]
                if runs:
                    means[sync] = sum(r.cpu_pct_per_stream for r in runs) / len(runs)
                    lost = sum(r.lost for r in runs)
                    each = ", ".join(f"{r.cpu_pct_per_stream:.2f}" for r in runs)
                    print(
                        f"N={n}: --sync-interval {sync}: {means[sync]:.2f} % of a core per "
                        f"stream (runs: {each}), lost {lost}"
                    )
            base = syncs[-1]
            for sync in syncs[:-1]:
                if sync in means and base in means:
                    print(
                        f"N={n}: syncing every {sync} s costs {means[sync] - means[base]:+.2f} "
                        f"% of a core per stream against --sync-interval {base}"
                    )
    pairs = {(r.tool, r.streams): r for r in results if r.sync in ("", syncs[0])}
    for n in sorted({r.streams for r in results}):
        a, b = pairs.get(("mmrec", n)), pairs.get(("ffmpeg", n))
        if a and b and a.cpu_pct_per_stream > 0:
            print(
                f"N={n}: ffmpeg/mmrec CPU ratio {b.cpu_pct_per_stream / a.cpu_pct_per_stream:.2f}x"
            )


if __name__ == "__main__":
    main()
