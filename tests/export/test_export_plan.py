"""The export's frame grid and slot plan: pure rules, checked case by case."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mmrec.errors import ConfigError
from mmrec.export.grid import (
    NS,
    FrameGrid,
    day_grid,
    measure_rate,
    parse_point,
    parse_rate,
    snap_rate,
    time_of_day_at_start,
    timecode,
    timecode_label,
)
from mmrec.export.slots import FILLER_SLOT, SlotKind, plan_camera

P30 = NS // 30


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30", Fraction(30)),
        ("29.97", Fraction(30000, 1001)),
        ("30000/1001", Fraction(30000, 1001)),
        ("23.976", Fraction(24000, 1001)),
        ("59.94", Fraction(60000, 1001)),
        ("25", Fraction(25)),
        ("12.5", Fraction(25, 2)),
    ],
)
def test_rates_are_read_as_editors_write_them(text: str, rate: Fraction) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0", "300", "fast", "1/0"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rate(text)


def test_measured_rates_snap_to_standard_ones() -> None:
    assert snap_rate(30.0015) == 30
    assert snap_rate(29.969) == Fraction(30000, 1001)
    assert snap_rate(14.2) == Fraction(142, 10)
    cams = [[k * P30 for k in range(100)], [7 + k * P30 for k in range(90)]]
    slow = [[k * NS // 15 for k in range(40)]]
    assert measure_rate(cams + slow) == 30  # the rate of most frames
    assert measure_rate([[5]]) is None


def test_timecodes_drop_frame_at_29_97_only() -> None:
    assert timecode(30 * 3600 * 10, Fraction(30)) == "10:00:00:00"
    assert timecode(
        timecode_label("10:00:00;00", Fraction(30000, 1001)), Fraction(30000, 1001)
    ) == ("10:00:00;00")
    assert timecode_label("10:00:00:00", Fraction(30000, 1001)) == 1078920
    assert timecode(24 * 3600 * 25 + 3, Fraction(25)) == "00:00:00:03"  # wraps at 24 h
    with pytest.raises(ConfigError):
        timecode_label("10:00:00:30", Fraction(30))


def test_time_of_day_comes_from_the_wall_clock_and_the_zone() -> None:
    # 2024-06-11 08:15:00.123456789 UTC recorded in UTC+2: timecode 10:15:00:03
    start = 1718093700 * NS + 123_456_789
    assert time_of_day_at_start("10:15:00:03", start) == (10 * 3600 + 15 * 60) * NS + 123_456_789
    # a timecode that is not a time of day is taken as it stands
    assert time_of_day_at_start("01:00:00:00", start) == 3600 * NS


def test_grid_slots_fall_on_time_of_day_frames() -> None:
    tod = 36_000 * NS + 10_000_000  # 10:00:00 + 10 ms at pts 0
    g = day_grid(tod, Fraction(30), first_ns=0, last_ns=NS)
    assert g.timecode == "10:00:00:01"  # the first frame instant at or after the first frame
    assert g.instant(0) == round(NS / 30) - 10_000_000
    assert g.instant(g.frames - 1) >= NS > g.instant(g.frames - 2)
    ntsc = day_grid(tod, Fraction(30000, 1001), 0, NS)
    assert ntsc.timecode.count(";") == 1
    film = day_grid(tod, Fraction(24000, 1001), 0, NS)
    assert film.timecode.startswith("10:00:00:")  # jam-synced to the clock, not 36 s behind
    sub = g.sub(5, 10)
    assert (sub.instant(0), sub.timecode, sub.frames) == (g.instant(5), g.timecode_at(5), 10)


def test_in_and_out_points() -> None:
    g = day_grid(36_000 * NS, Fraction(30), 0, 10 * NS)
    assert parse_point("10:00:02:00", g) == 60
    assert parse_point("2", g) == 60
    assert parse_point("2.01", g) == 61  # the first slot at or after
    with pytest.raises(ConfigError):
        parse_point("soon", g)


def _grid(frames: int) -> FrameGrid:
    return FrameGrid(Fraction(30), Fraction(0), frames, 0)


def test_each_slot_shows_the_frame_captured_at_or_just_before_it() -> None:
    times = [k * P30 - 3_000_000 for k in range(1, 11)]  # 3 ms before each slot from slot 1
    plan = plan_camera(times, _grid(12), hold_ns=NS // 2)
    assert plan.source == (FILLER_SLOT, *range(10), FILLER_SLOT)  # joined late, left early
    assert plan.kinds[1:11] == (SlotKind.FRESH,) * 10
    assert plan.ranges(SlotKind.FILLER) == [(0, 0), (11, 11)]


def test_a_dropped_frame_is_held_and_listed_an_outage_is_filler_from_its_start() -> None:
    times = [k * P30 for k in range(10) if k != 4] + [k * P30 for k in range(40, 50)]
    plan = plan_camera(times, _grid(50), hold_ns=NS // 2)
    assert plan.kinds[4] is SlotKind.REPEAT and plan.source[4] == plan.source[3]
    assert plan.ranges(SlotKind.REPEAT) == [(4, 4)]
    assert plan.ranges(SlotKind.FILLER) == [(10, 39)]  # 1 s of silence: no picture held
    held = plan_camera(times, _grid(50), hold_ns=2 * NS)
    assert held.ranges(SlotKind.FILLER) == [] and held.ranges(SlotKind.REPEAT) == [(4, 4), (10, 39)]


def test_a_fast_camera_skips_frames_a_slow_one_repeats() -> None:
    fast = [k * NS // 60 for k in range(60)]
    plan = plan_camera(fast, _grid(30), hold_ns=NS // 2)
    assert plan.source == tuple(range(0, 60, 2)) and plan.frames_skipped == 29
    slow = [k * NS // 15 for k in range(15)]
    plan = plan_camera(slow, _grid(30), hold_ns=NS // 2)
    assert plan.ranges(SlotKind.REPEAT) == [(k, k) for k in range(1, 30, 2)]
