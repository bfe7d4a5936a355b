"""Free space where takes are written, read in a thread every few seconds.

``shutil.disk_usage`` is a ``statvfs`` call that a stalled network mount can block, so it
never runs on the event loop. The recording time left is the free space over the rate
at which the cameras bring data (what a take writes, whether or not one is running).
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mmrec.errors import describe

DISK_EVERY_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class DiskView:
    path: str
    free_bytes: int | None
    total_bytes: int | None
    rate_bytes_per_s: float  # what the cameras bring now
    seconds_left: float | None  # at that rate; None when nothing comes in
    error: str | None = None


class DiskWatch:
    """The free space of the folder ``path`` (the nearest existing parent), kept current."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.free: int | None = None
        self.total: int | None = None
        self.error: str | None = None

    def view(self, rate_bytes_per_s: float) -> DiskView:
        left = None
        if self.free is not None and rate_bytes_per_s > 0:
            left = self.free / rate_bytes_per_s
        return DiskView(str(self.path), self.free, self.total, rate_bytes_per_s, left, self.error)

    async def check(self) -> None:
        where = self.path
        while not where.exists() and where != where.parent:
            where = where.parent
        try:
            usage = await asyncio.to_thread(shutil.disk_usage, where)
        except OSError as exc:
            self.error = f"cannot read free space of {self.path}: {describe(exc)}"
            return
        self.free, self.total, self.error = usage.free, usage.total, None

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(DISK_EVERY_S)
