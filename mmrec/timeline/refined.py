"""A take on disk refined: every frame's best time in ``index.csv``, a record per camera.

After the take (``Recording.finish()``, once the writers have closed) and in ``mmrec
repair``, each camera's evidence is read back from its files: ``index.csv`` (each
frame's arrival, ``X-Timestamp`` and connection) and ``probes.csv`` (its ``/status``
round trips, from 10 s before the take on). :func:`mmrec.timeline.refine.refine` places
every frame with the evidence before *and* after it; the result goes into the index as
the ``refined_ns`` column (atomic rewrite: :func:`mmrec.store.index.write_refined`) and
into the manifest as the camera's ``refined`` record. The live ``time_ns`` stays, and the
segment files keep their pts (the live times; ``Manifest.pts_from`` says so): readers
that can use the better time take ``refined_ns`` (:attr:`IndexRow.best_ns`).

Invariants: idempotent (a second run replaces the column with the same values); a camera
that cannot be refined keeps its index as it was and the manifest says why (an event);
no frame is dropped or reordered. Cost: ~1.3 s of CPU per camera-hour in the caller's
thread, of which the fit ~0.2 s and the rest reading and rewriting the index
(``benchmarks/bench_align.py`` prints both).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path

import numpy as np

from mmrec.errors import MmrecError
from mmrec.store.index import (
    INDEX,
    PROBES,
    REFINED_COLUMN,
    read_index_table,
    read_probes,
    write_refined,
)
from mmrec.store.take import (
    CameraEntry,
    Manifest,
    RefinedClock,
    RefinedSegment,
    TakeEvent,
    load_manifest,
    write_manifest,
)
from mmrec.timeline.refine import ClockEvidence, refine
from mmrec.wire.timestamp import parse_device_ts

Warn = Callable[[str], None]


def refine_take(take_dir: Path, *, warn: Warn | None = None) -> Manifest:
    """Refine every camera of the take in ``take_dir`` and write the manifest; returns it.

    For ``mmrec repair`` and anything else that finds a take on disk. :class:`TakeError`
    if the manifest cannot be read, :class:`RecordingError` if it cannot be written; a
    camera that cannot be refined is an event in the manifest (and ``warn``), not an error.
    """
    take_dir = Path(take_dir)
    manifest = refine_cameras(take_dir, load_manifest(take_dir), warn=warn)
    write_manifest(take_dir, manifest)
    return manifest


def refine_cameras(
    take_dir: Path,
    manifest: Manifest,
    *,
    warn: Warn | None = None,
    cameras: Collection[str] | None = None,
) -> Manifest:
    """``manifest`` with each camera's ``refined`` record (of those named in ``cameras``,
    default all), ``refined_ns`` written into its index. Blocking (files and the fit): run
    it in a thread, never on an event loop."""
    cams: list[CameraEntry] = []
    events = list(manifest.events)
    end_ns = manifest.duration_ns or 0
    for cam in manifest.cameras:
        if cameras is not None and cam.name not in cameras:
            cams.append(cam)
            continue
        try:
            refined = refine_camera(take_dir, cam, manifest.start_realtime_ns)
        except (MmrecError, ValueError) as exc:
            text = f"clock refinement failed: {exc}; index.csv keeps the live times only"
            events.append(TakeEvent(end_ns, "clock", text, cam.name))
            if warn is not None:
                warn(f"camera {cam.name!r}: {text}")
            cams.append(replace(cam, refined=None))
            continue
        probes = cam.probes or (
            f"{cam.dir}/{PROBES}" if (take_dir / cam.dir / PROBES).is_file() else None
        )
        cams.append(replace(cam, refined=refined, probes=probes))
    return replace(manifest, cameras=tuple(cams), events=tuple(events))


def refined_already(take_dir: Path, cam: CameraEntry) -> bool:
    """Whether the camera has its refined record and its index the refined times."""
    if cam.refined is None:
        return False
    try:
        with open(_index_path(take_dir, cam), encoding="utf-8") as f:
            return REFINED_COLUMN in f.readline().strip().split(",")
    except OSError:
        return False


def _index_path(take_dir: Path, cam: CameraEntry) -> Path:
    # a path in a relay folder is absolute: joining keeps it
    return take_dir / (cam.index or f"{cam.dir}/{INDEX}")


def _probes_path(take_dir: Path, cam: CameraEntry) -> Path:
    return take_dir / (cam.probes or f"{cam.dir}/{PROBES}")


def refine_camera(take_dir: Path, cam: CameraEntry, start_realtime_ns: int) -> RefinedClock | None:
    """Refine one camera (see the module); None if it has no frames indexed.

    :class:`TakeError` if its files cannot be read, :class:`RecordingError` if its index
    cannot be rewritten (it is then unchanged).
    """
    cpu0 = time.thread_time()
    index = _index_path(take_dir, cam)
    try:
        table = read_index_table(index)
    except FileNotFoundError:
        return None
    n = len(table.rows)
    if n == 0:
        return None
    try:
        probes = read_probes(_probes_path(take_dir, cam))
    except FileNotFoundError:
        probes = []
    arrival = np.array(table.column("arrival_ns"), dtype=np.int64)
    live = np.array(table.column("time_ns"), dtype=np.int64)
    parsed = list(map(parse_device_ts, table.column("device_ts")))
    has = np.fromiter((d is not None for d in parsed), bool, n)
    conn = np.array(table.column("conn"), dtype=np.int64) if "conn" in table.header else None
    notes = []
    if has.all() or not has.any():
        device = np.fromiter((d or 0 for d in parsed), np.int64, n) if has.any() else None
        r = refine(ClockEvidence.of(arrival, device, probes, conn))
        refined = r.time_ns
        sel = np.arange(n)
    else:
        # Some frames came without an X-Timestamp: the others are refined; these keep
        # their live time (the clock model placed them by arrival too).
        sel = np.flatnonzero(has)
        device = np.fromiter((parsed[i] or 0 for i in sel), np.int64, sel.size)
        r = refine(
            ClockEvidence.of(arrival[sel], device, probes, None if conn is None else conn[sel])
        )
        refined = live.copy()
        refined[sel] = r.time_ns
        notes.append(f"{n - sel.size} frames without X-Timestamp keep their live time")
    write_refined(table, refined.tolist())
    shift = np.abs(refined - live)
    segs = tuple(
        RefinedSegment(
            first=int(sel[s.first]),
            frames=s.stop - s.first,
            cause=str(s.cause),
            drift_ppm=round(s.drift_ppm, 3),
            uncertainty_ns=s.uncertainty_ns,
            probes=s.probes,
        )
        for s in r.segments
    )
    offset = None
    if r.segments and r.source != "arrival":
        # segment 0: take timeline − device at its first frame; the manifest states the
        # device clock minus the recorder's wall clock, as the live ClockInfo does
        offset = -(r.segments[0].offset_ns + start_realtime_ns)
    if r.note:
        notes.insert(0, r.note)
    return RefinedClock(
        source=r.source,
        maps_to=r.maps_to,
        uncertainty_ns=r.uncertainty_ns,
        drift_ppm=None if r.drift_ppm is None else round(r.drift_ppm, 3),
        min_delay_ns=r.min_delay_ns,
        offset_ns=offset,
        probes_used=r.probes_used,
        probes_dropped=r.probes_dropped,
        outliers=r.outliers,
        segments=segs,
        shift_p50_ns=int(np.median(shift)),
        shift_max_ns=int(shift.max()),
        cpu_s=round(time.thread_time() - cpu0, 4),
        note="; ".join(notes) or None,
    )
