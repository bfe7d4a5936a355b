"""A camera node's ``/status``: one bounded, timed GET and the fields mmrec reads from it.

Used by the recorder's clock probes and by ``mmrec bench``. The body is capped (a node
whose ``/status`` never ends, or that serves its MJPEG stream on every path, costs at
most ``MAX_STATUS_BYTES``), the request has an overall deadline, and every aiohttp, OS,
JSON or timeout failure becomes a :class:`CameraError` naming the camera.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Final

import aiohttp

from mmrec.align import parse_device_ts
from mmrec.errors import CameraProtocolError, CameraUnreachableError

MAX_STATUS_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """What one ``/status`` answer told us: its clock (device ns) and nominal rate."""

    device_ns: int | None
    fps: float | None


def parse_status(body: bytes) -> StatusInfo:
    """The clock (``clockNs``, else ``clock`` seconds) and ``fps`` from a ``/status`` body.

    Raises :class:`ValueError` when the body is not a JSON object; missing or odd fields
    are simply None (many cameras have a ``/status`` without a clock).
    """
    try:
        doc = json.loads(body)
    except RecursionError as exc:  # absurdly nested JSON
        raise ValueError("/status is nested too deeply") from exc
    if not isinstance(doc, dict):
        raise ValueError("/status is not a JSON object")
    device_ns: int | None = None
    ns = doc.get("clockNs")
    if isinstance(ns, int) and not isinstance(ns, bool) and ns > 0:
        device_ns = ns
    else:
        v = doc.get("clock")
        if isinstance(v, str):
            device_ns = parse_device_ts(v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            device_ns = parse_device_ts(repr(v))
    fps = doc.get("fps")
    nominal = (
        float(fps)
        if isinstance(fps, int | float) and not isinstance(fps, bool) and 0 < fps <= 1000
        else None
    )
    return StatusInfo(device_ns, nominal)


async def get_status(
    session: aiohttp.ClientSession, url: str, camera: str, *, timeout: float = 2.0
) -> tuple[int, int, StatusInfo]:
    """GET ``/status``: (t0 before sending, t1 at the response head, what it says).

    The node reads its clock before it writes the head, so t1 is taken at the head's
    arrival, not after the body.
    """
    try:
        async with asyncio.timeout(timeout):
            t0 = time.monotonic_ns()
            async with session.get(url, allow_redirects=False) as resp:
                t1 = time.monotonic_ns()
                if resp.status != 200:
                    raise CameraProtocolError(camera, f"/status answered HTTP {resp.status}")
                body = bytearray()
                while len(body) <= MAX_STATUS_BYTES:
                    chunk = await resp.content.read(MAX_STATUS_BYTES + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
    except TimeoutError as exc:
        raise CameraUnreachableError(camera, f"/status: no answer within {timeout:g} s") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise CameraUnreachableError(
            camera, f"/status failed: {exc or type(exc).__name__}"
        ) from exc
    if len(body) > MAX_STATUS_BYTES:
        raise CameraProtocolError(camera, f"/status is larger than {MAX_STATUS_BYTES} bytes")
    try:
        return t0, t1, parse_status(bytes(body))
    except ValueError as exc:
        raise CameraProtocolError(camera, f"/status is not usable JSON ({exc})") from None
