"""Where one camera's clock record breaks: new connections, steps of its clock, glitches.

A device clock that jumps (NTP step, reboot) or a link whose latency changes for good moves
the lower envelope of ``arrival − device`` by a persistent amount; a single frame far below
its neighbours is a glitched timestamp. Pure and synchronous (numpy); used by
:mod:`mmrec.timeline.refine`.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from mmrec.timeline.refine import RefineConfig

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Cause = Literal["start", "connection", "step"]


def split(
    arrival: I64, device: I64, connection: I64 | None, cfg: RefineConfig
) -> tuple[list[int], list[Cause], npt.NDArray[np.bool_]]:
    """Segment starts (frame indices, with the end appended), why each starts, and the
    frames judged glitches. Connections split first; steps are searched within each."""
    n = arrival.size
    outlier = np.zeros(n, dtype=bool)
    if connection is not None and n:
        cuts = (np.flatnonzero(connection[1:] != connection[:-1]) + 1).tolist()
    else:
        cuts = []
    starts: list[int] = [0]
    causes: list[Cause] = ["start"]
    for a, b in pairwise([0, *cuts, n]):
        if a:
            starts.append(a)
            causes.append("connection")
        for i in _steps(arrival[a:b], device[a:b], outlier[a:b], cfg):
            starts.append(a + i)
            causes.append("step")
    starts.append(n)
    return starts, causes, outlier


def _steps(
    arrival: I64, device: I64, outlier: npt.NDArray[np.bool_], cfg: RefineConfig
) -> list[int]:
    """Frame indices (within one connection) where the envelope jumps for good.

    The envelope level is the lowest ``arrival − device`` over ``step_window_ns`` of
    arrival time; where the level after a point differs from the level before it by more
    than ``step_ns``, and at least ``step_confirm`` buckets sit at the new level, the
    device clock (or the link) changed. A jump without that support is a glitch: those
    frames are marked in ``outlier`` (written in place) and left out of the fit. The exact
    frame is the largest jump of ``arrival − device`` between neighbours among the frames
    that can be on either side (before it no frame is below the old level, after it none
    is below the new one); steps larger than the jitter and bursts are placed exactly.
    """
    n = arrival.size
    if n < 2:
        return []
    y_int = arrival - device
    y = (y_int - y_int[0]).astype(np.float64)
    ids = (arrival - arrival[0]) // cfg.bucket_ns
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])  # non-empty buckets only
    m = np.minimum.reduceat(y, first)
    nb = m.size
    k_win = max(1, cfg.step_window_ns // cfg.bucket_ns)
    if nb < 2:
        return []
    pad = np.full(k_win, np.inf)
    view = np.lib.stride_tricks.sliding_window_view
    left = view(np.r_[pad, m], k_win).min(axis=1)[:nb]  # min of m[k-K:k]
    right = view(np.r_[m, pad], k_win).min(axis=1)[:nb]  # min of m[k:k+K]
    jump = right - left
    cand = np.flatnonzero(
        np.abs(np.nan_to_num(jump, nan=0.0, posinf=0.0, neginf=0.0)) > cfg.step_ns
    )
    cand = cand[cand >= 1]
    if cand.size == 0:
        return []
    frame_end = np.r_[first[1:], n]
    out: list[int] = []
    # Runs of candidates with one sign: one change each. Where the step is, the windows
    # are pure (old level all left, new level all right): the run's last bucket for a drop
    # of the envelope, its first for a rise.
    sign = np.sign(jump[cand])
    breaks = np.flatnonzero((np.diff(cand) > 1) | (np.diff(sign) != 0)) + 1
    for g in np.split(cand, breaks):
        k = int(g[-1] if jump[g[0]] < 0 else g[0])
        old, new = float(left[k]), float(right[k])
        tol = abs(new - old) / 2
        lo_b, hi_b = max(0, k - k_win), min(nb, k + k_win)
        # buckets at the lower of the two levels: the new one for a drop, the old for a rise
        low = (
            np.flatnonzero(m[k:hi_b] < old - tol) + k
            if new < old
            else (np.flatnonzero(m[lo_b:k] < new - tol) + lo_b)
        )
        support = (
            low.size >= cfg.step_confirm
            and k - lo_b >= cfg.step_confirm
            and hi_b - k >= cfg.step_confirm
        )
        if not support:
            if new < old:  # a few frames far below their neighbours: a glitch
                for j in low:
                    sl = slice(int(first[j]), int(frame_end[j]))
                    outlier[sl] |= y[sl] < old - tol
            continue
        a, b = int(first[lo_b]), int(frame_end[hi_b - 1])
        i = _locate(y[a:b], device[a:b], old, new, min(tol, _LEVEL_TOL))
        if i is None:
            continue
        if 0 < a + i < n and (not out or a + i > out[-1]):
            out.append(a + i)
    return out


_LEVEL_TOL: Final = 3_000_000  # how far below a window's lowest frame one of its clock may be


def _locate(ys: F64, dev: I64, old: float, new: float, tol: float) -> int | None:
    """The first frame after a step in ``ys`` (``arrival − device``), from ``old`` to
    ``new`` level; None if no frame can be.

    Feasible: no frame before it below ``old − tol``, none from it on below ``new − tol``.
    Among those, the device clock says where it jumped when the camera captures on a
    regular grid: the one interval between neighbours that is off the frame period (a
    step that is not a whole number of periods). Failing that, the largest jump of
    ``ys`` between neighbours, the latest of equals for a drop and the earliest for a rise
    (a burst hides a small step; the frames nearest the sure ones are likeliest).
    """
    if ys.size < 2:
        return None
    if new < old:
        below = np.flatnonzero(ys < old - tol)
        lo_i, hi_i = 1, int(below[0]) if below.size else ys.size - 1
    else:
        below = np.flatnonzero(ys < new - tol)
        lo_i, hi_i = (int(below[-1]) + 1 if below.size else 1), ys.size - 1
    lo_i = max(1, lo_i)
    if hi_i < lo_i:
        return None
    d_dev = np.diff(dev).astype(np.float64)
    period = float(np.median(d_dev))
    if period > 0:
        off = np.abs(d_dev - period * np.round(d_dev / period))
        typical = float(np.median(off))
        odd = np.flatnonzero(off[lo_i - 1 : hi_i] > max(1e6, 10 * typical))
        if odd.size == 1:
            return lo_i + int(odd[0])
    d = np.diff(ys)[lo_i - 1 : hi_i]  # d[j] = ys[lo_i + j] − ys[lo_i + j − 1]
    if new < old:
        return lo_i + d.size - 1 - int(np.argmax(-d[::-1]))
    return lo_i + int(np.argmax(d))
