"""Where a take is written: its folder in each output folder, checked, and its manifests.

A take has one folder in the first output folder (``--out``) and one in each relay
folder (``--relay``), all with the same take id. :class:`TakeFolders` makes them, checks
them once a second (still there, the same folder, free space: :mod:`mmrec.store.disk`),
writes the manifest into each (paths as that copy needs them:
:func:`mmrec.store.take.rebase`) and says how long the space lasts. Its blocking calls
(``create``, ``check``, ``write_manifests``, ``forecast``) run in a thread, or once at
the start of a take.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mmrec.errors import RecordingError
from mmrec.store import disk
from mmrec.store.take import DiskInfo, Manifest, rebase, write_manifest


@dataclass(frozen=True, slots=True)
class DiskStatus:
    """The take's disks, live: each output folder, and the recording time left on all."""

    folders: tuple[DiskInfo, ...]
    seconds_left: float | None
    forecast: disk.Forecast | None  # said before the take (the assumption included)
    free_bytes: int | None = None  # on all writable folders, each file system once


class TakeFolders:
    """The take's folder on each output folder: the first one, then relay folders."""

    def __init__(self, out: Path, relays: Sequence[Path] = ()) -> None:
        self.out = Path(out)
        self.relays = tuple(Path(r) for r in relays)
        self.dir = self.out  # the take's folder in ``out``, once made
        self.relay_dirs: tuple[Path, ...] = ()  # its folders in the relay folders (absolute)
        self._inodes: list[int | None] = []
        self._devices: list[int] = []
        self.watch = disk.DiskWatch([])
        self.forecast: disk.Forecast | None = None
        self._lock_fd = -1

    @property
    def all(self) -> tuple[Path, ...]:
        return (self.dir, *self.relay_dirs)

    def create(self, base: str) -> str:
        """Make the take's folder in every output folder with one id (``base``, or
        ``base-2``, ... when taken in any of them); returns the id."""
        take_id = base
        n = 1
        try:
            for root in (self.out, *self.relays):
                root.mkdir(parents=True, exist_ok=True)
            while True:
                try:
                    (self.out / take_id).mkdir()
                except FileExistsError:
                    pass
                else:
                    if not any((r / take_id).exists() for r in self.relays):
                        break
                n += 1
                take_id = f"{base}-{n}"
        except OSError as exc:
            raise RecordingError(
                f"cannot create take folder in {self.out}: {exc.strerror}"
            ) from exc
        self.dir = self.out / take_id
        dirs = []
        for root in self.relays:
            try:
                (root / take_id).mkdir()
            except OSError as exc:
                raise RecordingError(
                    f"cannot create the take's folder in relay folder {root}: {exc.strerror}"
                ) from exc
            dirs.append(Path(os.path.abspath(root / take_id)))
        self.relay_dirs = tuple(dirs)
        self._inodes = [os.stat(f).st_ino for f in self.all]
        self._devices = [os.stat(f).st_dev for f in self.all]
        self.watch = disk.DiskWatch(self.all)
        self._lock()
        return take_id

    def _lock(self) -> None:
        """Hold a lock on the take's folder while recording: ``mmrec repair`` refuses a
        take whose recorder still runs (the kernel lets go of it when the process ends,
        however it ends)."""
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return  # another holds it: cannot happen for a folder just made; go on unlocked
        self._lock_fd = fd

    def release(self) -> None:
        """Let go of the take (its recording is finished)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def status(self) -> DiskStatus:
        return DiskStatus(
            self.watch.infos, self.watch.seconds_left, self.forecast, self.watch.free_bytes
        )

    def check(self) -> list[disk.FolderCheck]:
        """Every folder as it is now (blocking: statvfs). A folder removed and made again
        is reported once; from then on the new one is the take's."""
        checks = [disk.check(f, i) for f, i in zip(self.all, self._inodes, strict=True)]
        for i, c in enumerate(checks):
            if c.inode is not None:
                self._inodes[i] = c.inode
        return checks

    def write_manifests(self, manifest: Manifest, *, strict: bool = False) -> list[str]:
        """The manifest into every folder (blocking). A folder that refuses it (full,
        gone) is skipped: the others have it. Returns why each refused; with ``strict``,
        RecordingError if none took it."""
        errors = []
        for i, folder in enumerate(self.all):
            copy = manifest if folder == self.dir else rebase(manifest, self.dir, folder)
            try:
                self._remake(i)
                write_manifest(folder, copy)
            except RecordingError as exc:
                errors.append(str(exc))
        if strict and len(errors) == len(self.all):
            raise RecordingError("; ".join(errors))
        return errors

    def _remake(self, i: int) -> None:
        """Make the take's folder again if it was removed, on the disk it was made on
        only (an unmounted disk leaves a mount point that must not be written instead)."""
        folder = self.all[i]
        if folder.is_dir():
            return
        with contextlib.suppress(OSError):
            if os.stat(folder.parent).st_dev == self._devices[i]:
                folder.mkdir(exist_ok=True)

    def make_forecast(self, cameras: Sequence[disk.CameraRate]) -> disk.Forecast:
        """How long the free space of every folder lasts for ``cameras`` (statvfs each)."""
        spaces = []
        for folder in self.all:
            with contextlib.suppress(OSError):
                spaces.append(disk.space(folder))
        self.forecast = disk.forecast(disk.total_free(spaces), cameras)
        return self.forecast


class OutputFolders:
    """The output folders between takes (a console's session): how long their space
    lasts for the cameras as they stream now, judged as a take's folders are.

    A take writes into ``out`` first, then into the relay folders in turn; before it,
    ``out`` may not exist yet, so the nearest existing folder above it is the one checked
    (where the take's folder will be made). :meth:`check` blocks (``statvfs``): a thread.
    """

    def __init__(self, out: Path, relays: Sequence[Path] = ()) -> None:
        self.roots = (Path(out), *(Path(r) for r in relays))
        self.watch = disk.DiskWatch(self.roots)

    def check(self, cameras: Sequence[disk.CameraRate]) -> tuple[DiskStatus, list[disk.Notice]]:
        """Every output folder now, the forecast for ``cameras``, and the notices to raise
        when a folder's level changed (the same words a take's watch uses)."""
        checks = []
        for root in self.roots:
            where = root
            while not where.exists() and where != where.parent:
                where = where.parent
            c = disk.check(where, None)
            checks.append(replace(c, folder=root))
        free = disk.total_free(c.space for c in checks if c.problem is None)
        fc = disk.forecast(free, cameras)
        # the take writes into the first folder while it can (then the relays, in turn)
        active = [i == 0 for i in range(len(checks))]
        notices = self.watch.judge(fc.rate_bps, checks, active)
        status = DiskStatus(self.watch.infos, self.watch.seconds_left, fc, self.watch.free_bytes)
        return status, notices
