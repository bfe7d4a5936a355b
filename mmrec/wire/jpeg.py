"""Small, pure helpers on JPEG bytes: size from the SOF marker, validity, COM records.

Nothing here decodes pixels. Every function takes any bytes-like object and never
copies the image data; they look only at the marker segments before the scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

SOI: Final = b"\xff\xd8"
EOI: Final = b"\xff\xd9"

# SOF markers carrying frame dimensions: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True, slots=True)
class JpegInfo:
    """What the header of a JPEG says about it."""

    width: int
    height: int
    comments: tuple[bytes, ...]


def parse_header(data: bytes | bytearray | memoryview) -> JpegInfo | None:
    """Parse marker segments up to the first SOS; None if this is not a JPEG we can size.

    Comments (COM segments) before the scan are returned as they are, so a caller
    can read records such as the simulator's ``mmcam-sim`` line without a decode.
    """
    comments: list[bytes] = []
    size = _walk(memoryview(data), comments)
    return None if size is None else JpegInfo(size[0], size[1], tuple(comments))


def dimensions(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(width, height) from the SOF marker, or None: :func:`parse_header` without the
    comments (the recorder's writer asks this of every frame)."""
    return _walk(memoryview(data), None)


def _walk(mv: memoryview, comments: list[bytes] | None) -> tuple[int, int] | None:
    n = len(mv)
    if n < 4 or mv[0] != 0xFF or mv[1] != 0xD8:
        return None
    i = 2
    width = height = 0
    while i + 4 <= n:
        if mv[i] != 0xFF:
            return None
        marker = mv[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        seglen = (mv[i + 2] << 8) | mv[i + 3]
        if seglen < 2 or i + 2 + seglen > n:
            return None
        if marker in _SOF and seglen >= 7:
            height = (mv[i + 5] << 8) | mv[i + 6]
            width = (mv[i + 7] << 8) | mv[i + 8]
        elif marker == 0xFE:
            if comments is not None:
                comments.append(bytes(mv[i + 4 : i + 2 + seglen]))
        elif marker == 0xDA:  # SOS: the entropy-coded scan follows
            break
        i += 2 + seglen
    if width <= 0 or height <= 0:
        return None
    return width, height


def is_complete(data: bytes | bytearray | memoryview) -> bool:
    """True if the bytes start with SOI and end with EOI (trailing CR/LF/NUL padding allowed)."""
    mv = memoryview(data)
    n = len(mv)
    if n < 4 or mv[0] != 0xFF or mv[1] != 0xD8:
        return False
    # Some servers pad the part with line ends or NULs before the boundary.
    end = n
    while end > 2 and mv[end - 1] in (0x0A, 0x0D, 0x00, 0x20):
        end -= 1
    return mv[end - 2] == 0xFF and mv[end - 1] == 0xD9


def com_segment(text: bytes) -> bytes:
    """A COM marker segment holding ``text`` (at most 65533 bytes)."""
    if len(text) > 65533:
        raise ValueError("COM text longer than 65533 bytes")
    return b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text


_SIM_RECORD = re.compile(rb"mmcam-sim node=(\S+) frame=(\d+) true_ns=(\d+)")


@dataclass(frozen=True, slots=True)
class SimRecord:
    """The machine-readable record the simulator puts in every frame's COM segment."""

    node: str
    frame: int
    true_ns: int


def sim_record(data: bytes | bytearray | memoryview) -> SimRecord | None:
    """Read the simulator's ``mmcam-sim`` COM record from a JPEG, if it has one."""
    info = parse_header(data)
    if info is None:
        return None
    for text in info.comments:
        m = _SIM_RECORD.match(text)
        if m:
            return SimRecord(
                m.group(1).decode("utf-8", "replace"), int(m.group(2)), int(m.group(3))
            )
    return None
