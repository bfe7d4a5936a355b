"""The discovery service: runs every path (mDNS, hostname prober, scan, manual hosts)
and feeds one :class:`~mmrec.discover.registry.CameraRegistry`.

Usage (the recorder)::

    async with Discovery(DiscoveryConfig(interfaces=("127.0.0.1",))) as disc:
        async for event in disc.events():
            match event:
                case CameraAdded(camera): start_ingest(camera)
                case CameraAddressChanged(camera): restart_ingest(camera)
                case CameraLost(camera): stop_ingest(camera)

Invariants: every network wait has a timeout; every task started here is owned by
the :class:`Discovery` and cancelled and awaited on exit, every ``/status`` connection
is closed after its answer and the zeroconf instance is closed, so nothing outlives the
``async with`` block. Time is read from the injected ``clock`` (``monotonic_ns``) only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Self

from mmrec.discover.mdns import Mdns, MdnsBrowser
from mmrec.discover.model import (
    CameraAdded,
    CameraInfo,
    DiscoveryEvent,
    DiscoveryWarning,
    PathInfo,
    Sighting,
    Source,
    normalize_hostname,
    order_addresses,
)
from mmrec.discover.probe import Connect, tcp_connect
from mmrec.discover.registry import CameraRegistry
from mmrec.discover.scan import ScanLimits, ScanReport, resolve_scan_range, scan, scan_targets
from mmrec.errors import CameraError, ConfigError, DiscoveryError
from mmrec.ingest.status import fetch_status
from mmrec.wire.status import NodeStatus
from mmrec.wire.url import API_PORT, parse_host

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 4096
"""Events buffered per subscriber. Events are per camera state change, so a reader that
falls this far behind is stuck; further events are dropped, counted in
:attr:`EventStream.dropped`, and :meth:`Discovery.cameras` remains the truth."""


MAX_PROBED_HOSTNAMES = 256
"""Hostnames the prober re-asks each round (configured + seen); bounds work per round even
if something on the LAN announces ever-new names."""


def _as_tuple(value: Iterable[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    """What to look for and where. Validated on construction (ConfigError/DiscoveryError).

    ``interfaces``: IP addresses of the interfaces mDNS uses; empty = all (real
    shoots). ``mdns=False`` turns mDNS (browse and hostname prober) off.
    ``scan``: a CIDR of at most 256 addresses, or ``"auto"`` (this machine's LAN
    subnet); ``None`` = no scan. ``hosts``: ``HOST[:PORT]`` typed in by hand
    (Tailscale ``100.x`` too). ``hostnames``: ``NAME.local`` names to resolve over mDNS.
    ``recheck_s``: how often known paths are probed again (fallback, loss, return).
    """

    interfaces: tuple[str, ...] = ()
    mdns: bool = True
    scan: str | None = None
    scan_port: int = API_PORT
    scan_limits: ScanLimits = field(default_factory=ScanLimits)
    hosts: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    api_port: int = API_PORT
    probe_timeout_s: float = 1.5
    resolve_timeout_s: float = 2.0
    recheck_s: float = 2.0
    probe_concurrency: int = 16

    def __post_init__(self) -> None:
        for name in ("interfaces", "hosts", "hostnames"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        for name in ("hosts", "hostnames"):
            for item in getattr(self, name):
                try:
                    (parse_host if name == "hosts" else normalize_hostname)(item)
                except ValueError as exc:
                    raise ConfigError(f"{name}: {exc}") from None
        if self.scan is not None and self.scan.strip().lower() != "auto":
            scan_targets(self.scan)  # raises DiscoveryError for a bad or too large range
        for name in ("probe_timeout_s", "resolve_timeout_s", "recheck_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0")
        if not 1 <= self.api_port <= 65535 or not 1 <= self.scan_port <= 65535:
            raise ConfigError("ports must be in 1-65535")
        if self.probe_concurrency < 1 or self.scan_limits.concurrency < 1:
            raise ConfigError("concurrency must be >= 1")


class _Closed:
    pass


_CLOSED = _Closed()


class EventStream:
    """Async iterator of :data:`DiscoveryEvent`; ends when the :class:`Discovery` closes.

    Starts with a :class:`CameraAdded` for each camera already answering, so a late
    subscriber misses nothing. ``close()`` unsubscribes early.
    """

    def __init__(self, owner: Discovery, initial: Iterable[DiscoveryEvent]) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[DiscoveryEvent | _Closed] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self.dropped = 0
        for e in initial:
            self.push(e)

    def push(self, item: DiscoveryEvent | _Closed) -> None:
        if isinstance(item, _Closed):
            while self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(item)
        elif self._queue.full():
            self.dropped += 1
        else:
            self._queue.put_nowait(item)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> DiscoveryEvent:
        item = await self._queue.get()
        if isinstance(item, _Closed):
            self.push(_CLOSED)  # stay ended for further calls
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        self._owner._unsubscribe(self)
        self.push(_CLOSED)


Listener = Callable[[DiscoveryEvent], None]


class Discovery:
    """Finds camera nodes by every configured path and keeps one merged view.

    Use as ``async with``. :meth:`cameras` is the current snapshot; :meth:`events`
    and :meth:`add_listener` deliver :class:`CameraAdded`,
    :class:`CameraAddressChanged`, :class:`CameraLost` and :class:`DiscoveryWarning`.
    """

    def __init__(
        self,
        config: DiscoveryConfig,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        connect: Connect = tcp_connect,
    ) -> None:
        self.config = config
        self._clock = clock
        self._connect = connect
        self._registry = CameraRegistry()
        self._streams: set[EventStream] = set()
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._browser: MdnsBrowser | None = None
        self._mdns: Mdns | None = None
        self._hosts = [parse_host(h, config.api_port) for h in config.hosts]
        # hostname (no trailing dot) -> API port; configured names and names seen via mDNS
        self._hostnames: dict[str, int] = {
            normalize_hostname(n).rstrip("."): config.api_port for n in config.hostnames
        }
        self._configured_hostnames = frozenset(self._hostnames)
        self._first_round = asyncio.Event()
        self._scan_done = asyncio.Event()
        self.scan_report: ScanReport | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start every configured path. Raises DiscoveryError if mDNS cannot start."""
        cfg = self.config
        scan_cidr = resolve_scan_range(cfg.scan) if cfg.scan is not None else None
        if scan_cidr is not None:
            scan_targets(scan_cidr)
        try:
            if cfg.mdns:
                self._mdns = Mdns(cfg.interfaces)
                self._browser = self._mdns.browser(
                    self._on_mdns_sighting,
                    self._on_mdns_removed,
                    self._on_mdns_problem,
                    default_port=cfg.api_port,
                    resolve_timeout_s=max(cfg.resolve_timeout_s, 1.0),
                )
                self._browser.start()
        except BaseException:
            await self.aclose()
            raise
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch(), name="discover-watch"))
        if scan_cidr is not None:
            self._tasks.append(loop.create_task(self._scan(scan_cidr), name="discover-scan"))
        else:
            self._scan_done.set()

    async def aclose(self) -> None:
        """Stop every path, close sockets, end every event stream."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._browser is not None:
            await self._browser.close()
        if self._mdns is not None:
            await self._mdns.close()
        for stream in list(self._streams):
            stream.push(_CLOSED)
        self._streams.clear()
        self._changed.set()

    # -- what callers use --------------------------------------------------------

    def cameras(self) -> list[CameraInfo]:
        """Every camera seen so far (lost ones with ``answering=False``), sorted by id."""
        return self._registry.cameras()

    def paths(self, camera_id: str) -> list[PathInfo]:
        """The paths by which a camera is known (addresses, sources), preferred first."""
        return self._registry.paths_of(camera_id)

    def warnings(self) -> list[DiscoveryWarning]:
        """Every distinct warning so far (bad announcements, unreachable hosts, conflicts)."""
        return self._registry.warnings()

    def events(self) -> EventStream:
        """Subscribe to events (see :class:`EventStream`)."""
        initial = [CameraAdded(c) for c in self._registry.cameras() if c.answering]
        stream = EventStream(self, initial)
        if self._closed:
            stream.push(_CLOSED)
        else:
            self._streams.add(stream)
        return stream

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on the event loop for every event; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def report_unreachable(self, camera_id: str, host: str | None = None) -> None:
        """Tell discovery that ``host`` (default: the address in use) of a camera failed,
        e.g. the recorder's stream broke. Another path takes over if one answers; the
        next probe round restores the path if it answers again."""
        self._emit(self._registry.report_unreachable(camera_id, self._clock(), host))

    async def wait_until(
        self, predicate: Callable[[list[CameraInfo]], bool], timeout_s: float
    ) -> list[CameraInfo]:
        """Wait until ``predicate(cameras())`` holds; raise TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                cams = self.cameras()
                if predicate(cams):
                    return cams
                if self._closed:
                    raise DiscoveryError("discovery closed while waiting")
                await self._changed.wait()

    async def settled(self) -> None:
        """Wait for the first probe round of manual hosts and hostnames and for the scan."""
        await self._first_round.wait()
        await self._scan_done.wait()

    # -- internals ---------------------------------------------------------------

    def _unsubscribe(self, stream: EventStream) -> None:
        self._streams.discard(stream)

    def _emit(self, events: list[DiscoveryEvent]) -> None:
        if not events:
            return
        for event in events:
            if isinstance(event, DiscoveryWarning):
                log.info("%s", event)  # callers get warnings(); no second print of each
            for stream in self._streams:
                stream.push(event)
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # a broken listener must not stop discovery
                    log.exception("discovery listener failed on %r", event)
        # Wake everyone waiting on a condition, then re-arm.
        self._changed.set()
        self._changed = asyncio.Event()

    def _on_mdns_sighting(self, s: Sighting, problems: list[str]) -> None:
        if (
            s.hostname
            and s.hostname not in self._hostnames
            and len(self._hostnames) < MAX_PROBED_HOSTNAMES
        ):
            self._hostnames[s.hostname] = s.port  # seen before: the prober keeps asking
        self._emit(self._registry.observe(s, self._clock(), problems))

    def _on_mdns_removed(self, name: str) -> None:
        self._emit(self._registry.remove(Source.MDNS, name, self._clock()))

    def _on_mdns_problem(self, name: str, message: str) -> None:
        self._emit(self._registry.warn(Source.MDNS, name, message, self._clock()))

    async def _fetch(self, host: str, port: int, timeout_s: float) -> tuple[NodeStatus, list[str]]:
        # Connections are bounded by the probe round's and the scan's semaphores.
        return await fetch_status(host, port, timeout_s)

    def _observe_status(
        self,
        source: Source,
        key: str,
        addresses: tuple[str, ...],
        port: int,
        status: NodeStatus,
        problems: list[str],
        hostname: str = "",
    ) -> None:
        s = Sighting(source, key, status.name, status.model, status.role, addresses, port, hostname)
        self._emit(self._registry.observe(s, self._clock(), problems))

    async def _scan(self, cidr: str) -> None:
        cfg = self.config

        def on_node(host: str, port: int, status: NodeStatus, problems: list[str]) -> None:
            self._observe_status(Source.SCAN, f"{host}:{port}", (host,), port, status, problems)

        try:
            self.scan_report = await scan(
                cidr, cfg.scan_port, self._fetch, on_node,
                limits=cfg.scan_limits, connect=self._connect,
            )  # fmt: skip
        finally:
            self._scan_done.set()

    async def _watch(self) -> None:
        while True:
            await self._probe_round()
            self._first_round.set()
            await asyncio.sleep(self.config.recheck_s)

    async def _probe_round(self) -> None:
        cfg = self.config
        sem = asyncio.Semaphore(cfg.probe_concurrency)
        jobs: list[Callable[[], Awaitable[None]]] = []
        for host, port in self._hosts:
            jobs.append(functools.partial(self._probe_manual, host, port))
        for hostname, port in list(self._hostnames.items()):
            jobs.append(functools.partial(self._probe_hostname, hostname, port))
        for source in (Source.MDNS, Source.SCAN):
            for _, key in self._registry.path_keys(source):
                jobs.append(functools.partial(self._recheck, source, key))

        budget = cfg.resolve_timeout_s + 2 * cfg.probe_timeout_s + 0.5

        async def bounded(job: Callable[[], Awaitable[None]]) -> None:
            async with sem:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(budget):
                        await job()

        async with asyncio.TaskGroup() as tg:
            for job in jobs:
                tg.create_task(bounded(job))

    async def _probe_manual(self, host: str, port: int) -> None:
        key = f"{host}:{port}"
        try:
            status, problems = await self._fetch(host, port, self.config.probe_timeout_s)
        except CameraError as exc:
            now = self._clock()
            self._emit(self._registry.set_answering(Source.MANUAL, key, False, now))
            self._emit(self._registry.warn(Source.MANUAL, key, exc.cause, now))
            return
        self._observe_status(Source.MANUAL, key, (host,), port, status, problems)

    async def _probe_hostname(self, hostname: str, port: int) -> None:
        configured = hostname in self._configured_hostnames
        addresses: list[str] = []
        if self._mdns is not None:
            addresses = await self._mdns.resolve(hostname, self.config.resolve_timeout_s)
        now = self._clock()
        if not addresses:
            self._emit(self._registry.set_answering(Source.HOSTNAME, hostname, False, now))
            if configured:
                why = "mDNS is off" if self._mdns is None else "no mDNS answer for this name"
                self._emit(self._registry.warn(Source.HOSTNAME, hostname, why, now))
            return
        ordered = order_addresses(addresses)
        cause = ""
        for address in ordered[:2]:
            try:
                status, problems = await self._fetch(address, port, self.config.probe_timeout_s)
            except CameraError as exc:
                cause = exc.cause
                continue
            self._observe_status(
                Source.HOSTNAME, hostname, ordered, port, status, problems, hostname
            )
            return
        now = self._clock()
        self._emit(self._registry.set_answering(Source.HOSTNAME, hostname, False, now))
        if configured:
            self._emit(self._registry.warn(Source.HOSTNAME, hostname, cause, now))

    async def _recheck(self, source: Source, key: str) -> None:
        s = self._registry.sighting((source, key))
        if s is None:
            return
        try:
            status, _ = await self._fetch(s.host, s.port, self.config.probe_timeout_s)
        except CameraError:
            self._emit(self._registry.set_answering(source, key, False, self._clock()))
            return
        if (status.name.casefold(), status.model.casefold()) == (
            s.name.casefold(),
            s.model.casefold(),
        ) or source == Source.MDNS:
            # mDNS identity comes from TXT; the answer only proves the node is alive.
            self._emit(self._registry.set_answering(source, key, True, self._clock()))
        else:
            self._observe_status(source, key, s.addresses, s.port, status, [])


@dataclass(frozen=True, slots=True)
class Survey:
    """What one bounded run of discovery found (``mmrec discover``, ``mmrec bench --discover``)."""

    cameras: tuple[CameraInfo, ...]
    warnings: tuple[DiscoveryWarning, ...]
    scan: ScanReport | None


async def survey(config: DiscoveryConfig, listen_s: float) -> Survey:
    """Run discovery for ``listen_s`` seconds, then until its scan and first probe round
    end (within their own bounds); what it found."""
    async with Discovery(config) as disc:
        await asyncio.sleep(listen_s)  # listening is the job: announcements arrive over time
        # A scan or first probe round still running gets the time its own bounds allow.
        bound = config.scan_limits.total_s + config.resolve_timeout_s + config.probe_timeout_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(bound):
                await disc.settled()
        return Survey(tuple(disc.cameras()), tuple(disc.warnings()), disc.scan_report)
