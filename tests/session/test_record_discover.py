"""Recording what discovery finds: late joiners, and nodes that leave and come back.

mDNS runs on loopback only (zeroconf bound to 127.0.0.1). Other nodes may be advertised
on loopback by other tests at the same time: node names are random and assertions are
about ours only.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

from mmrec.discover import Discovery, DiscoveryConfig
from mmrec.ingest.stream import IngestConfig
from mmrec.session.follow import follow_discovery
from mmrec.session.recorder import Take
from mmrec.sim import NodeConfig
from mmrec.store.index import read_index
from mmrec.store.take import load_manifest
from tests.helpers import loopback_mesh, wait_for


def _cfg(name: str) -> NodeConfig:
    return NodeConfig(name, width=160, height=120, ring=4, fps=20)


async def test_discovered_nodes_are_recorded_including_late_joiners(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    tag = uuid.uuid4().hex[:6]
    first = [f"d{tag}-a", f"d{tag}-b"]
    late = f"d{tag}-late"
    disc_cfg = DiscoveryConfig(interfaces=("127.0.0.1",), recheck_s=0.5)
    async with (
        loopback_mesh([_cfg(n) for n in first], mdns=True) as mesh,
        Take(tmp_path, ingest_config=fast_ingest) as take,
        Discovery(disc_cfg) as disc,
    ):
        follower = asyncio.create_task(follow_discovery(take.session, disc.events()))
        try:

            def frames(name: str) -> int:
                return next((s.writer.frames for s in take.status() if s.name.startswith(name)), 0)

            await wait_for(lambda: all(frames(n) >= 10 for n in first), 15, "first nodes")
            # a node that joins mid-take is recorded from then on
            async with loopback_mesh([_cfg(late)], mdns=True) as late_mesh:
                await wait_for(lambda: frames(late) >= 10, 15, "late joiner")
                late_first_sent = late_mesh.nodes[0].connections[0].first_frame
            # a node that leaves and comes back is the same camera, same folder
            node = mesh.nodes[0]
            await node.stop()
            await wait_for(
                lambda: (
                    next(s for s in take.status() if s.name.startswith(first[0])).ingest.state
                    != "streaming"
                ),
                10,
                "node gone",
            )
            before = frames(first[0])
            await node.start()
            await wait_for(lambda: frames(first[0]) >= before + 10, 20, "node back")
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
    m = load_manifest(take.dir)
    ours = {c.name: c for c in m.cameras if c.name.startswith(f"d{tag}")}
    assert sorted(ours) == sorted([*first, late])
    back = ours[first[0]]
    assert back.dir == first[0] and back.segments == (f"{first[0]}/seg-0000.mkv",)
    assert back.reconnects >= 1 and len(back.gaps) >= 1
    assert back.model == "mmcam-sim" and back.role == "camera"
    rows = list(read_index(take.dir / ours[late].index))
    assert rows and rows[0].time_ns > 0  # it starts where it joined, not at 0
    assert late_first_sent is not None
