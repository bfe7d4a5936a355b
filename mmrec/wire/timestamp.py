"""The ``X-Timestamp`` a camera sends with each part: its device clock, read as integer ns.

Pure and total: any text gives a value or None, never an exception (the value is
untrusted input). Device clocks are wall clocks (Unix time); the unit is inferred from the
magnitude, and anything outside 2001-2100 in every unit is rejected as garbage.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["parse_device_ts"]

# Anything before 2001 or after 2100 in the unit we guess is garbage, and so is a negative
# or non-finite value.
_MIN_S: Final = 1e9
_MAX_S: Final = 4.2e9


def parse_device_ts(value: str | None) -> int | None:
    """An ``X-Timestamp`` value as integer ns, or None if absent or unusable.

    Phones send seconds with a fraction (``1764067200.123456``); some send integer
    milliseconds, microseconds or nanoseconds. The unit is inferred from the magnitude.
    The integer and fraction parts are parsed separately: a float keeps only ~0.2 µs.
    """
    if not value:
        return None
    text = value.strip()
    if not text.isascii():  # str.isdigit() would accept "²" and int() then fails
        return None
    whole, dot, frac = text.partition(".")
    if not whole.isdigit() or (dot and not (frac.isdigit() or frac == "")):
        try:
            f = float(text)
        except ValueError:
            return None
        if not math.isfinite(f) or f <= 0:
            return None
        return _scale_float(f)
    w = int(whole)
    if dot:
        if not _MIN_S <= w <= _MAX_S:
            return None
        frac9 = (frac + "000000000")[:9]
        return w * 1_000_000_000 + int(frac9)
    for factor in (1_000_000_000, 1_000_000, 1_000, 1):  # s, ms, µs, ns
        if _MIN_S <= w * factor / 1e9 <= _MAX_S:
            return w * factor
    return None


def _scale_float(f: float) -> int | None:
    for factor in (1e9, 1e6, 1e3, 1.0):
        if _MIN_S <= f * factor / 1e9 <= _MAX_S:
            return round(f * factor)
    return None
