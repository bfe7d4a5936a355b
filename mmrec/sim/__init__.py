"""The camera-node simulator: MJPEG phones on loopback for tests, benchmarks, rehearsals.

``SimMesh`` (an async context manager) runs ``SimNode`` servers configured by frozen
``NodeConfig`` values; ``Quirk`` names the wire deviations real servers show.
"""

from __future__ import annotations

from mmrec.sim.config import NodeConfig, Quirk, parse_quirks
from mmrec.sim.frames import DEFAULT_CACHE, FrameRing, RingCache, RingKey, auto_ring_length
from mmrec.sim.mdns import SERVICE_TYPE, MdnsAdvertiser
from mmrec.sim.mesh import SimMesh, node_addresses
from mmrec.sim.node import ConnectionStats, SentFrame, SimNode
from mmrec.sim.timing import DeviceClock, FrameSchedule
from mmrec.sim.wire import BOUNDARY, StreamWire, format_timestamp

__all__ = [
    "BOUNDARY",
    "DEFAULT_CACHE",
    "SERVICE_TYPE",
    "ConnectionStats",
    "DeviceClock",
    "FrameRing",
    "FrameSchedule",
    "MdnsAdvertiser",
    "NodeConfig",
    "Quirk",
    "RingCache",
    "RingKey",
    "SentFrame",
    "SimMesh",
    "SimNode",
    "StreamWire",
    "auto_ring_length",
    "format_timestamp",
    "node_addresses",
    "parse_quirks",
]
