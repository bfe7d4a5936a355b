"""The one H.264 writer (the preview's Matroska, the proxies' MP4), read back by ffprobe."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from mmrec.errors import RecordingError
from mmrec.picture.h264 import H264Writer, x264_options
from mmrec.picture.layout import Rect
from mmrec.picture.yuv import new_frame

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="no ffprobe")


def probe(path: Path) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-show_packets",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    info: dict = json.loads(out)  # type: ignore[type-arg]
    return info


def write(writer: H264Writer, n: int, pts: list[int] | None = None) -> None:
    frame, pic = new_frame(64, 48)
    for k in range(n):
        pic.fill(Rect(0, 0, 64, 48), (16 + 8 * k, 128, 128))
        writer.write(frame, None if pts is None else pts[k])
    writer.close()
    writer.close()  # idempotent


def test_an_mp4_at_a_constant_rate_with_its_timecode(tmp_path: Path) -> None:
    path = tmp_path / "A.mp4"
    w = H264Writer(
        path, (64, 48), rate=Fraction(25), time_base=Fraction(1, 25),
        x264=x264_options("ultrafast", qp=23), container="mp4",
        metadata={"timecode": "10:00:00:00", "title": "A"}, stream_metadata=True,
    )  # fmt: skip
    write(w, 10)
    assert w.frames == 10
    info = probe(path)
    (s,) = [s for s in info["streams"] if s["codec_type"] == "video"]
    assert (s["codec_name"], s["width"], s["height"]) == ("h264", 64, 48)
    assert s["color_range"] == "pc"  # full range, as the JPEGs were
    assert s["tags"]["timecode"] == "10:00:00:00"
    assert info["format"]["tags"]["title"] == "A"
    assert float(info["format"]["duration"]) == pytest.approx(0.4)
    assert sum(p["stream_index"] == s["index"] for p in info["packets"]) == 10


def test_a_live_matroska_keeps_given_pts_strictly_increasing(tmp_path: Path) -> None:
    path = tmp_path / "preview.mkv"
    w = H264Writer(
        path, (64, 48), rate=Fraction(10), time_base=Fraction(1, 1000),
        x264=x264_options("ultrafast", tune="zerolatency", crf=26, threads=None),
        container="matroska", container_options={"flush_packets": "1"},
        metadata={"title": "mmrec live preview"},
    )  # fmt: skip
    write(w, 5, pts=[0, 100, 100, 250, 90])  # the clock may repeat, never goes back
    info = probe(path)
    assert info["streams"][0]["codec_name"] == "h264"
    pts = sorted(round(float(p["pts_time"]) * 1000) for p in info["packets"])
    assert pts == [0, 100, 101, 250, 251]


def test_the_preview_and_proxy_x264_settings() -> None:
    assert x264_options("ultrafast", tune="zerolatency", crf=26, threads=None) == {
        "preset": "ultrafast", "tune": "zerolatency", "crf": "26",
    }  # fmt: skip
    assert x264_options("ultrafast", qp=20, crf=18) == {
        "preset": "ultrafast", "threads": "1", "crf": "18",
    }  # fmt: skip
    assert x264_options("fast", qp=23, bframes=2)["x264-params"] == (
        "bframes=2:b-adapt=0:pbratio=1"
    )


def test_a_file_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "A.mp4"
    with pytest.raises(RecordingError, match=r"cannot write .*missing/A\.mp4"):
        w = H264Writer(
            path, (64, 48), rate=Fraction(25), time_base=Fraction(1, 25),
            x264=x264_options("ultrafast", qp=23), container="mp4",
        )  # fmt: skip
        write(w, 1)  # the file is opened with the first frame
