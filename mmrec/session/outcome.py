"""What a camera's part of a take amounts to, and the take's: one word and a sentence.

Outcomes, from best to worst (a take's is the worst of its cameras'):

- ``complete``: frames throughout the camera's time in the take, and mmrec lost none.
- ``gaps``: frames, with interruptions on the camera's side (a disconnect, a stall, a
  silence over a second, a first frame long after the camera joined); mmrec lost none.
- ``lost``: mmrec itself lost frames the camera sent (its queue full because the disk
  fell behind, a failed write) or could not finish a file.
- ``nothing``: not one frame recorded; the sentence says why (unreachable, HTTP 404,
  not an MJPEG stream, no JPEG in it, every frame lost).

Pure logic: the recording gathers the facts, this module judges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """One camera's (or a take's) outcome; the value is what the manifest says."""

    COMPLETE = "complete"
    GAPS = "gaps"
    LOST = "lost"
    NOTHING = "nothing"

    @property
    def severity(self) -> int:
        """0 for complete, higher is worse."""
        return list(Outcome).index(self)


@dataclass(frozen=True, slots=True)
class CameraFacts:
    """What is known of one camera's part of a take."""

    name: str
    frames: int  # written to its files
    dropped: int = 0  # received in the take and not written (lost by mmrec)
    write_error: str | None = None  # why its files failed, while they do
    write_failure: str | None = None  # why they failed last, kept once writing is back
    gaps: tuple[tuple[int, int], ...] = ()  # (from_ns, to_ns) without frames
    connections: int = 0  # connections that streamed during the take
    error: str | None = None  # the stream's last error (why it is not, or was not, streaming)
    skipped_parts: int = 0  # parts that were not JPEG
    causes: tuple[str, ...] = ()  # why it disconnected, in order


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    detail: str  # the outcome in words, for the summary and the manifest


def judge_camera(f: CameraFacts) -> Verdict:
    """The camera's outcome and what it means, in words."""
    if f.frames == 0:
        return Verdict(Outcome.NOTHING, _why_nothing(f))
    gaps = gap_summary(f.gaps) if f.gaps else None
    if f.dropped or f.write_error:
        if f.dropped:
            what = f"mmrec lost {_frames(f.dropped)}: {_loss_cause(f)}"
        else:
            what = f"mmrec could not write everything: {_loss_cause(f)}"
        return Verdict(Outcome.LOST, what + (f"; also {gaps}" if gaps else ""))
    if gaps:
        causes = list(dict.fromkeys(c for c in f.causes if c != "stopped"))
        if len(causes) > 2:
            causes = [*causes[:2], f"{len(causes) - 2} other cause(s)"]
        return Verdict(Outcome.GAPS, gaps + (f": {'; '.join(causes)}" if causes else ""))
    return Verdict(Outcome.COMPLETE, f"{_frames(f.frames)}, no interruption")


def judge_take(cameras: Sequence[tuple[str, Outcome]]) -> Verdict:
    """The worst of the cameras' outcomes, and which cameras made it so."""
    if not cameras:
        return Verdict(Outcome.NOTHING, "no camera was recorded")
    worst = max((o for _, o in cameras), key=lambda o: o.severity)
    complete = sum(o == Outcome.COMPLETE for _, o in cameras)
    if worst == Outcome.COMPLETE:
        return Verdict(worst, f"every camera complete ({len(cameras)})")
    parts = [f"{complete} of {len(cameras)} camera(s) complete"]
    for outcome in sorted(Outcome, key=lambda o: -o.severity):
        names = [name for name, o in cameras if o == outcome]
        if names and outcome != Outcome.COMPLETE:
            parts.append(f"{_LABEL[outcome]}: {', '.join(names)}")
    return Verdict(worst, "; ".join(parts))


_LABEL = {
    Outcome.NOTHING: "nothing recorded",
    Outcome.LOST: "frames lost by mmrec",
    Outcome.GAPS: "gaps",
}


def gap_summary(gaps: Sequence[tuple[int, int]]) -> str:
    """``"2 gaps, 3.4 s in all (longest 2.1 s)"``."""
    lengths = [b - a for a, b in gaps]
    total = sum(lengths) / 1e9
    if len(lengths) == 1:
        return f"1 gap of {total:.1f} s"
    return f"{len(lengths)} gaps, {total:.1f} s in all (longest {max(lengths) / 1e9:.1f} s)"


def fps_while_receiving(
    frames: int, first_ns: int | None, last_ns: int | None, gaps: Sequence[tuple[int, int]]
) -> float | None:
    """Frames per second over the time frames came, gaps left out.

    Each run of frames between gaps spans one interval fewer than it has frames, so a
    camera live at 30 fps reads 30 however long it was away (frames over the whole take
    read 19.6 for one that was away a third of it). None with fewer than two frames.
    """
    if first_ns is None or last_ns is None or frames < 2:
        return None
    inner = [(a, b) for a, b in gaps if first_ns <= a and b <= last_ns]
    span = last_ns - first_ns - sum(b - a for a, b in inner)
    intervals = frames - 1 - len(inner)
    if span <= 0 or intervals <= 0:
        return None
    return intervals * 1e9 / span


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


def _loss_cause(f: CameraFacts) -> str:
    if f.write_error or f.write_failure:
        return strip_camera(f.write_error or f.write_failure or "", f.name)
    return "the disk did not keep up (the camera's write queue was full)"


def _why_nothing(f: CameraFacts) -> str:
    if f.dropped:
        return f"all {_frames(f.dropped)} received were lost by mmrec: {_loss_cause(f)}"
    if f.write_error:
        return f"mmrec could not write: {_loss_cause(f)}"
    error = strip_camera(f.error, f.name) if f.error else None
    if f.connections == 0:
        return f"never streamed: {error}" if error else "never streamed"
    if f.skipped_parts:
        what = f"connected, but sent no JPEG ({f.skipped_parts} part(s) that were not JPEG)"
    else:
        what = "connected, but no frame arrived"
    return what + (f"; then {error}" if error else "")


def strip_camera(text: str, name: str) -> str:
    """An error's text without the ``camera 'A': `` that the per-camera line already says."""
    prefix = f"camera {name!r}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
