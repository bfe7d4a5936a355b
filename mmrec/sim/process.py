"""Run the simulator in a child process (``mmrec sim --json``) from async code.

A recorder that rehearses with simulated phones should not serve them from its own event
loop: frame pacing and recording would share one core. ``start_sim_process`` starts
``python -m mmrec sim`` on ephemeral loopback ports without mDNS, reads the node list it
prints as JSON, and stops it (SIGINT, then kill) when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence

from mmrec.errors import ConfigError, MmrecError


def parse_size(size: str | tuple[int, int]) -> tuple[int, int]:
    """``"1920x1080"`` (or a (w, h) tuple) as (width, height); ConfigError if malformed."""
    if isinstance(size, tuple):
        return size
    w, sep, h = size.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise ConfigError(f"size {size!r}: use WIDTHxHEIGHT, e.g. 1920x1080")
    return int(w), int(h)


@contextlib.asynccontextmanager
async def start_sim_process(
    nodes: int,
    *,
    size: str | tuple[int, int] = "1920x1080",
    fps: float = 30.0,
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
    ready_timeout: float = 60.0,
) -> AsyncIterator[list[tuple[str, str]]]:
    """Start ``nodes`` simulated nodes in a child process; yield their (name, stream URL)."""
    width, height = parse_size(size)
    cmd = [
        sys.executable, "-m", "mmrec", "sim",
        "--nodes", str(nodes), "--width", str(width), "--height", str(height),
        "--fps", f"{fps:g}", "--bind", host, "--port", "0", "--no-mdns", "--json",
        *extra_args,
    ]  # fmt: skip
    # stderr goes to a file, not a pipe nobody drains (a full pipe would stall the nodes)
    errlog = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=errlog)
    try:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), ready_timeout)
        except TimeoutError:
            raise MmrecError(f"simulator did not start within {ready_timeout:g} s") from None
        if not line:
            await proc.wait()
            errlog.seek(0)
            err = errlog.read()
            raise MmrecError(
                "simulator exited: " + (err.decode(errors="replace").strip() or "no output")
            )
        info = json.loads(line)
        yield [(n["name"], n["url"]) for n in info["nodes"]]
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        errlog.close()
