"""Each segment's lower envelope of ``arrival − device``: piecewise linear, fitted both ways.

Knots every ``knot_ns`` of device time; each knot's value comes from a window of
``window_ns`` around it on the recorder clock (before *and* after), holding the bucket
minima of every segment in reach and the probes that read the same clock, with one drift
slope shared by all of them (:mod:`mmrec.timeline.drift`). Pure and synchronous (numpy);
used by :mod:`mmrec.timeline.refine`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from mmrec.timeline.drift import Points, intersect, slope

if TYPE_CHECKING:
    from mmrec.timeline.refine import RefineConfig

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_PPM: Final = 1e-6


class Envelope:
    """One segment's frames in fit coordinates, its bucket minima and its envelope."""

    def __init__(
        self,
        a: int,
        b: int,
        arrival: I64,
        device: I64,
        outlier: npt.NDArray[np.bool_],
        cfg: RefineConfig,
    ) -> None:
        self.a, self.b = a, b
        dev = device[a:b]
        arr = arrival[a:b]
        # Fit coordinates relative to the first frame: floats stay exact far below 2**53.
        self.x0 = int(dev[0])
        self.y0 = int(arr[0] - dev[0])
        self.t0 = int(arr[0])
        self.x = (dev - self.x0).astype(np.float64)
        y = (arr - dev - self.y0).astype(np.float64)
        keep = ~outlier[a:b]
        if not keep.any():
            keep = np.ones(b - a, dtype=bool)
        self.t_end = int(arr[-1])
        x, yk = self.x[keep], y[keep]
        order = np.argsort(x, kind="stable")
        x, yk = x[order], yk[order]
        ids = np.floor(x / cfg.bucket_ns).astype(np.int64)
        srt = np.lexsort((yk, ids))  # lowest y first within each bucket
        lead = np.flatnonzero(np.r_[True, ids[srt][1:] != ids[srt][:-1]])
        pick = srt[lead]
        self.bx, self.by = x[pick], yk[pick]
        self.span = float(x[-1] - x[0])
        self.x_lo, self.x_hi = float(x[0]), float(x[-1])
        self.knots_x: F64 = np.zeros(1)
        self.knots_v: F64 = np.zeros(1)
        self.slope_lo = 0.0
        self.slope_hi = 0.0
        self.spread = 0.0
        self.borrowed = False

    def envelope(self, x: F64) -> F64:
        """``arrival − device − y0`` of an undelayed frame at device ``x0 + x``; linear
        beyond the first and last knots, with the slope fitted there."""
        kx, kv = self.knots_x, self.knots_v
        out = np.interp(x, kx, kv)
        lo, hi = x < kx[0], x > kx[-1]
        out[lo] = kv[0] + self.slope_lo * (x[lo] - kx[0])
        out[hi] = kv[-1] + self.slope_hi * (x[hi] - kx[-1])
        return out

    def mean_slope(self) -> float:
        kx, kv = self.knots_x, self.knots_v
        if kx.size >= 2 and kx[-1] > kx[0]:
            return float((kv[-1] - kv[0]) / (kx[-1] - kx[0]))
        return self.slope_lo


