"""The merged view: many paths (mDNS, hostname, scan, manual) -> one camera each.

Pure and synchronous: fed :class:`~mmrec.discover.model.Sighting` values and path
state changes with explicit ``now_ns`` times, it answers with the events they cause.

Invariants:

* A camera's identity is its (deviceName, model), compared without case, never its
  address. Its ``id`` is ``unique_name(deviceName)`` chosen once and kept for the
  life of the registry, also while the camera is lost.
* A path joins the camera with its identity when it can be the same node: a manual
  path always can (a Tailscale address differs from the LAN one by design); a LAN path
  (mdns, hostname, scan) can when the camera has no LAN address yet or shares one
  with it. Otherwise it is a *second node claiming the same name*: it becomes a
  distinct camera with a suffixed id, and a warning says so.
* The address in use is the most preferred answering path's first address:
  mdns > hostname > scan > manual. When that path stops answering the next one takes
  over (:class:`CameraAddressChanged`); when none answers, :class:`CameraLost`.
* Events are derived by comparing each camera before and after a change, so every
  operation yields exactly the transitions it caused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mmrec.discover.model import (
    CameraAdded,
    CameraAddressChanged,
    CameraInfo,
    CameraLost,
    DiscoveryEvent,
    DiscoveryWarning,
    PathInfo,
    Sighting,
    Source,
)
from mmrec.store.names import unique_name

MAX_WARNINGS = 1000
"""Distinct warnings kept; a node spamming ever-new bad announcements cannot grow memory."""

PathKey = tuple[Source, str]


@dataclass(slots=True)
class _Path:
    sighting: Sighting
    answering: bool
    last_seen_ns: int


@dataclass(slots=True)
class _Camera:
    id: str
    identity: tuple[str, str]
    host: str
    port: int
    name: str
    model: str
    role: str
    last_seen_ns: int
    paths: dict[PathKey, _Path] = field(default_factory=dict)

    def lan_addresses(self) -> set[str]:
        return {
            a
            for p in self.paths.values()
            if p.sighting.source != Source.MANUAL
            for a in p.sighting.addresses
        }

    def accepts(self, s: Sighting) -> bool:
        if s.source == Source.MANUAL:
            return True
        lan = self.lan_addresses()
        return not lan or not lan.isdisjoint(s.addresses)

    def info(self) -> CameraInfo:
        live = [p for p in self.paths.values() if p.answering]
        if live:
            best = min(live, key=lambda p: (p.sighting.source.rank, p.sighting.key))
            s = best.sighting
            self.host, self.port = s.host, s.port
            self.name, self.model, self.role = s.name, s.model, s.role
        return CameraInfo(
            id=self.id,
            name=self.name,
            model=self.model,
            role=self.role,
            host=self.host,
            port=self.port,
            found_by=frozenset(p.sighting.source for p in self.paths.values()),
            answering=bool(live),
            last_seen_ns=self.last_seen_ns,
        )


def identity_of(s: Sighting) -> tuple[str, str]:
    return (s.name.casefold(), s.model.casefold())


class CameraRegistry:
    """Merged view of every camera found by any path. See the module docstring."""

    def __init__(self) -> None:
        self._cameras: dict[str, _Camera] = {}
        self._owner: dict[PathKey, str] = {}
        self._warnings: list[DiscoveryWarning] = []
        self._warned: set[tuple[Source, str, str]] = set()
        self.warnings_dropped = 0

    # -- queries ---------------------------------------------------------------

    def cameras(self) -> list[CameraInfo]:
        """Every camera ever seen (lost ones with ``answering=False``), sorted by id."""
        return [self._cameras[k].info() for k in sorted(self._cameras)]

    def camera(self, camera_id: str) -> CameraInfo | None:
        cam = self._cameras.get(camera_id)
        return cam.info() if cam else None

    def warnings(self) -> list[DiscoveryWarning]:
        return list(self._warnings)

    def paths_of(self, camera_id: str) -> list[PathInfo]:
        """Every path that knows the camera, most preferred first."""
        cam = self._cameras.get(camera_id)
        if cam is None:
            return []
        paths = sorted(cam.paths.values(), key=lambda p: (p.sighting.source.rank, p.sighting.key))
        return [
            PathInfo(
                p.sighting.source,
                p.sighting.key,
                p.sighting.addresses,
                p.sighting.port,
                p.answering,
                p.last_seen_ns,
            )
            for p in paths
        ]

    def path_keys(self, source: Source | None = None) -> list[PathKey]:
        """Paths currently held, optionally of one source (for re-probing)."""
        return [k for k in self._owner if source is None or k[0] == source]

    def sighting(self, key: PathKey) -> Sighting | None:
        owner = self._owner.get(key)
        return self._cameras[owner].paths[key].sighting if owner else None

    # -- changes ---------------------------------------------------------------

    def warn(self, source: Source, subject: str, message: str, now_ns: int) -> list[DiscoveryEvent]:
        """Record a warning once (same source, subject and message are reported once)."""
        key = (source, subject, message)
        if key in self._warned:
            return []
        if len(self._warnings) >= MAX_WARNINGS:
            self.warnings_dropped += 1
            return []
        self._warned.add(key)
        w = DiscoveryWarning(source, subject, message, now_ns)
        self._warnings.append(w)
        return [w]

    def observe(
        self, s: Sighting, now_ns: int, problems: Iterable[str] = ()
    ) -> list[DiscoveryEvent]:
        """A path saw (or still sees) a node answering, as ``s`` describes it."""
        events: list[DiscoveryEvent] = []
        for p in problems:
            events += self.warn(s.source, s.key, p, now_ns)
        before = self._snapshot()
        pk: PathKey = (s.source, s.key)
        owner_id = self._owner.get(pk)
        if owner_id is not None and self._cameras[owner_id].identity != identity_of(s):
            # The node behind this path now claims another name: it is another camera.
            del self._cameras[owner_id].paths[pk]
            del self._owner[pk]
            owner_id = None
        if owner_id is None:
            cam = self._place(s, now_ns, events)
            self._owner[pk] = cam.id
        else:
            cam = self._cameras[owner_id]
        cam.paths[pk] = _Path(s, True, now_ns)
        cam.last_seen_ns = max(cam.last_seen_ns, now_ns)
        return events + self._diff(before)

    def set_answering(
        self, source: Source, key: str, answering: bool, now_ns: int
    ) -> list[DiscoveryEvent]:
        """A probe of a known path succeeded or failed. Unknown paths are ignored."""
        owner = self._owner.get((source, key))
        if owner is None:
            return []
        before = self._snapshot()
        cam = self._cameras[owner]
        path = cam.paths[(source, key)]
        path.answering = answering
        if answering:
            path.last_seen_ns = now_ns
            cam.last_seen_ns = max(cam.last_seen_ns, now_ns)
        return self._diff(before)

    def remove(self, source: Source, key: str, now_ns: int) -> list[DiscoveryEvent]:
        """A path is gone for good (mDNS goodbye, service removed)."""
        owner = self._owner.pop((source, key), None)
        if owner is None:
            return []
        before = self._snapshot()
        del self._cameras[owner].paths[(source, key)]
        return self._diff(before)

    def report_unreachable(
        self, camera_id: str, now_ns: int, host: str | None = None
    ) -> list[DiscoveryEvent]:
        """Someone (the recorder) could not use ``host`` (default: the address in use).

        Every path whose preferred address is that host stops answering until a probe
        or an announcement says otherwise, so the next path takes over.
        """
        cam = self._cameras.get(camera_id)
        if cam is None:
            return []
        before = self._snapshot()
        target = host if host is not None else cam.info().host
        for path in cam.paths.values():
            if path.sighting.host == target:
                path.answering = False
        return self._diff(before)

    # -- internals -------------------------------------------------------------

    def _place(self, s: Sighting, now_ns: int, events: list[DiscoveryEvent]) -> _Camera:
        identity = identity_of(s)
        same = [c for c in self._cameras.values() if c.identity == identity]
        for cam in same:
            if cam.accepts(s):
                return cam
        cam_id = unique_name(s.name, self._cameras)
        cam = _Camera(cam_id, identity, s.host, s.port, s.name, s.model, s.role, now_ns)
        self._cameras[cam_id] = cam
        if same:
            others = ", ".join(f"{c.id!r} at {c.host}" for c in same)
            events += self.warn(
                s.source,
                s.key,
                f"a second node claims deviceName {s.name!r} (model {s.model!r}) at {s.host};"
                f" kept apart as {cam_id!r} (already: {others})",
                now_ns,
            )
        return cam

    def _snapshot(self) -> dict[str, CameraInfo]:
        return {k: c.info() for k, c in self._cameras.items()}

    def _diff(self, before: dict[str, CameraInfo]) -> list[DiscoveryEvent]:
        events: list[DiscoveryEvent] = []
        for cam_id in sorted(self._cameras):
            after = self._cameras[cam_id].info()
            old = before.get(cam_id)
            was = old is not None and old.answering
            if after.answering and not was:
                events.append(CameraAdded(after))
            elif was and not after.answering:
                events.append(CameraLost(after))
            elif (
                old is not None
                and after.answering
                and (old.host, old.port) != (after.host, after.port)
            ):
                events.append(CameraAddressChanged(after, old.host, old.port))
        return events
