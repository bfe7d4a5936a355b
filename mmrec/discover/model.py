"""What discovery knows about camera nodes: values, events and the parsing of what nodes say.

Pure: no sockets, no asyncio, no clocks (times are passed in as ``monotonic_ns``
integers). Everything here is built from untrusted input (TXT records; ``/status`` bodies
are read by :mod:`mmrec.wire.status`), so every parser returns a usable value plus a list
of human-readable problems and never raises for bad input.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from mmrec.wire.status import clean_text
from mmrec.wire.url import API_PORT, http_url, parse_port

SERVICE_TYPE = "_mmcam._tcp.local."
"""The Bonjour/mDNS service type camera nodes advertise."""


class Source(StrEnum):
    """A path by which a camera was found, in order of preference for the address in use."""

    MDNS = "mdns"
    HOSTNAME = "hostname"
    SCAN = "scan"
    MANUAL = "manual"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Source.MDNS: 0, Source.HOSTNAME: 1, Source.SCAN: 2, Source.MANUAL: 3}


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """One camera node as discovery sees it right now.

    ``id`` is stable for the life of a :class:`~mmrec.discover.Discovery` (it comes from
    the node's deviceName, never from its address) and is a safe single path
    component (:func:`mmrec.store.names.safe_name`). ``host``/``port`` are the address in use:
    the most preferred path that answers (mDNS on the LAN first, manual/Tailscale last).
    """

    id: str
    name: str
    model: str
    role: str
    host: str
    port: int
    found_by: frozenset[Source]
    answering: bool
    last_seen_ns: int

    @property
    def stream_url(self) -> str:
        return http_url(self.host, self.port, "/stream")

    @property
    def status_url(self) -> str:
        return http_url(self.host, self.port, "/status")

    @property
    def events_url(self) -> str:
        return http_url(self.host, self.port, "/events")


@dataclass(frozen=True, slots=True)
class PathInfo:
    """One path by which a camera is known (the console's device map): where it found
    the node, the node's addresses on it (preferred first), and whether it answers."""

    source: Source
    key: str
    addresses: tuple[str, ...]
    port: int
    answering: bool
    last_seen_ns: int


@dataclass(frozen=True, slots=True)
class CameraAdded:
    """A camera became available (first time, or again after :class:`CameraLost`)."""

    camera: CameraInfo


@dataclass(frozen=True, slots=True)
class CameraAddressChanged:
    """The address in use changed (new LAN address, or fallback to/from another path)."""

    camera: CameraInfo
    old_host: str
    old_port: int


@dataclass(frozen=True, slots=True)
class CameraLost:
    """No path to the camera answers any more. ``camera`` is its last known state."""

    camera: CameraInfo


@dataclass(frozen=True, slots=True)
class DiscoveryWarning:
    """Something a node (or a configured host) said or did that discovery had to work around.

    ``subject`` names where it came from (mDNS instance name, host:port, hostname).
    """

    source: Source
    subject: str
    message: str
    at_ns: int

    def __str__(self) -> str:
        return f"{self.source} {self.subject}: {self.message}"


DiscoveryEvent = CameraAdded | CameraAddressChanged | CameraLost | DiscoveryWarning


@dataclass(frozen=True, slots=True)
class Sighting:
    """One path's current view of one node: the input of the merged view.

    ``key`` identifies the path within its source (mDNS instance name, hostname, or
    ``host:port``); ``addresses`` are all the node's addresses on that path, the first
    being the preferred one.
    """

    source: Source
    key: str
    name: str
    model: str
    role: str
    addresses: tuple[str, ...]
    port: int
    hostname: str = ""

    @property
    def host(self) -> str:
        return self.addresses[0]


def _decode_txt(raw: bytes | None, field: str) -> tuple[str | None, list[str]]:
    if raw is None:
        return None, []
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), [f"TXT {field} is not valid UTF-8"]


def instance_label(service_name: str, service_type: str = SERVICE_TYPE) -> str:
    """``"Cam A._mmcam._tcp.local."`` -> ``"Cam A"``."""
    suffix = "." + service_type
    if service_name.lower().endswith(suffix.lower()):
        return service_name[: -len(suffix)]
    return service_name.rstrip(".")


def sighting_from_mdns(
    service_name: str,
    addresses: list[str],
    srv_port: int | None,
    properties: Mapping[bytes, bytes | None],
    server: str | None,
    *,
    default_port: int = API_PORT,
) -> tuple[Sighting | None, list[str]]:
    """Turn a resolved ``_mmcam._tcp`` service into a :class:`Sighting`.

    The API port is TXT ``apiPort``, else the SRV port, else ``default_port``. A missing
    or unusable deviceName falls back to the instance label. Returns ``None`` only
    when the service has no address at all.
    """
    problems: list[str] = []
    txt: dict[str, str | None] = {}
    for key in ("deviceName", "model", "role", "apiPort"):
        raw = properties.get(key.encode())
        value, p = _decode_txt(raw, key)
        txt[key] = value
        problems += p

    def text(key: str, fallback: str) -> str:
        value = txt[key]
        if value is None:
            problems.append(f"TXT {key} missing")
            return fallback
        kept, p = clean_text(value, f"TXT {key}")
        problems.extend(p)
        if not kept:
            problems.append(f"TXT {key} is empty")
            return fallback
        return kept

    label, _ = clean_text(instance_label(service_name), "instance name")
    name = text("deviceName", label)
    model = text("model", "")
    role = text("role", "")

    port, p = parse_port(txt["apiPort"], "TXT apiPort")
    problems += p
    if port is None:
        srv, p = parse_port(srv_port, "SRV port")
        problems += p
        port = srv if srv is not None else default_port
        if txt["apiPort"] is None:
            problems.append(f"TXT apiPort missing; using port {port}")
        else:
            problems.append(f"using port {port} instead")
    if not addresses:
        problems.append("no address resolved")
        return None, problems
    hostname = (server or "").rstrip(".")
    return (
        Sighting(
            Source.MDNS, service_name, name, model, role, order_addresses(addresses), port, hostname
        ),
        problems,
    )


def order_addresses(addresses: list[str]) -> tuple[str, ...]:
    """IPv4 first, then global IPv6, then link-local IPv6; duplicates dropped, order kept."""

    def rank(a: str) -> int:
        try:
            ip = ipaddress.ip_address(a.split("%", 1)[0])
        except ValueError:
            return 3
        if ip.version == 4:
            return 0
        return 2 if ip.is_link_local else 1

    unique = list(dict.fromkeys(addresses))
    return tuple(sorted(unique, key=rank))


def normalize_hostname(name: str) -> str:
    """``"iphone-16-plus"`` or ``"iphone-16-plus.local"`` -> ``"iphone-16-plus.local."``."""
    name = name.strip().rstrip(".")
    if not name or any(c in name for c in "/ :?#@"):
        raise ValueError(f"bad hostname {name!r}")
    if not name.lower().endswith(".local"):
        name += ".local"
    return name + "."
