"""Command-line option groups that several commands share, each defined once, with one
set of defaults: timeouts (record, console, bench), discovery (discover, record, console,
bench), the disk (``--relay``, ``--sync-interval``: record, console), output (``--json``,
``--out``) and logging (every command, added by :mod:`mmrec.cli`).

Timeouts are the recorder's for every command: ``mmrec bench`` says how a device will
behave when recorded, so it must call a device unreachable or stalled exactly when the
recorder would (bench used 2 s and 3 s before, and so failed devices that a recording
keeps). A phone that is on the WiFi answers within milliseconds; the connect timeout
only matters for one that is waking its radio or gone, where waiting a second longer
costs nothing but the wait.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mmrec.config import CameraSpec, DiscoverySpec, ShootConfig, camera_spec
from mmrec.discover import DiscoveryConfig
from mmrec.errors import ConfigError
from mmrec.ingest.stream import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, IngestConfig, StreamTarget
from mmrec.store.writer import DEFAULT_RUN, DEFAULT_SYNC_INTERVAL, RUN_WAIT_NS
from mmrec.wire.url import API_PORT

LISTEN_S = 3.0
"""How long discovery listens before a list is made: nodes announce within 1-3 s."""


def add_cameras(parser: argparse.ArgumentParser, what: str = "camera streams") -> None:
    """The cameras given by URL on the command line (``cameras``)."""
    parser.add_argument(
        "cameras",
        nargs="*",
        metavar="URL|NAME=URL",
        help=f"{what} (http://HOST:PORT/stream; HOST alone means :8081/stream)",
    )


def add_timeouts(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("timeouts")
    g.add_argument(
        "--connect-timeout",
        type=float,
        default=CONNECT_TIMEOUT_S,
        metavar="S",
        help=f"TCP connect plus the response head ({CONNECT_TIMEOUT_S:g})",
    )
    g.add_argument(
        "--read-timeout",
        type=float,
        default=READ_TIMEOUT_S,
        metavar="S",
        help=f"a camera silent this long is stalled: reconnect ({READ_TIMEOUT_S:g})",
    )


def ingest_config(args: argparse.Namespace) -> IngestConfig:
    """The timeouts as an :class:`IngestConfig`; :class:`ConfigError` if not positive."""
    for flag, value in (
        ("--connect-timeout", args.connect_timeout),
        ("--read-timeout", args.read_timeout),
    ):
        if not value > 0:
            raise ConfigError(f"{flag} must be positive")
    return IngestConfig(connect_timeout=args.connect_timeout, read_timeout=args.read_timeout)


def add_disk(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "disk",
        "Free space and the time it lasts are shown before and during a take, with\n"
        "warnings when it runs low. A camera whose writing fails (disk full, folder removed,\n"
        "I/O error) says so and resumes by itself once it can; nothing is ever deleted.",
    )
    g.add_argument(
        "--relay",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="another output folder that continues the take when the one before fills up "
        "(relay recording; repeatable, used in order)",
    )
    g.add_argument(
        "--sync-interval",
        type=float,
        default=DEFAULT_SYNC_INTERVAL,
        metavar="S",
        help="make every file durable (fdatasync) at least every S seconds, so a power cut "
        f"loses at most that; 0 leaves it to the OS ({DEFAULT_SYNC_INTERVAL:g})",
    )
    g.add_argument(
        "--write-run",
        type=int,
        default=DEFAULT_RUN,
        metavar="N",
        help="write each camera's frames in runs of up to N, one system call per run (less "
        "CPU per frame: see the README's figures); a frame waits at most "
        f"{RUN_WAIT_NS // 10**6} ms for its run, so a crash of mmrec itself (not a power "
        f"cut) may lose that much more of each camera; 1 writes every frame as it arrives "
        f"({DEFAULT_RUN})",
    )


def disk_options(args: argparse.Namespace) -> tuple[tuple[Path, ...], float, int]:
    """The relay folders, the sync interval and the write run; :class:`ConfigError` if
    out of range."""
    if not 0 <= args.sync_interval <= 3600:
        raise ConfigError("--sync-interval must be 0 (off) to 3600 seconds")
    if not 1 <= args.write_run <= 64:
        raise ConfigError("--write-run must be 1 to 64 frames")
    return tuple(args.relay), args.sync_interval, args.write_run


def cameras(values: list[str], cfg: ShootConfig) -> list[CameraSpec]:
    """The shoot config's cameras, then those on the command line (``URL`` or
    ``NAME=URL``); :class:`ConfigError` for a name given twice or an unusable URL (checked
    now, before a take folder is made for nothing)."""
    cams = list(cfg.cameras) + [camera_spec(v) for v in values]
    names = [c.name for c in cams]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"camera name {sorted(dup)[0]!r} is given twice")
    for cam in cams:
        for url in (cam.url, *cam.fallbacks):
            StreamTarget.from_url(cam.name, url)
    return cams


def add_discovery(
    parser: argparse.ArgumentParser, *, opt_in: str | None = None
) -> argparse._ArgumentGroup:
    """Where to look for camera nodes. ``opt_in`` adds ``--discover`` with that help (for
    commands that discover only when asked); ``mmrec discover`` always does. Returns
    the group, for a command's own discovery options."""
    g = parser.add_argument_group(
        "discovery",
        "mDNS (Bonjour) on every interface unless --interface names some; hostnames,\n"
        "hosts typed in by hand, and an opt-in scan that probes only the range given\n"
        "(at most a /24, 32 hosts at a time, 0.4 s connect timeout).",
    )
    if opt_in is not None:
        g.add_argument("--discover", action="store_true", help=opt_in)
    g.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="IP",
        help="address of an interface mDNS may use (repeatable; default: all interfaces)",
    )
    g.add_argument(
        "--scan",
        metavar="CIDR",
        help="also scan this range (at most a /24, e.g. 192.168.1.0/24), or 'auto' for the"
        " LAN interface's own subnet; nothing outside the range is probed",
    )
    g.add_argument(
        "--scan-port",
        type=int,
        default=API_PORT,
        metavar="PORT",
        help=f"port the scan probes ({API_PORT})",
    )
    g.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="a node's address typed in by hand, e.g. a Tailscale 100.x (repeatable)",
    )
    g.add_argument(
        "--hostname",
        action="append",
        default=[],
        metavar="NAME.local",
        help="a node's mDNS hostname to resolve and probe (repeatable)",
    )
    g.add_argument("--no-mdns", action="store_true", help="do not use mDNS at all")
    return g


