"""A mesh of simulated nodes on loopback, as one async context manager.

``SimMesh`` places nodes on consecutive loopback addresses at one port (every phone on
8081, as on a real mesh), or on consecutive ports of one address (``port_step``), or on
ephemeral ports (``port=0``). It builds the frame rings in threads, starts every node on
the running loop, advertises them over loopback-only mDNS, and keeps a sent log (JSON
lines, rewritten atomically each second and at exit) of what each connection received.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from mmrec.errors import ConfigError, RecordingError
from mmrec.sim.config import NodeConfig
from mmrec.sim.frames import DEFAULT_CACHE, RingCache, RingKey
from mmrec.sim.mdns import MdnsAdvertiser
from mmrec.sim.node import SimNode


def node_addresses(count: int, base_host: str, port: int, port_step: bool) -> list[tuple[str, int]]:
    """Where each of ``count`` nodes listens; ConfigError if that leaves loopback."""
    try:
        base = ipaddress.IPv4Address(base_host)
    except ValueError as exc:
        raise ConfigError(f"host {base_host!r} is not an IPv4 address") from exc
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} out of range")
    if port == 0 or port_step:
        if port and port + count - 1 > 65535:
            raise ConfigError(f"ports {port}..{port + count - 1} run past 65535")
        out = [(str(base), port + i if port else 0) for i in range(count)]
    else:
        out = []
        for i in range(count):
            try:
                out.append((str(base + i), port))
            except ipaddress.AddressValueError as exc:
                raise ConfigError(f"{count} addresses from {base} run out of IPv4") from exc
    for host, _ in out:
        if not ipaddress.IPv4Address(host).is_loopback:
            raise ConfigError(f"address {host} is not loopback (the simulator stays on 127/8)")
    return out


class SimMesh:
    """Run simulated nodes for the duration of an ``async with`` block.

    >>> async with SimMesh([NodeConfig("cam-a", width=320, height=240)],
    ...                    base_host="127.0.0.1", port=0, mdns=False) as mesh:
    ...     print(mesh.nodes[0].url)
    """

    def __init__(
        self,
        configs: Sequence[NodeConfig],
        *,
        base_host: str = "127.0.0.11",
        port: int = 8081,
        port_step: bool = False,
        mdns: bool = True,
        sent_log: str | os.PathLike[str] | None = None,
        sent_log_interval: float = 1.0,
        sent_history: int = 10_000,
        ring_cache: RingCache | None = None,
        encode_threads: int | None = None,
    ) -> None:
        if not configs:
            raise ConfigError("a mesh needs at least one node")
        names = [c.name for c in configs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"node names must be unique: {', '.join(dupes)}")
        self.configs = tuple(configs)
        self.addresses = node_addresses(len(configs), base_host, port, port_step)
        self.mdns_enabled = mdns
        self.sent_log = Path(sent_log) if sent_log is not None else None
        self.sent_log_interval = sent_log_interval
        self.sent_history = sent_history
        self.ring_cache = ring_cache or DEFAULT_CACHE
        self.encode_threads = encode_threads
        self.nodes: tuple[SimNode, ...] = ()
        self.mdns: MdnsAdvertiser | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.started_ns = 0

    def __getitem__(self, name: str) -> SimNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    async def __aenter__(self) -> SimMesh:
        keys = [
            RingKey(c.width, c.height, c.quality, c.picture_seed, c.ring, c.name)
            for c in self.configs
        ]
        # Rendering and encoding are blocking C work: keep them off the loop.
        rings = await asyncio.to_thread(self.ring_cache.get_many, keys, self.encode_threads)
        self.nodes = tuple(
            SimNode(c, r, host, port, sent_history=self.sent_history)
            for c, r, (host, port) in zip(self.configs, rings, self.addresses, strict=True)
        )
        try:
            for node in self.nodes:
                await node.start()
            if self.mdns_enabled:
                self.mdns = MdnsAdvertiser()
                await self.mdns.start(self.nodes)
        except BaseException:
            await self._shutdown()
            raise
        self.started_ns = time.time_ns()
        if self.sent_log is not None:
            await self.write_sent_log()
            self._flusher = asyncio.create_task(self._flush_loop(), name="mmrec-sim-sentlog")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self.mdns is not None:
            await self.mdns.close()
            self.mdns = None
        await asyncio.gather(*(n.stop() for n in self.nodes))
        if self.sent_log is not None and self.nodes:
            await self.write_sent_log()

    # -- sent log -----------------------------------------------------------------------

    def sent_log_lines(self) -> list[dict[str, object]]:
        """One line per node, then one per /stream connection (open or closed)."""
        lines: list[dict[str, object]] = []
        for node in self.nodes:
            last = node.sent[-1] if node.sent else None
            lines.append(
                {
                    "kind": "node",
                    "node": node.name,
                    "url": node.url,
                    "frames_sent": node.frames_sent,
                    "frames_dropped": node.frames_dropped,
                    "frames_stalled": node.frames_stalled,
                    "frames_late": node.frames_late,
                    "client_skips": node.client_skips,
                    "last_frame": last.frame if last else None,
                    "last_true_ns": last.true_ns if last else None,
                }
            )
        for node in self.nodes:
            lines.extend(c.to_json() for c in node.connections)
        return lines

    async def write_sent_log(self) -> None:
        """Rewrite the sent log atomically (a reader never sees half a file)."""
        if self.sent_log is None:
            return
        text = "".join(
            json.dumps(line, separators=(",", ":")) + "\n" for line in self.sent_log_lines()
        )
        path = self.sent_log
        await asyncio.to_thread(_write_atomic, path, text)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sent_log_interval)
            await self.write_sent_log()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise RecordingError(f"sent log {path}: {exc.strerror or exc}") from exc
