"""A session keeps cameras live across takes; each take starts and stops on an instant.

Simulated nodes with clock offsets of seconds, drift, different capture-to-send latencies
and jitter: the first and last frames of every camera in a take are within one frame
period of the take's start and stop instants (by the frames' true capture times, which
the simulator writes into every JPEG), in every take of one session, and with pre-roll
the take holds footage from before the press.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import av
import pytest

from mmrec.ingest.stream import IngestConfig
from mmrec.session.engine import Session
from mmrec.sim import NodeConfig, SimMesh, SimNode
from mmrec.sim.record import sim_record
from mmrec.store.take import Manifest, load_manifest
from tests.helpers import loopback_mesh, wait_for

PERIOD_NS = 1_000_000_000 // 30
SLACK_NS = 2_000_000  # the warm clock model's placement error is well under this

NODES = [
    NodeConfig(
        "near", width=160, height=120, ring=4, clock_offset_s=2.5, drift_ppm=40,
        delay_ms=3, jitter_ms=5,
    ),
    NodeConfig(
        "far", width=160, height=120, ring=4, clock_offset_s=-1.3, drift_ppm=-60,
        delay_ms=35, jitter_ms=10,
    ),
    NodeConfig(
        "busy", width=160, height=120, ring=4, clock_offset_s=0.4, delay_ms=15, jitter_ms=20,
    ),
]  # fmt: skip


@contextlib.asynccontextmanager
async def _warm_session(
    fast_ingest: IngestConfig, preroll_seconds: float = 0.0
) -> AsyncIterator[tuple[SimMesh, Session]]:
    """A session following every node of ``NODES``, its clocks warm and probed."""
    async with (
        loopback_mesh(NODES) as mesh,
        Session(ingest_config=fast_ingest, preroll_seconds=preroll_seconds) as session,
    ):
        for node in mesh.nodes:
            session.add_camera(node.name, node.url)
        feeds = list(session.feeds.values())
        await wait_for(lambda: all(f.clock.warm and f.probes_ok >= 3 for f in feeds), 20, "warm")
        yield mesh, session


def _true_times(take_dir: Path, segments: tuple[str, ...]) -> list[int]:
    """True capture instants (host CLOCK_REALTIME ns) of a camera's recorded frames."""
    out = []
    for seg in segments:
        with av.open(str(take_dir / seg)) as c:
            for p in c.demux(video=0):
                if p.size:
                    rec = sim_record(bytes(p))
                    assert rec is not None
                    out.append(rec.true_ns)
    return out


def _sent(nodes: Sequence[SimNode]) -> dict[str, list[int]]:
    """True capture instants of the frames each node sent (skipped ones are not sent)."""
    return {n.name: sorted(f.true_ns for f in n.sent) for n in nodes}


def _check_span(
    take_dir: Path, m: Manifest, start_rt: int, stop_rt: int, sent: dict[str, list[int]]
) -> None:
    """Every camera's take holds exactly the frames its node sent that were captured in
    [start, stop) (to within the clock model's placement error at the two ends)."""
    assert m.state == "finished" and len(m.cameras) == len(NODES)
    for cam in m.cameras:
        true = _true_times(take_dir, cam.segments)
        assert true, cam.name
        assert all(b > a for a, b in itertools.pairwise(true))
        inside = [t for t in sent[cam.name] if start_rt + SLACK_NS <= t < stop_rt - SLACK_NS]
        # the first frame is the first captured at or after the start...
        assert start_rt - SLACK_NS <= true[0] <= inside[0], (cam.name, true[0] - start_rt)
        # ...the last the last captured before the stop, and none in between is missing
        assert inside[-1] <= true[-1] < stop_rt + SLACK_NS, (cam.name, stop_rt - true[-1])
        assert set(inside) <= set(true), cam.name


