"""What every output frame of the proxies shows: pure, no pixels and no I/O.

Every output shares one constant-rate timeline: output frame k is the instant
``t0 + k / fps`` on the take timeline, where ``t0`` is the first frame of any camera and
the last instant covers the last frame of any camera (the union of all spans). So every
file starts at the same instant, has the same number of frames, and carries the same
start timecode (the take's timecode + t0), in its metadata and burned into the picture.

What a camera shows at each instant is decided by one function, :func:`shown_frames`: its
newest frame with ``time_ns <= t + period/2`` (the frame nearest t for cameras at the
output rate), as long as it is not older than the gap threshold; otherwise a black NO
SIGNAL frame. A frame shown again at the next instant is *held*: drawn again, not decoded
again. :meth:`ProxyPlan.frames` puts it together per output frame; rendering follows it
as is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Generic, Protocol, TypeVar

from mmrec.errors import MmrecError
from mmrec.picture.layout import Rect, fit, grid_layout
from mmrec.review.options import ProxyOptions
from mmrec.timeline.timecode import timecode_add

NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class OutputTimeline:
    """The proxies' constant-rate timeline: output frame k is the take instant ``instant(k)``."""

    start_ns: int  # t0 on the take timeline
    fps: Fraction
    frames: int

    @property
    def period_ns(self) -> Fraction:
        return Fraction(NS) / self.fps

    @property
    def half_ns(self) -> int:
        return int(self.period_ns / 2)

    def instant(self, k: int) -> int:
        return self.start_ns + int(k * self.period_ns)


def output_timeline(
    spans: Iterable[tuple[int, int]], fps: Fraction, phase_ns: int | None = None
) -> OutputTimeline:
    """The union of the cameras' (first, last) frame times at ``fps``: it starts at the first
    frame of any camera and ends at the first instant that shows the last frame of any.

    With ``phase_ns`` the instants are moved (by under half a period) to fall at that
    phase of the period, so they sit on the cameras' capture instants, not between them.
    """
    spans = list(spans)
    if not spans:
        raise MmrecError("no camera has any frame")
    first = min(a for a, _ in spans)
    t1 = max(b for _, b in spans)
    period = Fraction(NS) / fps
    t0 = first
    if phase_ns is not None:
        # the instant of that phase nearest the first frame (first <= t0 + period/2)
        t0 = first - math.floor(((first - phase_ns) % period + period / 2) % period - period / 2)
    # The last instant is the first one that shows the last frame (t + period/2 >= t1).
    n = max(0, math.ceil((t1 - t0 - period / 2) / period)) + 1
    return OutputTimeline(t0, fps, n)


def capture_phase(times: Iterable[int], fps: Fraction) -> int | None:
    """The cameras' mean capture phase within one period at ``fps`` (a circular mean, in
    ns from a multiple of the period), or None without frames or with no clear phase."""
    period = NS / fps
    c = s = 0.0
    n = 0
    for t in times:
        a = 2 * math.pi * float(t % period) / float(period)
        c += math.cos(a)
        s += math.sin(a)
        n += 1
    if n == 0 or math.hypot(c, s) < 1e-9 * n:
        return None
    return round(math.atan2(s, c) / (2 * math.pi) * float(period))


class Timed(Protocol):
    @property
    def time_ns(self) -> int: ...


F = TypeVar("F", bound=Timed)


def shown_frames(frames: Iterable[F], timeline: OutputTimeline, gap_ns: int) -> Iterator[F | None]:
    """For each output instant in order, the frame one camera shows there (None: a gap).

    At instant t that is the newest frame with ``time_ns <= t + period/2`` (the nearest
    one for a camera at the output rate), unless it is more than ``gap_ns`` older than t.
    ``frames`` must be in time order; they are read only as far as the instants need. This
    is the one place that decides what the proxies show: rendering uses it as is.
    """
    it = iter(frames)
    cur: F | None = None
    nxt = next(it, None)
    half = timeline.half_ns
    for k in range(timeline.frames):
        t = timeline.instant(k)
        while nxt is not None and nxt.time_ns <= t + half:
            cur, nxt = nxt, next(it, None)
        yield None if cur is None or t - cur.time_ns > gap_ns else cur


