"""Hostile and broken cameras: what the recorder does, what is on disk, what it says.

Each test injects one fault with a server of :mod:`mmrec.sim.hostile` (or a simulated
node with a fault knob) on loopback, records it, and checks the files, the manifest and
the live state. Memory figures over minutes are measured by ``benchmarks/bench_hostile.py``;
here, what bounds them: a dead connection's buffers are freed at once.
"""

from __future__ import annotations

import gc
import re
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import av
import pytest

from mmrec.commands.record_view import jpeg_counts
from mmrec.ingest.stream import CameraState, IngestConfig
from mmrec.session.events import EventKind
from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig
from mmrec.sim.hostile import Hostile, HostileServer, frames_for
from mmrec.sim.record import sim_record
from mmrec.sim.trickle import TrickleServer
from mmrec.store.index import read_index
from mmrec.store.take import load_manifest
from mmrec.wire.multipart import MultipartParser
from tests.helpers import loopback_mesh, make_jpeg, wait_for


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        (Hostile.ENDLESS, "larger than max_part_size"),
        (Hostile.ENDLESS_LENGTH, "larger than max_part_size"),
        (Hostile.HEADER_FLOOD, "more than 64 part header lines"),
    ],
)
async def test_an_endless_part_costs_one_buffer_and_a_reconnect(
    tmp_path: Path, fast_ingest: IngestConfig, kind: Hostile, cause: str
) -> None:
    """A part that never ends (with or without Content-Length) hits the part cap, a
    flood of part headers the header limit, and the camera reconnects, naming the cause;
    the dead connection's parser and buffers are gone at once, not when the cyclic
    garbage collector gets round to them."""
    cap = 2**20
    cfg = replace(fast_ingest, max_part_size=cap)
    gc.collect()
    gc.disable()  # what is freed now is freed by reference counting alone
    try:
        async with (
            HostileServer(kind, make_jpeg(320, 240), part_cap=cap) as server,
            Take(tmp_path, ingest_config=cfg, probe_clocks=False) as take,
        ):
            take.add_camera("h", server.url)
            await wait_for(lambda: take.status()[0].ingest.reconnects >= 3, 30, "reconnects")
            parsers = sum(isinstance(o, MultipartParser) for o in gc.get_objects())
            live = take.status()[0].ingest
    finally:
        gc.enable()
    assert parsers <= 1  # the connection now, if one is up; none of the dead ones
    assert live.last_error is not None and cause in live.last_error
    cam = load_manifest(take.dir).cameras[0]
    assert cam.reconnects >= 3 and cause in (cam.last_error or "")
    if kind is not Hostile.ENDLESS_LENGTH:
        assert cam.frames == 0
    else:  # three good frames first on every connection, each recorded
        assert cam.frames >= 3 * cam.reconnects


