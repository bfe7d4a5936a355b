"""A simulated node as a recorder sees it: frames, clocks, faults, controls, status, events."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from mmrec.sim import NodeConfig, SimMesh, SimNode
from mmrec.sim.record import SimRecord, sim_record
from mmrec.wire import jpeg
from tests.helpers import loopback_mesh


def _name(tag: str = "n") -> str:
    return f"{tag}-{secrets.token_hex(4)}"


def _cfg(**kw: object) -> NodeConfig:
    base: dict[str, object] = {"width": 160, "height": 120, "fps": 60.0, "ring": 3}
    base.update(kw)
    name = str(base.pop("name", _name()))
    return NodeConfig(name, **base)  # type: ignore[arg-type]


def _mesh(*configs: NodeConfig, **kw: object) -> SimMesh:
    return loopback_mesh(configs, **kw)


@dataclass(frozen=True, slots=True)
class Got:
    """One part as a test client received it."""

    headers: dict[str, str]
    jpeg: bytes
    arrival_ns: int


class Client:
    """A minimal MJPEG client for the canonical wire: Content-Length framed parts."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, node: SimNode, path: str = "/stream") -> Client:
        reader, writer = await asyncio.open_connection(node.host, node.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {node.host}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        return cls(reader, writer)

    async def part(self, timeout: float = 5.0) -> Got:
        async with asyncio.timeout(timeout):
            line = await self.reader.readline()
            if line == b"\r\n":  # the CRLF ending the previous part
                line = await self.reader.readline()
            if not line:
                raise EOFError("stream closed")
            assert line == b"--mmcamsim\r\n", line
            headers = {}
            while (line := await self.reader.readline()) != b"\r\n":
                k, _, v = line.decode().partition(":")
                headers[k.strip().lower()] = v.strip()
            data = await self.reader.readexactly(int(headers["content-length"]))
            return Got(headers, data, time.time_ns())

    async def parts(self, n: int, timeout: float = 5.0) -> list[Got]:
        return [await self.part(timeout) for _ in range(n)]

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def _record(got: Got) -> SimRecord:
    rec = sim_record(got.jpeg)
    assert rec is not None
    return rec


async def test_every_frame_carries_its_com_record() -> None:
    async with _mesh(_cfg(width=320, height=240, fps=30)) as mesh:
        node = mesh.nodes[0]
        client = await Client.open(node)
        try:
            got = await client.parts(10)
        finally:
            await client.close()
    recs = [_record(g) for g in got]
    assert {r.node for r in recs} == {node.name}
    frames = [r.frame for r in recs]
    assert frames == sorted(set(frames)) and frames[-1] - frames[0] == 9  # no gaps, increasing
    for g, r in zip(got, recs, strict=True):
        info = jpeg.parse_header(g.jpeg)
        assert info is not None and (info.width, info.height) == (320, 240)
        assert jpeg.is_complete(g.jpeg)
        assert g.headers["content-type"] == "image/jpeg"
        assert 0 <= g.arrival_ns - r.true_ns < 2_000_000_000  # captured just before it arrived
    # frame n is captured at origin + n / fps
    origin = node.clock.origin_ns if node.clock else 0
    for r in recs:
        assert abs(r.true_ns - (origin + round(r.frame * 1e9 / 30))) <= 1
    # the node's record of what it sent matches what arrived
    sent = {f.frame: f.true_ns for f in node.sent}
    assert all(sent[r.frame] == r.true_ns for r in recs)


async def test_clock_offset_drift_and_delay_show_as_promised() -> None:
    cfg = _cfg(clock_offset_s=-3.25, drift_ppm=5000.0, delay_ms=80.0)
    async with _mesh(cfg) as mesh:
        node = mesh.nodes[0]
        client = await Client.open(node)
        try:
            got = await client.parts(8)
        finally:
            await client.close()
    assert node.clock is not None
    origin = node.clock.origin_ns
    for g in got:
        r = _record(g)
        ts = g.headers["x-timestamp"]
        sec, frac = ts.split(".")
        assert len(frac) == 6
        device_ns = int(sec) * 1_000_000_000 + int(frac) * 1000
        want = r.true_ns - 3_250_000_000 + (r.true_ns - origin) * 5000 // 1_000_000
        assert abs(device_ns - want) < 2_000  # microsecond resolution on the wire
        # true_ns is the capture time; the frame left about delay_ms later
        assert g.arrival_ns - r.true_ns >= 80_000_000


async def test_drops_skip_frame_numbers() -> None:
    async with _mesh(_cfg(drop_every=3)) as mesh:
        client = await Client.open(mesh.nodes[0])
        try:
            frames = [_record(g).frame for g in await client.parts(9)]
        finally:
            await client.close()
    assert all(f % 3 != 2 for f in frames)
    assert any(b - a == 2 for a, b in itertools.pairwise(frames))
    assert mesh.nodes[0].frames_dropped >= 3


async def test_stall_keeps_the_socket_and_resume_skips_ahead() -> None:
    async with _mesh(_cfg()) as mesh:
        node = mesh.nodes[0]
        client = await Client.open(node)
        try:
            before = _record((await client.parts(3))[-1]).frame
            node.stall()
            sent_at_stall = node.frames_sent
            await node.wait_until(lambda: node.frames_stalled >= 6)
            assert node.frames_sent == sent_at_stall
            assert node.stream_clients == 1  # still connected
            node.resume()
            # drain what was in flight at stall time, then the first frame after resume
            frames = [_record(g).frame for g in await client.parts(3)]
        finally:
            await client.close()
    assert frames[-1] - before >= 6


async def test_scheduled_stall_resumes_by_itself() -> None:
    async with _mesh(_cfg(stall_at=0.2, stall_for=0.3)) as mesh:
        node = mesh.nodes[0]
        client = await Client.open(node)
        try:
            async with asyncio.timeout(5):
                while not node.stalled:
                    await client.part()
            stalled_sent = node.frames_sent
            await node.wait_sent(stalled_sent + 3)
            assert not node.stalled and node.frames_stalled > 0
        finally:
            await client.close()


async def test_disconnect_drops_clients_and_reconnect_works() -> None:
    async with _mesh(_cfg(disconnect_at=0.3)) as mesh:
        node = mesh.nodes[0]
        client = await Client.open(node)
        try:
            async with asyncio.timeout(5):
                with pytest.raises((EOFError, asyncio.IncompleteReadError, ConnectionError)):
                    while True:
                        await client.part()
        finally:
            await client.close()
        again = await Client.open(node)
        try:
            await again.parts(2)
            node.disconnect()
            with pytest.raises((EOFError, asyncio.IncompleteReadError, ConnectionError)):
                await again.parts(100)
        finally:
            await again.close()
        closed = [c for c in node.connections if not c.open]
        assert len(closed) == 2 and all(c.frames_sent > 0 for c in closed)


async def test_stop_refuses_connections_and_start_comes_back_later_in_time() -> None:
    async with _mesh(_cfg()) as mesh:
        node = mesh.nodes[0]
        port = node.port
        client = await Client.open(node)
        try:
            last = _record((await client.parts(2))[-1]).frame
        finally:
            await client.close()
        await node.stop()
        assert not node.running
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(node.host, port)
        stop_frame = node.current_frame()
        async with asyncio.timeout(5):
            await node.wait_captured(stop_frame + 3)  # captured while nobody could watch
        await node.start()
        assert node.port == port
        client = await Client.open(node)
        try:
            first = _record(await client.part()).frame
        finally:
            await client.close()
    assert first >= stop_frame + 3 > last


async def test_many_clients_and_a_slow_one_does_not_hold_back_the_others() -> None:
    cfg = _cfg(width=1280, height=720, fps=60.0, max_client_buffer=64 * 1024)
    async with _mesh(cfg) as mesh:
        node = mesh.nodes[0]
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        await asyncio.get_running_loop().sock_connect(slow, (node.host, node.port))
        slow.send(b"GET /stream HTTP/1.1\r\n\r\n")  # and never read
        fast = [await Client.open(node) for _ in range(3)]
        try:
            async with asyncio.timeout(20):
                while node.client_skips == 0:
                    for c in fast:
                        await c.part()
                for c in fast:
                    frames = [_record(g).frame for g in await c.parts(5)]
                    assert frames == list(range(frames[0], frames[0] + 5))
        finally:
            for c in fast:
                await c.close()
            slow.close()
    stats = {c.conn: c for c in node.connections}
    assert max(s.frames_skipped for s in stats.values()) > 0
    assert sorted(s.frames_skipped for s in stats.values())[:3] == [0, 0, 0]


async def test_status_and_events() -> None:
    cfg = _cfg(clock_offset_s=100.0, model="pixel-sim", role="wide")
    async with _mesh(cfg) as mesh, aiohttp.ClientSession() as http:
        node = mesh.nodes[0]
        async with http.get(node.status_url) as resp:
            assert resp.status == 200
            status = await resp.json()
        now = time.time()
        assert status["deviceName"] == node.name
        assert status["model"] == "pixel-sim" and status["role"] == "wide"
        assert status["apiPort"] == node.port
        assert (status["width"], status["height"], status["fps"]) == (160, 120, 60.0)
        assert abs(status["clock"] - (now + 100.0)) < 1.0
        assert status["framesSent"] == 0 and status["frame"] >= 0

        async with http.get(node.events_url) as resp:
            assert resp.headers["Content-Type"] == "text/event-stream"
            beats: list[dict[str, object]] = []
            event = ""
            async with asyncio.timeout(5):
                async for raw in resp.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "heartbeat":
                        beats.append(json.loads(line[6:]))
                        if len(beats) == 2:
                            break
        assert [b["deviceName"] for b in beats] == [node.name, node.name]
        c0, c1 = (float(b["clock"]) for b in beats)  # type: ignore[arg-type]
        assert 0.8 < c1 - c0 < 2.5  # one each second (generous: shared machine)
        assert int(beats[1]["frame"]) > int(beats[0]["frame"])  # type: ignore[call-overload]

        async with http.get(node.base_url + "/nope") as resp:
            assert resp.status == 404


async def test_command_is_answered_as_json_and_reported_on_events() -> None:
    cfg = _cfg(device_name="<b>Cam</b> \u202eA")
    async with _mesh(cfg) as mesh, aiohttp.ClientSession() as http:
        node = mesh.nodes[0]
        async with http.get(node.events_url) as events:
            await events.content.readuntil(b"\n\n")  # the first heartbeat: subscribed
            async with http.post(node.base_url + "/command", json={"do": "ping"}) as resp:
                assert resp.status == 200
                answer = await resp.json()
            assert answer["ok"] is True and answer["command"] == {"do": "ping"}
            assert answer["deviceName"] == "<b>Cam</b> \u202eA"  # as the node names itself
            async with asyncio.timeout(5):
                while True:
                    block = (await events.content.readuntil(b"\n\n")).decode()
                    if block.startswith("event: command"):
                        break
            data = json.loads(block.split("data: ", 1)[1])
            assert data["command"] == {"do": "ping"} and data["from"] == "127.0.0.1"
        async with http.post(node.base_url + "/command", data=b"[1, 2") as resp:
            assert resp.status == 400 and (await resp.json())["ok"] is False
        async with http.get(node.base_url + "/command") as resp:
            assert resp.status == 405
        assert list(node.commands) == [{"do": "ping"}]


async def test_status_keeps_the_connection_alive_for_the_next_request() -> None:
    """HTTP/1.1 /status answers keep the connection (clock probes are timed on an open
    one); a request that asks to close, or HTTP/1.0, gets Connection: close."""
    async with _mesh(_cfg()) as mesh:
        node = mesh.nodes[0]
        reader, writer = await asyncio.open_connection(node.host, node.port)
        try:
            for _ in range(3):  # three requests, one connection
                writer.write(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert b"Connection: keep-alive" in head
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                body = json.loads(await reader.readexactly(length))
                assert body["deviceName"] == node.name
            writer.write(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            rest = await asyncio.wait_for(reader.read(), 5)  # then EOF
            assert b"Connection: close" in rest and b"deviceName" in rest
        finally:
            writer.close()


async def test_nodes_on_consecutive_loopback_addresses_at_one_port() -> None:
    # A random 127/8 block, so parallel test runs never meet on the same address.
    base = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 200)}"
    port = random.randint(20000, 60000)
    configs = [_cfg(name=_name("a")), _cfg(name=_name("b"))]
    async with SimMesh(configs, base_host=base, port=port, mdns=False) as mesh:
        a, b = mesh.nodes
        assert (a.port, b.port) == (port, port)
        assert a.host == base and b.host.split(".")[-1] == str(int(base.split(".")[-1]) + 1)
        assert mesh[b.name] is b
        for node in mesh.nodes:
            client = await Client.open(node)
            try:
                assert _record(await client.part()).node == node.name
            finally:
                await client.close()


async def test_sent_log_lists_each_connection(tmp_path: Path) -> None:
    log = tmp_path / "sent.jsonl"
    async with _mesh(_cfg(), sent_log=log, sent_log_interval=0.1) as mesh:
        node = mesh.nodes[0]
        for _ in range(2):
            client = await Client.open(node)
            try:
                got = [_record(g) for g in await client.parts(4)]
            finally:
                await client.close()
        await node.wait_until(lambda: sum(1 for c in node.connections if not c.open) >= 2)
    lines = [json.loads(s) for s in log.read_text().splitlines()]
    nodes = [x for x in lines if x["kind"] == "node"]
    conns = [x for x in lines if x["kind"] == "connection"]
    assert nodes[0]["node"] == node.name and nodes[0]["frames_sent"] == node.frames_sent
    assert len(conns) == 2 and not any(c["open"] for c in conns)
    last = conns[1]
    assert last["first_frame"] <= got[0].frame and last["last_frame"] >= got[-1].frame
    assert last["frames_sent"] == last["last_frame"] - last["first_frame"] + 1
    assert last["first_true_ns"] <= got[0].true_ns <= last["last_true_ns"]


@pytest.mark.ffmpeg
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
async def test_ffmpeg_decodes_the_stream() -> None:
    async with _mesh(_cfg(width=320, height=240, fps=30)) as mesh:
        proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "mpjpeg",
            "-i", mesh.nodes[0].url, "-frames:v", "10", "-f", "framemd5", "-",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert sum(1 for ln in out.decode().splitlines() if ln and not ln.startswith("#")) == 10
