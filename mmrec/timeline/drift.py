"""Drift slopes of lines lying under points: the frames' lower envelope and the probes' band.

Two fits of one slope (a device oscillator's rate error) with one intercept per group of
points (a clock segment or link of its own), and the rule choosing between them:

* frames: the line under each group's lowest ``arrival − device`` that minimises their
  summed height above it (Moon, Skelly & Towsley's linear programme);
* probes: the line through the band between the highest lower bound (``t0 − device``) and
  the lowest upper bound (``t1 − device``) of the offset, at the slope where the band is
  widest.

Pure and synchronous (numpy); used by :mod:`mmrec.timeline.envelope`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class Points:
    """Points of several segments in fit coordinates, ``gid`` non-decreasing. For frames
    ``y`` is a bucket minimum; for probes ``y`` is the lower bound (``t0``) and ``y2`` the
    upper one (``t1``) of the recorder time of the device reading ``x``."""

    x: F64
    y: F64
    gid: I64
    y2: F64 | None = None

    def part(self, lo: int, hi: int) -> Points:
        y2 = self.y2[lo:hi] if self.y2 is not None else None
        return Points(self.x[lo:hi], self.y[lo:hi], self.gid[lo:hi], y2)

    def every(self, k: int, i: int) -> Points:
        y2 = self.y2[i::k] if self.y2 is not None else None
        return Points(self.x[i::k], self.y[i::k], self.gid[i::k], y2)

    def groups(self, min_span: float) -> list[tuple[int, int]]:
        """``[p, q)`` index ranges of the groups that span ``min_span`` of x."""
        cut = np.flatnonzero(self.gid[1:] != self.gid[:-1]) + 1
        out = []
        for p, q in pairwise([0, *cut.tolist(), self.x.size]):
            if q - p >= 2 and float(self.x[p:q].max() - self.x[p:q].min()) >= min_span:
                out.append((p, q))
        return out


_NEAR: Final = 5  # points per half-span whose height above a fit gauges its edge
_PROBE_EDGE: Final = 3.0  # the envelope must be this much sharper to set the slope


def slope(frames: Points, probes: Points, max_slope: float, min_span: float) -> float | None:
    """The drift slope from the probes, or from the frames' envelope where its edge is
    clearly the sharper; None when neither spans ``min_span``.

    A line under points is pinned by how close its lowest points in each half of the span
    come to the true minimum. Frames alone do that well when their delays often reach the
    minimum (no jitter on the phone); when the phone adds jitter of its own the envelope's
    edge is soft, and probes (short legs with a sharp floor, bounding the offset from both
    sides) do better. Which is the case is measured, not assumed: each fit's edge is the
    height of the ``_NEAR``-th lowest point of each half above it, over half the span;
    the probes set the slope unless the envelope's edge is ``_PROBE_EDGE`` times sharper
    (measured on simulated phones: this choice beats weighting the two).
    """
    b_env = _envelope_slope(frames, max_slope, min_span)
    b_pr = _probe_slope(probes, max_slope, min_span)
    if b_pr is None or probes.y2 is None:
        return b_env
    if b_env is None:
        return b_pr
    env = _edge(frames, frames.y - b_env * frames.x, min_span)
    # answers bound the offset from above (the lowest bind), requests from below
    pr = max(
        _edge(probes, probes.y2 - b_pr * probes.x, min_span),
        _edge(probes, -(probes.y - b_pr * probes.x), min_span),
    )
    return b_env if env * _PROBE_EDGE < pr else b_pr


def _edge(pts: Points, v: F64, min_span: float) -> float:
    """How sharply points sit on a line under ``v`` (one intercept per group): the
    ``_NEAR``-th lowest height above it in either half of any group, over half the
    longest group's span (a slope error)."""
    worst, lever = 0.0, 0.0
    for p, q in pts.groups(min_span):
        x, h = pts.x[p:q], v[p:q] - float(np.min(v[p:q]))
        mid = float(np.median(x))
        for part in (h[x <= mid], h[x > mid]):
            srt = np.sort(part)
            worst = max(worst, float(srt[min(_NEAR, srt.size - 1)]) if srt.size else math.inf)
        lever = max(lever, float(x.max() - x.min()) / 2)
    return worst / lever if lever > 0 else math.inf


def _bisect(sign: Callable[[float], float], max_slope: float) -> float:
    """Where a non-increasing ``sign`` (a supergradient) crosses 0 in ±max_slope."""
    lo, hi = -max_slope, max_slope
    if sign(lo) <= 0:
        return lo
    if sign(hi) >= 0:
        return hi
    for _ in range(40):  # 6e-4 / 2**40 < 1e-15
        mid = (lo + hi) / 2
        if sign(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _envelope_slope(pts: Points, max_slope: float, min_span: float) -> float | None:
    """The slope of lines lying under each group's points (one intercept per group) that
    minimises the points' summed height above their line (Moon, Skelly & Towsley's linear
    programme; with one group, the lower hull's edge over the mean x). The objective is
    convex in the slope, so the sign of its subgradient bisects to the optimum."""
    groups = pts.groups(min_span)
    if not groups:
        return None
    x, y = pts.x, pts.y
    total = [float(x[p:q].sum()) for p, q in groups]

    def sign(b: float) -> float:  # minus the objective's subgradient
        acc = 0.0
        for (p, q), t in zip(groups, total, strict=True):
            v = y[p:q] - b * x[p:q]
            acc += t - (q - p) * float(x[p + int(np.argmin(v))])
        return acc

    return _bisect(sign, max_slope)


def _probe_slope(pts: Points, max_slope: float, min_span: float) -> float | None:
    """The slope that leaves the probes the most room: each group's band between its
    highest lower bound and lowest upper bound is widest (the legs' common floor, largest;
    the NTP assumption that both legs share it), summed with weights by probe count."""
    groups = [g for g in pts.groups(min_span) if g[1] - g[0] >= 8]
    if not groups or pts.y2 is None:
        return None
    x, lo, hi = pts.x, pts.y, pts.y2

    def sign(b: float) -> float:  # the summed band width's supergradient
        acc = 0.0
        for p, q in groups:
            xs = x[p:q]
            top = int(np.argmin(hi[p:q] - b * xs))
            bottom = int(np.argmax(lo[p:q] - b * xs))
            acc += (q - p) * float(xs[bottom] - xs[top])
        return acc

    return _bisect(sign, max_slope)


def intersect(lo: F64, hi: F64, max_trim: int) -> tuple[float, float, int] | None:
    """Midpoint and half-width of the intersection of ``[lo_i, hi_i]``, dropping as few of
    the most extreme bounds as make it non-empty (at most ``max_trim``); None if it stays
    empty. Returns (midpoint, half-width, bounds dropped)."""
    los = np.sort(lo)[::-1]
    his = np.sort(hi)
    for t in range(min(max_trim, lo.size - 1) + 1):
        best: tuple[float, float] | None = None
        for k_lo in range(t + 1):
            a, b = los[k_lo], his[t - k_lo]
            if a <= b and (best is None or b - a > best[1] - best[0]):
                best = (float(a), float(b))
        if best is not None:
            return (best[0] + best[1]) / 2, (best[1] - best[0]) / 2, t
    return None
