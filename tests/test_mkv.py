"""mmrec's own Matroska writer: standard files that ffmpeg/PyAV read back exactly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmrec import mkv
from tests.helpers import sim_jpeg


@given(st.integers(min_value=0, max_value=2**56 - 2))
def test_vint_roundtrip(value: int) -> None:
    b = mkv.vint(value)
    n = len(b)
    assert b[0] >> (8 - n) == 1  # length marker
    assert int.from_bytes(b, "big") & ((1 << (7 * n)) - 1) == value


@given(st.integers(min_value=2, max_value=100_000))
def test_void_has_exact_length(total: int) -> None:
    assert len(mkv.void(total)) == total


def _write(path: Path, frames: int, *, close: bool = True) -> list[bytes]:
    w = mkv.MkvWriter(
        str(path), mkv.TrackInfo(64, 48, name="cam-a", title="cam-a", timecode="11:22:33:04")
    )
    sent = []
    for i in range(frames):
        data = sim_jpeg("cam-a", i, 1000 + i)
        sent.append(data)
        w.write_frame(500 + i * 40, data)
    if close:
        w.close()
    else:
        os.close(w._fd)  # the process died: nothing finalized
    return sent


def _read(path: Path) -> tuple[list[tuple[int, bytes]], dict[str, str], float | None]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (64, 48)
        assert s.codec_context.name == "mjpeg"
        packets = [(int(p.pts), bytes(p)) for p in c.demux(s) if p.size]
        return packets, dict(c.metadata), c.duration / 1e6 if c.duration else None


def test_frames_read_back_unchanged_with_pts_and_tags(tmp_path: Path) -> None:
    path = tmp_path / "a.mkv"
    sent = _write(path, 80)  # 80 frames at 40 ms: spans several 1 s clusters
    packets, meta, duration = _read(path)
    assert [d for _, d in packets] == sent
    assert [p for p, _ in packets] == [500 + i * 40 for i in range(80)]
    assert meta["TIMECODE"] == "11:22:33:04"
    assert duration == pytest.approx((500 + 79 * 40 + 40) / 1000, abs=0.002)


def test_unfinalized_file_is_readable_to_the_last_frame(tmp_path: Path) -> None:
    path = tmp_path / "killed.mkv"
    sent = _write(path, 60, close=False)
    packets, _, _ = _read(path)
    assert [d for _, d in packets] == sent


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")
@pytest.mark.parametrize("close", [True, False])
def test_ffprobe_reads_it_without_complaint(tmp_path: Path, close: bool) -> None:
    path = tmp_path / "p.mkv"
    _write(path, 50, close=close)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "stream=codec_name,width,height,nb_read_packets:format_tags=TIMECODE",
         "-of", "default=nw=1", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stderr == ""
    assert "codec_name=mjpeg" in out.stdout and "nb_read_packets=50" in out.stdout
    assert "TAG:TIMECODE=11:22:33:04" in out.stdout
