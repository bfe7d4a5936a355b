"""A host's clock mapped onto the reference from NTP-style probes; chrony's figures (pure)."""

from __future__ import annotations

import random

import pytest

from mmrec.cluster.clock import ClockSample, fit_mapping, parse_chrony_tracking

NS = 1_000_000_000


def probes(
    offset: int, drift_ppm: float, delays: list[tuple[int, int]], every: int
) -> list[ClockSample]:
    """Probes of a host whose clock reads ``host = ref - offset - drift * ref``; each
    probe's way out and back take the given delays (ns)."""
    out = []
    for i, (there, back) in enumerate(delays):
        t0 = 1_700_000_000 * NS + i * every
        at = t0 + there  # the host reads its clock then
        host = at - offset - round(drift_ppm * 1e-6 * (at - 1_700_000_000 * NS))
        out.append(ClockSample(t0, host, at + back))
    return out


def test_offset_from_symmetric_probes_is_exact() -> None:
    m = fit_mapping(probes(123_456_789, 0.0, [(200_000, 200_000)] * 5, NS // 10))
    assert m.offset_ns == 123_456_789
    assert m.drift_ppm == 0.0
    assert m.uncertainty_ns == 200_000  # half the round trip
    host = probes(123_456_789, 0.0, [(0, 0)], 0)[0].host_ns
    assert m.to_host(m.to_reference(host)) == host


def test_a_slow_answer_says_little_the_shortest_round_trips_carry_the_fit() -> None:
    delays = [(5_000_000, 100_000)] * 4 + [(100_000, 100_000)] * 4  # asymmetric slow ones
    m = fit_mapping(probes(1_000, 0.0, delays, NS // 10))
    assert abs(m.offset_ns - 1_000) <= 1
    assert m.uncertainty_ns == 100_000


def test_drift_is_fitted_over_a_long_enough_span() -> None:
    rnd = random.Random(7)
    delays = [rnd.randint(100_000, 300_000) for _ in range(40)]
    samples = probes(50_000_000, 20.0, [(a, a) for a in delays], NS // 2)  # 20 s, +20 ppm
    m = fit_mapping(samples)
    assert m.drift_ppm == pytest.approx(20.0, abs=0.5)
    for s in samples:  # every probe's middle is where the mapping puts it
        mid = (s.ref_t0_ns + s.ref_t1_ns) // 2
        assert abs(m.to_reference(s.host_ns) - mid) <= m.uncertainty_ns
        assert abs(m.to_host(mid) - s.host_ns) <= m.uncertainty_ns
    # over a short span, no drift is claimed
    assert fit_mapping(samples[:3]).drift_ppm == 0.0


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError):
        fit_mapping([])


TRACKING = """\
Reference ID    : C0A82B01 (192.168.43.1)
Stratum         : 3
Ref time (UTC)  : Mon Dec 07 00:40:00 2026
System time     : 0.000012345 seconds slow of NTP time
Last offset     : -0.000001234 seconds
RMS offset      : 0.000010000 seconds
Frequency       : 12.345 ppm fast
Residual freq   : +0.001 ppm
Skew            : 0.050 ppm
Root delay      : 0.000800000 seconds
Root dispersion : 0.000100000 seconds
Update interval : 64.2 seconds
Leap status     : Normal
"""


def test_chrony_tracking_is_parsed() -> None:
    t = parse_chrony_tracking(TRACKING)
    assert t is not None
    assert t.reference == "C0A82B01 (192.168.43.1)" and t.stratum == 3
    assert t.system_offset_ns == -12_345  # slow: the host's clock is behind
    assert t.root_delay_ns == 800_000 and t.root_dispersion_ns == 100_000
    assert t.leap_status == "Normal"
    assert t.uncertainty_ns == 12_345 + 400_000 + 100_000
    fast = parse_chrony_tracking(TRACKING.replace("slow", "fast"))
    assert fast is not None and fast.system_offset_ns == 12_345


def test_not_chrony_output_is_none() -> None:
    assert parse_chrony_tracking("506 Cannot talk to daemon\n") is None
    assert parse_chrony_tracking("") is None
