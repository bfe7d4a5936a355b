"""X-Timestamp parsing and the per-camera alignment glue."""

from __future__ import annotations

import itertools
import random

import pytest

from mmrec.timeline.align import CameraClock
from mmrec.wire.timestamp import parse_device_ts


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1764067200.123456", 1764067200_123456000),
        ("1764067200.1", 1764067200_100000000),
        (" 1764067200.000000001 ", 1764067200_000000001),
        ("1764067200", 1764067200_000000000),
        ("1764067200123", 1764067200_123000000),  # ms
        ("1764067200123456", 1764067200_123456000),  # µs
        ("1764067200123456789", 1764067200_123456789),  # ns
        ("1.7640672e9", 1764067200_000000000),
        ("", None),
        (None, None),
        ("abc", None),
        ("-5", None),
        ("12.5", None),  # seconds since boot, not a wall clock: unusable
        ("nan", None),
        ("1764067200.12x", None),
    ],
)
def test_parse_device_ts(text: str | None, ns: int | None) -> None:
    assert parse_device_ts(text) == ns


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
