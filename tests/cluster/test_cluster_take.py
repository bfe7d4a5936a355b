"""A cluster take on a local multi-node Ray cluster: three recorder hosts, nine simulated
phones, one take; and what happens when a host dies, freezes, or the coordinator dies.

The take is checked by independent readers: PyAV on the segment files (first and last
packet of every camera), and the shared audit tool (ffprobe) on the merged folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

pytest.importorskip("ray", reason="the cluster extra (mmrec[cluster]) is not installed")

from mmrec.cluster.coordinator import ClusterTake, plan_from_survey, recorder_hosts
from mmrec.cluster.host import HostJob
from mmrec.cluster.merge import merge_take
from mmrec.cluster.plan import HostSpec, PlannedCamera
from mmrec.errors import RecordingError
from mmrec.store.reader import open_cameras
from mmrec.store.take import load_manifest, resolve
from tests.audit import audit_if_present
from tests.cluster.conftest import HOSTS, ROOT, until

pytestmark = pytest.mark.slow

PERIOD_S = 1 / 30
FAST = HostJob(
    "", "", "", (), connect_timeout=2.0, read_timeout=1.0, backoff_initial=0.1, backoff_max=0.5
)


def _take(tmp: Path, cams: list[tuple[str, str]], said: list[str]) -> ClusterTake:
    """A take armed on every labelled host, the cameras spread evenly (each host's
    networks reach loopback; a budget of 3 each)."""
    take = ClusterTake(tmp, name="t", job=FAST, on_event=said.append)
    infos = take.survey(recorder_hosts(), ready_timeout=60)
    assert all("127.0.0.0/8" in i["networks"] for i in infos.values()), infos
    plan = plan_from_survey(
        [PlannedCamera(n, u) for n, u in cams], infos, [HostSpec(h, (), 3) for h in HOSTS]
    )
    take.arm(plan, ready_timeout=60)
    return take


def _all_frames(take: ClusterTake, at_least: int) -> bool:
    st = take.status()
    return len(st.cameras) == take.plan.cameras and all(c.frames >= at_least for c in st.cameras)


def _file_span(take_dir: Path, segments: tuple[str, ...]) -> tuple[float, float]:
    """First and last packet time (s) of a camera's segments, as PyAV reads them."""
    times: list[float] = []
    for seg in segments:
        with av.open(str(resolve(take_dir, seg))) as c:
            s = c.streams.video[0]
            tb = s.time_base or Fraction(1, 1000)
            times += [float(p.pts * tb) for p in c.demux(s) if p.pts is not None and p.size]
    assert times, segments
    return min(times), max(times)


def test_hosts_are_the_labelled_nodes(ray_cluster: object) -> None:
    assert recorder_hosts() == list(HOSTS)


def test_a_host_that_is_not_up_is_said_within_the_ready_timeout(
    ray_cluster: object, recorders_ended: Path
) -> None:
    """An actor that cannot be placed (no node has the label) would wait forever: the
    ready call's timeout says so instead."""
    take = ClusterTake(recorders_ended, job=FAST)
    t0 = time.monotonic()
    with pytest.raises(RecordingError, match="recZ"):
        take.survey(["recA", "recZ"], ready_timeout=2.0)
    assert time.monotonic() - t0 < 10


def test_three_hosts_nine_cameras_one_take(
    ray_cluster: object, sim9: list[tuple[str, str]], recorders_ended: Path
) -> None:
    tmp_path = recorders_ended
    said: list[str] = []
    take = _take(tmp_path, sim9, said)
    try:
        assert [len(a.cameras) for a in take.plan.assignments] == [3, 3, 3]
        take.start(lead_s=1.0)
        until(
            lambda: _all_frames(take, 45), 30, lambda: f"frames: {take.status()} {said}", take.poll
        )
        take.stop()
        manifest = take.merge()
    finally:
        take.close()
    assert manifest is not None, said
    assert not take.failures(), said
    # one take, one manifest, every camera once, each on its host
    again = load_manifest(take.dir)
    assert again == manifest
    assert again.take_id == take.id
    assert sorted(c.name for c in again.cameras) == sorted(n for n, _ in sim9)
    assert [h.name for h in again.hosts] == list(HOSTS)
    assert all(h.state == "finished" and h.clock_samples >= 8 for h in again.hosts)
    assert again.state == "finished" and again.outcome == "complete", again.outcome_detail
    assert again.start_realtime_ns == take.start_ref_ns
    # independent reader: every camera's files start and stop within one frame period
    spans = [_file_span(take.dir, c.segments) for c in again.cameras]
    firsts, lasts = [s[0] for s in spans], [s[1] for s in spans]
    assert max(firsts) - min(firsts) <= PERIOD_S + 1e-3, firsts
    assert max(lasts) - min(lasts) <= PERIOD_S + 1e-3, lasts
    assert min(firsts) >= 0
    # mmrec's own take reader reads it as any take
    frames = open_cameras(take.dir, again)
    assert all(len(f.rows) == c.frames for f, c in zip(frames, again.cameras, strict=True))
    # and the audit tool, with ffprobe
    audit_if_present(take.dir)


