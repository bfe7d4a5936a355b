"""Timecode: one clock labels every frame of a take with its time of day, at any rate."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest

from mmrec.errors import ConfigError
from mmrec.timeline.timecode import (
    day_clock,
    time_of_day_at_start,
    time_of_day_ns,
    timecode,
    timecode_at,
    timecode_label,
    utc_offset_s,
)

NS = 1_000_000_000
NTSC30 = Fraction(30000, 1001)
FILM = Fraction(24000, 1001)


def test_the_take_timecode_is_the_local_time_of_day_at_the_timecode_rate() -> None:
    t = dt.datetime(2024, 6, 11, 10, 15, 7, 500_000).astimezone()
    realtime_ns = int(t.timestamp()) * NS + 500_000_000
    assert timecode_at(realtime_ns) == "10:15:07:15"  # half a second: frame 15 of 30
    assert timecode_at(realtime_ns, fps=25) == "10:15:07:12"
    # 2024-06-11 08:15:00.123456789 UTC, two hours east
    assert timecode_at(1718093700 * NS + 123_456_789, offset_s=7200) == "10:15:00:03"


def test_labels_are_written_drop_frame_at_29_97_and_59_94_only() -> None:
    assert timecode(30 * 3600 * 10, Fraction(30)) == "10:00:00:00"
    assert timecode(timecode_label("10:00:00;00", NTSC30), NTSC30) == "10:00:00;00"
    assert timecode_label("10:00:00:00", NTSC30) == 1078920  # ';' or ':' read alike
    assert ";" in timecode(1234567, Fraction(60000, 1001))
    assert timecode(24 * 3600 * 25 + 3, Fraction(25)) == "00:00:00:03"  # wraps at 24 h
    assert timecode(15 * 61, Fraction(15)) == "00:01:01:00"  # rates SMPTE does not list
    assert timecode(24 * 10, FILM) == "00:00:10:00"  # non-drop, counted at 24
    with pytest.raises(ConfigError, match="10:00:00:30"):
        timecode_label("10:00:00:30", Fraction(30))
    with pytest.raises(ConfigError, match="HH:MM:SS:FF"):
        timecode_label("10:00:00", Fraction(30))


def test_a_frame_is_labelled_with_the_interval_it_was_captured_in() -> None:
    tod = 36_000 * NS + 10_000_000  # take time 0 is 10:00:00 + 10 ms
    clock = day_clock(tod, Fraction(30))
    assert clock.timecode(0) == "10:00:00:00"
    assert clock.timecode(23_333_332) == "10:00:00:00"  # 33.33 ms after 10:00:00
    assert clock.timecode(23_333_334) == "10:00:00:01"
    assert clock.begin(clock.label(0)) == -10_000_000  # its interval began 10 ms earlier
    assert clock.timecode(2 * NS) == "10:00:02:00"


def test_drop_frame_labels_read_the_clock() -> None:
    """Jam-synced at the take's start: the label reads the clock there, and drop-frame
    keeps it within ~4 ms an hour (counted from midnight it would be 2-3 frames behind
    the clock late in the day)."""
    clock = day_clock(10 * 3600 * NS, NTSC30)
    assert clock.timecode(0) == "10:00:00;00"
    assert clock.timecode(3600 * NS) == "11:00:00;00"
    assert day_clock(23 * 3600 * NS + 500_000_000, NTSC30).timecode(0) == "23:00:00;15"
    assert day_clock(60 * NS, NTSC30).timecode(0) == "00:01:00;02"  # ;00 and ;01 dropped
    assert timecode(1800, NTSC30) == "00:01:00;02"
    assert day_clock(60 * NS, Fraction(60000, 1001)).timecode(0) == "00:01:00;04"


def test_23_976_counts_from_the_take_start_jam_synced_to_the_clock() -> None:
    """Counted from midnight, 23.976 would run 36 s behind by 10:00; jam-synced at the
    start it shows the time of day there and counts frames from it."""
    clock = day_clock(10 * 3600 * NS + 500_000_000, FILM)
    assert clock.timecode(0) == "10:00:00:12"
    assert clock.begin(clock.label(0)) == 0
    assert clock.timecode(NS) == "10:00:01:11"  # 23.976 frames later


def test_a_take_crossing_midnight_wraps() -> None:
    clock = day_clock(86_399 * NS, Fraction(30))
    assert clock.timecode(0) == "23:59:59:00"
    assert clock.timecode(2 * NS) == "00:00:01:00"


def test_time_of_day_comes_from_the_wall_clock_and_the_zone() -> None:
    start = 1718093700 * NS + 123_456_789  # 08:15:00.123456789 UTC
    assert time_of_day_ns(start, 7200) == (10 * 3600 + 15 * 60) * NS + 123_456_789
    # a take without its zone: inferred from its timecode (zones are quarter hours)
    assert time_of_day_at_start("10:15:00:03", start) == time_of_day_ns(start, 7200)
    assert time_of_day_at_start("02:45:00:03", start) == time_of_day_ns(start, -5 * 3600 - 1800)
    # a timecode that is not a time of day is taken as it stands
    assert time_of_day_at_start("01:00:00:00", start) == 3600 * NS
    assert utc_offset_s(start) == int(
        dt.datetime.fromtimestamp(start / NS).astimezone().utcoffset().total_seconds()  # type: ignore[union-attr]
    )
