"""A take's review proxies rendered across a Ray cluster: one task per camera, near its
files, then the multiview from their results (``mmrec proxy --cluster``).

Each camera's proxy is :func:`mmrec.review.make_proxies` for that camera alone, on the
grid of the whole take (``ProxyOptions.cameras``), so it is the very file the one-host
``mmrec proxy`` makes. Its task runs on the host that recorded the camera (the Ray
resource ``host:NAME`` its part of the take names in the manifest's ``hosts``) when that
host is up, reading the files where they were written; anywhere otherwise (shared
storage). The multiview is then tiled from the cameras' proxies (decoded, not the
JPEGs again): a picture every camera already has at the proxy's size.

Safe to retry: every file is written under a temporary name in the output folder and
renamed into place when complete, so an interrupted run leaves the previous files or
none, never half a file under the final name.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import ray
from ray.exceptions import RayError

from mmrec.cluster.coordinator import HOST_RESOURCE, recorder_hosts
from mmrec.errors import RecordingError, TakeError
from mmrec.review.options import ProxyOptions
from mmrec.store.take import Manifest, load_manifest

TASK_RETRIES: Final = 2  # a task whose worker died is run again (its output is renamed in)


@dataclass(frozen=True, slots=True)
class ClusterProxy:
    camera: str
    path: Path
    host: str | None  # where its task ran (None: anywhere, no host label)
    frames: int
    seconds: float


@dataclass(frozen=True, slots=True)
class ClusterProxyResult:
    out_dir: Path
    cameras: tuple[ClusterProxy, ...]
    multiview: Path | None
    seconds: float
    warnings: tuple[str, ...]


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished file into place (atomic on one file system)."""
    os.replace(tmp, final)


def render_camera(take_dir: str, camera: str, opts: ProxyOptions) -> dict[str, Any]:
    """One camera's proxy (a Ray task's body): rendered into a temporary folder inside the
    output folder, then renamed into place."""
    from mmrec.review import make_proxies

    out_dir = Path(opts.out) if opts.out else Path(take_dir) / "proxies"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{camera}.{uuid.uuid4().hex[:8]}.partial"
    t0 = time.perf_counter()
    try:
        one = replace(
            opts, cameras=(camera,), multiview=False, contact_sheet=False, out=tmp, threads=1
        )
        result = make_proxies(Path(take_dir), one)
        (proxy,) = result.cameras
        final = out_dir / proxy.path.name
        _publish(proxy.path, final)
    finally:
        for leftover in tmp.glob("*") if tmp.is_dir() else ():
            leftover.unlink()
        if tmp.is_dir():
            tmp.rmdir()
    return {
        "camera": camera,
        "path": str(final),
        "frames": result.frames,
        "seconds": time.perf_counter() - t0,
        "warnings": list(result.warnings),
    }


def camera_hosts(manifest: Manifest) -> dict[str, str]:
    """camera name -> the host that recorded it (a cluster take's ``hosts``)."""
    return {cam: h.name for h in manifest.hosts for cam in h.cameras}


def make_cluster_proxies(
    take_dir: Path,
    opts: ProxyOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ClusterProxyResult:
    """Every camera's proxy as a Ray task, then the multiview (see the module doc).
    Needs a connected Ray (:func:`mmrec.cluster.coordinator.connect`)."""
    started = time.perf_counter()
    take_dir = Path(os.path.abspath(take_dir))
    manifest = load_manifest(take_dir)
    warnings: list[str] = []

    def _warn(text: str) -> None:
        warnings.append(text)
        if warn is not None:
            warn(text)

    up = set(recorder_hosts())
    where = camera_hosts(manifest)
    task = ray.remote(render_camera)
    refs: dict[Any, tuple[str, str | None]] = {}
    for cam in manifest.cameras:
        host = where.get(cam.name)
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": TASK_RETRIES}
        if host is not None and host in up:
            options["resources"] = {f"{HOST_RESOURCE}{host}": 0.001}
        else:
            host = None
        ref = task.options(**options).remote(str(take_dir), cam.name, opts)
        refs[ref] = (cam.name, host)
    done: list[ClusterProxy] = []
    pending = list(refs)
    total = len(pending)
    if progress is not None:
        progress(0, total)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        name, host = refs[ready[0]]
        try:
            got = ray.get(ready[0])
        except RayError as exc:
            if "no readable frames" in str(exc) or "no frames" in str(exc):
                _warn(f"camera {name!r}: no frames on disk; no proxy")
                continue
            raise RecordingError(f"camera {name!r}: its proxy failed: {exc}") from exc
        for w in got["warnings"]:
            _warn(w)
        done.append(ClusterProxy(name, Path(got["path"]), host, got["frames"], got["seconds"]))
        if progress is not None:
            progress(len(done), total)
    if not done:
        raise TakeError(f"{take_dir}: no camera has any readable frame")
    order = {c.name: i for i, c in enumerate(manifest.cameras)}
    done.sort(key=lambda p: order[p.camera])
    mv = None
    if opts.multiview:
        mv = multiview_from_proxies(take_dir, manifest, done, opts)
    return ClusterProxyResult(
        out_dir=done[0].path.parent,
        cameras=tuple(done),
        multiview=mv,
        seconds=time.perf_counter() - started,
        warnings=tuple(warnings),
    )


def multiview_from_proxies(
    take_dir: Path, manifest: Manifest, proxies: list[ClusterProxy], opts: ProxyOptions
) -> Path:
    """The multiview tiled from the cameras' proxies (same grid, same frame count),
    written under a temporary name and renamed into place."""
    import av

    from mmrec.picture.yuv import Picture, new_frame
    from mmrec.review.multiview import Multiview
    from mmrec.review.plan import plan_proxies
    from mmrec.review.proxy import _writer, x264_options
    from mmrec.review.source import read_cameras
    from mmrec.store.names import unique_name
    from mmrec.timeline.grid import take_grid

    cams = read_cameras(take_dir, manifest, lambda text: None)
    grid = take_grid(
        manifest.day_clock, [(c.frames.entry.rate, c.frames.times) for c in cams], opts.fps
    ).grid
    plan = plan_proxies(grid, [c.frames.times for c in cams], [c.size for c in cams], opts)
    assert plan.multiview_size is not None
    stems = [p.path.stem for p in proxies]
    out_dir = proxies[0].path.parent
    final = out_dir / f"{unique_name('multiview', stems)}.mp4"
    tmp = out_dir / f".{final.name}.{uuid.uuid4().hex[:8]}.partial.mp4"
    writer = _writer(tmp, plan.multiview_size, plan, "multiview", x264_options(opts, True))
    containers: list[Any] = []
    try:
        containers += (av.open(str(p.path)) for p in proxies)  # in here: closed on error
        mv = Multiview([p.camera for p in proxies], plan.multiview_size, writer)
        decoders = [c.decode(c.streams.video[0]) for c in containers]
        # x264 copies each picture in (as the proxies' pipeline relies on): one frame,
        # drawn again for every instant
        frame, canvas = new_frame(*plan.multiview_size, black=True)
        for k in range(grid.frames):
            for i, dec in enumerate(decoders):
                got = next(dec, None)
                mv.tile(canvas, i, None if got is None else Picture.of_frame(got))
            mv.finish(frame, canvas, plan.timecode(k))
        writer.close()
        _publish(tmp, final)
    finally:
        for c in containers:
            c.close()
        if tmp.exists():
            writer.close()
            tmp.unlink()
    return final
