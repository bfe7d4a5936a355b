"""A one-take recording: a session whose take starts with it and ends when it closes.

:class:`Take` is the programmatic API for a single take (tests and ``mmrec record`` use
it); a long-running console uses :class:`~mmrec.session.engine.Session` directly::

    async with Take(out_dir) as take:
        take.add_camera("A-wide", "http://192.168.43.21:8081/stream")
        await asyncio.sleep(60)
    # every file is finalized here; take.dir / "manifest.json" says what was recorded

Cameras may be added at any time (hot-join); a camera that disconnects is retried with
backoff and keeps its folder, its files and its place on the timeline. Closing stops the
cameras first (a frame already arriving is kept), then writes everything received.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mmrec.discover import (
    CameraAdded,
    CameraAddressChanged,
    CameraLost,
    DiscoveryEvent,
    DiscoveryWarning,
)
from mmrec.errors import MmrecError, RecordingError
from mmrec.ingest.stream import IngestConfig
from mmrec.live.preview import LivePreview
from mmrec.session.engine import PreviewOptions, Session
from mmrec.session.events import Event, EventKind
from mmrec.session.identify import IDENTIFY_TIMEOUT_S, CameraRequest
from mmrec.session.recording import CameraStatus, Recording, WriteOptions
from mmrec.store.take import Manifest
from mmrec.store.writer import DEFAULT_QUEUE_FRAMES, DEFAULT_SYNC_INTERVAL, WriterPool

if TYPE_CHECKING:
    from mmrec.config import CameraSpec
    from mmrec.discover import Discovery, DiscoveryConfig

__all__ = [
    "CameraSet",
    "CameraStatus",
    "PreviewOptions",
    "Take",
    "discover_into",
    "follow_discovery",
]


def describe(ev: Event) -> str:
    """An event as one line for a person."""
    who = f"camera {ev.camera!r}: " if ev.camera else ""
    return (
        f"{who}{ev.detail}"
        if ev.kind in (EventKind.NOTE, EventKind.DISCOVERY, EventKind.TAKE)
        else (f"{who}{ev.kind}: {ev.detail}")
    )


class Take:
    """Record any number of cameras into ``out/<take-id>/`` until closed."""

    def __init__(
        self,
        out: Path,
        *,
        name: str | None = None,
        segment_seconds: float = 0.0,
        ingest_config: IngestConfig | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        on_event: Callable[[str], None] | None = None,
        probe_clocks: bool = True,
        writer_threads: int = 4,
        muxer: str = "mkv",
        preview: PreviewOptions | None = None,
        direct_io: bool = True,
        relays: Sequence[Path] = (),
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
    ) -> None:
        self.out = Path(out)
        self._name = name
        self._preview_options = preview
        self._write = WriteOptions(
            segment_seconds=segment_seconds,
            queue_frames=queue_frames,
            muxer=muxer,
            direct_io=direct_io,
            relays=tuple(Path(r) for r in relays),
        )
        self.session = Session(
            ingest_config=ingest_config,
            probe_clocks=probe_clocks,
            writer_threads=writer_threads,
            sync_interval=sync_interval,
            direct_io=direct_io and muxer == "mkv",
            on_event=None if on_event is None else (lambda ev: on_event(describe(ev))),
        )
        self._recording: Recording | None = None
        self._final: Manifest | None = None

    async def __aenter__(self) -> Take:
        s = self.session
        rec = await s.start_take(
            self.out, name=self._name, at_mono_ns=s.origin_ns, write=self._write
        )
        self._recording = rec
        if self._preview_options is not None:
            await s.start_preview(rec.dir, self._preview_options)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def recording(self) -> Recording:
        if self._recording is None:
            raise RecordingError("the take has not started (use it as 'async with Take(...)')")
        return self._recording

    # what a take is

    @property
    def id(self) -> str:
        return self.recording.id

    @property
    def dir(self) -> Path:
        return self.recording.dir

    @property
    def timecode(self) -> str:
        return self.recording.timecode

    @property
    def start_monotonic_ns(self) -> int:
        return self.recording.start_monotonic_ns

    @property
    def start_realtime_ns(self) -> int:
        return self.recording.start_realtime_ns

    @property
    def preview(self) -> LivePreview | None:
        return self.session.preview

    @property
    def writer_pool(self) -> WriterPool:
        return self.session.writer_pool

    @property
    def closed(self) -> bool:
        return self.session.closed

    # cameras

    def add_camera(
        self,
        name: str,
        url: str,
        *,
        model: str | None = None,
        role: str | None = None,
        fallbacks: Sequence[str] = (),
    ) -> str:
        """Start recording a camera; returns its folder name. Names must be unique.

        ``fallbacks`` are other URLs of the same camera (e.g. its Tailscale address),
        tried in turn when the current one does not answer.
        """
        rec = self.recording
        self.session.add_camera(name, url, model=model, role=role, fallbacks=fallbacks)
        return rec.dir_of(name)

    async def join(
        self, requests: Sequence[CameraRequest], timeout: float = IDENTIFY_TIMEOUT_S
    ) -> list[str]:
        """Add cameras after asking each who it is (:meth:`Session.join`: a camera given
        only by address is named by its /status); returns their folder names."""
        rec = self.recording
        feeds = await self.session.join(requests, timeout)
        return [rec.dir_of(f.name) for f in feeds]

    def has_camera(self, name: str) -> bool:
        return self.session.has_camera(name)

    def retarget(self, name: str, url: str) -> None:
        """A camera moved (new address): reconnect to the new URL, same folder and files."""
        self.session.retarget(name, url)

    def note(self, text: str) -> None:
        """Record an event in the manifest's ``events`` and show it."""
        self.session.note(text)

    def status(self) -> list[CameraStatus]:
        return self.recording.status()

    def manifest(self, *, final: bool = False) -> Manifest:
        return self.recording.manifest(final=final)

    async def close(self) -> Manifest:
        """Stop every camera, finalize every file and write the final manifest."""
        if self._final is None:
            final = await self.session.close()
            self._final = final if final is not None else self.recording.manifest(final=True)
        return self._final


