"""Who may do what on the console: the token, the Host allow-list, the Origin of changes.

Safe by default, as Jupyter is: the console binds 127.0.0.1; any other bind (127.0.0.2,
a LAN address, 0.0.0.0) requires the token for every request, given once in the URL
printed at start (``/?token=...``, then kept in an HttpOnly, SameSite=Strict cookie) or
as ``Authorization: Bearer`` (Prometheus). Every state change is a POST that carries the
token in a header (``X-Mmrec-Token``) whatever the bind: a header cannot be added by a
form or an image on another site, and no CORS header is ever sent, so no other origin
can read the token or send it. ``Host`` must pass :class:`~mmrec.wire.host.HostPolicy`
(DNS rebinding), and a POST with an ``Origin`` must come from an allowed host. Pure.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from mmrec.wire.host import HostPolicy, host_name, is_loopback_bind

COOKIE: Final = "mmrec_console"
HEADER: Final = "X-Mmrec-Token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int  # 200: go on
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True, slots=True)
class Request:
    """What the checks read from an HTTP request."""

    method: str
    host: str | None
    origin: str | None = None
    header_token: str | None = None  # X-Mmrec-Token, or Authorization: Bearer
    cookie_token: str | None = None
    query_token: str | None = None


@dataclass(frozen=True, slots=True)
class Access:
    token: str
    token_required: bool  # for every request (a bind beyond loopback)
    hosts: HostPolicy

    @staticmethod
    def for_bind(bind: str, token: str | None = None, allow_hosts: tuple[str, ...] = ()) -> Access:
        return Access(token or new_token(), not is_loopback_bind(bind),
                      HostPolicy.for_bind(bind, allow_hosts))  # fmt: skip

    def matches(self, value: str | None) -> bool:
        """Whether ``value`` is the token (compared in constant time)."""
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    def check(self, r: Request) -> Verdict:
        if not self.hosts.allows(r.host):
            return Verdict(403, f"Host {r.host!r} is not allowed (DNS rebinding guard)")
        authed = (
            self.matches(r.header_token)
            or self.matches(r.cookie_token)
            or self.matches(r.query_token)
        )
        if self.token_required and not authed:
            return Verdict(401, "token required: open the URL mmrec console printed")
        if r.method not in ("GET", "HEAD"):
            if not self.matches(r.header_token):
                return Verdict(403, f"a change needs the {HEADER} header")
            if r.origin is not None and not self._origin_ok(r.origin):
                return Verdict(403, f"Origin {r.origin!r} is not allowed")
        return Verdict(200)

    def _origin_ok(self, origin: str) -> bool:
        scheme, sep, rest = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and self.hosts.allows(rest.split("/")[0])

    def url(self, host: str, port: int) -> str:
        """The URL to open (with the token when one is needed)."""
        name = host_name(host)
        shown = f"[{name}]" if ":" in name else name
        base = f"http://{shown}:{port}/"
        return base + (f"?token={self.token}" if self.token_required else "")
