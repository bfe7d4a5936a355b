"""Simulated nodes advertise _mmcam._tcp on loopback with the TXT records a phone has.

Other test runs on this machine advertise the same type: we use random names and only
look at ours.
"""

from __future__ import annotations

import asyncio
import secrets

from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from mmrec.sim import SERVICE_TYPE, NodeConfig, SimMesh


async def test_txt_records_via_loopback_browse() -> None:
    tag = secrets.token_hex(4)
    configs = [
        NodeConfig(f"mdns-{tag}-a", width=96, height=64, ring=2, model="pixel-sim"),
        NodeConfig(f"mdns-{tag}-b", width=96, height=64, ring=2, role="wide"),
    ]
    ours = {c.name for c in configs}
    found: dict[str, str] = {}
    seen = asyncio.Event()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        instance = name.removesuffix("." + SERVICE_TYPE)
        if state_change is ServiceStateChange.Added and instance in ours:
            found[instance] = name
            if len(found) == len(ours):
                seen.set()

    async with SimMesh(configs, base_host="127.0.0.1", port=0, mdns=True) as mesh:
        browser_zc = AsyncZeroconf(interfaces=["127.0.0.1"])
        browser = AsyncServiceBrowser(browser_zc.zeroconf, SERVICE_TYPE, handlers=[on_change])
        try:
            await asyncio.wait_for(seen.wait(), 10)
            for node in mesh.nodes:
                info = AsyncServiceInfo(SERVICE_TYPE, found[node.name])
                assert await info.async_request(browser_zc.zeroconf, 3000)
                txt = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
                assert txt["deviceName"] == node.name
                assert txt["model"] == node.config.model
                assert txt["role"] == node.config.role
                assert txt["apiPort"] == str(node.port)
                assert info.port == node.port
                assert info.parsed_addresses() == [node.host]
        finally:
            await browser.async_cancel()
            await browser_zc.async_close()
