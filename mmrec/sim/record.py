"""The simulator's per-frame record: which node, which frame, when it was really captured.

Every simulated JPEG carries ``mmcam-sim node=<name> frame=<n> true_ns=<ns>`` in a COM
segment before its scan (``true_ns``: the capture instant on the host's CLOCK_REALTIME).
The node writes it (:func:`com_segment`); ground truth, tests and benchmarks read it back
from recorded frames (:func:`sim_record`) without decoding a pixel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mmrec.wire import jpeg

_RECORD: Final = re.compile(rb"mmcam-sim node=(\S+) frame=(\d+) true_ns=(\d+)")


@dataclass(frozen=True, slots=True)
class SimRecord:
    """The machine-readable record the simulator puts in every frame's COM segment."""

    node: str
    frame: int
    true_ns: int


def com_segment(node: str, frame: int, true_ns: int) -> bytes:
    """The COM segment that carries a frame's record."""
    return jpeg.com_segment(b"mmcam-sim node=%s frame=%d true_ns=%d" % (
        node.encode(), frame, true_ns))  # fmt: skip


def sim_record(data: bytes | bytearray | memoryview) -> SimRecord | None:
    """Read the simulator's ``mmcam-sim`` COM record from a JPEG, if it has one."""
    info = jpeg.parse_header(data)
    if info is None:
        return None
    for text in info.comments:
        m = _RECORD.match(text)
        if m:
            return SimRecord(
                m.group(1).decode("utf-8", "replace"), int(m.group(2)), int(m.group(3))
            )
    return None
