"""The live preview's picture work runs in one child process: niced, fed the due JPEGs
once per tick, and never able to take the recorder down with it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from mmrec.live import preview as preview_module
from mmrec.live.channel import Tick, Ticked, receive, send
from mmrec.live.mosaic import DecodeJob
from mmrec.live.preview import LivePreview
from mmrec.picture.layout import Rect
from mmrec.store.payload import aligned
from tests.helpers import wait_for
from tests.live.test_preview import BLUE, GREEN, RED, fresh_mosaic, near, rgb_at, solid

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def nice_of(pid: int) -> int:
    """The process's niceness, from /proc (field 19 of stat, after the command's ')')."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


def gone(pid: int) -> bool:
    """No such process, not even a zombie waiting to be reaped."""
    return not Path(f"/proc/{pid}").exists()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def read_only_payload(data: bytes) -> memoryview:
    """A frame as the recorder hands it on: a read-only view into numpy-backed memory."""
    view = aligned(len(data))
    view[:] = data
    return view.toreadonly()


async def test_the_pictures_are_made_in_a_niced_child_that_stop_ends(tmp_path: Path) -> None:
    fds = open_fds()
    async with LivePreview(tmp_path, ["A", "B"], size=(320, 180), fps=20, port=None) as pv:
        pid = pv.worker_pid
        assert pid is not None and pid != os.getpid()
        assert nice_of(pid) >= nice_of(os.getpid()) + 10 or nice_of(pid) == 19
        assert str(os.getpid()) in Path(f"/proc/{pid}/stat").read_text().split()[3]  # our child
        pv.update("A", read_only_payload(solid(RED)), 0)
        pv.update("B", read_only_payload(solid(BLUE)), 0)
        snap = await fresh_mosaic(pv)
        # two cameras side by side: each tile shows the frame it was given
        assert near(rgb_at(snap, 80, 90), RED)
        assert near(rgb_at(snap, 240, 90), BLUE)
        assert pv.stats().error is None
    assert gone(pid) and pv.stats().error is None  # ended as told, not as a failure
    assert open_fds() <= fds  # the socket and anything else of the worker's is closed


async def test_a_killed_worker_is_reported_and_the_recorder_goes_on(tmp_path: Path) -> None:
    async with LivePreview(tmp_path, ["A"], size=(320, 180), fps=20, port=0) as pv:
        pv.update("A", solid(GREEN), 0)
        await fresh_mosaic(pv)
        pid = pv.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: pv.stats().error is not None, 10, "the death noticed")
        error = pv.stats().error
        assert error is not None and "picture worker died" in error
        assert "signal 9" in error
        for i in range(100):  # the recorder's side goes on: frames are still taken
            pv.update("A", solid(BLUE), i)
        ticks = pv.stats().ticks
        assert pv.latest_jpeg() is not None  # the last mosaic is still there to see
        assert await pv.latest_jpeg_async() is not None  # and no wait for one that won't come
        await pv.switch_file(tmp_path / "next")  # says nothing more, raises nothing
        assert pv.stats().ticks == ticks and pv.stats().error == error
    assert gone(pid)
    assert pv.stats().error == error


async def test_a_hung_worker_is_killed_after_the_tick_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preview_module, "TICK_TIMEOUT_S", 0.5)
    async with LivePreview(None, ["A"], size=(320, 180), fps=20, port=None) as pv:
        pv.update("A", solid(GREEN), 0)
        await fresh_mosaic(pv)
        pid = pv.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing
        try:
            await wait_for(lambda: pv.stats().error is not None, 10, "the hang noticed")
        finally:
            if not gone(pid):
                os.kill(pid, signal.SIGCONT)
        assert "did not answer Tick in 0.5 s" in (pv.stats().error or "")
    assert gone(pid)


async def test_a_worker_that_cannot_start_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mmrec.live.channel.sys.executable", "/bin/false")
    async with LivePreview(tmp_path, ["A"], size=(320, 180), fps=20, port=0) as pv:
        error = pv.stats().error
        assert error is not None and "picture worker died (exit status 1)" in error
        pv.update("A", solid(GREEN), 0)  # frames are still taken, and dropped
        assert pv.url is not None  # the page is served, without mosaics
        assert await pv.latest_jpeg_async() is None
    assert not (tmp_path / "preview.mkv").exists()


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="no ffprobe")
async def test_switch_file_writes_one_preview_per_take_folder(tmp_path: Path) -> None:
    folders = [tmp_path / "take1", tmp_path / "take2"]
    for f in folders:
        f.mkdir()
    async with LivePreview(None, ["A"], size=(320, 180), fps=20, port=None) as pv:
        for i, folder in enumerate(folders):
            await pv.switch_file(folder)
            pv.update("A", solid(RED), i)
            while pv.stats().frames_written < 5:
                await pv.wait_tick()
        await pv.switch_file(None)  # between takes: no file
        await pv.wait_tick()
        await pv.wait_tick()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.mkv")) == [
        Path("take1/preview.mkv"),
        Path("take2/preview.mkv"),
    ]
    for folder in folders:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
             "-show_entries", "stream=codec_name,width,height,nb_read_frames",
             "-of", "csv=p=0", str(folder / "preview.mkv")],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        codec, width, height, frames = out.split(",")
        assert (codec, width, height) == ("h264", "320", "180")
        assert int(frames) >= 5


def test_a_tick_crosses_the_socket_with_its_jpegs_as_raw_records() -> None:
    """The JPEGs travel as their own records, never inside the pickled part."""
    frames = [read_only_payload(solid(RED)), read_only_payload(solid(BLUE, 360, 640))]
    tick = Tick(
        5,
        1,
        (),
        tuple(DecodeJob(i, f, Rect(0, 0, 160, 90), 7, 1) for i, f in enumerate(frames)),
        True,
    )
    a, b = socket.socketpair()
    with Connection(a.detach()) as ours, Connection(b.detach()) as theirs:
        send(ours, tick)
        header = theirs.recv_bytes()
        assert len(header) < 1000 < min(f.nbytes for f in frames)
        assert [theirs.recv_bytes() for _ in frames] == [bytes(f) for f in frames]
        send(ours, tick)
        got = receive(theirs)
        assert isinstance(got, Tick) and got.now_ns == 5 and got.want_jpeg
        assert [j.data for j in got.jobs] == [bytes(f) for f in frames]
        assert [(j.index, j.version, j.epoch) for j in got.jobs] == [(0, 7, 1), (1, 7, 1)]
        answer = Ticked((None, None), 1.5, 3, None, None, solid(GREEN))
        send(theirs, answer)
        assert receive(ours) == answer
