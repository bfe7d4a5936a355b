"""After a fault, the take says what happened: outcome, events timeline, live state.

Each test injects one fault into a take recording loopback cameras (a node stopped and
restarted, a stall, a camera answering 404, one nothing listens for, a late first frame,
a disk that fails or falls behind) and checks three things: the manifest (each camera's
outcome and its words, the take's, the events with their causes and lengths), the exit
status the outcome gives, and what the live view shows while it happens.
"""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import pytest

from mmrec.commands.record import exit_status
from mmrec.commands.record_view import current_error, state_word
from mmrec.ingest.stream import IngestConfig
from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig
from mmrec.store import muxers
from mmrec.store.take import Manifest, TakeEvent, load_manifest
from tests.helpers import loopback_mesh, serve_404, wait_for


def _node(name: str) -> NodeConfig:
    return NodeConfig(name, width=160, height=120, fps=30, ring=4)


def _events(m: Manifest, camera: str) -> list[TakeEvent]:
    return [e for e in m.events if e.camera == camera]


def _kinds(events: list[TakeEvent]) -> list[str]:
    return [e.kind for e in events]


def _gap_s(detail: str) -> float:
    """The length in a gap event's words: 'no frames for 2.31 s (...), from 5.20 s'."""
    return float(detail.split("no frames for ", 1)[1].split(" s", 1)[0])


async def test_node_stopped_and_restarted(tmp_path: Path, fast_ingest: IngestConfig) -> None:
    async with loopback_mesh([_node("phone")]) as mesh:
        node = mesh.nodes[0]
        async with Take(tmp_path, ingest_config=fast_ingest) as take:
            take.add_camera("phone", node.url)
            await wait_for(lambda: take.status()[0].writer.frames >= 15, 10, "frames")
            await node.stop()
            # away: the live view says why, and counts the gap going on once it is one
            await wait_for(lambda: take.status()[0].gaps == 1, 10, "an open gap")
            away = take.status()[0]
            assert state_word(away) in ("retry", "conn") and current_error(away) != ""
            n = away.writer.frames
            await node.start()
            await wait_for(lambda: take.status()[0].writer.frames >= n + 15, 15, "back")
            back = take.status()[0]
            # back to live: its old error is history, not shown
            assert state_word(back) == "live" and back.ingest.last_error is not None
            assert current_error(back) == ""
    m = load_manifest(take.dir)
    (cam,) = m.cameras
    assert (cam.outcome, m.outcome, exit_status(m)) == ("gaps", "gaps", 3)
    assert cam.outcome_detail is not None and cam.outcome_detail.startswith("1 gap of ")
    assert cam.connections == 2
    ev = _events(m, "phone")
    kinds = _kinds(ev)
    assert kinds[0] == "camera-added" and kinds.count("connected") == 2
    cut = kinds.index("disconnected")
    assert kinds.index("connected") < cut < len(kinds) - 1 - kinds[::-1].index("connected")
    # the cause is the disconnect's own, not the state it went to or an earlier error
    assert ev[cut].detail in (
        "the node closed the stream",
        "connection lost: Connection reset by peer",
    )
    assert ev[cut].detail in (cam.outcome_detail or "")
    # while the node was down, each reconnect failed: said once, with the cause
    failed = [e for e in ev if e.kind == "connect-failed"]
    assert len(failed) == 1 and "Connection refused" in failed[0].detail
    # the gap: one event when the camera came back, with the length the manifest has
    (gap,) = [e for e in ev if e.kind == "gap"]
    ((a, b),) = cam.gaps
    assert _gap_s(gap.detail) == pytest.approx((b - a) / 1e9, abs=0.006)
    assert "reconnected" in gap.detail and gap.t_ns == b
    assert [e.t_ns for e in m.events] == sorted(e.t_ns for e in m.events)
    # the rate while live is the node's, not frames over the whole take
    assert cam.fps is not None and cam.fps == pytest.approx(30, rel=0.15)
    whole = cam.frames / ((m.duration_ns or 1) / 1e9)
    assert whole < cam.fps - 3


