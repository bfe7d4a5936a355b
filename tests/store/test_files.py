"""A camera's files when the disk says no: the state says so at once, lost frames are
counted with their cause and their gap, writing resumes by itself, relay folders take
over, deleted files are noticed. The disk's refusals are staged here (a full disk for
real is in tests/session/test_disk_faults.py); the clock is the test's."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import av
import pytest

from mmrec.store import muxers
from mmrec.store.files import CameraFiles, Frame
from mmrec.store.health import RETRY_NS, WriteChange, WriteState
from mmrec.store.index import read_index
from mmrec.store.payload import Bytes
from mmrec.store.relay import CameraFolder
from tests.helpers import sim_jpeg

PERIOD = 33_333_333


class Disk:
    """A staged disk: full (or failing with ``errno``) or not, as the test says (for
    writes and for statvfs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, errno_: int = errno.ENOSPC) -> None:
        self.full: set[Path] = set()  # folders whose disk is full
        real_write = muxers._MkvSegment.write

        def write(seg: muxers._MkvSegment, pts: int, data: object) -> None:
            if any(Path(seg._w.path).is_relative_to(f) for f in self.full):
                raise OSError(errno_, os.strerror(errno_))
            real_write(seg, pts, data)  # type: ignore[arg-type]

        def has_room(place: CameraFolder, folder: int, need: int) -> bool:
            return place.takes[folder] not in self.full

        monkeypatch.setattr(muxers._MkvSegment, "write", write)
        monkeypatch.setattr(CameraFolder, "has_room", has_room)


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _packets(paths: list[Path]) -> list[bytes]:
    out = []
    for p in paths:
        with av.open(str(p)) as c:
            out += [bytes(pk) for pk in c.demux(video=0) if pk.size]
    return out


def test_a_full_disk_is_said_counted_and_written_through_once_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk, clock, changes = Disk(monkeypatch), Clock(), list[WriteChange]()
    files = CameraFiles("cam", [tmp_path], "cam", clock=clock, on_change=changes.append)
    sent = [sim_jpeg("cam", n, n) for n in range(30)]

    def frame(n: int) -> None:
        clock.now = n * PERIOD
        files.write(n * PERIOD, n * PERIOD, None, sent[n])

    for n in range(10):
        frame(n)
    assert files.stats().state == WriteState.WRITING
    disk.full.add(tmp_path)
    for n in range(10, 20):  # 10 frames while full: the first fails, the rest wait
        frame(n)
    st = files.stats()
    assert st.state == WriteState.DISK_FULL and "No space left" in (st.error or "")
    assert st.lost == 10 and st.lost_causes == (("disk-full", 10),)
    assert [c.state for c in changes] == [WriteState.DISK_FULL]  # said once, at once
    disk.full.clear()
    for n in range(20, 30):
        frame(n)
    st = files.stats()
    assert st.state == WriteState.WRITING and st.error is None and st.frames == 20
    # the retry came within RETRY_NS of space returning: one frame lost after it at most
    assert st.lost <= 10 + RETRY_NS // PERIOD + 1
    lost = st.lost
    assert changes[-1].state == WriteState.WRITING and changes[-1].lost == lost
    (gap,) = st.write_gaps
    assert gap[0] == 9 * PERIOD and gap[2] == "disk-full"  # from the last frame written
    assert changes[-1].gap == gap[:2]
    files.close()
    # Same segment, resumed: every frame written is in it, in order, and indexed.
    written = [d for d in sent if d not in sent[10 : 10 + lost]]
    assert files.stats().segments == ("cam/seg-0000.mkv",)
    assert _packets([tmp_path / "cam/seg-0000.mkv"]) == written
    assert [r.size for r in read_index(tmp_path / "cam/index.csv")] == list(map(len, written))


