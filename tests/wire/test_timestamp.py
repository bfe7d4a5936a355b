"""``X-Timestamp`` values as cameras send them, read as integer ns: seconds with a
fraction, integer ms/µs/ns, floats; anything else (no wall clock, garbage) is None and
never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmrec.wire.timestamp import parse_device_ts


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1764067200.123456", 1764067200_123456000),
        ("1764067200.1", 1764067200_100000000),
        (" 1764067200.000000001 ", 1764067200_000000001),
        ("1764067200", 1764067200_000000000),
        ("1764067200123", 1764067200_123000000),  # ms
        ("1764067200123456", 1764067200_123456000),  # µs
        ("1764067200123456789", 1764067200_123456789),  # ns
        ("1.7640672e9", 1764067200_000000000),
        ("", None),
        (None, None),
        ("abc", None),
        ("-5", None),
        ("12.5", None),  # seconds since boot, not a wall clock: unusable
        ("nan", None),
        ("1764067200.12x", None),
    ],
)
def test_parse_device_ts(text: str | None, ns: int | None) -> None:
    assert parse_device_ts(text) == ns


@given(st.text())
def test_device_timestamp_parsing_never_raises(text: str) -> None:
    result = parse_device_ts(text)
    assert result is None or (isinstance(result, int) and result > 0)
