"""The disk as the console shows it: the engine's own figures, never a count of its own.

During a take, the take's folders as its recording checks them once a second
(:attr:`~mmrec.session.recording.Recording.disk`: free space, the rate written, the
time left and the level of each output folder, relay folders included) and the folder
each camera writes into now. Between takes, the output folders judged by the same rules
at the rate the cameras would write (:class:`~mmrec.session.folders.OutputFolders`,
with the forecast's assumption in words). Pure: the views are made from those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmrec.session.folders import DiskStatus
from mmrec.store.disk import STATES


@dataclass(frozen=True, slots=True)
class FolderView:
    """One output folder: ``--out`` (``relay`` 0), then each ``--relay`` in turn."""

    root: str  # the output folder as given (the alerts' subject, take or no take)
    folder: str  # during a take, the take's folder in it
    relay: int  # 0: the first output folder; n: the n-th relay folder
    free_bytes: int | None  # None: cannot be read (gone)
    total_bytes: int | None
    rate_bytes_per_s: float  # written into it now (or expected, before a take)
    seconds_left: float | None
    state: str  # ok | low | critical | full | read-only | gone (mmrec.store.disk)
    cameras: tuple[str, ...] = ()  # writing into it now (during a take)


@dataclass(frozen=True, slots=True)
class DiskView:
    folders: tuple[FolderView, ...]
    free_bytes: int | None  # in all folders that can be written
    seconds_left: float | None  # recording time left in all of them
    state: str  # the worst folder's
    recording: bool  # measured from a take's writes (else a forecast)
    basis: str | None = None  # before a take: what the forecast assumes, in words


def disk_view(
    status: DiskStatus,
    roots: Sequence[Path],
    *,
    recording: bool,
    writing: Mapping[str, int] | None = None,
) -> DiskView:
    """The console's view of ``status`` (a take's, or the output folders' between takes);
    ``roots`` are the output folders in order, ``writing`` the folder index each camera
    of the take writes into."""
    writing = writing or {}
    folders = tuple(
        FolderView(
            root=str(roots[i]) if i < len(roots) else info.folder,
            folder=info.folder,
            relay=i,
            free_bytes=info.free_bytes,
            total_bytes=info.total_bytes,
            rate_bytes_per_s=info.rate_bps,
            seconds_left=info.seconds_left,
            state=info.state,
            cameras=tuple(c for c, f in writing.items() if f == i),
        )
        for i, info in enumerate(status.folders)
    )
    return DiskView(
        folders=folders,
        free_bytes=status.free_bytes,  # each file system once (a relay on --out's disk)
        seconds_left=status.seconds_left,
        state=max((f.state for f in folders), key=STATES.index, default="ok"),
        recording=recording,
        basis=None if recording or status.forecast is None else status.forecast.basis,
    )


def writable(state: str) -> bool:
    return state not in ("read-only", "gone")
