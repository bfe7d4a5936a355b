"""Which ``Host`` a local web server answers: a defence against DNS rebinding.

A page on an attacker's site can point its own DNS name at 127.0.0.1 (or at this
machine) and then read a local server as if it were its own origin; the browser still
sends the attacker's name in ``Host``. So a server that is not meant for the whole world
answers only the names it knows: IP literals (no rebinding is possible without a DNS
name; on a loopback bind only loopback ones), ``localhost``, this machine's host name
(when bound beyond loopback) and names allowed by hand. Pure; the port is not compared
(a proxy may change it).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

LOOPBACK_BINDS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_loopback_bind(host: str) -> bool:
    """True for the binds that need no token: 127.0.0.1, ::1, localhost (only those)."""
    return host.strip("[]").lower() in LOOPBACK_BINDS


def host_name(header: str) -> str:
    """The name or address in a ``Host`` value, without port or brackets, lower-cased."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


@dataclass(frozen=True, slots=True)
class HostPolicy:
    names: frozenset[str]  # DNS names answered (lower case)
    any_ip: bool  # every IP literal (a bind beyond loopback); else loopback ones only

    @staticmethod
    def for_bind(bind: str, extra: Iterable[str] = ()) -> HostPolicy:
        names = {"localhost", *(n.lower().rstrip(".") for n in extra)}
        loopback = is_loopback_bind(bind)
        if not loopback:
            names.add(socket.gethostname().lower())
            names.add(host_name(bind))
        return HostPolicy(frozenset(names), any_ip=not loopback)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` is answered (none: refused)."""
        if not header:
            return False
        name = host_name(header)
        try:
            ip = ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            return name in self.names
        return self.any_ip or ip.is_loopback