async def test_takes_start_and_stop_together_on_instants(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with _warm_session(fast_ingest) as (mesh, session):
        takes = []
        for name in ("one", "two"):
            rec = await session.start_take(tmp_path, name=name)
            await wait_for(lambda r=rec: all(s.writer.frames >= 30 for s in r.status()), 10)
            m = await session.stop_take()
            takes.append((rec.dir, m))
        assert session.recording is None
        sent = _sent(mesh.nodes)
    for take_dir, m in takes:
        assert load_manifest(take_dir) == m
        stop_rt = m.start_realtime_ns + (m.duration_ns or 0)
        _check_span(take_dir, m, m.start_realtime_ns, stop_rt, sent)
        assert [e.detail.split()[-1] for e in m.events if e.kind == "take"][-1] == "stopped"
        # streaming throughout: complete, on the one connection it already had
        assert m.outcome == "complete"
        assert all((c.outcome, c.connections, c.gaps) == ("complete", 1, ()) for c in m.cameras)


async def test_a_camera_away_since_an_earlier_take_says_why_in_the_next(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with (
        loopback_mesh(NODES[:1]) as mesh,
        Session(ingest_config=fast_ingest, probe_clocks=False) as session,
    ):
        node = mesh.nodes[0]
        session.add_camera(node.name, node.url)
        session.add_camera("nine", "http://127.0.0.1:9/stream")  # nothing listens there
        first = await session.start_take(tmp_path, name="one")
        await wait_for(lambda: first.status()[0].writer.frames >= 10, 10, "frames")
        one = await session.stop_take()
        second = await session.start_take(tmp_path, name="two")
        await wait_for(lambda: second.status()[0].writer.frames >= 10, 10, "frames")
        two = await session.stop_take()
    why = "cannot connect to 127.0.0.1:9: Connection refused"
    for m in (one, two):
        cams = {c.name: c for c in m.cameras}
        assert cams["near"].outcome == "complete"
        assert cams["nine"].outcome_detail == f"never streamed: {why}"
        assert m.outcome == "nothing"
        # each take's own timeline says why the camera is missing from it
        assert ("connect-failed", why) in [
            (e.kind, e.detail) for e in m.events if e.camera == "nine"
        ]


async def test_pre_roll_puts_footage_from_before_the_press_in_the_take(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with _warm_session(fast_ingest, preroll_seconds=1.0) as (mesh, session):
        pressed_mono = time.monotonic_ns()
        pressed_rt = pressed_mono + session.wall_minus_mono_ns
        rec = await session.start_take(tmp_path, at_mono_ns=pressed_mono - 1_000_000_000)
        await wait_for(lambda: all(s.writer.frames >= 45 for s in rec.status()), 10, "frames")
        m = await session.stop_take()
        sent = _sent(mesh.nodes)
    assert m.start_realtime_ns == pressed_rt - 1_000_000_000
    stop_rt = m.start_realtime_ns + (m.duration_ns or 0)
    _check_span(rec.dir, m, m.start_realtime_ns, stop_rt, sent)
    for cam in m.cameras:
        true = _true_times(rec.dir, cam.segments)
        assert sum(t < pressed_rt for t in true) >= 25  # ~1 s of footage from before the press


async def test_frames_arriving_while_a_take_is_set_up_are_in_it(
    tmp_path: Path, fast_ingest: IngestConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making the take's folder and first manifest takes a moment (a slow disk: seconds);
    frames captured after the start that arrive meanwhile are the take's first frames."""
    from mmrec.session.recording import Recording

    opened = Recording.open

    async with _warm_session(fast_ingest) as (mesh, session):
        feeds = list(session.feeds.values())

        async def slow_open(rec: Recording) -> None:
            seen = [f.last for f in feeds]  # the disk is slow: five more frames arrive
            await wait_for(
                lambda: all(
                    f.last is not None and f.last.t_ns >= rec.start_t_ns + 5 * PERIOD_NS
                    for f in feeds
                ),
                10,
                "frames while the take is set up",
            )
            assert [f.last for f in feeds] != seen
            await opened(rec)

        monkeypatch.setattr(Recording, "open", slow_open)
        rec = await session.start_take(tmp_path, name="slow")
        await wait_for(lambda: all(s.writer.frames >= 15 for s in rec.status()), 10, "frames")
        m = await session.stop_take()
        sent = _sent(mesh.nodes)
    _check_span(rec.dir, m, m.start_realtime_ns, m.start_realtime_ns + (m.duration_ns or 0), sent)
