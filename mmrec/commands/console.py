"""The shoot console: one session for a whole shoot day, in a web page.

Keeps every camera connected and its clock warm across takes, keeps the live multiview
running, and serves the console page: per camera state, fps, Mbit/s, latency, drops,
reconnects, clock sync, last error and the node's own events; record/stop with scene,
take and note (takes auto-increment); elapsed time and timecode; disk free and
recording time left; alerts until acknowledged; the last take's contact sheet and the
list of takes; the device map; commands to every node at once. Also a JSON API and
Prometheus metrics at /metrics.

Safe by default: it listens on 127.0.0.1 only. Any other --bind needs the token, which
is printed as part of the URL (as Jupyter does); every change is a POST carrying the
token, and only known Host names are answered (a DNS rebinding guard; --allow-host adds
one).

The first line on stdout is the URL to open; the rest goes to stderr. Ctrl-C (or
SIGTERM) finalizes a take being recorded and stops.

examples:
  mmrec console --sim 4                          # rehearse with 4 simulated phones
  mmrec console --discover                       # every node on the shoot WiFi
  mmrec console --config configs/example-shoot.toml --preroll 2
  mmrec console A=192.168.43.21 B=192.168.43.22 --out /media/ssd/takes
  mmrec console 192.168.43.21 --out /media/a --relay /media/b   # named by its /status
  mmrec console --discover --bind 0.0.0.0        # reachable from the LAN: token URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mmrec.commands import options
from mmrec.config import CameraSpec, ShootConfig, load_config
from mmrec.errors import ConfigError
from mmrec.session.engine import PreviewOptions
from mmrec.session.recording import WriteOptions
from mmrec.store.memory import keep_freed_memory

if TYPE_CHECKING:
    from mmrec.console.shoot import ShootOptions

DEFAULT_PORT = 8095
TOKEN_ENV = "MMREC_CONSOLE_TOKEN"


def configure(p: argparse.ArgumentParser) -> None:
    options.add_cameras(p)
    p.add_argument("--config", type=Path, metavar="FILE", help="shoot config (TOML), see configs/")
    options.add_output(p, out_help="folder for takes (default: ./takes)")
    p.add_argument(
        "--preroll",
        type=float,
        default=0.0,
        metavar="S",
        help="keep S seconds of every camera in memory; a take then begins S seconds before"
        " Record was pressed (memory: about S x fps x frame size per camera, e.g. 2 s of"
        " 1080p30 at 200 KB = 12 MB)",
    )
    p.add_argument(
        "--segment-seconds", type=float, metavar="S", help="a new file every S seconds (0: off)"
    )
    p.add_argument(
        "--writer-threads",
        type=int,
        default=4,
        metavar="N",
        help="most threads writing files, shared by all cameras (4)",
    )
    p.add_argument("--buffered-io", action="store_true", help="no O_DIRECT (see mmrec record)")
    p.add_argument(
        "--preview-fps",
        type=float,
        default=10.0,
        metavar="FPS",
        help="rate of the live multiview on the page and in preview.mkv (10); lower it to "
        "leave more CPU to recording",
    )
    p.add_argument(
        "--sim", type=int, default=0, metavar="N", help="also start N simulated camera nodes"
    )
    p.add_argument("--sim-size", default="1920x1080", metavar="WxH", help="(1920x1080)")
    p.add_argument("--sim-fps", type=float, default=30.0, metavar="FPS", help="(30)")
    w = p.add_argument_group("web console")
    w.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to listen on (127.0.0.1; any other needs the token)",
    )
    w.add_argument(
        "--port", type=int, default=DEFAULT_PORT, metavar="PORT", help=f"({DEFAULT_PORT}; 0: any)"
    )
    w.add_argument(
        "--token",
        metavar="TEXT",
        help=f"the access token (default: ${TOKEN_ENV}, else a new random one)",
    )
    w.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name the console may be reached by (e.g. a proxy's); repeatable",
    )
    options.add_timeouts(p)
    options.add_disk(p)
    options.add_discovery(p, opt_in="add every node found, including late joiners")


def _settings(args: argparse.Namespace) -> tuple[ShootConfig, list[CameraSpec]]:
    cfg = load_config(args.config) if args.config else ShootConfig()
    cams = options.cameras(args.cameras, cfg)
    if not 1 <= args.writer_threads <= 64:
        raise ConfigError("--writer-threads must be 1-64")
    if not 0 <= args.preroll <= 60:
        raise ConfigError("--preroll must be 0-60 seconds")
    if not 0 <= args.port <= 65535:
        raise ConfigError("--port must be 0-65535")
    if args.sim < 0:
        raise ConfigError("--sim must be 0 or more")
    if not args.preview_fps > 0:
        raise ConfigError("--preview-fps must be positive")
    seg = args.segment_seconds if args.segment_seconds is not None else cfg.segment_seconds
    if seg < 0 or 0 < seg < 1:
        raise ConfigError("--segment-seconds must be 0 (off) or at least 1")
    options.ingest_config(args)
    options.disk_options(args)
    discovery = options.discovery_spec(args, cfg.discovery)
    if not cams and not args.sim and not discovery.enabled:
        raise ConfigError(
            "no cameras: give URLs (mmrec console http://HOST:8081/stream), --config FILE, "
            "--discover to add every node found, or --sim N to rehearse with simulated phones"
        )
    return (
        ShootConfig(
            cameras=tuple(cams),
            out=args.out or cfg.out,
            segment_seconds=seg,
            discovery=discovery,
        ),
        cams,
    )


def shoot_options(args: argparse.Namespace, settings: ShootConfig) -> ShootOptions:
    """How the session records: as ``mmrec record`` would with the same options (the
    shared groups of :mod:`mmrec.commands.options`: timeouts, disk)."""
    from mmrec.console.shoot import ShootOptions

    relays, sync_interval, write_run = options.disk_options(args)
    return ShootOptions(
        out=settings.out,
        write=WriteOptions(
            segment_seconds=settings.segment_seconds,
            direct_io=not args.buffered_io,
            relays=relays,
        ),
        sync_interval=sync_interval,
        write_run=write_run,
        ingest=options.ingest_config(args),
        preview=PreviewOptions(port=None, fps=args.preview_fps),
        preroll_s=args.preroll,
        writer_threads=args.writer_threads,
    )


def run(args: argparse.Namespace) -> int:
    settings, cams = _settings(args)
    keep_freed_memory()
    return asyncio.run(_console(args, settings, cams))


def _say(text: str) -> None:
    print(f"mmrec console: {text}", file=sys.stderr, flush=True)


async def _console(args: argparse.Namespace, settings: ShootConfig, cams: list[CameraSpec]) -> int:
    from mmrec.console.access import Access
    from mmrec.console.shoot import Shoot
    from mmrec.console.web import ConsoleServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    access = Access.for_bind(
        args.bind, args.token or os.environ.get(TOKEN_ENV) or None, tuple(args.allow_host)
    )
    shoot = Shoot(shoot_options(args, settings), token_required=access.token_required)
    async with contextlib.AsyncExitStack() as stack:
        if args.sim:
            from mmrec.sim.process import start_sim_process

            sim_cams = await stack.enter_async_context(
                start_sim_process(args.sim, size=args.sim_size, fps=args.sim_fps)
            )
            cams += [CameraSpec(name, url) for name, url in sim_cams]
        server = ConsoleServer(shoot, access, args.bind, args.port)
        await server.start()  # first: a taken port is said before any camera is connected
        try:
            await shoot.start(cams)
            if settings.discovery.enabled:
                from mmrec.session.follow import discover_into

                disc_cfg = options.discovery_config(settings.discovery)
                shoot.discovery = await discover_into(stack, shoot.session, disc_cfg, cams)
            print(server.url, flush=True)  # the one line on stdout: what to open
            _say(f"{len(cams)} camera(s); takes go to {settings.out}; Ctrl-C stops")
            if access.token_required:
                _say("listening beyond loopback: the URL above carries the access token")
            await stop.wait()
        finally:
            _say("stopping (a take being recorded is finalized)…")
            await server.stop()
            await shoot.close()
    return 0
