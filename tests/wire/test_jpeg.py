from __future__ import annotations

import numpy as np
from turbojpeg import TurboJPEG

from mmrec.wire import jpeg


def _encode(w: int, h: int) -> bytes:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, :, 1] = np.arange(w, dtype=np.uint8)[None, :]
    return bytes(TurboJPEG().encode(img, quality=80))


def test_parse_header_reads_size_and_comments() -> None:
    data = _encode(64, 48)
    patched = data[:2] + jpeg.com_segment(b"mmcam-sim node=cam-a frame=7 true_ns=123") + data[2:]
    info = jpeg.parse_header(patched)
    assert info is not None
    assert (info.width, info.height) == (64, 48)
    rec = jpeg.sim_record(patched)
    assert rec == jpeg.SimRecord("cam-a", 7, 123)


def test_is_complete_and_garbage() -> None:
    data = _encode(32, 16)
    assert jpeg.is_complete(data)
    assert jpeg.is_complete(data + b"\r\n")
    assert not jpeg.is_complete(data[:-10])
    assert jpeg.parse_header(b"hello world") is None
    assert jpeg.parse_header(data[:20]) is None
    assert jpeg.sim_record(data) is None
