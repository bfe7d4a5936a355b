"""Hosts, ports and ``http://`` URLs of camera nodes: parsed from what people type, formatted
for URLs and for the ``Host`` header. Pure; every parser raises :class:`ValueError` with a
readable message and nothing else.

IPv6 literals are bracketed everywhere a host meets a port. A link-local address carries
its zone (``fe80::1%eth0``): the resolver wants it plain, a URL wants the ``%`` escaped
(``http://[fe80::1%25eth0]:8081/``, RFC 6874 §2), and the ``Host`` header must not carry
it at all (RFC 6874 §4: the zone only means something on the sending host).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "API_PORT",
    "StreamUrl",
    "host_header",
    "http_url",
    "parse_host",
    "parse_port",
    "parse_stream_url",
    "short_name",
    "url_host",
]

API_PORT: Final = 8081
"""Every camera node serves its HTTP API (``/stream``, ``/status``) on this port unless it
says otherwise."""

STREAM_PATH: Final = "/stream"


def url_host(host: str) -> str:
    """``host`` as it goes into a URL: IPv6 bracketed, a zone's ``%`` escaped as ``%25``."""
    if ":" not in host:
        return host
    return "[" + host.replace("%", "%25") + "]"


def host_header(host: str, port: int) -> str:
    """The ``Host`` header value: IPv6 bracketed without its zone; port omitted when 80."""
    if ":" in host:
        host = "[" + host.partition("%")[0] + "]"
    return host if port == 80 else f"{host}:{port}"


def http_url(host: str, port: int, path: str) -> str:
    """``http://host:port/path``, the host as :func:`url_host` writes it."""
    return f"http://{url_host(host)}:{port}{path}"


def parse_port(value: object, field: str) -> tuple[int | None, list[str]]:
    """A TCP port from a TXT, JSON or typed value; ``None`` (and a problem) if absent or absurd."""
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


@dataclass(frozen=True, slots=True)
class StreamUrl:
    """A camera's ``/stream`` address: host as the resolver wants it, port, request path."""

    host: str  # an IPv6 zone plain (fe80::1%eth0)
    port: int
    path: str  # percent-encoded, with the query

    @property
    def url(self) -> str:
        return http_url(self.host, self.port, self.path)


def parse_stream_url(url: str) -> StreamUrl:
    """Parse ``http://HOST[:PORT][/PATH]`` (or just ``HOST``); :class:`ValueError` if unusable.

    No port means the mesh's 8081; no path (or ``/``, as pasted from a browser) means
    ``/stream``. The path is percent-encoded for the request line.
    """
    try:
        parts = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad URL {url!r} ({exc})") from None
    if parts.scheme != "http":
        raise ValueError(f"only http:// streams are supported, not {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in URL {url!r}")
    if port == 0:
        raise ValueError(f"port 0 in URL {url!r}")
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=~-._") if parts.path else ""
    if path in ("", "/"):
        path = STREAM_PATH
    if parts.query:
        path += "?" + quote(unquote(parts.query), safe="=&/:@!$'()*+,;~-._")
    # an IPv6 zone arrives escaped (fe80::1%25eth0); the resolver wants it plain
    return StreamUrl(unquote(parts.hostname), port or API_PORT, path)


def short_name(url: str) -> str:
    """A URL's display name: its host, with the port when it is not 8081."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port
    except ValueError:
        return url
    host = parts.hostname or url
    return host if port in (None, API_PORT) else f"{host}:{port}"
