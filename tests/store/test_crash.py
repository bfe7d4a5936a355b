"""SIGKILL of the recorder: every file stays readable, up to within the frames it still
held (in flight, queued, waiting for their write run)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from mmrec.sim import NodeConfig
from mmrec.sim.record import com_segment, sim_record
from mmrec.store.index import read_index
from mmrec.store.writer import DEFAULT_RUN
from tests.helpers import hold, loopback_mesh, wait_for


def _manifest(out: Path) -> dict[str, object] | None:
    found = list(out.glob("*/manifest.json"))
    if not found:
        return None
    try:
        return json.loads(found[0].read_text())  # type: ignore[no-any-return]
    except ValueError:
        return None  # never happens with the atomic rename, but don't fail on it


async def _wait_recorded(
    out: Path, proc: subprocess.Popen[bytes], frames: int, names: set[str]
) -> None:
    """Until the live manifest shows ``frames`` for each camera in ``names`` (30 s max):
    the recorder is another process, so its manifest on disk is what there is to watch."""

    def recorded() -> bool:
        m = _manifest(out)
        cams = m["cameras"] if m else []
        assert isinstance(cams, list)
        if {c["name"] for c in cams if c["frames"] >= frames} >= names:
            return True
        assert proc.poll() is None, "recorder exited early"
        return False

    await wait_for(recorded, 30, f"the recorder to record {frames} frames")


@pytest.mark.parametrize("run", [1, DEFAULT_RUN])
async def test_sigkill_leaves_every_file_readable(tmp_path: Path, run: int) -> None:
    """Frames are written in runs of up to ``--write-run`` (one system call each), so a
    kill loses at most ``run - 1`` frames held for their run more than with runs of 1."""
    configs = [NodeConfig(f"k{i}", width=320, height=240, ring=4) for i in range(2)]
    async with loopback_mesh(configs) as mesh:
        cmd = [sys.executable, "-m", "mmrec", "record", "--json", "--out", str(tmp_path)]
        cmd += ["--write-run", str(run)]
        cmd += [f"{n.name}={n.url}" for n in mesh.nodes]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await _wait_recorded(tmp_path, proc, 60, {n.name for n in mesh.nodes})
            proc.send_signal(signal.SIGKILL)
            # What each node had sent (the loop is ours: nothing more goes out until the
            # blocking wait below has seen the recorder die).
            sent_at_kill = {n.name: [f.frame for f in n.sent] for n in mesh.nodes}
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    (take,) = [p.parent for p in tmp_path.glob("*/manifest.json")]
    m = json.loads((take / "manifest.json").read_text())
    assert m["state"] == "recording"  # a crash leaves the manifest of a moment before
    for cam in m["cameras"]:
        seg = take / cam["segments"][0]
        with av.open(str(seg)) as c:  # readable, without the muxer ever closing it
            packets = [bytes(p) for p in c.demux(video=0) if p.size]
        frames = [r.frame for r in map(sim_record, packets) if r is not None]
        assert len(frames) == len(packets)
        # every frame the node sent from the first recorded one on, none missing (a node
        # whose loop falls behind skips frame numbers, as a live camera does)
        sent = sent_at_kill[cam["name"]]
        first = sent.index(frames[0])
        assert frames == sent[first : first + len(frames)]
        rows = list(read_index(take / cam["index"]))
        # the index and the file agree to within the run being written at the kill (its
        # frames go into the segment before its rows go into the index; `mmrec repair`
        # puts the rows back, see the test below)
        assert abs(len(rows) - len(frames)) <= run, (len(rows), len(frames))
        # and they end within a frame or two of what the node had sent at the kill (one
        # still in flight on the socket, one in the writer's queue), and the frames held
        # for their write run (at most run - 1: the run's last frame sends it)
        assert len(sent) - (first + len(frames)) <= 2 + (run - 1), (sent[-3:], frames[-1])


async def test_sigterm_finalizes_every_file_within_seconds(tmp_path: Path) -> None:
    """SIGTERM while one camera streams and another never answers: a prompt, clean end."""
    import socket

    silent = socket.socket()  # accepts connections (backlog), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    try:
        async with loopback_mesh([NodeConfig("t0", width=320, height=240, ring=4)]) as mesh:
            cmd = [sys.executable, "-m", "mmrec", "record", "--json", "--out", str(tmp_path)]
            cmd += [f"t0={mesh.nodes[0].url}", f"mute=http://127.0.0.1:{port}/stream"]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                await _wait_recorded(tmp_path, proc, 30, {"t0"})
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                out, err = await asyncio.to_thread(proc.communicate, timeout=20)
                took = time.monotonic() - t0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        silent.close()
    assert took < 6.0, f"took {took:.1f} s to finish"
    summary = json.loads(out)
    assert summary["state"] == "finished"
    (take,) = [p.parent for p in tmp_path.glob("*/manifest.json")]
    by = {c["name"]: c for c in summary["cameras"]}
    assert by["mute"]["frames"] == 0 and by["mute"]["segments"] == []
    # a stop by signal is a normal end; the camera that never answered makes it "nothing"
    assert by["mute"]["outcome"] == "nothing" and summary["outcome"] == "nothing"
    assert proc.returncode == 5, err.decode()
    seg = take / by["t0"]["segments"][0]
    assert b"\x1c\x53\xbb\x6b" in seg.read_bytes()[-4096:]  # Cues written at close
    with av.open(str(seg)) as c:
        assert c.duration and c.duration > 0
        assert sum(1 for p in c.demux(video=0) if p.size) == by["t0"]["frames"]


def _sim_bodies(nodes: int, width: int, height: int) -> dict[str, list[bytes]]:
    """The JPEG bodies each node of ``mmrec sim --nodes N`` sends (as ``mmrec record
    --sim N`` starts it): the same rings, built again here from the same configs."""
    from mmrec.cli import build_parser
    from mmrec.commands.sim import configs_from_args
    from mmrec.sim import DEFAULT_CACHE, RingKey

    args = build_parser().parse_args(
        ["sim", "--nodes", str(nodes), "--width", str(width), "--height", str(height)]
    )
    configs = configs_from_args(args)
    keys = [RingKey(c.width, c.height, c.quality, c.picture_seed, c.ring, c.name) for c in configs]
    rings = DEFAULT_CACHE.get_many(keys)
    return {c.name: [bytes(b) for b in r.bodies] for c, r in zip(configs, rings, strict=True)}


async def test_sigkill_at_random_moments_then_repair_gives_a_whole_take(tmp_path: Path) -> None:
    """``mmrec record --sim 2`` killed at random moments (three recorders side by side,
    each its own kill); then ``mmrec repair``: the auditor passes (as a crashed take and
    as a whole one), and every packet is byte-identical to what the simulator sent."""
    import os
    import random

    from tests.audit import audit

    seed = int(os.environ.get("MMREC_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill moments from seed {seed} (MMREC_KILL_SEED to repeat)")
    bodies = _sim_bodies(2, 320, 240)

    async def killed(out: Path, frames: int, delay: float) -> Path:
        cmd = [sys.executable, "-m", "mmrec", "record", "--sim", "2", "--sim-size", "320x240"]
        cmd += ["--no-preview", "--json", "--out", str(out)]
        # its own process group: the simulator it starts is killed with it afterwards
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            await _wait_recorded(out, proc, frames, set(bodies))
            # a random moment within the next second: the kill's timing is what is tested
            await hold(delay)
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the simulator, orphaned by the kill
            if proc.poll() is None:
                proc.wait()
        (take,) = [p.parent for p in out.glob("*/manifest.json")]
        fixed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "mmrec", "repair", str(take)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert fixed.returncode == 0, fixed.stderr
        return take

    runs = [(tmp_path / f"run{i}", rng.randrange(5, 60), rng.uniform(0.0, 1.0)) for i in range(3)]
    takes = await asyncio.gather(*(killed(*r) for r in runs))
    for take in takes:
        audit(take, "--crashed")
        audit(take)  # after repair the manifest, the index and the files agree
        m = json.loads((take / "manifest.json").read_text())
        assert m["state"] == "recovered"
        for cam in m["cameras"]:
            packets: list[bytes] = []
            for seg in cam["segments"]:
                with av.open(str(take / seg)) as c:
                    packets += [bytes(p) for p in c.demux(video=0) if p.size]
            assert len(packets) == cam["frames"] > 0
            ring = bodies[cam["name"]]
            last = -1
            for data in packets:
                rec = sim_record(data)
                assert rec is not None and rec.node == cam["name"] and rec.frame > last
                com = com_segment(rec.node, rec.frame, rec.true_ns)
                assert data == b"\xff\xd8" + com + ring[rec.frame % len(ring)]
                last = rec.frame
