"""Clock probes kept for the refinement: every take gets the probes it needs, and says so
when a node has no clock to probe.

A session keeps its feeds (and their probes) warm across takes, so a take that starts
later writes the probes from 10 s before its start as well as those during it; a node
whose ``/status`` has no clock is never burst at, its take says why its times are only
capture + min delay, and the refinement says the same.
"""

from __future__ import annotations

import time
from pathlib import Path

from mmrec.ingest.stream import IngestConfig
from mmrec.session.engine import Session
from mmrec.session.probes import (
    PROBE_BURST,
    PROBE_EVERY,
    PROBE_FAST_NS,
    PROBE_SLOW_EVERY,
    ClockProbes,
)
from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig
from mmrec.store.index import PROBES, read_index, read_probes
from mmrec.store.take import PROBE_LEAD_NS, load_manifest
from tests.helpers import loopback_mesh, wait_for

NODE = NodeConfig("cam", width=160, height=120, ring=4, fps=30, clock_offset_s=1.5, delay_ms=20)


async def test_a_later_take_keeps_the_probes_from_before_its_start(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with loopback_mesh([NODE]) as mesh, Session(ingest_config=fast_ingest) as s:
        feed = s.add_camera("cam", mesh.nodes[0].url)
        await wait_for(lambda: feed.probes_ok >= 12, 10, "the burst and a second of probes")
        before = feed.probes_ok
        rec = await s.start_take(tmp_path)
        await wait_for(lambda: feed.probes_ok >= before + 6, 10, "probes during the take")
        m = await s.stop_take()
        during = feed.probes_ok - before
    (cam,) = m.cameras
    assert cam.probes == f"{cam.dir}/{PROBES}"
    probes = read_probes(rec.dir / cam.dir / PROBES)
    early = [p for p in probes if p[0] < 0]  # sent before the take began
    assert len(early) == before  # all of them: the session is younger than the lead
    assert all(t0 >= -PROBE_LEAD_NS for t0, _, _ in probes)
    assert len(probes) - len(early) >= during  # and every one during the take
    assert all(t1 >= t0 for t0, _, t1 in probes)
    assert cam.refined is not None and cam.refined.maps_to == "capture"
    assert cam.refined.probes_used >= len(early)


async def test_a_node_without_a_status_clock_is_recorded_and_says_so(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with loopback_mesh([NODE]) as mesh:
        node = mesh.nodes[0]
        full = node.status
        asked = []

        def no_clock() -> dict[str, object]:
            asked.append(1)
            return {k: v for k, v in full().items() if k not in ("clock", "clockNs")}

        node.status = no_clock  # type: ignore[method-assign]
        async with Take(tmp_path, ingest_config=fast_ingest) as take:
            take.add_camera("cam", node.url)
            await wait_for(lambda: take.status()[0].writer.frames >= 60, 10, "2 s of frames")
    (cam,) = load_manifest(take.dir).cameras
    assert cam.clock is not None and cam.clock.probes == 0
    assert cam.clock.note is not None and "no clock" in cam.clock.note
    # the burst's first answer said so; the loop asks once more, then every 10 s
    assert len(asked) <= 2
    assert cam.probes is None and not (take.dir / cam.dir / PROBES).exists()
    assert cam.refined is not None and cam.refined.maps_to == "capture+min_delay"
    assert cam.refined.note is not None and "no /status clock" in cam.refined.note
    assert all(r.refined_ns is not None for r in read_index(take.dir / cam.index))


def test_probes_are_fast_after_a_connection_or_a_take_start_then_slow() -> None:
    probes = ClockProbes("cam", lambda s: None, lambda t0, d, t1: None, keep=8)
    t = 1_000_000_000_000
    assert probes.period(t) == PROBE_SLOW_EVERY  # nothing asked for fast probing yet
    probes.hurry(t)
    assert probes.period(t) == PROBE_EVERY
    assert probes.period(t + PROBE_FAST_NS - 1) == PROBE_EVERY
    assert probes.period(t + PROBE_FAST_NS) == PROBE_SLOW_EVERY
    probes.hurry(t + 10)  # an earlier deadline never shortens a later one
    probes.hurry(t + PROBE_FAST_NS // 2)
    assert probes.period(t + PROBE_FAST_NS) == PROBE_EVERY
    assert probes.period(t + PROBE_FAST_NS // 2 + PROBE_FAST_NS) == PROBE_SLOW_EVERY


async def test_a_take_start_makes_its_cameras_probe_fast(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with loopback_mesh([NODE]) as mesh, Session(ingest_config=fast_ingest) as s:
        feed = s.add_camera("cam", mesh.nodes[0].url)
        await wait_for(lambda: feed.probes_ok >= PROBE_BURST, 10, "the burst before the stream")
        now = time.monotonic_ns()
        assert feed.probes.period(now) == PROBE_EVERY  # the connection is new
        feed.probes._fast_until_ns = 0  # as if it had been connected for a long time
        assert feed.probes.period(now) == PROBE_SLOW_EVERY
        await s.start_take(tmp_path)
        assert feed.probes.period(time.monotonic_ns()) == PROBE_EVERY
        await s.stop_take()
