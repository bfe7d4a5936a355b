"""What happened during a session, in order: one log for cameras, disks, clocks and takes.

Every event is stamped on the recorder's monotonic clock when it happens; a take's
manifest keeps the events of its span with times on the take timeline
(:class:`~mmrec.store.take.TakeEvent`). The log is bounded (a long shoot day must not
grow memory without limit) and can be followed by listeners (the console's live page).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

MAX_EVENTS: Final = 20_000  # a shoot day of events; older ones are dropped first


class EventKind(StrEnum):
    """What an event is about (its ``kind`` in the manifest)."""

    CAMERA_ADDED = "camera-added"
    CAMERA_MOVED = "camera-moved"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # detail: the cause
    CONNECT_FAILED = "connect-failed"  # not streaming, and why (once per cause per outage)
    GAP = "gap"  # no frames for a while; logged when it ends (or the take does), with its length
    CLOCK = "clock"
    DISK = "disk"
    ALERT = "alert"
    NODE = "node"  # an event a node reported itself (its /events)
    TAKE = "take"
    DISCOVERY = "discovery"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Event:
    mono_ns: int  # when, on the recorder's monotonic clock
    kind: EventKind
    detail: str
    camera: str | None = None


Listener = Callable[[Event], None]


class EventLog:
    """A bounded, ordered log of :class:`Event` with listeners (called on the event loop)."""

    def __init__(self, limit: int = MAX_EVENTS) -> None:
        self._events: deque[Event] = deque(maxlen=limit)
        self._listeners: list[Listener] = []

    def add(
        self, kind: EventKind, detail: str, camera: str | None = None, mono_ns: int | None = None
    ) -> Event:
        ev = Event(time.monotonic_ns() if mono_ns is None else mono_ns, kind, detail, camera)
        self._events.append(ev)
        for listener in list(self._listeners):
            listener(ev)
        return ev

    def between(self, start_ns: int, end_ns: int | None = None) -> list[Event]:
        """Events at or after ``start_ns`` (and before ``end_ns``), in order."""
        return [
            e
            for e in self._events
            if e.mono_ns >= start_ns and (end_ns is None or e.mono_ns < end_ns)
        ]

    def recent(self, n: int) -> list[Event]:
        return list(self._events)[-n:] if n > 0 else []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every new event; returns the function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def __len__(self) -> int:
        return len(self._events)
