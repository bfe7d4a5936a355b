"""The simulator's per-frame record: what the node writes, ground truth reads back."""

from __future__ import annotations

import numpy as np
from turbojpeg import TurboJPEG

from mmrec.sim.record import SimRecord, com_segment, sim_record
from mmrec.wire import jpeg


def test_the_record_written_into_a_frame_reads_back() -> None:
    img = np.zeros((16, 32, 3), dtype=np.uint8)
    data = bytes(TurboJPEG().encode(img, quality=80))
    framed = data[:2] + com_segment("cam-b", 12, 1_700_000_000_123_456_789) + data[2:]
    assert sim_record(framed) == SimRecord("cam-b", 12, 1_700_000_000_123_456_789)
    assert jpeg.dimensions(framed) == (32, 16)
    assert sim_record(data) is None
    assert sim_record(b"not a jpeg") is None
