"""``mmrec record --cluster ADDRESS``: one take across the Ray cluster's recorder hosts.

The flow: join the cluster, survey the recorder hosts (an agent on each, with a timeout),
plan which host records which camera (its networks, its budget, the hosts file), arm
every host (its recorder connects its cameras), agree one start instant a second ahead
on this machine's clock, show one live table for every camera, stop every host on one
instant, merge their parts into one take. A host that dies or freezes is said at once
and the others record on; if this process dies, the hosts record on to --duration (or
until stopped) and 'mmrec cluster merge' makes the take.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mmrec.config import ShootConfig
from mmrec.errors import ConfigError, MmrecError

if TYPE_CHECKING:
    from mmrec.cluster.coordinator import ClusterTake


@contextlib.contextmanager
def sim_nodes(count: int, size: str, fps: float) -> Iterator[list[tuple[str, str]]]:
    """``count`` simulated phones on this machine's loopback, in a child process (a
    rehearsal: only hosts on this machine reach them)."""
    from mmrec.sim.process import parse_size

    w, h = parse_size(size)
    cmd = [
        sys.executable, "-m", "mmrec", "sim", "--nodes", str(count), "--width", str(w),
        "--height", str(h), "--fps", f"{fps:g}", "--bind", "127.0.0.1", "--port", "0",
        "--no-mdns", "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise MmrecError("the simulator exited before it listened")
        yield [(n["name"], n["url"]) for n in json.loads(line)["nodes"]]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def run_cluster(args: argparse.Namespace, settings: ShootConfig) -> int:
    from mmrec.cluster.coordinator import ClusterTake, connect, plan_from_survey, recorder_hosts
    from mmrec.cluster.host import HostJob
    from mmrec.cluster.plan import PlannedCamera, load_hosts
    from mmrec.commands.record import exit_status
    from mmrec.store.take import to_jsonable

    if settings.discovery.enabled:
        raise ConfigError("--discover is not for a cluster take yet: give the cameras")
    console = Console(stderr=True)

    def say(text: str) -> None:
        if not args.json:
            console.print(f"[dim]{text}[/]")

    hosts_file = load_hosts(args.hosts) if args.hosts else None
    connect(args.cluster)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        cams = [(c.name, c.url) for c in settings.cameras]
        if args.sim:
            cams += stack.enter_context(sim_nodes(args.sim, args.sim_size, args.sim_fps))
        ingest = args.connect_timeout, args.read_timeout
        job = HostJob(
            "", "", "", (),
            segment_seconds=settings.segment_seconds,
            direct_io=not args.buffered_io,
            writer_threads=args.writer_threads,
            connect_timeout=ingest[0],
            read_timeout=ingest[1],
        )  # fmt: skip
        take = ClusterTake(settings.out, name=settings.take_name, job=job, on_event=say)
        stack.callback(take.close)
        hosts = recorder_hosts()
        if not hosts:
            raise ConfigError(
                f"no recorder host in the cluster at {args.cluster}: start each with "
                "'mmrec cluster up --name NAME --address HEAD:PORT'"
            )
        infos = take.survey(hosts)
        plan = plan_from_survey(
            [PlannedCamera(n, u) for n, u in cams],
            infos,
            hosts_file.hosts if hosts_file else (),
            dict(hosts_file.pinned) if hosts_file else None,
        )
        for cam, why in plan.unplaced:
            say(f"camera {cam.name!r} is not recorded: {why}")
        for a in plan.assignments:
            say(f"host {a.host}: {', '.join(c.name for c in a.cameras) or 'no cameras'}")
        if not plan.cameras:
            raise ConfigError("no camera could be given to any host")
        stopped = False
        try:
            take.arm(plan)
            take.start(lead_s=1.0, duration_s=settings.duration)
            busy = len([a for a in plan.assignments if a.cameras])
            say(f"recording take {take.id} on {busy} host(s) into {take.dir}")
            deadline = None
            if settings.duration is not None:
                deadline = time.monotonic() + 1.0 + settings.duration
            _watch(take, stop, deadline, None if args.json else console)
            say("stopping every host on one instant, finalizing files…")
            take.stop()
            stopped = True
        finally:
            if not stopped:  # an error on the way: no host is left armed or recording
                say("stopping every host (the take did not go as planned)…")
                with contextlib.suppress(Exception):
                    take.stop(timeout=15.0)
        manifest = take.merge()
    if manifest is None:
        console.print(
            f"the hosts' parts are in {take.dir}/hosts/ on each host: gather them and run "
            f"'mmrec cluster merge {take.dir}'"
        )
        return 5
    if args.json:
        json.dump(to_jsonable(manifest), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        console.print(
            f"take {manifest.take_id}: {len(manifest.cameras)} camera(s) on "
            f"{len(manifest.hosts)} host(s), {manifest.outcome}: {manifest.outcome_detail}"
        )
        for h in manifest.hosts:
            console.print(f"  host {h.name}: {h.state}" + (f" ({h.note})" if h.note else ""))
        console.print(f"written to {Path(take.dir) / 'manifest.json'}")
    return exit_status(manifest)


def _watch(
    take: object, stop: threading.Event, deadline: float | None, console: Console | None
) -> None:
    import time

    from mmrec.cluster.coordinator import ClusterTake

    assert isinstance(take, ClusterTake)

    def done() -> bool:
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    if console is None:
        while not done():
            take.poll()
            stop.wait(0.5)
        return
    with Live(_table(take), console=console, refresh_per_second=2) as live:
        while not done():
            take.poll()
            live.update(_table(take))
            stop.wait(0.5)  # the table's refresh; a stop wakes it at once


def _table(take: ClusterTake) -> Table:
    st = take.status()
    t = Table(title=f"take {take.id}", title_justify="left")
    for col in ("host", "camera", "state", "frames", "MB", "dropped"):
        t.add_column(col, justify="left" if col in ("host", "camera", "state") else "right")
    host_state = {h.name: h for h in st.hosts}
    for c in st.cameras:
        h = host_state[c.host]
        style = "red" if h.failing else ("green" if c.state == "streaming" else "yellow")
        t.add_row(
            c.host,
            c.name,
            f"[{style}]{c.state}[/]",
            str(c.frames),
            f"{c.bytes / 1e6:.1f}",
            str(c.dropped),
        )
    for h in st.hosts:
        if h.failing:
            t.add_row(h.name, "", f"[red]{h.state} for {h.since_s:.0f} s[/]", "", "", "")
    return t
