"""A small real file system for disk faults: an ext4 image, loop-mounted, filled on demand.

Disk-full tests need a disk that fills in seconds and empties again; tmpfs will not do
(it refuses O_DIRECT, the recorder's default). :func:`small_disk` makes an ext4 image of
a few MB, mounts it through a loop device and unmounts it in a ``finally``; where that is
impossible (not root, no ``mkfs.ext4``, no loop devices in a container) the test is
skipped with the reason, printed. :func:`fill` takes the free space with a filler file
the test owns (``fallocate``: instant, no data written), which the test deletes to free
the space again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "loop-mounted ext4 needs Linux"
    if os.geteuid() != 0:
        return "mounting a test file system needs root (run the suite as root, as CI does)"
    for tool in ("mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install e2fsprogs mount)"
    return None


@contextlib.contextmanager
def small_disk(where: Path, size_mb: int = 40) -> Iterator[Path]:
    """An ext4 file system of ``size_mb`` MB mounted at ``where/mnt`` for the block."""
    reason = _why_not()
    if reason is None:
        image, mnt = where / "disk.img", where / "mnt"
        mnt.mkdir()
        with open(image, "wb") as f:
            f.truncate(size_mb << 20)
        # -m 0: no blocks reserved for root (the tests run as root and must see it fill)
        mk = subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard", str(image)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        mount = subprocess.run(
            ["mount", "-o", "loop", str(image), str(mnt)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if mk.returncode or mount.returncode:
            reason = f"cannot make a loop-mounted ext4: {(mk.stderr or mount.stderr).strip()}"
    if reason is not None:
        print(f"skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    try:
        yield mnt
    finally:
        done = subprocess.run(["umount", str(mnt)], capture_output=True, timeout=60)
        if done.returncode:  # something still holds it: detach now, freed when let go
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=60)
        image.unlink()


def fill(disk: Path, leave: int = 0) -> Path:
    """Take all the free space of ``disk`` but ``leave`` bytes with a filler file; returns
    it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        size = 0
        for step in (1 << 20, 1 << 16, 4096):
            while True:
                st = os.statvfs(disk)
                if st.f_bfree * st.f_frsize - step < leave:
                    break
                try:
                    os.posix_fallocate(fd, size, step)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                size += step
    finally:
        os.close(fd)
    return filler


def free_bytes(disk: Path) -> int:
    st = os.statvfs(disk)
    return st.f_bfree * st.f_frsize
