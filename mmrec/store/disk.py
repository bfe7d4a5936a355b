"""Free space where a take is written: how long it lasts, and when to say so.

Before a take, :func:`forecast` says how long the free space lasts at the rate the
cameras are expected to write: each camera's measured rate where it has streamed (a
session keeps feeds warm), else its declared or assumed frame rate times an assumed
frame size, and the forecast states that assumption in words. During a take,
:class:`DiskWatch` turns a check of every output folder (:func:`check`, one ``statvfs``
and one ``stat`` per folder, run once a second in a thread) and the bytes the writers
wrote into per-folder :class:`~mmrec.store.take.DiskInfo` and the events to raise when
the time left crosses a threshold (warnings at ``LOW_S``, alerts at ``CRITICAL_S`` and
when a folder is full, gone or read-only), each once per crossing, with a word when
things are well again. Between takes (a console's session) the same watch judges the
folders at the forecast's rate instead (:meth:`DiskWatch.judge`), so the levels, and
when they are said, are the same before and during a take.

Pure apart from :func:`check` and :func:`space`; times are monotonic ns given by the caller.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Final

from mmrec.store.take import DiskInfo

ASSUMED_FPS: Final = 30.0
ASSUMED_FRAME_BYTES: Final = 217_000  # a 1080p phone JPEG (README: ~217 KB at 1080p30)
LOW_S: Final = 15 * 60  # less recording time than this left: a warning
CRITICAL_S: Final = 2 * 60  # less than this: an alert
FULL_BYTES: Final = 4 << 20  # less free than this: full (a few frames' worth)
RATE_WINDOW_NS: Final = 10_000_000_000  # the write rate is measured over the last 10 s


@dataclass(frozen=True, slots=True)
class Space:
    """What ``statvfs`` says of a folder's file system."""

    free: int  # bytes this process may still write there
    total: int
    read_only: bool
    device: int = 0  # which file system (st_dev): folders on one disk share its space


def space(path: Path) -> Space:
    """The file system of ``path`` (OSError if it cannot be read)."""
    st = os.statvfs(path)
    # root may use the blocks reserved for it (ext4: 5 % by default); others may not
    avail = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return Space(
        avail * st.f_frsize,
        st.f_blocks * st.f_frsize,
        bool(st.f_flag & os.ST_RDONLY),
        os.stat(path).st_dev,  # not f_fsid: FUSE mounts leave it 0
    )


def total_free(spaces: Iterable[Space | None]) -> int:
    """Free bytes over ``spaces``, each file system counted once (a relay folder on the
    disk of the first folder adds no room)."""
    by_fs = {sp.device: sp.free for sp in spaces if sp is not None}
    return sum(by_fs.values())


@dataclass(frozen=True, slots=True)
class FolderCheck:
    """One output folder, as :func:`check` found it."""

    folder: Path
    space: Space | None  # None: gone (or unreadable)
    problem: str | None  # why it cannot be written, in words (gone, replaced, read-only)
    inode: int | None = None  # the folder's, as found (None: gone)


def check(folder: Path, inode: int | None) -> FolderCheck:
    """Is the take folder still there (the same one: ``inode`` from when it was made), and
    how much room its disk has. Blocking (statvfs may wait on a network mount): a thread."""
    try:
        st = os.stat(folder)
    except OSError as exc:
        return FolderCheck(folder, None, f"take folder {folder} is gone ({exc.strerror})")
    try:
        sp = space(folder)
    except OSError as exc:
        return FolderCheck(folder, None, f"cannot read the disk of {folder} ({exc.strerror})")
    if inode is not None and st.st_ino != inode:
        problem = f"take folder {folder} was removed (and made again)"
        return FolderCheck(folder, sp, problem, st.st_ino)
    if sp.read_only:
        return FolderCheck(folder, sp, f"the disk of {folder} is read-only", st.st_ino)
    return FolderCheck(folder, sp, None, st.st_ino)


@dataclass(frozen=True, slots=True)
class CameraRate:
    """What is known of one camera's rate before a take."""

    name: str
    bytes_per_s: float | None = None  # measured while it streamed
    fps: float | None = None  # declared by the node (/status), else assumed


@dataclass(frozen=True, slots=True)
class Forecast:
    """How long the free space lasts, and on what assumption."""

    free_bytes: int
    rate_bps: float
    seconds: float | None  # None: nothing expected to be written
    basis: str  # the assumption, in words

    def describe(self) -> str:
        free = f"{human_bytes(self.free_bytes)} free"
        if self.seconds is None:
            return f"{free} ({self.basis})"
        return (
            f"{free}: about {human_duration(self.seconds)} of recording at "
            f"{human_bytes(self.rate_bps)}/s ({self.basis})"
        )


def forecast(free_bytes: int, cameras: Sequence[CameraRate]) -> Forecast:
    """The time ``free_bytes`` lasts for ``cameras`` (see the module docstring)."""
    measured = [c for c in cameras if c.bytes_per_s]
    assumed = [c for c in cameras if not c.bytes_per_s]
    rate = sum(c.bytes_per_s or 0.0 for c in measured)
    parts = []
    if measured:
        parts.append(f"{len(measured)} camera(s) as measured, {human_bytes(rate)}/s")
    if assumed:
        each = [(c.fps or ASSUMED_FPS) * ASSUMED_FRAME_BYTES for c in assumed]
        rate += sum(each)
        fps = {c.fps or ASSUMED_FPS for c in assumed}
        fps_text = f"{fps.pop():g} fps" if len(fps) == 1 else "their declared fps"
        parts.append(
            f"{len(assumed)} camera(s) assumed {fps_text} x "
            f"{ASSUMED_FRAME_BYTES // 1000} KB/frame (1080p) until measured"
        )
    if not cameras:
        return Forecast(free_bytes, 0.0, None, "no cameras yet")
    return Forecast(free_bytes, rate, free_bytes / rate if rate else None, "; ".join(parts))


