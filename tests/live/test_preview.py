"""The live preview: mosaic of the latest frames, served on 127.0.0.1, written to preview.mkv."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
from turbojpeg import TJPF_RGB, TurboJPEG

from mmrec.errors import StreamFormatError
from mmrec.live.preview import LivePreview
from mmrec.live.server import BOUNDARY
from mmrec.picture.decode import Decoder
from mmrec.picture.yuv import Picture
from mmrec.sim.hostile import with_size

TJ = TurboJPEG()
RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (40, 60, 220)


def solid(rgb: tuple[int, int, int], w: int = 640, h: int = 360) -> bytes:
    img = np.empty((h, w, 3), np.uint8)
    img[...] = rgb
    data: bytes = TJ.encode(img, quality=90, pixel_format=TJPF_RGB)
    return data


def rgb_at(jpeg_bytes: bytes, x: int, y: int) -> np.ndarray:
    img = TJ.decode(jpeg_bytes, pixel_format=TJPF_RGB)
    return img[y, x].astype(int)


def near(a: np.ndarray, b: tuple[int, int, int], tol: int = 20) -> bool:
    return bool(np.all(np.abs(a - np.array(b)) <= tol))


async def fresh_mosaic(preview: LivePreview) -> bytes:
    """A JPEG of a mosaic made after this call (ticks until one has everything so far)."""
    preview.latest_jpeg()  # ask for JPEGs
    await preview.wait_tick()
    await preview.wait_tick()
    data = preview.latest_jpeg()
    assert data is not None
    return data


async def test_snapshot_and_mjpeg_feed_on_loopback(tmp_path: Path) -> None:
    async with LivePreview(tmp_path, ["A", "B", "C"], size=(320, 180), fps=20, port=0) as pv:
        assert pv.port and pv.url == f"http://127.0.0.1:{pv.port}/"
        pv.update("A", solid(RED), 0)
        pv.update("B", solid(GREEN, 360, 640), 0)  # portrait
        await fresh_mosaic(pv)
        async with aiohttp.ClientSession() as http:
            async with http.get(pv.url) as r:
                assert r.status == 200
                assert "preview.mjpeg" in await r.text()
            async with http.get(pv.url + "snapshot.jpg") as r:
                assert r.status == 200 and r.content_type == "image/jpeg"
                snap = await r.read()
            # 3 cameras on a 2x2 grid of 160x90 cells
            assert near(rgb_at(snap, 80, 30), RED)
            assert near(rgb_at(snap, 240, 30), GREEN)
            assert near(rgb_at(snap, 165, 30), (0, 0, 0))  # portrait B is pillarboxed
            async with http.get(pv.url + "preview.mjpeg") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
                parts = []
                buf = b""
                while len(parts) < 2:
                    buf += await r.content.readany()
                    while True:
                        start = buf.find(b"\r\n\r\n")
                        if start < 0 or not buf.startswith(f"--{BOUNDARY}".encode()):
                            break
                        head = buf[:start].decode()
                        n = int(head.split("Content-Length: ")[1].split("\r\n")[0])
                        if len(buf) < start + 4 + n + 2:
                            break
                        parts.append(buf[start + 4 : start + 4 + n])
                        buf = buf[start + 4 + n + 2 :]
                for p in parts:
                    assert p[:2] == b"\xff\xd8" and p[-2:] == b"\xff\xd9"
                    assert near(rgb_at(p, 80, 30), RED)
        stats = pv.stats()
        assert stats.ticks >= 2 and stats.tiles_decoded >= 2 and stats.decode_errors == 0
    with av.open(str(tmp_path / "preview.mkv")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) >= 2 and (frames[0].width, frames[0].height) == (320, 180)


async def _get(port: int, host: str | None, path: str = "/snapshot.jpg") -> tuple[int, bytes]:
    """A GET with exactly this ``Host`` header (None: none), on a plain socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = f"GET {path} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "")
        writer.write((head + "Connection: close\r\n\r\n").encode())
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


