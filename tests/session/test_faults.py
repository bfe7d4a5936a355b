"""What goes wrong on a shoot, and what the user sees: clear errors, nothing lost.

Bad URLs are refused before anything is created; a node that answers with a web page,
a hostile /status, a dead primary address with a working fallback, and a hot-join that
fails each get a clear message naming the camera, while every other camera records on.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from mmrec.discover import CameraAdded, CameraInfo, DiscoveryEvent
from mmrec.errors import CameraProtocolError, ConfigError
from mmrec.ingest.status import StatusProbe
from mmrec.ingest.stream import IngestConfig, StreamTarget
from mmrec.session import folders, recording
from mmrec.session.follow import follow_discovery
from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig
from mmrec.store.take import Manifest, load_manifest
from tests.helpers import loopback_mesh, make_jpeg, pace, wait_for


@pytest.mark.parametrize(
    ("url", "host", "port", "path"),
    [
        ("192.168.43.21", "192.168.43.21", 8081, "/stream"),
        ("http://h:9000/", "h", 9000, "/stream"),  # pasted from a browser
        ("http://h/my stream", "h", 8081, "/my%20stream"),
        ("http://[fe80::1%25eth0]:8081/stream", "fe80::1%eth0", 8081, "/stream"),
        ("http://h/video?res=hd", "h", 8081, "/video?res=hd"),
    ],
)
def test_stream_urls(url: str, host: str, port: int, path: str) -> None:
    t = StreamTarget.from_url("cam", url)
    assert (t.host, t.port, t.path) == (host, port, path)


@pytest.mark.parametrize(
    "url", ["https://h/stream", "http://[::1/stream", "http://h:0/stream", "http:///stream"]
)
def test_bad_urls_are_config_errors_naming_the_camera(url: str) -> None:
    with pytest.raises(ConfigError, match="camera 'A'"):
        StreamTarget.from_url("A", url)


def test_cli_refuses_a_bad_url_before_making_a_take(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mmrec", "record", "--out", str(tmp_path), "--no-preview",
         "A=http://[::1/stream"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().startswith("mmrec record: error: camera 'A': bad URL")
    assert "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


async def test_manifest_is_final_however_close_falls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final manifest must win over the periodic one, whatever the timing: here a
    periodic write is still in its thread when close() begins, and close() must let it
    finish before it writes the final one."""
    real_write = folders.write_manifest  # the take's folders write its manifests
    periodic_started = threading.Event()
    close_began = threading.Event()
    periodic_in_flight = threading.Event()
    writes: list[str] = []

    def write(take_dir: Path, manifest: Manifest) -> None:
        if manifest.state != "recording":  # the final write
            assert not periodic_in_flight.is_set(), "final manifest written under a periodic one"
        elif writes:  # a periodic write (the first one is the take's opening)
            periodic_in_flight.set()
            periodic_started.set()
            assert close_began.wait(10), "close() never began"
        real_write(take_dir, manifest)
        writes.append(manifest.state)
        periodic_in_flight.clear()

    monkeypatch.setattr(folders, "write_manifest", write)
    monkeypatch.setattr(recording, "MANIFEST_EVERY", 0.05)

    async def begin_close() -> None:
        close_began.set()  # runs once close() has begun and first yielded (tasks run FIFO)

    async with Take(tmp_path, probe_clocks=False) as take:
        assert await asyncio.to_thread(periodic_started.wait, 10)
        await asyncio.gather(take.close(), begin_close())
    # the held periodic write, then the final ones (finished, then with the refinement)
    held = max(i for i, state in enumerate(writes) if state == "recording")
    assert held > 0 and writes[held + 1 :] == ["finished", "finished"]
    assert load_manifest(take.dir).state == "finished"
    assert not list(take.dir.glob("*.tmp"))


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def test_a_web_page_instead_of_a_stream_is_named_as_such(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<html>camera app</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner, port = await _serve(app)
    try:
        async with Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take:
            take.add_camera("web", f"http://127.0.0.1:{port}/index.html")
            await wait_for(lambda: take.status()[0].ingest.last_error is not None, 10)
            err = take.status()[0].ingest.last_error or ""
    finally:
        await runner.cleanup()
    assert "text/html, not an MJPEG stream" in err


async def test_hostile_status_costs_nothing_and_recording_goes_on(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    """A node whose /status never ends (cheap firmware serving video on every path)."""
    jpg = make_jpeg(160, 120)
    sent = 0

    async def stream(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        resp = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=fw"}
        )
        await resp.prepare(request)
        for _ in range(600):  # 20 s at most
            head = f"--fw\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
            await resp.write(head.encode() + jpg + b"\r\n")
            sent += 1
            await pace(1 / 30)  # 30 fps
        return resp

    async def endless_status(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(2000):  # 128 MB, if anyone read it all
            await resp.write(b"{" * 65536)
        return resp

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_get("/status", endless_status)
    runner, port = await _serve(app)
    url = f"http://127.0.0.1:{port}"
    try:
        probe = StatusProbe("127.0.0.1", port, "fw")
        with pytest.raises(CameraProtocolError, match="larger than"):
            await probe.probe()
        probe.close()
        async with Take(tmp_path, ingest_config=fast_ingest) as take:
            take.add_camera("fw", url + "/stream")
            await wait_for(lambda: take.status()[0].writer.frames >= 75, 15, "frames")
    finally:
        await runner.cleanup()
    m = load_manifest(take.dir)
    assert m.state == "finished" and m.cameras[0].frames >= 75


async def test_a_dead_primary_address_falls_back_to_the_next(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with loopback_mesh([NodeConfig("fb", width=160, height=120, ring=4)]) as mesh:
        node = mesh.nodes[0]
        async with Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take:
            # nothing listens on port 9 of 127.0.0.1: the primary path is dead
            take.add_camera("fb", "http://127.0.0.1:9/stream", fallbacks=[node.url])
            await wait_for(lambda: take.status()[0].writer.frames >= 10, 15, "fallback")
    cam = load_manifest(take.dir).cameras[0]
    assert cam.frames >= 10 and cam.url == node.url


async def test_a_failing_hot_join_is_reported_and_discovery_goes_on(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with loopback_mesh([NodeConfig("hj", width=160, height=120, ring=4)]) as mesh:
        node = mesh.nodes[0]

        def info(cid: str, host: str, port: int) -> CameraInfo:
            return CameraInfo(
                id=cid, name=cid, model="m", role="camera", host=host, port=port,
                found_by=frozenset({"manual"}), answering=True, last_seen_ns=0,
            )  # fmt: skip

        async def events() -> AsyncIterator[DiscoveryEvent]:
            yield CameraAdded(info("bad", "127.0.0.1", 0))  # port 0: add_camera refuses
            yield CameraAdded(info("good", node.host, node.port))

        async with Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take:
            await follow_discovery(take.session, events())
            await wait_for(lambda: any(s.writer.frames >= 5 for s in take.status()), 10)
    m = load_manifest(take.dir)
    assert [c.name for c in m.cameras] == ["good"]
    assert any("'bad'" in e.detail for e in m.events)


@pytest.mark.parametrize("mode", ["length", "chunked", "close"])
async def test_status_probe_reads_the_clock_over_a_kept_connection(mode: str) -> None:

    body = b'{"deviceName": "p", "clockNs": 1764067200123456789, "fps": 30}'
    connections = 0
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if mode == "length":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
                    )
                elif mode == "chunked":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + b"%x\r\n" % len(body)
                        + body
                        + b"\r\n0\r\n\r\n"
                    )
                else:
                    writer.write(b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n" + body)
                    await writer.drain()
                    writer.close()
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = StatusProbe("127.0.0.1", port, "p")
    try:
        for _ in range(3):
            t0, t1, status = await probe.probe()
            assert t0 <= t1 and status.device_ns == 1764067200123456789 and status.fps == 30
    finally:
        probe.close()
        await asyncio.wait_for(asyncio.gather(*handlers), 5)  # they see EOF and close
        server.close()
        await server.wait_closed()
    assert connections == (3 if mode == "close" else 1)
