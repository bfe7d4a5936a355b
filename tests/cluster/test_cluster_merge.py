"""The hosts' parts of a cluster take merged into one take (no Ray: parts written here).

Each host's part is a take written with the real writer (``tests/review/takes.py``) in
``TAKE/hosts/<host>/take`` with its ``host.json``; the merged take is read back by the
take reader and by the proxies (an independent check of the files' frames: PyAV).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import av
import pytest

from mmrec.cluster.clock import ClockSample, fit_mapping
from mmrec.cluster.host import HOST_JSON, JOB, HostJob, HostRecord
from mmrec.cluster.merge import merge_take
from mmrec.errors import TakeError
from mmrec.review import ProxyOptions, make_proxies
from mmrec.store.reader import open_cameras
from mmrec.store.take import ClockInfo, load_manifest, resolve, write_manifest
from tests.review.takes import Cam, write_take

START = 1_796_000_000_000_000_000


def host_part(take: Path, host: str, cams: list[Cam], *, state: str = "finished") -> None:
    folder = take / "hosts" / host
    folder.mkdir(parents=True)
    part = write_take(folder, cams, state="finished" if state == "finished" else "recording")
    m = load_manifest(part)
    clock = ClockInfo(source="device+probe", uncertainty_ns=300_000)
    write_manifest(
        part,
        replace(
            m,
            cameras=tuple(replace(c, outcome="complete", clock=clock) for c in m.cameras),
            duration_ns=2_000_000_000,
            outcome="complete",
        ),
    )
    samples = [ClockSample(1000 + i, 500 + i, 1000 + i + 400_000) for i in range(4)]
    mapping = fit_mapping(samples)
    record = HostRecord(
        host, "20261207-000000-t", 1, state, take_dir="take", start_ref_ns=START,
        stop_ref_ns=START + 2_000_000_000,
        samples=tuple((s.ref_t0_ns, s.host_ns, s.ref_t1_ns) for s in samples),
        mapping=asdict(mapping),
    )  # fmt: skip
    (folder / HOST_JSON).write_text(json.dumps(asdict(record)))
    job = HostJob(host, record.cluster_take, str(folder), tuple((c.name, "sim") for c in cams))
    (folder / JOB).write_text(job.to_json())


def test_parts_merge_into_one_take_that_reads_as_any_take(tmp_path: Path) -> None:
    take = tmp_path / "20261207-000000-t"
    host_part(take, "recA", [Cam("A1", ((0.0, 2.0),)), Cam("A2", ((0.0, 2.0),))])
    host_part(take, "recB", [Cam("B1", ((0.0, 2.0),))])
    m = merge_take(take)
    assert m == load_manifest(take)
    assert m.take_id == "20261207-000000-t" and m.start_realtime_ns == START
    assert m.state == "finished" and m.outcome == "complete"
    assert m.duration_ns == 2_000_000_000
    assert [c.name for c in m.cameras] == ["A1", "A2", "B1"]
    assert [(h.name, h.cameras, h.state) for h in m.hosts] == [
        ("recA", ("A1", "A2"), "finished"),
        ("recB", ("B1",), "finished"),
    ]
    assert m.hosts[0].dir == "hosts/recA/take" and m.hosts[0].clock_samples == 4
    # a camera's clock uncertainty includes its host's mapping (half a 400 us round trip)
    assert m.hosts[0].clock_uncertainty_ns == 200_000
    a1 = m.cameras[0]
    assert a1.clock is not None and a1.clock.uncertainty_ns == 300_000 + 200_000
    assert "recA" in (a1.clock.note or "")
    # paths relative to the merged folder, and there
    for c in m.cameras:
        assert c.index.startswith("hosts/") and resolve(take, c.index).is_file()
        for s in c.segments:
            with av.open(str(resolve(take, s))) as f:
                assert sum(1 for p in f.demux(f.streams.video[0]) if p.size) == c.frames
    frames = open_cameras(take, m)
    assert [len(f.rows) for f in frames] == [c.frames for c in m.cameras]
    result = make_proxies(take, ProxyOptions(height=120, multiview_size=(320, 180)))
    assert sorted(p.path.name for p in result.cameras) == ["A1.mp4", "A2.mp4", "B1.mp4"]


def test_a_host_that_died_is_said_and_its_files_are_listed(tmp_path: Path) -> None:
    take = tmp_path / "20261207-000000-t"
    host_part(take, "recA", [Cam("A1", ((0.0, 2.0),))])
    host_part(take, "recB", [Cam("B1", ((0.0, 1.0),))], state="recording")
    # its manifest lagged its files: a segment it never listed is found on disk
    b_dir = take / "hosts/recB/take/B1"
    extra = b_dir / "seg-0001.mkv"
    extra.write_bytes((b_dir / "seg-0000.mkv").read_bytes())
    m = merge_take(take, died={"recB": "gone: its recorder process is no more"})
    assert m.state == "recording" and m.outcome == "lost"
    b = {h.name: h for h in m.hosts}["recB"]
    assert b.state == "recording" and "gone" in (b.note or "")
    b1 = next(c for c in m.cameras if c.name == "B1")
    assert b1.outcome == "lost" and "mmrec repair" in (b1.outcome_detail or "")
    assert "hosts/recB/take/B1/seg-0001.mkv" in b1.segments
    assert any(e.kind == "host" and "recB" in e.detail for e in m.events)
    assert next(c for c in m.cameras if c.name == "A1").outcome == "complete"


def test_a_host_that_never_started_has_its_cameras_as_nothing(tmp_path: Path) -> None:
    take = tmp_path / "t"
    host_part(take, "recA", [Cam("A1", ((0.0, 2.0),))])
    folder = take / "hosts/recC"
    folder.mkdir()
    (folder / HOST_JSON).write_text(json.dumps(asdict(HostRecord("recC", "t", 1, "armed"))))
    (folder / JOB).write_text(HostJob("recC", "t", str(folder), (("C1", "http://x"),)).to_json())
    m = merge_take(take)
    c1 = next(c for c in m.cameras if c.name == "C1")
    assert c1.outcome == "nothing" and c1.segments == ()
    assert {h.name: h.state for h in m.hosts}["recC"] == "missing"
    assert m.outcome == "nothing"


def test_not_a_cluster_take(tmp_path: Path) -> None:
    with pytest.raises(TakeError, match="cluster take"):
        merge_take(tmp_path)
    (tmp_path / "hosts").mkdir()
    with pytest.raises(TakeError, match=r"host\.json"):
        merge_take(tmp_path)


def test_a_dead_hosts_part_repaired_then_merged_is_whole(tmp_path: Path) -> None:
    """The flow the merge's own words give: 'mmrec repair' on the dead host's part, then
    merge again; the part counts as whole (host.json still says what the recorder left)."""
    from mmrec.store.repair import repair_take

    take = tmp_path / "20261207-000000-t"
    host_part(take, "recA", [Cam("A1", ((0.0, 2.0),))])
    host_part(take, "recB", [Cam("B1", ((0.0, 1.0),))], state="recording")
    first = merge_take(take, died={"recB": "gone: its recorder process is no more"})
    assert first.state == "recording"
    repair_take(take / "hosts/recB/take")
    m = merge_take(take)
    assert m.state != "recording", m.state
    b1 = next(c for c in m.cameras if c.name == "B1")
    assert "mmrec repair" not in (b1.outcome_detail or "")
