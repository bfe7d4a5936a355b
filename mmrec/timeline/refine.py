"""Whole-take clock refinement: every frame's capture time from all of a camera's evidence.

The online ``ClockModel`` maps each frame as it arrives, from what it has seen so far.
After the take everything is known, so each frame can be placed with the evidence from
before *and after* it (a smoother, not a filter): the first seconds, a late joiner and the
spans around reconnects get the same accuracy as the middle of the take.

The model, per camera (all times integer ns; "recorder" is the arrival clock):

* ``arrival − device = offset(device) + min_delay + e``, ``e ≥ 0``: the *lower envelope*
  of the frames traces ``offset + min_delay`` (Moon, Skelly & Towsley). ``offset`` is
  smooth within a clock segment: the device oscillator's drift, which may itself wander
  slowly (heat), so it is fitted as piecewise-linear with knots every ``knot_ns``, each knot
  from a ``window_ns`` wide fit on both sides of it.
* A ``/status`` probe sent at ``t0`` and answered at ``t1`` read the device clock at some
  recorder instant in ``[t0, t1]``, so it bounds ``offset`` directly, not
  ``offset + min_delay``. Every probe thus bounds ``min_delay`` to
  ``envelope − [t0, t1] + device``; the intersection of those intervals over the take is
  decided by the probes with the shortest *legs* (each side separately, NTP's clock-filter
  idea), so a doze-delayed request or a slow answer costs nothing. Per-node latencies
  (2–40 ms) therefore never enter the offset when probes exist. Its midpoint assumes the
  two legs' floors are equal (NTP's assumption; nothing can measure their difference), so
  the stated uncertainty includes half the interval.
* The drift: the probes bound the offset from both sides, so the slope that leaves them
  the most room (the legs' common floor, largest) is pinned by the sharpest probes; the
  envelope's slope is used instead where its edge is clearly sharper (a phone without
  jitter of its own). Over 1 Hz probes the drift is good to about 1 ppm per minute of take
  on a WiFi-like link (``benchmarks/bench_align.py``); faster probing tightens it.
* Without probes, ``min_delay`` is unknown: times are capture + min delay, as the online
  model's, and ``Refinement.maps_to`` says so.

Segments: a new connection (``ClockEvidence.connection`` changes) and a jump of the
envelope by more than ``step_ns`` that persists (a device clock step, or a latency that
changed for good) start a new segment with its own envelope intercept. Segments share the
drift (one oscillator); probes on both sides of a boundary tell whether the device clock
itself continued (then they keep one offset line across it); ``min_delay`` is shared
unless the probes say it differs between segments.

Invariants: pure and synchronous (numpy, no I/O, no clock reads); output times are on
the recorder clock the inputs use; a camera's result does not depend on other cameras.
Cost: O(n log n) in frames plus O(knots · window) for the envelope, ~0.3 s per camera-hour
(``benchmarks/bench_align.py`` prints it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Source = Literal["device+probe", "device", "arrival"]
MapsTo = Literal["capture", "capture+min_delay", "arrival"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_PPM: Final = 1e-6


@dataclass(frozen=True, slots=True)
class RefineConfig:
    """Knobs of the fit. Defaults suit phones at 5–60 fps over WiFi."""

    bucket_ns: int = 500_000_000  # frames are reduced to the lowest one per bucket
    knot_ns: int = 30_000_000_000  # the offset is piecewise linear between knots...
    window_ns: int = 120_000_000_000  # ...each knot fitted from this much take around it
    drift_span_ns: int = 10_000_000_000  # a fit spanning less borrows the camera's drift
    max_drift_ppm: float = 300.0
    step_ns: int = 20_000_000  # an envelope jump this large that persists: new segment
    step_window_ns: int = 3_000_000_000  # envelope level compared over this much either side
    step_confirm: int = 3  # buckets at the new level needed to call it a step, not a glitch
    probe_reach_ns: int = 10_000_000_000  # probes this far before a segment's first frame
    probe_trim: float = 0.05  # at most this share of probes dropped to reconcile them


@dataclass(frozen=True, slots=True, eq=False)
class ClockEvidence:
    """One camera's whole take as the recorder saw it.

    ``arrival_ns``: recorder clock at each frame's arrival, in arrival order.
    ``device_ns``: the device clock at capture (``X-Timestamp``) per frame, or None when
    the camera sends none. ``connection``: per frame, a label that changes whenever a new
    connection (or anything else known to break the clock, e.g. a camera restart) starts;
    None if unknown. ``probes``: rows ``(t0, device, t1)`` of ``/status`` round trips,
    ``t0``/``t1`` on the recorder clock, any order.
    """

    arrival_ns: I64
    device_ns: I64 | None
    probes: I64
    connection: I64 | None = None

    @staticmethod
    def of(
        arrival_ns: npt.ArrayLike,
        device_ns: npt.ArrayLike | None,
        probes: npt.ArrayLike = (),
        connection: npt.ArrayLike | None = None,
    ) -> ClockEvidence:
        """Build from anything array-like, checking shapes (ValueError names the field)."""
        arr = np.asarray(arrival_ns, dtype=np.int64).reshape(-1)
        dev = None if device_ns is None else np.asarray(device_ns, dtype=np.int64).reshape(-1)
        pr = np.asarray(probes, dtype=np.int64).reshape(-1, 3)
        conn = None if connection is None else np.asarray(connection, dtype=np.int64).reshape(-1)
        if dev is not None and dev.shape != arr.shape:
            raise ValueError(f"device_ns has {dev.size} frames, arrival_ns {arr.size}")
        if conn is not None and conn.shape != arr.shape:
            raise ValueError(f"connection has {conn.size} frames, arrival_ns {arr.size}")
        if pr.size and bool(np.any(pr[:, 2] < pr[:, 0])):
            raise ValueError("a probe was answered before it was sent (t1 < t0)")
        return ClockEvidence(arr, dev, pr, conn)


@dataclass(frozen=True, slots=True)
class ClockSegment:
    """A run of frames ``[first, stop)`` with one continuous device clock and link."""

    first: int
    stop: int
    offset_ns: int  # recorder − device at the first frame, as mapped (capture, if probed)
    drift_ppm: float  # device rate error: +50 gains 50 µs per second of recorder time
    uncertainty_ns: int  # the mapping's error bound in this segment (see Refinement)
    min_delay_ns: int | None  # capture → arrival minimum; None without probes
    probes: int  # probes that measured this segment
    cause: Literal["start", "connection", "step"]  # why the segment begins here


@dataclass(frozen=True, slots=True, eq=False)
class Refinement:
    """Each frame's best time on the recorder clock, and how good it is.

    ``uncertainty_ns`` (per camera, the largest over segments) adds the probes' interval
    half-width for ``min_delay`` to twice the envelope's spread (its support points' likely
    height above the true minimum, which also tilts the drift). ``outliers`` counts frames
    whose device time jumped alone (a glitch) and were left out of the fit; they are still
    mapped. ``probes_used`` and ``probes_dropped`` count round trips that measured the clock
    and ones left out because they contradicted the rest.
    """

    time_ns: I64
    source: Source
    maps_to: MapsTo
    segment: npt.NDArray[np.int32]  # per frame, index into ``segments``
    segments: tuple[ClockSegment, ...]
    min_delay_ns: int | None  # the camera's (one value unless the probes disagreed)
    uncertainty_ns: int
    probes_used: int
    probes_dropped: int
    outliers: int
    note: str | None  # what a reader should know (no clock, inconsistent probes)

    @property
    def drift_ppm(self) -> float | None:
        """Drift of the longest segment (the best-determined one)."""
        if not self.segments:
            return None
        return max(self.segments, key=lambda s: s.stop - s.first).drift_ppm


# -- the fit ---------------------------------------------------------------------------


def refine(evidence: ClockEvidence, config: RefineConfig | None = None) -> Refinement:
    """Place every frame of one camera's take at its best capture time (see the module)."""
    cfg = config or RefineConfig()
    arrival = evidence.arrival_ns
    n = arrival.size
    if evidence.device_ns is None or n == 0:
        note = "no device timestamps: frames stay at their arrival times" if n else None
        return Refinement(
            time_ns=arrival.copy(),
            source="arrival",
            maps_to="arrival",
            segment=np.zeros(n, dtype=np.int32),
            segments=(),
            min_delay_ns=None,
            uncertainty_ns=0,
            probes_used=0,
            probes_dropped=0,
            outliers=0,
            note=note,
        )
    device = evidence.device_ns

    bounds, causes, outlier = _segment(arrival, device, evidence.connection, cfg)
    segs = [_Seg(a, b, arrival, device, outlier, cfg) for a, b in pairwise(bounds)]
    _fit_envelopes(segs, evidence.probes, cfg)

    probes = evidence.probes
    delays, unc_l, used, dropped, probe_counts, consistent = _min_delays(segs, probes, cfg)

    time_ns = np.empty(n, dtype=np.int64)
    seg_of = np.empty(n, dtype=np.int32)
    out_segs: list[ClockSegment] = []
    for k, s in enumerate(segs):
        env = s.envelope(s.x)
        md = delays[k] if delays is not None else 0.0
        # device + y0 + env − min_delay, rounded once; ints stay exact for 1e18 device ns
        time_ns[s.a : s.b] = device[s.a : s.b] + s.y0 + np.rint(env - md).astype(np.int64)
        seg_of[s.a : s.b] = k
        unc = 2.0 * s.spread + (unc_l[k] if unc_l is not None else 0.0)
        b = s.mean_slope()
        out_segs.append(
            ClockSegment(
                first=s.a,
                stop=s.b,
                offset_ns=int(s.y0 + round(float(env[0]) - md)),
                drift_ppm=-b / (1.0 + b) / _PPM,
                uncertainty_ns=round(unc),
                min_delay_ns=round(md) if delays is not None else None,
                probes=probe_counts[k],
                cause=causes[k],
            )
        )
    notes = []
    if delays is None:
        notes.append(
            "no /status clock: times are capture + this camera's minimum delay (unknown), "
            "from the lower envelope of its frames"
        )
    elif not consistent:
        notes.append("probes disagree between segments: min delay fitted per segment")
    if any(s.borrowed for s in segs):
        notes.append("a segment too short for its own drift used the camera's")
    md_cam: int | None = None
    if delays is not None:
        longest = max(range(len(segs)), key=lambda k: segs[k].b - segs[k].a)
        md_cam = round(delays[longest])
    return Refinement(
        time_ns=time_ns,
        source="device+probe" if delays is not None else "device",
        maps_to="capture" if delays is not None else "capture+min_delay",
        segment=seg_of,
        segments=tuple(out_segs),
        min_delay_ns=md_cam,
        uncertainty_ns=max(s.uncertainty_ns for s in out_segs),
        probes_used=used,
        probes_dropped=dropped,
        outliers=int(outlier.sum()),
        note="; ".join(notes) or None,
    )