@dataclass(frozen=True, slots=True)
class OutputFrame(Generic[F]):
    """Output frame ``k``: the take instant it stands for, its timecode, and per camera the
    frame shown (None: a gap, NO SIGNAL) and whether that frame is held from frame k-1."""

    k: int
    t_ns: int
    timecode: str
    shown: tuple[F | None, ...]
    held: tuple[bool, ...]


def even(v: float) -> int:
    return max(2, round(v / 2) * 2)


@dataclass(frozen=True, slots=True)
class ProxyPlan:
    """Everything about the outputs that follows from the take's spans and sizes."""

    timeline: OutputTimeline
    take_timecode: str  # the take's, at its own rate (mmrec.timeline.timecode)
    gap_ns: int
    sizes: tuple[tuple[int, int], ...]  # each camera's proxy frame size
    multiview_size: tuple[int, int] | None  # None: no multiview
    multiview_cells: tuple[Rect, ...]  # each camera's multiview tile (empty: none)
    contact_k: int  # the output frame the contact sheet shows

    @property
    def timecode_rate(self) -> int:
        return round(self.timeline.fps)

    def timecode(self, k: int) -> str:
        """The timecode of output frame k (burned in; frame 0's is every file's start)."""
        return timecode_add(self.take_timecode, self.timeline.instant(k), self.timecode_rate)

    @property
    def start_timecode(self) -> str:
        return self.timecode(0)

    def picture_size(self, i: int, width: int, height: int) -> tuple[int, int]:
        """How large camera ``i``'s picture of ``width`` x ``height`` is needed: the larger
        of its place in the proxy and its multiview tile (it is decoded once for both)."""
        sw, sh = self.sizes[i]
        pw, ph = fit(width, height, Rect(0, 0, sw, sh)).w, sh
        if not self.multiview_cells:
            return pw, ph
        r = fit(width, height, self.multiview_cells[i])
        return max(pw, r.w), max(ph, r.h)

    def frames(self, cameras: Sequence[Iterable[F]]) -> Iterator[OutputFrame[F]]:
        """Every output frame in order, from each camera's frames (in time order, read only
        as far as the instants need)."""
        shown = [shown_frames(c, self.timeline, self.gap_ns) for c in cameras]
        last: tuple[F | None, ...] = (None,) * len(shown)
        for k in range(self.timeline.frames):
            now = tuple(next(s) for s in shown)
            held = tuple(f is not None and f is p for f, p in zip(now, last, strict=True))
            yield OutputFrame(k, self.timeline.instant(k), self.timecode(k), now, held)
            last = now


def plan_proxies(
    spans: Sequence[tuple[int, int]],
    sizes: Sequence[tuple[int, int]],
    settled_times: Iterable[int],
    take_timecode: str,
    opts: ProxyOptions,
) -> ProxyPlan:
    """The plan for cameras of these (first, last) frame times and first-frame sizes.

    ``settled_times`` are frame times after each camera's clock warm-up: the instants are
    put at the cameras' capture phase, judged on them, so cameras that capture together
    show the frames they captured together even if their times are off by a few ms (a grid
    half a period off would split them).
    """
    timeline = output_timeline(spans, opts.fps, capture_phase(settled_times, opts.fps))
    t0, n = timeline.start_ns, timeline.frames
    t1 = max(b for _, b in spans)
    # Each proxy at the chosen height and its first frame's aspect; the multiview a grid.
    proxy_sizes = tuple((even(opts.height * sw / sh), even(opts.height)) for sw, sh in sizes)
    mv_size = opts.multiview_size or (even(opts.height * 16 / 9), even(opts.height))
    at_ns = t0 + (int(opts.contact_at * NS) if opts.contact_at is not None else (t1 - t0) // 2)
    at_ns = min(max(at_ns, t0), timeline.instant(n - 1))
    return ProxyPlan(
        timeline=timeline,
        take_timecode=take_timecode,
        gap_ns=int(opts.gap_s * NS),
        sizes=proxy_sizes,
        multiview_size=mv_size if opts.multiview else None,
        multiview_cells=grid_layout(len(sizes), mv_size).cells if opts.multiview else (),
        contact_k=next(k for k in range(n) if timeline.instant(k) >= at_ns),
    )
