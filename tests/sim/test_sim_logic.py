"""Simulator logic without sockets: config validation, frame schedule, clock, wire framing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmrec.errors import ConfigError, StreamFormatError
from mmrec.sim import (
    DeviceClock,
    FrameSchedule,
    NodeConfig,
    Quirk,
    StreamWire,
    auto_ring_length,
    format_timestamp,
    node_addresses,
    parse_quirks,
)
from mmrec.sim.wire import find_head_end, parse_request_head


def test_config_rejects_bad_values_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="name"):
        NodeConfig("bad name")
    with pytest.raises(ConfigError, match="fps"):
        NodeConfig("cam", fps=0)
    with pytest.raises(ConfigError, match="quality"):
        NodeConfig("cam", quality=101)
    with pytest.raises(ConfigError, match="drop_prob"):
        NodeConfig("cam", drop_prob=1.0)
    with pytest.raises(ConfigError, match="jitter_ms"):
        NodeConfig("cam", jitter_ms=-1)
    with pytest.raises(ConfigError, match="chunked and http10"):
        NodeConfig("cam", quirks=frozenset({Quirk.CHUNKED, Quirk.HTTP10}))


def test_parse_quirks_accepts_repeats_and_commas_and_names_unknown_ones() -> None:
    assert parse_quirks(["lf,no-length", "raw_jpeg"]) == {
        Quirk.LF,
        Quirk.NO_LENGTH,
        Quirk.RAW_JPEG,
    }
    with pytest.raises(ConfigError, match="unknown quirk 'nope'"):
        parse_quirks(["nope"])


def test_node_addresses_count_up_and_stay_on_loopback() -> None:
    assert node_addresses(3, "127.0.0.11", 8081, False) == [
        ("127.0.0.11", 8081),
        ("127.0.0.12", 8081),
        ("127.0.0.13", 8081),
    ]
    assert node_addresses(2, "127.0.0.1", 9000, True) == [("127.0.0.1", 9000), ("127.0.0.1", 9001)]
    assert node_addresses(2, "127.0.0.1", 0, False) == [("127.0.0.1", 0), ("127.0.0.1", 0)]
    with pytest.raises(ConfigError, match="not loopback"):
        node_addresses(2, "127.255.255.255", 8081, False)
    with pytest.raises(ConfigError, match="not loopback"):
        node_addresses(1, "192.168.1.10", 8081, False)


def test_auto_ring_length_shrinks_for_many_large_nodes() -> None:
    assert auto_ring_length(4, 1920, 1080) == 30
    assert 8 <= auto_ring_length(64, 1920, 1080) < 30


@given(st.floats(1, 120), st.integers(0, 10**13))
def test_frame_at_is_the_newest_captured_frame(fps: float, elapsed: int) -> None:
    s = FrameSchedule(fps=fps)
    n = s.frame_at(elapsed)
    assert s.capture_ns(n) <= elapsed < s.capture_ns(n + 1)


def test_drops_are_fixed_by_frame_number() -> None:
    every = FrameSchedule(fps=30, drop_every=4)
    assert [n for n in range(12) if every.dropped(n)] == [3, 7, 11]
    prob = FrameSchedule(fps=30, seed=7, drop_prob=0.25)
    dropped = [n for n in range(4000) if prob.dropped(n)]
    assert 800 < len(dropped) < 1200
    assert dropped == [n for n in range(4000) if prob.dropped(n)]  # deterministic


def test_jitter_stays_in_range() -> None:
    s = FrameSchedule(fps=30, delay_ns=50_000_000, jitter_ns=10_000_000)
    for n in range(200):
        extra = s.send_ns(n) - s.capture_ns(n) - 50_000_000
        assert 0 <= extra < 10_000_000


def test_device_clock_offset_and_drift() -> None:
    c = DeviceClock(origin_ns=1_000_000_000_000, offset_ns=250_000_000, drift_ppm=40.0)
    assert c.device_ns(1_000_000_000_000) == 1_000_250_000_000
    # 100 s later a 40 ppm clock is 4 ms ahead, on top of the offset.
    assert c.device_ns(1_100_000_000_000) == 1_100_000_000_000 + 250_000_000 + 4_000_000


def test_device_clock_steps_once_when_asked() -> None:
    c = DeviceClock(origin_ns=10**12, step_at_ns=2 * 10**9, step_ns=-10 * 10**9)
    assert c.device_ns(10**12 + 1_999_999_999) == 10**12 + 1_999_999_999
    assert c.device_ns(10**12 + 2 * 10**9) == 10**12 + 2 * 10**9 - 10 * 10**9
    with pytest.raises(ConfigError, match="clock_step_at"):
        NodeConfig("n", clock_step_at=-1.0, clock_step_s=-10)
    with pytest.raises(ConfigError, match="step must be finite"):
        NodeConfig("n", clock_step_at=1.0, clock_step_s=float("nan"))


def test_format_timestamp_has_six_decimals() -> None:
    assert format_timestamp(1764067200_123456789) == "1764067200.123456"
    assert format_timestamp(5_000_001_000) == "5.000001"


def test_canonical_wire() -> None:
    w = StreamWire()
    head = w.response_head()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Type: multipart/x-mixed-replace; boundary=mmcamsim\r\n" in head
    assert head.endswith(b"\r\n\r\n")
    first = w.part_prefix(frame=0, jpeg_len=10, timestamp="1.000000", first=True)
    assert first == (
        b"--mmcamsim\r\nContent-Type: image/jpeg\r\nContent-Length: 10\r\n"
        b"X-Timestamp: 1.000000\r\n\r\n"
    )
    later = w.part_prefix(frame=1, jpeg_len=10, timestamp="1.000000", first=False)
    assert later == b"\r\n" + first


def test_chunk_sizes_cover_prefix_and_jpeg() -> None:
    w = StreamWire(frozenset({Quirk.CHUNKED, Quirk.NO_LENGTH}))
    p = w.part_prefix(frame=3, jpeg_len=100, timestamp="2.500000", first=False)
    assert p.startswith(b"\r\n")
    size_line, _, rest = p[2:].partition(b"\r\n")
    assert int(size_line, 16) == len(rest) + 100


def test_request_head_parsing() -> None:
    raw = b"GET /stream?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\nrest"
    end = find_head_end(raw)
    assert raw[end:] == b"rest"
    req = parse_request_head(raw[:end])
    assert (req.method, req.path, req.query, req.version) == ("GET", "/stream", "x=1", "HTTP/1.1")
    assert ("host", "a") in req.headers
    assert find_head_end(b"GET / HTTP/1.0\n\n") == len(b"GET / HTTP/1.0\n\n")
    assert find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n") == -1
    with pytest.raises(StreamFormatError):
        parse_request_head(b"HELLO\r\n\r\n")


def test_bursts_hold_frames_and_release_them_together() -> None:
    from mmrec.sim.timing import FrameSchedule

    s = FrameSchedule(fps=30, delay_ns=5_000_000, burst_every=30, burst_len=6)
    # frames 0..5 leave together, with frame 5, and in order
    assert {s.send_ns(n) for n in range(6)} == {s.capture_ns(5) + 5_000_000}
    # the rest of the period is not held
    assert [s.send_ns(n) for n in range(6, 30)] == [
        s.capture_ns(n) + 5_000_000 for n in range(6, 30)
    ]
    assert s.send_ns(30) == s.capture_ns(35) + 5_000_000
