"""One clock for a cluster take: each host's monotonic clock mapped onto the reference.

The reference clock is the coordinator's wall clock (CLOCK_REALTIME, ns); a host keeps
its take on its own monotonic clock (as the session engine does). A probe is NTP's
exchange: the coordinator reads the reference at ``ref_t0``, asks the host for its
monotonic time (``host_ns``), and reads the reference again at ``ref_t1`` when the answer
is back. The host's reading happened somewhere in ``[ref_t0, ref_t1]``: its offset to the
reference is ``(ref_t0 + ref_t1) / 2 - host_ns``, known to within half the round trip.

:func:`fit_mapping` turns samples into a :class:`ClockMapping` (offset and drift): the
samples with the shortest round trips carry the fit (a slow answer says little: it was
queued somewhere), the drift is a least-squares slope over them once they span enough
time, and the uncertainty is the best sample's half round trip plus the fit's largest
residual. chrony's own account of the host's clock (``chronyc tracking``) is parsed by
:func:`parse_chrony_tracking` and kept beside the samples: it says how far the host's wall
clock is from NTP time, which the probes (monotonic against the coordinator) do not.

Pure: no clock is read here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

DRIFT_MIN_SPAN_NS: Final = 2_000_000_000  # samples must span this long for a drift fit
BEST_FRACTION: Final = 0.5  # the fit uses the shortest-round-trip half of the samples


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One probe: reference before, host monotonic, reference after (ns)."""

    ref_t0_ns: int
    host_ns: int
    ref_t1_ns: int

    @property
    def round_trip_ns(self) -> int:
        return self.ref_t1_ns - self.ref_t0_ns

    @property
    def offset_ns(self) -> int:
        """Reference minus host, at the middle of the exchange."""
        return (self.ref_t0_ns + self.ref_t1_ns) // 2 - self.host_ns


@dataclass(frozen=True, slots=True)
class ClockMapping:
    """``reference = host + offset_ns + drift_ppm * 1e-6 * (host - anchor_host_ns)``."""

    offset_ns: int
    drift_ppm: float
    anchor_host_ns: int
    uncertainty_ns: int
    samples: int  # samples the fit used

    def to_reference(self, host_ns: int) -> int:
        drift = round(self.drift_ppm * 1e-6 * (host_ns - self.anchor_host_ns))
        return host_ns + self.offset_ns + drift

    def to_host(self, ref_ns: int) -> int:
        """The host's monotonic reading at reference instant ``ref_ns`` (the inverse)."""
        k = 1.0 + self.drift_ppm * 1e-6
        return self.anchor_host_ns + round((ref_ns - self.offset_ns - self.anchor_host_ns) / k)


def fit_mapping(samples: Sequence[ClockSample]) -> ClockMapping:
    """The offset (and drift, given samples spanning ``DRIFT_MIN_SPAN_NS``) of a host's
    clock to the reference; ValueError without samples."""
    good = [s for s in samples if s.round_trip_ns >= 0]
    if not good:
        raise ValueError("no clock samples")
    best = sorted(good, key=lambda s: s.round_trip_ns)
    keep = best[: max(1, math.ceil(len(best) * BEST_FRACTION))]
    keep.sort(key=lambda s: s.host_ns)
    anchor = best[0]  # the most trustworthy sample anchors the line
    span = keep[-1].host_ns - keep[0].host_ns
    drift = 0.0
    if len(keep) >= 3 and span >= DRIFT_MIN_SPAN_NS:
        # least squares of offset against host time, about the anchor
        xs = [s.host_ns - anchor.host_ns for s in keep]
        ys = [s.offset_ns - anchor.offset_ns for s in keep]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx > 0:
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
            drift = slope * 1e6
    mapping = ClockMapping(anchor.offset_ns, drift, anchor.host_ns, 0, len(keep))
    residual = max(abs(mapping.to_reference(s.host_ns) - _mid(s)) for s in keep)
    return ClockMapping(
        anchor.offset_ns, drift, anchor.host_ns, anchor.round_trip_ns // 2 + residual, len(keep)
    )


def _mid(s: ClockSample) -> int:
    return (s.ref_t0_ns + s.ref_t1_ns) // 2


@dataclass(frozen=True, slots=True)
class ChronyTracking:
    """What ``chronyc tracking`` says about the host's wall clock."""

    reference: str  # "Reference ID" line's value (the server chrony follows)
    stratum: int | None
    system_offset_ns: int | None  # host wall clock minus NTP time (+: host fast)
    root_delay_ns: int | None
    root_dispersion_ns: int | None
    leap_status: str | None

    @property
    def uncertainty_ns(self) -> int | None:
        """chrony's bound on the host's distance from true time: |offset| + delay/2 +
        dispersion (chrony's documented maximum error)."""
        if self.system_offset_ns is None or self.root_delay_ns is None:
            return None
        dispersion = self.root_dispersion_ns or 0
        return abs(self.system_offset_ns) + self.root_delay_ns // 2 + dispersion


_SECONDS: Final = re.compile(r"([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?) seconds?( (fast|slow))?")


def _seconds_ns(value: str) -> int | None:
    m = _SECONDS.search(value)
    if m is None:
        return None
    ns = round(float(m.group(1)) * 1e9)
    return -ns if m.group(3) == "slow" else ns


def parse_chrony_tracking(text: str) -> ChronyTracking | None:
    """``chronyc tracking`` output, parsed; None if it is not that (no Reference ID)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    if "reference id" not in fields:
        return None
    stratum = fields.get("stratum", "")
    return ChronyTracking(
        reference=fields["reference id"],
        stratum=int(stratum) if stratum.isdigit() else None,
        system_offset_ns=_seconds_ns(fields.get("system time", "")),
        root_delay_ns=_seconds_ns(fields.get("root delay", "")),
        root_dispersion_ns=_seconds_ns(fields.get("root dispersion", "")),
        leap_status=fields.get("leap status"),
    )