class Level(IntEnum):
    """How urgent a folder's situation is (ordered: higher is worse)."""

    OK = 0
    LOW = 1
    CRITICAL = 2
    FULL = 3
    GONE = 4


@dataclass(frozen=True, slots=True)
class Notice:
    """An event to raise: ``alert`` (else a plain disk event) and what to say."""

    alert: bool
    text: str


class DiskWatch:
    """Per output folder: the write rate, time left, and the notices when it changes."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = list(folders)
        self._levels = [Level.OK] * len(self.folders)
        self._written: deque[tuple[int, int]] = deque()  # (mono ns, bytes written in all)
        self.infos: tuple[DiskInfo, ...] = ()
        self.seconds_left: float | None = None
        self.free_bytes: int | None = None  # on the writable folders, each file system once

    def rate(self) -> float:
        """Bytes per second written over the last ``RATE_WINDOW_NS``."""
        w = self._written
        if len(w) < 2 or w[-1][0] == w[0][0]:
            return 0.0
        return (w[-1][1] - w[0][1]) * 1e9 / (w[-1][0] - w[0][0])

    def update(
        self,
        now_ns: int,
        written: int,
        checks: Sequence[FolderCheck],
        active: Sequence[bool],
    ) -> list[Notice]:
        """Take a new reading: ``written`` bytes in all so far, one check per folder,
        which folders cameras write to now. Returns the notices to raise."""
        w = self._written
        w.append((now_ns, written))
        while len(w) > 2 and now_ns - w[1][0] >= RATE_WINDOW_NS:
            w.popleft()
        return self.judge(self.rate(), checks, active)

    def judge(
        self, rate: float, checks: Sequence[FolderCheck], active: Sequence[bool]
    ) -> list[Notice]:
        """The folders at ``rate`` bytes per second in all (written now by :meth:`update`,
        or expected before a take from a :class:`Forecast`), shared by the ``active``
        ones. Returns the notices to raise."""
        writing = sum(active) or 1
        notices: list[Notice] = []
        infos = []
        for i, c in enumerate(checks):
            folder_rate = rate / writing if active[i] else 0.0
            free = c.space.free if c.space else None
            left = free / folder_rate if free is not None and folder_rate > 0 else None
            level, state = _level(c, left)
            if level < self._levels[i]:
                # better, but by a margin before it counts (no notices to and fro when
                # the time left hovers at a threshold)
                calmer, _ = _level(c, left, margin=1.25)
                if calmer >= self._levels[i]:
                    level, state = self._levels[i], _STATE[self._levels[i]]
            infos.append(
                DiskInfo(
                    folder=str(c.folder),
                    free_bytes=free,
                    total_bytes=c.space.total if c.space else None,
                    rate_bps=round(folder_rate, 1),
                    seconds_left=None if left is None else round(left, 1),
                    state=state,
                )
            )
            notices += self._notices(i, level, c, left)
        self.infos = tuple(infos)
        usable = total_free(c.space for c in checks if c.problem is None)
        self.free_bytes = usable if any(c.space for c in checks) else None
        self.seconds_left = round(usable / rate, 1) if rate > 0 else None
        return notices

    def _notices(self, i: int, level: Level, c: FolderCheck, left: float | None) -> list[Notice]:
        before = self._levels[i]
        self._levels[i] = level
        if level == before:
            return []
        where = str(c.folder)
        free = human_bytes(c.space.free) if c.space else "?"
        if level < before:
            if level == Level.OK:
                return [Notice(False, f"{where}: writable again, {free} free")]
            return []  # better but not well: no news
        match level:
            case Level.LOW:
                return [Notice(False, f"{where}: {free} free, {_left(left)} of recording left")]
            case Level.CRITICAL:
                return [Notice(True, f"{where}: {free} free, only {_left(left)} left")]
            case Level.FULL:
                return [Notice(True, f"{where}: disk full ({free} free)")]
            case _:
                return [Notice(True, c.problem or f"{where}: cannot be written")]


STATES: Final = ("ok", "low", "critical", "full", "read-only", "gone")
"""A folder's states (:attr:`DiskInfo.state`), from best to worst."""

_STATE: Final = {
    Level.OK: "ok",
    Level.LOW: "low",
    Level.CRITICAL: "critical",
    Level.FULL: "full",
    Level.GONE: "gone",
}


def _level(c: FolderCheck, left: float | None, margin: float = 1.0) -> tuple[Level, str]:
    """The level of a folder; ``margin`` > 1 asks for that much more room than the
    thresholds (to leave a level only when clearly out of it)."""
    if c.space is None or (c.problem and not c.space.read_only):
        return Level.GONE, "gone"
    if c.space.read_only:
        return Level.GONE, "read-only"
    if c.space.free < FULL_BYTES * margin:
        return Level.FULL, "full"
    if left is not None and left < CRITICAL_S * margin:
        return Level.CRITICAL, "critical"
    if left is not None and left < LOW_S * margin:
        return Level.LOW, "low"
    return Level.OK, "ok"


def _left(seconds: float | None) -> str:
    return "?" if seconds is None else human_duration(seconds)


def human_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"