def discovery_spec(args: argparse.Namespace, base: DiscoverySpec | None = None) -> DiscoverySpec:
    """The discovery options over ``base`` (a shoot config's ``[discovery]``): lists add
    up, a given scan or interface list replaces the file's."""
    base = base or DiscoverySpec()
    return DiscoverySpec(
        enabled=getattr(args, "discover", True) or base.enabled,
        interfaces=tuple(args.interface) or base.interfaces,
        scan=args.scan or base.scan,
        hostnames=base.hostnames + tuple(args.hostname),
        hosts=base.hosts + tuple(args.host),
        mdns=base.mdns and not args.no_mdns,
        scan_port=args.scan_port,
    )


def discovery_config(spec: DiscoverySpec) -> DiscoveryConfig:
    """What :class:`~mmrec.discover.Discovery` needs (ConfigError/DiscoveryError if bad)."""
    return DiscoveryConfig(
        interfaces=spec.interfaces,
        mdns=spec.mdns,
        scan=spec.scan,
        scan_port=spec.scan_port,
        hosts=spec.hosts,
        hostnames=spec.hostnames,
    )


def add_output(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    json_help: str | None = None,
    out_help: str | None = None,
) -> None:
    """``--out DIR`` and ``--json``, each with the help that says what it means here."""
    if out_help is not None:
        parser.add_argument("--out", type=Path, metavar="DIR", help=out_help)
    if json_help is not None:
        parser.add_argument("--json", action="store_true", help=json_help)


def add_logging(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("logging")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what happens on stderr: -v events, -vv debug detail",
    )


def setup_logging(verbose: int) -> None:
    """Warnings only by default; ``-v`` info, ``-vv`` debug. Through rich, so log lines
    stay above a live table instead of tearing it."""
    if verbose <= 0:
        return  # Python's last-resort handler prints warnings and errors as before
    from rich.console import Console
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose == 1 else logging.DEBUG,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_time=False, show_path=False)],
    )
