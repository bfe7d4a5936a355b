"""A take refined after the fact: every frame's best time in index.csv, a record per camera.

Two sources of takes: files written by the store's own writer from simulated traces
(``mmrec.sim.observed``: the truth is known for every frame, no sockets), and a take
recorded end to end from simulated nodes on loopback whose latencies differ by tens of ms,
one joining late and one dropping out (the truth: each JPEG's COM record). Bounds are
looser than ``benchmarks/bench_align.py``'s targets (p50 0.1 ms, p99 0.25 ms, max 1 ms);
they fail at once if any frame were placed by its arrival (2-40 ms late).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mmrec.ingest.stream import CameraState, IngestConfig
from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig
from mmrec.sim.groundtruth import frame_truth
from mmrec.sim.observed import ObservedCamera, Outage, live_times, observe
from mmrec.sim.wire import format_timestamp
from mmrec.store.index import INDEX, INDEX_COLUMNS_V1, PROBES, read_index, read_probes
from mmrec.store.take import CameraEntry, Manifest, load_manifest, write_manifest
from mmrec.store.writer import CameraWriter, Frame, Probe
from mmrec.timeline import refine_take
from tests.helpers import loopback_mesh, make_jpeg, wait_for

MS = 1_000_000
NODES = [
    NodeConfig("near", seed=1, fps=30, clock_offset_s=2.5, drift_ppm=87, delay_ms=2,
               jitter_ms=10, burst_every_s=3.0, burst_ms=150.0),
    NodeConfig("mid", seed=2, fps=30, clock_offset_s=-4.5, drift_ppm=-100, delay_ms=20,
               jitter_ms=15, burst_every_s=3.0, burst_ms=150.0),
    NodeConfig("far", seed=3, fps=30, clock_offset_s=0.35, drift_ppm=42, delay_ms=40,
               jitter_ms=5, burst_every_s=3.0, burst_ms=150.0),
]  # fmt: skip


def write_camera(take: Path, cam: ObservedCamera, *, probes: bool = True) -> CameraEntry:
    """The camera's files as the recorder writes them (live times from the online model)."""
    # room for every frame: a test offers them faster than a camera sends
    w = CameraWriter(cam.name, take, cam.name, queue_frames=cam.arrival_ns.size)
    live = live_times(cam)
    if probes:
        for t0, dev, t1 in cam.probes.tolist():
            w.offer_probe(Probe(t0, dev, t1))
    jpg = make_jpeg()
    for t, a, d, c in zip(live, cam.arrival_ns, cam.device_ns, cam.connection, strict=True):
        w.offer(Frame(jpg, int(t), int(a), format_timestamp(int(d)), int(c)))
    w.close()
    st = w.stats()
    assert st.dropped == 0
    return CameraEntry(
        name=cam.name,
        dir=cam.name,
        url="",
        segments=st.segments,
        index=f"{cam.name}/{INDEX}",
        frames=st.frames,
    )


def make_take(root: Path, cams: list[ObservedCamera], *, probes: bool = True) -> Path:
    take = root / "take"
    take.mkdir()
    entries = tuple(write_camera(take, c, probes=probes) for c in cams)
    write_manifest(
        take,
        Manifest("t", "2025-11-25T10:00:00Z", 1_764_064_800_000_000_000, "10:00:00:00",
                 cameras=entries, state="finished", duration_ns=45_000_000_000),
    )  # fmt: skip
    return take


@pytest.fixture(scope="module")
def traces() -> list[ObservedCamera]:
    late, drop = {"join_s": 10.0}, {"outages": [Outage(20.0, 5.0)]}
    return [
        observe(n, duration_s=45.0, seed=k, probe_every_s=0.25, first_probe_s=0.25,
                pre_probes=8, **extra)  # type: ignore[arg-type]
        for k, (n, extra) in enumerate(zip(NODES, ({}, late, drop), strict=True))
    ]  # fmt: skip


def test_every_frame_gets_its_capture_time_and_the_manifest_says_how(
    tmp_path: Path, traces: list[ObservedCamera]
) -> None:
    take = make_take(tmp_path, traces)
    before = {c.name: list(read_index(take / c.name / INDEX)) for c in traces}
    m = refine_take(take)
    assert m.pts_from == "time_ns"
    for cam, entry in zip(traces, m.cameras, strict=True):
        rows = list(read_index(take / entry.index))
        # the live time and every other field stay as they were
        assert [dataclasses.replace(r, refined_ns=None) for r in rows] == before[cam.name]
        refined = np.array([r.best_ns for r in rows])
        err = np.abs(refined - cam.capture_ns)
        assert np.median(err) < 0.2 * MS, cam.name
        assert np.percentile(err, 99) < 0.5 * MS, cam.name
        assert err.max() < 1 * MS, cam.name
        rc = entry.refined
        assert rc is not None and (rc.source, rc.maps_to) == ("device+probe", "capture")
        assert rc.probes_used > 0 and entry.probes == f"{cam.name}/{PROBES}"
        assert len(rc.segments) == (2 if cam.name == "far" else 1)  # "far" dropped out
        assert rc.min_delay_ns is not None and abs(rc.min_delay_ns - cam.min_delay_ns) < 0.5 * MS
        assert rc.drift_ppm is not None and abs(rc.drift_ppm - cam.drift_ppm) < 3
        live = np.array([r.time_ns for r in rows])
        assert rc.shift_max_ns == int(np.abs(refined - live).max())
    assert load_manifest(take) == m


