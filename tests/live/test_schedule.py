"""The live preview's schedule: when it ticks and which changed tiles a tick decodes."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from mmrec.live.schedule import Ticker, next_due, pick_tiles, tiles_in_budget
from tests.helpers import wait_for


def test_ticks_keep_their_period_and_never_burst_to_catch_up() -> None:
    assert next_due(1.0, 1.05, 0.1) == 1.1
    assert next_due(1.0, 1.35, 0.1) == 1.35 + 0.1  # late: one tick now-ish, not three


def test_the_budget_decodes_what_fits_and_at_least_one_tile() -> None:
    # 10 fps at 75 %: 75 ms a tick, 15 ms of it composing: 60 ms / 5 ms a decode
    assert tiles_in_budget(0.75, 10.0, 15.0, 5.0) == 12
    assert tiles_in_budget(0.75, 10.0, 200.0, 5.0) == 1  # over budget: still one
    assert tiles_in_budget(0.75, 10.0, 0.0, 0.0) == 750  # a decode counts 0.1 ms at least


def test_tiles_within_budget_are_all_decoded() -> None:
    assert pick_tiles([1, 4, 7], 5, 3) == ([1, 4, 7], 0, 3)


def test_tiles_over_budget_are_taken_round_robin() -> None:
    assert pick_tiles([0, 1, 2, 3, 4], 2, 0) == ([0, 1], 3, 2)
    assert pick_tiles([0, 1, 2, 3, 4], 2, 2) == ([2, 3], 3, 4)
    assert pick_tiles([0, 1, 2, 3, 4], 2, 4) == ([0, 4], 3, 1)  # wraps around
    assert pick_tiles([0, 2, 5], 1, 3) == ([5], 2, 6)


@given(
    n_tiles=st.integers(1, 40),
    n=st.integers(1, 10),
    start=st.integers(0, 45),
)
def test_no_changed_tile_waits_longer_than_its_turn(n_tiles: int, n: int, start: int) -> None:
    """With every tile changing every tick, each is decoded within ceil(tiles / n) ticks."""
    waited = [0] * n_tiles
    rr = start
    for _ in range(3 * n_tiles):
        chosen, skipped, rr = pick_tiles(list(range(n_tiles)), n, rr)
        assert len(chosen) == min(n, n_tiles) and skipped == n_tiles - len(chosen)
        for i in range(n_tiles):
            waited[i] = 0 if i in chosen else waited[i] + 1
            assert waited[i] < -(-n_tiles // n)


async def test_a_tick_still_running_when_the_next_is_due_is_skipped() -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    runs = 0

    async def tick() -> None:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()  # a tick that takes longer than the period

    ticker = Ticker(tick, 0.01)
    ticker.start()
    await asyncio.wait_for(started.wait(), 10)
    await wait_for(lambda: ticker.late >= 3, 10, "three ticks due while one runs")
    assert runs == 1  # the running tick was never started again
    release.set()
    await ticker.stop()
