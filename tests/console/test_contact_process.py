"""The console's contact sheets are made in a niced child process, not in the
recorder's: a sheet is written, a failure comes back as our error, close() ends it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mmrec.console.shoot import _SheetMaker
from mmrec.errors import TakeError
from tests.review.takes import Cam, write_take

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def children() -> dict[int, int]:
    """Our child processes: pid -> niceness (from /proc/PID/stat, after the ')'); not
    multiprocessing's resource tracker (one per interpreter, idle, ends with it)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            tracker = b"resource_tracker" in (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == os.getpid() and not tracker:
            out[int(entry.name)] = int(fields[16])
    return out


async def test_sheets_are_made_in_a_niced_child_that_close_ends(tmp_path: Path) -> None:
    take = write_take(tmp_path, [Cam("A", ((0.0, 1.0),)), Cam("B", ((0.0, 1.0),))])
    before = children()
    maker = _SheetMaker()
    try:
        sheet = take / "proxies" / "contact-sheet.jpg"
        await maker.make(take, sheet)
        assert sheet.read_bytes()[:2] == b"\xff\xd8"
        started = {pid: nice for pid, nice in children().items() if pid not in before}
        assert len(started) == 1  # one process, kept for the next sheet
        assert all(nice >= 10 for nice in started.values())
        with pytest.raises(TakeError):  # a failure crosses back as our own error
            await maker.make(tmp_path / "no-such-take", tmp_path / "sheet.jpg")
        assert children().keys() - before.keys() == started.keys()  # the same one
    finally:
        await maker.close()
    assert not (children().keys() & started.keys())
