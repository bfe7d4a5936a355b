"""Every file of a take is right on its own, as ffprobe and an editor read it.

A take recorded through :class:`Take` from simulated phones with clock offsets of seconds:
one records throughout, one joins late, one stalls (it leaves and comes back), with a new
segment every 2 s. Read only with ffprobe/ffmpeg, the CSV index and the manifest (none of
mmrec's readers), each segment:

- carries the time-of-day timecode of its *own* first frame, counted at its camera's rate
  in the take's zone (``utc_offset_s``), so ``ffmpeg -c copy`` to MOV keeps it at its
  place when an editor syncs by timecode (checked on the MOV with ffprobe);
- lasts as long as its own frames (Matroska Duration);
- has pts equal to the index's aligned capture time to within rounding at its resolution
  (10 µs);
and a camera given only by its address is named and foldered by its ``/status``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mmrec.ingest.stream import IngestConfig
from mmrec.session.identify import CameraRequest
from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig
from mmrec.store.take import Manifest, load_manifest
from tests.audit import audit
from tests.helpers import loopback_mesh, wait_for

NS = 1_000_000_000
FPS = 30
NODES = [
    NodeConfig("steady", width=160, height=120, fps=FPS, ring=4, clock_offset_s=2.5,
               drift_ppm=40, jitter_ms=5, delay_ms=5),
    NodeConfig("late", width=160, height=120, fps=FPS, ring=4, clock_offset_s=-1.3,
               drift_ppm=-30, jitter_ms=5, delay_ms=10),
    NodeConfig("gappy", width=160, height=120, fps=FPS, ring=4, clock_offset_s=0.6,
               jitter_ms=5, delay_ms=15),
]  # fmt: skip


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: scripts/bootstrap.sh --dev installs it"
    return path


async def _record(out: Path, ingest: IngestConfig) -> Path:
    async with (
        loopback_mesh(NODES) as mesh,
        Take(out, ingest_config=ingest, segment_seconds=2.0) as take,
    ):

        def frames(folder: str) -> int:
            return next((s.writer.frames for s in take.status() if s.dir == folder), 0)

        # given by address only: named by its /status deviceName
        steady, gappy = await take.join(
            [CameraRequest(mesh["steady"].url), CameraRequest(mesh["gappy"].url)]
        )
        await wait_for(lambda: frames(steady) >= 45, 30, "1.5 s of frames")
        (late,) = await take.join([CameraRequest(mesh["late"].url, "late")])
        mesh["gappy"].stall()
        await wait_for(lambda: frames(steady) >= 100, 30, "the stall")
        mesh["gappy"].resume()
        await wait_for(lambda: frames(late) >= 150 and frames(gappy) >= 150, 40, "5 s more")
    return take.dir


@pytest.fixture(scope="module")
def take_dir(tmp_path_factory: pytest.TempPathFactory, fast_ingest: IngestConfig) -> Path:
    return asyncio.run(_record(tmp_path_factory.mktemp("files"), fast_ingest))


def _probe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [_tool("ffprobe"), "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stderr == "", out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _timecode(m: Manifest, t_s: float, fps: int) -> str:
    """The time-of-day timecode (non-drop) of take time ``t_s``, computed from the
    manifest alone: wall clock at the start, the zone, the frame it falls in."""
    assert m.utc_offset_s is not None
    tod_ns = (m.start_realtime_ns + m.utc_offset_s * NS) % (86_400 * NS) + round(t_s * NS)
    frames = tod_ns * fps // NS
    s, f = divmod(frames, fps)
    return f"{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def _segments(take_dir: Path) -> list[tuple[Any, str]]:
    m = load_manifest(take_dir)
    return [(cam, seg) for cam in m.cameras for seg in cam.segments]


def test_the_independent_auditor_passes_it(take_dir: Path) -> None:
    assert audit(take_dir).startswith("ok: 3 camera(s)")


def test_cameras_given_by_address_are_named_by_their_status(take_dir: Path) -> None:
    m = load_manifest(take_dir)
    assert [c.name for c in m.cameras] == ["steady", "gappy", "late"]
    assert [c.dir for c in m.cameras] == ["steady", "gappy", "late"]
    assert all(c.url.startswith("http://127.0.0.1:") for c in m.cameras)  # the address stays
    assert [c.model for c in m.cameras] == ["mmcam-sim"] * 3
    assert [c.nominal_rate for c in m.cameras] == ["30"] * 3
    assert m.utc_offset_s is not None and m.zone
    assert len(m.cameras[0].segments) >= 4  # a new segment every 2 s


def test_each_segment_carries_the_timecode_of_its_own_first_frame(take_dir: Path) -> None:
    m = load_manifest(take_dir)
    starts = {}
    for cam, seg in _segments(take_dir):
        doc = _probe(take_dir / seg, "-show_entries", "format=start_time:format_tags=TIMECODE")
        first = float(doc["format"]["start_time"])
        assert doc["format"]["tags"]["TIMECODE"] == _timecode(m, first, FPS), seg
        starts.setdefault(cam.name, first)
    # the late joiner's first file starts (and is stamped) well after the others'
    assert starts["late"] > starts["steady"] + 1.0


def test_each_segment_lasts_as_long_as_its_own_frames(take_dir: Path) -> None:
    for _, seg in _segments(take_dir):
        doc = _probe(
            take_dir / seg, "-show_entries", "format=duration:packet=pts_time", "-select_streams",
            "v:0",
        )  # fmt: skip
        pts = [float(p["pts_time"]) for p in doc["packets"]]
        span = pts[-1] - pts[0]
        # its first frame to the end of its last (one nominal frame more)
        assert float(doc["format"]["duration"]) == pytest.approx(span + 1 / FPS, abs=1e-4), seg


def test_file_pts_are_the_aligned_capture_times(take_dir: Path) -> None:
    m = load_manifest(take_dir)
    assert m.time_base == "1/100000"
    for cam in m.cameras:
        with open(take_dir / cam.index, newline="") as f:
            times = [int(r["time_ns"]) for r in csv.DictReader(f)]
        pts: list[float] = []
        for seg in cam.segments:
            doc = _probe(
                take_dir / seg, "-show_entries", "packet=pts,time_base:stream=time_base",
                "-select_streams", "v:0",
            )  # fmt: skip
            assert doc["streams"][0]["time_base"] == "1/100000"
            pts += [int(p["pts"]) * 10_000 for p in doc["packets"]]  # ns
        assert len(pts) == len(times) == cam.frames
        worst = max(abs(p - t) for p, t in zip(pts, times, strict=True))
        assert worst <= 5_000, f"{cam.name}: pts {worst} ns from the index time"  # half a tick


def test_a_segment_copied_to_mov_keeps_its_place_by_timecode(
    take_dir: Path, tmp_path: Path
) -> None:
    """What an editor does with a camera file: ``ffmpeg -i seg.mkv -c copy seg.mov``, then
    syncs by timecode. The MOV's timecode track names its first frame's time of day."""
    m = load_manifest(take_dir)
    for cam, seg in _segments(take_dir):
        mov = tmp_path / f"{cam.dir}-{Path(seg).stem}.mov"
        subprocess.run(
            [_tool("ffmpeg"), "-v", "error", "-i", str(take_dir / seg), "-c", "copy", str(mov)],
            check=True, capture_output=True,
        )  # fmt: skip
        first = float(
            _probe(take_dir / seg, "-show_entries", "format=start_time")["format"]["start_time"]
        )
        doc = _probe(mov, "-show_entries", "stream=codec_type,start_time:stream_tags=timecode")
        video = next(s for s in doc["streams"] if s["codec_type"] == "video")
        assert float(video["start_time"]) == 0  # its first frame is where the timecode starts
        assert video["tags"]["timecode"] == _timecode(m, first, FPS), (seg, first)


async def test_names_from_status_stay_unique_and_silence_keeps_the_address(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    """Two phones that call themselves the same are told apart by address; an address
    where nothing answers keeps the address as its name, and the take says why."""
    twin = [NodeConfig("same", width=64, height=48, ring=2)]
    async with (
        loopback_mesh(twin) as one,
        loopback_mesh(twin) as two,
        Take(tmp_path, ingest_config=fast_ingest) as take,
    ):
        a, b = one.nodes[0], two.nodes[0]
        silent = "127.0.0.1:9"  # the discard port: nothing listens there
        folders = await take.join(
            [CameraRequest(a.url), CameraRequest(b.url), CameraRequest(silent)], timeout=0.5
        )
        m = take.manifest()
    assert [c.name for c in m.cameras] == ["same", f"same@127.0.0.1:{b.port}", silent]
    assert folders == [c.dir for c in m.cameras]
    assert folders == ["same", f"same-127.0.0.1-{b.port}", "127.0.0.1-9"]
    assert m.cameras[2].model is None and m.cameras[2].nominal_rate is None
    assert any(e.camera == silent and "no identity" in e.detail for e in m.events), m.events
