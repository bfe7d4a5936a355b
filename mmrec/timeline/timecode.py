"""SMPTE timecode of wall-clock instants (time of day, local time)."""

from __future__ import annotations

import datetime as dt


def timecode_at(realtime_ns: int, fps: int = 30) -> str:
    """Time-of-day SMPTE timecode (non-drop, local time) for a wall-clock instant."""
    t = dt.datetime.fromtimestamp(realtime_ns / 1e9).astimezone()
    frames = int(t.microsecond * fps / 1_000_000)
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}:{frames:02d}"
