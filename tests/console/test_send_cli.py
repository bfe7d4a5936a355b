"""`mmrec send`: one request to every node given, each node's answer, exit status."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

from mmrec.sim import NodeConfig
from tests.helpers import loopback_mesh


async def _send(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmrec", "send", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_send_to_every_node_and_say_who_failed() -> None:
    cfgs = [NodeConfig(n, width=160, height=120, ring=2, fps=5) for n in ("s1", "s2")]
    async with loopback_mesh(cfgs) as mesh:
        urls = [f"{n.name}={n.url}" for n in mesh.nodes]
        rc, out, err = await _send(*urls, "--body", '{"action": "ping"}', "--json")
        assert rc == 0, err
        answers = json.loads(out)
        assert [a["node"] for a in answers] == ["s1", "s2"]
        assert all(a["ok"] and json.loads(a["body"])["command"] == {"action": "ping"}
                   for a in answers)  # fmt: skip
        assert [list(n.commands) for n in mesh.nodes] == [[{"action": "ping"}]] * 2
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))  # nothing listens: refused
        gone = f"gone=http://127.0.0.1:{dead.getsockname()[1]}/stream"
        rc, out, _ = await _send(urls[0], gone, "--method", "GET", "--path", "/status")
        dead.close()
        assert rc == 1  # one node did not answer
        assert "s1" in out and "200" in out and "gone" in out and "failed" in out
    rc, _, err = await _send("127.0.0.1:9", "--method", "GET", "--body", "{}")
    assert rc == 2 and "a GET has no body" in err