async def test_a_trickle_is_stalled_and_reconnected_never_live(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    """A camera trickling one byte per 100 ms keeps its socket busy but completes no
    frame: it is dropped as stalled after the read timeout (1 s here), says why, and is
    retried; it never stays live."""
    frames = [make_jpeg(320, 240)] * 4
    async with (
        TrickleServer(frames, piece=1, interval=0.1) as server,
        Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take,
    ):
        take.add_camera("t", server.url)
        await wait_for(lambda: take.status()[0].ingest.reconnects >= 2, 20, "reconnects")
        live = take.status()[0].ingest
        events = take.session.events.recent(100)
    assert live.frames == 0 and live.last_error is not None
    assert "no complete frame for" in live.last_error and "bytes received" in live.last_error
    # each connection was live for about the read timeout, not for ever
    ups = [e.mono_ns for e in events if e.kind == EventKind.CONNECTED]
    downs = [e for e in events if e.kind == EventKind.DISCONNECTED]
    assert len(downs) >= 2 and all("no complete frame" in e.detail for e in downs)
    assert all(0 < d.mono_ns - u < 5e9 for u, d in zip(ups, downs, strict=False))
    cam = load_manifest(take.dir).cameras[0]
    assert cam.frames == 0 and cam.reconnects >= 2
    assert "no complete frame" in (cam.last_error or "")


async def test_a_slow_camera_is_shown_slow_with_an_alert(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    """A node that says 30 fps in /status but delivers a quarter of its frames is slow:
    the live status and the live manifest say so, and an alert names the rates."""
    cfg = replace(fast_ingest, read_timeout=2.0)
    nodes = [
        NodeConfig("slow", width=160, height=120, fps=30, ring=4, drop_prob=0.75, seed=7),
        NodeConfig("fine", width=160, height=120, fps=30, ring=4),
    ]
    async with (
        loopback_mesh(nodes) as mesh,
        Take(tmp_path, ingest_config=cfg) as take,
    ):
        for node in mesh.nodes:
            take.add_camera(node.name, node.url)
        await wait_for(lambda: take.status()[0].ingest.slow, 20, "slow")

        def live_manifest_says_slow() -> bool:
            cams = load_manifest(take.dir).cameras
            return len(cams) == 2 and cams[0].slow

        await wait_for(live_manifest_says_slow, 10, "the live manifest")
        fine = take.status()[1].ingest
        assert not fine.slow and fine.state == CameraState.STREAMING
    m = load_manifest(take.dir)
    alerts = [e for e in m.events if e.kind == EventKind.ALERT]
    assert [e.camera for e in alerts] == ["slow"]
    assert alerts[0].detail.startswith("slow: ") and "of 30 fps nominal" in alerts[0].detail
    assert m.cameras[0].frames > 0  # still recorded


@pytest.mark.parametrize(
    "kind",
    [Hostile.TRAILING, Hostile.STUBS, Hostile.TRUNCATED, Hostile.ABSURD_SIZE, Hostile.MARKER_BOMB],
)
async def test_odd_jpegs_are_counted_by_name_and_written_as_received(
    tmp_path: Path, fast_ingest: IngestConfig, kind: Hostile
) -> None:
    """Garbage after the EOI, an SOI alone, a JPEG cut short, a header claiming
    65000x65000, a header of 60,000 markers: each has its own count (live, in the
    manifest, in the summary's words); every one that can be shown is on disk byte for
    byte, the stubs (and the headers too odd to read) are not."""
    good = make_jpeg(320, 240)
    sent = frames_for(kind, good)  # the server sends these in turn
    async with (
        HostileServer(kind, good, fps=30) as server,
        Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take,
    ):
        take.add_camera("odd", server.url)
        await wait_for(lambda: take.status()[0].writer.frames >= 8, 20, "frames written")
        live = take.status()[0].ingest
    cam = load_manifest(take.dir).cameras[0]
    packets = []
    for seg in cam.segments:
        with av.open(str(take.dir / seg)) as c:  # libavformat reads what mmrec wrote
            packets += [bytes(p) for p in c.demux(video=0) if p.size]
    assert len(packets) == cam.frames >= 8
    counts = (cam.truncated, cam.trailing, cam.stubs, cam.bad_size)
    if kind is Hostile.TRAILING:
        assert set(packets) == {sent[0]} and sent[0].endswith(b"GARBAGE after the EOI")
        assert counts == (0, cam.frames, 0, 0) and live.trailing >= cam.frames
        assert (
            jpeg_counts(cam) == f"{cam.frames} JPEGs with bytes after the EOI, written as received"
        )
    elif kind is Hostile.STUBS:
        assert set(packets) == {good}  # the SOI-only parts are not frames
        assert counts[:2] == (0, 0) and counts[3] == 0 and cam.stubs in (cam.frames, cam.frames + 1)
        assert live.stubs >= cam.stubs
        assert "without a picture header (an SOI alone, or one too odd to read), not written" in (
            jpeg_counts(cam)
        )
    elif kind is Hostile.MARKER_BOMB:
        assert set(packets) == {good}  # every other frame: its header is not walked to its end
        assert counts[:2] == (0, 0) and counts[3] == 0 and cam.stubs in (cam.frames, cam.frames + 1)
        assert "or one too odd to read), not written" in jpeg_counts(cam)
    elif kind is Hostile.TRUNCATED:
        assert packets == [sent[i % 2] for i in range(len(packets))]  # cut, whole, cut, ...
        assert counts == (packets.count(sent[0]), 0, 0, 0) and live.truncated >= counts[0]
    else:
        assert set(packets) == {sent[0]} and (cam.width, cam.height) == (65000, 65000)
        assert counts == (0, 0, 0, cam.frames)
        assert jpeg_counts(cam).endswith("claiming an absurd size, written as received")


@pytest.mark.parametrize("step_s", [-10.0, 10.0])
async def test_a_clock_step_is_an_event_and_a_new_segment_never_packed_frames(
    tmp_path: Path, fast_ingest: IngestConfig, step_s: float
) -> None:
    """A node whose clock steps 10 s back (or ahead) 3.5 s into the take: the step is a
    CLOCK event in the manifest, and every frame stays on the timeline where it was
    captured (read from the simulator's record in the recorded JPEG), 33 ms apart."""
    node_cfg = NodeConfig(
        "step", width=160, height=120, fps=30, ring=4, clock_step_at=3.5, clock_step_s=step_s
    )
    async with loopback_mesh([node_cfg]) as mesh:
        node = mesh.nodes[0]
        async with Take(tmp_path, ingest_config=fast_ingest) as take:
            take.add_camera("step", node.url)
            await node.wait_until(lambda: node.current_frame() >= 6 * 30, 15)
    m = load_manifest(take.dir)
    clock = [e for e in m.events if e.kind == EventKind.CLOCK]
    assert len(clock) == 1 and clock[0].camera == "step"
    way = "back" if step_s < 0 else "ahead"
    assert re.search(
        rf"device clock stepped {way} (9\.9|10\.0)\d* s: a new clock segment", clock[0].detail
    )
    cam = m.cameras[0]
    rows = list(read_index(take.dir / cam.index))
    truth = []
    for seg in cam.segments:
        with av.open(str(take.dir / seg)) as c:
            for p in c.demux(video=0):
                if p.size:
                    rec = sim_record(bytes(p))
                    assert rec is not None
                    truth.append(rec.true_ns - m.start_realtime_ns)
    assert len(rows) == len(truth) >= 5 * 30
    times = [r.time_ns for r in rows]
    assert min(b - a for a, b in pairwise(times)) > 10_000_000  # none packed 1 ms apart
    off = [t - true for t, true in zip(times, truth, strict=True)]
    assert max(abs(x) for x in off) < 100_000_000  # each where it was captured, ±0.1 s
