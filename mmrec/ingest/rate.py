"""Is a connected camera far below its frame rate? A judgement made about once a second.

A camera can stay connected and keep sending while delivering a fraction of its frames
(a phone overheating, a weak WiFi link, an app in the background). Such a camera is
*slow*: still recorded, still live, but the crew must know. :class:`RateWatch` decides it
from the ingest's frame counter, sampled at the ingest's watch tick (no work per frame):
over the last ``window_ns`` of a connection, the rate is below ``slow_below`` x the
reference; it is no longer slow once the rate is back to ``back_at`` x the reference
(hysteresis, so a camera at the edge does not flap). The reference is the nominal rate
the node states in ``/status`` when known, else the best rate measured over a whole
window so far (the rate it had). A reference too low to count a few frames per window is
not judged. Pure and synchronous: times are the caller's (monotonic ns).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

WINDOW_NS: Final = 3_000_000_000  # "for a few seconds"
SLOW_BELOW: Final = 0.5  # slow: under half the reference...
BACK_AT: Final = 0.75  # ...and no longer slow at three quarters of it
MIN_FRAMES: Final = 6  # a reference that expects fewer frames per window is not judged


@dataclass(frozen=True, slots=True)
class RateChange:
    """The camera became slow (``slow``), or stopped being slow."""

    slow: bool
    fps: float  # over the window just judged
    reference_fps: float
    nominal: bool  # the reference is the node's stated rate (else the best one measured)

    def describe(self) -> str:
        ref = f"{self.reference_fps:g} fps {'nominal' if self.nominal else 'measured before'}"
        if self.slow:
            return f"slow: {self.fps:.1f} fps of {ref}, for {WINDOW_NS / 1e9:g} s"
        return f"no longer slow: {self.fps:.1f} fps of {ref}"


class RateWatch:
    """One camera's rate judgement across its connections (see the module docstring)."""

    __slots__ = ("_samples", "back_at", "best_fps", "fps", "nominal_fps", "slow", "slow_below",
                 "window_ns")  # fmt: skip

    def __init__(
        self,
        *,
        window_ns: int = WINDOW_NS,
        slow_below: float = SLOW_BELOW,
        back_at: float = BACK_AT,
    ) -> None:
        if window_ns <= 0 or not 0 < slow_below < back_at <= 1:
            raise ValueError("need window_ns > 0 and 0 < slow_below < back_at <= 1")
        self.window_ns = window_ns
        self.slow_below = slow_below
        self.back_at = back_at
        self.nominal_fps: float | None = None  # from the node's /status, when it says
        self.best_fps = 0.0  # the best rate over a whole window so far
        self.fps: float | None = None  # the rate over the last whole window
        self.slow = False
        self._samples: deque[tuple[int, int]] = deque()

    def connected(self, now_ns: int, frames: int) -> None:
        """A new connection: its window starts now (a camera is judged while streaming)."""
        self._samples.clear()
        self._samples.append((now_ns, frames))
        self.fps = None
        self.slow = False

    def sample(self, now_ns: int, frames: int) -> RateChange | None:
        """The frame counter at ``now_ns``; a change of verdict, if there is one."""
        s = self._samples
        s.append((now_ns, frames))
        # keep the newest sample at or before the window's start, and those after it
        while len(s) > 2 and now_ns - s[1][0] >= self.window_ns:
            s.popleft()
        t0, f0 = s[0]
        if now_ns - t0 < self.window_ns:
            return None  # not a whole window of this connection yet
        fps = (frames - f0) * 1e9 / (now_ns - t0)
        self.fps = fps
        nominal = self.nominal_fps is not None and self.nominal_fps > 0
        reference = self.nominal_fps if nominal and self.nominal_fps else self.best_fps
        if not self.slow:
            self.best_fps = max(self.best_fps, fps)
        if reference * self.window_ns / 1e9 < MIN_FRAMES:
            return None
        if not self.slow and fps < self.slow_below * reference:
            self.slow = True
        elif self.slow and fps >= self.back_at * reference:
            self.slow = False
        else:
            return None
        return RateChange(self.slow, fps, reference, nominal)
