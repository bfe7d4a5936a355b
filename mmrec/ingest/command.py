"""Command fan-out: one HTTP request to many camera nodes at once, within one deadline.

The console's command bar and ``mmrec send`` use :func:`fan_out`: the same method, path
and body go to every selected node at the same time; each node's answer (status, body)
or failure (timeout, refused, bad answer) comes back as one :class:`CommandAnswer`, in
the order the nodes were given, once all answered or the deadline passed. Answers are
untrusted: a body is read up to :data:`MAX_ANSWER` bytes (the rest is cut and said so),
decoded as UTF-8 with replacement; nothing is followed (no redirects) or decompressed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import aiohttp

from mmrec.errors import (
    CameraError,
    CameraProtocolError,
    CameraUnreachableError,
    ConfigError,
    ExceptionMap,
    map_exceptions,
)
from mmrec.wire.url import http_url

MAX_ANSWER: Final = 64 * 1024
MAX_BODY: Final = 64 * 1024
METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PATH: Final = re.compile(r"/[!-~]*")  # printable ASCII, no spaces or line ends
_ERRORS: Final[ExceptionMap] = {
    TimeoutError: CameraUnreachableError,
    (aiohttp.ClientResponseError, aiohttp.ClientPayloadError): CameraProtocolError,
    (aiohttp.ClientError, OSError): CameraUnreachableError,
}


@dataclass(frozen=True, slots=True)
class CommandTarget:
    """A node to send to: its camera name and its API address."""

    name: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Command:
    """What is sent: ``method path`` with ``body`` (JSON unless ``content_type`` says)."""

    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/json"

    def __post_init__(self) -> None:
        method = self.method.upper()
        object.__setattr__(self, "method", method)
        if method not in METHODS:
            raise ConfigError(f"method {self.method!r}: use one of {', '.join(METHODS)}")
        if not _PATH.fullmatch(self.path):
            raise ConfigError(f"path {self.path!r}: must start with / (printable, no spaces)")
        if len(self.body) > MAX_BODY:
            raise ConfigError(f"body is {len(self.body)} bytes; at most {MAX_BODY}")
        if self.body and method == "GET":
            raise ConfigError("a GET has no body")


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """One node's answer: HTTP ``status`` and ``body`` text, or ``error`` (then no status)."""

    node: str
    url: str
    status: int | None
    body: str
    error: str | None
    elapsed_ms: float
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


async def fan_out(
    targets: Sequence[CommandTarget], command: Command, *, deadline_s: float = 3.0
) -> list[CommandAnswer]:
    """Send ``command`` to every target at once; every answer within ``deadline_s``."""
    if not deadline_s > 0:
        raise ConfigError("the deadline must be positive")
    timeout = aiohttp.ClientTimeout(total=deadline_s)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as http:
        return list(await asyncio.gather(*(_one(http, t, command, deadline_s) for t in targets)))


async def _one(
    http: aiohttp.ClientSession, t: CommandTarget, command: Command, deadline_s: float
) -> CommandAnswer:
    url = http_url(t.host, t.port, command.path)
    started = time.perf_counter()

    def ms() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    headers = {"Content-Type": command.content_type} if command.body else {}
    try:
        with map_exceptions(_ERRORS, f"{command.method} {command.path}", camera=t.name,
                            timeout=deadline_s):  # fmt: skip
            async with asyncio.timeout(deadline_s), http.request(
                command.method, url, data=command.body or None, headers=headers,
                allow_redirects=False,
            ) as resp:  # fmt: skip
                status = resp.status
                data = b""
                async for chunk in resp.content.iter_any():
                    data += chunk  # small answers; the loop stops past the cap
                    if len(data) > MAX_ANSWER:
                        break
    except CameraError as exc:
        return CommandAnswer(t.name, url, None, "", exc.cause, ms())
    cut = len(data) > MAX_ANSWER
    text = data[:MAX_ANSWER].decode("utf-8", "replace")
    return CommandAnswer(t.name, url, status, text, None, ms(), cut)
