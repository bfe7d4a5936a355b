"""mmrec repair: unfinished segments finished by the writer's own close(), the index made
to match the files, the manifest brought in line and marked recovered; no JPEG byte
changed, no file deleted, and a second run changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import av
import pytest

from mmrec.errors import RecordingError
from mmrec.store import mkvread
from mmrec.store.ebml import TrackInfo
from mmrec.store.files import CameraFiles
from mmrec.store.index import INDEX, read_index
from mmrec.store.mkv import SegmentFile
from mmrec.store.repair import BEFORE, UNMATCHED, repair_take, take_lock
from mmrec.store.take import TICK_NS, CameraEntry, Manifest, load_manifest, rebase, write_manifest
from tests.helpers import sim_jpeg

PERIOD = 33_333_333


def _packets(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as c:
        return [(int(p.pts), bytes(p)) for p in c.demux(video=0) if p.size]


def _md5s(paths: list[Path]) -> list[str]:
    return [hashlib.md5(d).hexdigest() for p in paths for _, d in _packets(p)]


def _killed_take(tmp: Path, frames: int = 40, *, direct: bool = True) -> tuple[Path, list[bytes]]:
    """A take as a SIGKILL leaves it: segments never closed, the manifest of a moment
    before (10 frames), the index complete."""
    take = tmp / "take"
    take.mkdir()
    files = CameraFiles("cam", [take], "cam", segment_ns=1_000_000_000, direct_io=direct)
    sent = [sim_jpeg("cam", n, n) for n in range(frames)]
    for n, data in enumerate(sent):
        files.write(n * PERIOD, n * PERIOD, f"{n}.0", data)
    # never closed: the last segment and the index are left as a kill leaves them
    segs = files.stats().segments
    m = Manifest(
        take_id="t",
        started_utc="2024-01-01T00:00:00Z",
        start_realtime_ns=1_700_000_000_000_000_000,
        timecode="00:00:00:00",
        cameras=(
            CameraEntry(
                name="cam",
                dir="cam",
                url="http://x/stream",
                segments=segs[:1],
                index=f"cam/{INDEX}",
                frames=10,
                bytes=sum(map(len, sent[:10])),
            ),
        ),
    )
    write_manifest(take, m)
    return take, sent


@pytest.mark.parametrize("direct", [True, False])
def test_a_killed_take_is_finished_and_every_jpeg_byte_kept(tmp_path: Path, direct: bool) -> None:
    take, sent = _killed_take(tmp_path, direct=direct)
    segs = sorted((take / "cam").glob("seg-*.mkv"))
    assert len(segs) == 2
    assert [mkvread.scan(p.read_bytes()).complete for p in segs] == [True, False]
    before = _md5s(segs)
    assert before == [hashlib.md5(d).hexdigest() for d in sent]

    report = repair_take(take)
    assert report.state_before == "recording" and report.state_after == "recovered"
    assert [f for f in report.fixed if "finished" in f] == [
        "camera 'cam': seg-0001.mkv: finished (Cues, Duration, sizes)"
    ]
    assert all(mkvread.scan(p.read_bytes()).complete for p in segs)
    assert _md5s(segs) == before  # never a JPEG byte changed
    for p in segs:
        with av.open(str(p)) as c:
            assert c.duration and c.duration > 0  # Duration written
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", str(p)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert probe.returncode == 0 and not probe.stderr
    m = load_manifest(take)
    cam = m.cameras[0]
    assert m.state == "recovered" and m.recovery is not None
    assert cam.frames == 40 and cam.bytes == sum(map(len, sent))
    assert cam.segments == ("cam/seg-0000.mkv", "cam/seg-0001.mkv")
    assert m.duration_ns is not None and m.duration_ns >= 39 * PERIOD
    assert any("finished" in f for f in m.recovery.fixed)
    # the clock refinement the recorder did not get to: refined times in the index
    assert "clock refinement over the whole take: cam" in report.fixed
    assert cam.refined is not None
    rows = list(read_index(take / cam.index))
    assert len(rows) == 40 and all(r.refined_ns is not None for r in rows)

    # Idempotent: nothing left to fix, nothing written.
    stamp = [(p, p.stat().st_mtime_ns) for p in (*segs, take / "manifest.json", take / cam.index)]
    again = repair_take(take)
    assert not again.changed and again.state_after == "recovered"
    assert [(p, p.stat().st_mtime_ns) for p, _ in stamp] == stamp


@pytest.mark.parametrize("tail", ["cut-short", "zeros"])
def test_a_torn_tail_is_kept_in_a_void(tmp_path: Path, tail: str) -> None:
    """What a kill or a power cut leaves at a file's end: a frame cut short, or blocks the
    file grew by that were never written (zeros). Both stay in the file, inside a Void."""
    path = tmp_path / "seg.mkv"
    f = SegmentFile(str(path), TrackInfo(64, 48), direct=False)
    frames = [sim_jpeg("c", n, n) for n in range(5)]
    for n, data in enumerate(frames):
        f.write_frame(n * 33, data)
    os.close(f._fd)  # killed
    with open(path, "r+b") as fh:
        if tail == "cut-short":
            fh.truncate(path.stat().st_size - 100)
        else:
            fh.seek(0, os.SEEK_END)
            fh.write(bytes(8192))
    kept = frames[:4] if tail == "cut-short" else frames
    length = path.stat().st_size
    layout = mkvread.scan(path.read_bytes())
    assert len(layout.blocks) == len(kept) and layout.valid_end < length
    SegmentFile.resume(str(path), layout).close()
    done = mkvread.scan(path.read_bytes())
    assert done.complete and len(done.blocks) == len(kept)
    assert path.stat().st_size > length  # only added to (Cues): nothing cut off
    assert [d for _, d in _packets(path)] == kept


def test_the_index_is_made_to_match_the_files(tmp_path: Path) -> None:
    take, sent = _killed_take(tmp_path)
    index = take / "cam" / INDEX
    rows = list(read_index(index))
    assert len(rows) == 40
    lines = index.read_text().splitlines()
    # a power cut: the index lost its last 3 rows, and holds 2 rows of frames that never
    # reached the segment
    ghost = [replace(rows[-1], seq=40 + k, pts=rows[-1].pts + 1000 * (k + 1)) for k in range(2)]
    ghost_lines = [",".join(str(getattr(g, c)) for c in lines[0].split(",")) for g in ghost]
    index.write_text("\n".join([*lines[:-3], *ghost_lines]) + "\n")

    report = repair_take(take)
    fixed = " ".join(report.fixed)
    assert "3 frame(s) without a row indexed from the file" in fixed
    assert "2 row(s) without their frame taken out" in fixed
    now = list(read_index(index))
    assert [r.seq for r in now] == list(range(40))
    assert [r.size for r in now] == [len(d) for d in sent]
    assert [r.pts for r in now] == [r.pts for r in rows]
    assert now[-1].device_ts == "" and now[-1].time_ns == now[-1].pts * TICK_NS  # its pts
    assert len(list(read_index(take / "cam" / UNMATCHED))) == 2
    assert (take / "cam" / BEFORE).read_text().count("\n") == 40  # the original, as it was
    assert not repair_take(take).changed


def test_a_take_being_recorded_is_refused(tmp_path: Path) -> None:
    take, _ = _killed_take(tmp_path)
    with take_lock(take), pytest.raises(RecordingError, match="still writing"):
        repair_take(take)


def test_repair_command_says_what_it_fixed_and_a_second_run_nothing(tmp_path: Path) -> None:
    take, _ = _killed_take(tmp_path)
    cmd = [sys.executable, "-m", "mmrec", "repair", str(take)]
    check = subprocess.run([*cmd, "--check", "--json"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    would = json.loads(check.stdout)
    assert would["fixed"] and not would["changed"]
    assert load_manifest(take).state == "recording"  # --check changed nothing
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "fixed: camera 'cam': seg-0001.mkv: finished" in first.stderr
    assert "'recording' -> 'recovered'" in first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and "nothing to repair" in second.stderr


def test_a_take_whose_first_disk_filled_is_repaired_from_its_relay_copy(tmp_path: Path) -> None:
    """The first folder's disk filled up: its manifest stopped early, the take went on and
    ended in the relay folder. Repair there takes the relay's copy, which is further along."""
    take, _ = _killed_take(tmp_path)
    relay = tmp_path / "relay" / "take"
    relay.mkdir(parents=True)
    early = load_manifest(take)
    write_manifest(take, replace(early, relays=(str(relay),)))
    final = replace(
        early,
        state="finished",
        duration_ns=40 * PERIOD,
        cameras=(replace(early.cameras[0], frames=40),),
    )
    write_manifest(relay, rebase(final, take, relay))
    report = repair_take(take)
    assert any("copy in a relay folder was further along" in f for f in report.fixed)
    m = load_manifest(take)
    assert m.cameras[0].frames == 40 and m.cameras[0].segments[0] == "cam/seg-0000.mkv"
    assert m.state == "recovered" and m.relays == (str(relay),)
