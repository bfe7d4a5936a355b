"""Who a camera is, asked once when it joins: its name, model and frame rate.

A camera's folder is made the moment it joins a take, and its first segment's timecode
is counted at its frame rate: both must be known before its first frame. So a camera
joining the session is asked its ``/status`` once (:func:`identify`), with a deadline,
before its stream starts: its ``deviceName`` names a camera given only by address (the
address stays its URL in the manifest), its ``model`` is recorded, and its ``fps`` is
its nominal rate (NTSC rates as n/1001). A camera that does not answer in time, or is
not a camera node, keeps the name it was given (its address) and an unknown rate; the
feed's clock probes fill the model and rate in later (:mod:`mmrec.session.camera`).

Several cameras are asked at once (:func:`identify_all`): a shoot of 16 phones waits
for the slowest answer, at most the deadline, not for the sum.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from mmrec.errors import CameraError
from mmrec.ingest.status import fetch_status
from mmrec.ingest.stream import StreamTarget
from mmrec.timeline.rate import snap_rate

IDENTIFY_TIMEOUT_S: Final = 1.0  # a node on the LAN answers /status in milliseconds


@dataclass(frozen=True, slots=True)
class CameraRequest:
    """A camera to add: its URL, and what is known of it already."""

    url: str
    name: str | None = None  # None: its /status deviceName, else its address
    model: str | None = None
    role: str | None = None
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """What a camera's ``/status`` said (all None when it did not answer: ``error``)."""

    name: str | None = None  # deviceName (cleaned; may need a safe form for paths)
    model: str | None = None
    rate: Fraction | None = None  # nominal frame rate
    error: str | None = None  # why nothing is known

    @staticmethod
    def of_fps(fps: float | None) -> Fraction | None:
        """A ``/status`` fps as a rate (29.97 -> 30000/1001)."""
        return snap_rate(fps) if fps else None


async def identify(target: StreamTarget, timeout: float = IDENTIFY_TIMEOUT_S) -> Identity:
    """Ask the camera at ``target`` its ``/status`` once, within ``timeout`` seconds."""
    try:
        status, _ = await fetch_status(target.host, target.port, timeout)
    except CameraError as exc:
        return Identity(error=exc.cause)  # the event names the camera already
    return Identity(status.name or None, status.model or None, Identity.of_fps(status.fps), None)


async def identify_all(
    targets: Sequence[StreamTarget], timeout: float = IDENTIFY_TIMEOUT_S
) -> list[Identity]:
    """:func:`identify` for every target at once; answers in the targets' order."""
    return list(await asyncio.gather(*(identify(t, timeout) for t in targets)))
