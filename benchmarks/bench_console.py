"""Cost of a shoot console: N simulated 1080p30 cameras, the console page open in a real
browser, takes recorded back to back; frames lost, the recording's CPU per stream and
the console's own CPU.

The simulator runs in its own process (`mmrec sim`, as bench_record does), the console in
another (`mmrec console`), Debian's chromium (driven by Playwright) shows the page: the
multiview MJPEG and the SSE state updates. During the measured window the bench records
--takes takes through the JSON API (as the page's buttons do). CPU comes from /proc:
the console process and its child processes as a whole, and its pictures (the child
processes: the preview's worker with its decode, compose, H.264 and JPEG for the page,
the contact sheets' process; and any of the console's threads at nice +10) apart from
the rest (ingest, writers, web, SSE, probes, node events, the preview's scheduling on the
event loop and the sending of its JPEGs to the worker). With --baseline, `mmrec record
--no-preview` records the same N cameras for the same time: the console's own CPU is then
its total minus that.

Frames lost: frames the nodes sent (their sent log, per connection) that the console did
not receive (its own counters, read after the nodes stopped), frames the writers did not
write (manifests), and frames the nodes skipped because the console read too slowly.
Holes in the simulator's frame numbers inside each take's files are printed too: a
simulator that falls behind on a loaded machine (its own "late" frames, never sent)
makes holes that are not the console's.

    .venv/bin/python benchmarks/bench_console.py [--streams 16] [--duration 60] [--takes 3]
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
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_record import CLK_TCK, cpu_seconds, holes, sim_counters, start_sim, stop

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PREVIEW_NICE = 10  # mmrec.live.preview.WORKER_NICE


def thread_cpu(pid: int) -> dict[int, tuple[int, float]]:
    """Per thread of ``pid``: (nice, utime + stime in s)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            f = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(f[16]), (int(f[11]) + int(f[12])) / CLK_TCK)
    return out


