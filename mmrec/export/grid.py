"""The export's frame grid: one constant rate, slot k of every camera is one instant.

Pure logic, no I/O. The grid is anchored on the time of day, as the take's timecode is:
slot instants fall where a time-of-day timecode at the export rate changes frame, so the
start timecode written into every file is exact, not rounded, and two exports of the same
take (or other devices with time-of-day timecode) line up frame for frame.

Times are integers in ns on the take timeline (0 = the manifest's ``start_realtime_ns``);
rates are :class:`fractions.Fraction`, with the NTSC rates as n/1001. Timecode labels are
counted and written by OpenTimelineIO's ``opentime`` (drop-frame at 29.97 and 59.94).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import opentimelineio as otio

from mmrec.errors import ConfigError
from mmrec.timeline.timecode import TIMECODE_RATE

NS: Final = 1_000_000_000
DAY_NS: Final = 86_400 * NS
TAKE_TC_RATE: Final = TIMECODE_RATE  # the manifest's timecode rate (mmrec.timeline.timecode)

NTSC: Final = (
    Fraction(24000, 1001),
    Fraction(30000, 1001),
    Fraction(48000, 1001),
    Fraction(60000, 1001),
    Fraction(120000, 1001),
)
STANDARD: Final = (
    *NTSC,
    Fraction(24),
    Fraction(25),
    Fraction(30),
    Fraction(48),
    Fraction(50),
    Fraction(60),
    Fraction(100),
    Fraction(120),
)
DROP_FRAME: Final = (Fraction(30000, 1001), Fraction(60000, 1001))


def parse_rate(text: str) -> Fraction:
    """A frame rate from ``30``, ``29.97``, ``30000/1001`` or ``23.976``.

    A decimal within 0.05 % of an NTSC rate is that rate (29.97 -> 30000/1001), so a
    rate typed as people say it is written as editors expect it.
    """
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"frame rate {text!r}: expected e.g. 30, 29.97 or 30000/1001") from None
    if not 1 <= value <= 240:
        raise ConfigError(f"frame rate {text!r} out of range 1-240")
    for r in NTSC:
        if value != r and abs(value - r) / r < Fraction(5, 10_000):
            return r
    return value


def snap_rate(measured: float) -> Fraction:
    """The standard rate nearest a measured one (within 1 %), else the measure to 1/1000."""
    best = min(STANDARD, key=lambda r: abs(float(r) - measured))
    if abs(float(best) - measured) <= 0.01 * measured:
        return best
    return Fraction(round(measured * 1000), 1000)


def measure_rate(cameras: Iterable[Sequence[int]]) -> Fraction | None:
    """The take's rate: each camera's median frame interval snapped to a standard rate;
    the rate of most frames wins (ties: the higher rate). None without two frames."""
    votes: dict[Fraction, int] = {}
    for times in cameras:
        steps = sorted(b - a for a, b in itertools.pairwise(times) if 0 < b - a < NS)
        if not steps:
            continue
        rate = snap_rate(NS / steps[len(steps) // 2])
        votes[rate] = votes.get(rate, 0) + len(times)
    if not votes:
        return None
    return max(votes, key=lambda r: (votes[r], r))


def is_drop_frame(rate: Fraction) -> bool:
    return rate in DROP_FRAME


def nominal(rate: Fraction) -> int:
    """The timecode's frames per second (30 for 29.97)."""
    return math.ceil(rate)


def timecode(label: int, rate: Fraction) -> str:
    """The timecode of frame count ``label`` (drop-frame at 29.97/59.94; wraps at 24 h)."""
    return str(
        otio.opentime.to_timecode(
            otio.opentime.RationalTime(label, float(rate)), float(rate), is_drop_frame(rate)
        )
    )


_TC = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.])(\d{2,3})$")


def timecode_label(tc: str, rate: Fraction) -> int:
    """The frame count of a timecode at ``rate`` (``;`` or ``:`` accepted)."""
    m = _TC.match(tc.strip())
    if m is None:
        raise ConfigError(f"timecode {tc!r}: expected HH:MM:SS:FF")
    h, mi, s, f = int(m[1]), int(m[2]), int(m[3]), int(m[5])
    if mi > 59 or s > 59 or f >= nominal(rate):
        raise ConfigError(f"timecode {tc!r} is not a valid timecode at {float(rate):g} fps")
    sep = ";" if is_drop_frame(rate) else ":"
    text = f"{h:02d}:{mi:02d}:{s:02d}{sep}{f:02d}"
    value: float = otio.opentime.from_timecode(text, float(rate)).value
    return round(value)


