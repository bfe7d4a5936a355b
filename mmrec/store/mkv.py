"""A minimal Matroska writer for MJPEG passthrough: one write per frame, no extra copies.

Why not PyAV's muxer for the hot path: through libavformat each 200 KB frame costs about
eight 32 KiB ``write`` calls, a buffer copy and per-packet Python overhead; measured here
the recorder's write side then costs ~0.8 % of a core per 1080p30 stream, of a 1 % total
budget. This writer sends each frame's block header and JPEG bytes in one system call.

Two ways to the disk:

- Direct I/O (``direct=True``, the recorder's default): the file is opened ``O_DIRECT``
  and each frame goes out as one block-aligned write straight from the memory the parser
  copied it into (:mod:`mmrec.store.payload`): a Void element fills the room before the
  headers, another pads the tail to the next 4 KiB. No page cache: its copy, growth and
  writeback cost the recorder 55 µs to 600 µs per frame depending on how much had gone
  through it (see mmrec.store.payload); direct writes cost a steady ~50 µs. Frames given as
  plain ``bytes`` are copied into an aligned scratch buffer first. Where the file system
  refuses ``O_DIRECT`` (tmpfs, some network mounts) the writer falls back to buffered.
- Buffered (``direct=False``): one ``writev`` of the block header and the JPEG bytes.

File layout (all standard Matroska, read by ffmpeg/ffprobe, mkvtoolnix, VLC, editors)::

    EBML header
    Segment (size patched at close; "unknown" until then)
      Void            reserved, replaced by a SeekHead at close
      Info            TimestampScale (10 µs: see below), apps, title; a Void replaced by
                      Duration at close
      Tracks          one V_MJPEG track with the JPEG's width and height (and the
                      camera's nominal frame duration, when known)
      Tags            TIMECODE (of this file's first frame) and TITLE (global)
      Cluster*        Timestamp + SimpleBlocks (every frame a keyframe), and Voids in
                      direct mode; size patched when it ends (direct mode: at close)
      Cues            one CuePoint per cluster, written at close

Timestamps count 10 µs (TimestampScale 10000 ns), not Matroska's default 1 ms: a frame's
pts is its aligned capture time rounded to 10 µs (at 1 ms, floored, frames sat ~0.5 ms
early on average). ffprobe, ffmpeg and mkvinfo read it; converted to MOV it becomes a
1/100000 time scale, the finest FFmpeg's MOV muxer writes without warning that QuickTime
may not play it (1 µs would). A block's timestamp is an int16 relative to its cluster's,
so a cluster spans at most 0.32 s (about 10 frames at 30 fps; clusters and cue points
are written without an extra system call). Duration is the span of this file's own frames
plus one frame.

Crash safety: every frame is complete in the file once ``write_frame`` returns, so a
SIGKILL loses nothing that was written. (Direct I/O puts the bytes on the device at once,
but the file's new length is file-system metadata, committed by the journal within
seconds: a power cut can lose the last seconds either way.) An unclosed file has
unknown-size Segment and (in direct mode) Clusters, which Matroska readers accept (it is
how live Matroska streams look).

Element encoding here is pure (``element``, ``uint``, ...); :class:`SegmentFile` is the
thin I/O part: one file of a camera's recording (a take's ``seg-NNNN.mkv``). The writer
pool and the per-camera writers that feed it live in :mod:`mmrec.store.writer`.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from mmrec.store.payload import ALIGN, HEAD, TAIL, Bytes, region

if TYPE_CHECKING:
    from mmrec.store.mkvread import SegmentLayout

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
SEEK_HEAD_ROOM: Final = 200  # bytes reserved for the SeekHead written at close
NS: Final = 1_000_000_000
TICK_NS: Final = 10_000  # TimestampScale: the pts unit
CLUSTER_MAX_TICKS: Final = 32_767  # a block's int16 timestamp relative to its cluster


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


class SegmentFile:
    """One Matroska segment file of MJPEG frames, being written (pts in ``track.tick_ns``
    units, increasing)."""

    def __init__(self, path: str, track: TrackInfo, *, direct: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self.path = path
        self.direct = False
        self._fd = -1
        o_direct = getattr(os, "O_DIRECT", 0)
        if direct and o_direct:
            try:
                self._fd = os.open(path, flags | o_direct, 0o644)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: this file system has no O_DIRECT
                    raise
        if self._fd < 0:
            self._fd = os.open(path, flags, 0o644)
        self._init_state(track.tick_ns, track.frame_ns)
        try:
            self._pos = 0
            head = bytearray(ebml_header() + id_bytes(SEGMENT))
            self._segment_size_at = len(head)
            head += UNKNOWN_SIZE
            self._data0 = len(head)  # SeekPosition and CueClusterPosition are relative to it
            head += void(SEEK_HEAD_ROOM)
            self._info_at = len(head) - self._data0
            info, duration_at = self._info(track)
            self._duration_at: int | None = len(head) + duration_at
            head += info
            self._tracks_at = len(head) - self._data0
            head += self._tracks(track)
            self._tags_at = len(head) - self._data0
            head += self._tags(track)
            if self.direct and (pad := _pad(len(head))):
                head += void(pad)
            self._write_chunk(bytes(head))
        except BaseException:
            os.close(self._fd)
            raise

    def _init_state(self, tick_ns: int, frame_ns: int | None) -> None:
        self._scratch: npt.NDArray[np.uint8] | None = None  # aligned staging (direct mode)
        self.staged = 0  # frames that had to be copied into aligned memory first
        self._cluster_at = -1  # file offset of the open cluster's size field
        self._cluster_pts = 0
        # a new cluster (and cue point) at least every second, and before a block's
        # relative timestamp would overflow its int16
        self._cluster_span = min(CLUSTER_MAX_TICKS, NS // tick_ns)
        self._frame_ticks = frame_ns / tick_ns if frame_ns else None
        self._patches: list[tuple[int, bytes]] = []  # (offset, bytes) written at close
        self._cues: list[tuple[int, int]] = []  # (cluster timestamp, cluster position)
        self._first: int | None = None
        self._last: int | None = None
        self.frames = 0

    @classmethod
    def resume(cls, path: str, layout: SegmentLayout) -> SegmentFile:
        """The file at ``path``, left unfinished (a kill, a power cut), ready for
        :meth:`close` to finish it as if this writer had never stopped.

        ``layout`` is what :func:`mmrec.store.mkvread.scan` read from it. Nothing before
        ``layout.valid_end`` is changed except the fields close() patches; what follows
        it (a frame cut short, a zero-filled tail) is kept, wrapped in a Void element.
        """
        self = cls.__new__(cls)
        self.path = path
        self.direct = False
        self._fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            self._init_state(layout.timestamp_scale, None)
            self._segment_size_at = layout.segment_size_at
            self._data0 = layout.data0
            self._info_at = layout.info_at
            self._tracks_at = layout.tracks_at
            self._tags_at = layout.tags_at
            self._duration_at = layout.duration_at
            self._pos = layout.file_size
            tail = layout.file_size - layout.valid_end
            if tail:
                # one byte cannot be a Void: the Void then reaches one byte past the end
                os.pwrite(self._fd, void(max(2, tail)), layout.valid_end)
                self._pos = layout.valid_end + max(2, tail)
            os.lseek(self._fd, self._pos, os.SEEK_SET)  # close() appends from here
            clusters = layout.clusters
            for c, nxt in itertools.pairwise(clusters):
                if c.unknown:
                    self._patches.append((c.size_at, vint(nxt.at - (c.size_at + 8), 8)))
            if clusters and clusters[-1].unknown:
                self._cluster_at = clusters[-1].size_at
            self._cues = [(c.timestamp or 0, c.at - self._data0) for c in clusters]
            if layout.blocks:
                self._first = layout.blocks[0].pts
                self._last = layout.blocks[-1].pts
            self.frames = len(layout.blocks)
        except BaseException:
            os.close(self._fd)
            raise
        return self

    # -- public -------------------------------------------------------------------------

    def sync(self) -> None:
        """Make what was written durable, the file's length included (direct writes put
        the bytes on the device, but the length is metadata: only this commits it)."""
        os.fdatasync(self._fd)

    def unlinked(self) -> bool:
        """True if the file was deleted while open (its folder removed under the writer)."""
        return os.fstat(self._fd).st_nlink == 0

    def write_frame(self, pts: int, data: Bytes) -> None:
        """Append one JPEG at ``pts`` in one write (a new cluster's header included)."""
        cluster = b""
        if self._cluster_at < 0 or pts - self._cluster_pts > self._cluster_span:
            cluster = id_bytes(CLUSTER) + UNKNOWN_SIZE + element(TIMESTAMP, uint(pts))
            cluster_pts = pts
        else:
            cluster_pts = self._cluster_pts
        pre = cluster + block_header(pts - cluster_pts, len(data))
        lead = HEAD - len(pre) if self.direct else 0  # a Void before the headers
        at = self._pos + lead  # where the new cluster starts, if any
        if self.direct:
            self._write_direct(lead, pre, data)
        else:
            self._writev([pre, data])
        # The bookkeeping follows a write that succeeded (a failed one left _pos as it was).
        if cluster:
            self._end_cluster(at)
            self._cues.append((pts, at - self._data0))
            self._cluster_at = at + len(id_bytes(CLUSTER))
            self._cluster_pts = cluster_pts
        if self._first is None:
            self._first = pts
        self._last = pts
        self.frames += 1

    def close(self, *, sync: bool = False) -> None:
        """Patch sizes, write Cues, SeekHead and Duration; the file is then complete (and
        durable with ``sync``)."""
        if self._fd < 0:
            return
        try:
            self._buffered()  # the closing writes are small and unaligned
            self._end_cluster(self._pos)
            cues_at = self._pos - self._data0
            if self._cues:
                self._write_chunk(self._cue_bytes())
            for at, value in self._patches:  # cluster sizes
                os.pwrite(self._fd, value, at)
            # Segment size, now known.
            end = self._pos
            os.pwrite(self._fd, vint(end - self._data0, 8), self._segment_size_at)
            # SeekHead into the reserved room.
            entries = [(INFO, self._info_at), (TRACKS, self._tracks_at), (TAGS, self._tags_at)]
            if self._cues:
                entries.append((CUES, cues_at))
            seek = element(
                SEEK_HEAD,
                b"".join(
                    element(SEEK, element(SEEK_ID, id_bytes(e)) + element(SEEK_POSITION, uint(p)))
                    for e, p in entries
                ),
            )
            room = SEEK_HEAD_ROOM - len(seek)
            if room == 1 or room < 0:  # cannot happen with 4 entries; keep the Void then
                seek, room = b"", SEEK_HEAD_ROOM
            os.pwrite(self._fd, seek + (void(room) if room else b""), self._data0)
            # Duration: this file's own frames, the first to the end of the last (one
            # nominal frame, else the mean interval). Not the last pts: a later segment
            # starts far from 0, and readers take Duration as the file's length.
            if self._duration_at is not None and self._first is not None and self._last is not None:
                step = self._frame_ticks or (
                    (self._last - self._first) / (self.frames - 1) if self.frames > 1 else 0.0
                )
                duration = self._last - self._first + step
                os.pwrite(
                    self._fd,
                    element(DURATION, struct.pack(">d", float(duration))),
                    self._duration_at,
                )
            if sync:
                os.fdatasync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1

    # -- internals ----------------------------------------------------------------------

    @staticmethod
    def _info(track: TrackInfo) -> tuple[bytes, int]:
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

    @staticmethod
    def _tracks(track: TrackInfo) -> bytes:
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

    @staticmethod
    def _tags(track: TrackInfo) -> bytes:
        simple = b""
        for name, value in (("TIMECODE", track.timecode), ("TITLE", track.title)):
            if value:
                simple += element(
                    SIMPLE_TAG,
                    element(TAG_NAME, name.encode()) + element(TAG_STRING, value.encode()),
                )
        return element(TAGS, element(TAG, element(TARGETS, b"") + simple))

    def _cue_bytes(self) -> bytes:
        points = b"".join(
            element(
                CUE_POINT,
                element(CUE_TIME, uint(t))
                + element(
                    CUE_TRACK_POSITIONS,
                    element(CUE_TRACK, uint(1)) + element(CUE_CLUSTER_POSITION, uint(pos)),
                ),
            )
            for t, pos in self._cues
        )
        return element(CUES, points)

    def _end_cluster(self, end: int) -> None:
        """The open cluster ends at file offset ``end``: its size, now known, is written
        at once when buffered; in direct mode at close (a write in the middle of the file
        would cost a read-modify-write of a block), so a killed file keeps "unknown"
        sizes, which readers accept."""
        if self._cluster_at >= 0:
            size = vint(end - (self._cluster_at + 8), 8)
            if self.direct:
                self._patches.append((self._cluster_at, size))
            else:
                os.pwrite(self._fd, size, self._cluster_at)
            self._cluster_at = -1

    def _write_direct(self, lead: int, pre: bytes, data: Bytes) -> None:
        """One aligned write: Void(lead), ``pre``, the JPEG, a Void to the next block."""
        found = region(data)
        if found is None:  # plain bytes: stage them in aligned memory (one copy)
            self.staged += 1
            arr, off = self._stage(data)
        else:
            arr, off = found
        mv = memoryview(arr)  # type: ignore[arg-type]
        start, end = off - HEAD, off + len(data)
        if lead:
            mv[start : start + lead] = void(lead)
        mv[off - len(pre) : off] = pre
        pad = _pad(end - start)
        if pad:
            mv[end : end + pad] = void(pad)
        self._write_all(mv[start : end + pad])

    def _stage(self, data: Bytes, room: int = HEAD) -> tuple[npt.NDArray[np.uint8], int]:
        """Copy ``data`` into the aligned scratch buffer, ``room`` bytes after a block
        boundary; returns (buffer, offset of the data)."""
        need = len(data) + room + TAIL + ALIGN
        if self._scratch is None or self._scratch.nbytes < need:
            self._scratch = np.empty(need + need // 4, np.uint8)
        off = (-self._scratch.ctypes.data) % ALIGN + room
        memoryview(self._scratch)[off : off + len(data)] = data  # type: ignore[arg-type]
        return self._scratch, off

    def _buffered(self) -> None:
        """Leave direct mode (for the closing writes, or a file system that refuses it)."""
        if self.direct:
            import fcntl  # POSIX only; direct mode is only ever on where O_DIRECT exists

            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~getattr(os, "O_DIRECT", 0))
            self.direct = False

    def _write_chunk(self, data: bytes) -> None:
        if self.direct:
            arr, off = self._stage(data, 0)
            self._write_all(memoryview(arr)[off : off + len(data)])  # type: ignore[arg-type]
        else:
            self._writev([data])

    def _write_all(self, chunk: memoryview) -> None:
        """Write ``chunk`` at ``_pos`` in full, or raise with the file cut back to ``_pos``."""
        try:
            done = os.write(self._fd, chunk)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not self.direct:
                raise
            # The file system took O_DIRECT at open but refuses the writes: go on buffered
            # (the Voids are valid Matroska either way). Nothing of the chunk was written.
            self._buffered()
            done = os.write(self._fd, chunk)
        try:
            if done < len(chunk):
                self._buffered()  # the rest is no longer aligned
                self._write_rest(chunk[done:])
        except OSError:
            self._rewind()
            raise
        self._pos += len(chunk)

    def _write_rest(self, rest: Bytes) -> None:
        """Finish a short write (rare: signals, a full disk)."""
        done = 0
        while done < len(rest):
            n = os.write(self._fd, rest[done:])
            if n <= 0:
                raise OSError("short write")
            done += n

    def _rewind(self) -> None:
        """After a failed write: the file ends at ``_pos`` again (best effort)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._pos)
            os.lseek(self._fd, self._pos, os.SEEK_SET)

    def _writev(self, parts: list[Bytes]) -> None:
        total = sum(len(p) for p in parts)
        try:
            done = os.writev(self._fd, parts)
            if done < total:
                self._write_rest(b"".join(bytes(p) for p in parts)[done:])
        except OSError:
            self._rewind()
            raise
        self._pos += total


def _pad(n: int) -> int:
    """Bytes of Void that take ``n`` bytes to the next ``ALIGN`` boundary (never 1: a Void
    takes at least 2 bytes)."""
    pad = -n % ALIGN
    return pad + ALIGN if pad == 1 else pad
