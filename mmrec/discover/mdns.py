"""mDNS: browse ``_mmcam._tcp.local.`` and resolve ``NAME.local`` hostnames.

The only module that imports zeroconf. zeroconf and OSError failures are translated
here: starting on a bad interface raises :class:`~mmrec.errors.DiscoveryError`; a
service or hostname that does not resolve is reported, never raised. Every resolve
is bounded by a timeout and every task this module starts is cancelled by
:meth:`MdnsBrowser.close`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence
from typing import Final

import zeroconf
from zeroconf import Error as ZeroconfError
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from mmrec.discover.model import SERVICE_TYPE, Sighting, sighting_from_mdns
from mmrec.errors import DiscoveryError, ExceptionMap, describe, map_exceptions

OnSighting = Callable[[Sighting, list[str]], None]
_START_ERRORS: Final[ExceptionMap] = {(OSError, ZeroconfError, ValueError): DiscoveryError}
OnRemoved = Callable[[str], None]
OnProblem = Callable[[str, str], None]


def open_zeroconf(interfaces: Sequence[str]) -> AsyncZeroconf:
    """An :class:`AsyncZeroconf` bound to ``interfaces`` (IP addresses; empty = all).

    Must be called with the event loop running. Raises :class:`DiscoveryError` for
    an interface that is not an IP address or cannot be bound.
    """
    versions = set()
    for iface in interfaces:
        try:
            versions.add(ipaddress.ip_address(iface).version)
        except ValueError:
            raise DiscoveryError(
                f"--interface {iface!r} is not an IP address (give the interface's address,"
                " e.g. 127.0.0.1 or 192.168.1.20)"
            ) from None
    if not interfaces:
        choice: InterfaceChoice | list[str] = InterfaceChoice.All
        version = IPVersion.V4Only
    else:
        choice = list(interfaces)
        version = {frozenset({4}): IPVersion.V4Only, frozenset({6}): IPVersion.V6Only}.get(
            frozenset(versions), IPVersion.All
        )
    where = ", ".join(interfaces) or "all interfaces"
    with map_exceptions(_START_ERRORS, f"cannot start mDNS on {where}"):
        return AsyncZeroconf(interfaces=choice, ip_version=version)


async def resolve_hostname(zc: Zeroconf, hostname: str, timeout_s: float) -> list[str]:
    """Addresses of an mDNS ``NAME.local.`` host; empty if none answers in time."""
    # AddressResolver is public API (zeroconf/__init__ imports it for users) but is
    # missing from its __all__, which mypy's strict re-export check reads.
    resolver = zeroconf.AddressResolver(hostname)  # type: ignore[attr-defined]
    try:
        ok = await resolver.async_request(zc, timeout_s * 1000)
    except (OSError, ZeroconfError):
        return []
    return resolver.parsed_scoped_addresses() if ok else []


class Mdns:
    """One zeroconf instance on the chosen interfaces: browse and resolve through it."""

    def __init__(self, interfaces: Sequence[str]) -> None:
        self._azc = open_zeroconf(interfaces)

    def browser(
        self,
        on_sighting: OnSighting,
        on_removed: OnRemoved,
        on_problem: OnProblem,
        *,
        default_port: int,
        resolve_timeout_s: float,
    ) -> MdnsBrowser:
        return MdnsBrowser(
            self._azc.zeroconf,
            on_sighting,
            on_removed,
            on_problem,
            default_port=default_port,
            resolve_timeout_s=resolve_timeout_s,
        )

    async def resolve(self, hostname: str, timeout_s: float) -> list[str]:
        """See :func:`resolve_hostname`; ``hostname`` with or without the trailing dot."""
        return await resolve_hostname(self._azc.zeroconf, hostname.rstrip(".") + ".", timeout_s)

    async def close(self) -> None:
        await self._azc.async_close()


class MdnsBrowser:
    """Browse one service type; report resolved services, removals and problems.

    Callbacks run on the event loop: ``on_sighting(sighting, problems)`` after each
    add or update resolves, ``on_removed(instance_name)``, and
    ``on_problem(instance_name, message)`` for a service that cannot be used at all.
    """

    def __init__(
        self,
        zc: Zeroconf,
        on_sighting: OnSighting,
        on_removed: OnRemoved,
        on_problem: OnProblem,
        *,
        default_port: int,
        resolve_timeout_s: float = 3.0,
        service_type: str = SERVICE_TYPE,
    ) -> None:
        self._zc = zc
        self._on_sighting = on_sighting
        self._on_removed = on_removed
        self._on_problem = on_problem
        self._default_port = default_port
        self._timeout_s = resolve_timeout_s
        self._type = service_type
        self._browser: AsyncServiceBrowser | None = None
        self._resolving: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        self._browser = AsyncServiceBrowser(self._zc, self._type, handlers=[self._on_change])

    async def close(self) -> None:
        tasks = list(self._resolving.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        pending = self._resolving.pop(name, None)
        if pending is not None:
            pending.cancel()  # a newer state supersedes it
        if state_change is ServiceStateChange.Removed:
            self._on_removed(name)
            return
        task = asyncio.get_running_loop().create_task(self._resolve(name))
        self._resolving[name] = task
        task.add_done_callback(lambda t: self._forget(name, t))

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self._resolving.get(name) is task:
            del self._resolving[name]

    async def _resolve(self, name: str) -> None:
        info = AsyncServiceInfo(self._type, name)
        try:
            ok = await info.async_request(self._zc, self._timeout_s * 1000)
        except (OSError, ZeroconfError) as exc:
            self._on_problem(name, f"resolve failed: {describe(exc)}")
            return
        if not ok:
            self._on_problem(name, f"did not resolve within {self._timeout_s:g} s")
            return
        sighting, problems = sighting_from_mdns(
            name,
            info.parsed_scoped_addresses(),
            info.port,
            info.properties,
            info.server,
            default_port=self._default_port,
        )
        if sighting is None:
            for p in problems:
                self._on_problem(name, p)
            return
        self._on_sighting(sighting, problems)
