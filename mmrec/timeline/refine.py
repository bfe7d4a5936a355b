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

Parts: :mod:`mmrec.timeline.steps` (where the record breaks), :mod:`mmrec.timeline.envelope`
(each segment's envelope), :mod:`mmrec.timeline.drift` (the slope fits); here, the API,
``min_delay`` from the probes, and the mapping.

Invariants: pure and synchronous (numpy, no I/O, no clock reads); output times are on
the recorder clock the inputs use; a camera's result does not depend on other cameras.
Cost: O(n log n) in frames plus O(knots · window) for the envelope, ~0.3 s per camera-hour
(``benchmarks/bench_align.py`` prints it).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from mmrec.timeline.drift import intersect
from mmrec.timeline.envelope import BOUNDARY_NS, Envelope, fit_envelopes
from mmrec.timeline.steps import Cause, split

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
    short_span_ns: int = 2_000_000_000  # ...which a shorter take fits from this much at least
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
    cause: Cause  # why the segment begins here


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

    bounds, causes, outlier = split(arrival, device, evidence.connection, cfg)
    segs = [Envelope(a, b, arrival, device, outlier, cfg) for a, b in pairwise(bounds)]
    fit_envelopes(segs, evidence.probes, cfg)

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


# -- probes ------------------------------------------------------------------------------


def _min_delays(
    segs: list[Envelope], probes: I64, cfg: RefineConfig
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
    # A probe sent while a segment's frames were arriving measured that segment: the reach
    # is for probes outside every segment (the burst before a stream, a gap's edges).
    nxt = np.append(starts[1:], np.iinfo(np.int64).max)
    inside = (
        (tau[:, None] >= starts[None, :])
        & (tau[:, None] <= ends[None, :])
        & (tau[:, None] < nxt[None, :] - BOUNDARY_NS)  # may read the next one's clock
    )
    within = inside.any(axis=1)
    cand[within] = inside[within]
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
    pooled = intersect(lo_b, hi_b, max_trim)
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
        got = intersect(lo_b[sel], hi_b[sel], max(1, int(cfg.probe_trim * sel.sum())))
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
    own = intersect(lo, hi, max(1, int(cfg.probe_trim * lo.size)))
    return own is None or abs(est - own[0]) <= own[1] + slack
