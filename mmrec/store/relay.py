"""Where a camera's files go in a take: its folder in one of the take's output folders
(the first, then relay folders), and the ``index.csv`` there.

:class:`CameraFolder` is what :class:`~mmrec.store.files.CameraFiles` moves when a folder
is full or gone: it says which folders to try, in order, whether one has room (a
``statvfs``), makes the camera's folder there again, and carries the index over (copied
whole, so one ``index.csv`` always holds every row; the old one stays where it was). A
folder is only re-created on the disk it was made on (a disk that was unmounted leaves an
empty mount point that must not fill up instead). The decisions (when to move, what is
lost, what is said) stay in :mod:`mmrec.store.files`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from mmrec.store.index import INDEX, IndexFile

SPARE_BYTES: Final = 1 << 20  # free space a retry wants beyond the frame (index, metadata)


class CameraFolder:
    """A camera's folder (``cam_dir``) in the take's ``folders``, the first one's paths
    relative, relay folders' absolute (one writer thread)."""

    def __init__(self, folders: Sequence[Path], cam_dir: str) -> None:
        if not folders:
            raise ValueError("a camera needs at least one output folder")
        self.takes = [Path(f) for f in folders]
        self._devices = [_device(f) for f in self.takes]
        self.cam_dir = cam_dir
        self.current = 0  # which output folder it writes to
        self.dir = self.takes[0] / cam_dir  # the camera's folder in it
        self.index = IndexFile()

    def open(self, folder: int, copy_from: Path | None = None, rows: bytes = b"") -> None:
        """Write into ``folder`` from now on: the camera's folder made there (on the disk
        it was made on) and ``index.csv`` opened there (see :meth:`IndexFile.open`)."""
        take = self.takes[folder]
        cam = take / self.cam_dir
        if self._devices[folder] is None:  # a folder the caller did not make beforehand
            cam.mkdir(parents=True, exist_ok=True)
            self._devices[folder] = _device(take)
        else:
            if not take.is_dir():  # the take folder was removed: again, on its own disk
                if _device(take.parent) != self._devices[folder]:
                    raise OSError(
                        errno.ENODEV, f"{take.parent} is not on the disk the take began on"
                    )
                take.mkdir(exist_ok=True)
            cam.mkdir(exist_ok=True)
        self.index.open(cam, copy_from, rows)
        self.current = folder
        self.dir = cam

    def move_to(self, folder: int) -> Path | None:
        """Continue in ``folder`` (the index carried over), or in this one again after its
        files vanished (a fresh index, rows from here on). Returns the output folder left,
        if it is another one."""
        old_index = self.dir / INDEX
        left = self.takes[self.current] if folder != self.current else None
        if folder == self.current and self.index.gone():
            self.open(folder)
        else:
            self.open(folder, copy_from=old_index)
        return left

    def order(self, *, relay_only: bool = False) -> list[int]:
        """The folders to try, this one first (``relay_only``: the others)."""
        n = len(self.takes)
        order = [(self.current + k) % n for k in range(n)]
        return order[1:] if relay_only else order

    def has_room(self, folder: int, need: int) -> bool:
        """``need`` bytes (and some spare) fit in ``folder``, which is writable."""
        take = self.takes[folder]
        probe = take if take.is_dir() else take.parent
        try:
            st = os.statvfs(probe)
        except OSError:
            return False
        if st.f_flag & os.ST_RDONLY:
            return False
        free = st.f_bavail * st.f_frsize if os.geteuid() else st.f_bfree * st.f_frsize
        return free >= need + SPARE_BYTES

    def path(self, name: str) -> str:
        """A file of this camera in the current folder, as the manifest names it: relative
        to the first folder's take directory, absolute in a relay folder."""
        rel = f"{self.cam_dir}/{name}"
        return rel if self.current == 0 else str(self.takes[self.current] / rel)

    def exists(self, rel: str) -> bool:
        """A file named as :meth:`path` names it is still there."""
        try:
            os.stat(self.takes[0] / rel)  # an absolute rel (a relay) joins as is
        except FileNotFoundError:
            return False
        except NotADirectoryError:
            return False
        except OSError:
            return True  # cannot tell (no permission, I/O error): never forget its frames
        return True


def _device(path: Path) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None
