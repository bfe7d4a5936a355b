"""A session for a whole shoot: the live preview runs throughout and writes one
preview.mkv per take; the nodes' own events land in the log and in the take's manifest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import aiohttp

from mmrec.ingest.stream import IngestConfig
from mmrec.session.engine import PreviewOptions, Session
from mmrec.session.events import EventKind
from mmrec.sim import NodeConfig
from tests.helpers import loopback_mesh, wait_for


def _duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


async def test_one_preview_file_per_take_and_node_events_in_the_manifest(
    tmp_path: Path, fast_ingest: IngestConfig
) -> None:
    nodes = [NodeConfig(n, width=160, height=120, ring=2, fps=15) for n in ("p1", "p2")]
    async with (
        loopback_mesh(nodes) as mesh,
        Session(ingest_config=fast_ingest, node_events=True) as session,
    ):
        for node in mesh.nodes:
            session.add_camera(node.name, node.url)
        preview = await session.start_preview(None, PreviewOptions(port=None, size=(320, 180)))
        assert preview is not None and preview.port is None
        await preview.wait_tick()
        feeds = list(session.feeds.values())
        await wait_for(lambda: all(f.node is not None and f.node.stats().connected for f in feeds))
        takes = []
        for name in ("a", "b"):
            rec = await session.start_take(tmp_path, name=name)
            await wait_for(lambda r=rec: all(s.writer.frames >= 15 for s in r.status()), 10)
            if name == "b":  # a command reaches a node: it reports it on /events
                async with aiohttp.ClientSession() as http:
                    url = mesh.nodes[0].base_url + "/command"
                    async with http.post(url, json={"slate": "b"}) as r:
                        assert r.status == 200
                await wait_for(lambda: len(feeds[0].node_events) >= 1, 5, "node event")
            takes.append((rec.dir, await session.stop_take()))
        between = preview.stats().ticks
        await preview.wait_tick()
        assert preview.stats().ticks > between  # the mosaic goes on between takes
    for take_dir, m in takes:
        assert m.preview is not None and m.preview.file == "preview.mkv"
        length = _duration(take_dir / "preview.mkv")
        assert 0.5 < length < (m.duration_ns or 0) / 1e9 + 0.5, (take_dir, length)
    node_events = [e for e in takes[1][1].events if e.kind == EventKind.NODE]
    assert [e.camera for e in node_events] == ["p1"]
    assert node_events[0].detail.startswith("command: ") and '"slate":"b"' in node_events[0].detail
    assert not [e for e in takes[0][1].events if e.kind == EventKind.NODE]
