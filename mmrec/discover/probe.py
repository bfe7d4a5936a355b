"""Asking one address whether anything listens: the scanner's first, cheap question.

Whether a camera node answers there is :func:`mmrec.ingest.status.fetch_status`, the one
``/status`` client (discovery, recorder and bench share it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

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
