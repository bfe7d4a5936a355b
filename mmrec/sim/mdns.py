"""mDNS advertisement of simulated nodes as ``_mmcam._tcp.local.``, on loopback only.

Zeroconf is bound to ``127.0.0.1`` and nothing else: no multicast may leave through a
real interface. Each node gets one service named after it with TXT records
``deviceName``, ``model``, ``role``, ``apiPort`` (and ``path``). A name already taken by
another advertiser on this machine gets a suffix (zeroconf's name change); the TXT
``deviceName`` stays the node's name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from typing import Final

from zeroconf import Zeroconf
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from mmrec.errors import ConfigError, DiscoveryError
from mmrec.sim.node import SimNode

SERVICE_TYPE: Final = "_mmcam._tcp.local."
LOOPBACK_INTERFACES: Final = ("127.0.0.1",)


def service_info(node: SimNode) -> AsyncServiceInfo:
    """The service record advertising ``node``."""
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"{node.name}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(node.host)],
        port=node.port,
        properties={
            "deviceName": node.config.label,
            "model": node.config.model,
            "role": node.config.role,
            "apiPort": str(node.port),
            "path": "/stream",
        },
        server=f"{node.name}.local.",
    )


class MdnsAdvertiser:
    """Registers nodes on a loopback-only AsyncZeroconf and unregisters them on close."""

    def __init__(self, interfaces: Sequence[str] = LOOPBACK_INTERFACES) -> None:
        for addr in interfaces:
            if not ipaddress.ip_address(addr).is_loopback:
                raise ConfigError(f"mDNS interface {addr} is not loopback")
        self._interfaces = list(interfaces)
        self._zc: AsyncZeroconf | None = None
        self.infos: list[AsyncServiceInfo] = []

    async def start(self, nodes: Sequence[SimNode]) -> None:
        try:
            self._zc = AsyncZeroconf(interfaces=self._interfaces)
        except OSError as exc:
            raise DiscoveryError(f"mDNS on {self._interfaces}: {exc}") from exc
        self.infos = [service_info(n) for n in nodes]
        zc = self._zc

        async def register(info: AsyncServiceInfo) -> None:
            # The first await probes for the name; the task it returns announces.
            announce = await zc.async_register_service(info, allow_name_change=True)
            await announce

        # Probing takes about a second per service; do them all at once.
        await asyncio.gather(*(register(i) for i in self.infos))

    @property
    def zeroconf(self) -> Zeroconf | None:
        return self._zc.zeroconf if self._zc is not None else None

    async def close(self) -> None:
        zc, self._zc = self._zc, None
        if zc is None:
            return
        await zc.async_unregister_all_services()
        await zc.async_close()
