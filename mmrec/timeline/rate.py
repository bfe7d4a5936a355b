"""Frame rates as editors write them: exact fractions, the NTSC rates as n/1001.

Pure. Every rate mmrec writes into a file (segments' DefaultDuration, proxies, the
preview, export) goes through here, so 29.97 is always 30000/1001 and 23.976 is
24000/1001, never 2997/100 or 2997/125: an editor matches rates exactly, and a file at
2997/125 would be conformed (one frame dropped or added every 1000 s).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Final

from mmrec.errors import ConfigError

NS: Final = 1_000_000_000

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
DEFAULT_RATE: Final = Fraction(30)  # a camera that never said its rate
NTSC_TOLERANCE: Final = Fraction(5, 10_000)  # 29.97 is 30000/1001 to within 0.05 %


def as_rate(value: float | Fraction) -> Fraction:
    """A rate given as a number: within 0.05 % of an NTSC rate it is that rate (29.97,
    29.970, 23.976 -> n/1001), else the number to 1/1000."""
    rate = Fraction(value).limit_denominator(1000) if isinstance(value, float) else value
    for r in NTSC:
        if abs(rate - r) / r < NTSC_TOLERANCE:
            return r
    return rate


def parse_rate(text: str) -> Fraction:
    """A frame rate from ``30``, ``29.97``, ``30000/1001`` or ``23.976`` (:func:`as_rate`);
    :class:`ConfigError` for anything else or a rate outside 1-240."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"frame rate {text!r}: expected e.g. 30, 29.97 or 30000/1001") from None
    if not 1 <= value <= 240:
        raise ConfigError(f"frame rate {text!r} out of range 1-240")
    return as_rate(value)


def snap_rate(measured: float) -> Fraction:
    """The standard rate nearest a measured or announced one (within 1 %), else the
    value to 1/1000."""
    best = min(STANDARD, key=lambda r: abs(float(r) - measured))
    if abs(float(best) - measured) <= 0.01 * measured:
        return best
    return Fraction(round(measured * 1000), 1000)


def measure_rate(cameras: Iterable[Sequence[int]]) -> Fraction | None:
    """The rate of a take's frames: each camera's median frame interval snapped to a
    standard rate; the rate of most frames wins (ties: the higher rate). None without two
    frames."""
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
    """Whether timecode at ``rate`` is written drop-frame (29.97 and 59.94 only)."""
    return rate in DROP_FRAME


def nominal(rate: Fraction) -> int:
    """The timecode's frames per second at ``rate`` (30 for 29.97)."""
    return math.ceil(rate)


def period_ns(rate: Fraction) -> Fraction:
    """One frame at ``rate``, in ns (exact)."""
    return NS / rate


def choose_rate(
    given: Fraction | None,
    cameras: Sequence[tuple[Fraction | None, Sequence[int]]],
) -> tuple[Fraction | None, str]:
    """The rate of a take's grid, and where it came from (``given``, ``nominal`` or
    ``measured``): the one given; else each camera votes, with its frames, for its nominal
    rate (what it said it runs at) or, without one, its measured rate
    (:func:`measure_rate`); the rate of most frames wins. None with nothing to go on."""
    if given is not None:
        return given, "given"
    votes: dict[Fraction, int] = {}
    said = False
    for rate, times in cameras:
        if rate is None:
            rate = measure_rate([times])
        else:
            said = True
        if rate is not None:
            votes[rate] = votes.get(rate, 0) + max(1, len(times))
    if not votes:
        return None, "none"
    return max(votes, key=lambda r: (votes[r], r)), "nominal" if said else "measured"
