"""The one take reader: each frame's time and JPEG, whatever a crash or a muxer left."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrec.errors import ConfigError, TakeError
from mmrec.store.index import INDEX
from mmrec.store.reader import open_camera, open_cameras
from mmrec.store.take import CameraEntry, Manifest, write_manifest
from mmrec.store.writer import CameraWriter, Frame
from tests.helpers import sim_jpeg

NS = 1_000_000_000


def _take(root: Path, muxer: str = "mkv", frames: int = 40) -> tuple[Manifest, list[bytes]]:
    """One camera, frames every 33.3 ms, two of them 3 µs apart (one 10 µs tick: bumped)."""
    w = CameraWriter("A", root, "A", muxer=muxer, segment_ns=NS // 2)
    sent = []
    for k in range(frames):
        t = k * NS // 30 if k != 21 else 20 * NS // 30 + 3_000
        data = sim_jpeg("A", k, t)
        sent.append(data)
        assert w.offer(Frame(data, t, t, None))
    w.close()
    st = w.stats()
    entry = CameraEntry("A", "A", "sim", segments=st.segments, index=f"A/{INDEX}", frames=st.frames)
    m = Manifest("t", "2024-01-01T00:00:00Z", 0, "10:00:00:00", (entry,), state="finished")
    write_manifest(root, m)
    return m, sent


@pytest.mark.parametrize("muxer", ["mkv", "pyav"])
def test_every_row_gets_its_own_jpeg_whatever_the_files_count_in(
    tmp_path: Path, muxer: str
) -> None:
    """PyAV's files count ms, the index 10 µs: rows still find their packets."""
    m, sent = _take(tmp_path, muxer)
    cam = open_camera(tmp_path, m, m.cameras[0])
    assert len(cam.segments) >= 2 and cam.time_column == "time_ns"
    got = [(i, bytes(p)) for i, p in cam.packets()]
    assert got == list(enumerate(sent))
    assert (cam.missing, cam.unindexed, cam.warnings) == (0, 0, [])
    assert all(b > a for a, b in zip(cam.times, cam.times[1:], strict=False))


def test_refined_times_are_used_and_unknown_columns_ignored(tmp_path: Path) -> None:
    m, _ = _take(tmp_path, frames=5)
    index = tmp_path / "A" / INDEX
    lines = index.read_text().splitlines()
    out = [lines[0] + ",future,refined_ns"]
    out += [f"{line},x,{1000 + 7 * k}" for k, line in enumerate(lines[1:])]
    index.write_text("\n".join(out) + "\n")
    cam = open_camera(tmp_path, m, m.cameras[0])
    assert cam.times == [1000 + 7 * k for k in range(5)] and cam.time_column == "refined_ns"
    assert [i for i, p in cam.packets() if p is not None] == list(range(5))


def test_an_index_without_its_columns_is_a_take_error_naming_the_camera(tmp_path: Path) -> None:
    m, _ = _take(tmp_path, frames=3)
    (tmp_path / "A" / INDEX).write_text("seq,segment\n0,0\n")
    with pytest.raises(TakeError, match=r"camera 'A'.*no pts, time_ns"):
        open_camera(tmp_path, m, m.cameras[0])


def test_a_camera_without_its_index_is_read_from_its_files(tmp_path: Path) -> None:
    m, sent = _take(tmp_path, frames=12)
    (tmp_path / "A" / INDEX).unlink()
    cam = open_camera(tmp_path, m, m.cameras[0])
    assert any("using the files' own times" in w for w in cam.warnings)
    assert cam.time_column == "pts" and len(cam.times) == 12
    assert abs(cam.times[5] - 5 * NS // 30) <= 5_000  # the pts: rounded to 10 µs
    assert [bytes(p) for _, p in cam.packets()] == sent


def test_what_a_crash_leaves_is_counted_not_fatal(tmp_path: Path) -> None:
    m, sent = _take(tmp_path, frames=40)
    last = tmp_path / m.cameras[0].segments[-1]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # cut short
    index = tmp_path / "A" / INDEX
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines[:3] + lines[4:]) + "\n")  # row of frame 2 lost
    cam = open_camera(tmp_path, m, m.cameras[0])
    got = list(cam.packets())
    assert len(got) == 39 and cam.unindexed == 1  # frame 2's packet has no row
    shown = [bytes(p) for _, p in got if p is not None]
    assert shown == [d for k, d in enumerate(sent) if k != 2][: len(shown)]
    assert cam.missing == 39 - len(shown) > 0  # rows whose JPEG was cut off: None


def test_cameras_are_chosen_by_name_or_folder(tmp_path: Path) -> None:
    m, _ = _take(tmp_path, frames=2)
    assert [c.name for c in open_cameras(tmp_path, m, ("A",))] == ["A"]
    with pytest.raises(ConfigError, match="no camera 'B' in take t"):
        open_cameras(tmp_path, m, ("B",))


@pytest.mark.parametrize("muxer", ["mkv", "pyav"])
def test_one_frame_is_found_by_seeking(tmp_path: Path, muxer: str) -> None:
    m, sent = _take(tmp_path, muxer)
    cam = open_camera(tmp_path, m, m.cameras[0])
    for i in (0, 14, 20, 21, 22, 39):  # segment starts and ends, the bumped pair
        packet = cam.packet_at(i)
        assert packet is not None and bytes(packet) == sent[i], i