def test_refining_again_changes_nothing(tmp_path: Path, traces: list[ObservedCamera]) -> None:
    take = make_take(tmp_path, traces[:1])
    refine_take(take)
    index = take / traces[0].name / INDEX
    first = index.read_bytes()
    refine_take(take)
    assert index.read_bytes() == first
    assert not list(take.rglob("*.tmp"))


def test_a_take_from_before_probes_and_connections_is_refined_as_far_as_it_can(
    tmp_path: Path, traces: list[ObservedCamera]
) -> None:
    """An index without ``conn`` and no probes.csv: the envelope alone, and the record
    says the times are capture + min delay."""
    cam = traces[0]
    take = make_take(tmp_path, [cam], probes=False)
    index = take / cam.name / INDEX
    lines = index.read_text().splitlines()
    old = [",".join(INDEX_COLUMNS_V1)] + [line.rsplit(",", 1)[0] for line in lines[1:]]
    index.write_text("\n".join(old) + "\n")
    (m_cam,) = refine_take(take).cameras
    rc = m_cam.refined
    assert rc is not None and rc.maps_to == "capture+min_delay" and rc.min_delay_ns is None
    assert rc.note is not None and "no /status clock" in rc.note
    rows = list(read_index(index))
    assert all(r.conn is None and r.refined_ns is not None for r in rows)
    err = np.array([r.best_ns for r in rows]) - cam.target_ns  # capture + min delay
    assert np.percentile(np.abs(err), 99) < 0.5 * MS


def test_a_camera_that_cannot_be_refined_keeps_its_index_and_says_why(
    tmp_path: Path, traces: list[ObservedCamera]
) -> None:
    take = make_take(tmp_path, traces[:1])
    index = take / traces[0].name / INDEX
    (take / traces[0].name / PROBES).write_text("t0,something\n1,2\n")
    before = index.read_bytes()
    warned: list[str] = []
    m = refine_take(take, warn=warned.append)
    assert index.read_bytes() == before
    assert m.cameras[0].refined is None
    assert "clock refinement failed" in m.events[-1].detail and "probe columns" in warned[0]


# -- recorded end to end ----------------------------------------------------------------


async def _record(out: Path, ingest: IngestConfig) -> Path:
    """near streams throughout; mid joins once near has 2 s of frames; far drops out
    (its node stops) and comes back on a new connection."""
    async with loopback_mesh(NODES) as mesh, Take(out, ingest_config=ingest) as take:
        nodes = {n.name: n for n in mesh.nodes}

        def frames(name: str) -> int:
            return next(s.writer.frames for s in take.status() if s.name == name)

        take.add_camera("near", nodes["near"].url)
        take.add_camera("far", nodes["far"].url)
        await wait_for(lambda: frames("near") >= 60, 20, "2 s of near")
        take.add_camera("mid", nodes["mid"].url)
        await wait_for(lambda: frames("far") >= 90, 20, "3 s of far")
        await nodes["far"].stop()
        far = take.session.feeds["far"]
        await wait_for(lambda: far.stats().state != CameraState.STREAMING, 10, "far gone")
        before = frames("far")
        await nodes["far"].start()
        await wait_for(lambda: frames("far") >= before + 60, 20, "far back")
        await wait_for(lambda: frames("mid") >= 150, 20, "5 s of mid")
    return take.dir


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, fast_ingest: IngestConfig) -> Path:
    ingest = dataclasses.replace(fast_ingest, read_timeout=2.0)
    return asyncio.run(_record(tmp_path_factory.mktemp("refined"), ingest))


def test_a_recorded_take_is_refined_from_its_first_frame(recorded: Path) -> None:
    m = load_manifest(recorded)
    assert {c.name for c in m.cameras} == {"near", "mid", "far"}
    for cam in m.cameras:
        rows = list(read_index(recorded / cam.index))
        truth = frame_truth(recorded, cam)
        assert len(truth) == len(rows) == cam.frames
        true = np.array([t for _, t, _ in truth]) - m.start_realtime_ns
        refined = np.array([r.best_ns for r in rows])
        live = np.array([r.time_ns for r in rows])
        err = np.abs(refined - true)
        first_s = true < true[0] + 1_000_000_000
        print(
            f"\n{cam.name}: {len(rows)} frames; refined p50 {np.median(err) / MS:.3f} ms, p99"
            f" {np.percentile(err, 99) / MS:.3f}, max {err.max() / MS:.3f}; live first second"
            f" max {np.abs(live - true)[first_s].max() / MS:.2f} ms"
        )
        assert cam.refined is not None and cam.refined.maps_to == "capture"
        assert np.median(err) < 0.2 * MS
        assert np.percentile(err, 99) < 0.5 * MS
        assert err.max() < 2 * MS
        # Live, from the first frame: probed before the stream, so placed by offset. By
        # arrival the first frames would be 2-40 ms late (the node's latency and more).
        assert np.abs(live - true)[first_s].max() < 5 * MS
        # the probes before each connection's first frame were kept
        probes = read_probes(recorded / cam.dir / PROBES)
        conns = [r for i, r in enumerate(rows) if i == 0 or r.conn != rows[i - 1].conn]
        assert len(conns) == (2 if cam.name == "far" else 1)
        for r in conns:
            assert sum(1 for t0, _, t1 in probes if t1 < r.arrival_ns) >= 4, cam.name
