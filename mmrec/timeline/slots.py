"""What each camera shows in each slot of the grid (pure; the one place that decides).

The export's MOVs and the proxies both follow it, so a proxy shows in every slot the
frame its original shows. Slot k shows the camera's newest frame captured by the end of
the slot's frame interval (``grid.instant(k)``). It is:

- ``FRESH`` when that frame was captured within the slot's interval (within one period
  before its end) and was not shown in the slot before (the normal case);
- ``REPEAT`` when the picture is one already shown, or older than one period: the camera
  sent nothing newer (a dropped frame, a camera slower than the export rate), so the
  picture is held across the silence, if that lasts at most ``hold_ns``;
- ``FILLER`` when there is nothing to hold: before the camera's first frame, after its
  last, and through any silence longer than ``hold_ns`` (an outage) from its first slot.

Repeats and fillers are listed in the export's manifest as slot ranges; frames never
shown (a camera faster than the export rate) are counted. Nothing is repeated silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from mmrec.timeline.grid import FrameGrid

FILLER_SLOT = -1


class SlotKind(StrEnum):
    FRESH = "fresh"
    REPEAT = "repeat"
    FILLER = "filler"


@dataclass(frozen=True, slots=True)
class CameraPlan:
    """Per slot, the index of the frame shown (into the camera's time-ordered frames) or
    :data:`FILLER_SLOT`; and what kind of slot each one is."""

    source: tuple[int, ...]
    kinds: tuple[SlotKind, ...]
    frames_shown: int  # distinct frames that appear
    frames_skipped: int  # frames inside the grid's span that never appear

    def count(self, kind: SlotKind) -> int:
        return sum(1 for k in self.kinds if k is kind)

    def ranges(self, kind: SlotKind) -> list[tuple[int, int]]:
        """Slot ranges ``[first, last]`` (inclusive) of one kind."""
        return list(runs(self.kinds, kind))


def runs(kinds: Sequence[SlotKind], kind: SlotKind) -> Iterator[tuple[int, int]]:
    start = None
    for k, v in enumerate(kinds):
        if v is kind and start is None:
            start = k
        elif v is not kind and start is not None:
            yield start, k - 1
            start = None
    if start is not None:
        yield start, len(kinds) - 1


def _silence(times: Sequence[int], i: int) -> float:
    """Time from frame i to the camera's next frame (infinite after its last)."""
    return times[i + 1] - times[i] if i + 1 < len(times) else math.inf


def plan_camera(
    times: Sequence[int], grid: FrameGrid, hold_ns: int, instants: Sequence[int] | None = None
) -> CameraPlan:
    """The camera's plan on ``grid``; ``times`` are its frames' times (ns, increasing).
    ``instants`` (``grid.instants()``) may be passed to share them between cameras."""
    period = grid.period
    instants = grid.instants() if instants is None else instants
    n = len(times)
    i = -1  # newest frame at or before the current instant
    source: list[int] = []
    kinds: list[SlotKind] = []
    prev = FILLER_SLOT
    shown = 0
    first_seen: int | None = None
    for k in range(grid.frames):
        t = instants[k]
        while i + 1 < n and times[i + 1] <= t:
            i += 1
        # Offline, the length of a silence is known: a picture is held only across a
        # silence of at most ``hold_ns`` (a dropped frame), never into an outage.
        if i < 0 or (t - times[i] >= period and _silence(times, i) > hold_ns):
            source.append(FILLER_SLOT)
            kinds.append(SlotKind.FILLER)
            prev = FILLER_SLOT
            continue
        if i == prev or t - times[i] >= period:
            kinds.append(SlotKind.REPEAT)
        else:
            kinds.append(SlotKind.FRESH)
        if i != prev:
            shown += 1
            if first_seen is None:
                first_seen = i
        source.append(i)
        prev = i
    last_seen = max((s for s in source if s != FILLER_SLOT), default=None)
    span = 0 if first_seen is None or last_seen is None else last_seen - first_seen + 1
    return CameraPlan(tuple(source), tuple(kinds), shown, span - shown)
