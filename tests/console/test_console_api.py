"""The console's JSON API, event stream, pictures and metrics, in process, against
simulated nodes on loopback: takes recorded through the API are on disk as promised,
changes need the token, foreign Host names are refused, /metrics passes promtool."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mmrec.config import CameraSpec, camera_spec
from mmrec.console.access import HEADER, Access
from mmrec.console.alerts import Alert
from mmrec.console.shoot import Shoot, ShootOptions
from mmrec.console.web import ConsoleServer, to_json
from mmrec.ingest.command import CommandAnswer
from mmrec.ingest.stream import IngestConfig
from mmrec.session.engine import PreviewOptions
from mmrec.sim import NodeConfig, SimMesh
from mmrec.sim.record import sim_record
from mmrec.store.take import load_manifest
from mmrec.wire import jpeg
from tests.helpers import loopback_mesh, wait_for

NODES = [NodeConfig(f"n{i}", width=320, height=240, ring=3, fps=20) for i in (1, 2)]


@contextlib.asynccontextmanager
async def console(
    tmp_path: Path, ingest: IngestConfig, bind: str = "127.0.0.1", preroll: float = 0.0
) -> AsyncIterator[tuple[SimMesh, Shoot, ConsoleServer]]:
    async with loopback_mesh(NODES) as mesh:
        shoot = Shoot(
            ShootOptions(
                out=tmp_path / "takes",
                ingest=ingest,
                preview=PreviewOptions(port=None, size=(640, 360)),
                preroll_s=preroll,
            )
        )
        access = Access.for_bind(bind, "t0ken")
        server = ConsoleServer(shoot, access, bind, 0)
        await shoot.start([CameraSpec(n.name, n.url) for n in mesh.nodes])
        await server.start()
        try:
            yield mesh, shoot, server
        finally:
            await server.stop()
            await shoot.close()


def _fields_deep(obj: Any) -> Any:
    """Dataclasses as JSON values, walked in Python (what the page's JSON must say)."""
    if isinstance(obj, Alert):
        return {**_fields_deep(dataclasses.asdict(obj)), "active": obj.active}
    if isinstance(obj, CommandAnswer):
        return {**_fields_deep(dataclasses.asdict(obj)), "ok": obj.ok}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _fields_deep(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [_fields_deep(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _fields_deep(v) for k, v in obj.items()}
    return obj


def base(server: ConsoleServer) -> str:
    return f"http://{server.host}:{server.port}"


async def post(http: aiohttp.ClientSession, url: str, body: Any = None) -> Any:
    async with http.post(url, json=body or {}, headers={HEADER: "t0ken"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def state(http: aiohttp.ClientSession, server: ConsoleServer) -> Any:
    async with http.get(base(server) + "/api/state") as r:
        assert r.status == 200
        return await r.json()


async def test_takes_through_the_api_with_slate_preview_contact_sheet_and_events(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with (
        console(tmp_path, fast_ingest) as (_mesh, shoot, server),
        aiohttp.ClientSession() as http,
    ):
        u = base(server)
        await wait_for(lambda: all(c.state == "streaming" for c in shoot.state().cameras), 10)
        # the page's live updates: a state event arrives on the event stream
        async with http.get(u + "/api/events") as r:
            assert r.headers["Content-Type"] == "text/event-stream"
            pushed = await r.content.readuntil(b"\n\n")
            assert pushed.startswith(b"event: state\ndata: {")
        rec = await post(http, u + "/api/take/start", {"scene": "7", "note": "first light"})
        assert rec["slate"] == "scene-7-take-1"
        await wait_for(lambda: all((c.take_frames or 0) >= 20 for c in shoot.state().cameras), 10)
        answers = (await post(http, u + "/api/command", {"path": "/command", "body": {"x": 1}}))[
            "answers"
        ]
        assert [a["node"] for a in answers] == ["n1", "n2"] and all(a["ok"] for a in answers)
        await wait_for(lambda: all(len(f.node_events) for f in shoot.session.feeds.values()), 5)
        summary = await post(http, u + "/api/take/stop")
        assert summary["ok"] and summary["outcome"] == "complete"
        assert [c["outcome"] for c in summary["cameras"]] == ["complete", "complete"]
        st = await state(http, server)
        assert st["recording"] is None and st["slate"]["take"] == 2  # auto-increment
        # the JSON the page reads is the state's dataclasses, field by field
        now = shoot.state()
        assert json.loads(to_json(now)) == _fields_deep(now)
        assert st["takes"][0]["slate"] == "scene-7-take-1"
        await wait_for(lambda: shoot.state().takes[0].contact_sheet is not None, 20, "sheet")
        async with http.get(u + shoot.state().takes[0].contact_sheet) as r:  # type: ignore[operator]
            assert r.status == 200 and (await r.read())[:2] == b"\xff\xd8"
        await post(http, u + "/api/take/start")
        await wait_for(lambda: all((c.take_frames or 0) >= 10 for c in shoot.state().cameras), 10)
        await post(http, u + "/api/take/stop")
        # a second start while recording is refused, a stop without a take too
        async with http.post(u + "/api/take/stop", headers={HEADER: "t0ken"}) as r:
            assert r.status == 409 and "no take" in (await r.json())["error"]
    take_dirs = sorted((tmp_path / "takes").iterdir())
    assert [d.name.split("-", 2)[2] for d in take_dirs] == ["scene-7-take-1", "scene-7-take-2"]
    for d in take_dirs:
        m = load_manifest(d)
        assert m.state == "finished" and m.preview is not None
        assert (d / "preview.mkv").stat().st_size > 0
        for cam in m.cameras:
            assert cam.frames >= 10 and cam.dropped == 0
    first = load_manifest(take_dirs[0])
    kinds = {(e.kind, e.camera) for e in first.events}
    assert ("node", "n1") in kinds and ("node", "n2") in kinds  # the nodes' own events
    assert any(e.kind == "note" and "first light" in e.detail for e in first.events)


async def test_changes_need_the_token_and_foreign_hosts_are_refused(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with (
        console(tmp_path, fast_ingest) as (_, shoot, server),
        aiohttp.ClientSession() as http,
    ):
        u = base(server)
        async with http.post(u + "/api/take/start", json={}) as r:
            assert r.status == 403 and HEADER in await r.text()
        async with http.post(u + "/api/take/start", json={}, headers={HEADER: "nope"}) as r:
            assert r.status == 403
        async with http.get(u + "/api/state", headers={"Host": "evil.example:8095"}) as r:
            assert r.status == 403 and "DNS rebinding" in await r.text()
        async with http.post(
            u + "/api/take/start",
            json={},
            headers={HEADER: "t0ken", "Origin": "http://evil.example"},
        ) as r:
            assert r.status == 403
        async with http.get(u + "/api/state") as r:
            assert r.status == 200
            assert "Access-Control-Allow-Origin" not in r.headers
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert shoot.session.recording is None


async def test_beyond_loopback_no_token_no_answer(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with (
        console(tmp_path, fast_ingest, bind="127.0.0.2") as (_, _shoot, server),
        # a jar that keeps cookies of IP hosts, as browsers do
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        u = base(server)
        for path in ("/", "/api/state", "/metrics", "/multiview.jpg", "/api/session"):
            async with http.get(u + path) as r:
                assert r.status == 401, path
        async with http.post(u + "/api/take/start", json={}) as r:
            assert r.status == 401
        async with http.get(u + "/api/state", headers={"Authorization": "Bearer t0ken"}) as r:
            assert r.status == 200
        # the printed URL: the token goes into a cookie, the address bar is cleaned
        async with http.get(u + "/?token=t0ken", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/"
            cookie = r.cookies["mmrec_console"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
        async with http.get(u + "/api/state") as r:  # the cookie jar now has it
            assert r.status == 200


async def test_metrics_pass_promtool(tmp_path: Path, fast_ingest: IngestConfig) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: bash scripts/bootstrap.sh --dev installs it"
    async with (
        console(tmp_path, fast_ingest) as (_, shoot, server),
        aiohttp.ClientSession() as http,
    ):
        await wait_for(lambda: all(c.fps for c in shoot.state().cameras), 10, "rates")
        await post(http, base(server) + "/api/take/start")
        async with http.get(base(server) + "/metrics") as r:
            assert r.status == 200
            text = await r.text()
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == ""  # no lint complaints
    for needle in (
        'mmrec_camera_up{camera="n1"} 1.0',
        'mmrec_camera_frames_total{camera="n2"}',
        "mmrec_take_recording 1.0",
        "mmrec_disk_free_bytes",
        'mmrec_camera_clock_uncertainty_seconds{camera="n1"}',
    ):
        assert needle in text, needle


async def test_one_camera_is_relayed_as_the_node_sent_it(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with console(tmp_path, fast_ingest) as (_m, _, server), aiohttp.ClientSession() as http:
        parts: list[bytes] = []
        async with http.get(base(server) + "/camera/n2.mjpeg") as r:
            assert r.status == 200 and r.content_type == "multipart/x-mixed-replace"
            async with asyncio.timeout(10):
                while len(parts) < 5:
                    await r.content.readuntil(b"Content-Length: ")
                    n = int((await r.content.readuntil(b"\r\n\r\n")).split(b"\r\n")[0])
                    parts.append(await r.content.readexactly(n))
        async with http.get(base(server) + "/camera/nope.mjpeg") as r:
            assert r.status == 404
    for p in parts:
        rec = sim_record(p)
        assert rec is not None and rec.node == "n2"  # the node's own JPEG, byte for byte
        info = jpeg.parse_header(p)
        assert info is not None and (info.width, info.height) == (320, 240)
    frames = [sim_record(p).frame for p in parts]  # type: ignore[union-attr]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)


async def test_preroll_puts_frames_from_before_the_press_in_the_take(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with (
        console(tmp_path, fast_ingest, preroll=1.0) as (_, shoot, server),
        aiohttp.ClientSession() as http,
    ):
        await wait_for(lambda: all(c.frames >= 40 for c in shoot.state().cameras), 10)
        pressed = shoot.session.wall_minus_mono_ns + time.monotonic_ns()
        await post(http, base(server) + "/api/take/start")
        await wait_for(lambda: all((c.take_frames or 0) >= 30 for c in shoot.state().cameras), 10)
        summary = await post(http, base(server) + "/api/take/stop")
    m = load_manifest(Path(summary["dir"]))
    assert m.start_realtime_ns < pressed - 900_000_000


async def test_the_console_takes_records_disk_options_and_shows_the_takes_own_disk(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    """``--relay`` and ``--sync-interval`` mean for the console what they mean for
    ``mmrec record`` (one option group); the disk it shows is the take's own view: each
    output folder as the take checks it, relay included, and who writes where."""
    from mmrec.cli import build_parser
    from mmrec.commands import console as console_cmd
    from mmrec.errors import ConfigError

    out, relay = tmp_path / "takes", tmp_path / "relay"
    argv = ["--out", str(out), "--relay", str(relay), "--sync-interval", "0.5", "--discover"]
    for command in ("record", "console"):  # the same group, the same meaning
        args = build_parser().parse_args([command, *argv])
        assert (args.relay, args.sync_interval) == ([relay], 0.5)
    args = build_parser().parse_args(["console", *argv, "--connect-timeout", "2"])
    settings, _ = console_cmd._settings(args)
    opts = console_cmd.shoot_options(args, settings)
    assert opts.write.relays == (relay,) and opts.sync_interval == 0.5
    bad = build_parser().parse_args(["console", "--sync-interval", "9999", "--discover"])
    with pytest.raises(ConfigError, match="--sync-interval"):
        console_cmd._settings(bad)
    opts = replace(opts, ingest=fast_ingest, preview=PreviewOptions(port=None, size=(640, 360)))
    async with loopback_mesh(NODES) as mesh:
        shoot = Shoot(opts)
        assert shoot.session.writer_pool.sync_interval_ns == 500_000_000
        await shoot.start([CameraSpec(n.name, n.url) for n in mesh.nodes])
        try:
            await wait_for(lambda: all(c.fps for c in shoot.state().cameras), 10, "rates")
            before = shoot.state().disk
            assert before is not None and not before.recording and before.basis
            assert [f.root for f in before.folders] == [str(out), str(relay)]
            rec = await shoot.start_take()

            def measured() -> bool:
                d = shoot.state().disk
                return d is not None and d.recording and d.folders[0].cameras == ("n1", "n2")

            await wait_for(measured, 10, "the take's own disk check")
            d = shoot.state().disk
            assert d is not None and d.basis is None
            assert [f.folder for f in d.folders] == [rec.dir, str(relay / Path(rec.dir).name)]
            assert (relay / Path(rec.dir).name).is_dir()  # the take's folder in the relay
            assert d.folders[1].cameras == () and d.folders[0].state == "ok"
            assert d.seconds_left == shoot.session.recording.disk.seconds_left  # type: ignore[union-attr]
            await shoot.stop_take()
        finally:
            await shoot.close()


async def test_cameras_given_by_address_are_named_by_their_node(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    """As ``mmrec record`` does: a camera given as host:port only is asked its /status
    and named by its deviceName; one given a name keeps it."""
    nodes = [
        NodeConfig("x1", width=160, height=120, ring=2, fps=10, device_name="North wide"),
        NodeConfig("x2", width=160, height=120, ring=2, fps=10, device_name="South"),
    ]
    async with loopback_mesh(nodes) as mesh:
        a, b = mesh.nodes
        shoot = Shoot(ShootOptions(out=tmp_path / "takes", ingest=fast_ingest,
                                   preview=PreviewOptions(port=None, size=(320, 180))))  # fmt: skip
        await shoot.start([camera_spec(f"{a.host}:{a.port}"), camera_spec(f"B={b.url}")])
        try:
            assert list(shoot.session.feeds) == ["North wide", "B"]

            # the device map: what the node calls itself (from its clock probes) beside
            # the camera's name in the session
            def names() -> dict[str, str]:
                return {d.camera: d.name for d in shoot.state().devices}

            await wait_for(lambda: names() == {"North wide": "North wide", "B": "South"}, 5)
            (dev,) = [d for d in shoot.state().devices if d.camera == "North wide"]
            assert dev.in_use == f"{a.host}:{a.port}"
        finally:
            await shoot.close()
