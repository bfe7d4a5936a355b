"""SMPTE timecode: the one place that turns take instants into timecode and back.

Every timecode mmrec writes is the *time of day* of a frame: the take's (manifest,
:func:`timecode_at`), each segment's first frame (the recorder), every slot of the export
and the proxies (:mod:`mmrec.timeline.grid`). All of them come from a :class:`DayClock`:
a rate and the take-timeline instant where frame count 0 begins, so a frame captured at
take time ``t`` is labelled ``floor((t - origin) * rate)`` wherever it is written, and a
segment converted on its own (``ffmpeg -c copy``) lands where the export puts the same
frame.

- Integer rates count frames since local midnight: the label is the clock's reading.
- The NTSC rates (n/1001) count at the rate from the take's start, labelled there with
  the clock's reading (as a camera jam-synced at the start would), and their frame
  intervals begin at take time 0. Counted from midnight, 23.976 (no drop-frame form)
  would run 0.1 % slow, 36 s behind by 10:00; drop-frame 29.97 and 59.94 would read
  ~86 ms (2-3 frames) behind the clock by 23:00; jam-synced, they drift 3.6 ms an hour.

Drop-frame labels are counted and parsed by OpenTimelineIO's ``opentime``; non-drop
labels are plain arithmetic at the nominal rate (``opentime`` refuses rates SMPTE does
not list, such as a phone's 15 fps). Pure: strings, integers and fractions.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Final

from mmrec.errors import ConfigError
from mmrec.timeline.rate import NS, is_drop_frame, nominal

DAY_NS: Final = 86_400 * NS
TIMECODE_RATE: Final = 30  # frames per second of the take's timecode in the manifest

_TC = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.])(\d{2,3})$")

if TYPE_CHECKING:
    from types import ModuleType


def _opentime() -> ModuleType:
    """OTIO's ``opentime``, imported when a drop-frame label is first needed: the package
    takes ~140 ms to import, which the recorder (non-drop, 30 fps) need not pay."""
    import opentimelineio.opentime as opentime

    module: ModuleType = opentime
    return module


def timecode(label: int, rate: Fraction) -> str:
    """The timecode of frame count ``label`` at ``rate`` (drop-frame at 29.97 and 59.94,
    ``HH:MM:SS;FF``); wraps at 24 h."""
    if is_drop_frame(rate):
        r, ot = float(rate), _opentime()
        return str(ot.to_timecode(ot.RationalTime(label, r), r, True))
    fps = nominal(rate)
    s, f = divmod(label % (86_400 * fps), fps)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def timecode_label(tc: str, rate: Fraction) -> int:
    """The frame count of a timecode at ``rate`` (``;`` or ``:`` accepted);
    :class:`ConfigError` names a malformed one."""
    m = _TC.match(tc.strip())
    if m is None:
        raise ConfigError(f"timecode {tc!r}: expected HH:MM:SS:FF")
    h, mi, s, f = int(m[1]), int(m[2]), int(m[3]), int(m[5])
    fps = nominal(rate)
    if mi > 59 or s > 59 or f >= fps:
        raise ConfigError(f"timecode {tc!r} is not a valid timecode at {float(rate):g} fps")
    if not is_drop_frame(rate):
        return ((h * 60 + mi) * 60 + s) * fps + f
    text = f"{h:02d}:{mi:02d}:{s:02d};{f:02d}"
    value: float = _opentime().from_timecode(text, float(rate)).value
    return round(value)


@dataclass(frozen=True, slots=True)
class DayClock:
    """Time-of-day frame labels at ``rate`` for instants of one take: frame count 0 begins
    at take time ``origin`` (ns, exact; local midnight for integer and drop-frame rates)."""

    rate: Fraction
    origin: Fraction

    @property
    def period(self) -> Fraction:
        return NS / self.rate

    def label(self, t_ns: int | Fraction) -> int:
        """The frame count whose frame interval holds take time ``t_ns``."""
        return math.floor((t_ns - self.origin) / self.period)

    def begin(self, label: int) -> Fraction:
        """Where frame ``label``'s interval begins on the take timeline (ns, exact)."""
        return self.origin + label * self.period

    def timecode(self, t_ns: int | Fraction) -> str:
        """The timecode of the frame interval that holds ``t_ns``."""
        return timecode(self.label(t_ns), self.rate)


def day_clock(tod_at_zero_ns: int, rate: Fraction) -> DayClock:
    """The clock of a take whose take time 0 is ``tod_at_zero_ns`` into the local day."""
    if rate.denominator == 1:
        return DayClock(rate, Fraction(-tod_at_zero_ns))
    # Jam-synced at the take's start: the frame interval that begins at t = 0 carries the
    # clock's reading there (the first label that exists, in drop-frame).
    fps = nominal(rate)
    seconds, f = divmod(tod_at_zero_ns * fps // NS, fps)
    first = seconds * fps + f
    if is_drop_frame(rate):
        h, m, sec = seconds // 3600 % 24, seconds // 60 % 60, seconds % 60
        dropped = fps // 15  # labels ;00 ;01 (;00-;03 at 59.94) of most minutes
        if sec == 0 and f < dropped and m % 10:
            f = dropped
        first = timecode_label(f"{h:02d}:{m:02d}:{sec:02d};{f:02d}", rate)
    return DayClock(rate, -first * (NS / rate))


def utc_offset_s(realtime_ns: int) -> int:
    """The local zone's offset from UTC (seconds, east positive) at a wall-clock instant."""
    local = dt.datetime.fromtimestamp(realtime_ns / 1e9).astimezone()
    offset = local.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def zone_name(realtime_ns: int) -> str:
    """The local zone's abbreviation at a wall-clock instant (``CEST``, ``UTC``)."""
    return dt.datetime.fromtimestamp(realtime_ns / 1e9).astimezone().tzname() or ""


def time_of_day_ns(realtime_ns: int, offset_s: int) -> int:
    """Local time of day (ns since midnight) of a wall-clock instant (Unix ns)."""
    return (realtime_ns + offset_s * NS) % DAY_NS


def timecode_at(realtime_ns: int, fps: int = TIMECODE_RATE, offset_s: int | None = None) -> str:
    """Time-of-day timecode (non-drop) of a wall-clock instant, in the local zone unless
    ``offset_s`` is given: the frame interval that holds it."""
    off = utc_offset_s(realtime_ns) if offset_s is None else offset_s
    return timecode(time_of_day_ns(realtime_ns, off) * fps // NS, Fraction(fps))


def time_of_day_at_start(take_timecode: str, start_realtime_ns: int) -> int:
    """Local time of day (ns since midnight) at a take's start, for takes that did not
    record their zone: from the manifest's wall clock (UTC, ns) and its local timecode
    (floored to 1/30 s). Zone offsets are multiples of 15 minutes, so together they give
    the time of day to the ns. A timecode that is not a time of day (not within a frame
    of any zone offset) is taken as the timecode of take time 0 as it stands."""
    frames = timecode_label(take_timecode, Fraction(TIMECODE_RATE))
    coarse = frames * NS // TIMECODE_RATE
    utc = start_realtime_ns % DAY_NS
    quarter = 900 * NS
    zone = round((coarse - utc) / quarter) * quarter
    exact = (utc + zone) % DAY_NS
    if 0 <= (exact - coarse) % DAY_NS < NS // TIMECODE_RATE + 1_000_000:
        return exact
    return coarse