def test_the_index_refusing_a_row_keeps_it_until_there_is_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frame reached its segment but its row found no room: the frame counts as
    written, the row waits and is written before the next one."""
    clock = Clock()
    files = CameraFiles("cam", [tmp_path], "cam", clock=clock)
    data = sim_jpeg("cam", 0, 0)
    files.write(0, 0, None, data)
    index = files._index
    real = index.flush
    refuse = [True]

    def flush() -> None:
        if refuse[0] and index._pending:
            raise OSError(errno.ENOSPC, "No space left on device")
        real()

    monkeypatch.setattr(index, "flush", flush)
    files.write(PERIOD, PERIOD, None, data)
    assert files.stats().frames == 2 and files.stats().state == WriteState.DISK_FULL
    refuse[0] = False
    clock.now = RETRY_NS
    files.write(2 * PERIOD, 2 * PERIOD, None, data)
    files.close()
    assert [r.seq for r in read_index(tmp_path / "cam/index.csv")] == [0, 1, 2]
    assert files.stats().lost == 0


def test_a_relay_folder_continues_the_take_when_the_first_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk, changes = Disk(monkeypatch), list[WriteChange]()
    first, relay = tmp_path / "a" / "take", tmp_path / "b" / "take"
    first.mkdir(parents=True)
    relay.mkdir(parents=True)
    files = CameraFiles("cam", [first, relay], "cam", clock=Clock(), on_change=changes.append)
    sent = [sim_jpeg("cam", n, n) for n in range(20)]
    for n in range(20):
        if n == 8:
            disk.full.add(first)
        files.write(n * PERIOD, n * PERIOD, None, sent[n])
    files.close()
    st = files.stats()
    assert st.lost == 0 and st.frames == 20 and st.folder == 1  # not one frame lost
    assert st.segments == ("cam/seg-0000.mkv", f"{relay}/cam/seg-0001.mkv")
    assert st.index == f"{relay}/cam/index.csv"
    assert [c.state for c in changes] == [WriteState.WRITING]  # the move is the news
    assert "continuing in" in changes[0].detail and str(relay) in changes[0].detail
    paths = [first / "cam/seg-0000.mkv", relay / "cam/seg-0001.mkv"]
    assert _packets(paths) == sent
    rows = list(read_index(relay / "cam/index.csv"))  # one index with every row
    assert [r.segment for r in rows] == [0] * 8 + [1] * 12
    assert len(list(read_index(first / "cam/index.csv"))) == 8  # the old one stays


def test_files_deleted_under_the_writer_are_noticed_and_made_again(tmp_path: Path) -> None:
    clock, changes = Clock(), list[WriteChange]()
    files = CameraFiles("cam", [tmp_path / "take"], "cam", clock=clock, on_change=changes.append)
    sent = [sim_jpeg("cam", n, n) for n in range(10)]
    for n in range(5):
        files.write(n * PERIOD, n * PERIOD, None, sent[n])
    shutil.rmtree(tmp_path / "take")  # rm -rf of the take folder, mid-take
    files.check()  # the pool's timer runs this at least every second
    st = files.stats()
    assert st.state == WriteState.GONE and "were deleted" in (st.error or "")
    assert changes[-1].state == WriteState.GONE
    clock.now = RETRY_NS
    for n in range(5, 10):
        files.write(n * PERIOD, n * PERIOD, None, sent[n])
    files.close()
    st = files.stats()
    assert st.state == WriteState.CLOSED
    # made again on the same disk: a new segment and index, numbering and seq go on
    assert st.segments == ("cam/seg-0001.mkv",)  # the deleted one is no longer claimed
    assert _packets([tmp_path / "take/cam/seg-0001.mkv"]) == sent[5:]
    assert [r.seq for r in read_index(tmp_path / "take/cam/index.csv")] == [5, 6, 7, 8, 9]
    # the counts say what is on disk; the deleted frames are lost, with their cause and span
    assert (st.frames, st.lost, st.lost_causes) == (5, 5, (("deleted", 5),))
    assert st.bytes == sum(len(d) for d in sent[5:])
    assert (0, 4 * PERIOD, "deleted") in st.write_gaps
    assert any("5 frame(s) written to seg-0000.mkv are gone" in c.detail for c in changes)


def test_a_segment_deleted_alone_leaves_the_counts_and_the_index(tmp_path: Path) -> None:
    files = CameraFiles("cam", [tmp_path], "cam", segment_ns=3 * PERIOD, clock=Clock())
    sent = [sim_jpeg("cam", n, n) for n in range(9)]
    for n in range(6):  # seg-0000: frames 0-2, seg-0001: frames 3-5
        files.write(n * PERIOD, n * PERIOD, None, sent[n])
    (tmp_path / "cam/seg-0000.mkv").unlink()  # someone deletes a finished segment
    files.close()
    st = files.stats()
    assert st.segments == ("cam/seg-0001.mkv",) and st.frames == 3
    assert st.lost_causes == (("deleted", 3),)
    rows = list(read_index(tmp_path / "cam/index.csv"))
    assert [(r.seq, r.segment) for r in rows] == [(3, 1), (4, 1), (5, 1)]
    assert _packets([tmp_path / "cam/seg-0001.mkv"]) == sent[3:6]
    assert (st.first_pts, st.last_pts) == (rows[0].pts, rows[-1].pts)


def test_the_last_segment_deleted_leaves_the_last_pts_on_disk(tmp_path: Path) -> None:
    files = CameraFiles("cam", [tmp_path], "cam", segment_ns=3 * PERIOD, clock=Clock())
    for n in range(6):
        files.write(n * PERIOD, n * PERIOD, None, sim_jpeg("cam", n, n))
    (tmp_path / "cam/seg-0001.mkv").unlink()  # the one being written
    files.close()
    st = files.stats()
    rows = list(read_index(tmp_path / "cam/index.csv"))
    assert st.frames == len(rows) == 3
    assert (st.first_pts, st.last_pts) == (rows[0].pts, rows[-1].pts)


def test_a_file_that_cannot_be_looked_at_is_not_taken_for_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No permission to look (EACCES) proves nothing: its frames stay counted."""
    files = CameraFiles("cam", [tmp_path], "cam", clock=Clock())
    for n in range(3):
        files.write(n * PERIOD, n * PERIOD, None, sim_jpeg("cam", n, n))
    real_stat = os.stat

    def stat(path: object, *args: object, **kw: object) -> os.stat_result:
        if str(path).endswith(".mkv"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", stat)
    files.close()  # looks at every segment's path (files deleted since the last check?)
    monkeypatch.undo()
    st = files.stats()
    assert st.frames == 3 and st.lost == 0 and st.segments == ("cam/seg-0000.mkv",)


@pytest.mark.parametrize(
    ("err", "state"),
    [
        (errno.ENOSPC, WriteState.DISK_FULL),
        (errno.EDQUOT, WriteState.DISK_FULL),
        (errno.EIO, WriteState.IO_ERROR),
        (errno.EROFS, WriteState.GONE),
    ],
)
def test_each_failure_is_named_and_recovered_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int, state: WriteState
) -> None:
    disk, clock = Disk(monkeypatch, err), Clock()
    files = CameraFiles("cam", [tmp_path], "cam", clock=clock)
    data = sim_jpeg("cam", 0, 0)
    files.write(0, 0, None, data)
    disk.full.add(tmp_path)
    files.write(PERIOD, PERIOD, None, data)
    st = files.stats()
    assert st.state == state and os.strerror(err) in (st.error or "")
    assert st.lost_causes == ((str(state), 1),)
    disk.full.clear()
    clock.now = RETRY_NS
    files.write(2 * PERIOD, 2 * PERIOD, None, data)
    files.close()
    st = files.stats()
    assert st.frames == 2 and st.lost == 1 and st.error is None  # the current error: none
    assert os.strerror(err) in (st.last_failure or "")  # what it was, kept for the summary
    assert st.write_gaps == ((0, 2 * PERIOD, str(state)),)


