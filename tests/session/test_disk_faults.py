"""A disk that fills, a relay folder, a take folder removed mid-take, free space and time
left: on a real (small, loop-mounted ext4) disk, against simulated nodes on loopback.

For each fault: what the cameras' live state says while it lasts, what is on disk, and
what the manifest says afterwards (frames lost with their cause, the gap, the events).
Each test is bounded: a few seconds of recording at 320x240.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import av

from mmrec.ingest.stream import IngestConfig
from mmrec.session.engine import Session
from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig
from mmrec.sim.record import sim_record
from mmrec.store.index import read_index
from mmrec.store.take import Manifest, camera_segments, load_manifest
from tests.audit import audit
from tests.diskfs import fill, small_disk
from tests.helpers import loopback_mesh, wait_for


def _nodes(n: int = 2) -> list[NodeConfig]:
    return [NodeConfig(f"d{i}", width=320, height=240, ring=4) for i in range(n)]


def _frames(take: Path, m: Manifest, name: str) -> list[int]:
    """The simulator's frame numbers of every packet a camera has on disk, in order."""
    (cam,) = [c for c in m.cameras if c.name == name]
    out = []
    for seg in camera_segments(take, cam, m.relays):
        with av.open(str(seg)) as c:
            for p in c.demux(video=0):
                if p.size:
                    rec = sim_record(bytes(p))
                    assert rec is not None
                    out.append(rec.frame)
    return out


