"""Timecode: the take's (time of day when it started) and any instant of the take's."""

from __future__ import annotations

import datetime as dt

import pytest

from mmrec.errors import MmrecError
from mmrec.timeline.timecode import TIMECODE_RATE, timecode_add, timecode_at, timecode_frames

NS = 1_000_000_000


def test_timecode_advances_from_the_take_timecode() -> None:
    assert timecode_add("10:00:00:00", 0, 30) == "10:00:00:00"
    assert timecode_add("10:00:00:15", NS // 2, 30) == "10:00:01:00"
    assert timecode_add("23:59:59:29", NS // 30, 30) == "00:00:00:00"
    assert timecode_add("01:00:00:10", 0, 25) == "01:00:00:08"


def test_the_take_timecode_is_the_local_time_of_day_at_the_timecode_rate() -> None:
    t = dt.datetime(2024, 6, 11, 10, 15, 7, 500_000).astimezone()
    realtime_ns = int(t.timestamp()) * NS + 500_000_000
    assert timecode_at(realtime_ns) == "10:15:07:15"  # half a second: frame 15 of 30
    assert timecode_at(realtime_ns, fps=25) == "10:15:07:12"


def test_an_instant_of_the_take_is_the_take_timecode_advanced() -> None:
    """What the proxies burn in is what the recorder would have stamped at that instant,
    whatever rate the proxies count at. (The recorder counts the frame an instant falls
    in, the proxies the nearest frame: instants in the first half of a frame agree.)"""
    start = dt.datetime(2024, 6, 11, 23, 59, 58).astimezone()
    start_ns = int(start.timestamp()) * NS
    take_tc = timecode_at(start_ns)
    for offset_ns in (0, 40_000_000, 1_234_000_000, 2 * NS):  # frames 0, 1.2, 37.02, 60
        assert timecode_add(take_tc, offset_ns, TIMECODE_RATE) == timecode_at(start_ns + offset_ns)
    assert timecode_add(take_tc, 2 * NS, 25) == "00:00:00:00"  # past midnight, at 25 fps


def test_a_bad_timecode_is_named() -> None:
    assert timecode_frames("01:00:00:10") == 108_010
    with pytest.raises(MmrecError, match="10:00:00"):
        timecode_frames("10:00:00")
