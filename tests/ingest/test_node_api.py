"""A node's own API beyond the stream: its /events followed across restarts, and commands
fanned out to many nodes at once within a deadline (simulated nodes on loopback)."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from mmrec.errors import ConfigError
from mmrec.ingest.command import Command, CommandTarget, fan_out
from mmrec.ingest.events import EventsConfig, NodeEvents
from mmrec.sim import NodeConfig
from mmrec.wire.sse import ServerEvent
from tests.helpers import Arrivals, hold, loopback_mesh, wait_for

FAST = EventsConfig(connect_timeout=1.0, read_timeout=2.0, backoff_initial=0.05, backoff_max=0.2)


def _cfg(name: str) -> NodeConfig:
    return NodeConfig(name, width=160, height=120, ring=2, fps=10)


async def test_events_are_followed_and_resumed_after_the_node_restarts() -> None:
    async with loopback_mesh([_cfg("ev")]) as mesh:
        node = mesh.nodes[0]
        got: Arrivals[ServerEvent] = Arrivals()
        follower = NodeEvents("ev", lambda: (node.host, node.port), got.append, FAST)
        task = asyncio.create_task(follower.run())
        try:
            await got.wait(1)
            assert got[0].event == "heartbeat"
            assert json.loads(got[0].data)["deviceName"] == "ev"
            node.stall()
            await got.wait(2)
            assert any(e.event == "state" and '"stalled":true' in e.data for e in got)
            await node.stop()
            n = len(got)
            await node.start()
            await got.wait(n + 1)  # back, by itself
            assert follower.stats().connects >= 2
        finally:
            follower.stop()
            await asyncio.wait_for(task, 5)


async def test_a_node_without_events_is_reported_and_not_hammered() -> None:
    # an MJPEG-only camera: /events is its stream (or a 404): not an event stream
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.setblocking(False)
    port = srv.getsockname()[1]
    accepted = 0

    async def serve() -> None:
        nonlocal accepted
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(srv)
            accepted += 1
            await loop.sock_recv(conn, 4096)
            await loop.sock_sendall(conn, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            conn.close()

    server = asyncio.create_task(serve())
    follower = NodeEvents("old", lambda: ("127.0.0.1", port), lambda _e: None, FAST)
    task = asyncio.create_task(follower.run())
    try:
        # a poll: no event to wait on in a foreign server
        await wait_for(lambda: follower.last_error is not None, 5, "the follower's error")
        assert follower.last_error == "/events answered HTTP 404"
        await hold(0.5)  # a window in which a hammering client would retry often
        assert accepted == 1  # asked again only after a long wait
    finally:
        follower.stop()
        await asyncio.wait_for(task, 5)
        server.cancel()
        srv.close()


async def test_fan_out_answers_from_every_node_and_failures_within_the_deadline() -> None:
    async with loopback_mesh([_cfg("f1"), _cfg("f2")]) as mesh:
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))  # bound, not listening: refused
        targets = [CommandTarget(n.name, n.host, n.port) for n in mesh.nodes]
        targets.append(CommandTarget("gone", "127.0.0.1", dead.getsockname()[1]))
        # a node that accepts and never answers: the deadline ends its wait
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        targets.append(CommandTarget("silent", "127.0.0.1", silent.getsockname()[1]))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        answers = await fan_out(
            targets, Command("POST", "/command", b'{"do":"mark"}'), deadline_s=1.0
        )
        took = loop.time() - t0
        dead.close()
        silent.close()
    assert [a.node for a in answers] == ["f1", "f2", "gone", "silent"]
    for a in answers[:2]:
        assert a.ok and a.status == 200
        assert json.loads(a.body)["command"] == {"do": "mark"}
    assert answers[2].status is None and answers[2].error is not None
    assert answers[3].status is None and "timed out" in (answers[3].error or "")
    assert took < 3.0  # one deadline for all, not one per node
    assert [list(n.commands) for n in mesh.nodes] == [[{"do": "mark"}], [{"do": "mark"}]]


@pytest.mark.parametrize(
    ("method", "path", "body", "match"),
    [
        ("TRACE", "/x", b"", "method"),
        ("POST", "x", b"", "path"),
        ("POST", "/a b", b"", "path"),
        ("POST", "/a\r\nX: 1", b"", "path"),
        ("GET", "/x", b"{}", "GET has no body"),
    ],
)
def test_bad_commands_are_refused_before_anything_is_sent(
    method: str, path: str, body: bytes, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        Command(method, path, body)
