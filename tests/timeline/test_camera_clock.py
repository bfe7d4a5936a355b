"""One camera's clock mapping, pure and synchronous: how :class:`CameraClock` places each
frame on the take timeline from its arrival and ``X-Timestamp`` (offset removed, output
strictly increasing, the source stated). End to end against recorded nodes and their true
capture times: ``test_alignment_vs_ground_truth.py``; the ``X-Timestamp`` text itself:
``tests/wire/test_timestamp.py``."""

from __future__ import annotations

import itertools
import random

from mmrec.timeline.align import CameraClock


def test_device_clock_offset_is_removed_and_output_increases() -> None:
    origin = 5_000_000_000
    clock = CameraClock(origin)
    offset = 3_210_000_000  # device clock is 3.21 s ahead
    outs = []
    for n in range(120):
        capture = origin + n * 33_333_333
        device = 1764067200_000000000 + capture + offset
        arrival = capture + 20_000_000 + (n % 7) * 1_000_000
        outs.append(clock.place(arrival, f"{device // 10**9}.{device % 10**9:09d}").t_ns)
    assert all(b > a for a, b in itertools.pairwise(outs))
    # without probes the mapping targets capture + min delay (20 ms)
    err = [o - (n * 33_333_333 + 20_000_000) for n, o in enumerate(outs)][40:]
    assert max(abs(e) for e in err) < 1_500_000
    info = clock.info()
    assert info.source == "device"
    assert info.warmup_frames > 0


def test_arrival_fallback_states_its_source() -> None:
    clock = CameraClock(0)
    rng = random.Random(7)
    outs = [clock.place(n * 33_000_000 + rng.randrange(8_000_000), None).t_ns for n in range(60)]
    assert all(b > a for a, b in itertools.pairwise(outs))
    info = clock.info()
    assert info.source == "arrival"
    assert info.uncertainty_ns is not None and info.uncertainty_ns > 0
