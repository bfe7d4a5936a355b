"""Benchmark a cluster take on this machine: what Ray costs per recorder host, how soon a
take starts, and proxies across Ray workers against the one-host ``mmrec proxy``.

For 1, 2 and 3 simulated recorder hosts (a local Ray cluster: a head and N nodes labelled
``host:recN``, each node its own raylet and agents as on a real rig, all on this one
machine), records ``--cameras`` simulated phones per host for ``--seconds`` and prints:

1. the cluster overhead per host, beyond the recorder itself: CPU (% of a core, over the
   take) and memory (RSS, MB) of the host's Ray processes (its raylet and everything it
   started: agents, the mmrec agent's worker), next to the recorder process's own;
   the head's processes (GCS, dashboard) once, as the coordinator's machine pays them;
2. start-to-first-frame: from the coordinator's first call (survey, arm: recorders
   started, cameras connected; clock probes; the agreed start 1 s ahead) to every
   camera's first frame written;
3. proxy throughput: the take's proxies with one Ray task per camera (N workers: one CPU
   per node) against ``make_proxies`` on this machine with ``--threads`` threads, in the
   same run, as a ratio (above 1: the cluster is faster).

All on one machine of few cores: the hosts share its CPU, so the proxies' ratio here
shows the overhead of the split, not what separate hosts gain; the per-host overhead and
start-up time are what a rig pays per host. Prints the command that made them.

    .venv/bin/python benchmarks/bench_cluster.py [--hosts 1,2,3] [--cameras 3]
        [--seconds 10] [--size 640x360] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "token")  # read by Ray once, at import
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))

import ray
from ray.cluster_utils import Cluster

from mmrec.cluster import HEALTH_CHECK
from mmrec.cluster.coordinator import ClusterTake, plan_from_survey, recorder_hosts
from mmrec.cluster.host import HostJob
from mmrec.cluster.plan import HostSpec, PlannedCamera
from mmrec.cluster.proxies import make_cluster_proxies
from mmrec.commands.cluster_record import sim_nodes
from mmrec.review import ProxyOptions, make_proxies

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds, RSS bytes) of a process, from /proc; None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, rss


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _stat(int(d.name))
            if st is not None:
                parents.setdefault(st[0], []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def _usage(pids: list[int]) -> tuple[float, int]:
    cpu, rss = 0.0, 0
    for pid in pids:
        st = _stat(pid)
        if st is not None:
            cpu += st[1]
            rss += st[2]
    return cpu, rss


def _raylet_pid(node: object) -> int:
    procs = node.all_processes[ray._private.ray_constants.PROCESS_TYPE_RAYLET]  # type: ignore[attr-defined]
    return int(procs[0].process.pid)


def run_hosts(n: int, args: argparse.Namespace, work: Path) -> dict[str, float]:
    hosts = [f"rec{i + 1}" for i in range(n)]
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": dict(HEALTH_CHECK)}
    )
    nodes = [cluster.add_node(num_cpus=1, resources={f"host:{h}": 1}) for h in hosts]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    out: dict[str, float] = {}
    try:
        with sim_nodes(n * args.cameras, args.size, 30.0) as cams:
            t0 = time.perf_counter()
            job = HostJob("", "", "", (), direct_io=False)
            take = ClusterTake(work, name=f"h{n}", job=job)
            try:
                infos = take.survey(recorder_hosts())
                plan = plan_from_survey(
                    [PlannedCamera(name, url) for name, url in cams],
                    infos,
                    [HostSpec(h, (), args.cameras) for h in hosts],
                )
                take.arm(plan)
                armed = time.perf_counter()
                take.start(lead_s=1.0)
                deadline = time.perf_counter() + 60
                while True:
                    rows = take.poll().cameras
                    if len(rows) == len(cams) and all(c.frames > 0 for c in rows):
                        break
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"no first frame from every camera within 60 s: {rows}")
                    time.sleep(0.02)  # a poll of the hosts' status
                first = time.perf_counter()
                pids = take.recorder_pids()
                node_pids = [_tree(_raylet_pid(node)) for node in nodes]
                head_pids = _tree(_raylet_pid(cluster.head_node))
                head_pids += [
                    p.process.pid
                    for key, procs in cluster.head_node.all_processes.items()
                    if key != ray._private.ray_constants.PROCESS_TYPE_RAYLET
                    for p in procs
                ]
                before = [_usage(p) for p in node_pids]
                rec_before = [_usage([pids[h] or 0]) for h in hosts]
                head_before = _usage(head_pids)
                t_rec = time.perf_counter()
                end = t_rec + args.seconds
                while time.perf_counter() < end:
                    take.poll()
                    time.sleep(0.5)  # the coordinator's own pace (its live table)
                span = time.perf_counter() - t_rec
                after = [_usage(p) for p in node_pids]
                rec_after = [_usage([pids[h] or 0]) for h in hosts]
                head_after = _usage(head_pids)
                take.stop()
                manifest = take.merge()
            finally:
                if take.stop_ref_ns is None or take.stop_ref_ns > time.time_ns():
                    take.stop(timeout=30)  # never leave a recorder running
                take.close()
            assert manifest is not None and manifest.outcome == "complete", manifest
        ray_cpu = [(a[0] - b[0]) / span * 100 for a, b in zip(after, before, strict=True)]
        rec_cpu = [(a[0] - b[0]) / span * 100 for a, b in zip(rec_after, rec_before, strict=True)]
        out["arm_s"] = armed - t0
        out["first_frame_s"] = first - t0
        out["ray_cpu_pct"] = sum(ray_cpu) / n
        out["ray_rss_mb"] = sum(a[1] for a in after) / n / 1e6
        out["rec_cpu_pct"] = sum(rec_cpu) / n
        out["rec_rss_mb"] = sum(a[1] for a in rec_after) / n / 1e6
        out["head_cpu_pct"] = (head_after[0] - head_before[0]) / span * 100
        out["head_rss_mb"] = head_after[1] / 1e6
        # proxies: one Ray task per camera vs the one-host proxies, same take, same run
        opts = ProxyOptions(height=270, multiview_size=(480, 270), contact_sheet=False)
        t = time.perf_counter()
        one = make_proxies(take.dir, replace(opts, threads=args.threads, out=take.dir / "one"))
        out["proxy_one_s"] = time.perf_counter() - t
        t = time.perf_counter()
        make_cluster_proxies(take.dir, opts)
        out["proxy_cluster_s"] = time.perf_counter() - t
        out["proxy_seconds_of_video"] = one.duration_s * len(manifest.cameras)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", default="1,2,3", help="host counts to run (1,2,3)")
    p.add_argument("--cameras", type=int, default=3, help="simulated phones per host (3)")
    p.add_argument("--seconds", type=float, default=10.0, help="take length (10)")
    p.add_argument("--size", default="640x360", help="phone frame size (640x360)")
    p.add_argument("--threads", type=int, default=2, help="one-host proxy threads (2)")
    args = p.parse_args()
    counts = [int(x) for x in args.hosts.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench_cluster."))
    print(
        f"{os.cpu_count()} CPUs; {args.cameras} phones per host at {args.size}, 30 fps; "
        f"{args.seconds:g} s takes"
    )
    try:
        rows = {n: run_hosts(n, args, work) for n in counts}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        "hosts | Ray per host: CPU %  RSS MB | recorder per host: CPU %  RSS MB "
        "| head: CPU %  RSS MB | arm s | first frame s"
    )
    for n, r in rows.items():
        print(
            f"{n:5d} | {r['ray_cpu_pct']:17.1f}  {r['ray_rss_mb']:6.0f} | "
            f"{r['rec_cpu_pct']:22.1f}  {r['rec_rss_mb']:6.0f} | "
            f"{r['head_cpu_pct']:10.1f}  {r['head_rss_mb']:6.0f} | {r['arm_s']:5.1f} | "
            f"{r['first_frame_s']:13.1f}"
        )
    print()
    print("hosts | proxies: one host s  N Ray workers s  ratio (one/cluster)  video s")
    for n, r in rows.items():
        ratio = r["proxy_one_s"] / r["proxy_cluster_s"]
        print(
            f"{n:5d} | {r['proxy_one_s']:17.1f}  {r['proxy_cluster_s']:14.1f}  {ratio:19.2f}  "
            f"{r['proxy_seconds_of_video']:7.0f}"
        )
    print()
    print("command: " + " ".join([".venv/bin/python", *sys.argv]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
