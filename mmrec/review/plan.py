"""What every output frame of the proxies shows: pure, no pixels and no I/O.

The proxies are cut on the export's frame grid (:func:`mmrec.export.job.take_grid`): the
same rate, start timecode and length as the exported MOVs, and each camera's proxy shows
in slot k the frame its MOV shows there (:func:`mmrec.timeline.slots.plan_camera`, the one
rule: the newest frame captured by the end of the slot's frame interval, held across a
silence of at most ``gap_s``, NO SIGNAL otherwise). So an editor relinks a proxy to its
original frame for frame. A frame shown again at the next slot is *held*: drawn again,
not decoded again. :meth:`ProxyPlan.frames` puts it together per output frame; rendering
follows it as is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Generic, Protocol, TypeVar

from mmrec.picture.layout import Rect, fit, grid_layout
from mmrec.review.options import ProxyOptions
from mmrec.timeline.grid import FrameGrid
from mmrec.timeline.slots import FILLER_SLOT, CameraPlan, plan_camera

NS: Final = 1_000_000_000

F = TypeVar("F")
F_co = TypeVar("F_co", covariant=True)


class FrameSource(Protocol[F_co]):
    def at(self, i: int) -> F_co | None:
        """Frame ``i`` of the camera (``i`` never goes back; None: not on disk)."""


@dataclass(frozen=True, slots=True)
class OutputFrame(Generic[F]):
    """Output frame ``k``: the take instant it stands for, its timecode, and per camera the
    frame shown (None: NO SIGNAL) and whether that frame is held from frame k-1."""

    k: int
    t_ns: int
    timecode: str
    shown: tuple[F | None, ...]
    held: tuple[bool, ...]


def even(v: float) -> int:
    return max(2, round(v / 2) * 2)


@dataclass(frozen=True, slots=True)
class ProxyPlan:
    """Everything about the outputs that follows from the grid and the cameras' frames."""

    grid: FrameGrid
    cameras: tuple[CameraPlan, ...]  # per camera, what each slot shows
    sizes: tuple[tuple[int, int], ...]  # each camera's proxy frame size
    multiview_size: tuple[int, int] | None  # None: no multiview
    multiview_cells: tuple[Rect, ...]  # each camera's multiview tile (empty: none)
    contact_k: int  # the output frame the contact sheet shows

    @property
    def frames_out(self) -> int:
        return self.grid.frames

    def timecode(self, k: int) -> str:
        """The timecode of output frame k (burned in; frame 0's is every file's start)."""
        return self.grid.timecode_at(k)

    @property
    def start_timecode(self) -> str:
        return self.grid.timecode

    def picture_size(self, i: int, width: int, height: int) -> tuple[int, int]:
        """How large camera ``i``'s picture of ``width`` x ``height`` is needed: the larger
        of its place in the proxy and its multiview tile (it is decoded once for both)."""
        sw, sh = self.sizes[i]
        pw, ph = fit(width, height, Rect(0, 0, sw, sh)).w, sh
        if not self.multiview_cells:
            return pw, ph
        r = fit(width, height, self.multiview_cells[i])
        return max(pw, r.w), max(ph, r.h)

    def frames(self, cameras: Sequence[FrameSource[F]]) -> Iterator[OutputFrame[F]]:
        """Every output frame in order, from each camera's frames (fetched in order, only
        those shown)."""
        last: tuple[F | None, ...] = (None,) * len(cameras)
        grid = self.grid
        for k in range(grid.frames):
            now = tuple(
                None if (i := plan.source[k]) == FILLER_SLOT else cam.at(i)
                for plan, cam in zip(self.cameras, cameras, strict=True)
            )
            held = tuple(f is not None and f is p for f, p in zip(now, last, strict=True))
            yield OutputFrame(k, grid.instant(k), self.timecode(k), now, held)
            last = now


def signal_counts(plans: Sequence[CameraPlan], frames: int) -> list[int]:
    """Per slot, how many cameras show a picture there."""
    counts = [0] * frames
    for plan in plans:
        for k, i in enumerate(plan.source):
            if i != FILLER_SLOT:
                counts[k] += 1
    return counts


def contact_slot(plans: Sequence[CameraPlan], grid: FrameGrid, at_s: float | None) -> int:
    """The contact sheet's slot: ``at_s`` seconds from the proxies' start if given, else
    the slot nearest the middle among those where the most cameras have a picture (the
    middle of a take can fall in an outage)."""
    last = grid.frames - 1
    if at_s is not None:
        return min(max(grid.slot_of(grid.start_exact + Fraction(at_s) * NS), 0), last)
    counts = signal_counts(plans, grid.frames)
    best = max(counts, default=0)
    middle = last / 2
    return min((k for k, c in enumerate(counts) if c == best), key=lambda k: abs(k - middle))


def plan_proxies(
    grid: FrameGrid,
    times: Sequence[Sequence[int]],
    sizes: Sequence[tuple[int, int]],
    opts: ProxyOptions,
) -> ProxyPlan:
    """The plan for cameras with these frame times (ns, increasing) and first-frame
    sizes on ``grid``."""
    instants = grid.instants()
    plans = tuple(plan_camera(t, grid, int(opts.gap_s * NS), instants) for t in times)
    # Each proxy at the chosen height and its first frame's aspect; the multiview a grid.
    proxy_sizes = tuple((even(opts.height * sw / sh), even(opts.height)) for sw, sh in sizes)
    mv_size = opts.multiview_size or (even(opts.height * 16 / 9), even(opts.height))
    return ProxyPlan(
        grid=grid,
        cameras=plans,
        sizes=proxy_sizes,
        multiview_size=mv_size if opts.multiview else None,
        multiview_cells=grid_layout(len(sizes), mv_size).cells if opts.multiview else (),
        contact_k=contact_slot(plans, grid, opts.contact_at),
    )
