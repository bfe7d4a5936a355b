"""Discovery of camera nodes: mDNS browse, hostname prober, subnet scan, manual hosts.

Data flow: each path produces :class:`Sighting` values (``mdns``, ``discovery``'s
probes, ``scan``), the pure :class:`CameraRegistry` merges them into one camera per
node and derives events, and :class:`Discovery` runs it all on the event loop.
"""

from __future__ import annotations

from mmrec.discover.discovery import Discovery, DiscoveryConfig, EventStream, Survey, survey
from mmrec.discover.model import (
    SERVICE_TYPE,
    CameraAdded,
    CameraAddressChanged,
    CameraInfo,
    CameraLost,
    DiscoveryEvent,
    DiscoveryWarning,
    PathInfo,
    Sighting,
    Source,
)
from mmrec.discover.registry import CameraRegistry
from mmrec.discover.scan import ScanLimits, ScanReport
from mmrec.wire.url import API_PORT

__all__ = [
    "API_PORT",
    "SERVICE_TYPE",
    "CameraAdded",
    "CameraAddressChanged",
    "CameraInfo",
    "CameraLost",
    "CameraRegistry",
    "Discovery",
    "DiscoveryConfig",
    "DiscoveryEvent",
    "DiscoveryWarning",
    "EventStream",
    "PathInfo",
    "ScanLimits",
    "ScanReport",
    "Sighting",
    "Source",
    "Survey",
    "survey",
]