# -- segmentation ----------------------------------------------------------------------


def _segment(
    arrival: I64, device: I64, connection: I64 | None, cfg: RefineConfig
) -> tuple[list[int], list[Literal["start", "connection", "step"]], npt.NDArray[np.bool_]]:
    """Segment starts (frame indices, with the end appended), why each starts, and the
    frames judged glitches. Connections split first; steps are searched within each."""
    n = arrival.size
    outlier = np.zeros(n, dtype=bool)
    if connection is not None and n:
        cuts = (np.flatnonzero(connection[1:] != connection[:-1]) + 1).tolist()
    else:
        cuts = []
    starts: list[int] = [0]
    causes: list[Literal["start", "connection", "step"]] = ["start"]
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


# -- envelope ----------------------------------------------------------------------------


class _Seg:
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


def _fit_envelopes(segs: list[_Seg], probes: I64, cfg: RefineConfig) -> None:
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
    frames = _Points(
        np.concatenate([s.bx for s in segs]),
        np.concatenate([s.by for s in segs]),
        np.concatenate([np.full(s.bx.size, k) for k, s in enumerate(segs)]),
    )
    # Probes read the device clock itself, so across a reconnect (or a change of link
    # latency) that left the clock alone they keep one line: group them by clock, not by
    # segment, once the boundaries are judged.
    pt, pts = _probe_points(segs, probes, t_first, list(range(len(segs))))
    cam = _slope(frames, pts, max_slope, cfg.drift_span_ns)
    clock_of = _clocks(segs, probes, cam or 0.0, cfg)
    if len(set(clock_of)) < len(segs):
        pt, pts = _probe_points(segs, probes, t_first, clock_of)
        cam = _slope(frames, pts, max_slope, cfg.drift_span_ns)
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
            b = _slope(frames.part(lo, hi), pts.part(p_lo, p_hi), max_slope, cfg.drift_span_ns)
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


