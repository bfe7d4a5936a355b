"""Reading back a segment that :class:`mmrec.store.mkv.SegmentFile` wrote: its layout.

Repair (:mod:`mmrec.store.repair`) needs to know, for a file the recorder may have left
unfinished (a kill, a power cut, a full disk), where every element is: the header
elements that close() patches, each cluster and whether its size is still "unknown",
every frame (pts, offset and length of its JPEG bytes), and where valid data ends. This
module walks the EBML structure and says exactly that; :meth:`SegmentFile.resume` then
finishes the file with the writer's own close(), so there is one Matroska writer.

Pure: it reads a bytes-like buffer (a ``mmap`` of the file for big ones, so frames are
never read: only element headers are), raises :class:`MkvLayoutError` for a file that is
not one of ours or whose header is incomplete, and never raises for what follows the
header: a frame cut short, a zero-filled tail (a power cut after the file grew but before
its blocks were written), garbage: the walk stops there and reports ``valid_end``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from mmrec.errors import MmrecError
from mmrec.store.ebml import (
    CLUSTER,
    CUES,
    DURATION,
    EBML,
    INFO,
    MUXING_APP,
    PIXEL_HEIGHT,
    PIXEL_WIDTH,
    SEEK_HEAD,
    SEGMENT,
    SIMPLE_BLOCK,
    TAGS,
    TIMESTAMP,
    TIMESTAMP_SCALE,
    TRACK_ENTRY,
    TRACKS,
    VIDEO,
    VOID,
)

# Level-1 elements (children of Segment): an unknown-size cluster ends where one begins.
_LEVEL1: Final = frozenset({SEEK_HEAD, INFO, TRACKS, TAGS, CLUSTER, CUES, 0x1941A469, 0x1043A770})
_CLUSTER_CHILDREN: Final = frozenset({TIMESTAMP, SIMPLE_BLOCK, VOID, 0xA7, 0xAB, 0xA0})


class MkvLayoutError(MmrecError):
    """Not a segment this recorder wrote, or one cut off before its first frame."""


@dataclass(frozen=True, slots=True)
class Block:
    """One frame in the file: its pts (in the file's TimestampScale) and where its JPEG
    bytes are."""

    pts: int
    data_at: int  # file offset of the JPEG's first byte
    size: int  # JPEG bytes


@dataclass(frozen=True, slots=True)
class ClusterAt:
    at: int  # file offset of the Cluster element's ID
    size_at: int  # file offset of its size field
    size_len: int
    unknown: bool  # size still "unknown" (the writer patches it at close)
    timestamp: int | None  # in the file's TimestampScale


@dataclass(slots=True)
class SegmentLayout:
    """Where things are in one segment file, and what is missing for it to be complete."""

    file_size: int
    muxing_app: str
    segment_size_at: int  # offset of the Segment's 8-byte size field
    segment_unknown: bool
    data0: int  # offset of the Segment's first child (SeekPosition origin)
    info_at: int  # relative to data0, as SeekHead wants
    tracks_at: int
    tags_at: int
    duration_at: int | None  # offset of the 11-byte Void that becomes Duration; None: done
    has_cues: bool
    width: int | None
    height: int | None
    timestamp_scale: int = 1_000_000  # ns per pts unit (Matroska's default: 1 ms)
    clusters: list[ClusterAt] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    valid_end: int = 0  # first byte not part of a complete element

    @property
    def complete(self) -> bool:
        """Finalized by close(): sizes known, Cues and Duration written, nothing torn."""
        return (
            not self.segment_unknown
            and self.has_cues
            and self.duration_at is None
            and self.valid_end == self.file_size
            and not any(c.unknown for c in self.clusters)
        )

    @property
    def ours(self) -> bool:
        """Written by mmrec's own writer (the layout that SegmentFile.resume can finish)."""
        return self.muxing_app.startswith("mmrec")


def _vint(buf: bytes | memoryview, at: int, longest: int) -> tuple[int, int] | None:
    """The vint at ``at`` as read (marker bit kept) and its length; None if it is longer
    than ``longest`` bytes (or starts 0x00) or runs past the end."""
    if at >= len(buf):
        return None
    first = buf[at]
    for n in range(1, longest + 1):
        if first & (0x80 >> (n - 1)):
            if at + n > len(buf):
                return None
            return int.from_bytes(bytes(buf[at : at + n]), "big"), n
    return None


def read_id(buf: bytes | memoryview, at: int) -> tuple[int, int] | None:
    """An element ID at ``at`` (with its marker bits) and its length; None if invalid or
    past the end (0x00-0x0F is not an ID's first byte: zero-filled tails start so)."""
    return _vint(buf, at, 4)


def read_size(buf: bytes | memoryview, at: int) -> tuple[int | None, int] | None:
    """A size vint at ``at``: (value, or None for "unknown"; its length); None if invalid."""
    raw = _vint(buf, at, 8)
    if raw is None:
        return None
    n = raw[1]
    all_ones = (1 << (7 * n)) - 1
    value = raw[0] & all_ones
    return (None if value == all_ones else value), n


def _head(buf: bytes | memoryview, at: int) -> tuple[int, int | None, int] | None:
    """(ID, size or None, offset of the body) of the element at ``at``; None if cut off."""
    eid = read_id(buf, at)
    if eid is None:
        return None
    size = read_size(buf, at + eid[1])
    if size is None:
        return None
    return eid[0], size[0], at + eid[1] + size[1]


def scan(buf: bytes | memoryview) -> SegmentLayout:
    """The layout of one segment file (see the module docstring)."""
    end = len(buf)
    h = _head(buf, 0)
    if h is None or h[0] != EBML or h[1] is None or h[2] + h[1] > end:
        raise MkvLayoutError("no complete EBML header: not a Matroska file, or cut off")
    at = h[2] + h[1]
    seg = _head(buf, at)
    if seg is None or seg[0] != SEGMENT:
        raise MkvLayoutError("no Segment after the EBML header")
    size_at = at + 4
    data0 = seg[2]
    if data0 - size_at != 8:
        raise MkvLayoutError("Segment size is not the 8-byte field this writer uses")
    seg_end = end if seg[1] is None else min(end, data0 + seg[1])
    found: dict[int, int] = {}
    layout = SegmentLayout(
        file_size=end,
        muxing_app="",
        segment_size_at=size_at,
        segment_unknown=seg[1] is None,
        data0=data0,
        info_at=-1,
        tracks_at=-1,
        tags_at=-1,
        duration_at=None,
        has_cues=False,
        width=None,
        height=None,
    )
    pos = data0
    while pos < seg_end:
        el = _head(buf, pos)
        if el is None:
            break
        eid, size, body = el
        if eid == CLUSTER:
            pos, torn = _cluster(buf, pos, el, seg_end, layout)
            if torn:
                break
            continue
        if size is None or body + size > seg_end or eid not in (_LEVEL1 | {VOID}):
            break  # a header element is never of unknown size; anything else is torn
        found.setdefault(eid, pos)
        if eid == INFO:
            _info(buf, body, body + size, layout)
        elif eid == TRACKS:
            _tracks(buf, body, body + size, layout)
        elif eid == CUES:
            layout.has_cues = True
        pos = body + size
    layout.valid_end = pos
    for eid, name in ((INFO, "Info"), (TRACKS, "Tracks"), (TAGS, "Tags")):
        if eid not in found:
            raise MkvLayoutError(f"no {name} element: the header was cut off")
    layout.info_at = found[INFO] - data0
    layout.tracks_at = found[TRACKS] - data0
    layout.tags_at = found[TAGS] - data0
    return layout


def _cluster(
    buf: bytes | memoryview,
    at: int,
    el: tuple[int, int | None, int],
    seg_end: int,
    layout: SegmentLayout,
) -> tuple[int, bool]:
    """Walk one cluster: (offset after its last complete child, whether it is torn there).

    A cluster without even its Timestamp is torn at its own start; one whose known size
    runs past the file is torn where its data ends (and its size needs patching again).
    """
    _, size, body = el
    known_end = None if size is None or body + size > seg_end else body + size
    stop = seg_end if known_end is None else known_end
    timestamp: int | None = None
    blocks: list[Block] = []
    pos = body
    torn = size is not None and known_end is None
    while pos < stop:
        child = _head(buf, pos)
        if child is None:
            torn = True
            break
        cid, csize, cbody = child
        if size is None and cid in _LEVEL1:
            break  # the next level-1 element ends an unknown-size cluster
        if cid not in _CLUSTER_CHILDREN or csize is None or cbody + csize > stop:
            torn = True
            break
        if cid == TIMESTAMP:
            timestamp = _uint(buf, cbody, csize)
        elif cid == SIMPLE_BLOCK:
            track = read_size(buf, cbody)
            if timestamp is None or track is None or csize < track[1] + 3:
                torn = True
                break
            hdr = cbody + track[1]
            rel = int.from_bytes(bytes(buf[hdr : hdr + 2]), "big", signed=True)
            data_at = hdr + 3
            blocks.append(Block(timestamp + rel, data_at, cbody + csize - data_at))
        pos = cbody + csize
    if timestamp is None:
        return at, True
    unknown = size is None or known_end is None
    layout.clusters.append(ClusterAt(at, at + 4, body - at - 4, unknown, timestamp))
    layout.blocks.extend(blocks)
    return pos, torn


def _is_level1(buf: bytes | memoryview, at: int) -> bool:
    eid = read_id(buf, at)
    return eid is not None and eid[0] in _LEVEL1


def _children(
    buf: bytes | memoryview, start: int, stop: int
) -> Iterator[tuple[int, int, int, int]]:
    """(offset, ID, size, body offset) of each child from ``start`` to ``stop``, up to the
    first that is cut off or of unknown size."""
    pos = start
    while pos < stop:
        el = _head(buf, pos)
        if el is None:
            return
        eid, size, body = el
        if size is None:
            return
        yield pos, eid, size, body
        pos = body + size


def _uint(buf: bytes | memoryview, body: int, size: int) -> int:
    return int.from_bytes(bytes(buf[body : body + size]), "big")


def _info(buf: bytes | memoryview, start: int, stop: int, layout: SegmentLayout) -> None:
    for pos, eid, size, body in _children(buf, start, stop):
        if eid == MUXING_APP:
            layout.muxing_app = bytes(buf[body : body + size]).decode("utf-8", "replace")
        elif eid == TIMESTAMP_SCALE:
            layout.timestamp_scale = _uint(buf, body, size)
        elif eid == VOID and body + size == stop and (body - pos) + size == 11:
            layout.duration_at = pos  # the writer's room for Duration, still empty
        elif eid == DURATION:
            layout.duration_at = None


def _tracks(buf: bytes | memoryview, start: int, stop: int, layout: SegmentLayout) -> None:
    """Width and height of the (one) video track."""
    for _, eid, size, body in _children(buf, start, stop):
        if eid in (TRACK_ENTRY, VIDEO):
            _tracks(buf, body, body + size, layout)
        elif eid == PIXEL_WIDTH:
            layout.width = _uint(buf, body, size)
        elif eid == PIXEL_HEIGHT:
            layout.height = _uint(buf, body, size)