def test_a_run_the_disk_cannot_take_whole_is_written_frame_by_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of frames goes into the segment in one system call, all or nothing. When the
    disk refuses it, the frames are tried one by one: those that fit are written, the
    rest are counted lost, and the index and the file agree."""
    room = [100]  # frames the disk still takes
    runs: list[int] = []
    real_write, real_run = muxers._MkvSegment.write, muxers._MkvSegment.write_frames

    def write(seg: muxers._MkvSegment, pts: int, data: Bytes) -> None:
        if room[0] < 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(seg, pts, data)
        room[0] -= 1

    def write_frames(seg: muxers._MkvSegment, frames: list[tuple[int, Bytes]]) -> None:
        runs.append(len(frames))
        if room[0] < len(frames):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_run(seg, frames)
        room[0] -= len(frames)

    monkeypatch.setattr(muxers._MkvSegment, "write", write)
    monkeypatch.setattr(muxers._MkvSegment, "write_frames", write_frames)
    clock = Clock()
    files = CameraFiles("cam", [tmp_path], "cam", clock=clock)
    sent = [sim_jpeg("cam", n, n) for n in range(9)]
    frames = [Frame(d, n * PERIOD, n * PERIOD, None) for n, d in enumerate(sent)]
    files.write_frames(frames[:1])  # opens the segment
    files.write_frames(frames[1:5])  # one run
    room[0] = 2
    files.write_frames(frames[5:9])  # refused whole: 5 and 6 fit, 7 and 8 do not
    assert runs == [4, 4]
    st = files.stats()
    assert (st.frames, st.lost, st.state) == (7, 2, WriteState.DISK_FULL)
    files.close()
    assert _packets([tmp_path / s for s in st.segments]) == sent[:7]
    rows = list(read_index(tmp_path / "cam" / "index.csv"))
    assert [r.seq for r in rows] == list(range(7))
    assert [r.time_ns for r in rows] == [n * PERIOD for n in range(7)]


def test_a_run_across_segment_boundaries_starts_each_segment_where_it_should(
    tmp_path: Path,
) -> None:
    """One call with ten frames: a new segment every 3 frame periods and where the
    picture size changes (frame 5 is 32x24), each frame in the segment it would be in
    if written alone; ffprobe-grade readers (PyAV) and the index agree."""
    files = CameraFiles("cam", [tmp_path], "cam", segment_ns=3 * PERIOD, clock=Clock())
    sent = [sim_jpeg("cam", n, n, *((32, 24) if n == 5 else (64, 48))) for n in range(10)]
    files.write_frames([Frame(d, n * PERIOD, n * PERIOD, None) for n, d in enumerate(sent)])
    files.close()
    st = files.stats()
    # 0-2 | 3-4 | 5 (32x24) | 6-8 (a new size opens a segment, its clock with it) | 9
    per_segment = [len(_packets([tmp_path / s])) for s in st.segments]
    assert per_segment == [3, 2, 1, 3, 1]
    assert _packets([tmp_path / s for s in st.segments]) == sent
    rows = list(read_index(tmp_path / "cam" / "index.csv"))
    assert [r.segment for r in rows] == [0, 0, 0, 1, 1, 2, 3, 3, 3, 4]
    # the same frames written one call each: the same files
    alone = CameraFiles("cam", [tmp_path / "alone"], "cam", segment_ns=3 * PERIOD, clock=Clock())
    for n, d in enumerate(sent):
        alone.write(n * PERIOD, n * PERIOD, None, d)
    alone.close()
    assert [len(_packets([tmp_path / "alone" / s])) for s in alone.stats().segments] == (
        per_segment
    )