@dataclass(frozen=True, slots=True, eq=False)
class _Points:
    """Points of several segments in fit coordinates, ``gid`` non-decreasing. For frames
    ``y`` is a bucket minimum; for probes ``y`` is the lower bound (``t0``) and ``y2`` the
    upper one (``t1``) of the recorder time of the device reading ``x``."""

    x: F64
    y: F64
    gid: I64
    y2: F64 | None = None

    def part(self, lo: int, hi: int) -> _Points:
        y2 = self.y2[lo:hi] if self.y2 is not None else None
        return _Points(self.x[lo:hi], self.y[lo:hi], self.gid[lo:hi], y2)

    def every(self, k: int, i: int) -> _Points:
        y2 = self.y2[i::k] if self.y2 is not None else None
        return _Points(self.x[i::k], self.y[i::k], self.gid[i::k], y2)

    def groups(self, min_span: float) -> list[tuple[int, int]]:
        """``[p, q)`` index ranges of the groups that span ``min_span`` of x."""
        cut = np.flatnonzero(self.gid[1:] != self.gid[:-1]) + 1
        out = []
        for p, q in pairwise([0, *cut.tolist(), self.x.size]):
            if q - p >= 2 and float(self.x[p:q].max() - self.x[p:q].min()) >= min_span:
                out.append((p, q))
        return out


