"""Matroska's EBML elements as bytes: pure, no I/O.

The element IDs, EBML's variable-size integers, Void elements of an exact size, and the
elements of a segment's head (Info, Tracks, Tags), its Cues and SeekHead, built from
plain values. :class:`mmrec.store.mkv.SegmentFile` writes them; :mod:`mmrec.store.mkvread`
reads them back with the same IDs.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Final

# Element IDs (with their marker bits, as they appear in the file).
EBML: Final = 0x1A45DFA3
SEGMENT: Final = 0x18538067
SEEK_HEAD: Final = 0x114D9B74
SEEK: Final = 0x4DBB
SEEK_ID: Final = 0x53AB
SEEK_POSITION: Final = 0x53AC
INFO: Final = 0x1549A966
TIMESTAMP_SCALE: Final = 0x2AD7B1
DURATION: Final = 0x4489
MUXING_APP: Final = 0x4D80
WRITING_APP: Final = 0x5741
TITLE: Final = 0x7BA9
SEGMENT_UID: Final = 0x73A4
TRACKS: Final = 0x1654AE6B
TRACK_ENTRY: Final = 0xAE
TRACK_NUMBER: Final = 0xD7
TRACK_UID: Final = 0x73C5
TRACK_TYPE: Final = 0x83
DEFAULT_DURATION: Final = 0x23E383
FLAG_LACING: Final = 0x9C
CODEC_ID: Final = 0x86
NAME: Final = 0x536E
VIDEO: Final = 0xE0
PIXEL_WIDTH: Final = 0xB0
PIXEL_HEIGHT: Final = 0xBA
TAGS: Final = 0x1254C367
TAG: Final = 0x7373
TARGETS: Final = 0x63C0
SIMPLE_TAG: Final = 0x67C8
TAG_NAME: Final = 0x45A3
TAG_STRING: Final = 0x4487
CLUSTER: Final = 0x1F43B675
TIMESTAMP: Final = 0xE7
SIMPLE_BLOCK: Final = 0xA3
CUES: Final = 0x1C53BB6B
CUE_POINT: Final = 0xBB
CUE_TIME: Final = 0xB3
CUE_TRACK_POSITIONS: Final = 0xB7
CUE_TRACK: Final = 0xF7
CUE_CLUSTER_POSITION: Final = 0xF1
VOID: Final = 0xEC

UNKNOWN_SIZE: Final = b"\x01\xff\xff\xff\xff\xff\xff\xff"  # 8-byte vint, all ones
TICK_NS: Final = 10_000  # TimestampScale: the pts unit


def id_bytes(eid: int) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big")


def vint(value: int, length: int = 0) -> bytes:
    """An EBML variable-size integer (element sizes); ``length`` forces a width."""
    n = length or next(k for k in range(1, 9) if value < (1 << (7 * k)) - 1)
    if value >= (1 << (7 * n)) - 1:
        raise ValueError(f"{value} does not fit a {n}-byte vint")
    return ((1 << (7 * n)) | value).to_bytes(n, "big")


def uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def element(eid: int, payload: bytes) -> bytes:
    return id_bytes(eid) + vint(len(payload)) + payload


def void(total: int) -> bytes:
    """A Void element exactly ``total`` bytes long (``total`` >= 2)."""
    if total < 2:
        raise ValueError("a Void element takes at least 2 bytes")
    for n in range(1, 9):
        body = total - 1 - n
        if body >= 0 and body < (1 << (7 * n)) - 1:
            return id_bytes(VOID) + vint(body, n) + bytes(body)
    raise ValueError(f"cannot make a Void of {total} bytes")


def ebml_header() -> bytes:
    return element(
        EBML,
        element(0x4286, uint(1))  # EBMLVersion
        + element(0x42F7, uint(1))  # EBMLReadVersion
        + element(0x42F2, uint(4))  # EBMLMaxIDLength
        + element(0x42F3, uint(8))  # EBMLMaxSizeLength
        + element(0x4282, b"matroska")  # DocType
        + element(0x4287, uint(4))  # DocTypeVersion
        + element(0x4285, uint(2)),  # DocTypeReadVersion
    )


def block_header(rel: int, size: int) -> bytes:
    """SimpleBlock header for track 1, keyframe, ``size`` bytes of frame data, ``rel``
    ticks after its cluster's timestamp."""
    # ID, 4-byte size, track number 1 (vint 0x81), int16 relative timestamp, flags.
    return b"\xa3" + vint(size + 4, 4) + b"\x81" + struct.pack(">hB", rel, 0x80)


@dataclass(frozen=True, slots=True)
class TrackInfo:
    width: int
    height: int
    name: str = ""
    title: str = ""
    timecode: str | None = None
    app: str = "mmrec"
    uid: int = 1
    tick_ns: int = TICK_NS  # TimestampScale: ns per pts unit
    frame_ns: int | None = None  # DefaultDuration: the camera's nominal frame period


def info(track: TrackInfo) -> tuple[bytes, int]:
    """The Info element, and where in it the Duration goes at close."""
    payload = (
        element(TIMESTAMP_SCALE, uint(track.tick_ns))
        + element(MUXING_APP, track.app.encode())
        + element(WRITING_APP, track.app.encode())
        + element(SEGMENT_UID, os.urandom(16))
    )
    if track.title:
        payload += element(TITLE, track.title.encode())
    head = id_bytes(INFO) + vint(len(payload) + 11)
    # The Void at the end of Info becomes Duration (2 + 1 + 8 = 11 bytes) at close.
    return head + payload + void(11), len(head) + len(payload)


def tracks(track: TrackInfo) -> bytes:
    video = element(PIXEL_WIDTH, uint(track.width)) + element(PIXEL_HEIGHT, uint(track.height))
    entry = (
        element(TRACK_NUMBER, uint(1))
        + element(TRACK_UID, uint(track.uid))
        + element(TRACK_TYPE, uint(1))
        + element(FLAG_LACING, uint(0))
        + element(CODEC_ID, b"V_MJPEG")
        + (element(DEFAULT_DURATION, uint(track.frame_ns)) if track.frame_ns else b"")
        + (element(NAME, track.name.encode()) if track.name else b"")
        + element(VIDEO, video)
    )
    return element(TRACKS, element(TRACK_ENTRY, entry))


def tags(track: TrackInfo) -> bytes:
    simple = b""
    for name, value in (("TIMECODE", track.timecode), ("TITLE", track.title)):
        if value:
            simple += element(
                SIMPLE_TAG,
                element(TAG_NAME, name.encode()) + element(TAG_STRING, value.encode()),
            )
    return element(TAGS, element(TAG, element(TARGETS, b"") + simple))


def cues(points: list[tuple[int, int]]) -> bytes:
    """The Cues element: one CuePoint per (cluster timestamp, cluster position)."""
    body = b"".join(
        element(
            CUE_POINT,
            element(CUE_TIME, uint(t))
            + element(
                CUE_TRACK_POSITIONS,
                element(CUE_TRACK, uint(1)) + element(CUE_CLUSTER_POSITION, uint(pos)),
            ),
        )
        for t, pos in points
    )
    return element(CUES, body)


def seek_head(entries: list[tuple[int, int]]) -> bytes:
    """The SeekHead element: where each (element ID, position) is."""
    return element(
        SEEK_HEAD,
        b"".join(
            element(SEEK, element(SEEK_ID, id_bytes(e)) + element(SEEK_POSITION, uint(p)))
            for e, p in entries
        ),
    )
