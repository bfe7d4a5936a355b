"""What discovery knows about camera nodes: values, events and the parsing of what nodes say.

Pure: no sockets, no asyncio, no clocks (times are passed in as ``monotonic_ns``
integers). Everything here is built from untrusted input (TXT records, /status JSON),
so every parser returns a usable value plus a list of human-readable problems and
never raises for bad input.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

API_PORT = 8081
"""Every camera node serves its HTTP API on this port unless it says otherwise."""

SERVICE_TYPE = "_mmcam._tcp.local."
"""The Bonjour/mDNS service type camera nodes advertise."""

MAX_TEXT = 64
"""Longest deviceName/model/role kept (characters); longer values are cut and reported."""


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


def http_url(host: str, port: int, path: str) -> str:
    """``http://host:port/path``, with IPv6 literals bracketed (and a scope ``%`` escaped)."""
    if ":" in host:
        host = "[" + host.replace("%", "%25") + "]"
    return f"http://{host}:{port}{path}"


def clean_text(value: str, field: str) -> tuple[str, list[str]]:
    """Make a node-supplied text value printable and bounded; report what was changed."""
    problems: list[str] = []
    kept = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
    if kept != value:
        problems.append(f"{field} has control characters; removed")
    kept = kept.strip()
    if len(kept) > MAX_TEXT:
        problems.append(f"{field} is {len(kept)} characters long; cut to {MAX_TEXT}")
        kept = kept[:MAX_TEXT]
    if any(c in kept for c in "/\\") or kept in {".", ".."} or kept.startswith("."):
        problems.append(f"{field} {kept!r} looks like a path; only its safe form is used on disk")
    return kept, problems


def parse_port(value: object, field: str) -> tuple[int | None, list[str]]:
    """A TCP port from a TXT or JSON value; ``None`` (and a problem) if absent or absurd."""
    if value is None or value == "":
        return None, []
    if isinstance(value, bool):
        return None, [f"{field} {value!r} is not a port number"]
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        port = int(value.strip())
    else:
        return None, [f"{field} {str(value)[:40]!r} is not a port number"]
    if not 1 <= port <= 65535:
        return None, [f"{field} {port} is out of range 1-65535"]
    return port, []


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


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The identifying part of a node's ``GET /status`` answer."""

    name: str
    model: str
    role: str
    api_port: int | None


def parse_status(doc: Any) -> tuple[NodeStatus | None, list[str]]:
    """Decide from a parsed ``/status`` JSON document whether it is a camera node.

    A camera node's status is an object with a non-empty string ``deviceName`` and at
    least two of ``model``, ``role``, ``apiPort``, ``width``, ``height``, ``fps``
    (an open port that answers some other JSON is not a camera). Returns ``None``
    and the reason when it is not.
    """
    if not isinstance(doc, dict):
        return None, ["/status is not a JSON object"]
    raw_name = doc.get("deviceName")
    if not isinstance(raw_name, str):
        return None, ["/status has no string deviceName"]
    others = ("model", "role", "apiPort", "width", "height", "fps")
    if sum(1 for k in others if k in doc) < 2:
        return None, ["/status lacks camera fields (model, role, apiPort, width, height, fps)"]
    problems: list[str] = []
    name, p = clean_text(raw_name, "deviceName")
    problems += p
    if not name:
        return None, ["/status deviceName is empty"]

    def text(key: str) -> str:
        value = doc.get(key)
        if not isinstance(value, str):
            if value is not None:
                problems.append(f"/status {key} is not a string")
            return ""
        kept, p = clean_text(value, key)
        problems.extend(p)
        return kept

    model, role = text("model"), text("role")
    port, p = parse_port(doc.get("apiPort"), "/status apiPort")
    problems += p
    return NodeStatus(name, model, role, port), problems


def parse_host(text: str, default_port: int = API_PORT) -> tuple[str, int]:
    """``"100.64.0.7"``, ``"phone.local:8081"``, ``"[fd00::5]:8081"``, ``"::1"`` -> (host, port).

    Raises :class:`ValueError` with a readable message for anything else.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty host")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad host {text!r}: expected [IPv6]:PORT")
        port_text = rest[1:] if rest else ""
    elif text.count(":") > 1:
        host, port_text = text, ""  # bare IPv6 literal
    else:
        host, _, port_text = text.partition(":")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        if not host or any(c in host for c in "/ ?#@") or len(host) > 253:
            raise ValueError(f"bad host {text!r}") from None
    if not port_text:
        return host, default_port
    port, problems = parse_port(port_text, "port")
    if port is None:
        raise ValueError(f"bad host {text!r}: {problems[0] if problems else 'no port'}")
    return host, port


def normalize_hostname(name: str) -> str:
    """``"iphone-16-plus"`` or ``"iphone-16-plus.local"`` -> ``"iphone-16-plus.local."``."""
    name = name.strip().rstrip(".")
    if not name or any(c in name for c in "/ :?#@"):
        raise ValueError(f"bad hostname {name!r}")
    if not name.lower().endswith(".local"):
        name += ".local"
    return name + "."
