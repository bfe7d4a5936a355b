"""The subnet scanner: only the named range, bounded concurrency, bounded time."""

from __future__ import annotations

import asyncio
import ipaddress

import ifaddr
import pytest

from mmrec.discover.scan import ScanLimits, auto_subnet, scan, scan_targets
from mmrec.errors import CameraUnreachableError, DiscoveryError
from mmrec.wire.status import NodeStatus


def test_targets_stay_inside_the_range() -> None:
    targets = scan_targets("192.168.1.0/24")
    assert len(targets) == 254
    assert targets[0] == "192.168.1.1" and targets[-1] == "192.168.1.254"
    net = ipaddress.ip_network("192.168.1.0/24")
    assert all(ipaddress.ip_address(t) in net for t in targets)
    # A host address with a prefix means its network, nothing more.
    assert scan_targets("127.0.0.200/29") == [f"127.0.0.{i}" for i in range(201, 207)]
    assert scan_targets("127.0.2.9/32") == ["127.0.2.9"]
    assert len(scan_targets("fd00::/120")) == 255


@pytest.mark.parametrize("cidr", ["10.0.0.0/23", "10.0.0.0/8", "0.0.0.0/0", "fd00::/119"])
def test_ranges_larger_than_a_24_are_refused(cidr: str) -> None:
    with pytest.raises(DiscoveryError, match="at most 256"):
        scan_targets(cidr)


@pytest.mark.parametrize("cidr", ["", "auto-ish", "300.1.1.0/24", "10.0.0.0/33"])
def test_bad_ranges_are_refused(cidr: str) -> None:
    with pytest.raises(DiscoveryError, match="bad scan range"):
        scan_targets(cidr)


def _adapter(*ips: tuple[str | tuple[str, int, int], int]) -> ifaddr.Adapter:
    return ifaddr.Adapter("x", "x", [ifaddr.IP(ip, prefix, "x") for ip, prefix in ips])


def test_auto_subnet_is_the_interface_subnet_narrowed_to_a_24() -> None:
    lo = _adapter(("127.0.0.1", 8))
    lan = _adapter((("fe80::1", 0, 2), 64), ("192.168.7.23", 24))
    wide = _adapter(("10.1.2.3", 16))
    assert auto_subnet([lo, lan]) == "192.168.7.0/24"
    assert auto_subnet([lo, wide]) == "10.1.2.0/24"
    assert auto_subnet([_adapter(("192.168.7.23", 28))]) == "192.168.7.16/28"
    with pytest.raises(DiscoveryError):
        auto_subnet([lo, _adapter(("169.254.3.4", 16))])


async def _not_a_node(host: str, port: int, timeout_s: float) -> tuple[NodeStatus, list[str]]:
    raise CameraUnreachableError(f"{host}:{port}", "no")


async def test_concurrency_is_bounded_and_every_target_probed_once() -> None:
    limit = 8
    in_flight = 0
    peak = 0
    probed: list[str] = []
    full = asyncio.Event()

    async def connect(host: str, port: int, timeout_s: float) -> bool:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        probed.append(host)
        if in_flight >= limit:
            full.set()
        await full.wait()  # hold every slot until the limit is reached at least once
        in_flight -= 1
        return host.endswith("7")

    found: list[str] = []
    statuses = {"10.9.8.7": NodeStatus("cam", "m", "r", 8081)}

    async def fetch(host: str, port: int, timeout_s: float) -> tuple[NodeStatus, list[str]]:
        if host in statuses:
            return statuses[host], []
        raise CameraUnreachableError(host, "no")

    report = await scan(
        "10.9.8.0/24",
        8081,
        fetch,
        lambda host, port, status, problems: found.append(host),
        limits=ScanLimits(concurrency=limit, total_s=5.0),
        connect=connect,
    )
    assert peak == limit
    assert sorted(probed) == sorted(scan_targets("10.9.8.0/24"))
    assert found == ["10.9.8.7"]
    assert (report.targets, report.probed, report.nodes, report.timed_out) == (254, 254, 1, False)
    assert report.open_ports == 25  # .7, .17, ..., .247: open, but only one is a camera


async def test_whole_scan_is_bounded_in_time() -> None:
    never = asyncio.Event()

    async def hang(host: str, port: int, timeout_s: float) -> bool:
        await never.wait()
        return True

    slow = ScanLimits(concurrency=4, connect_s=0.1, host_s=60.0, total_s=0.2)
    report = await scan(
        "10.9.8.0/24", 8081, _not_a_node, lambda *a: None, limits=slow, connect=hang
    )
    assert report.timed_out and report.probed == 4 and report.nodes == 0


async def test_each_host_is_bounded_in_time() -> None:
    never = asyncio.Event()

    async def hang(host: str, port: int, timeout_s: float) -> bool:
        await never.wait()
        return True

    limits = ScanLimits(concurrency=64, host_s=0.05, total_s=10.0)
    report = await scan(
        "10.9.8.0/26", 8081, _not_a_node, lambda *a: None, limits=limits, connect=hang
    )
    assert not report.timed_out and report.probed == 62 and report.open_ports == 0