async def test_a_full_disk_is_said_counted_and_writing_resumes_when_space_returns(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    with small_disk(tmp_path) as disk:
        async with (
            loopback_mesh(_nodes()) as mesh,
            Take(disk / "takes", ingest_config=fast_ingest, probe_clocks=False) as take,
        ):
            for n in mesh.nodes:
                take.add_camera(n.name, n.url)
            await wait_for(lambda: all(s.writer.frames >= 20 for s in take.status()), 10)
            filler = fill(disk)
            # the live state says so: never "streaming" while frames are not written
            await wait_for(lambda: all(s.state == "disk-full" for s in take.status()), 5)
            await wait_for(lambda: all(s.writer.lost >= 15 for s in take.status()), 5)
            assert all(s.ingest.state == "streaming" for s in take.status())
            filler.unlink()
            freed = time.monotonic()
            await wait_for(lambda: all(s.state == "streaming" for s in take.status()), 5)
            resumed_in = time.monotonic() - freed
            await wait_for(lambda: all(s.writer.frames >= 60 for s in take.status()), 10)
        m = load_manifest(take.dir)
        kinds = [(e.kind, e.camera) for e in m.events]
        for cam in m.cameras:
            # every frame not on disk is counted, with its cause, and the gap recorded
            frames = _frames(take.dir, m, cam.name)
            # what the node sent from the first frame on disk to the last (a node whose
            # loop falls behind on a loaded machine skips frame numbers, as a camera does)
            sent = [f.frame for f in mesh[cam.name].sent if frames[0] <= f.frame <= frames[-1]]
            missing = len(sent) - len(frames)
            assert set(frames) <= set(sent)
            assert cam.lost == missing > 0 and cam.lost_causes == (("disk-full", cam.lost),)
            assert cam.dropped == cam.lost  # dropped: every frame not written, whatever why
            (gap,) = cam.write_gaps
            assert gap[2] == "disk-full" and gap[0] < gap[1]
            assert cam.gaps == ()  # the camera itself streamed throughout
            assert ("alert", cam.name) in kinds and ("gap", cam.name) in kinds
            assert cam.frames == len(frames) == len(list(read_index(take.dir / cam.index)))
            assert cam.write_state == "closed"
        assert any(e.kind == "alert" and "disk full" in e.detail for e in m.events)
        assert resumed_in < 2.0, f"writing resumed {resumed_in:.2f} s after space came back"
        audit(take.dir)


async def test_a_relay_folder_continues_the_same_take_without_losing_a_frame(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    relay = tmp_path / "relay"
    with small_disk(tmp_path) as disk:
        async with (
            loopback_mesh(_nodes()) as mesh,
            Take(
                disk / "takes", ingest_config=fast_ingest, probe_clocks=False, relays=[relay]
            ) as take,
        ):
            for n in mesh.nodes:
                take.add_camera(n.name, n.url)
            await wait_for(lambda: all(s.writer.frames >= 20 for s in take.status()), 10)
            fill(disk)  # and never freed: the relay folder carries the take on
            await wait_for(lambda: all(s.writer.folder == 1 for s in take.status()), 5)
            at = [s.writer.frames for s in take.status()]
            await wait_for(
                lambda: all(
                    s.writer.frames >= a + 30 for s, a in zip(take.status(), at, strict=True)
                ),
                10,
            )
            assert all(s.state == "streaming" for s in take.status())
        there = relay / take.id
        m = load_manifest(there)  # the first disk is full: the final manifest is here
        assert m.state == "finished" and m.take_id == take.id
        assert m.relays == (str(take.dir),)  # and it says where the take began
        for cam in m.cameras:
            frames = _frames(there, m, cam.name)
            sent = [f.frame for f in mesh[cam.name].sent]
            assert frames == sent[sent.index(frames[0]) :][: len(frames)]  # none lost
            assert cam.lost == 0 and cam.frames == len(frames)
            assert cam.segments[0].startswith(str(take.dir))  # absolute: another folder
            assert not cam.segments[-1].startswith("/")  # relative: in this one
            assert cam.index == f"{cam.dir}/index.csv"  # one index with every row, here
            assert len(list(read_index(there / cam.index))) == cam.frames
        assert any(e.kind == "disk" and "continuing in" in e.detail for e in m.events)
        audit(there)


async def test_a_take_folder_removed_mid_take_is_noticed_within_a_second(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    async with (
        loopback_mesh(_nodes(1)) as mesh,
        Take(tmp_path, ingest_config=fast_ingest, probe_clocks=False) as take,
    ):
        take.add_camera(mesh.nodes[0].name, mesh.nodes[0].url)
        await wait_for(lambda: take.status()[0].writer.frames >= 20, 10)
        shutil.rmtree(take.dir)  # rm -rf of the take folder, mid-take
        removed = time.monotonic()
        await wait_for(lambda: take.status()[0].state == "folder-gone", 5)
        noticed_in = time.monotonic() - removed
        # made again on the same disk, and written on
        await wait_for(lambda: take.status()[0].state == "streaming", 5)
        at = take.status()[0].writer.frames
        await wait_for(lambda: take.status()[0].writer.frames >= at + 10, 5)
    m = load_manifest(take.dir)
    (cam,) = m.cameras
    causes = dict(cam.lost_causes)
    assert causes["deleted"] >= 20  # what was written before the rm -rf is gone, and said
    assert any(e.kind == "alert" and "deleted" in e.detail for e in m.events)
    audit(take.dir)  # the manifest claims only what is on disk
    assert noticed_in < 2.0, f"noticed {noticed_in:.2f} s after the folder went"


async def test_free_space_and_time_left_are_said_before_and_during_the_take(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    with small_disk(tmp_path) as disk:
        async with loopback_mesh(_nodes()) as mesh:
            events: list[str] = []
            async with Session(ingest_config=fast_ingest, probe_clocks=False) as session:
                session.events.subscribe(lambda e: events.append(f"{e.kind}: {e.detail}"))
                for n in mesh.nodes:
                    session.add_camera(n.name, n.url)
                await wait_for(  # warm feeds: their rate is measured, not assumed
                    lambda: all(f.stats().frames >= 70 for f in session.feeds.values()), 10
                )
                rec = await session.start_take(disk / "takes")
                fc = rec.disk.forecast
                assert fc is not None and fc.seconds is not None
                assert "2 camera(s) as measured" in fc.basis  # the assumption, said
                assert fc.free_bytes > 20e6 and 10 < fc.seconds < 600
                assert any("of recording at" in e for e in events)
                await wait_for(lambda: rec.disk.seconds_left is not None, 5)
                (folder,) = rec.disk.folders
                assert folder.free_bytes and folder.rate_bps > 0 and folder.seconds_left
                # 30 MB at this rate is minutes at most: below the 15 min warning
                assert folder.state in ("low", "critical")
                manifest = await session.stop_take()
        assert manifest.seconds_left is not None and manifest.disk[0].folder == str(rec.dir)
        written = json.loads((rec.dir / "manifest.json").read_text())
        assert written["disk"][0]["free_bytes"] > 0
        assert any(e.kind in ("disk", "alert") and "left" in e.detail for e in manifest.events)
