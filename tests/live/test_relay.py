"""The click-through relay: a camera's JPEGs to each watcher as they arrive; a slow
watcher skips frames (one frame held at most), the others get every one."""

from __future__ import annotations

import asyncio

from mmrec.live.relay import FrameRelay
from tests.helpers import next_pass, wait_for


async def test_fast_watcher_gets_every_frame_and_slow_one_skips() -> None:
    relay = FrameRelay()
    fast: list[bytes] = []
    slow: list[bytes] = []
    slow_go = asyncio.Event()

    async def read_fast() -> None:
        async for f in relay.watch("A"):
            fast.append(bytes(f))

    async def read_slow() -> None:
        async for f in relay.watch("A"):
            slow.append(bytes(f))
            await slow_go.wait()  # a browser that does not read

    tasks = [asyncio.create_task(read_fast()), asyncio.create_task(read_slow())]
    await wait_for(lambda: relay.watchers("A") >= 2, what="both watchers")
    for i in range(100):
        relay.offer("A", b"frame%d" % i)
        relay.offer("B", b"other")  # nobody watches B: nothing happens
        await next_pass()  # the fast reader runs between frames
    slow_go.set()
    await next_pass()
    relay.close()
    await asyncio.gather(*tasks)
    assert fast == [b"frame%d" % i for i in range(100)]
    assert slow[0] == b"frame0" and slow[-1] == b"frame99" and len(slow) == 2  # the newest
    assert relay.watchers() == 0
