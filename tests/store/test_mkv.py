"""mmrec's own Matroska writer: standard files that ffmpeg/PyAV read back exactly."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from pathlib import Path

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmrec.store import ebml, mkv, payload
from tests.helpers import sim_jpeg

# How frames reach the file: through the page cache; O_DIRECT with frames given as bytes
# (staged in aligned memory); O_DIRECT straight from aligned memory (the recorder's way).
MODES = ["buffered", "direct-bytes", "direct-aligned"]


def _in_aligned(data: bytes) -> memoryview:
    view = payload.aligned(len(data))
    view[:] = data
    return view.toreadonly()


@given(st.integers(min_value=0, max_value=2**56 - 2))
def test_vint_roundtrip(value: int) -> None:
    b = ebml.vint(value)
    n = len(b)
    assert b[0] >> (8 - n) == 1  # length marker
    assert int.from_bytes(b, "big") & ((1 << (7 * n)) - 1) == value


@given(st.integers(min_value=2, max_value=100_000))
def test_void_has_exact_length(total: int) -> None:
    assert len(ebml.void(total)) == total


def _write(
    path: Path,
    frames: int,
    *,
    close: bool = True,
    mode: str = "buffered",
    o_direct: bool,
    run: int = 1,
) -> list[bytes]:
    """``frames`` frames written in runs of ``run`` (one ``write_frames`` call each)."""
    w = mkv.SegmentFile(
        str(path),
        ebml.TrackInfo(64, 48, name="cam-a", title="cam-a", timecode="11:22:33:04"),
        direct=mode != "buffered",
    )
    if mode != "buffered" and o_direct:
        assert w.direct
    sent = [sim_jpeg("cam-a", i, 1000 + i) for i in range(frames)]
    # pts in 10 µs ticks: from 0.5 s, every 40 ms
    items = [
        (50_000 + i * 4_000, _in_aligned(data) if mode == "direct-aligned" else data)
        for i, data in enumerate(sent)
    ]
    for i in range(0, frames, run):
        if run == 1:
            w.write_frame(*items[i])
        else:
            w.write_frames(items[i : i + run])
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


# Frames one by one, and in runs of 5 (one system call each) that cross clusters.
RUNS = [1, 5]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("mode", MODES)
def test_frames_read_back_unchanged_with_pts_and_tags(
    tmp_path: Path, mode: str, o_direct: bool, run: int
) -> None:
    path = tmp_path / "a.mkv"
    # 80 frames at 40 ms: spans several 0.32 s clusters
    sent = _write(path, 80, mode=mode, o_direct=o_direct, run=run)
    packets, meta, duration = _read(path)
    assert [d for _, d in packets] == sent
    assert [p for p, _ in packets] == [50_000 + i * 4_000 for i in range(80)]
    assert meta["TIMECODE"] == "11:22:33:04"
    # the file's own frames, from its first (at 0.5 s) to the end of its last
    assert duration == pytest.approx(80 * 0.040, abs=0.002)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("mode", MODES)
def test_unfinalized_file_is_readable_to_the_last_frame(
    tmp_path: Path, mode: str, o_direct: bool, run: int
) -> None:
    path = tmp_path / "killed.mkv"
    sent = _write(path, 60, close=False, mode=mode, o_direct=o_direct, run=run)
    packets, _, _ = _read(path)
    assert [d for _, d in packets] == sent


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")
@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("close", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_ffprobe_reads_it_without_complaint(
    tmp_path: Path, close: bool, mode: str, o_direct: bool, run: int
) -> None:
    path = tmp_path / "p.mkv"
    _write(path, 50, close=close, mode=mode, o_direct=o_direct, run=run)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "stream=codec_name,width,height,nb_read_packets:format_tags=TIMECODE",
         "-of", "default=nw=1", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stderr == ""
    assert "codec_name=mjpeg" in out.stdout and "nb_read_packets=50" in out.stdout
    assert "TAG:TIMECODE=11:22:33:04" in out.stdout


@pytest.mark.usefixtures("needs_o_direct")
def test_direct_writes_are_whole_blocks(tmp_path: Path) -> None:
    """In direct mode the file grows by whole 4 KiB blocks, one write per frame."""
    path = tmp_path / "d.mkv"
    w = mkv.SegmentFile(str(path), ebml.TrackInfo(64, 48), direct=True)
    assert w.direct and path.stat().st_size % payload.ALIGN == 0
    for i in range(40):
        before = path.stat().st_size
        w.write_frame(i * 33, _in_aligned(sim_jpeg("cam-a", i, i)))
        after = path.stat().st_size
        assert after % payload.ALIGN == 0 and after > before
    w.close()
    assert not w.direct  # the closing writes went through the page cache


def test_falls_back_to_buffered_where_o_direct_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tmpfs and some network file systems refuse O_DIRECT at open (EINVAL)."""
    real_open = os.open

    def refusing(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(mkv.os, "open", refusing)
    path = tmp_path / "f.mkv"
    w = mkv.SegmentFile(str(path), ebml.TrackInfo(64, 48), direct=True)
    assert not w.direct
    sent = [sim_jpeg("cam-a", i, i) for i in range(10)]
    for i, data in enumerate(sent):
        w.write_frame(i * 40, _in_aligned(data))
    w.close()
    assert [bytes(p) for p in av.open(str(path)).demux(video=0) if p.size] == sent


@pytest.mark.usefixtures("needs_o_direct")
@pytest.mark.parametrize("refuse_from", [0, 5], ids=["header", "fifth-frame"])
def test_falls_back_when_direct_writes_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refuse_from: int
) -> None:
    """A file system that takes O_DIRECT at open but refuses the writes: go on buffered,
    whether that shows at the header or later."""
    import fcntl

    real_write = os.write
    writes = [0]

    def refusing(fd: int, data: bytes | memoryview) -> int:
        direct = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
        if direct and writes[0] >= refuse_from:
            raise OSError(errno.EINVAL, "Invalid argument")
        writes[0] += 1
        return real_write(fd, data)

    monkeypatch.setattr(mkv.os, "write", refusing)
    path = tmp_path / "g.mkv"
    w = mkv.SegmentFile(str(path), ebml.TrackInfo(64, 48), direct=True)
    sent = [sim_jpeg("cam-a", i, i) for i in range(10)]
    for i, data in enumerate(sent):
        w.write_frame(i * 40, _in_aligned(data))
    w.close()
    assert not w.direct
    assert [bytes(p) for p in av.open(str(path)).demux(video=0) if p.size] == sent


