"""SMPTE timecode (HH:MM:SS:FF, non-drop): the take's, and any instant of the take's.

The recorder stamps a take with the time of day it started, counted at
:data:`TIMECODE_RATE` (:func:`timecode_at`); every file of the take carries it. The proxies
advance it to their own start and to each output frame, counted at their own rate
(:func:`timecode_add`). Pure arithmetic on strings and nanoseconds.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from mmrec.errors import MmrecError

NS: Final = 1_000_000_000
TIMECODE_RATE: Final = 30  # frames per second of the take's timecode

_TC = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})[:;.](\d{2})$")


def timecode_at(realtime_ns: int, fps: int = TIMECODE_RATE) -> str:
    """Time-of-day SMPTE timecode (non-drop, local time) for a wall-clock instant."""
    t = dt.datetime.fromtimestamp(realtime_ns / 1e9).astimezone()
    frames = int(t.microsecond * fps / 1_000_000)
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}:{frames:02d}"


def timecode_frames(tc: str, rate: int = TIMECODE_RATE) -> int:
    """Frames since midnight of ``tc`` counted at ``rate``."""
    m = _TC.match(tc.strip())
    if m is None:
        raise MmrecError(f"bad timecode {tc!r} (expected HH:MM:SS:FF)")
    h, mi, s, f = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * rate + f


def timecode_add(tc: str, t_ns: int, rate: int, tc_rate: int = TIMECODE_RATE) -> str:
    """``tc`` (counted at ``tc_rate``) advanced by ``t_ns``, written at ``rate`` fps."""
    start = timecode_frames(tc, tc_rate)
    frames = (start * rate) // tc_rate + (t_ns * rate + NS // 2) // NS  # nearest frame
    frames %= 24 * 3600 * rate
    s, f = divmod(frames, rate)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"
