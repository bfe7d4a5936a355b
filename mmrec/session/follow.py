"""Discovery into a session: every camera that discovery finds is recorded.

The seam between :mod:`mmrec.discover` (what is on the network) and
:class:`~mmrec.session.engine.Session` (what is recorded): a found camera joins, a moved
one is reconnected at its new address, a lost one keeps retrying, a warning is noted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from mmrec.discover import (
    CameraAdded,
    CameraAddressChanged,
    CameraLost,
    Discovery,
    DiscoveryEvent,
    DiscoveryWarning,
)
from mmrec.errors import MmrecError
from mmrec.ingest.stream import StreamTarget
from mmrec.session.engine import Session
from mmrec.session.identify import CameraRequest

if TYPE_CHECKING:
    from mmrec.config import CameraSpec
    from mmrec.discover import DiscoveryConfig

__all__ = ["discover_into", "follow_discovery"]


async def follow_discovery(
    session: Session,
    events: AsyncIterator[DiscoveryEvent],
    *,
    skip: frozenset[tuple[str, int]] = frozenset(),
) -> None:
    """Record every camera discovery finds into ``session``, for as long as ``events``
    runs (the take being recorded holds it from then on).

    A camera that joins mid-take gets its folder and manifest entry from that moment; one
    that changes address is reconnected at the new one; one that is lost keeps retrying
    with backoff and, when found again, continues in the same folder and files (its gap
    is in the index and the manifest). Cameras whose ``(host, port)`` is in ``skip`` are
    already recorded from a URL given by hand.
    """
    async for ev in events:
        if session.closed:
            return
        try:
            await _follow_one(session, ev, skip)
        except MmrecError as exc:  # e.g. disk full at a hot-join: say so, keep following
            session.note(f"discovery: {exc}")


async def discover_into(
    stack: contextlib.AsyncExitStack,
    session: Session,
    config: DiscoveryConfig,
    given: Sequence[CameraSpec],
) -> Discovery:
    """Run discovery for as long as ``stack`` is open and follow it into ``session`` (a
    console's, or a one-take :class:`~mmrec.session.recorder.Take`'s); cameras ``given``
    by URL are not added twice. Returns the :class:`~mmrec.discover.Discovery` (its
    registry is the console's device map)."""
    disc = await stack.enter_async_context(Discovery(config))
    manual = frozenset(
        (t.host, t.port) for t in (StreamTarget.from_url(c.name, c.url) for c in given)
    )
    task = asyncio.create_task(follow_discovery(session, disc.events(), skip=manual))

    async def _cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(_cancel)
    return disc


async def _follow_one(
    session: Session, ev: DiscoveryEvent, skip: frozenset[tuple[str, int]]
) -> None:
    match ev:
        case CameraAdded(camera=cam) | CameraAddressChanged(camera=cam):
            if (cam.host, cam.port) in skip:
                return
            if session.has_camera(cam.id):
                session.retarget(cam.id, cam.stream_url)
                session.note(f"camera {cam.id!r}: {type(ev).__name__} -> {cam.stream_url}")
            else:
                # asked once more for its frame rate (discovery knows its name and model)
                request = CameraRequest(
                    cam.stream_url, cam.id, model=cam.model or None, role=cam.role or None
                )
                await session.join([request])
        case CameraLost(camera=cam):
            if session.has_camera(cam.id):
                session.note(f"camera {cam.id!r}: lost by discovery; retrying")
        case DiscoveryWarning():
            session.note(f"discovery: {ev.subject}: {ev.message}")