class CameraSet(Protocol):
    """What discovery adds cameras to: a one-take :class:`Take` or a console's
    :class:`~mmrec.session.engine.Session`."""

    @property
    def closed(self) -> bool: ...
    def has_camera(self, name: str) -> bool: ...
    def add_camera(
        self,
        name: str,
        url: str,
        *,
        model: str | None = None,
        role: str | None = None,
        fallbacks: Sequence[str] = (),
    ) -> object: ...
    async def join(
        self, requests: Sequence[CameraRequest], timeout: float = ...
    ) -> Sequence[object]: ...
    def retarget(self, name: str, url: str) -> None: ...
    def note(self, text: str) -> None: ...


async def follow_discovery(
    take: CameraSet,
    events: AsyncIterator[DiscoveryEvent],
    *,
    skip: frozenset[tuple[str, int]] = frozenset(),
    report_unreachable: Callable[[str], None] | None = None,
) -> None:
    """Record every camera discovery finds, for as long as ``events`` runs (into a take,
    or into a session, whose takes then hold it).

    A camera that joins mid-take gets its folder and manifest entry from that moment; one
    that changes address is reconnected at the new one; one that is lost keeps retrying
    with backoff and, when found again, continues in the same folder and files (its gap
    is in the index and the manifest). Cameras whose ``(host, port)`` is in ``skip`` are
    already recorded from a URL given by hand.
    """
    async for ev in events:
        if take.closed:
            return
        try:
            await _follow_one(take, ev, skip)
        except MmrecError as exc:  # e.g. disk full at a hot-join: say so, keep following
            take.note(f"discovery: {exc}")


async def discover_into(
    stack: contextlib.AsyncExitStack,
    target: CameraSet,
    config: DiscoveryConfig,
    given: Sequence[CameraSpec],
) -> Discovery:
    """Run discovery for as long as ``stack`` is open and follow it into ``target`` (a
    take or a session); cameras ``given`` by URL are not added twice. Returns the
    :class:`~mmrec.discover.Discovery` (its registry is the console's device map)."""
    from mmrec.discover import Discovery
    from mmrec.ingest.stream import StreamTarget

    disc = await stack.enter_async_context(Discovery(config))
    manual = frozenset(
        (t.host, t.port) for t in (StreamTarget.from_url(c.name, c.url) for c in given)
    )
    task = asyncio.create_task(follow_discovery(target, disc.events(), skip=manual))

    async def _cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(_cancel)
    return disc


async def _follow_one(
    take: CameraSet, ev: DiscoveryEvent, skip: frozenset[tuple[str, int]]
) -> None:
    match ev:
        case CameraAdded(camera=cam) | CameraAddressChanged(camera=cam):
            if (cam.host, cam.port) in skip:
                return
            if take.has_camera(cam.id):
                take.retarget(cam.id, cam.stream_url)
                take.note(f"camera {cam.id!r}: {type(ev).__name__} -> {cam.stream_url}")
            else:
                # asked once more for its frame rate (discovery knows its name and model)
                request = CameraRequest(
                    cam.stream_url, cam.id, model=cam.model or None, role=cam.role or None
                )
                await take.join([request])
        case CameraLost(camera=cam):
            if take.has_camera(cam.id):
                take.note(f"camera {cam.id!r}: lost by discovery; retrying")
        case DiscoveryWarning():
            take.note(f"discovery: {ev.subject}: {ev.message}")
