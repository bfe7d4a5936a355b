"""JPEG markers: the one marker walker, what a complete JPEG is, and what a header says.

Nothing here decodes pixels. Every function takes any bytes-like object (and offsets into
it) and never copies the image data; they look only at the marker segments before the
scan. The header reader (:func:`parse_header`, :func:`dimensions`) and the raw JPEG stream
splitter (:mod:`mmrec.wire.rawjpeg`) walk markers with the same :func:`walk`, and every
"is this a whole JPEG" question (a part's payload, a recorded frame) is :func:`end`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

SOI: Final = b"\xff\xd8"
EOI: Final = b"\xff\xd9"

# Markers without a length field (ITU T.81 B.1.1.3, Table B.1): TEM, RST0-7, SOI, EOI.
# Every other marker is followed by a 2-byte length that counts itself.
STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xDA)})
_EOI: Final = 0xD9
_SOS: Final = 0xDA
_COM: Final = 0xFE
# SOF markers carrying frame dimensions: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# What may follow a JPEG's EOI inside its part and still belong to the framing: servers
# pad with line ends or NULs before the boundary, or count the line end in Content-Length.
_PAD: Final = frozenset(b"\r\n\x00 ")


class Stop(Enum):
    """Why :func:`walk` stopped, and what its position means."""

    END = "end"  # an EOI marker: the image ends 2 bytes after it
    SCAN = "scan"  # an SOS marker: entropy-coded data follows its segment (scan_start)
    MORE = "more"  # bytes up to the position (maybe past the end) are needed: resume there
    BAD = "bad"  # no marker at the position (or a corrupt length, or MAX_MARKERS passed)


# Module constants, not class lookups (~0.2 µs each on CPython 3.11): the writer walks
# every frame's header.
_STOP_END: Final = Stop.END
_STOP_SCAN: Final = Stop.SCAN
_STOP_MORE: Final = Stop.MORE
_STOP_BAD: Final = Stop.BAD


# Markers (and fill bytes) one walk reads at most. A camera's header has a few dozen
# (APPn, DQT, SOF, DHT, DRI, COM); a "header" of 60,000 empty COM segments (240 KB) cost
# 23 ms a frame to walk, a third of a core at 15 fps for one hostile camera, on the writer
# thread and, cut short, on the event loop. Past this many the walk says BAD.
MAX_MARKERS: Final = 1000


def walk(
    buf: bytes | bytearray | memoryview, pos: int, end: int, found: list[int] | None = None
) -> tuple[Stop, int]:
    """Walk the marker segments of ``buf[pos:end]``, from the marker at ``pos`` (after SOI).

    Returns why the walk stopped and where (see :class:`Stop`); call again from a MORE
    position once more bytes are there. A marker is read only with 4 bytes in hand (an
    EOI with 2); a segment's length is trusted without its bytes, so a MORE position can
    lie past ``end``. ``found`` collects the positions of SOF segments long enough to
    hold the frame size, and of COM segments. One call reads at most ``MAX_MARKERS``
    markers and fill bytes, then stops with BAD where it got to.
    """
    for _ in range(MAX_MARKERS):
        if end - pos < 4:
            if end - pos >= 2 and buf[pos] == 0xFF and buf[pos + 1] == _EOI:
                return _STOP_END, pos
            return _STOP_MORE, pos
        if buf[pos] != 0xFF:
            return _STOP_BAD, pos
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            return _STOP_END, pos
        if marker in STANDALONE:
            pos += 2
            continue
        if marker == 0x00:  # a stuffed zero: entropy-coded data, not a marker
            return _STOP_BAD, pos
        seglen = (buf[pos + 2] << 8) | buf[pos + 3]
        if seglen < 2:
            return _STOP_BAD, pos
        if marker == _SOS:
            return _STOP_SCAN, pos
        if found is not None and (marker == _COM or (marker in _SOF and seglen >= 7)):
            found.append(pos)
        pos += 2 + seglen
    return _STOP_BAD, pos


def segment_end(buf: bytes | bytearray | memoryview, pos: int) -> int:
    """Where the marker segment at ``pos`` (one with a length field) ends."""
    return pos + 2 + ((buf[pos + 2] << 8) | buf[pos + 3])


def end(buf: bytes | bytearray | memoryview, s: int, e: int) -> int:
    """Where the JPEG in ``buf[s:e]`` ends if it is one complete JPEG, else -1.

    Complete: SOI first and EOI last, but for padding after the EOI (CR, LF, NUL, space:
    framing, not image), which the returned end leaves out. Only the first and last bytes
    are looked at: an EOI that ends the bytes is taken as the image's end.
    """
    if e - s < 4 or buf[s] != 0xFF or buf[s + 1] != 0xD8:
        return -1
    if buf[e - 2] == 0xFF and buf[e - 1] == _EOI:
        return e
    k = e
    while k - s > 4 and buf[k - 1] in _PAD:
        k -= 1
    return k if buf[k - 2] == 0xFF and buf[k - 1] == _EOI else -1


def image_end(data: bytes | bytearray | memoryview) -> int:
    """Where the first image in ``data`` ends (just after its EOI), or -1 if it has none.

    Its header is walked (an EOI inside a comment or EXIF is not its end), then its scan
    searched for EOI (in entropy-coded data 0xFF is always followed by 0x00 or an RST, so
    FF D9 is the end). For frames that :func:`end` did not find whole: bytes after the
    EOI (a trailer, garbage) or none at all (cut short). Copies a memoryview once to
    search it: frames that are not whole are rare.
    """
    buf = data if isinstance(data, bytes | bytearray) else memoryview(data).tobytes()
    n = len(buf)
    if n < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return -1
    stop, pos = walk(buf, 2, n)
    if stop is _STOP_END:
        return pos + 2
    if stop is _STOP_MORE:
        return -1
    if stop is _STOP_SCAN:
        pos = segment_end(buf, pos)
    p = buf.find(EOI, pos)
    return -1 if p < 0 else p + 2


# What a camera can send (anything beyond is a broken or hostile header): 8K video is
# 7680 x 4320; the largest phone stills are ~50 MP (8160 x 6120 stays within both).
MAX_SIDE: Final = 8192
MAX_PIXELS: Final = 50_000_000
# Every 8x8 block of a Huffman-coded JPEG costs at least one bit, so no picture needs
# less than a bit per 8 blocks (a margin of 8 for arithmetic coding's flat pictures).
_PIXELS_PER_BYTE_MAX: Final = 8 * 64 * 8


def implausible(width: int, height: int, nbytes: int) -> str | None:
    """Why a JPEG header's size cannot be a camera's picture (``"65000x65000"`` and the
    rule it breaks), or None. A picture that is never decoded for this: decoding it would
    cost seconds and gigabytes for a tile of a few hundred pixels."""
    pixels = width * height
    if width > MAX_SIDE or height > MAX_SIDE:
        rule = f"more than {MAX_SIDE} pixels a side"
    elif pixels > MAX_PIXELS:
        rule = f"more than {MAX_PIXELS // 1_000_000} megapixels"
    elif pixels > nbytes * _PIXELS_PER_BYTE_MAX:
        rule = f"more than {nbytes} bytes can hold"
    else:
        return None
    return f"{width}x{height}: {rule}"


# A whole JPEG this small may still be a stub (SOI, EOI and little between): its header is
# read. No camera's picture is this small; anything bigger is read only if not whole.
_STUB_BELOW: Final = 512


def flaw(data: bytes | bytearray | memoryview) -> str | None:
    """What is wrong with a JPEG (one starting with SOI) as a camera sent it, or None:
    ``"stub"`` (no picture header: nothing to show), ``"trailing"`` (bytes after its EOI),
    ``"truncated"`` (no EOI: cut short). O(1) for a whole JPEG (its first and last bytes);
    the rest is read only for the rare one that is not."""
    mv = memoryview(data)
    n = mv.nbytes
    whole = end(mv, 0, n) >= 0
    if whole and n >= _STUB_BELOW:
        return None
    if dimensions(mv) is None:
        return "stub"
    if whole:
        return None
    return "trailing" if image_end(data) > 0 else "truncated"


def is_complete(data: bytes | bytearray | memoryview) -> bool:
    """True if the bytes are one complete JPEG (see :func:`end`)."""
    mv = memoryview(data)  # any buffer (an av.Packet too), and its length in bytes
    return end(mv, 0, mv.nbytes) >= 0


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
    mv = memoryview(data)
    found = _header(mv)
    if found is None:
        return None
    size = _size(mv, found)
    if size is None:
        return None
    comments = tuple(bytes(mv[i + 4 : segment_end(mv, i)]) for i in found if mv[i + 1] == _COM)
    return JpegInfo(size[0], size[1], comments)


def dimensions(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(width, height) from the SOF marker, or None: :func:`parse_header` without the
    comments (the recorder's writer asks this of every frame)."""
    mv = memoryview(data)
    found = _header(mv)
    return None if found is None else _size(mv, found)


def _header(buf: bytes | bytearray | memoryview) -> list[int] | None:
    """Positions of the SOF and COM segments before the scan; None if the header is not
    whole (a segment cut short, or a byte that is no marker where one should be)."""
    n = len(buf)
    if n < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return None
    found: list[int] = []
    stop, pos = walk(buf, 2, n, found)
    if stop is _STOP_BAD or pos > n or (stop is _STOP_SCAN and segment_end(buf, pos) > n):
        return None
    return found


def _size(buf: bytes | bytearray | memoryview, found: list[int]) -> tuple[int, int] | None:
    width = height = 0
    for i in found:  # the last SOF counts
        if buf[i + 1] != _COM:
            height = (buf[i + 5] << 8) | buf[i + 6]
            width = (buf[i + 7] << 8) | buf[i + 8]
    return (width, height) if width > 0 and height > 0 else None


def com_segment(text: bytes) -> bytes:
    """A COM marker segment holding ``text`` (at most 65533 bytes)."""
    if len(text) > 65533:
        raise ValueError("COM text longer than 65533 bytes")
    return b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
