"""A take's frame grid: one constant rate, slot k of every camera is one frame interval.

Pure logic, no I/O. The export's MOVs and the proxies are both cut on it, so a proxy
relinks to its original frame for frame. The grid is a run of a :class:`DayClock`'s
frame intervals (:mod:`mmrec.timeline.timecode`): slot k is the interval of frame count
``label + k``, ``[begin(k), begin(k) + period)`` on the take timeline, and carries that
timecode. A slot shows what the camera had captured by the end of its interval (see
:mod:`mmrec.timeline.slots`), so a frame appears in the slot whose timecode is its own
capture time, as in its recorded segment.

Times are integers in ns on the take timeline (0 = the manifest's ``start_realtime_ns``);
rates are :class:`fractions.Fraction`, with the NTSC rates as n/1001.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from mmrec.errors import ConfigError
from mmrec.timeline.rate import DEFAULT_RATE, NS, choose_rate
from mmrec.timeline.timecode import DayClock, timecode, timecode_label


@dataclass(frozen=True, slots=True)
class FrameGrid:
    """``frames`` slots at ``rate``: slot k is the frame interval that begins at take time
    ``start_exact + k * period`` and carries the timecode of frame count ``label + k``."""

    rate: Fraction
    start_exact: Fraction  # take-timeline ns where slot 0's interval begins, exact
    frames: int
    label: int  # frame count of slot 0's timecode

    @property
    def period(self) -> Fraction:
        return NS / self.rate

    def instant(self, k: int) -> int:
        """The last ns of slot k's interval: what a camera shows there was captured at or
        before it (``t <= instant`` exactly when ``t`` is before the interval's end)."""
        return math.ceil(self.start_exact + (k + 1) * self.period) - 1

    def instants(self) -> list[int]:
        """Every slot's :meth:`instant`, in order."""
        return [self.instant(k) for k in range(self.frames)]

    def begin(self, k: int) -> int:
        """Where slot k's interval begins (ns, rounded up: the first ns inside it)."""
        return math.ceil(self.start_exact + k * self.period)

    @property
    def start_ns(self) -> int:
        """The take instant of the start timecode (slot 0's interval begins)."""
        return self.begin(0)

    @property
    def timecode(self) -> str:
        return timecode(self.label, self.rate)

    def timecode_at(self, k: int) -> str:
        return timecode(self.label + k, self.rate)

    @property
    def duration_s(self) -> float:
        return float(self.frames / self.rate)

    def slot_of(self, t_ns: int | Fraction) -> int:
        """The slot whose interval holds take time ``t_ns`` (may be outside the grid)."""
        return math.floor((t_ns - self.start_exact) / self.period)

    def sub(self, first: int, count: int) -> FrameGrid:
        """Slots ``first .. first+count-1`` as a grid of their own."""
        return FrameGrid(
            self.rate, self.start_exact + first * self.period, count, self.label + first
        )


def day_grid(clock: DayClock, first_ns: int, last_ns: int) -> FrameGrid:
    """The grid of ``clock``'s frame intervals from the one that holds ``first_ns`` to
    the one that holds ``last_ns``: every frame in between appears in the slot of its
    own capture time."""
    n0 = clock.label(first_ns)
    n1 = clock.label(last_ns)
    return FrameGrid(clock.rate, clock.begin(n0), n1 - n0 + 1, n0)


def parse_point(text: str, grid: FrameGrid) -> int:
    """A slot from ``--in``/``--out``: a timecode on the grid's timecode, or seconds from
    the take's start (take time 0), which land in the slot whose interval holds them."""
    text = text.strip()
    if ":" in text or ";" in text:
        return timecode_label(text, grid.rate) - grid.label
    try:
        seconds = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{text!r}: expected a timecode (HH:MM:SS:FF) or seconds") from None
    return grid.slot_of(seconds * NS)


def cut(grid: FrameGrid, in_point: str | None, out_point: str | None) -> FrameGrid:
    """``grid`` from ``--in`` to ``--out`` (exclusive; :func:`parse_point`), within it;
    :class:`ConfigError` if nothing is left."""
    first, end = 0, grid.frames
    if in_point is not None:
        first = max(0, parse_point(in_point, grid))
    if out_point is not None:
        end = min(grid.frames, parse_point(out_point, grid))
    if end <= first:
        raise ConfigError(
            f"nothing between --in and --out: the take runs {grid.timecode} to "
            f"{grid.timecode_at(grid.frames)} ({grid.duration_s:.2f} s from "
            f"{grid.start_ns / NS:.3f} s)"
        )
    return grid.sub(first, end - first)


@dataclass(frozen=True, slots=True)
class TakeGrid:
    """The frame grid of a take's export (and of its proxies), and how its rate was
    chosen: ``given``, ``nominal`` (the cameras said), ``measured`` or ``default``."""

    grid: FrameGrid
    rate_from: str


def take_grid(
    clock_at: Callable[[Fraction], DayClock],
    cameras: Sequence[tuple[Fraction | None, Sequence[int]]],
    fps: Fraction | None,
    in_point: str | None = None,
    out_point: str | None = None,
) -> TakeGrid:
    """The grid an editor gets: covering every camera's frames (``(nominal rate or None,
    frame times)`` each, with frames), at ``fps``, else at the rate the cameras said they
    run at, else measured (:func:`~mmrec.timeline.rate.choose_rate`), on the take's
    time-of-day clock at that rate (``clock_at``), cut to ``in_point``/``out_point``.
    The export and the proxies both cut on it: same rate, start timecode and length."""
    rate, why = choose_rate(fps, cameras)
    if rate is None:
        rate, why = DEFAULT_RATE, "default"
    full = day_grid(clock_at(rate), min(t[0] for _, t in cameras), max(t[-1] for _, t in cameras))
    return TakeGrid(cut(full, in_point, out_point), why)
