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

from collections.abc import Callable, Sequence
from pathlib import Path

from mmrec.errors import RecordingError
from mmrec.ingest.stream import IngestConfig
from mmrec.live.preview import LivePreview
from mmrec.session.engine import PreviewOptions, Session
from mmrec.session.events import Event, EventKind
from mmrec.session.identify import IDENTIFY_TIMEOUT_S, CameraRequest
from mmrec.session.recording import Recording, WriteOptions
from mmrec.session.takecamera import CameraStatus
from mmrec.store.take import Manifest
from mmrec.store.writer import DEFAULT_QUEUE_FRAMES, DEFAULT_RUN, DEFAULT_SYNC_INTERVAL

__all__ = [
    "CameraStatus",
    "PreviewOptions",
    "Take",
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
        write_run: int = DEFAULT_RUN,
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
            write_run=write_run,
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
    def start_monotonic_ns(self) -> int:
        return self.recording.start_monotonic_ns

    @property
    def preview(self) -> LivePreview | None:
        return self.session.preview

    @property
    def closed(self) -> bool:
        return self.session.closed

    # cameras

    def add_camera(
        self,
        name: str,
        url: str,
        *,
        fallbacks: Sequence[str] = (),
    ) -> str:
        """Start recording a camera; returns its folder name. Names must be unique.

        ``fallbacks`` are other URLs of the same camera (e.g. its Tailscale address),
        tried in turn when the current one does not answer.
        """
        rec = self.recording
        self.session.add_camera(name, url, fallbacks=fallbacks)
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
