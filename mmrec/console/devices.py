"""The device map: every node, its role and model, its addresses (LAN, Tailscale) and the
one in use, and the discovery paths that found it.

Built from what discovery knows (:class:`~mmrec.discover.CameraInfo` and its
:class:`~mmrec.discover.PathInfo` list) and from cameras given by hand (their URL and
fallbacks). Names and models are the nodes' own words, cleaned by discovery; the page
shows them as text.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mmrec.config import CameraSpec
from mmrec.discover import CameraInfo, PathInfo
from mmrec.errors import MmrecError
from mmrec.ingest.stream import CameraState, StreamTarget

if TYPE_CHECKING:
    from mmrec.discover import Discovery
    from mmrec.session.camera import CameraFeed

_TAILSCALE: Final = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fd7a:115c:a1e0::/48"),
)


def address_kind(address: str) -> str:
    """``tailscale`` (100.64/10, fd7a:115c:a1e0::/48), ``loopback``, ``lan`` or ``name``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return "name"
    if any(ip in net for net in _TAILSCALE):
        return "tailscale"
    return "loopback" if ip.is_loopback else "lan"


@dataclass(frozen=True, slots=True)
class AddressView:
    address: str
    port: int
    kind: str  # lan | tailscale | loopback | name
    found_by: tuple[str, ...]  # discovery paths (mdns, hostname, scan, manual) or "given"
    answering: bool
    in_use: bool


@dataclass(frozen=True, slots=True)
class DeviceView:
    camera: str  # the camera's name in the session (its folder in a take)
    name: str  # what the node calls itself
    model: str
    role: str
    in_use: str  # host:port the stream comes from now
    found_by: tuple[str, ...]
    addresses: tuple[AddressView, ...]


def discovered_device(
    info: CameraInfo, paths: Sequence[PathInfo], in_use: tuple[str, int]
) -> DeviceView:
    """A camera discovery found: one address row per (address, port), with every path
    that reported it."""
    rows: dict[tuple[str, int], tuple[list[str], bool]] = {}
    for p in paths:
        for a in p.addresses:
            found, answering = rows.setdefault((a, p.port), ([], False))
            found.append(str(p.source))
            rows[(a, p.port)] = (found, answering or p.answering)
    addresses = tuple(
        AddressView(a, port, address_kind(a), tuple(dict.fromkeys(found)), answering,
                    (a, port) == in_use)
        for (a, port), (found, answering) in rows.items()
    )  # fmt: skip
    return DeviceView(
        info.id,
        info.name,
        info.model,
        info.role,
        f"{in_use[0]}:{in_use[1]}",
        tuple(sorted(str(s) for s in info.found_by)),
        addresses,
    )


def given_device(
    camera: str,
    model: str | None,
    role: str | None,
    targets: Sequence[tuple[str, int]],
    in_use: tuple[str, int],
    streaming: bool,
    node_name: str = "",
) -> DeviceView:
    """A camera given by hand (command line, config): its URL and fallbacks."""
    addresses = tuple(
        AddressView(h, p, address_kind(h), ("given",), streaming and (h, p) == in_use,
                    (h, p) == in_use)
        for h, p in dict.fromkeys(targets)
    )  # fmt: skip
    return DeviceView(
        camera,
        node_name or camera,
        model or "",
        role or "",
        f"{in_use[0]}:{in_use[1]}",
        ("given",),
        addresses,
    )


def device_map(
    feeds: Mapping[str, CameraFeed],
    discovery: Discovery | None,
    given: Mapping[str, CameraSpec],
) -> tuple[DeviceView, ...]:
    """Every camera of the session: as discovery knows it, else as it was given."""
    out = []
    found = {c.id: c for c in discovery.cameras()} if discovery is not None else {}
    for name, feed in feeds.items():
        t = feed.target
        in_use = (t.host, t.port)
        info = found.get(name)
        if info is not None and discovery is not None:
            out.append(discovered_device(info, discovery.paths(name), in_use))
            continue
        targets = [in_use]
        spec = given.get(name)
        for url in (spec.url, *spec.fallbacks) if spec is not None else ():
            with contextlib.suppress(MmrecError):
                st = StreamTarget.from_url(name, url)
                targets.append((st.host, st.port))
        status = feed.status
        out.append(
            given_device(
                name,
                feed.model or (status.model if status else None),
                feed.role or (status.role if status else None),
                targets,
                in_use,
                feed.stats().state == CameraState.STREAMING,
                status.name if status else "",
            )
        )
    return tuple(out)
