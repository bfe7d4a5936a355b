"""Asking one address whether a camera node lives there: TCP connect, then ``GET /status``.

The only place discovery speaks HTTP. aiohttp and OSError failures are translated
here into :class:`~mmrec.errors.CameraUnreachableError` (nothing answers) or
:class:`~mmrec.errors.CameraProtocolError` (something answers, but not a camera node).
The body read is capped, so a hostile or confused server cannot make us buffer much.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aiohttp

from mmrec.discover.model import NodeStatus, http_url, parse_status
from mmrec.errors import CameraProtocolError, CameraUnreachableError

MAX_STATUS_BYTES = 64 * 1024

Connect = Callable[[str, int, float], Awaitable[bool]]
"""``connect(host, port, timeout_s) -> open?``: the scanner's first, cheap question."""


async def tcp_connect(host: str, port: int, timeout_s: float) -> bool:
    """True if a TCP connection to host:port opens within ``timeout_s`` (then closed)."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        async with asyncio.timeout(timeout_s):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass
    return True


async def fetch_status(
    session: aiohttp.ClientSession, host: str, port: int, timeout_s: float
) -> tuple[NodeStatus, list[str]]:
    """``GET http://host:port/status`` and check it is a camera node's answer.

    Returns the node's identity and any oddities in it; raises
    :class:`CameraUnreachableError` or :class:`CameraProtocolError` naming ``host:port``.
    """
    where = f"{host}:{port}"
    url = http_url(host, port, "/status")
    try:
        async with (
            asyncio.timeout(timeout_s),
            session.get(url, allow_redirects=False) as resp,
        ):
            if resp.status != 200:
                raise CameraProtocolError(where, f"/status answered HTTP {resp.status}")
            body = await resp.content.read(MAX_STATUS_BYTES + 1)
    except TimeoutError:
        raise CameraUnreachableError(where, f"no /status answer within {timeout_s:g} s") from None
    except aiohttp.ClientConnectorError as exc:
        cause = exc.os_error.strerror or str(exc.os_error)
        raise CameraUnreachableError(where, f"cannot connect: {cause}") from None
    except (aiohttp.ClientError, OSError) as exc:
        cause = str(exc) or type(exc).__name__
        raise CameraUnreachableError(where, f"/status failed: {cause}") from None
    if len(body) > MAX_STATUS_BYTES:
        raise CameraProtocolError(where, f"/status is larger than {MAX_STATUS_BYTES} bytes")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # bad UTF-8, bad JSON, absurd nesting
        raise CameraProtocolError(where, "/status is not JSON") from None
    status, problems = parse_status(doc)
    if status is None:
        raise CameraProtocolError(where, problems[0])
    return status, problems