@pytest.mark.usefixtures("needs_o_direct")
def test_aligned_frames_go_out_without_a_copy_and_unchanged(tmp_path: Path) -> None:
    """The recorder's path: the frame's own memory is written (nothing staged), and the
    framing around it leaves the JPEG bytes as they were (the preview may read them)."""
    w = mkv.SegmentFile(str(tmp_path / "z.mkv"), ebml.TrackInfo(64, 48), direct=True)
    views = [_in_aligned(sim_jpeg("cam-a", i, i)) for i in range(30)]
    before = [bytes(v) for v in views]
    for i, v in enumerate(views):
        w.write_frame(i * 40, v)
    w.close()
    assert w.staged == 0
    assert [bytes(v) for v in views] == before


def test_a_failed_write_leaves_a_file_that_still_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full on the first frame of a new cluster: the error reaches the caller, and
    close() still finalizes what was written before it."""
    path = tmp_path / "full.mkv"
    w = mkv.SegmentFile(str(path), ebml.TrackInfo(64, 48), direct=True)
    sent = [sim_jpeg("cam-a", i, i) for i in range(30)]
    for i, data in enumerate(sent[:26]):  # 25 frames in the first 1 s cluster
        w.write_frame(i * 40, data)
    real_write, real_writev = os.write, os.writev

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mkv.os, "write", full)
    monkeypatch.setattr(mkv.os, "writev", full)
    with pytest.raises(OSError):
        w.write_frame(26 * 40 + 1000, sent[26])  # would open a new cluster
    monkeypatch.setattr(mkv.os, "write", real_write)
    monkeypatch.setattr(mkv.os, "writev", real_writev)
    w.close()
    packets, _, _ = _read(path)
    assert [d for _, d in packets] == sent[:26]


@given(st.integers(min_value=0, max_value=3 * payload.ALIGN))
def test_pad_reaches_a_block_boundary_with_a_valid_void(n: int) -> None:
    pad = mkv._pad(n)
    assert (n + pad) % payload.ALIGN == 0 and pad != 1
    if pad:
        assert len(ebml.void(pad)) == pad


@pytest.mark.parametrize("mode", ["buffered", "direct-bytes"])
def test_mkvinfo_reads_the_10_us_timestamps(tmp_path: Path, mode: str, o_direct: bool) -> None:
    """mkvtoolnix, an independent Matroska reader: the time scale, each block's time to
    the 10 µs, the clusters (at most 0.32 s each: int16 block times) and the duration."""
    mkvinfo = shutil.which("mkvinfo")
    assert mkvinfo, "mkvinfo is missing: scripts/bootstrap.sh --dev installs mkvtoolnix"
    path = tmp_path / "m.mkv"
    _write(path, 30, mode=mode, o_direct=o_direct)
    out = subprocess.run(
        [mkvinfo, "-v", "-z", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "Timestamp scale: 10000" in out
    blocks = re.findall(r"Simple block: key, track number 1, .*, timestamp ([\d:.]+)", out)
    assert blocks[:2] == ["00:00:00.500000000", "00:00:00.540000000"]
    assert len(blocks) == 30 and blocks[-1] == "00:00:01.660000000"
    clusters = re.findall(r"^\|\+ Cluster", out, re.MULTILINE)
    assert len(clusters) == 4  # 1.2 s of frames: a cluster every 0.32 s at most
    assert "Duration: 00:00:01.200000000" in out


def _items(sent: list[bytes], a: int, b: int, mode: str) -> list[tuple[int, payload.Bytes]]:
    """Frames ``a`` to ``b`` of ``sent`` at 40 ms, as ``write_frames`` takes them."""
    return [
        (i * 4_000, _in_aligned(d) if mode == "direct-aligned" else d)
        for i, d in enumerate(sent[a:b], a)
    ]


@pytest.mark.parametrize("mode", MODES)
def test_a_run_the_disk_refuses_leaves_the_file_as_it_was(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or nothing: a run whose one system call fails is not in the file at all, and
    the runs after it (once the disk takes them) follow the frames before it."""
    path = tmp_path / "r.mkv"
    w = mkv.SegmentFile(str(path), ebml.TrackInfo(64, 48), direct=mode != "buffered")
    sent = [sim_jpeg("cam-a", i, i) for i in range(12)]
    w.write_frames(_items(sent, 0, 4, mode))
    size = path.stat().st_size

    def full(fd: int, buffers: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(mkv.os, "writev", full)
        with pytest.raises(OSError, match="No space"):
            w.write_frames(_items(sent, 4, 8, mode))
    assert path.stat().st_size == size and w.frames == 4
    w.write_frames(_items(sent, 8, 12, mode))
    w.close()
    packets, _, _ = _read(path)
    assert [d for _, d in packets] == sent[:4] + sent[8:]
    assert [p for p, _ in packets] == [i * 4_000 for i in [0, 1, 2, 3, 8, 9, 10, 11]]


@pytest.mark.parametrize("mode", MODES)
def test_a_run_written_short_is_finished(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short write (a signal, a disk filling up) takes only part of a run: the rest is
    written after it (through the page cache: it is no longer aligned)."""
    path = tmp_path / "s.mkv"
    w = mkv.SegmentFile(str(path), ebml.TrackInfo(64, 48), direct=mode != "buffered")
    sent = [sim_jpeg("cam-a", i, i) for i in range(8)]
    real = os.writev
    short = [True]

    def first_buffer_only(fd: int, buffers: list[payload.Bytes]) -> int:
        if short[0]:
            short[0] = False
            return real(fd, buffers[:1])
        return real(fd, buffers)

    monkeypatch.setattr(mkv.os, "writev", first_buffer_only)
    w.write_frames(_items(sent, 0, 5, mode))
    w.write_frames(_items(sent, 5, 8, mode))
    w.close()
    packets, _, _ = _read(path)
    assert [d for _, d in packets] == sent
