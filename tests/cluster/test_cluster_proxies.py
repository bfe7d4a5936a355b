"""mmrec proxy --cluster: each camera's proxy a Ray task on the host that recorded it, the
multiview from their results; the same pictures as the one-host mmrec proxy (PyAV)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

pytest.importorskip("ray", reason="the cluster extra (mmrec[cluster]) is not installed")

from mmrec.cluster.proxies import make_cluster_proxies
from mmrec.review import ProxyOptions, make_proxies
from tests.cluster.conftest import ROOT
from tests.cluster.test_cluster_merge import host_part
from tests.review.takes import Cam, y_frames

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster_take(tmp_path: Path) -> Path:
    from mmrec.cluster.merge import merge_take

    take = tmp_path / "20261207-000000-t"
    host_part(take, "recA", [Cam("A1", ((0.0, 2.0),)), Cam("A2", ((0.4, 2.0),))])
    host_part(take, "recB", [Cam("B1", ((0.0, 1.6),))])
    merge_take(take)
    return take


def test_cluster_proxies_are_the_one_host_proxies(ray_cluster: object, cluster_take: Path) -> None:
    opts = ProxyOptions(height=120, multiview_size=(320, 180))
    seen: list[tuple[int, int]] = []
    got = make_cluster_proxies(cluster_take, opts, progress=lambda d, t: seen.append((d, t)))
    assert [(c.camera, c.host) for c in got.cameras] == [
        ("A1", "recA"), ("A2", "recA"), ("B1", "recB"),
    ]  # fmt: skip
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    one = make_proxies(
        cluster_take, ProxyOptions(height=120, multiview_size=(320, 180), out=cluster_take / "one")
    )
    for c, o in zip(got.cameras, one.cameras, strict=True):
        assert c.path.name == o.path.name
        a, b = y_frames(c.path), y_frames(o.path)
        assert len(a) == len(b) == one.frames
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), c.camera
    assert got.multiview is not None
    with av.open(str(got.multiview)) as mv:
        assert sum(1 for _ in mv.decode(mv.streams.video[0])) == one.frames
        assert (mv.streams.video[0].width, mv.streams.video[0].height) == (320, 180)
    # write then rename: nothing half-written is left under any name
    assert not list(got.out_dir.glob(".*"))


def test_mmrec_proxy_cluster_command(ray_cluster: object, cluster_take: Path) -> None:
    address = ray_cluster.address  # type: ignore[attr-defined]
    out = subprocess.run(
        [sys.executable, "-m", "mmrec", "proxy", str(cluster_take), "--cluster", address,
         "--height", "120", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "recA" in out.stdout and "multiview.mp4" in out.stdout
    names = sorted(p.name for p in (cluster_take / "proxies").iterdir())
    assert names == ["A1.mp4", "A2.mp4", "B1.mp4", "multiview.mp4"]
