"""Alerts the operator must see: raised by conditions, kept until acknowledged.

Pure. Each evaluation passes the conditions that hold *now* (camera lost, camera slow,
disk low or full, clock uncertain, frames dropped); :class:`AlertBook` raises an alert
when a condition appears, marks it cleared (but keeps it visible) when it goes away, and
drops it from view only when the operator acknowledges it. A condition that comes back
before its alert was acknowledged makes that alert active again (``times`` counts), so a
flapping camera is one line, not a flood. A condition that persists after being
acknowledged is not raised again until it has cleared and come back, so an acknowledged
alert stays quiet. Bounded: the oldest alerts are forgotten past ``limit``.

A measure that jitters (a clock model's uncertainty under CPU load) is made a condition
by :class:`Sustained`: over its limit for some seconds before it holds, and back under a
lower mark for some seconds before it stops (hysteresis), so a passing spike is no alert
and a value at the limit does not flap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum


class AlertKind(StrEnum):
    CAMERA_LOST = "camera-lost"
    CAMERA_SLOW = "camera-slow"
    CLOCK_UNCERTAIN = "clock-uncertain"
    FRAMES_DROPPED = "frames-dropped"
    DISK_LOW = "disk-low"
    DISK_FULL = "disk-full"
    FOLDER_GONE = "folder-gone"  # an output folder removed, unreadable or read-only


@dataclass(frozen=True, slots=True)
class Condition:
    """Something wrong right now: its kind, what it is about (a camera, the disk), words."""

    kind: AlertKind
    subject: str
    message: str


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: AlertKind
    subject: str
    message: str
    raised_ns: int  # monotonic
    cleared_ns: int | None = None  # the condition went away (still shown until acked)
    acked: bool = False
    times: int = 1  # how often the condition held, cleared and came back before the ack

    @property
    def active(self) -> bool:
        return self.cleared_ns is None


@dataclass(frozen=True, slots=True)
class Held:
    """A sustained condition that holds: since when, and its worst value meanwhile."""

    since_ns: int  # when the value first went over the limit (this time)
    peak: float


@dataclass(slots=True)
class _Track:
    over_ns: int | None = None  # over the limit since
    under_ns: int | None = None  # under the clearing mark since (while holding)
    peak: float = 0.0
    holding: bool = False


class Sustained:
    """Per subject: does a measure stay over ``limit`` (see the module docstring)? It holds
    once over ``limit`` for ``hold_ns``, and stops once under ``clear_at`` (at most
    ``limit``) for ``clear_ns``; an unknown value (None) forgets the subject. Pure: the
    time is the caller's (monotonic ns)."""

    def __init__(self, limit: float, hold_ns: int, clear_at: float, clear_ns: int) -> None:
        if not clear_at <= limit or hold_ns < 0 or clear_ns < 0:
            raise ValueError("need clear_at <= limit and hold_ns, clear_ns >= 0")
        self.limit = limit
        self.hold_ns = hold_ns
        self.clear_at = clear_at
        self.clear_ns = clear_ns
        self._tracks: dict[str, _Track] = {}

    def update(self, subject: str, value: float | None, now_ns: int) -> Held | None:
        """The value of ``subject`` at ``now_ns``; what holds, if the condition does."""
        if value is None:
            self._tracks.pop(subject, None)
            return None
        t = self._tracks.setdefault(subject, _Track())
        if value > self.limit:
            if t.over_ns is None:
                t.over_ns, t.peak = now_ns, value
            t.peak = max(t.peak, value)
            t.under_ns = None
            if now_ns - t.over_ns >= self.hold_ns:
                t.holding = True
        elif not t.holding:
            t.over_ns = None  # a spike shorter than hold_ns: forgotten
        elif value < self.clear_at:
            if t.under_ns is None:
                t.under_ns = now_ns
            if now_ns - t.under_ns >= self.clear_ns:
                self._tracks[subject] = _Track()
                return None
        else:
            t.under_ns = None  # between the marks: still holding
        if not t.holding or t.over_ns is None:
            return None
        return Held(t.over_ns, t.peak)

    def forget(self, keep: set[str]) -> None:
        """Drop subjects not in ``keep`` (cameras gone from the session)."""
        for k in [k for k in self._tracks if k not in keep]:
            del self._tracks[k]


class AlertBook:
    """Alerts by id; see the module docstring."""

    def __init__(self, limit: int = 500) -> None:
        self._alerts: dict[int, Alert] = {}
        self._open: dict[tuple[AlertKind, str], int] = {}  # condition -> its alert
        self._shown: dict[tuple[AlertKind, str], int] = {}  # cleared, not yet acknowledged
        self._next = 1
        self._limit = limit

    def update(self, conditions: Iterable[Condition], now_ns: int) -> list[Alert]:
        """Evaluate the conditions holding now; returns the alerts newly raised."""
        raised: list[Alert] = []
        seen: set[tuple[AlertKind, str]] = set()
        for c in conditions:
            key = (c.kind, c.subject)
            seen.add(key)
            aid = self._open.get(key)
            again = self._shown.pop(key, None)
            if aid is None and again is not None and not self._alerts[again].acked:
                a = self._alerts[again]  # back before it was acknowledged: the same alert
                self._alerts[again] = replace(
                    a, message=c.message, cleared_ns=None, times=a.times + 1
                )
                self._open[key] = again
            elif aid is None:
                alert = Alert(self._next, c.kind, c.subject, c.message, now_ns)
                self._next += 1
                self._alerts[alert.id] = alert
                self._open[key] = alert.id
                raised.append(alert)
            elif self._alerts[aid].message != c.message:
                self._alerts[aid] = replace(self._alerts[aid], message=c.message)
        for key in [k for k in self._open if k not in seen]:
            aid = self._open.pop(key)
            self._alerts[aid] = replace(self._alerts[aid], cleared_ns=now_ns)
            if not self._alerts[aid].acked:
                self._shown[key] = aid
        while len(self._alerts) > self._limit:
            oldest = next(iter(self._alerts))
            if oldest in self._open.values():
                break  # never forget one whose condition still holds
            del self._alerts[oldest]
        self._shown = {k: v for k, v in self._shown.items() if v in self._alerts}
        return raised

    def ack(self, alert_id: int | None = None) -> int:
        """Acknowledge one alert (or all with None); returns how many were acknowledged."""
        ids = list(self._alerts) if alert_id is None else [alert_id]
        n = 0
        for aid in ids:
            a = self._alerts.get(aid)
            if a is not None and not a.acked:
                self._alerts[aid] = replace(a, acked=True)
                n += 1
        return n

    def visible(self) -> list[Alert]:
        """Alerts not yet acknowledged, oldest first (active and cleared)."""
        return [a for a in self._alerts.values() if not a.acked]

    def active(self) -> list[Alert]:
        return [self._alerts[aid] for aid in self._open.values()]
