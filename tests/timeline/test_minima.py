"""The clock model's kept minima (mmrec.timeline.minima) against a pass over every point:
the hull, the sums and the residual quantile must be exactly the one-pass answers, for
any sequence of closed buckets and window drops (hypothesis)."""

from __future__ import annotations

import heapq
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mmrec.timeline.minima import Minima, push


def one_pass_hull(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The lower hull as ClockModel._refit computed it before Minima: one monotone-chain
    pass over every point, written out here as the reference."""
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


# Integer-valued coordinates as the model's (ns): steps in x, delays that repeat often
# (flat floors, collinear runs) and large values where the cross product rounds.
_steps = st.lists(
    st.tuples(
        st.integers(1, 3) | st.integers(1, 10**9) | st.integers(10**9, 10**11),
        st.sampled_from([0, 1, 5, 10**6]) | st.integers(0, 10**8),
        st.booleans(),  # drop from the front after this append
        st.integers(0, 4),  # ... how many
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(steps=_steps, cur_dy=st.integers(0, 10**8), a=st.integers(-(10**8), 10**8))
def test_kept_minima_answer_as_one_pass_over_them(
    steps: list[tuple[int, int, bool, int]], cur_dy: int, a: int
) -> None:
    kept = Minima(capacity=2)  # small: the arrays move their contents and grow often
    shadow: list[tuple[float, float]] = []
    x = 0
    for dx, y, drop, k in steps:
        x += dx
        kept.append(float(x), float(y))
        shadow.append((float(x), float(y)))
        if drop and k:
            horizon = shadow[min(k, len(shadow) - 1)][0]
            kept.drop_before(horizon)
            shadow = [p for p in shadow if p[0] >= horizon]
        cur = (float(x + 1), float(cur_dy))
        pts = [*shadow, cur]
        assert len(kept) == len(shadow)
        assert kept.sum_x == sum(int(p[0]) for p in shadow)
        assert float(kept.sum_x + int(cur[0])) / len(pts) == math.fsum(p[0] for p in pts) / len(pts)
        assert kept.hull_with(cur) == one_pass_hull(pts)
        assert kept.min_y(cur) == min(p[1] for p in pts)
        b = (len(pts) % 7 - 3) * 1e-5
        assert kept.min_below(b, cur) == min(py - b * px for px, py in pts)
        res = [py - (a + b * px) for px, py in pts]
        n = len(res)
        want = heapq.nsmallest(math.ceil(0.1 * n), res)[-1] if n >= 10 else max(res)
        assert kept.residual_quantile(float(a), b, cur) == want


def test_push_drops_collinear_and_concave_vertices() -> None:
    hull: list[tuple[float, float]] = []
    for p in [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 1.0), (4.0, 5.0)]:
        push(hull, p)
    assert hull == [(0.0, 0.0), (3.0, 1.0), (4.0, 5.0)]
