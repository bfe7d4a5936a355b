"""A minimal Matroska writer for MJPEG passthrough: one write per run of frames, no copies.

Why not PyAV's muxer for the hot path: through libavformat each 200 KB frame costs about
eight 32 KiB ``write`` calls, a buffer copy and per-packet Python overhead; measured here
the recorder's write side then costs ~0.8 % of a core per 1080p30 stream, of a 1 % total
budget. This writer sends a frame's block header and JPEG bytes in one system call, and
a run of frames (``write_frames``) in one as well.

Two ways to the disk:

- Direct I/O (``direct=True``, the recorder's default): the file is opened ``O_DIRECT``
  and each frame goes out as a block-aligned region straight from the memory the parser
  copied it into (:mod:`mmrec.store.payload`), a run of them in one ``writev``: a Void
  element fills the room before the headers, another pads the tail to the next 4 KiB.
  No page cache: its copy, growth and writeback cost the recorder 55 µs to 600 µs per
  frame depending on how much had gone through it (see mmrec.store.payload); direct
  writes cost a steady ~50 µs. Frames given as plain ``bytes`` are copied into aligned
  memory of their own first. Where the file system refuses ``O_DIRECT`` (tmpfs, some
  network mounts) the writer falls back to buffered.
- Buffered (``direct=False``): one ``writev`` of the block headers and the JPEG bytes.

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

Crash safety: every frame is complete in the file once ``write_frame(s)`` returns, so a
SIGKILL loses nothing that was written. (Direct I/O puts the bytes on the device at once,
but the file's new length is file-system metadata, committed by the journal within
seconds: a power cut can lose the last seconds either way.) An unclosed file has
unknown-size Segment and (in direct mode) Clusters, which Matroska readers accept (it is
how live Matroska streams look).

Element encoding is pure, in :mod:`mmrec.store.ebml`; :class:`SegmentFile` here is the
thin I/O part: one file of a camera's recording (a take's ``seg-NNNN.mkv``), its
clusters, cue points and the patches made at close. The writer
pool and the per-camera writers that feed it live in :mod:`mmrec.store.writer`.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from mmrec.store.ebml import (
    CLUSTER,
    CUES,
    DURATION,
    INFO,
    SEGMENT,
    TAGS,
    TIMESTAMP,
    TRACKS,
    UNKNOWN_SIZE,
    TrackInfo,
    block_header,
    cues,
    ebml_header,
    element,
    id_bytes,
    info,
    seek_head,
    tags,
    tracks,
    uint,
    vint,
    void,
)
from mmrec.store.payload import ALIGN, HEAD, TAIL, Bytes, aligned, region

if TYPE_CHECKING:
    from mmrec.store.mkvread import SegmentLayout

SEEK_HEAD_ROOM: Final = 200  # bytes reserved for the SeekHead written at close
NS: Final = 1_000_000_000
CLUSTER_MAX_TICKS: Final = 32_767  # a block's int16 timestamp relative to its cluster
_CLUSTER_ID: Final = id_bytes(CLUSTER)
_CLUSTER_HEAD: Final = _CLUSTER_ID + UNKNOWN_SIZE  # its size is patched when it ends


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
            info_bytes, duration_at = info(track)
            self._duration_at: int | None = len(head) + duration_at
            head += info_bytes
            self._tracks_at = len(head) - self._data0
            head += tracks(track)
            self._tags_at = len(head) - self._data0
            head += tags(track)
            if self.direct and (pad := _pad(len(head))):
                head += void(pad)
            self._write_chunk(bytes(head))
        except BaseException:
            os.close(self._fd)
            raise

    def _init_state(self, tick_ns: int, frame_ns: int | None) -> None:
        self._scratch: npt.NDArray[np.uint8] | None = None  # aligned staging of the head
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
        self.write_frames(((pts, data),))

    def write_frames(self, frames: Sequence[tuple[int, Bytes]]) -> None:
        """Append JPEGs at their pts (increasing) in one system call, new clusters'
        headers included: in direct mode one ``writev`` of each frame's aligned region
        (Void, headers, JPEG, Void), else one ``writev`` of headers and JPEGs. All or
        nothing: if it raises, the file ends where it did before."""
        chunks: list[Bytes] = []
        starts: list[int] = []  # per frame: file offset of the cluster it opens, or -1
        pos = self._pos
        span, direct = self._cluster_span, self.direct
        open_cluster, cluster_pts = self._cluster_at >= 0, self._cluster_pts
        for pts, data in frames:
            if not open_cluster or pts - cluster_pts > span:
                cluster = _CLUSTER_HEAD + element(TIMESTAMP, uint(pts))
                cluster_pts, open_cluster = pts, True
            else:
                cluster = b""
            pre = cluster + block_header(pts - cluster_pts, len(data))
            if direct:
                lead = HEAD - len(pre)  # a Void before the headers
                chunk = self._framed(lead, pre, data)
                chunks.append(chunk)
                size = len(chunk)
            else:
                lead = 0
                chunks += (pre, data)
                size = len(pre) + len(data)
            starts.append(pos + lead if cluster else -1)
            pos += size
        self._write_all(chunks, pos - self._pos)
        # The bookkeeping follows a write that succeeded (a failed one left _pos as it was).
        for (pts, _), at in zip(frames, starts, strict=True):
            if at >= 0:
                self._end_cluster(at)
                self._cues.append((pts, at - self._data0))
                self._cluster_at = at + len(_CLUSTER_ID)
                self._cluster_pts = pts
        if self._first is None:
            self._first = frames[0][0]
        self._last = frames[-1][0]
        self.frames += len(frames)

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
                self._write_chunk(cues(self._cues))
            for at, value in self._patches:  # cluster sizes
                os.pwrite(self._fd, value, at)
            # Segment size, now known.
            end = self._pos
            os.pwrite(self._fd, vint(end - self._data0, 8), self._segment_size_at)
            # SeekHead into the reserved room.
            entries = [(INFO, self._info_at), (TRACKS, self._tracks_at), (TAGS, self._tags_at)]
            if self._cues:
                entries.append((CUES, cues_at))
            seek = seek_head(entries)
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

    def _framed(self, lead: int, pre: bytes, data: Bytes) -> memoryview:
        """The frame's aligned region, ready for a direct write: Void(lead), ``pre``, the
        JPEG, a Void to the next block, written around the JPEG in its own memory."""
        found = region(data)
        if found is None:  # plain bytes: copied into aligned memory of their own
            self.staged += 1
            copy = aligned(len(data))
            copy[:] = data
            found = region(copy)
            assert found is not None
        arr, off = found
        mv = memoryview(arr)  # type: ignore[arg-type]
        start, end = off - HEAD, off + len(data)
        if lead:
            mv[start : start + lead] = void(lead)
        mv[off - len(pre) : off] = pre
        pad = _pad(end - start)
        if pad:
            mv[end : end + pad] = void(pad)
        return mv[start : end + pad]

    def _stage(self, data: Bytes) -> tuple[npt.NDArray[np.uint8], int]:
        """Copy ``data`` into the aligned scratch buffer, at a block boundary; returns
        (buffer, offset of the data)."""
        need = len(data) + TAIL + ALIGN
        if self._scratch is None or self._scratch.nbytes < need:
            self._scratch = np.empty(need + need // 4, np.uint8)
        off = (-self._scratch.ctypes.data) % ALIGN
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
            arr, off = self._stage(data)
            self._write_all([memoryview(arr)[off : off + len(data)]], len(data))  # type: ignore[arg-type]
        else:
            self._write_all([data], len(data))

    def _write_all(self, chunks: list[Bytes], total: int) -> None:
        """Write ``chunks`` (``total`` bytes) at ``_pos`` in full, or raise with the file
        cut back to ``_pos``."""
        try:
            done = os.writev(self._fd, chunks)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not self.direct:
                raise
            # The file system took O_DIRECT at open but refuses the writes: go on buffered
            # (the Voids are valid Matroska either way). Nothing of the chunks was written.
            self._buffered()
            done = os.writev(self._fd, chunks)
        try:
            if done < total:
                self._buffered()  # the rest is no longer aligned
                self._write_rest(b"".join(bytes(c) for c in chunks)[done:])
        except OSError:
            self._rewind()
            raise
        self._pos += total

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


def _pad(n: int) -> int:
    """Bytes of Void that take ``n`` bytes to the next ``ALIGN`` boundary (never 1: a Void
    takes at least 2 bytes)."""
    pad = -n % ALIGN
    return pad + ALIGN if pad == 1 else pad
