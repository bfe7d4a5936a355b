"""What ``mmrec record`` shows in the terminal: the live table and the closing summary.

Both say what is true now, one line per camera at 80 columns (the full text of every
error is in the manifest): the rate while frames come (a gap reads 0, a camera that
came back reads its rate again), gaps as a count and a total length, the error that is
current only (a camera streaming again shows none), and what mmrec itself lost. The
summary gives each camera's outcome, in words for every camera that was not complete,
and suggests reviewing the take only when something was recorded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from rich.console import Console, Group
from rich.text import Text

from mmrec.commands.tables import Cell, fit_table
from mmrec.ingest.stream import CameraState
from mmrec.session.folders import DiskStatus
from mmrec.session.outcome import Outcome, strip_camera
from mmrec.session.recorder import CameraStatus, Take
from mmrec.store.disk import STATES, human_bytes, human_duration
from mmrec.store.health import WriteState
from mmrec.store.take import CameraEntry, Manifest

WIDE: Final = 110  # from this many columns on, the tables show more columns

_STATE_SHORT: Final = {
    CameraState.STREAMING: "live",
    CameraState.STALLED: "stall",
    CameraState.BACKOFF: "retry",
    CameraState.CONNECTING: "conn",
    CameraState.STOPPED: "stop",
}
# a camera whose frames are not being written: what stops them, in a word
_WRITE_SHORT: Final = {
    WriteState.DISK_FULL: "full",
    WriteState.GONE: "gone",
    WriteState.IO_ERROR: "error",
}
_STATE_STYLE: Final = {
    "live": "green",
    "slow": "yellow",
    "stall": "red",
    "retry": "yellow",
    "error": "red",
    "full": "red",
    "gone": "red",
}
_OUTCOME_STYLE: Final = {
    Outcome.COMPLETE: "green",
    Outcome.GAPS: "yellow",
    Outcome.LOST: "red",
    Outcome.NOTHING: "red",
}


def state_word(s: CameraStatus) -> str:
    """The camera's state in a word; a camera whose files fail is never ``live``."""
    if s.writer.state.failing:
        return _WRITE_SHORT[s.writer.state]
    if s.writer.error is not None:
        return "error"
    if s.ingest.slow:
        return "slow"  # streaming, far below its rate (an alert event says how far)
    return _STATE_SHORT.get(s.ingest.state, str(s.ingest.state))


def current_error(s: CameraStatus) -> str:
    """What is wrong now: the write error, else why the stream is not flowing. A camera
    that streams again shows no error, whatever it had before."""
    if s.writer.error is not None:
        return strip_camera(s.writer.error, s.name)
    if s.ingest.state != CameraState.STREAMING and s.ingest.last_error:
        return strip_camera(s.ingest.last_error, s.name)
    return ""


def disk_line(d: DiskStatus) -> str:
    """Free space and recording time left, in one line ("" until first measured)."""
    if not d.folders:
        return ""
    free = sum(f.free_bytes or 0 for f in d.folders)
    left = f", {human_duration(d.seconds_left)} left" if d.seconds_left is not None else ""
    worst = max((f.state for f in d.folders), key=STATES.index, default="ok")
    return f"disk {human_bytes(free)} free{left}" + ("" if worst == "ok" else f" ({worst})")


def gaps_cell(count: int, total_ns: int) -> str:
    return "0" if count == 0 else f"{count} {total_ns / 1e9:.1f}s"


class LiveView:
    """The live table: rates from the difference of successive snapshots."""

    def __init__(self, take: Take) -> None:
        self.take = take
        self._prev: dict[str, tuple[int, int, int]] = {}

    def table(self, width: int) -> Group:
        now = time.monotonic_ns()
        elapsed = (now - self.take.start_monotonic_ns) / 1e9
        rows = [(s, *self._rates(s, now)) for s in self.take.status()]
        return live_table(f"take {self.take.id}  {elapsed:.1f} s", rows, width, self.caption())

    def caption(self) -> str | None:
        lines = [disk_line(self.take.recording.disk)]
        p = self.take.preview
        if p is not None:
            st = p.stats()
            text = f"preview {p.url or ''}  {st.fps:4.1f} fps, {st.tiles_skipped} tiles skipped"
            lines.append(text + (f"  {st.error}" if st.error else ""))
        return "\n".join(line for line in lines if line) or None

    def _rates(self, s: CameraStatus, now: int) -> tuple[float | None, float | None]:
        prev = self._prev.get(s.name)
        cur = (now, s.ingest.frames, s.ingest.bytes)
        if prev is None or now - prev[0] < 500_000_000:
            if prev is None:
                self._prev[s.name] = cur
            return None, None
        dt_s = (now - prev[0]) / 1e9
        self._prev[s.name] = cur
        return (cur[1] - prev[1]) / dt_s, (cur[2] - prev[2]) * 8 / 1e6 / dt_s


