"""Discovery end to end on loopback: fake nodes (aiohttp) advertised with zeroconf on 127.0.0.1.

Other tests may advertise ``_mmcam._tcp`` on loopback at the same time, so every node
here has a random unique name and assertions only look at our own nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import random
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from mmrec.commands import discover as discover_cmd
from mmrec.discover import (
    CameraAdded,
    CameraAddressChanged,
    CameraInfo,
    CameraLost,
    Discovery,
    DiscoveryConfig,
    DiscoveryEvent,
    ScanLimits,
    Source,
)
from mmrec.store.names import safe_name

LOOPBACK = ("127.0.0.1",)
FAST: dict[str, Any] = {"recheck_s": 0.3, "probe_timeout_s": 1.0, "resolve_timeout_s": 1.0}


def fast_config(**kw: Any) -> DiscoveryConfig:
    """A config with short re-probe intervals, so fallback and loss show within a second."""
    return DiscoveryConfig(**{**FAST, **kw})


def token() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class FakeNode:
    """A minimal camera node: GET /status and a trivial /stream on one or more sockets."""

    name: str
    model: str = "FakePhone1,1"
    role: str = "side"
    status: dict[str, Any] | None = None
    runners: list[web.AppRunner] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    def app(self) -> web.Application:
        async def status(_: web.Request) -> web.Response:
            doc = self.status or {
                "deviceName": self.name,
                "model": self.model,
                "role": self.role,
                "apiPort": 8081,
                "width": 640,
                "height": 480,
                "fps": 30,
                "clock": {"mono_ns": 0},
            }
            return web.json_response(doc)

        async def stream(_: web.Request) -> web.Response:
            return web.Response(body=b"", content_type="multipart/x-mixed-replace")

        app = web.Application()
        app.router.add_get("/status", status)
        app.router.add_get("/stream", stream)
        return app

    async def listen(self, host: str, port: int = 0) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self.runners.append(runner)
        self.ports[host] = sock.getsockname()[1]
        return int(self.ports[host])

    async def stop_listening(self, index: int) -> None:
        await self.runners[index].cleanup()

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


async def listen_on_free_address(
    node: FakeNode, base: str, candidates: list[int], port: int
) -> str:
    """Bind ``node`` to ``base.N:port`` for a free N among ``candidates`` (others may use some)."""
    candidates = random.sample(candidates, len(candidates))
    for n in candidates:
        host = f"{base}.{n}"
        try:
            await node.listen(host, port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
            raise
        return host
    pytest.skip(f"no free address in {base}.{candidates}:{port}")


def service(
    instance: str,
    port: int,
    props: Mapping[str, str | bytes] | None,
    address: str = "127.0.0.1",
    service_type: str = "_mmcam._tcp.local.",
    server: str | None = None,
) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        service_type,
        f"{instance}.{service_type}",
        port=port,
        properties=dict(props or {}),
        server=server or f"{instance}.local.",
        addresses=[socket.inet_aton(address)],
    )


@pytest.fixture
async def publisher() -> AsyncIterator[AsyncZeroconf]:
    azc = AsyncZeroconf(interfaces=list(LOOPBACK), ip_version=IPVersion.V4Only)
    try:
        yield azc
    finally:
        await azc.async_close()


@pytest.fixture
async def nodes() -> AsyncIterator[list[FakeNode]]:
    made: list[FakeNode] = []
    try:
        yield made
    finally:
        for node in made:
            await node.close()


async def register(azc: AsyncZeroconf, *infos: AsyncServiceInfo) -> None:
    await asyncio.gather(*(azc.async_register_service(i) for i in infos))


def ours(prefix: str) -> Callable[[list[CameraInfo]], list[CameraInfo]]:
    return lambda cams: [c for c in cams if c.name.startswith(prefix)]


async def next_event(
    stream: AsyncIterator[DiscoveryEvent], match: Callable[[DiscoveryEvent], bool], timeout_s: float
) -> DiscoveryEvent:
    async with asyncio.timeout(timeout_s):
        async for event in stream:
            if match(event):
                return event
    raise AssertionError("event stream ended")


async def test_four_advertised_nodes_found_within_3s(
    publisher: AsyncZeroconf, nodes: list[FakeNode]
) -> None:
    tag = f"t4-{token()}"
    infos = []
    for i in range(4):
        node = FakeNode(f"{tag}-cam{i}", role=f"role{i}")
        nodes.append(node)
        port = await node.listen("127.0.0.1")
        props = {"deviceName": node.name, "model": node.model, "role": node.role,
                 "apiPort": str(port)}  # fmt: skip
        infos.append(service(node.name, port, props))
    mine = ours(tag)
    async with Discovery(fast_config(interfaces=LOOPBACK)) as disc:
        stream = disc.events()
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Nodes join while discovery is running: each must be seen within 3 s.
        await register(publisher, *infos)
        cams = mine(await disc.wait_until(lambda cams: len(mine(cams)) == 4, timeout_s=3.0))
        assert loop.time() - started < 3.0
        by_name = {c.name: c for c in cams}
        for node in nodes:
            cam = by_name[node.name]
            assert (cam.model, cam.role, cam.host) == (node.model, node.role, "127.0.0.1")
            assert cam.port == node.ports["127.0.0.1"]
            assert cam.answering and Source.MDNS in cam.found_by
            assert cam.id == safe_name(node.name)
        # The same four arrive as CameraAdded events.
        added: set[str] = set()
        while len(added) < 4:
            ev = await next_event(stream, lambda e: isinstance(e, CameraAdded), 3.0)
            assert isinstance(ev, CameraAdded)
            if ev.camera.name.startswith(tag):
                added.add(ev.camera.name)
        # Unregistering one (mDNS goodbye) loses it.
        await publisher.async_unregister_service(infos[0])
        lost = await next_event(
            stream,
            lambda e: isinstance(e, CameraLost) and e.camera.name == nodes[0].name,
            5.0,
        )
        assert not lost.camera.answering  # type: ignore[union-attr]
    # Closed: the stream ends, nothing is left running.
    assert all(not isinstance(e, CameraAdded) for e in [e async for e in stream])


async def test_scanner_finds_an_unadvertised_node(nodes: list[FakeNode]) -> None:
    node = FakeNode(f"scan-{token()}")
    nodes.append(node)
    # Not a /29's network or broadcast address: the scan skips those.
    usable = [n for n in range(200, 250) if n % 8 not in (0, 7)]
    host = await listen_on_free_address(node, "127.0.0", usable, 8081)
    # An open port that is not a camera node must not count.
    impostor = FakeNode("impostor", status={"hello": "world"})
    nodes.append(impostor)
    base = int(host.rsplit(".", 1)[1]) & ~7
    cidr = f"127.0.0.{base}/29"
    with contextlib.suppress(pytest.skip.Exception):
        await listen_on_free_address(impostor, "127.0.0", list(range(base + 1, base + 7)), 8081)
    cfg = fast_config(mdns=False, scan=cidr, scan_limits=ScanLimits(total_s=5.0))
    async with Discovery(cfg) as disc:
        cams = await disc.wait_until(lambda cams: any(c.name == node.name for c in cams), 5.0)
        await asyncio.wait_for(disc.settled(), 5.0)
        [cam] = [c for c in cams if c.name == node.name]
        assert (cam.host, cam.port, cam.found_by) == (host, 8081, frozenset({Source.SCAN}))
        assert cam.stream_url == f"http://{host}:8081/stream"
        assert not any(c.name == "impostor" for c in disc.cameras())
        report = disc.scan_report
        assert report is not None and report.cidr == cidr and report.targets == 6
        assert not report.timed_out and report.nodes >= 1


async def test_hostname_prober_finds_a_node_whose_service_was_never_browsed(
    publisher: AsyncZeroconf, nodes: list[FakeNode]
) -> None:
    node = FakeNode(f"host-{token()}")
    nodes.append(node)
    port = await node.listen("127.0.0.1")
    hostname = f"{node.name}.local"
    # Only an A record for the hostname (published via an unrelated service type).
    await register(publisher, service(node.name, port, {}, service_type="_mmhost._tcp.local.",
                                      server=hostname + "."))  # fmt: skip
    cfg = fast_config(interfaces=LOOPBACK, hostnames=(hostname,), api_port=port)
    async with Discovery(cfg) as disc:
        cams = await disc.wait_until(lambda cams: any(c.name == node.name for c in cams), 5.0)
        [cam] = [c for c in cams if c.name == node.name]
        assert (cam.host, cam.port) == ("127.0.0.1", port)
        assert cam.found_by == {Source.HOSTNAME}
        assert cam.answering


async def test_manual_host_is_the_fallback_when_the_lan_path_stops(
    publisher: AsyncZeroconf, nodes: list[FakeNode]
) -> None:
    node = FakeNode(f"fb-{token()}")
    nodes.append(node)
    lan_port = await node.listen("127.0.0.1")  # the LAN path (advertised)
    tailnet = await listen_on_free_address(
        node, "127.0.2", list(range(100, 200)), 0
    )  # the "Tailscale" path
    manual = f"{tailnet}:{node.ports[tailnet]}"
    props = {"deviceName": node.name, "model": node.model, "role": node.role,
             "apiPort": str(lan_port)}  # fmt: skip
    cfg = fast_config(interfaces=LOOPBACK, hosts=(manual,))
    async with Discovery(cfg) as disc:
        stream = disc.events()
        # The manual path alone first: found, with the manual address.
        first = await next_event(
            stream, lambda e: isinstance(e, CameraAdded) and e.camera.name == node.name, 5.0
        )
        assert first.camera.host == tailnet  # type: ignore[union-attr]
        # The LAN announcement arrives: same camera, preferred address.
        await register(publisher, service(node.name, lan_port, props))
        ev = await next_event(stream, lambda e: isinstance(e, CameraAddressChanged), 5.0)
        assert isinstance(ev, CameraAddressChanged)
        assert (ev.old_host, ev.camera.host, ev.camera.port) == (tailnet, "127.0.0.1", lan_port)
        # (mdns + manual, and hostname too once the prober asks the name mDNS told us)
        assert ev.camera.found_by >= {Source.MDNS, Source.MANUAL}
        assert len([c for c in disc.cameras() if c.name == node.name]) == 1
        # The LAN path stops answering: discovery falls back to the manual address.
        await node.stop_listening(0)
        ev = await next_event(stream, lambda e: isinstance(e, CameraAddressChanged), 5.0)
        assert isinstance(ev, CameraAddressChanged)
        assert (ev.camera.host, ev.camera.answering) == (tailnet, True)


async def test_bad_announcements_are_reported_and_never_crash(publisher: AsyncZeroconf) -> None:
    tag = f"bad-{token()}"
    bad: list[tuple[str, dict[str, str | bytes]]] = [
        ("utf8", {"deviceName": b"\xff\xfe" + tag.encode(), "model": "m", "apiPort": "8081"}),
        ("dots", {"deviceName": f"../{tag}", "model": "m", "role": "r", "apiPort": "0"}),
        ("slash", {"deviceName": f"{tag}/b", "model": "m", "role": "r", "apiPort": "70000"}),
        ("nul", {"deviceName": f"{tag}\x00x", "model": "m", "role": "r", "apiPort": "abc"}),
        ("huge", {"deviceName": tag + "h" * 200, "model": "m", "role": "r", "apiPort": "8081"}),
        ("empty", {"deviceName": "", "model": "m", "role": "r"}),
        ("dup1", {"deviceName": f"{tag}-dup", "model": "m", "role": "r", "apiPort": "8081"}),
        ("dup2", {"deviceName": f"{tag}-dup", "model": "m", "role": "r", "apiPort": "8081"}),
    ]
    infos = [
        service(f"{tag}-{label}", 8081, props, address=f"127.0.2.{i + 1}")
        for i, (label, props) in enumerate(bad)
    ]
    cfg = fast_config(interfaces=LOOPBACK)
    async with Discovery(cfg) as disc:
        await register(publisher, *infos)

        def mine(cams: list[CameraInfo]) -> list[CameraInfo]:
            return [c for c in cams if tag in c.name]

        cams = mine(await disc.wait_until(lambda cams: len(mine(cams)) == 8, 5.0))
        ids = [c.id for c in cams]
        assert len(set(ids)) == 8
        assert all(safe_name(i) == i and "/" not in i and not i.startswith(".") for i in ids)
        dups = sorted(c.id for c in cams if c.name == f"{tag}-dup")
        assert dups == [f"{tag}-dup", f"{tag}-dup-2"]
        text = "\n".join(str(w) for w in disc.warnings() if tag in w.subject)
        needles = ["not valid UTF-8", "looks like a path", "out of range", "not a port"]
        needles += ["control characters", "cut to 64", "is empty", "second node claims"]
        for needle in needles:
            assert needle in text, needle
        # Nobody listens at 127.0.2.x:8081: they stop answering, discovery goes on.
        await disc.wait_until(lambda cams: not any(c.answering for c in mine(cams)), 5.0)


async def test_event_stream_ends_on_close_and_listeners_are_called(
    publisher: AsyncZeroconf, nodes: list[FakeNode]
) -> None:
    node = FakeNode(f"ev-{token()}")
    nodes.append(node)
    port = await node.listen("127.0.0.1")
    seen: list[DiscoveryEvent] = []
    cfg = fast_config(interfaces=LOOPBACK, hosts=(f"127.0.0.1:{port}",))
    async with Discovery(cfg) as disc:
        remove = disc.add_listener(seen.append)
        await disc.wait_until(lambda cams: any(c.name == node.name for c in cams), 5.0)
        late = disc.events()  # a late subscriber gets the current cameras first
        ev = await next_event(
            late, lambda e: isinstance(e, CameraAdded) and e.camera.name == node.name, 1.0
        )
        assert ev.camera.found_by == {Source.MANUAL}  # type: ignore[union-attr]
        remove()
    assert any(isinstance(e, CameraAdded) and e.camera.name == node.name for e in seen)
    rest = [e async for e in late]  # ends because discovery closed
    assert all(not isinstance(e, CameraAdded) or e.camera.name != node.name for e in rest)


async def test_bad_config_is_refused() -> None:
    from mmrec.errors import ConfigError, DiscoveryError

    with pytest.raises(DiscoveryError, match="at most 256"):
        DiscoveryConfig(scan="127.0.0.0/16")
    with pytest.raises(ConfigError):
        DiscoveryConfig(hosts=("1.2.3.4:99999",))
    with pytest.raises(DiscoveryError, match="not an IP address"):
        async with Discovery(DiscoveryConfig(interfaces=("eth0",))):
            pass


async def test_cli_json_lists_running_nodes(
    publisher: AsyncZeroconf, nodes: list[FakeNode], capsys: pytest.CaptureFixture[str]
) -> None:
    tag = f"cli-{token()}"
    infos = []
    for i in range(2):
        node = FakeNode(f"{tag}-{i}", role=f"r{i}")
        nodes.append(node)
        port = await node.listen("127.0.0.1")
        props = {"deviceName": node.name, "model": node.model, "role": node.role,
                 "apiPort": str(port)}  # fmt: skip
        infos.append(service(node.name, port, props))
    await register(publisher, *infos)
    parser = argparse.ArgumentParser()
    discover_cmd.configure(parser)
    args = parser.parse_args(["--interface", "127.0.0.1", "--json", "--timeout", "2"])
    # The command runs its own event loop (asyncio.run): give it a thread.
    code = await asyncio.to_thread(discover_cmd.run, args)
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    found = {c["deviceName"]: c for c in doc["cameras"] if c["deviceName"].startswith(tag)}
    assert set(found) == {f"{tag}-0", f"{tag}-1"}
    for i in range(2):
        cam = found[f"{tag}-{i}"]
        assert (cam["model"], cam["role"], cam["host"]) == ("FakePhone1,1", f"r{i}", "127.0.0.1")
        assert "mdns" in cam["found_by"] and cam["answering"] is True


async def test_simulated_mesh_is_discovered_end_to_end() -> None:
    sim = pytest.importorskip("mmrec.sim")
    import aiohttp

    tag = f"sim-{token()}"
    configs = [
        sim.NodeConfig(f"{tag}-{i}", width=64, height=48, fps=5.0, ring=2, role=f"r{i}")
        for i in range(2)
    ]
    async with (
        sim.SimMesh(configs, base_host="127.0.0.1", port=0) as mesh,
        Discovery(fast_config(interfaces=LOOPBACK)) as disc,
    ):
        cams = await disc.wait_until(
            lambda cams: sum(c.name.startswith(tag) and c.answering for c in cams) == 2, 3.0
        )
        for node in mesh.nodes:
            [cam] = [c for c in cams if c.name == node.name]
            assert (cam.model, cam.role, cam.host, cam.port) == (
                "mmcam-sim",
                node.config.role,
                node.host,
                node.port,
            )
            assert cam.stream_url == node.url
        # The address discovery hands out really streams MJPEG.
        mine = [c for c in cams if c.name.startswith(tag)]
        async with aiohttp.ClientSession() as session, session.get(mine[0].stream_url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
