"""Proxy frames drawn in place: a held frame's labels are drawn once, not stacked; a frame
that cannot be decoded shows the last good picture.

Proxy frames are reused and the picture is decoded straight into them, so these pin down
what a viewer would see if the picture under a label were not put back between instants.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np

from mmrec.picture.decode import Decoder, default_decoder
from mmrec.review import ProxyOptions, make_proxies
from tests.review.takes import NS, frame_number, grey_jpeg, write_frames, y_frames


def test_a_held_frame_keeps_one_label_and_a_bad_frame_shows_the_last_good_one(
    tmp_path: Path,
) -> None:
    # 10 fps camera, 30 fps proxy: every frame is shown at three instants in a row.
    frames = [grey_jpeg("A", n, 320, 240, round(n / 10 * NS)) for n in range(8)]
    bad = bytearray(frames[4])
    dqt = bad.index(b"\xff\xdb")
    bad[dqt + 4] = 5  # "Bogus DQT index 5": a whole JPEG that cannot be decoded
    frames[4] = bytes(bad)
    take = write_frames(tmp_path, {"A": [(round(k / 10 * NS), d) for k, d in enumerate(frames)]})
    r = make_proxies(take, ProxyOptions(height=240, fps=Fraction(30), multiview=False))
    assert r.cameras[0].decode_errors == 1
    ys = y_frames(take / "proxies" / "A.mp4")
    shown = [frame_number(y) for y in ys]
    # frame 4 could not be decoded: frame 3 stays on screen until frame 5
    assert shown[9:15] == [3] * 6
    assert shown[15:18] == [5] * 3
    # The name label (bottom left) is the same at each instant showing a frame: a label
    # blended again over the last one would darken its box (0.375 of the picture each time).
    h = ys[0].shape[0]
    for k0 in (0, 3, 9, 15):
        boxes = [y[h - 20 : h - 6, 4:14].astype(int) for y in ys[k0 : k0 + 3]]
        for box in boxes[1:]:
            assert np.abs(box - boxes[0]).mean() < 3, k0


class _GatedDecoder:
    """The default decoder, whose first decode waits until every instant is queued: the
    worker then draws all of them in one run, one proxy frame each."""

    def __init__(self, queued: threading.Event) -> None:
        self._dec = default_decoder()
        self._queued = queued
        self.scales = self._dec.scales
        self.turbojpeg = self._dec.turbojpeg

    def decode(self, data: Any, scale: Fraction = Fraction(1), into: Any = None) -> Any:
        assert self._queued.wait(30), "the instants were never all queued"
        return self._dec.decode(data, scale, into)


def test_held_frames_in_one_long_run_show_their_picture(tmp_path: Path) -> None:
    # 10 fps camera, 30 fps proxy: each frame is held for two more instants, drawn into
    # other proxy frames of the same run (copied from the one it was decoded into).
    frames = [grey_jpeg("A", n, 320, 240, round(n / 10 * NS)) for n in range(8)]
    take = write_frames(tmp_path, {"A": [(round(k / 10 * NS), d) for k, d in enumerate(frames)]})
    queued = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == total:
            queued.set()

    r = make_proxies(
        take,
        ProxyOptions(height=240, fps=Fraction(30), multiview=False, threads=1, window=64),
        progress=progress,
        decoder=cast(Decoder, _GatedDecoder(queued)),
    )
    assert r.frames <= 64  # one run holds them all
    shown = [frame_number(y) for y in y_frames(take / "proxies" / "A.mp4")]
    assert shown == [n for n in range(8) for _ in range(3)][: r.frames]