def fit_envelopes(segs: list[Envelope], probes: I64, cfg: RefineConfig) -> None:
    """Knot values of every segment's envelope, from windows that span segments.

    Each knot's window holds the bucket minima and the probes of every segment within
    ``window_ns/2`` of it on the recorder clock. One slope is fitted for them all (one
    oscillator) with one intercept per segment (each clock or link has its own), then the
    knot's own segment's envelope line is read at the knot.
    """
    max_slope = cfg.max_drift_ppm * _PPM / (1 - cfg.max_drift_ppm * _PPM)
    # Every bucket minimum of the take, in segment order. Its place on the recorder clock
    # (to window by) is the segment's first arrival plus the device time since: within a
    # few ms of the truth, and increasing, which the window search needs.
    t_first = segs[0].t0
    t_abs = np.maximum.accumulate(np.concatenate([s.bx + float(s.t0 - t_first) for s in segs]))
    frames = Points(
        np.concatenate([s.bx for s in segs]),
        np.concatenate([s.by for s in segs]),
        np.concatenate([np.full(s.bx.size, k) for k, s in enumerate(segs)]),
    )
    # Probes read the device clock itself, so across a reconnect (or a change of link
    # latency) that left the clock alone they keep one line: group them by clock, not by
    # segment, once the boundaries are judged.
    pt, pts = _probe_points(segs, probes, t_first, list(range(len(segs))))
    cam = _camera_slope(frames, pts, max_slope, cfg)
    clock_of = _clocks(segs, probes, cam or 0.0, cfg)
    if len(set(clock_of)) < len(segs):
        pt, pts = _probe_points(segs, probes, t_first, clock_of)
        cam = _camera_slope(frames, pts, max_slope, cfg)
    seg_start = np.cumsum([0] + [s.bx.size for s in segs])
    half = cfg.window_ns / 2
    for k, s in enumerate(segs):
        count = max(1, math.ceil(s.span / cfg.knot_ns)) if s.span > 0 else 0
        kx = np.linspace(s.x_lo, s.x_hi, count + 1) if count else np.array([s.x_lo])
        kv = np.empty_like(kx)
        slopes = np.empty_like(kx)
        own_lo, own_hi = int(seg_start[k]), int(seg_start[k + 1])
        for j, xk in enumerate(kx):
            tk = float(s.t0 - t_first) + xk
            lo = int(np.searchsorted(t_abs, tk - half, side="left"))
            hi = int(np.searchsorted(t_abs, tk + half, side="right"))
            if min(hi, own_hi) <= max(lo, own_lo):  # no own minimum near: take them all
                lo, hi = min(lo, own_lo), max(hi, own_hi)
            p_lo = int(np.searchsorted(pt, tk - half, side="left"))
            p_hi = int(np.searchsorted(pt, tk + half, side="right"))
            b = slope(frames.part(lo, hi), pts.part(p_lo, p_hi), max_slope, cfg.drift_span_ns)
            if b is None:
                b = cam if cam is not None else 0.0
                s.borrowed = s.borrowed or cam is not None
            own = slice(max(lo, own_lo), min(hi, own_hi))
            kv[j] = float(np.min(frames.y[own] - b * frames.x[own])) + b * xk
            slopes[j] = b
        s.knots_x, s.knots_v = kx, kv
        s.slope_lo, s.slope_hi = float(slopes[0]), float(slopes[-1])
        # Spread: the third-lowest bucket minimum above the envelope (the support points
        # sit on it): the height the lowest ones likely have above the true minimum.
        res = np.sort(s.by - s.envelope(s.bx))
        s.spread = float(res[min(2, res.size - 1)]) if res.size else 0.0


def _camera_slope(
    frames: Points, probes: Points, max_slope: float, cfg: RefineConfig
) -> float | None:
    """The camera's drift over the whole take; a take shorter than ``drift_span_ns`` gets
    the slope of what it has (down to ``short_span_ns``) rather than none: a drift of
    100 ppm left out costs 0.35 ms at the ends of a 7 s take, more than a short fit's
    error (measured: tests/timeline/test_refined_take.py, a 7 s recorded take)."""
    cam = slope(frames, probes, max_slope, cfg.drift_span_ns)
    if cam is None:
        cam = slope(frames, probes, max_slope, cfg.short_span_ns)
    return cam