def time_of_day_at_start(take_timecode: str, start_realtime_ns: int) -> int:
    """Local time of day (ns since midnight) at the take's pts 0.

    The manifest keeps the wall clock (UTC, ns) and the local timecode floored to 1/30 s;
    the local zone's offset is a multiple of 15 minutes, so together they give the local
    time of day to the ns. A timecode that is not the time of day (not within a frame of
    any zone offset) is taken as the timecode of pts 0 as it stands.
    """
    frames = timecode_label(take_timecode, Fraction(TAKE_TC_RATE))
    coarse = frames * NS // TAKE_TC_RATE
    utc = start_realtime_ns % DAY_NS
    quarter = 900 * NS
    zone = round((coarse - utc) / quarter) * quarter
    exact = (utc + zone) % DAY_NS
    if 0 <= (exact - coarse) % DAY_NS < NS // TAKE_TC_RATE + 1_000_000:
        return exact
    return coarse


@dataclass(frozen=True, slots=True)
class FrameGrid:
    """``frames`` slots at ``rate``: slot k is the take instant ``instant(k)`` and carries
    the timecode of frame count ``label + k``."""

    rate: Fraction
    start_exact: Fraction  # take-timeline ns of slot 0, exact
    frames: int
    label: int  # frame count of slot 0's timecode

    @property
    def period(self) -> Fraction:
        return NS / self.rate

    def instant(self, k: int) -> int:
        """Slot k's instant (ns, floored: a frame at or before it satisfies t <= instant)."""
        return math.floor(self.start_exact + k * self.period)

    def instants(self) -> list[int]:
        """Every slot's instant, in order."""
        return [self.instant(k) for k in range(self.frames)]

    @property
    def start_ns(self) -> int:
        return self.instant(0)

    @property
    def timecode(self) -> str:
        return timecode(self.label, self.rate)

    def timecode_at(self, k: int) -> str:
        return timecode(self.label + k, self.rate)

    @property
    def duration_s(self) -> float:
        return float(self.frames / self.rate)

    def sub(self, first: int, count: int) -> FrameGrid:
        """Slots ``first .. first+count-1`` as a grid of their own."""
        return FrameGrid(
            self.rate, self.start_exact + first * self.period, count, self.label + first
        )


def day_grid(tod_at_start_ns: int, rate: Fraction, first_ns: int, last_ns: int) -> FrameGrid:
    """The grid covering every frame in ``first_ns .. last_ns``: slot 0 is the first
    time-of-day frame instant at or after ``first_ns`` (the earliest frame is shown from
    there), the last slot the first one at or after ``last_ns``.

    For the integer and drop-frame rates the label is the frame count since midnight, so
    the timecode is the time of day; for 23.976 (no drop-frame exists) the count since
    midnight would run 0.1 % slow of the clock, so its label is the time of day of slot 0
    counted at 24 and frames count on from there, as a camera jam-synced at the start.
    """
    midnight = Fraction(-tod_at_start_ns)
    period = NS / rate
    n0 = math.ceil((first_ns - midnight) / period)
    n1 = math.ceil((last_ns - midnight) / period)
    start = midnight + n0 * period
    if rate.denominator == 1 or is_drop_frame(rate):
        label = n0
    else:
        label = round((start - midnight) * nominal(rate) / NS)
    return FrameGrid(rate, start, n1 - n0 + 1, label)


def parse_point(text: str, grid: FrameGrid) -> int:
    """A slot from ``--in``/``--out``: a timecode on the export's timecode, or seconds
    from the take's start (pts 0); seconds land on the first slot at or after them."""
    text = text.strip()
    if ":" in text or ";" in text:
        return timecode_label(text, grid.rate) - grid.label
    try:
        seconds = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{text!r}: expected a timecode (HH:MM:SS:FF) or seconds") from None
    return math.ceil((seconds * NS - grid.start_exact) / grid.period)
