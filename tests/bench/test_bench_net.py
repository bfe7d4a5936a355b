"""mmrec bench against simulated nodes on loopback (port=0, small frames, short runs).

What the bench reports is checked against what the nodes did (frames sent, knobs set).
Bounds that the machine's speed decides (how far the run overruns its duration, how much
latency the loop adds, time to first frame) are not asserted here:
``benchmarks/bench_device.py`` prints them.
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import socket
from pathlib import Path

import pytest

from mmrec.bench.run import Bench, BenchConfig, BenchTarget
from mmrec.commands.bench import bench_main, configure
from mmrec.sim import ConnectionStats, NodeConfig, Quirk
from tests.helpers import loopback_mesh

MS = 1_000_000


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node(name: str, fps: float, **kw: object) -> NodeConfig:
    return NodeConfig(name, width=320, height=240, quality=70, fps=fps, ring=8, **kw)  # type: ignore[arg-type]


def _sent_fps(conn: ConnectionStats, fps: float) -> float:
    """The rate a node really sent on ``conn``: a busy machine makes it skip frames."""
    assert conn.first_frame is not None and conn.last_frame is not None
    return (conn.frames_sent - 1) * fps / (conn.last_frame - conn.first_frame)


# name: (fps, capture-to-send delay ms, jitter ms, clock offset s, drop probability)
NODES = {
    "a": (10.0, 0.0, 0.0, 3.2, 0.0),
    "b": (15.0, 20.0, 10.0, -4.5, 0.0),
    "c": (20.0, 50.0, 4.0, 0.12, 0.0),
    "d": (30.0, 20.0, 0.0, 0.0, 0.1),
}


@pytest.mark.slow
async def test_bench_four_nodes_raw_node_and_unreachable_url() -> None:
    configs = [
        _node(n, fps, delay_ms=dl, jitter_ms=jt, clock_offset_s=off, drop_prob=dp, drift_ppm=20)
        for n, (fps, dl, jt, off, dp) in NODES.items()
    ]
    configs.append(_node("raw", 25.0, quirks=frozenset({Quirk.RAW_JPEG})))
    dead = f"http://127.0.0.1:{_closed_port()}/stream"
    cfg = BenchConfig(duration_s=5.0, probe_hz=4.0)
    async with loopback_mesh(configs) as mesh:
        targets = [BenchTarget(n.name, n.url) for n in mesh.nodes]
        targets.append(BenchTarget("dead", dead))
        report = await Bench(targets, cfg).run()
        sent = {n.name: n.connections for n in mesh.nodes}
    by = {d.name: d for d in report.devices}
    assert list(by) == [*NODES, "raw", "dead"]
    # It runs for its duration and stops then, but for the probe in flight (bounded by
    # its timeouts).
    grace_s = cfg.connect_timeout_s + cfg.read_timeout_s
    assert 5.0 * 1e9 <= report.elapsed_ns <= (5.0 + grace_s) * 1e9

    for name, (fps, delay_ms, jitter_ms, offset_s, _drop) in NODES.items():
        r = by[name]
        assert r.state == "ok", (name, r.error)
        (conn,) = sent[name]  # the bench's one /stream connection
        assert conn.first_frame is not None and conn.last_frame is not None
        span_frames = conn.last_frame - conn.first_frame
        missing = span_frames + 1 - conn.frames_sent  # never sent: dropped or late
        # fps: within 3 % of what the node sent; nominal exactly from /status
        assert r.fps == pytest.approx(_sent_fps(conn, fps), rel=0.03), name
        assert r.fps_nominal == fps and r.fps_nominal_source == "status"
        # drops from X-Timestamp: within 2 of the frames the node skipped in that span
        assert r.stream.drops is not None and abs(r.stream.drops - missing) <= 2, name
        # latency: at least delay + median of the uniform jitter, less 6 ms (the clock
        # offset's error, within 3 ms, and sampling); the machine's loop only adds to it
        lat = r.latency
        assert lat.measurable and lat.latency is not None, (name, lat.note)
        expected_ms = delay_ms + jitter_ms / 2
        assert lat.latency.p50_ns / MS >= expected_ms - 6.0, (name, lat.latency)
        assert lat.uncertainty_ns is not None and lat.uncertainty_ns >= 0
        assert lat.clock_offset_ns is not None
        assert abs(lat.clock_offset_ns / 1e9 - offset_s) < 0.003, (name, lat.clock_offset_ns)
        assert r.stream.time_to_first_frame_ns is not None and r.stream.time_to_first_frame_ns > 0
        assert r.stream_head_ns is not None and r.stream_head_ns > 0
        assert r.status_rtt is not None and r.probes_ok >= 10
    assert by["d"].stream.drops is not None and by["d"].stream.drops >= 5  # the knob worked
    # The delay knob is seen as a difference too, free of common overhead: c − a ≈ 52 ms.
    la, lc = by["a"].latency.latency, by["c"].latency.latency
    assert la is not None and lc is not None
    assert abs((lc.p50_ns - la.p50_ns) / MS - 52.0) <= 4.0

    raw = by["raw"]
    (raw_conn,) = sent["raw"]
    assert raw.state == "ok" and raw.fps == pytest.approx(_sent_fps(raw_conn, 25.0), rel=0.03)
    assert not raw.latency.measurable and "X-Timestamp" in raw.latency.note
    assert "fallback" in raw.latency.note and raw.stream.drops is None

    gone = by["dead"]
    assert gone.state == "unreachable" and gone.stream.frames == 0
    assert gone.error is not None and "cannot connect" in gone.error
    assert gone.probes_ok == 0 and gone.probe_error is not None


async def test_cli_json_and_plots(tmp_path: Path) -> None:
    configs = [_node("p", 15.0, delay_ms=10.0), _node("q", 20.0)]
    async with loopback_mesh(configs) as mesh:
        args = argparse.Namespace(
            cameras=[f"{n.name}={n.url}" for n in mesh.nodes],
            discover=False,
            interface=[],
            discover_timeout=3.0,
            duration=2.5,
            json=True,
            plots=tmp_path / "plots",
            no_plots=False,
            fps_nominal=None,
            probe_hz=4.0,
            connect_timeout=2.0,
            read_timeout=3.0,
        )
        out = io.StringIO()
        assert await bench_main(args, out=out) == 0
    doc = json.loads(out.getvalue())
    assert 2.5 <= doc["elapsed_s"] <= 2.5 + args.connect_timeout + args.read_timeout
    assert [d["name"] for d in doc["devices"]] == ["p", "q"]
    p, q = doc["devices"]
    assert p["fps"] == pytest.approx(15.0, rel=0.05) and q["fps"] == pytest.approx(20.0, rel=0.05)
    assert p["latency_measurable"] and p["latency_ms_p50"] >= 10.0 - 6.0
    assert isinstance(p["mbit_s"], float) and p["mbit_s"] > 0
    assert doc["plots"] == [
        str(tmp_path / "plots" / "fps.png"),
        str(tmp_path / "plots" / "latency.png"),
    ]
    for path in doc["plots"]:
        data = Path(path).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 10_000


async def test_discover_benches_the_nodes_it_finds_on_loopback() -> None:
    # A name of its own: another test run on this machine may advertise on loopback too,
    # and two nodes of one name on mDNS are one service.
    configs = [_node(f"disc-bench-{secrets.token_hex(4)}", 10.0)]
    async with loopback_mesh(configs, mdns=True) as mesh:
        parser = argparse.ArgumentParser()
        configure(parser)  # as typed: the discovery options are the shared group's
        args = parser.parse_args(
            ["--discover", "--interface", "127.0.0.1", "--discover-timeout", "4",
             "--duration", "1.5", "--json", "--no-plots", "--probe-hz", "3",
             "--connect-timeout", "2", "--read-timeout", "3"]
        )  # fmt: skip
        out = io.StringIO()
        await bench_main(args, out=out)
        url = mesh.nodes[0].url
    doc = json.loads(out.getvalue())
    # Other tests may advertise nodes on loopback at the same time: ours must be among them.
    mine = [d for d in doc["devices"] if d["url"] == url]
    assert mine, (url, [(d["name"], d["url"]) for d in doc["devices"]])
    assert len(mine) == 1 and mine[0]["state"] == "ok" and mine[0]["frames"] >= 5
