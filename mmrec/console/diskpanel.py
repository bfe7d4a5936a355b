"""The console's disk panel: what it shows of the output folders, take or no take.

During a take the take's own recording checks its folders once a second (its
:class:`~mmrec.store.disk.DiskWatch`); between takes :class:`DiskPanel` checks the output
folders at the same pace and by the same rules (:class:`~mmrec.session.folders.OutputFolders`,
at the rate the cameras would write now), and puts their notices into the session's log.
:meth:`DiskPanel.view` makes the page's :class:`~mmrec.console.disk.DiskView` from whichever
applies.
"""

from __future__ import annotations

import asyncio
from typing import Final

from mmrec.console.disk import DiskView, disk_view
from mmrec.session.engine import Session
from mmrec.session.events import EventKind
from mmrec.session.folders import DiskStatus, OutputFolders
from mmrec.session.recording import CameraStatus, camera_rate

DISK_EVERY_S: Final = 1.0  # between takes, as a take's recording checks its folders


class DiskPanel:
    """The output folders as the console shows them (see the module docstring)."""

    def __init__(self, session: Session, folders: OutputFolders) -> None:
        self.session = session
        self.folders = folders
        self._standby: DiskStatus | None = None  # the output folders, between takes

    def view(self, in_take: dict[str, CameraStatus]) -> DiskView | None:
        """The take's folders as its recording checks them; between takes (and in a
        take's first second, before its first check) the output folders."""
        rec = self.session.recording
        roots = self.folders.roots
        if rec is not None and rec.disk.folders:
            writing = {n: cs.writer.folder for n, cs in in_take.items() if cs.writer.frames}
            return disk_view(rec.disk, roots, recording=True, writing=writing)
        if self._standby is None:
            return None
        return disk_view(self._standby, roots, recording=False)

    async def check(self) -> None:
        """The output folders at the rate the cameras would write now (in a thread:
        statvfs may wait on a network mount); their notices into the session's log."""
        rates = [camera_rate(f) for f in self.session.feeds.values()]
        status, notices = await asyncio.to_thread(self.folders.check, rates)
        self._standby = status
        for n in notices:
            self.session.note(n.text, EventKind.ALERT if n.alert else EventKind.DISK)

    async def run(self) -> None:
        """Check every ``DISK_EVERY_S`` while no take is being recorded (until cancelled)."""
        while True:
            await asyncio.sleep(DISK_EVERY_S)
            if self.session.recording is None:  # a take checks its own folders
                await self.check()
