"""How a camera's writing is going: its state, what it lost and why, and the news.

:class:`WriteHealth` is the bookkeeping side of :class:`mmrec.store.files.CameraFiles`
(which does the I/O): the :class:`WriteState` and its cause in words, frames lost per
cause, the write gaps (take timeline: from the last frame written before a failure to the
first after it), when to try again, and the :class:`WriteChange` sent through
``on_change`` at once when writing fails (once per cause) and when it recovers (with the
frames lost and the gap). Pure: no I/O, the clock is given; used from one writer thread
at a time, read from any (``snapshot`` copies first).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

DELETED: Final = "deleted"  # the cause of frames written, then deleted under the writer
RETRY_NS: Final = 250_000_000  # a failing camera tries again this often (on its next frame)

_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_GONE: Final = frozenset(
    {errno.ENOENT, errno.EROFS, errno.ESTALE, errno.ENODEV, errno.ENXIO, errno.EACCES}
)


class WriteState(StrEnum):
    """Where a camera's writing is; the value is what the manifest and views show."""

    IDLE = "idle"  # no frame yet
    WRITING = "writing"
    DISK_FULL = "disk-full"  # ENOSPC / EDQUOT: retrying, or moving to a relay folder
    GONE = "folder-gone"  # its files deleted, its folder gone or read-only: retrying
    IO_ERROR = "io-error"  # EIO, or any other error from the file system or the muxer
    CLOSED = "closed"

    @property
    def failing(self) -> bool:
        return self in (WriteState.DISK_FULL, WriteState.GONE, WriteState.IO_ERROR)


def failure_state(exc: BaseException) -> WriteState:
    """Which failing state an exception from the file side means."""
    if isinstance(exc, OSError):
        if exc.errno in _FULL:
            return WriteState.DISK_FULL
        if exc.errno in _GONE:
            return WriteState.GONE
    return WriteState.IO_ERROR


@dataclass(frozen=True, slots=True)
class WriteChange:
    """A camera's writing changed state (sent from the writer thread, as it happens)."""

    camera: str
    mono_ns: int
    state: WriteState
    detail: str  # in words: the cause, or what recovered and what it cost
    lost: int = 0  # frames lost since the failure began (on recovery)
    gap: tuple[int, int] | None = None  # on recovery: the span without frames on disk


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    state: WriteState
    error: str | None  # the current failure in words; None while writing
    lost: int  # frames received but not written (disk full, I/O error, folder gone)
    lost_causes: tuple[tuple[str, int], ...]  # (state value, frames) per cause
    write_gaps: tuple[tuple[int, int, str], ...]  # (from_ns, to_ns, cause), take timeline
    last_failure: str | None  # the latest failure in words, kept once writing is back


class WriteHealth:
    """One camera's writing state and losses (see the module docstring)."""

    def __init__(
        self,
        camera: str,
        clock: Callable[[], int],
        on_change: Callable[[WriteChange], None] | None = None,
    ) -> None:
        self.camera = camera
        self._clock = clock
        self._on_change = on_change
        self.state = WriteState.IDLE
        self.error: str | None = None
        self._lost: dict[str, int] = {}  # per cause: a WriteState's value, or DELETED
        self._lost_now = 0  # since the current failure began
        self._gap_from = 0  # take-timeline span of the current failure's lost frames
        self._gap_last = 0
        self._gaps: list[tuple[int, int, str]] = []
        self._last_written_ns: int | None = None
        self._retry_at = 0
        self._announced = False  # the current failure was reported
        self._last_failure: str | None = None

    def snapshot(self) -> HealthSnapshot:
        # From another thread: copies first (a C-level copy holds the GIL throughout).
        lost = list(self._lost.items())
        return HealthSnapshot(
            self.state,
            self.error,
            sum(v for _, v in lost),
            tuple((str(k), v) for k, v in lost),
            tuple(self._gaps),
            self._last_failure,
        )

    def retry_due(self) -> bool:
        return self._clock() >= self._retry_at

    def fail(self, state: WriteState, text: str, *, announce: bool = True) -> None:
        """Writing fails (``text``: the cause in words); tried again after ``RETRY_NS``.
        ``announce=False`` holds the news back (a relay folder may take over at once)."""
        if not self.state.failing:
            self._lost_now = 0
            self._announced = False
        if state != self.state or text != self.error:
            self._announced = False
        self.state, self.error = state, text
        self._last_failure = text
        self._retry_at = self._clock() + RETRY_NS
        if announce:
            self.announce()

    def announce(self) -> None:
        """Say what fails, once (until the state or its cause changes)."""
        if self.state.failing and not self._announced:
            self._announced = True
            self.emit(
                WriteChange(self.camera, self._clock(), self.state, f"{self.error}; retrying")
            )

    def lose(self, time_ns: int) -> None:
        """A frame (at take time ``time_ns``) was not written: counted under the cause."""
        if self._lost_now == 0:
            last = self._last_written_ns
            self._gap_from = time_ns if last is None else last
        self._gap_last = time_ns
        self._lost[self.state] = self._lost.get(self.state, 0) + 1
        self._lost_now += 1

    def deleted(self, frames: int, span: tuple[int, int]) -> None:
        """``frames`` already written (take time ``span``) are gone: their file was deleted
        by someone else. Counted lost under ``DELETED``, the span a write gap."""
        if frames:
            self._lost[DELETED] = self._lost.get(DELETED, 0) + frames
            self._gaps.append((*span, DELETED))

    def written(self, time_ns: int, where: str) -> None:
        """A frame was written (into ``where``); after a failure, writing is back."""
        before = self.state
        if before != WriteState.WRITING:
            self.state, self.error = WriteState.WRITING, None
            if before.failing and (self._announced or self._lost_now):
                gap = self._gap_ends(time_ns, before)
                lost = self._lost_now
                self.emit(
                    WriteChange(
                        self.camera,
                        self._clock(),
                        WriteState.WRITING,
                        f"writing again into {where} after {before}: {lost} frame(s) lost",
                        lost,
                        gap,
                    )
                )
            # else nothing was said and nothing lost (a move to a relay folder): no news
        self._last_written_ns = time_ns

    def close(self) -> None:
        """The files are closed: a failure still going on ends here, and says what it cost."""
        if self.state.failing:
            gap = self._gap_ends(None, self.state)
            if self._lost_now:
                lost = self._lost_now
                text = f"{lost} frame(s) lost until the end ({self.state})"
                self.emit(WriteChange(self.camera, self._clock(), self.state, text, lost, gap))
        self.state = WriteState.CLOSED

    def emit(self, change: WriteChange) -> None:
        if self._on_change is not None:
            self._on_change(change)

    def _gap_ends(self, time_ns: int | None, cause: WriteState) -> tuple[int, int] | None:
        """The current failure's span without frames on disk, from the last frame written
        before it to the first after it (or to the last frame lost, at the end)."""
        if self._lost_now == 0:
            return None
        gap = (self._gap_from, self._gap_last if time_ns is None else time_ns)
        self._gaps.append((*gap, str(cause)))
        return gap