async def test_the_server_answers_only_the_names_it_serves() -> None:
    """DNS rebinding: a page on evil.example that points its name at 127.0.0.1 makes the
    browser send ``Host: evil.example``; the preview refuses it, and serves its own
    names (loopback addresses, localhost)."""
    async with LivePreview(None, ["A"], size=(320, 180), fps=20, port=0) as pv:
        pv.update("A", solid(RED), 0)
        await fresh_mosaic(pv)
        assert pv.port is not None
        for host in ("evil.example", f"evil.example:{pv.port}", "127.0.0.1.nip.io"):
            for path in ("/", "/snapshot.jpg", "/preview.mjpeg"):
                status, body = await _get(pv.port, host, path)
                assert status == 403 and b"is not served here" in body
        status, body = await _get(pv.port, None)  # HTTP/1.1 without Host: refused too
        assert status in (400, 403) and b"\xff\xd8" not in body
        for host in (f"127.0.0.1:{pv.port}", f"localhost:{pv.port}", "LOCALHOST", "[::1]"):
            status, body = await _get(pv.port, host)
            assert status == 200 and body[:2] == b"\xff\xd8"


class ManualClock:
    """A monotonic clock (ns) that moves only when the test moves it."""

    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


async def test_a_camera_that_stops_is_marked_stale_then_lost() -> None:
    clock = ManualClock()
    async with LivePreview(None, ["A", "B"], size=(320, 180), fps=20, port=None,
                           stale_after=0.3, lost_after=60, clock=clock) as pv:  # fmt: skip
        pv.update("A", solid(GREEN), 0)
        pv.update("B", solid(GREEN), 0)
        await fresh_mosaic(pv)  # both decoded
        clock.advance(0.5)  # B keeps sending, A stopped
        pv.update("B", solid(GREEN), 1)
        snap = await fresh_mosaic(pv)
        assert snap is not None
        # 2 cameras: two 160x90 pictures side by side, centred vertically (y 44..134)
        assert near(rgb_at(snap, 20, 45), (255, 0, 0), 60)  # red border on A
        assert near(rgb_at(snap, 180, 45), GREEN, 30)  # B live: its picture to the edge
        assert int(rgb_at(snap, 20, 60).sum()) < 0.7 * sum(GREEN)  # A dimmed
        pv.set_state("A", "lost")
        pv.update("B", solid(GREEN), 3)
        snap = await fresh_mosaic(pv)
        assert snap is not None
        assert near(rgb_at(snap, 20, 45), (255, 0, 0), 60)
        assert int(rgb_at(snap, 20, 60).sum()) < 0.4 * sum(GREEN)  # dimmer still
        assert near(rgb_at(snap, 180, 45), GREEN, 30)


async def test_only_changed_cameras_are_decoded_and_bad_frames_counted() -> None:
    async with LivePreview(None, ["A"], size=(320, 180), fps=30, port=None) as pv:
        pv.update("A", solid(BLUE), 0)
        for _ in range(4):
            await pv.wait_tick()
        assert pv.stats().tiles_decoded == 1  # the same frame is not decoded again
        pv.update("A", b"\xff\xd8 not a jpeg \xff\xd9", 1)
        await pv.wait_tick()
        await pv.wait_tick()
        assert pv.stats().decode_errors == 1
        assert near(rgb_at(await fresh_mosaic(pv), 160, 60), BLUE)  # still the last picture