async def test_a_stall_is_recorded_with_its_own_cause(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    """The state flips to stalled; the event must carry the stall, not a stale cause."""
    async with loopback_mesh([_node("slow")]) as mesh:
        node = mesh.nodes[0]
        async with Take(tmp_path, ingest_config=fast_ingest) as take:
            take.add_camera("slow", node.url)
            await wait_for(lambda: take.status()[0].writer.frames >= 15, 10, "frames")
            node.stall()
            await wait_for(lambda: take.status()[0].ingest.reconnects >= 1, 10, "stall seen")
            assert current_error(take.status()[0]) == "stalled: no data for 1 s"
            n = take.status()[0].writer.frames
            node.resume()
            await wait_for(lambda: take.status()[0].writer.frames >= n + 10, 15, "back")
            assert current_error(take.status()[0]) == ""
    m = load_manifest(take.dir)
    (cam,) = m.cameras
    ev = _events(m, "slow")
    (cut,) = [e for e in ev if e.kind == "disconnected"]
    assert cut.detail == "stalled: no data for 1 s"
    assert cam.outcome == "gaps" and cam.outcome_detail is not None
    assert cam.outcome_detail.endswith(": stalled: no data for 1 s")
    (gap,) = [e for e in ev if e.kind == "gap"]
    assert _gap_s(gap.detail) > 1.0  # at least the read timeout without frames
    assert "connect-failed" not in _kinds(ev)  # it reconnected at once


async def test_a_camera_answering_404_recorded_nothing_and_says_so(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with (
        serve_404() as port,
        loopback_mesh([_node("ok")]) as mesh,
        Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take,
    ):
        take.add_camera("ok", mesh.nodes[0].url)
        take.add_camera("gone", f"http://127.0.0.1:{port}/stream")
        by = lambda: {s.name: s for s in take.status()}  # noqa: E731
        await wait_for(lambda: by()["gone"].ingest.reconnects >= 3, 10, "retries")
        await wait_for(lambda: by()["ok"].writer.frames >= 10, 10, "frames")
        gone = by()["gone"]
        assert current_error(gone) == "HTTP 404 Not Found"
        assert state_word(gone) in ("retry", "conn")
    m = load_manifest(take.dir)
    cams = {c.name: c for c in m.cameras}
    assert cams["gone"].outcome == "nothing" and cams["ok"].outcome == "complete"
    assert cams["gone"].outcome_detail == "never streamed: HTTP 404 Not Found"
    assert (m.outcome, exit_status(m)) == ("nothing", 5)
    assert m.outcome_detail == "1 of 2 camera(s) complete; nothing recorded: gone"
    # retried at least three times, said once
    assert _kinds(_events(m, "gone")) == ["camera-added", "connect-failed"]
    assert _events(m, "gone")[1].detail == "HTTP 404 Not Found"


async def test_an_unreachable_camera_recorded_nothing_and_says_so(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take:
        take.add_camera("nine", "http://127.0.0.1:9/stream")  # nothing listens on port 9
        await wait_for(lambda: take.status()[0].ingest.reconnects >= 2, 10, "retries")
    m = load_manifest(take.dir)
    (cam,) = m.cameras
    why = "cannot connect to 127.0.0.1:9: Connection refused"
    assert (cam.outcome, cam.outcome_detail) == ("nothing", f"never streamed: {why}")
    assert (m.outcome, exit_status(m)) == ("nothing", 5)
    assert cam.gaps == () and cam.connections == 0 and cam.fps is None
    assert [(e.kind, e.detail) for e in _events(m, "nine")][1:] == [("connect-failed", why)]


async def test_a_late_first_frame_is_a_gap_from_when_the_camera_joined(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with loopback_mesh([_node("late")]) as mesh:
        node = mesh.nodes[0]
        await node.stop()  # down when the take begins
        async with Take(tmp_path, ingest_config=fast_ingest) as take:
            take.add_camera("late", node.url)
            await wait_for(
                lambda: time.monotonic_ns() - take.start_monotonic_ns > 1_500_000_000,
                10,
                "the camera to be missing for 1.5 s of the take",
            )
            await node.start()
            await wait_for(lambda: take.status()[0].writer.frames >= 10, 15, "frames")
    m = load_manifest(take.dir)
    (cam,) = m.cameras
    assert cam.outcome == "gaps"
    ((a, b),) = cam.gaps
    assert a < 100_000_000 and b > 1_500_000_000  # from its joining to its first frame
    (gap,) = [e for e in _events(m, "late") if e.kind == "gap"]
    assert "before the first frame" in gap.detail
    assert _gap_s(gap.detail) == pytest.approx((b - a) / 1e9, abs=0.006)


async def test_a_failing_disk_loses_frames_and_the_take_says_when_and_why(
    tmp_path: Path, fast_ingest: IngestConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes fail with ENOSPC from some frame on: the camera's state is never 'live',
    the frames it sends are counted as lost, and the timeline has the disk error."""
    failing = threading.Event()
    real = muxers._MkvSegment.write

    real_run = muxers._MkvSegment.write_frames

    def write(self: muxers._MkvSegment, pts_ms: int, data: muxers.Bytes) -> None:
        if failing.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, pts_ms, data)

    def write_frames(self: muxers._MkvSegment, frames: list[tuple[int, muxers.Bytes]]) -> None:
        if failing.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        real_run(self, frames)

    monkeypatch.setattr(muxers._MkvSegment, "write", write)
    monkeypatch.setattr(muxers._MkvSegment, "write_frames", write_frames)
    async with (
        loopback_mesh([_node("full")]) as mesh,
        Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take,
    ):
        take.add_camera("full", mesh.nodes[0].url)
        await wait_for(lambda: take.status()[0].writer.frames >= 10, 10, "frames")
        failing.set()
        await wait_for(lambda: take.status()[0].writer.dropped >= 15, 10, "losses")
        st = take.status()[0]
        assert state_word(st) == "full" and st.ingest.state == "streaming"
        where = f"cannot write in {take.dir / 'full'}: No space left on device"
        assert current_error(st) == where
        alerts = lambda: [e for e in take.session.events.recent(50) if e.kind == "alert"]  # noqa: E731
        await wait_for(lambda: len(alerts()) >= 1, 5, "the alert")
    m = load_manifest(take.dir)
    (cam,) = m.cameras
    assert (cam.outcome, m.outcome, exit_status(m)) == ("lost", "lost", 4)
    assert cam.outcome_detail == f"mmrec lost {cam.dropped} frames: {where}"
    assert cam.lost == cam.dropped and cam.lost_causes == (("disk-full", cam.lost),)
    ev = _events(m, "full")
    alert = [e.detail for e in ev if e.kind == "alert"]
    assert alert[0] == f"{where}; retrying"  # said as it happens, once
    assert alert[-1] == f"{cam.dropped} frame(s) lost until the end (disk-full)"
    (gap,) = [e for e in ev if e.kind == "gap"]
    assert "no frames written for" in gap.detail


async def test_a_disk_that_falls_behind_drops_frames_and_says_how_many(
    tmp_path: Path, fast_ingest: IngestConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes block (a stalled disk) until the camera's queue is full, then resume: the
    frames refused meanwhile are lost by mmrec, with a run of drops in the timeline."""
    blocked = threading.Event()
    release = threading.Event()
    real = muxers._MkvSegment.write

    real_run = muxers._MkvSegment.write_frames

    def write(self: muxers._MkvSegment, pts_ms: int, data: muxers.Bytes) -> None:
        if blocked.is_set():
            assert release.wait(30), "never released"
        real(self, pts_ms, data)

    def write_frames(self: muxers._MkvSegment, frames: list[tuple[int, muxers.Bytes]]) -> None:
        if blocked.is_set():
            assert release.wait(30), "never released"
        real_run(self, frames)

    monkeypatch.setattr(muxers._MkvSegment, "write", write)
    monkeypatch.setattr(muxers._MkvSegment, "write_frames", write_frames)
    async with (
        loopback_mesh([_node("behind")]) as mesh,
        Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False, queue_frames=10) as take,
    ):
        take.add_camera("behind", mesh.nodes[0].url)
        await wait_for(lambda: take.status()[0].writer.frames >= 10, 10, "frames")
        blocked.set()
        await wait_for(lambda: take.status()[0].writer.dropped >= 10, 10, "drops")
        events = take.session.events
        began = lambda: [e for e in events.recent(50) if e.detail.startswith("dropping")]  # noqa: E731
        await wait_for(lambda: bool(began()), 5, "the drops to be logged")
        blocked.clear()
        release.set()
        ended = lambda: [e for e in events.recent(50) if e.detail.startswith("no longer")]  # noqa: E731
        await wait_for(lambda: bool(ended()), 5, "the end of the drops to be logged")
    m = load_manifest(take.dir)
    (cam,) = m.cameras
    assert (cam.outcome, exit_status(m)) == ("lost", 4)
    assert cam.outcome_detail == (
        f"mmrec lost {cam.dropped} frames: the disk did not keep up "
        "(the camera's write queue was full)"
    )
    alerts = [e.detail for e in _events(m, "behind") if e.kind == "alert"]
    assert alerts[0] == "dropping frames: the disk is not keeping up"
    lost = int(alerts[1].split("; ")[1].split(" lost")[0])
    assert alerts[1].startswith("no longer dropping frames;") and 10 <= lost <= cam.dropped
