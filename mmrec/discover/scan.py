"""Opt-in subnet scan: find camera nodes that mDNS cannot (another subnet, missed announcements).

Invariants:

* Only addresses of the range the user named are probed: :func:`scan_targets` is
  the single source of targets, and it refuses ranges larger than 256 addresses
  (a /24), so a typo cannot turn into a sweep of a /8.
* At most ``concurrency`` hosts are probed at once; each host gets ``connect_s`` to
  open TCP and ``host_s`` in all; the whole scan ends after ``total_s``.
* An open port is not a camera: a host counts only when ``GET /status`` answers
  with a camera node's JSON (:func:`mmrec.wire.status.parse_status`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import ifaddr

from mmrec.discover.probe import Connect, tcp_connect
from mmrec.errors import CameraError, DiscoveryError
from mmrec.wire.status import NodeStatus

MAX_SCAN_ADDRESSES = 256


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Bounds of one scan (seconds and hosts at once)."""

    concurrency: int = 32
    connect_s: float = 0.4
    host_s: float = 1.5
    total_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one scan did: targets tried, ports found open, camera nodes confirmed."""

    cidr: str
    targets: int
    probed: int
    open_ports: int
    nodes: int
    timed_out: bool


def scan_targets(cidr: str) -> list[str]:
    """Every host address of ``cidr`` (network/broadcast excluded), in order.

    Raises :class:`DiscoveryError` for a malformed range or one larger than a /24.
    """
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError as exc:
        raise DiscoveryError(f"bad scan range {cidr!r}: {exc}") from None
    if net.num_addresses > MAX_SCAN_ADDRESSES:
        narrower = 24 if net.version == 4 else 120
        raise DiscoveryError(
            f"scan range {cidr} has {net.num_addresses} addresses; at most"
            f" {MAX_SCAN_ADDRESSES} (a /{narrower}) are scanned: name a narrower range"
        )
    return [str(h) for h in net.hosts()]


def auto_subnet(adapters: Iterable[ifaddr.Adapter]) -> str:
    """The first non-loopback IPv4 interface's own subnet, narrowed to the /24 around
    the interface address if it is larger. Raises :class:`DiscoveryError` if none."""
    for adapter in adapters:
        for ip in adapter.ips:
            if not isinstance(ip.ip, str):
                continue  # IPv6 entries are tuples
            addr = ipaddress.IPv4Address(ip.ip)
            if addr.is_loopback or addr.is_link_local:
                continue
            prefix = max(int(ip.network_prefix), 24)
            return str(ipaddress.IPv4Interface(f"{addr}/{prefix}").network)
    raise DiscoveryError("--scan auto: no non-loopback IPv4 interface found; name a CIDR")


def resolve_scan_range(spec: str) -> str:
    """``"auto"`` -> this machine's LAN subnet (see :func:`auto_subnet`); a CIDR as given."""
    if spec.strip().lower() == "auto":
        return auto_subnet(ifaddr.get_adapters())
    return spec


FetchStatus = Callable[[str, int, float], Awaitable[tuple[NodeStatus, list[str]]]]
OnNode = Callable[[str, int, NodeStatus, list[str]], None]


async def scan(
    cidr: str,
    port: int,
    fetch: FetchStatus,
    on_node: OnNode,
    *,
    limits: ScanLimits = ScanLimits(),  # frozen: safe as a default
    connect: Connect = tcp_connect,
) -> ScanReport:
    """Probe every host of ``cidr`` on ``port``; call ``on_node`` for each camera node.

    ``fetch(host, port, timeout_s)`` is the /status probe (raises
    :class:`~mmrec.errors.CameraError` when the answer is not a camera node).
    """
    targets: Sequence[str] = scan_targets(cidr)
    queue = iter(targets)
    probed = open_ports = nodes = 0

    async def probe_one(host: str) -> None:
        nonlocal probed, open_ports, nodes
        probed += 1
        try:
            async with asyncio.timeout(limits.host_s):
                if not await connect(host, port, limits.connect_s):
                    return
                open_ports += 1
                status, problems = await fetch(host, port, limits.host_s)
        except (TimeoutError, CameraError):
            return
        nodes += 1
        on_node(host, port, status, problems)

    async def worker() -> None:
        # One shared iterator: workers pull the next host when they are free, so at
        # most `concurrency` probes are ever in flight.
        for host in queue:
            await probe_one(host)

    timed_out = False
    try:
        async with asyncio.timeout(limits.total_s), asyncio.TaskGroup() as tg:
            for _ in range(max(1, min(limits.concurrency, len(targets)))):
                tg.create_task(worker())
    except TimeoutError:
        timed_out = True
    return ScanReport(cidr, len(targets), probed, open_ports, nodes, timed_out)