def children_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each process below ``pid`` (the console's picture workers)."""
    return {q: cpu_seconds([q]) for q in descendants(pid, "")}


def descendants(pid: int, word: str) -> list[int]:
    """Processes below ``pid`` whose command line has ``word`` (the browser's)."""
    parent: dict[int, int] = {}
    cmd: dict[int, str] = {}
    for p in Path("/proc").glob("[0-9]*"):
        try:
            parent[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd[int(p.name)] = (p / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    out = []
    for q in parent:
        up = q
        for _ in range(20):
            up = parent.get(up, 0)
            if up == pid:
                if word in cmd.get(q, ""):
                    out.append(q)
                break
            if up <= 1:
                break
    return out


def api(url: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Mmrec-Token": token, "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def console_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    log = work / "sent-console.jsonl"
    out = work / "console"
    sim, urls = start_sim(args.streams, args.size, args.fps, log)
    con = None
    res: dict[str, Any] = {}
    try:
        cmd = [sys.executable, "-m", "mmrec", "console", "--port", "0", "--out", str(out)]
        cmd += ["--preview-fps", f"{args.preview_fps:g}", *shlex.split(args.console_args)]
        cmd += [f"cam{i:02d}={u}" for i, u in enumerate(urls)]
        con = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert con.stdout is not None
        url = con.stdout.readline().decode().strip()
        token = api(url, "/api/session", "")["token"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url)
            page.wait_for_function(
                f"() => document.querySelectorAll('#cameras tbody tr.streaming').length"
                f" === {args.streams}",
                timeout=60_000,
            )
            time.sleep(args.warmup)  # startup (imports, connects, warm-up) is not steady state
            chrome = descendants(os.getpid(), "chrom")
            t0, c0, s0, b0 = (
                time.monotonic(), cpu_seconds([con.pid]), cpu_seconds([sim.pid]),
                cpu_seconds(chrome),
            )  # fmt: skip
            th0, kids0 = thread_cpu(con.pid), children_cpu(con.pid)
            take_s = args.duration / args.takes
            for _ in range(args.takes):
                api(url, "/api/take/start", token, {})
                time.sleep(take_s)  # pacing: the take's length is the experiment
                api(url, "/api/take/stop", token, {})
            t1, c1, s1, b1 = (
                time.monotonic(), cpu_seconds([con.pid]), cpu_seconds([sim.pid]),
                cpu_seconds(chrome),
            )  # fmt: skip
            th1, kids1 = thread_cpu(con.pid), children_cpu(con.pid)
            state = api(url, "/api/state", token)
            page.screenshot(path=str(work / "console.png"))
            browser.close()
        wall = t1 - t0
        # a child started in the window (the contact sheets' process) counts from zero
        kids = sum(cpu - kids0.get(pid, 0.0) for pid, cpu in kids1.items())
        preview = kids + sum(
            cpu - th0.get(tid, (nice, 0.0))[1]
            for tid, (nice, cpu) in th1.items()
            if nice == PREVIEW_NICE
        )
        res = {
            "wall": wall,
            "total_pct": 100 * (c1 - c0 + kids) / wall,
            "children_pct": 100 * kids / wall,
            "preview_pct": 100 * preview / wall,
            "sim_pct": 100 * (s1 - s0) / wall,
            "browser_pct": 100 * (b1 - b0) / wall,
            "preview_fps": state.get("preview_fps"),
            "alerts": [a["kind"] for a in state.get("alerts", [])],
        }
        stop(sim)  # nodes first: what they sent arrives, then the console stops
        time.sleep(1.5)
        received = {c["url"]: c["frames"] for c in api(url, "/api/state", token)["cameras"]}
        stop(con)
    finally:
        stop(sim)
        if con is not None:
            stop(con, signal.SIGKILL)
    recorded = lost = dropped = 0
    takes = sorted(out.glob("*/manifest.json"))
    for manifest in takes:
        m = json.loads(manifest.read_text())
        dropped += sum(int(c.get("dropped", 0)) for c in m["cameras"])
        for cam in m["cameras"]:
            r, h = holes([manifest.parent / s for s in cam["segments"]])
            recorded += r
            lost += h
    _, late, skips = sim_counters(log)
    # frames each node wrote to the console's connections, against frames the console
    # received from it: what the wire and the ingest lost (zero means none)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    node_url = {d["node"]: d["url"] for d in lines if d.get("kind") == "node"}
    sent: dict[str, int] = {}
    for d in lines:
        if d.get("kind") == "connection" and d.get("path", "").startswith("/stream"):
            u = node_url[d["node"]]
            sent[u] = sent.get(u, 0) + int(d["frames_sent"])
    unreceived = sum(max(0, n - received.get(u, 0)) for u, n in sent.items())
    res.update(takes=len(takes), recorded=recorded, holes=lost, dropped=dropped, skips=skips,
               late=late, sent=sum(sent.values()), unreceived=unreceived)  # fmt: skip
    return res


def baseline_run(args: argparse.Namespace, work: Path) -> float:
    """`mmrec record --no-preview` of the same cameras for the same time: % core total."""
    log = work / "sent-record.jsonl"
    out = work / "record"
    sim, urls = start_sim(args.streams, args.size, args.fps, log)
    rec = None
    try:
        cmd = [sys.executable, "-m", "mmrec", "record", "--no-preview", "--json", "--out", str(out)]
        cmd += [f"cam{i:02d}={u}" for i, u in enumerate(urls)]
        rec = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(args.warmup + 3)
        t0, c0 = time.monotonic(), cpu_seconds([rec.pid])
        time.sleep(args.duration)
        t1, c1 = time.monotonic(), cpu_seconds([rec.pid])
        stop(sim)
        time.sleep(1.5)
        stop(rec)
    finally:
        stop(sim)
        if rec is not None:
            stop(rec, signal.SIGKILL)
    return 100 * (c1 - c0) / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    ap.add_argument("--takes", type=int, default=3, help="takes recorded in that time")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--baseline", action="store_true", help="also time `mmrec record` alone")
    ap.add_argument(
        "--preview-fps", type=float, default=10.0, help="the console's --preview-fps (10)"
    )
    ap.add_argument(
        "--console-args", default="", help='extra `mmrec console` options, e.g. "--write-run 8"'
    )
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--screenshot", type=Path, default=None, help="save the page's picture")
    args = ap.parse_args()
    n = args.streams
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {n} cameras "
        f"{args.size}@{args.fps:g}; {args.duration:g} s measured ({args.takes} takes) after "
        f"{args.warmup:g} s; the page open in chromium"
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        r = console_run(args, work)
        if args.screenshot is not None:
            args.screenshot.write_bytes((work / "console.png").read_bytes())
        rest = r["total_pct"] - r["preview_pct"]
        lost = r["unreceived"] + r["dropped"] + r["skips"]
        print(
            f"console: {r['takes']} takes, {r['recorded']} frames recorded; lost {lost}: "
            f"sent by the nodes but not received {r['unreceived']} (of {r['sent']}), "
            f"not written {r['dropped']}, skipped by the nodes for a slow reader "
            f"{r['skips']}"
        )
        # a frame the simulator was too late to send is a hole in the files too, so holes
        # are a loss only beyond those
        print(
            f"holes in the takes' frame numbers: {r['holes']}; frames the simulator was too "
            f"late to send (never sent, over the whole run): {r['late']}"
            + ("" if r["holes"] <= r["late"] else "  ! more holes than late frames")
        )
        print(
            f"console CPU: {r['total_pct']:.1f} % of a core in all = "
            f"{rest / n:.2f} % per stream for ingest, writers, web and events "
            f"({rest:.1f} %) + pictures {r['preview_pct']:.1f} % (preview at "
            f"{r['preview_fps']} fps and contact sheets, at nice +{PREVIEW_NICE}: "
            f"{r['children_pct']:.1f} % in child processes)"
        )
        print(
            f"elsewhere: simulator {r['sim_pct']:.1f} %, browser {r['browser_pct']:.1f} % of a core"
        )
        if r["alerts"]:
            kinds = {k: r["alerts"].count(k) for k in dict.fromkeys(r["alerts"])}
            print("alerts on the page:", ", ".join(f"{k} x{n}" for k, n in kinds.items()))
        if args.baseline:
            base = baseline_run(args, work)
            print(
                f"baseline `mmrec record --no-preview`: {base:.1f} % = {base / n:.2f} % per "
                f"stream; the console's own: {r['total_pct'] - base:.1f} % of a core "
                f"(pictures {r['preview_pct']:.1f} %, the rest {rest - base:.1f} %)"
            )
        verdict = "within" if rest / n <= 1.0 else "over"
        print(f"budget: {rest / n:.2f} % per stream ({verdict} 1 % of a core per stream)")


if __name__ == "__main__":
    main()
