"""When a connected camera is slow: far below its nominal rate, or the rate it had, for a
whole window; and when it no longer is."""

from __future__ import annotations

import pytest

from mmrec.ingest.rate import RateChange, RateWatch

S = 1_000_000_000


def run(watch: RateWatch, rates: list[float], t0: int = 0, frames0: int = 0) -> list[RateChange]:
    """Feed one sample a second, the camera delivering ``rates[i]`` fps in second i."""
    changes = []
    t, frames = t0, frames0
    watch.connected(t, frames)
    acc = 0.0
    for fps in rates:
        t += S
        acc += fps
        frames = frames0 + int(acc)
        change = watch.sample(t, frames)
        if change is not None:
            changes.append(change)
    return changes


def test_far_below_the_nominal_rate_for_a_window_is_slow_and_recovery_is_said() -> None:
    watch = RateWatch()
    watch.nominal_fps = 30.0
    changes = run(watch, [30, 30, 30, 30, 4, 4, 4, 4, 4, 30, 30, 30, 30])
    assert [c.slow for c in changes] == [True, False]
    slow, back = changes
    assert slow.nominal and slow.reference_fps == 30 and slow.fps < 15
    assert slow.describe().startswith("slow: ") and "30 fps nominal" in slow.describe()
    assert back.describe().startswith("no longer slow: ")


def test_one_bad_second_is_not_slow() -> None:
    watch = RateWatch()
    watch.nominal_fps = 30.0
    assert run(watch, [30, 30, 30, 0, 30, 30, 30, 30]) == []  # 20 fps over the window


def test_without_a_nominal_rate_the_rate_it_had_is_the_reference() -> None:
    watch = RateWatch()
    changes = run(watch, [25] * 5 + [3] * 5)
    assert len(changes) == 1 and changes[0].slow and not changes[0].nominal
    assert changes[0].reference_fps == pytest.approx(25, rel=0.05)
    assert "measured before" in changes[0].describe()


def test_hysteresis_a_camera_at_the_edge_does_not_flap() -> None:
    watch = RateWatch()
    watch.nominal_fps = 30.0
    changes = run(watch, [30] * 4 + [12] * 4 + [18, 19, 20, 18, 19, 20] + [24] * 4)
    assert [c.slow for c in changes] == [True, False]  # slow at 12, not back before 22.5


def test_a_new_connection_is_judged_afresh() -> None:
    watch = RateWatch()
    watch.nominal_fps = 30.0
    assert [c.slow for c in run(watch, [30, 30, 30, 3, 3, 3, 3])] == [True]
    assert watch.slow
    watch.connected(100 * S, 500)
    assert not watch.slow and watch.sample(101 * S, 501) is None  # not a whole window yet


def test_a_rate_too_low_to_count_is_not_judged() -> None:
    watch = RateWatch()
    watch.nominal_fps = 1.0  # 3 frames a window: one late frame would look slow
    assert run(watch, [1, 1, 0, 0, 0, 0, 1]) == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RateWatch(slow_below=0.8, back_at=0.5)