def _probe_points(
    segs: list[_Seg], probes: I64, t_first: int, clock_of: list[int]
) -> tuple[F64, _Points]:
    """The probes inside one segment's span of arrivals (a step elsewhere cannot have
    moved them), as fit points grouped by clock (``clock_of[k]``: the first segment of
    segment ``k``'s clock, whose coordinates they take), with their recorder times
    relative to ``t_first``."""
    k, pr = _probes_by_segment(segs, probes)
    if k.size == 0:
        e = np.zeros(0)
        return e, _Points(e, e, np.zeros(0, dtype=np.int64), e)
    c = np.asarray(clock_of, dtype=np.int64)[k]
    x0 = np.array([s.x0 for s in segs], dtype=np.int64)[c]
    y0 = np.array([s.y0 for s in segs], dtype=np.int64)[c]
    dev = pr[:, 1]
    pts = _Points(
        (dev - x0).astype(np.float64),
        (pr[:, 0] - dev - y0).astype(np.float64),
        c,
        (pr[:, 2] - dev - y0).astype(np.float64),
    )
    return ((pr[:, 0] + pr[:, 2]) // 2 - t_first).astype(np.float64), pts


def _probes_by_segment(segs: list[_Seg], probes: I64) -> tuple[I64, I64]:
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
    return k[inside].astype(np.int64), pr[inside]


_CLOCK_SIDE: Final = 10  # probes compared on each side of a boundary
_CLOCK_SLACK_NS: Final = 200_000  # plus 5 ppm of the time between them


def _clocks(segs: list[_Seg], probes: I64, slope: float, cfg: RefineConfig) -> list[int]:
    """Per segment, the first segment that shares its device clock.

    At each boundary the clock continued if the offsets that the probes on both sides
    measured (``[t0, t1] − device``, carried to the boundary with the drift ``slope``)
    still intersect; without probes on both sides, if the envelope kept its level within
    ``step_ns``.
    """
    k_of, pr = _probes_by_segment(segs, probes)
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
            same = _intersect(lo, hi, 1) is not None
        else:
            a, b = segs[k - 1], segs[k]
            # each side's lowest arrival − device near the boundary, carried to it
            lvl_a = a.y0 + float(np.min(a.by[a.bx >= a.x_hi - cfg.step_window_ns]))
            lvl_b = b.y0 + float(np.min(b.by[b.bx <= b.x_lo + cfg.step_window_ns]))
            gap = float(b.t0 - (a.t0 + a.x_hi))
            same = abs(lvl_b - lvl_a - slope * gap) < cfg.step_ns
        out.append(out[-1] if same else k)
    return out


_NEAR: Final = 5  # points per half-span whose height above a fit gauges its edge
_PROBE_EDGE: Final = 3.0  # the envelope must be this much sharper to set the slope


def _slope(frames: _Points, probes: _Points, max_slope: float, min_span: float) -> float | None:
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


def _edge(pts: _Points, v: F64, min_span: float) -> float:
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


def _envelope_slope(pts: _Points, max_slope: float, min_span: float) -> float | None:
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


def _probe_slope(pts: _Points, max_slope: float, min_span: float) -> float | None:
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


# -- probes ------------------------------------------------------------------------------


def _min_delays(
    segs: list[_Seg], probes: I64, cfg: RefineConfig
) -> tuple[list[float] | None, list[float] | None, int, int, list[int], bool]:
    """``min_delay`` per segment from the probes, with its half-width; counts.

    Returns (delays, half_widths, used, dropped, per-segment counts, consistent). None
    delays mean no probe measured any segment.
    """
    counts = [0] * len(segs)
    if probes.size == 0:
        return None, None, 0, 0, counts, True
    t0, dev, t1 = probes[:, 0], probes[:, 1], probes[:, 2]
    mid2 = t0 + t1  # twice the midpoint: exact in int64
    half_rtt = (t1 - t0).astype(np.float64) / 2
    # Candidate segments per probe: its arrival span, reaching back for probes sent
    # before a connection's first frame and a little beyond its last.
    starts = np.array([s.t0 for s in segs], dtype=np.int64)
    ends = np.array([s.t_end for s in segs], dtype=np.int64)
    tau = mid2 // 2
    cand = (tau[:, None] >= starts[None, :] - cfg.probe_reach_ns) & (
        tau[:, None] <= ends[None, :] + 2_000_000_000
    )
    # r = offset measured by the probe − envelope: −min_delay + half the legs' difference
    r = np.full(cand.shape, np.nan)
    for k, s in enumerate(segs):
        rows = np.flatnonzero(cand[:, k])
        if rows.size == 0:
            continue
        env = s.envelope((dev[rows] - s.x0).astype(np.float64))
        # (mid − dev − y0) exactly in ints (as a half), then float
        r[rows, k] = (mid2[rows] - 2 * dev[rows] - 2 * s.y0).astype(np.float64) / 2 - env
    # Assign: alone → that segment; several (a step nearby) → the one agreeing with the
    # probes that were alone, else the closest in time.
    single = cand.sum(axis=1) == 1
    ref = np.nanmedian(r[single]) if single.any() else None
    assign = np.full(len(probes), -1)
    for j in range(len(probes)):
        ks = np.flatnonzero(cand[j])
        if ks.size == 1:
            assign[j] = ks[0]
        elif ks.size > 1:
            if ref is not None:
                assign[j] = ks[int(np.argmin(np.abs(r[j, ks] - ref)))]
            else:
                assign[j] = ks[int(np.argmin(np.abs(starts[ks] - tau[j])))]
    ok = assign >= 0
    if not ok.any():
        return None, None, 0, 0, counts, True
    rr = r[np.flatnonzero(ok), assign[ok]]
    hw = half_rtt[ok]
    seg_j = assign[ok]
    # Each probe bounds min_delay to [−r − h, −r + h] (h: half its round trip).
    lo_b, hi_b = -rr - hw, -rr + hw
    max_trim = max(1, int(cfg.probe_trim * rr.size))
    pooled = _intersect(lo_b, hi_b, max_trim)
    used = int(rr.size)
    if pooled is not None and all(
        _agrees(pooled[0], lo_b[seg_j == k], hi_b[seg_j == k], 2 * segs[k].spread, cfg)
        for k in range(len(segs))
    ):
        est, width, trimmed = pooled
        for k in seg_j.tolist():
            counts[k] += 1
        return [est] * len(segs), [width] * len(segs), used - trimmed, trimmed, counts, True
    # The probes disagree as a whole: min delay per segment that has probes, the nearest
    # such segment's for the others.
    delays: list[float | None] = [None] * len(segs)
    widths: list[float] = [0.0] * len(segs)
    dropped = 0
    for k in range(len(segs)):
        sel = seg_j == k
        counts[k] = int(sel.sum())
        if not sel.any():
            continue
        got = _intersect(lo_b[sel], hi_b[sel], max(1, int(cfg.probe_trim * sel.sum())))
        if got is None:  # inconsistent even within: the best quarter's median midpoint
            best = np.argsort(hw[sel])[: max(1, int(sel.sum()) // 4)]
            vals = -rr[sel][best]
            delays[k] = float(np.median(vals))
            widths[k] = float(np.max(np.abs(vals - delays[k]))) + float(np.min(hw[sel]))
        else:
            delays[k], widths[k], t = got
            dropped += t
    have = [k for k in range(len(segs)) if delays[k] is not None]
    out: list[float] = []
    for k in range(len(segs)):
        near = min(have, key=lambda h: abs(segs[h].t0 - segs[k].t0))
        d = delays[near]
        assert d is not None
        out.append(d)
        if delays[k] is None:
            widths[k] = widths[near]
    return out, widths, used - dropped, dropped, counts, False


def _agrees(est: float, lo: F64, hi: F64, slack: float, cfg: RefineConfig) -> bool:
    """Whether one segment's own probes allow the pooled ``est`` (no probes: they do)."""
    if lo.size == 0:
        return True
    own = _intersect(lo, hi, max(1, int(cfg.probe_trim * lo.size)))
    return own is None or abs(est - own[0]) <= own[1] + slack


def _intersect(lo: F64, hi: F64, max_trim: int) -> tuple[float, float, int] | None:
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