def _recording_pid(take: ClusterTake, host: str) -> int:
    """Start the take, let every camera record; ``host``'s recorder process id."""
    take.start(lead_s=1.0)
    until(lambda: _all_frames(take, 15), 30, "every camera's frames", take.poll)
    pid = take.recorder_pids()[host]
    assert pid is not None
    return pid


def _reported_after(take: ClusterTake, host: str, sent: float) -> float:
    """Wait (at most 10 s) until the coordinator reports ``host``; seconds since ``sent``."""
    until(lambda: host in take.failures(), 10, f"{host} reported", take.poll)
    return time.monotonic() - sent


def test_a_killed_host_is_reported_and_the_others_files_are_complete(
    ray_cluster: object, sim9: list[tuple[str, str]], recorders_ended: Path
) -> None:
    tmp_path = recorders_ended
    said: list[str] = []
    take = _take(tmp_path, sim9, said)
    try:
        os.kill(_recording_pid(take, "recB"), signal.SIGKILL)
        noticed = _reported_after(take, "recB", time.monotonic())
        # the others record on
        before = {c.name: c.frames for c in take.status().cameras if c.host != "recB"}

        def others_grew() -> bool:
            rows = [c for c in take.status().cameras if c.host != "recB"]
            return all(c.frames > before[c.name] + 15 for c in rows)

        until(others_grew, 15, "the other hosts' frames", take.poll)
        take.stop()
        manifest = take.merge()
    finally:
        take.close()
    assert noticed < 5.0
    assert any("host recB" in s and "gone" in s for s in said), said
    assert manifest is not None
    by_host = {h.name: h for h in manifest.hosts}
    assert by_host["recB"].state == "recording" and by_host["recB"].note
    assert by_host["recA"].state == by_host["recC"].state == "finished"
    lost = {c.name for c in manifest.cameras if c.outcome == "lost"}
    assert lost == set(by_host["recB"].cameras)
    assert manifest.outcome == "lost"
    for c in manifest.cameras:
        if c.name not in lost:
            assert c.outcome == "complete", c.outcome_detail
    audit_if_present(take.dir, "--crashed")  # --crashed: the dead host's manifest lags its files


def test_a_frozen_host_is_reported_within_10_s(
    ray_cluster: object, sim9: list[tuple[str, str]], recorders_ended: Path
) -> None:
    tmp_path = recorders_ended
    said: list[str] = []
    take = _take(tmp_path, sim9[:6], said)
    pid = None
    try:
        pid = _recording_pid(take, "recA")
        os.kill(pid, signal.SIGSTOP)
        assert _reported_after(take, "recA", time.monotonic()) < 10
        assert any("host recA" in s and "frozen" in s for s in said), said
        os.kill(pid, signal.SIGCONT)
        until(lambda: "recA" not in take.failures(), 10, "recA answering again", take.poll)
        take.stop()
        manifest = take.merge()
    finally:
        if pid is not None:  # never leave it stopped (it may have finished and gone)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        take.close()
    assert manifest is not None
    assert {h.state for h in manifest.hosts} == {"finished"}


def test_the_take_survives_its_coordinator(
    ray_cluster: object, sim9: list[tuple[str, str]], recorders_ended: Path
) -> None:
    tmp_path = recorders_ended
    """A coordinator (mmrec record --cluster) killed mid-take: the hosts record on to the
    take's end and finalize; 'mmrec cluster merge' makes the take."""
    address = ray_cluster.address  # type: ignore[attr-defined]
    cams = [f"{n}={u}" for n, u in sim9[:6]]
    with open(tmp_path / "coordinator.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmrec", "record", "--cluster", address, "--out",
             str(tmp_path), "--duration", "6", "--json", *cams],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        until(lambda: any(tmp_path.glob("*/hosts/*/*/manifest.json")), 60, "the hosts' takes")
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    take_dir = next(tmp_path.glob("*/hosts")).parent
    hosts = sorted(take_dir.glob("hosts/*/host.json"))
    assert len(hosts) == 3

    def finished() -> bool:
        return all('"state": "finished"' in h.read_text() for h in hosts)

    until(finished, 30, "every host to finish by itself")
    out = subprocess.run(
        [sys.executable, "-m", "mmrec", "cluster", "merge", str(take_dir)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    manifest = load_manifest(take_dir)
    assert manifest.state == "finished" and manifest.outcome == "complete", manifest.outcome_detail
    assert len(manifest.cameras) == 6
    assert manifest == merge_take(take_dir)
    audit_if_present(take_dir)
