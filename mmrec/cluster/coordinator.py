"""The coordinator of a cluster take: arms one recorder per host, starts them on one
instant, watches them, stops them together, merges their parts.

Ray places one :class:`~mmrec.cluster.host.HostAgent` actor on each recorder host (the
node that carries the custom resource ``host:NAME``; ``mmrec cluster up --name NAME``
labels it). Every call to an agent has a timeout: an actor that cannot be placed (no
node has the label) waits forever otherwise, and a frozen host never answers. The
recorder each agent starts is a detached process, so a take survives its coordinator:
when this process dies, every host records on to the take's deadline (``duration``) or
until it is told to stop (SIGTERM), and ``mmrec cluster merge`` merges what is there.

What the coordinator notices, within seconds, while the other hosts record on:
- a recorder gone (killed, crashed): its agent finds the process gone (``gone``);
- a recorder frozen (SIGSTOP, a hung disk): its agent's call times out (``frozen`` if the
  process is stopped, else ``not answering``);
- a host gone (its Ray node, its agent): the call fails with ``ActorDiedError``;
- a whole host frozen: the call itself does not return within ``call_timeout``.

Clock: the reference is this process's wall clock. Each host is probed NTP-style
(:mod:`mmrec.cluster.clock`) before the start and every ``probe_every`` seconds during
the take; the samples go to the host, which fits its mapping and keeps them in its
``host.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from mmrec.cluster import HEALTH_CHECK as HEALTH_CHECK
from mmrec.cluster.host import HostAgent, HostJob
from mmrec.cluster.merge import HOSTS, merge_take
from mmrec.cluster.plan import (
    ClusterPlan,
    HostsFile,
    HostSpec,
    PlannedCamera,
    merge_hosts,
    plan_cameras,
)
from mmrec.errors import ConfigError, MmrecError, RecordingError
from mmrec.store.names import safe_name
from mmrec.store.take import Manifest

HOST_RESOURCE: Final = "host:"
READY_TIMEOUT_S: Final = 30.0  # an agent not placed by then: the host is not up
PROBES_AT_ARM: Final = 8

# a host in these states cannot be told anything more (its agent, node or recorder is gone)
UNREACHABLE: Final = frozenset({"dead", "gone"})
ENDING: Final = frozenset({"stopping", "finished", "failed"})  # it was told, or it is done


def recorder_hosts() -> list[str]:
    """The names of the alive Ray nodes labelled ``host:NAME``, sorted."""
    names: set[str] = set()
    for node in ray.nodes():  # type: ignore[no-untyped-call]
        if not node.get("Alive"):
            continue
        for key in node.get("Resources", {}):
            if key.startswith(HOST_RESOURCE):
                names.add(key[len(HOST_RESOURCE) :])
    return sorted(names)


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` as a driver (quietly; idempotent)."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}") from exc


def agent_for(host: str, take: str) -> Any:
    """A :class:`HostAgent` actor placed on ``host`` (not yet known to be placed)."""
    cls = ray.remote(HostAgent)
    return cls.options(
        resources={f"{HOST_RESOURCE}{host}": 0.001},
        num_cpus=0,
        max_concurrency=4,
        name=f"mmrec-{take}-{host}",
    ).remote(host)


def place_agents(
    hosts: Sequence[str], take: str, timeout: float = READY_TIMEOUT_S
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """One agent per host, each answered its ``describe`` (the ready call) within
    ``timeout``; RecordingError naming those that did not."""
    agents = {h: agent_for(h, take) for h in hosts}
    refs = {h: a.describe.remote() for h, a in agents.items()}
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    missing: list[str] = []
    deadline = time.monotonic() + timeout
    for h, ref in refs.items():
        try:
            out[h] = (agents[h], ray.get(ref, timeout=max(0.1, deadline - time.monotonic())))
        except (GetTimeoutError, RayActorError) as exc:
            missing.append(f"{h} ({type(exc).__name__})")
            ray.kill(agents[h])
    if missing:
        for agent, _ in out.values():
            ray.kill(agent)
        raise RecordingError(
            f"recorder host(s) not ready within {timeout:g} s: {', '.join(missing)} "
            "(is each started with 'mmrec cluster up --name NAME'?)"
        )
    return out


@dataclass(frozen=True, slots=True)
class CameraRow:
    host: str
    name: str
    state: str
    frames: int
    bytes: int
    dropped: int


@dataclass(frozen=True, slots=True)
class HostState:
    name: str
    state: str  # armed, recording, stopping, finished, gone, frozen, not answering, dead
    since_s: float  # how long it has been in a failing state (0 while fine)
    detail: str | None = None

    @property
    def failing(self) -> bool:
        return self.state in ("gone", "frozen", "not answering", "dead", "failed")


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    hosts: tuple[HostState, ...]
    cameras: tuple[CameraRow, ...]


@dataclass
class _Host:
    name: str
    agent: Any
    info: dict[str, Any]
    cameras: tuple[tuple[str, str], ...]
    pending: Any = None  # the status call in flight
    sent_at: float = 0.0
    last_ok: float = field(default_factory=time.monotonic)
    last: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None  # what is wrong, while it is
    failed_at: float | None = None
    reported: str | None = None


class ClusterTake:
    """A take across the plan's hosts (see the module docstring)."""

    def __init__(
        self,
        out: Path,
        *,
        name: str | None = None,
        job: HostJob | None = None,
        call_timeout: float = 1.5,
        probe_every: float = 5.0,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = ClusterPlan(())
        self.out = Path(os.path.abspath(out))
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.id = stamp + (f"-{safe_name(name, max_len=40)}" if name else "")
        n = 1
        while (self.out / self.id).exists():
            n += 1
            self.id = f"{stamp}-{n}" + (f"-{safe_name(name, max_len=40)}" if name else "")
        self.dir = self.out / self.id
        self._job = job or HostJob("", "", "", ())
        self.call_timeout = call_timeout
        self.probe_every = probe_every
        self._say = on_event or (lambda text: None)
        self._hosts: dict[str, _Host] = {}
        self.start_ref_ns: int | None = None
        self.stop_ref_ns: int | None = None
        self._last_probe = 0.0
        self._placed: dict[str, tuple[Any, dict[str, Any]]] = {}

    # arming

    def survey(
        self, hosts: Sequence[str], ready_timeout: float = READY_TIMEOUT_S
    ) -> dict[str, dict[str, Any]]:
        """Place an agent on each of ``hosts`` (each answers within ``ready_timeout`` or
        RecordingError names it); what each says of itself (its networks: for the plan)."""
        self._placed = place_agents(hosts, self.id, ready_timeout)
        return {h: info for h, (_, info) in self._placed.items()}

    def arm(self, plan: ClusterPlan, ready_timeout: float = READY_TIMEOUT_S) -> None:
        """Start the recorder of every host of ``plan`` that has cameras (it connects
        them), and measure its clock. The hosts were surveyed first."""
        self.plan = plan
        busy = [a for a in plan.assignments if a.cameras]
        missing = [a.host for a in busy if a.host not in self._placed]
        if missing:
            self._placed.update(place_agents(missing, self.id, ready_timeout))
        for name in set(self._placed) - {a.host for a in busy}:  # no cameras: not needed
            ray.kill(self._placed.pop(name)[0])
        for a in busy:
            agent, info = self._placed[a.host]
            cams = tuple((c.name, c.url) for c in a.cameras)
            self._hosts[a.host] = _Host(a.host, agent, info, cams)
        jobs = {
            h.name: replace(
                self._job,
                host=h.name,
                cluster_take=self.id,
                folder=str(self.dir / HOSTS / h.name),
                cameras=h.cameras,
            )
            for h in self._hosts.values()
        }
        launches = {n: self._hosts[n].agent.launch.remote(j.to_json()) for n, j in jobs.items()}
        for n, ref in launches.items():
            try:
                ray.get(ref, timeout=ready_timeout)
            except GetTimeoutError:
                raise RecordingError(
                    f"host {n}: its recorder did not start in {ready_timeout:g} s"
                ) from None
            except RayActorError as exc:
                raise RecordingError(f"host {n}: its agent died ({exc})") from exc
            except ray.exceptions.RayTaskError as exc:
                raise RecordingError(f"host {n}: {exc.cause}") from exc
        self.probe(PROBES_AT_ARM)

    def probe(self, rounds: int = 1) -> None:
        """``rounds`` NTP-style probes of every live host's clock, sent to the host."""
        sent = []
        for h in self._live():
            samples = []
            for _ in range(rounds):
                t0 = time.time_ns()
                try:
                    mono = ray.get(h.agent.clock.remote(), timeout=self.call_timeout)
                except (GetTimeoutError, RayActorError):
                    break  # poll() says what is wrong with it
                samples.append([t0, int(mono), time.time_ns()])
            if samples:
                call = h.agent.call.remote(
                    "POST", "/clock", {"samples": samples}, self.call_timeout
                )
                sent.append((h, call))
        for h, call in sent:  # the host has its mapping before anything is asked of it
            try:
                got = ray.get(call, timeout=self.call_timeout + 1.0)
            except (GetTimeoutError, RayActorError):
                continue  # poll() says what is wrong with it
            if got.get("error"):
                self._say(f"host {h.name}: clock samples not taken: {got['error']}")
        self._last_probe = time.monotonic()

    # the take

    def start(self, lead_s: float = 1.0, duration_s: float | None = None) -> int:
        """Start every host's take on one instant ``lead_s`` from now on the reference
        clock (each host stops by itself ``duration_s`` after it, if given); returns it."""
        hosts = self._live()
        start = time.time_ns() + int(lead_s * 1e9)
        stop = start + int(duration_s * 1e9) if duration_s else None
        body = {"start_ref_ns": start, "stop_ref_ns": stop}
        refs = {h.name: h.agent.call.remote("POST", "/start", body, 10.0) for h in hosts}
        for name, ref in refs.items():
            try:
                got = ray.get(ref, timeout=15.0)
            except (GetTimeoutError, RayActorError) as exc:
                self._fail(self._hosts[name], f"did not start ({type(exc).__name__})")
                continue
            if got.get("error"):
                self._fail(self._hosts[name], f"did not start: {got['error']}")
        self.start_ref_ns, self.stop_ref_ns = start, stop
        return start

    def poll(self) -> ClusterStatus:
        """Every host's state and cameras as last heard (at most one status call in flight
        per host); failures are said once each, as they happen."""
        now = time.monotonic()
        for h in self._hosts.values():
            if h.pending is not None:
                done, _ = ray.wait([h.pending], timeout=0)
                if done:
                    ref, h.pending = h.pending, None
                    try:
                        got = ray.get(ref)
                    except RayActorError as exc:
                        self._fail(
                            h, f"dead: its agent or node is gone ({type(exc).__name__})", "dead"
                        )
                        continue
                    if got.get("error"):
                        self._fail(
                            h,
                            f"{got.get('state', 'failed')}: {got['error']}",
                            got.get("state", "failed"),
                        )
                    else:
                        if got.get("cameras") is None:  # ended: its last rows stand
                            got = {**h.last, "state": got["state"]}
                        h.last, h.last_ok = got, now
                        if h.failure is not None and h.failure != "dead":
                            self._say(f"host {h.name}: answering again ({got['state']})")
                            h.failure = h.failed_at = h.reported = None
                elif now - h.sent_at > self.call_timeout + 1.0:
                    self._fail(h, f"not answering for {now - h.sent_at:.1f} s", "not answering")
            if h.pending is None and h.failure != "dead":
                h.pending = h.agent.call.remote("GET", "/status", None, self.call_timeout)
                h.sent_at = now
        if self.start_ref_ns is not None and now - self._last_probe > self.probe_every:
            self.probe()
        return self.status()

    def status(self) -> ClusterStatus:
        now = time.monotonic()
        hosts = []
        rows = []
        for h in self._hosts.values():
            state = h.failure or h.last.get("state", "arming")
            since = now - h.failed_at if h.failed_at is not None else 0.0
            hosts.append(HostState(h.name, state, since, h.reported))
            for c in h.last.get("cameras", ()):
                cam_state = c["state"] if h.failure is None else f"host {h.failure}"
                rows.append(
                    CameraRow(h.name, c["name"], cam_state, c["frames"], c["bytes"], c["dropped"])
                )
        return ClusterStatus(tuple(hosts), tuple(rows))

    def _fail(self, h: _Host, detail: str, state: str = "failed") -> None:
        if h.failure is None:
            h.failed_at = time.monotonic()
        h.failure = state
        if h.reported != detail.split(" for ")[0]:
            h.reported = detail.split(" for ")[0]
            self._say(f"host {h.name}: {detail}; the other hosts record on")

    def _live(self) -> list[_Host]:
        return [h for h in self._hosts.values() if h.failure is None]

    def failures(self) -> dict[str, str]:
        return {h.name: h.reported or h.failure or "" for h in self._hosts.values() if h.failure}

    def stop(self, lead_s: float = 0.3, timeout: float = 60.0) -> None:
        """Stop every live host's take on one instant ``lead_s`` from now (the take's own
        end, if it has one and that is sooner), and wait (at most ``timeout``) until each
        has finalized its files."""
        stop = time.time_ns() + int(lead_s * 1e9)
        if self.stop_ref_ns is not None:
            stop = min(stop, max(self.stop_ref_ns, time.time_ns()))
        self.stop_ref_ns = stop
        # every host that may still record, armed or recording, frozen or slow to answer:
        # a recorder is nobody's child, and one not told to stop records on
        hosts = [h for h in self._hosts.values() if h.failure not in UNREACHABLE]
        deadline = time.monotonic() + timeout
        waiting = {h.name for h in hosts}
        resend_at = 0.0
        while waiting and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= resend_at:  # again each second until it says so: a call may be lost
                for h in hosts:
                    if h.name in waiting and h.last.get("state") not in ENDING:
                        h.agent.call.remote(
                            "POST", "/stop", {"stop_ref_ns": stop}, self.call_timeout
                        )
                resend_at = now + 1.0
            self.poll()
            for h in hosts:
                if h.failure in UNREACHABLE or h.last.get("state") in ("finished", "failed"):
                    waiting.discard(h.name)
            if waiting:
                time.sleep(0.1)  # the hosts finalize their files (a bounded wait, see timeout)
        for name in waiting:
            self._fail(self._hosts[name], f"did not finish within {timeout:g} s", "not answering")

    def merge(self) -> Manifest | None:
        """Merge the hosts' parts, when their folders are reachable from here (one
        machine, shared storage); None otherwise (then run 'mmrec cluster merge' where
        they are gathered)."""
        if not (self.dir / HOSTS).is_dir():
            return None
        try:
            return merge_take(self.dir, died=self.failures())
        except MmrecError as exc:
            self._say(f"merge: {exc}")
            return None

    def close(self) -> None:
        """End the agents (the recorders go on until their take ends)."""
        for h in self._hosts.values():
            with contextlib.suppress(Exception):  # an agent already gone: nothing to end
                ray.kill(h.agent)

    def recorder_pids(self) -> dict[str, int | None]:
        """Each host's recorder process id (for tests and tools on one machine)."""
        out = {}
        for h in self._hosts.values():
            try:
                out[h.name] = ray.get(h.agent.recorder_pid.remote(), timeout=self.call_timeout)
            except (GetTimeoutError, RayActorError):
                out[h.name] = None
        return out

    def describe(self) -> str:
        return json.dumps({h.name: h.info for h in self._hosts.values()}, indent=2)


def summary_rows(status: ClusterStatus) -> list[dict[str, Any]]:
    return [asdict(r) for r in status.cameras]


def plan_from_survey(
    cameras: Sequence[PlannedCamera],
    infos: dict[str, dict[str, Any]],
    configured: Sequence[HostSpec] = (),
    pinned: dict[str, str] | None = None,
) -> ClusterPlan:
    """The plan for the surveyed hosts: each reaching the networks its interfaces are on
    (unless the hosts file says which subnets and budget it has)."""
    import ipaddress

    found = [
        HostSpec(
            name, tuple(ipaddress.ip_network(n, strict=False) for n in info.get("networks", ()))
        )
        for name, info in infos.items()
    ]
    hosts = merge_hosts(found, HostsFile(tuple(configured)) if configured else None)
    return plan_cameras(cameras, hosts, pinned)
