"""mmrec proxy: synced per-camera proxies, multiview and contact sheet from a take on disk.

Takes are written directly with CameraWriter (fast, deterministic): every frame is a flat
grey whose level encodes its frame number, with the simulator's COM record
(``tests/review/takes.py``).
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest
from av.video.frame import PictureType
from turbojpeg import TJSAMP_422

from mmrec.commands import proxy as proxy_cmd
from mmrec.errors import MmrecError
from mmrec.review import ProxyOptions, make_proxies, x264_options
from mmrec.store.index import INDEX
from tests.review.takes import TIMECODE, Cam, frame_number, patch, write_take, y_frames

THREE = [
    Cam("A", ((0.0, 2.0),)),
    Cam("B", ((0.4, 1.4),), subsample=TJSAMP_422),
    Cam("C", ((0.0, 0.6), (1.4, 2.0)), size=(240, 320)),  # portrait, with a gap
]


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    take = write_take(tmp_path_factory.mktemp("three"), THREE)
    result = make_proxies(
        take, ProxyOptions(height=120, fps=Fraction(15), gap_s=0.25, multiview_size=(640, 360))
    )
    return take, result


def test_every_file_has_the_same_duration_and_start_timecode(three: tuple[Path, object]) -> None:
    take, _ = three
    out = take / "proxies"
    files = [out / "A.mp4", out / "B.mp4", out / "C.mp4", out / "multiview.mp4"]
    for f in files:
        with av.open(str(f)) as c:
            s = c.streams.video[0]
            assert s.frames == 30, f  # 2 s at 15 fps: the union of all spans
            assert c.metadata.get("timecode") == TIMECODE or s.metadata.get("timecode") == TIMECODE
        assert len(y_frames(f)) == 30


@pytest.mark.skipif(
    subprocess.run(["which", "ffprobe"], capture_output=True).returncode != 0,
    reason="no ffprobe",
)
def test_ffprobe_shows_the_start_timecode(three: tuple[Path, object]) -> None:
    take, _ = three
    for name in ("A", "B", "C", "multiview"):
        out = subprocess.run(
            [
                "ffprobe", "-v", "error", "-show_entries", "stream_tags=timecode:format=duration",
                "-of", "default=nw=1", str(take / "proxies" / f"{name}.mp4"),
            ],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert f"TAG:timecode={TIMECODE}" in out
        assert "duration=2.000000" in out


def test_each_instant_shows_the_right_source_frame(three: tuple[Path, object]) -> None:
    take, _ = three
    a = [frame_number(y) for y in y_frames(take / "proxies" / "A.mp4")]
    assert a == list(range(30))
    b = [frame_number(y) for y in y_frames(take / "proxies" / "B.mp4")]
    # B runs 0.4..1.4 s: NO SIGNAL before it starts and after its last frame's slot
    assert b[:6] == [None] * 6
    assert b[6:21] == list(range(15))
    assert b[21:] == [None] * 9
    c = [frame_number(y) for y in y_frames(take / "proxies" / "C.mp4")]
    assert c[:9] == list(range(9))  # 0 .. 0.6 s
    # silent for 0.87 s, longer than the gap (0.25 s): NO SIGNAL throughout, never held
    assert c[9:21] == [None] * 12
    assert c[21:] == list(range(9, 18))


def test_gaps_are_black_no_signal_frames(three: tuple[Path, object]) -> None:
    take, _ = three
    ys = y_frames(take / "proxies" / "C.mp4")
    gap = ys[15]  # t = 1.0 s, in C's gap
    h = gap.shape[0]
    assert patch(gap) < 20  # black picture
    middle = gap[h // 2 - 6 : h // 2 + 6]
    assert middle.max() > 200  # the NO SIGNAL text


def test_multiview_tiles_each_camera(three: tuple[Path, object]) -> None:
    take, _ = three
    ys = y_frames(take / "proxies" / "multiview.mp4")
    y = ys[13]  # t = 0.867 s: A frame 13, B frame 7, C in its gap
    h, w = y.shape  # 3 cameras in a 2x2 grid
    tiles = [y[: h // 2, : w // 2], y[: h // 2, w // 2 :], y[h // 2 :, : w // 2]]
    assert frame_number(tiles[0]) == 13
    assert frame_number(tiles[1]) == 7
    assert frame_number(tiles[2]) is None
    assert patch(y[h // 2 :, w // 2 :]) < 20  # the empty fourth cell is black
    c = y_frames(take / "proxies" / "multiview.mp4")[5][h // 2 :, : w // 2]
    assert frame_number(c[:, w // 8 : w // 2 - w // 8]) == 5  # portrait C, pillarboxed


def test_the_multiview_with_b_frames_keeps_every_instant_in_place(
    three: tuple[Path, object],
) -> None:
    """The multiview is coded with B-frames (reordered in the stream), the proxies without;
    every multiview frame still shows its own instant, as camera A's proxy does."""
    take, _ = three
    out = take / "proxies"

    def pict_types(path: Path) -> set[PictureType]:
        with av.open(str(path)) as c:
            return {PictureType(f.pict_type) for f in c.decode(video=0)}

    assert PictureType.B in pict_types(out / "multiview.mp4")
    assert PictureType.B not in pict_types(out / "A.mp4")
    ys = y_frames(out / "multiview.mp4")
    h, w = ys[0].shape
    assert [frame_number(y[: h // 2, : w // 2]) for y in ys] == list(range(30))


@pytest.mark.parametrize("window", [1, 2, 5])
def test_the_outputs_do_not_depend_on_how_many_instants_are_in_flight(
    three: tuple[Path, object], tmp_path: Path, window: int
) -> None:
    """Workers run a strand's instants in runs as long as the window; held frames, gaps
    and the multiview's tiles must come out the same, byte for byte, whatever the runs."""
    take, _ = three
    make_proxies(
        take,
        ProxyOptions(
            height=120,
            fps=Fraction(15),
            gap_s=0.25,
            multiview_size=(640, 360),
            window=window,
            out=tmp_path,
        ),
    )
    for name in ("A.mp4", "B.mp4", "C.mp4", "multiview.mp4"):
        assert (tmp_path / name).read_bytes() == (take / "proxies" / name).read_bytes(), name


def test_the_multiview_b_frames_use_the_same_quantizer() -> None:
    opts = ProxyOptions(qp=20)
    assert x264_options(opts) == {"preset": "ultrafast", "threads": "1", "qp": "20"}
    mv = x264_options(opts, multiview=True)
    assert mv["qp"] == "20" and mv["x264-params"] == "bframes=1:b-adapt=0:pbratio=1"
    assert "x264-params" not in x264_options(ProxyOptions(multiview_bframes=None), multiview=True)


def test_contact_sheet_is_written(three: tuple[Path, object]) -> None:
    take, _ = three
    from PIL import Image

    with Image.open(take / "proxies" / "contact-sheet.jpg") as im:
        assert im.format == "JPEG" and im.size[0] >= 1280


def test_a_crashed_take_still_makes_proxies_with_a_warning(tmp_path: Path) -> None:
    take = write_take(
        tmp_path, [Cam("A", ((0.0, 1.0),)), Cam("B", ((0.0, 1.0),))], state="recording"
    )
    # the crash cut the last index line short and truncated a segment
    index = take / "A" / INDEX
    index.write_bytes(index.read_bytes()[:-9])
    seg = take / "B" / "seg-0000.mkv"
    seg.write_bytes(seg.read_bytes()[: seg.stat().st_size * 2 // 3])
    result = make_proxies(take, ProxyOptions(height=120, fps=Fraction(15), contact_sheet=False))
    assert any("not finished" in w for w in result.warnings)
    assert result.frames >= 14
    assert (take / "proxies" / "A.mp4").exists() and (take / "proxies" / "B.mp4").exists()
    b = [frame_number(y) for y in y_frames(take / "proxies" / "B.mp4")]
    assert b[:5] == list(range(5))


def test_an_unreadable_take_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{ not json")
    with pytest.raises(MmrecError, match=r"manifest\.json"):
        make_proxies(tmp_path)
    with pytest.raises(MmrecError, match=r"nothing: no such folder"):
        make_proxies(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MmrecError, match=r"no manifest\.json here"):
        make_proxies(tmp_path / "empty")


def test_cli_writes_proxies_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    take = write_take(tmp_path, [Cam("A", ((0.0, 0.5),))])
    parser = argparse.ArgumentParser()
    proxy_cmd.configure(parser)
    args = parser.parse_args(
        [str(take), "--height", "96", "--fps", "10", "--out", str(tmp_path / "px"), "--quiet"]
    )
    assert proxy_cmd.run(args) == 0
    assert (tmp_path / "px" / "A.mp4").exists()
    assert "A.mp4" in capsys.readouterr().out


def test_a_camera_keeps_its_name_beside_the_take_wide_files(tmp_path: Path) -> None:
    take = write_take(tmp_path, [Cam("multiview", ((0.0, 0.5),)), Cam("A", ((0.0, 0.5),))])
    r = make_proxies(take, ProxyOptions(height=96, fps=Fraction(15)))
    assert [c.path.name for c in r.cameras] == ["multiview.mp4", "A.mp4"]  # as its MOV
    assert r.multiview is not None and r.multiview.name == "multiview-2.mp4"


def test_proxies_relink_to_the_exported_movs_frame_for_frame(three: tuple[Path, object]) -> None:
    """Same base names, rate, start timecode and length as `mmrec export`'s MOVs, and in
    every frame the picture the MOV shows (a filler where the MOV has one)."""
    from mmrec.export import ExportOptions, export_take

    take, _ = three
    proxies = make_proxies(
        take, ProxyOptions(height=120, gap_s=0.25, out=take / "relink", contact_sheet=False)
    )
    exported = export_take(take, ExportOptions(hold_s=0.25, formats=("mov",)))
    assert (proxies.fps, proxies.frames) == (exported.rate, exported.frames) == (15, 30)
    assert proxies.start_timecode == exported.start_timecode
    for px, mov in zip(proxies.cameras, exported.cameras, strict=True):
        assert mov.file is not None and px.path.stem == mov.file.stem
        assert [frame_number(y) for y in y_frames(px.path)] == [
            frame_number(y) for y in y_frames(mov.file)
        ], px.camera