def _probe_points(
    segs: list[Envelope], probes: I64, t_first: int, clock_of: list[int]
) -> tuple[F64, Points]:
    """The probes inside one segment's span of arrivals (a step elsewhere cannot have
    moved them), as fit points grouped by clock (``clock_of[k]``: the first segment of
    segment ``k``'s clock, whose coordinates they take), with their recorder times
    relative to ``t_first``."""
    k, pr = probes_by_segment(segs, probes)
    if k.size == 0:
        e = np.zeros(0)
        return e, Points(e, e, np.zeros(0, dtype=np.int64), e)
    c = np.asarray(clock_of, dtype=np.int64)[k]
    x0 = np.array([s.x0 for s in segs], dtype=np.int64)[c]
    y0 = np.array([s.y0 for s in segs], dtype=np.int64)[c]
    dev = pr[:, 1]
    pts = Points(
        (dev - x0).astype(np.float64),
        (pr[:, 0] - dev - y0).astype(np.float64),
        c,
        (pr[:, 2] - dev - y0).astype(np.float64),
    )
    return ((pr[:, 0] + pr[:, 2]) // 2 - t_first).astype(np.float64), pts


def probes_by_segment(segs: list[Envelope], probes: I64) -> tuple[I64, I64]:
    """(segment per probe, probes) for the probes answered within a segment's arrivals,
    in time order."""
    if probes.size == 0:
        return np.zeros(0, dtype=np.int64), probes.reshape(-1, 3)
    pr = probes[np.argsort(probes[:, 0] + probes[:, 2], kind="stable")]
    tau = (pr[:, 0] + pr[:, 2]) // 2
    starts = np.array([s.t0 for s in segs])
    ends = np.array([s.t_end for s in segs])
    k = np.searchsorted(starts, tau, side="right") - 1
    inside = (k >= 0) & (tau <= ends[np.maximum(k, 0)])
    # Just before the next segment's first arrival, a probe may already read that
    # segment's clock (a step): its frames were captured a latency earlier.
    nxt = np.append(starts[1:], np.iinfo(np.int64).max)[np.maximum(k, 0)]
    inside &= tau < nxt - BOUNDARY_NS
    return k[inside].astype(np.int64), pr[inside]


BOUNDARY_NS: Final = 200_000_000  # latency + jitter + a burst: probes this near a
# segment's start are not trusted to read the segment before it
_CLOCK_SIDE: Final = 10  # probes compared on each side of a boundary
_CLOCK_SLACK_NS: Final = 200_000  # plus 5 ppm of the time between them


def _clocks(segs: list[Envelope], probes: I64, slope: float, cfg: RefineConfig) -> list[int]:
    """Per segment, the first segment that shares its device clock.

    At each boundary the clock continued if the offsets that the probes on both sides
    measured (``[t0, t1] − device``, carried to the boundary with the drift ``slope``)
    still intersect; without probes on both sides, if the envelope kept its level within
    ``step_ns``.
    """
    k_of, pr = probes_by_segment(segs, probes)
    out = [0]
    for k in range(1, len(segs)):
        t_b = segs[k].t0
        before = pr[k_of == k - 1][-_CLOCK_SIDE:]
        after = pr[k_of == k][:_CLOCK_SIDE]
        if before.shape[0] >= 2 and after.shape[0] >= 2:
            side = np.concatenate([before, after])
            ref = int(side[0, 0] - side[0, 1])
            dt = (t_b - (side[:, 0] + side[:, 2]) // 2).astype(np.float64)
            carry = slope * dt
            slack = _CLOCK_SLACK_NS + 5e-6 * np.abs(dt)
            lo = (side[:, 0] - side[:, 1] - ref).astype(np.float64) + carry - slack
            hi = (side[:, 2] - side[:, 1] - ref).astype(np.float64) + carry + slack
            same = intersect(lo, hi, 1) is not None
        else:
            a, b = segs[k - 1], segs[k]
            # each side's lowest arrival − device near the boundary, carried to it
            lvl_a = a.y0 + float(np.min(a.by[a.bx >= a.x_hi - cfg.step_window_ns]))
            lvl_b = b.y0 + float(np.min(b.by[b.bx <= b.x_lo + cfg.step_window_ns]))
            gap = float(b.t0 - (a.t0 + a.x_hi))
            same = abs(lvl_b - lvl_a - slope * gap) < cfg.step_ns
        out.append(out[-1] if same else k)
    return out