def live_table(
    title: str,
    rows: Sequence[tuple[CameraStatus, float | None, float | None]],
    width: int,
    caption: str | None = None,
) -> Group:
    """The live table for ``rows`` of (status, fps, Mbit/s) at ``width`` columns."""
    wide = width >= WIDE
    headers = [("camera", False), ("state", False), ("fps", True)]
    headers += [("Mbit/s", True)] if wide else []
    headers += [("frames", True), ("lost", True), ("gaps", True)]
    headers += [("recon", True), ("size", True)] if wide else []
    headers += [("error", False)]
    cells: list[list[Cell]] = []
    for s, fps, mbps in rows:
        state = state_word(s)
        w = s.writer
        row: list[Cell] = [s.name, (state, _STATE_STYLE.get(state, "")), _num(fps)]
        row += [_num(mbps)] if wide else []
        row += [str(w.frames), _lost(w.dropped), gaps_cell(s.gaps, s.gap_ns)]
        if wide:
            row += [str(s.ingest.reconnects), f"{w.width}x{w.height}" if w.width else "-"]
        row.append((current_error(s), "red"))
        cells.append(row)
    return fit_table(title, headers, cells, width, flex="error", caption=caption)


def summary_table(m: Manifest, width: int) -> Group:
    """The take's cameras, one line each: outcome, frames, rate while live, gaps, losses."""
    wide = width >= WIDE
    dur = (m.duration_ns or 0) / 1e9
    headers = [("camera", False), ("outcome", False), ("frames", True), ("fps", True)]
    headers += [("gaps", True), ("lost", True), ("MB", True)]
    headers += [("recon", True), ("size", True), ("files", True)] if wide else []
    cells: list[list[Cell]] = []
    for c in m.cameras:
        outcome = c.outcome or ""
        row: list[Cell] = [
            c.name,
            (outcome, _OUTCOME_STYLE.get(Outcome(outcome), "") if outcome else ""),
            str(c.frames),
            _num(c.fps),
            gaps_cell(len(c.gaps), sum(b - a for a, b in c.gaps)),
            _lost(c.dropped),
            f"{c.bytes / 1e6:.1f}",
        ]
        if wide:
            size = f"{c.width}x{c.height}" if c.width else "-"
            row += [str(c.reconnects), size, str(len(c.segments))]
        cells.append(row)
    title = f"take {m.take_id}: {dur:.1f} s, timecode {m.timecode}"
    return fit_table(title, headers, cells, width)


def jpeg_counts(c: CameraEntry) -> str:
    """A camera's odd JPEGs in words (empty if none): what was wrong, what was kept."""
    words = [
        (c.truncated, "cut short, written as received"),
        (c.trailing, "with bytes after the EOI, written as received"),
        (c.bad_size, "claiming an absurd size, written as received"),
        (c.stubs, "without a picture header (an SOI alone, or one too odd to read), not written"),
    ]
    return "; ".join(f"{n} JPEG{'s' if n > 1 else ''} {what}" for n, what in words if n)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _lost(n: int) -> Cell:
    return (str(n), "red") if n else "0"


def print_summary(
    console: Console,
    m: Manifest,
    take_dir: Path,
    *,
    exit_status: int,
    command: str,
    preview: str | None = None,
) -> None:
    """The closing summary: the table, what went wrong per camera in words, the take's
    outcome and exit status, where things are, and what to do next."""
    console.print(summary_table(m, console.width))
    for c in m.cameras:
        if c.outcome != Outcome.COMPLETE and c.outcome_detail:
            console.print(Text(f"  {c.name}: {c.outcome_detail}"), soft_wrap=True)
        odd = jpeg_counts(c)
        if odd:
            console.print(Text(f"  {c.name}: {odd}"), soft_wrap=True)
    outcome = m.outcome or Outcome.NOTHING
    style = _OUTCOME_STYLE.get(Outcome(outcome), "")
    line = Text("outcome: ")
    line.append(outcome, style=style)
    line.append(f" (exit status {exit_status})")
    if outcome != Outcome.COMPLETE and m.outcome_detail:
        line.append(f": {m.outcome_detail}")
    # lines of words, paths and commands are never broken by rich (soft wrap: the
    # terminal folds them, and a copy of a line pastes as it is)
    console.print(line, soft_wrap=True)
    console.print(Text(f"manifest: {take_dir / 'manifest.json'}"), soft_wrap=True)
    if preview:
        console.print(Text(preview), soft_wrap=True)
    if any(c.frames for c in m.cameras):
        console.print(Text(f"review: {command} proxy {take_dir}"), soft_wrap=True)
        console.print(Text(f"edit:   {command} export {take_dir}"), soft_wrap=True)
    else:
        console.print("nothing was recorded: there is nothing to review")
