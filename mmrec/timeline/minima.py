"""The clock model's kept delay minima: one per bucket of device time, in a sliding window.

:class:`Minima` holds the closed buckets' minima (oldest first) in numpy arrays, their x
sum exactly, and the lower convex hull of them as Andrew's monotone chain leaves it. The
model's fit (:meth:`mmrec.timeline.clock.ClockModel._refit`, a few times a second per
camera) then costs the hull's few vertices and some array arithmetic instead of a Python
pass over every minimum (240 of them over the default 120 s window): the chain is an
online algorithm, so the hull of the closed minima plus the open bucket's one is the
kept chain with that one point pushed on a copy, vertex for vertex what a pass over all
points gives. Only when minima leave the window is the chain run again over all of them
(once per new bucket, at most), so every answer is exactly the one-pass answer.

Coordinates are the model's: x is device time, y the delay, both relative to the first
frame since the last reset and integer-valued floats (ns, below 2**53).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Point = tuple[float, float]

_START_MAX = 4096  # floats per array to begin with (a model with tiny buckets grows them)


def push(hull: list[Point], p: Point) -> None:
    """Andrew's monotone chain step for a lower hull: ``p`` lies right of every vertex;
    vertices it makes non-convex (or collinear) are dropped."""
    px, py = p
    while len(hull) >= 2:
        (x1, y1), (x2, y2) = hull[-2], hull[-1]
        if (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1) <= 0:
            hull.pop()
        else:
            break
    hull.append(p)


class Minima:
    """Closed buckets' minima, oldest first (see the module doc). ``capacity``: about the
    most minima in the window at once; the arrays start at twice that (at most
    ``_START_MAX``), move the kept ones to the front when full, and grow when the kept
    ones fill more than half of them."""

    __slots__ = ("_hi", "_hull", "_lo", "_stale", "_sum", "_x", "_y")

    def __init__(self, capacity: int) -> None:
        size = min(2 * capacity + 2, _START_MAX)
        self._x: npt.NDArray[np.float64] = np.empty(size)
        self._y: npt.NDArray[np.float64] = np.empty(size)
        self._lo = self._hi = 0
        self._sum = 0  # the exact sum of the kept x (integers)
        self._hull: list[Point] = []  # lower hull of the kept minima
        self._stale = False  # minima left the window: run the chain again when asked

    def __len__(self) -> int:
        return self._hi - self._lo

    @property
    def sum_x(self) -> int:
        return self._sum

    def first_x(self) -> float:
        return float(self._x[self._lo])

    def append(self, x: float, y: float) -> None:
        """A bucket closed with minimum ``(x, y)``; ``x`` beyond every kept one."""
        if self._hi == len(self._x):
            n = self._hi - self._lo
            if 2 * n > len(self._x):
                self._x = np.concatenate([self.xs(), np.empty(n)])
                self._y = np.concatenate([self.ys(), np.empty(n)])
            else:
                self._x[:n] = self.xs()
                self._y[:n] = self.ys()
            self._lo, self._hi = 0, n
        self._x[self._hi] = x
        self._y[self._hi] = y
        self._hi += 1
        self._sum += int(x)
        if not self._stale:
            push(self._hull, (x, y))

    def drop_before(self, horizon: float) -> None:
        """Minima with x below ``horizon`` leave the window."""
        xs, lo, hi = self._x, self._lo, self._hi
        while lo < hi and xs[lo] < horizon:
            self._sum -= int(xs[lo])
            lo += 1
        if lo != self._lo:
            self._lo = lo
            self._stale = True

    def hull_with(self, p: Point) -> list[Point]:
        """The lower hull of the kept minima and ``p`` (right of them all)."""
        if self._stale:
            self._stale = False
            hull: list[Point] = []
            for q in zip(self.xs().tolist(), self.ys().tolist(), strict=True):
                push(hull, q)
            self._hull = hull
        out = self._hull.copy()
        push(out, p)
        return out

    def xs(self) -> npt.NDArray[np.float64]:
        return self._x[self._lo : self._hi]

    def ys(self) -> npt.NDArray[np.float64]:
        return self._y[self._lo : self._hi]

    def min_y(self, p: Point) -> float:
        """The least y of the kept minima and ``p``."""
        return min(float(self.ys().min()), p[1]) if self._hi > self._lo else p[1]

    def min_below(self, b: float, p: Point) -> float:
        """The least ``y - b * x`` of the kept minima and ``p``: the intercept of the
        line of slope ``b`` that lies below all of them."""
        last = p[1] - b * p[0]
        if self._hi == self._lo:
            return last
        return min(float((self.ys() - b * self.xs()).min()), last)

    def residual_quantile(self, a: float, b: float, p: Point) -> float:
        """Heights of the kept minima and ``p`` above the line ``a + b x``: the
        ``ceil(n / 10)``-th smallest when there are 10 or more, else the largest."""
        n = self._hi - self._lo + 1
        res = np.empty(n)
        res[:-1] = self.ys() - (a + b * self.xs())
        res[-1] = p[1] - (a + b * p[0])
        if n < 10:
            return float(res.max())
        k = math.ceil(0.1 * n) - 1
        return float(np.partition(res, k)[k])
