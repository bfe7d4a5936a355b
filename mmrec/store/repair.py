"""Finish a take its recorder left unfinished (a kill, a crash, a power cut): ``mmrec repair``.

What a kill leaves: segments with "unknown" sizes and no Cues or Duration (readable, as
live Matroska is, but not seekable), an ``index.csv`` that may lack the rows of the run
of frames being written (a run's frames reach the segment before its rows reach the
index) or (after a power cut) hold rows whose frames never reached the disk, and
a manifest of a moment before, in state ``recording``. :func:`repair_take`:

1. refuses a take a recorder still writes (the recorder holds a lock on its folder);
2. finishes every unfinished segment with the writer's own close()
   (:meth:`mmrec.store.mkv.SegmentFile.resume`): cluster and segment sizes, Cues,
   SeekHead, Duration. A frame cut short at the end is kept inside a Void element;
3. reconciles each camera's index with its segments: rows whose frame is not in the
   segment are taken out (kept in ``index-unmatched.csv``), frames without a row are
   indexed from the file (their time is the file's pts, ms), the original index is kept as
   ``index-before-repair.csv``;
4. brings the manifest in line (frames, bytes, pts, segments, duration), marks the take
   ``recovered`` with what was fixed, and writes it into every folder of the take;
5. runs the whole-take clock refinement (:func:`refine_clocks`) for every camera whose
   index has no refined times (the recorder did not get to it, or step 3 rewrote it).

Never changes a JPEG byte (only element headers and sizes around them), never deletes a
file, and is idempotent: a second run finds nothing to fix and changes nothing.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Final

from mmrec import __version__
from mmrec.errors import RecordingError, TakeError
from mmrec.store.index import INDEX, INDEX_COLUMNS, INDEX_COLUMNS_V1, IndexRow, read_index
from mmrec.store.mkv import SegmentFile
from mmrec.store.mkvread import MkvLayoutError, SegmentLayout, scan
from mmrec.store.take import (
    CameraEntry,
    Manifest,
    Recovery,
    camera_segments,
    load_manifest,
    rebase,
    segment_number,
    write_manifest,
)

UNMATCHED: Final = "index-unmatched.csv"
BEFORE: Final = "index-before-repair.csv"


@dataclass
class RepairReport:
    """What :func:`repair_take` found and did."""

    take_dir: Path
    fixed: list[str] = field(default_factory=list)  # what was changed (or would be)
    problems: list[str] = field(default_factory=list)  # what could not be fixed
    state_before: str = ""
    state_after: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.fixed)


@contextlib.contextmanager
def take_lock(take_dir: Path) -> Iterator[None]:
    """Hold the take folder's lock (the recorder holds it while it writes the take);
    :class:`RecordingError` if another process has it."""
    fd = os.open(take_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecordingError(
                f"{take_dir}: a recorder is still writing this take; repair it once it stopped"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def repair_take(
    take_dir: Path, *, write: bool = True, say: Callable[[str], None] | None = None
) -> RepairReport:
    """Repair ``take_dir`` (see the module docstring); with ``write=False``, only report."""
    take_dir = Path(take_dir)
    report = RepairReport(take_dir)
    with take_lock(take_dir):
        manifest = _best_manifest(take_dir, report)
        report.state_before = manifest.state
        cams = []
        for cam in manifest.cameras:
            cams.append(_repair_camera(take_dir, manifest, cam, report, write, say))
        reconciled = _reconcile(manifest, tuple(cams), report)
        reconciled = refine_clocks(take_dir, reconciled, report, write)
        report.state_after = manifest.state
        if report.changed or manifest.state == "recording":
            if manifest.state != "recovered":
                report.fixed.append(f"take state {manifest.state!r} -> 'recovered'")
            final = _mark(reconciled, report)
            if write:
                _write_everywhere(take_dir, final, report)
            report.state_after = final.state
    return report


def refine_clocks(take_dir: Path, m: Manifest, report: RepairReport, write: bool) -> Manifest:
    """``m`` with the whole-take clock refinement (:mod:`mmrec.timeline.refined`) of every
    camera that has frames and no refined times in its index: ``refined_ns`` written into
    the index, the camera's ``refined`` record into the manifest. Cameras already refined
    are left alone (a second repair changes nothing)."""
    from mmrec.timeline.refined import refine_cameras, refined_already  # numpy, on demand

    todo = [c.name for c in m.cameras if c.frames and not refined_already(take_dir, c)]
    if not todo:
        return m
    report.fixed.append(f"clock refinement over the whole take: {', '.join(todo)}")
    if not write:
        return m
    return refine_cameras(take_dir, m, cameras=todo)


# -- the manifest ---------------------------------------------------------------------------


def _best_manifest(take_dir: Path, report: RepairReport) -> Manifest:
    """This folder's manifest, or a relay folder's copy that is further along (a full
    first disk may hold only an early one; the take's end was written where it continued)."""
    here = load_manifest(take_dir)
    best = here
    for relay in here.relays:
        with contextlib.suppress(TakeError):
            other = load_manifest(Path(relay))
            if other.take_id == here.take_id and _further(other, best):
                best = rebase(other, Path(relay), take_dir)
    if best is not here:
        report.fixed.append(
            f"manifest: the copy in a relay folder was further along ({best.state})"
        )
    return best


def _further(a: Manifest, b: Manifest) -> bool:
    rank = {"recording": 0, "recovered": 1, "finished": 2}
    frames_a = sum(c.frames for c in a.cameras)
    frames_b = sum(c.frames for c in b.cameras)
    return (rank.get(a.state, 0), frames_a) > (rank.get(b.state, 0), frames_b)


def _mark(m: Manifest, report: RepairReport) -> Manifest:
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    previous = m.recovery.fixed if m.recovery else ()
    duration = m.duration_ns
    if m.state == "recording" or duration is None:
        # to the end of the last frame of any camera (its pts + its mean frame interval)
        ends = [
            c.last_pts + (c.last_pts - c.first_pts) / max(1, c.frames - 1)
            for c in m.cameras
            if c.last_pts is not None and c.first_pts is not None
        ]
        ns_per_pts = Fraction(m.time_base) * 1_000_000_000  # ms in mmrec-take/1, 10 us since
        duration = round(max(ends) * ns_per_pts) if ends else 0
    ended = dt.datetime.fromtimestamp((m.start_realtime_ns + duration) / 1e9, dt.UTC)
    return replace(
        m,
        state="recovered",
        duration_ns=duration,
        ended_utc=m.ended_utc or ended.isoformat().replace("+00:00", "Z"),
        recovery=Recovery(
            repaired_utc=now,
            tool=f"mmrec {__version__} repair",
            fixed=(*previous, *report.fixed),
        ),
    )


def _write_everywhere(take_dir: Path, m: Manifest, report: RepairReport) -> None:
    written = 0
    for folder in (take_dir, *map(Path, m.relays)):
        if not folder.is_dir():
            continue
        copy = m if folder == take_dir else rebase(m, take_dir, folder)
        try:
            write_manifest(folder, copy)
            written += 1
        except RecordingError as exc:
            report.problems.append(str(exc))
    if not written:
        raise RecordingError(f"{take_dir}: the repaired manifest could not be written anywhere")


# -- one camera -------------------------------------------------------------------------------


@dataclass
class _Camera:
    entry: CameraEntry
    frames: int = 0
    bytes: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    width: int | None = None
    height: int | None = None
    segments: list[str] = field(default_factory=list)


def _repair_camera(
    take_dir: Path,
    m: Manifest,
    cam: CameraEntry,
    report: RepairReport,
    write: bool,
    say: Callable[[str], None] | None,
) -> _Camera:
    out = _Camera(cam)
    tick_ns = int(Fraction(m.time_base) * 1_000_000_000)  # the index's pts unit
    # segment number -> (pts, size) of each frame; None: another muxer's (left alone)
    blocks: dict[int, list[tuple[int, int]] | None] = {}
    for path in camera_segments(take_dir, cam, m.relays):
        n = segment_number(path)
        layout = _finish_segment(path, cam.name, report, write)
        if say is not None:
            say(f"camera {cam.name!r}: {path.name} checked")
        if layout is None:
            continue
        # frames at the index's pts unit (a file counts in its own TimestampScale)
        blocks[n] = (
            [(round(b.pts * layout.timestamp_scale / tick_ns), b.size) for b in layout.blocks]
            if layout.ours
            else None
        )
        out.segments.append(_manifest_path(take_dir, path))
        if layout.blocks:
            out.width, out.height = layout.width, layout.height
    rows = _reconcile_index(take_dir, cam, blocks, tick_ns, report, write)
    out.frames = len(rows)
    out.bytes = sum(r.size for r in rows)
    if rows:
        out.first_pts, out.last_pts = rows[0].pts, rows[-1].pts
    return out


def _manifest_path(take_dir: Path, path: Path) -> str:
    full = Path(os.path.abspath(path))
    here = Path(os.path.abspath(take_dir))
    return str(full.relative_to(here)) if full.is_relative_to(here) else str(full)


def _finish_segment(
    path: Path, camera: str, report: RepairReport, write: bool
) -> SegmentLayout | None:
    """Scan one segment; finish it if unfinished. None if it holds nothing readable."""
    try:
        layout = _scan(path)
    except (OSError, MkvLayoutError) as exc:
        report.problems.append(f"camera {camera!r}: {path}: {exc}; left as it is")
        return None
    if layout.complete or not layout.ours:
        if not layout.ours and not layout.complete:
            report.problems.append(
                f"camera {camera!r}: {path} was written by {layout.muxing_app or 'another muxer'}"
                "; left as it is (readers take it as it is)"
            )
        return layout
    what = ["Cues, Duration, sizes"]
    if layout.valid_end < layout.file_size:
        cut = layout.file_size - layout.valid_end
        what.append(f"{cut} byte(s) of a frame cut short kept in a Void")
    report.fixed.append(f"camera {camera!r}: {path.name}: finished ({'; '.join(what)})")
    if write:
        try:
            SegmentFile.resume(str(path), layout).close(sync=True)
        except OSError as exc:
            report.problems.append(f"camera {camera!r}: cannot finish {path}: {exc.strerror}")
    return layout


def _scan(path: Path) -> SegmentLayout:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise MkvLayoutError("empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm, memoryview(mm) as view:
            return scan(view)  # reads element headers only: frames stay on disk


def _reconcile_index(
    take_dir: Path,
    cam: CameraEntry,
    blocks: dict[int, list[tuple[int, int]] | None],
    tick_ns: int,
    report: RepairReport,
    write: bool,
) -> list[IndexRow]:
    """The camera's index, made to describe exactly the frames in its segments (those of
    another muxer, ``None`` in ``blocks``, keep their rows as they are)."""
    path = take_dir / (cam.index or f"{cam.dir}/{INDEX}")
    try:
        rows = list(read_index(path))
    except FileNotFoundError:
        rows = []
    by_segment: dict[int, list[IndexRow]] = {}
    for r in rows:
        by_segment.setdefault(r.segment, []).append(r)
    kept: list[IndexRow] = []
    unmatched: list[IndexRow] = []
    added = 0
    for seg in sorted(set(blocks) | set(by_segment)):
        seg_rows = by_segment.get(seg, [])
        seg_blocks = blocks.get(seg, [])
        if seg_blocks is None:
            kept += seg_rows
            continue
        i = j = 0
        while i < len(seg_rows) or j < len(seg_blocks):
            row = seg_rows[i] if i < len(seg_rows) else None
            blk = seg_blocks[j] if j < len(seg_blocks) else None
            if row is not None and blk is not None and (row.pts, row.size) == blk:
                kept.append(row)
                i += 1
                j += 1
            elif blk is not None and (row is None or blk[0] <= row.pts):
                t = blk[0] * tick_ns  # all the file knows of its time
                # its connection: the frame's before it, most likely (else the next one's)
                conn = kept[-1].conn if kept else (row.conn if row is not None else None)
                kept.append(IndexRow(0, seg, blk[0], t, t, "", blk[1], conn))
                added += 1
                j += 1
            else:
                assert row is not None
                unmatched.append(row)
                i += 1
    renumbered = [replace(r, seq=k) for k, r in enumerate(kept)]
    if renumbered == rows:
        return rows
    what = []
    if unmatched:
        what.append(f"{len(unmatched)} row(s) without their frame taken out (in {UNMATCHED})")
    if added:
        what.append(f"{added} frame(s) without a row indexed from the file (time: its pts)")
    if not what:
        what.append("rows renumbered")
    report.fixed.append(f"camera {cam.name!r}: {path.name}: {'; '.join(what)}")
    if write:
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True)
        if path.exists() and not (folder / BEFORE).exists():
            os.link(path, folder / BEFORE)  # the original stays (a hard link: no copy)
        if unmatched:
            _write_rows(folder / UNMATCHED, unmatched)
        _write_rows(path, renumbered)
    return renumbered


def _write_rows(path: Path, rows: list[IndexRow]) -> None:
    """``rows`` as an index file, atomically (temp file, fsync, rename); a take from before
    the ``conn`` column keeps its columns. Refined times are left out: they are refined
    again (:func:`refine_clocks`)."""
    columns = INDEX_COLUMNS if any(r.conn is not None for r in rows) else INDEX_COLUMNS_V1
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([getattr(r, c) if c != "conn" else r.conn or 0 for c in columns])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _reconcile(m: Manifest, cams: tuple[_Camera, ...], report: RepairReport) -> Manifest:
    """The manifest's camera entries as the files say."""
    entries = []
    for c in cams:
        e = c.entry
        segments = tuple(c.segments) if c.segments else e.segments
        fixed = replace(
            e,
            frames=c.frames,
            bytes=c.bytes,
            first_pts=c.first_pts,
            last_pts=c.last_pts,
            width=c.width if c.width is not None else e.width,
            height=c.height if c.height is not None else e.height,
            segments=segments,
        )
        if (fixed.frames, fixed.bytes, fixed.last_pts, fixed.segments) != (
            e.frames,
            e.bytes,
            e.last_pts,
            e.segments,
        ):
            report.fixed.append(
                f"camera {e.name!r}: manifest said {e.frames} frames in {len(e.segments)} "
                f"segment(s), the files hold {fixed.frames} in {len(fixed.segments)}"
            )
        entries.append(fixed)
    return replace(m, cameras=tuple(entries))
