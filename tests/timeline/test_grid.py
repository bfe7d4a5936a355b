"""A take's frame grid and slot plan (the export's and the proxies'): pure rules, checked
case by case."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mmrec.errors import ConfigError
from mmrec.timeline.grid import FrameGrid, cut, day_grid, parse_point, take_grid
from mmrec.timeline.rate import NS, as_rate, choose_rate, measure_rate, parse_rate, snap_rate
from mmrec.timeline.slots import FILLER_SLOT, SlotKind, plan_camera
from mmrec.timeline.timecode import day_clock

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


def test_rates_given_as_numbers_are_written_exactly() -> None:
    assert as_rate(23.976) == Fraction(24000, 1001)  # not 2997/125
    assert as_rate(29.97) == Fraction(30000, 1001)
    assert as_rate(10.0) == 10 and as_rate(12.5) == Fraction(25, 2)


def test_the_take_rate_is_what_the_cameras_said_else_measured() -> None:
    thirty = [k * P30 for k in range(100)]
    fifteen = [k * NS // 15 for k in range(300)]
    assert choose_rate(Fraction(25), [(None, thirty)]) == (25, "given")
    assert choose_rate(None, [(None, thirty)]) == (30, "measured")
    # the camera says 29.97: its frames' jitter does not make it 30
    assert choose_rate(None, [(Fraction(30000, 1001), thirty)]) == (
        Fraction(30000, 1001),
        "nominal",
    )
    assert choose_rate(None, [(None, thirty), (Fraction(15), fifteen)]) == (15, "nominal")
    assert choose_rate(None, [(None, [5])]) == (None, "none")


def test_grid_slots_are_the_time_of_day_frame_intervals() -> None:
    tod = 36_000 * NS + 10_000_000  # 10:00:00 + 10 ms at take time 0
    g = day_grid(day_clock(tod, Fraction(30)), first_ns=0, last_ns=NS)
    # slot 0 is the frame interval the first frame was captured in, with its timecode
    assert g.timecode == "10:00:00:00" and g.start_ns == -10_000_000
    assert g.instant(0) == round(NS / 30) - 10_000_000  # the last ns of the interval
    assert g.begin(g.frames - 1) <= NS <= g.instant(g.frames - 1)
    assert g.slot_of(NS) == g.frames - 1 and g.slot_of(0) == 0
    ntsc = day_grid(day_clock(tod, Fraction(30000, 1001)), 0, NS)
    assert ntsc.timecode.count(";") == 1
    film = day_grid(day_clock(tod, Fraction(24000, 1001)), 0, NS)
    assert film.timecode.startswith("10:00:00:")  # jam-synced to the clock, not 36 s behind
    sub = g.sub(5, 10)
    assert (sub.instant(0), sub.timecode, sub.frames) == (g.instant(5), g.timecode_at(5), 10)


def test_a_frame_lands_in_the_slot_of_its_own_timecode() -> None:
    """What the recorder stamps on a segment starting with a frame is the timecode of the
    slot the export shows that frame in: a segment converted on its own lines up."""
    clock = day_clock(36_000 * NS + 7_654_321, Fraction(30000, 1001))
    times = [NS // 7 + k * 33_366_667 + (k * 7919) % 3_000_000 for k in range(200)]
    g = day_grid(clock, times[0], times[-1])
    plan = plan_camera(times, g, hold_ns=NS // 2)
    for i, t in enumerate(times):
        k = g.slot_of(t)
        assert g.timecode_at(k) == clock.timecode(t)
        assert plan.source[k] == i  # shown in that slot (none of these frames is skipped)


def test_the_take_grid_covers_every_camera() -> None:
    clock_at = lambda rate: day_clock(36_000 * NS, rate)  # noqa: E731
    early = [k * P30 for k in range(30)]
    late = [NS + k * P30 for k in range(60)]
    chosen = take_grid(clock_at, [(None, early), (None, late)], None)
    # the last frame, 2.967 s in, is in slot 89 of 10:00:00:00's
    assert (chosen.grid.frames, chosen.grid.timecode, chosen.rate_from) == (
        89,
        "10:00:00:00",
        "measured",
    )
    assert take_grid(clock_at, [(None, [0])], None).rate_from == "default"


def test_in_and_out_points() -> None:
    g = day_grid(day_clock(36_000 * NS, Fraction(30)), 0, 10 * NS)
    assert parse_point("10:00:02:00", g) == 60
    assert parse_point("2", g) == 60
    assert parse_point("2.01", g) == 60  # the slot whose interval holds it
    assert cut(g, "2", "10:00:04:00").frames == 60
    with pytest.raises(ConfigError):
        parse_point("soon", g)
    with pytest.raises(ConfigError, match="nothing between --in and --out"):
        cut(g, "5", "4")


def _at(k: int, fps: int = 30) -> int:
    """Frame k of a camera at ``fps`` that captures on the grid (never a ns early)."""
    return -(-k * NS // fps)


def _grid(frames: int) -> FrameGrid:
    """Slot k is the frame interval [k P, (k + 1) P)."""
    return FrameGrid(Fraction(30), Fraction(0), frames, 0)


def test_each_slot_shows_the_frame_captured_in_its_interval() -> None:
    times = [k * P30 + 3_000_000 for k in range(1, 11)]  # 3 ms into slots 1 to 10
    plan = plan_camera(times, _grid(12), hold_ns=NS // 2)
    assert plan.source == (FILLER_SLOT, *range(10), FILLER_SLOT)  # joined late, left early
    assert plan.kinds[1:11] == (SlotKind.FRESH,) * 10
    assert plan.ranges(SlotKind.FILLER) == [(0, 0), (11, 11)]


def test_a_dropped_frame_is_held_and_listed_an_outage_is_filler_from_its_start() -> None:
    times = [_at(k) for k in range(10) if k != 4] + [_at(k) for k in range(40, 50)]
    plan = plan_camera(times, _grid(50), hold_ns=NS // 2)
    assert plan.kinds[4] is SlotKind.REPEAT and plan.source[4] == plan.source[3]
    assert plan.ranges(SlotKind.REPEAT) == [(4, 4)]
    assert plan.ranges(SlotKind.FILLER) == [(10, 39)]  # 1 s of silence: no picture held
    held = plan_camera(times, _grid(50), hold_ns=2 * NS)
    assert held.ranges(SlotKind.FILLER) == [] and held.ranges(SlotKind.REPEAT) == [(4, 4), (10, 39)]


def test_a_fast_camera_skips_frames_a_slow_one_repeats() -> None:
    fast = [_at(k, 60) for k in range(60)]
    plan = plan_camera(fast, _grid(30), hold_ns=NS // 2)
    # each slot shows the newest frame captured in it
    assert plan.source == tuple(range(1, 60, 2)) and plan.frames_skipped == 29
    slow = [_at(k, 15) for k in range(15)]
    plan = plan_camera(slow, _grid(30), hold_ns=NS // 2)
    assert plan.ranges(SlotKind.REPEAT) == [(k, k) for k in range(1, 29, 2)]
    assert plan.ranges(SlotKind.FILLER) == [(29, 29)]  # after its last frame's interval