class CountingDecoder(Decoder):
    """The process decoder, counting what it is asked to decode."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bytes] = []

    def decode(self, data: bytes | memoryview, *args: Any, **kw: Any) -> Picture:
        self.seen.append(bytes(data))
        return super().decode(data, *args, **kw)


async def test_a_frame_claiming_an_absurd_size_is_never_decoded_and_its_tile_says_why() -> None:
    absurd = with_size(solid(GREEN), 65000, 65000)
    dec = CountingDecoder()
    async with LivePreview(None, ["A", "B"], size=(320, 180), fps=20, port=None,
                           decoder=dec) as pv:  # fmt: skip
        pv.update("A", solid(GREEN), 0)
        pv.update("B", solid(GREEN), 0)
        await fresh_mosaic(pv)
        pv.update("A", absurd, 1)
        snap = await fresh_mosaic(pv)
        # A's cell (left, y 44..134) is black, not its last picture, with a red box in
        # the middle: the words
        assert near(rgb_at(snap, 10, 50), (0, 0, 0), 30)
        middle = [rgb_at(snap, x, 89) for x in range(20, 140)]
        assert any(near(px, (255, 0, 0), 80) for px in middle)
        assert near(rgb_at(snap, 180, 45), GREEN, 30)  # B goes on
        assert pv.marks()["A"] == "BAD JPEG 65000x65000"  # as the worker drew it
        pv.update("A", solid(BLUE), 2)  # a good frame again: the picture is back
        assert near(rgb_at(await fresh_mosaic(pv), 80, 89), BLUE)
    assert absurd not in dec.seen  # never handed to the decoder
    assert pv.stats().refused == 1 and pv.stats().decode_errors == 0


def test_the_decoder_refuses_an_absurd_size_itself() -> None:
    with pytest.raises(StreamFormatError, match="65000x65000: more than 8192 pixels a side"):
        Decoder().decode(with_size(solid(RED), 65000, 65000))


async def test_over_budget_tiles_are_skipped_round_robin() -> None:
    names = [f"c{i}" for i in range(8)]
    # a tiny budget: one tile per tick; every camera still gets its turn
    async with LivePreview(None, names, size=(320, 180), fps=20, port=None,
                           cpu_budget=0.0001) as pv:  # fmt: skip
        for n in names:
            pv.update(n, solid(RED, 160, 90), 0)
        while pv.stats().tiles_decoded < len(names):
            await pv.wait_tick()
        s = pv.stats()
        assert s.tiles_skipped > 0
        assert s.tiles_decoded == len(names)  # each once, none starved


def test_update_is_trivial() -> None:
    pv = LivePreview(None, ["A"], port=None)
    data = solid(RED)
    pv.update("A", data, 5)
    pv.update("Z", data, 5)  # an unknown camera joins the mosaic
    assert pv.stats().tiles_decoded == 0  # nothing decoded on the caller's thread
    assert pv.latest_jpeg() is None  # no tick yet


@pytest.mark.parametrize("size", [(321, 180), (32, 32)])
def test_bad_sizes_are_refused(size: tuple[int, int]) -> None:
    from mmrec.errors import ConfigError

    with pytest.raises(ConfigError):
        LivePreview(None, size=size)


async def test_a_camera_that_joins_later_gets_a_tile() -> None:
    async with LivePreview(None, ["A"], size=(320, 180), fps=30, port=None) as pv:
        pv.update("A", solid(RED), 0)
        snap = await fresh_mosaic(pv)
        assert near(rgb_at(snap, 160, 90), RED)  # one camera: the whole canvas
        pv.update("B", solid(BLUE), 0)  # hot-join: re-laid out side by side
        snap = await fresh_mosaic(pv)
        assert near(rgb_at(snap, 80, 60), RED)
        assert near(rgb_at(snap, 240, 60), BLUE)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="no ffprobe")
async def test_preview_mkv_lasts_as_long_as_the_clock_ran(tmp_path: Path) -> None:
    clock = ManualClock()
    async with LivePreview(tmp_path, ["A"], size=(320, 180), fps=20, port=None,
                           clock=clock) as pv:  # fmt: skip
        pv.update("A", solid(RED), 0)
        for _ in range(5):
            await pv.wait_tick()
            clock.advance(1.0)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(tmp_path / "preview.mkv")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    # 4 s between the first mosaic and the last one at least; 5 s and a few ms at most
    assert 4.0 <= float(out) <= 5.2


def test_a_camera_joining_while_a_tick_decodes_gets_a_tile() -> None:
    """The tick decodes (off the loop) between choosing tiles and drawing them; a camera
    that joins meanwhile is laid out for the drawing, not an error that stops the tick."""
    from mmrec.live.mosaic import Mosaic

    mosaic = Mosaic((320, 180), lambda: 0, 10**9, 2 * 10**9)
    mosaic.update("A", solid(RED), 0)
    jobs = mosaic.due(1.0, 10.0, 1.0)
    mosaic.update("B", solid(BLUE), 0)  # joins while the tick decodes A
    mosaic.decoded(jobs, [None] * len(jobs))
    assert [t.name for t in mosaic.tiles(0)] == ["A", "B"]
