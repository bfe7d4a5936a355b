"""Which recorder host records which camera: pure, decided once before a cluster take.

A camera goes to a host that can reach it: a host whose subnets hold the camera's address
(a host that states no subnets reaches any address, a camera named by a host name only
such a host), and that still has room within its stream budget (``streams``: what one
host's network and disk carry, e.g. ~13 1080p30 phones on 1 GbE). Among those, the least
loaded (by share of its budget) takes it, so a rig fills its hosts evenly. A camera pinned
to a host in the hosts file goes there whatever its address (still within the budget).
A camera no host can take is not dropped silently: it is in :attr:`ClusterPlan.unplaced`
with the reason, for the coordinator to say before the take.

Invariants: every camera given is in exactly one of the assignments or ``unplaced``; no
host gets more than its budget; the order of cameras within a host is the order given.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mmrec.errors import ConfigError
from mmrec.wire.url import parse_stream_url

DEFAULT_STREAMS: Final = 64  # what one mmrec host carries without trouble (README figures)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A recorder host: its name (its Ray label ``host:NAME``), the subnets it reaches and
    how many streams it may record."""

    name: str
    subnets: tuple[Network, ...] = ()  # () reaches any address
    streams: int = DEFAULT_STREAMS

    def reaches(self, address: str) -> bool:
        if not self.subnets:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False  # a host name: only a host without stated subnets takes it
        return any(ip.version == n.version and ip in n for n in self.subnets)


@dataclass(frozen=True, slots=True)
class PlannedCamera:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """One host's part of the take."""

    host: str
    cameras: tuple[PlannedCamera, ...]


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    assignments: tuple[Assignment, ...]  # one per host, in the hosts' order (maybe empty)
    unplaced: tuple[tuple[PlannedCamera, str], ...] = ()  # (camera, why)

    def host_of(self, camera: str) -> str | None:
        for a in self.assignments:
            if any(c.name == camera for c in a.cameras):
                return a.host
        return None

    @property
    def cameras(self) -> int:
        return sum(len(a.cameras) for a in self.assignments)


@dataclass(frozen=True, slots=True)
class HostsFile:
    """A rig's hosts as configured (``--hosts FILE``): subnets, budgets, pinned cameras."""

    hosts: tuple[HostSpec, ...]
    pinned: Mapping[str, str] = field(default_factory=dict)  # camera name -> host name


def camera_address(url: str) -> str:
    """The host part of a camera's stream URL (what a subnet is matched against)."""
    try:
        return parse_stream_url(url).host
    except ValueError as exc:
        raise ConfigError(f"camera URL {url!r}: {exc}") from exc


def plan_cameras(
    cameras: Sequence[PlannedCamera],
    hosts: Sequence[HostSpec],
    pinned: Mapping[str, str] | None = None,
) -> ClusterPlan:
    """Assign ``cameras`` to ``hosts`` (see the module docstring)."""
    if not hosts:
        raise ConfigError("no recorder hosts: start some with 'mmrec cluster up --name NAME'")
    names = [h.name for h in hosts]
    if len(set(names)) != len(names):
        raise ConfigError(f"recorder host names must be unique: {names}")
    seen: set[str] = set()
    for c in cameras:
        if c.name in seen:
            raise ConfigError(f"camera name {c.name!r} is given twice")
        seen.add(c.name)
    pinned = dict(pinned or {})
    by_name = {h.name: h for h in hosts}
    taken: dict[str, list[PlannedCamera]] = {h.name: [] for h in hosts}
    unplaced: list[tuple[PlannedCamera, str]] = []

    def room(h: HostSpec) -> bool:
        return len(taken[h.name]) < h.streams

    # pinned cameras first: they have no other choice
    free: list[PlannedCamera] = []
    for cam in cameras:
        host_name = pinned.get(cam.name)
        if host_name is None:
            free.append(cam)
        elif host_name not in by_name:
            unplaced.append((cam, f"pinned to {host_name}, which is not up"))
        elif room(by_name[host_name]):
            taken[host_name].append(cam)
        else:
            budget = by_name[host_name].streams
            unplaced.append((cam, f"pinned to {host_name}, which is full ({budget})"))
    for cam in free:
        address = camera_address(cam.url)
        reach = [h for h in hosts if h.reaches(address)]
        if not reach:
            unplaced.append((cam, f"no host reaches {address}"))
            continue
        open_ = [h for h in reach if room(h)]
        if not open_:
            full = ", ".join(f"{h.name} ({h.streams})" for h in reach)
            unplaced.append((cam, f"every host that reaches {address} is full: {full}"))
            continue
        best = min(open_, key=lambda h: (len(taken[h.name]) / h.streams, names.index(h.name)))
        taken[best.name].append(cam)
    order = {c.name: i for i, c in enumerate(cameras)}
    return ClusterPlan(
        tuple(
            Assignment(h.name, tuple(sorted(taken[h.name], key=lambda c: order[c.name])))
            for h in hosts
        ),
        tuple(unplaced),
    )


def parse_hosts(doc: Mapping[str, Any], where: str = "hosts file") -> HostsFile:
    """A hosts file's TOML, parsed::

    [[host]]
    name = "recA"
    subnets = ["192.168.43.0/24"]
    streams = 13                      # 1 GbE: ~13 1080p30 MJPEG phones
    cameras = ["A-wide", "A-close"]   # pinned here whatever their address
    """
    hosts: list[HostSpec] = []
    pinned: dict[str, str] = {}
    raw = doc.get("host", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: [[host]] must be a list of tables")
    for i, h in enumerate(raw):
        at = f"{where}: host[{i}]"
        if not isinstance(h, dict):
            raise ConfigError(f"{at}: expected a table")
        name = h.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{at}.name: expected a non-empty string")
        nets: list[Network] = []
        subnets = h.get("subnets", [])
        if not isinstance(subnets, list):
            raise ConfigError(f"{at}.subnets: expected a list of CIDR strings")
        for s in subnets:
            try:
                nets.append(ipaddress.ip_network(str(s), strict=False))
            except ValueError as exc:
                raise ConfigError(f"{at}.subnets: {exc}") from exc
        streams = h.get("streams", DEFAULT_STREAMS)
        if not isinstance(streams, int) or isinstance(streams, bool) or streams < 1:
            raise ConfigError(f"{at}.streams: expected a positive integer")
        cams = h.get("cameras", [])
        if not isinstance(cams, list) or not all(isinstance(c, str) for c in cams):
            raise ConfigError(f"{at}.cameras: expected a list of camera names")
        for c in cams:
            if c in pinned:
                raise ConfigError(f"{at}.cameras: {c!r} is pinned to {pinned[c]} already")
            pinned[c] = name
        hosts.append(HostSpec(name, tuple(nets), streams))
    return HostsFile(tuple(hosts), pinned)


def load_hosts(path: Path) -> HostsFile:
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_hosts(doc, str(path))


def merge_hosts(found: Sequence[HostSpec], configured: HostsFile | None) -> tuple[HostSpec, ...]:
    """The hosts to plan with: those found up (Ray nodes labelled ``host:NAME``, with the
    subnets their interfaces are on), with what the hosts file says about each taking
    precedence. A configured host that is not up is left out (its pinned cameras are then
    unplaced, and said so)."""
    if configured is None:
        return tuple(found)
    conf = {h.name: h for h in configured.hosts}
    return tuple(conf.get(h.name, h) for h in found)
