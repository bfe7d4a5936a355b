"""Hostile and broken cameras: what the recorder does, what is on disk, what it says.

Each test injects one fault with a server of :mod:`mmrec.sim.hostile` (or a simulated
node with a fault knob) on loopback, records it, and checks the files, the manifest and
the live state. Memory figures over minutes are measured by ``benchmarks/bench_hostile.py``;
here, what bounds them: a dead connection's buffers are freed at once.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import pytest

from mmrec.ingest.stream import IngestConfig
from mmrec.session.recorder import Take
from mmrec.sim.hostile import Hostile, HostileServer
from mmrec.store.take import load_manifest
from mmrec.wire.multipart import MultipartParser
from tests.helpers import make_jpeg, wait_for


@pytest.mark.parametrize("kind", [Hostile.ENDLESS, Hostile.ENDLESS_LENGTH])
async def test_an_endless_part_costs_one_buffer_and_a_reconnect(
    tmp_path: Path, fast_ingest: IngestConfig, kind: Hostile
) -> None:
    """A part that never ends (with or without Content-Length) hits the part cap and the
    camera reconnects, naming the cause; the dead connection's parser and buffers are
    gone at once, not when the cyclic garbage collector gets round to them."""
    cap = 2**20
    cfg = replace(fast_ingest, max_part_size=cap)
    gc.collect()
    gc.disable()  # what is freed now is freed by reference counting alone
    try:
        async with (
            HostileServer(kind, make_jpeg(320, 240), part_cap=cap) as server,
            Take(tmp_path, ingest_config=cfg, probe_clocks=False) as take,
        ):
            take.add_camera("h", server.url)
            await wait_for(lambda: take.status()[0].ingest.reconnects >= 3, 30, "reconnects")
            parsers = sum(isinstance(o, MultipartParser) for o in gc.get_objects())
            live = take.status()[0].ingest
    finally:
        gc.enable()
    assert parsers <= 1  # the connection now, if one is up; none of the dead ones
    assert live.last_error is not None and "larger than max_part_size" in live.last_error
    cam = load_manifest(take.dir).cameras[0]
    assert cam.reconnects >= 3 and "larger than max_part_size" in (cam.last_error or "")
    if kind is Hostile.ENDLESS:
        assert cam.frames == 0
    else:  # three good frames first on every connection, each recorded
        assert cam.frames >= 3 * cam.reconnects
