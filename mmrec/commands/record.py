"""Record every camera's MJPEG feed to disk: JPEG passthrough, one timeline, crash-safe.

Each camera's JPEGs are written unchanged into Matroska files under
OUT/<take-id>/<camera>/, with an index.csv of every frame's timing and a manifest.json
at the take's root that is kept current while recording (so even a crash leaves one).
Stop with Ctrl-C (or SIGTERM, or --duration): every file is finalized within seconds.

Cameras are given as URLs (http://HOST:8081/stream, or just HOST), as NAME=URL, in a
--config file, found on the network with --discover (mDNS, hostname probes, an opt-in
subnet scan; nodes that join mid-take are recorded from the moment they appear), or
started for you with --sim N (built-in simulated phones, no hardware).

examples:
  mmrec record --sim 4 --duration 20              # rehearse with 4 simulated phones
  mmrec record A=http://192.168.43.21:8081/stream B=192.168.43.22 --out /media/ssd/takes
  mmrec record --config configs/example-shoot.toml --name scene-12
  mmrec record --sim 2 --duration 10 --json       # machine-readable summary on stdout
  mmrec record --discover                         # every node on the shoot WiFi, as they come
  mmrec record --discover --interface 127.0.0.1   # only nodes on loopback (e.g. mmrec sim)
  mmrec record --discover --scan 192.168.43.0/24 --host 100.101.7.21

Each camera ends the take with an outcome, and the take with the worst of them (in the
summary, and in manifest.json as "outcome" and "outcome_detail"):
  complete  frames throughout the camera's time in the take; mmrec lost none
  gaps      frames, with interruptions on the camera's side (disconnects, stalls)
  lost      mmrec itself lost frames (write queue full, disk errors)
  nothing   not one frame recorded (unreachable, HTTP error, not MJPEG...)

exit status:
  0  complete: every camera recorded the whole take, and mmrec lost no frame
  2  nothing was recorded: a usage, config or setup error (the message says which)
  3  gaps: every camera recorded, some with interruptions on the camera's side
  4  lost: mmrec itself lost frames of some camera (the summary says why)
  5  nothing: some camera recorded no frame at all (the summary says why)
A take with several of these ends with the worst: 5, then 4, then 3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.live import Live

from mmrec.commands import options
from mmrec.commands.record_view import LiveView, print_summary
from mmrec.config import CameraSpec, ShootConfig, load_config
from mmrec.errors import ConfigError
from mmrec.session.follow import discover_into
from mmrec.session.identify import CameraRequest
from mmrec.session.outcome import Outcome
from mmrec.session.recorder import PreviewOptions, Take
from mmrec.store.memory import keep_freed_memory
from mmrec.store.take import Manifest, to_jsonable

EXIT_STATUS: Final = {
    Outcome.COMPLETE: 0,
    Outcome.GAPS: 3,
    Outcome.LOST: 4,
    Outcome.NOTHING: 5,
}
"""The exit status of ``mmrec record`` for the take's outcome (2 is a usage or config
error, from :mod:`mmrec.cli`; the module docstring, which is ``--help``, lists them)."""


def exit_status(manifest: Manifest) -> int:
    """0 only when every camera recorded the whole take and mmrec lost nothing."""
    return EXIT_STATUS[Outcome(manifest.outcome or Outcome.NOTHING)]


def configure(p: argparse.ArgumentParser) -> None:
    options.add_cameras(p, "camera streams to record")
    p.add_argument("--config", type=Path, metavar="FILE", help="shoot config (TOML), see configs/")
    options.add_output(
        p,
        out_help="folder for takes (default: ./takes)",
        json_help="no live view; print the final summary as JSON",
    )
    p.add_argument("--name", metavar="TEXT", help="a label appended to the take id")
    p.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)"
    )
    p.add_argument(
        "--segment-seconds",
        type=float,
        metavar="S",
        help="start a new file every S seconds (default 0: only when the resolution changes)",
    )
    p.add_argument(
        "--sim",
        type=int,
        metavar="N",
        default=0,
        help="also start N simulated camera nodes (loopback, no mDNS) and record them",
    )
    p.add_argument(
        "--sim-size", default="1920x1080", metavar="WxH", help="simulated frame size (1920x1080)"
    )
    p.add_argument("--sim-fps", type=float, default=30.0, metavar="FPS", help="simulated fps (30)")
    options.add_timeouts(p)
    v = p.add_argument_group(
        "live preview",
        "A tiled mosaic of every camera's newest frame, written to preview.mkv in the take\n"
        "folder and served on 127.0.0.1 (open the URL in a browser, or VLC on /preview.mjpeg).\n"
        "It never costs a recorded frame: when CPU is short it skips tiles, and says so.",
    )
    v.add_argument("--no-preview", action="store_true", help="no live preview")
    v.add_argument(
        "--preview-port", type=int, default=8090, metavar="PORT", help="preview port (8090)"
    )
    v.add_argument(
        "--preview-fps", type=float, default=10.0, metavar="FPS", help="preview rate (10)"
    )
    p.add_argument(
        "--writer-threads",
        type=int,
        default=4,
        metavar="N",
        help="at most N threads writing files, shared by all cameras; one to begin with, "
        "another whenever one falls behind (4)",
    )
    p.add_argument(
        "--muxer",
        choices=("mkv", "pyav"),
        default="mkv",
        help="Matroska writer: mkv = mmrec's own (one write per run of frames, the default), "
        "pyav = libavformat through PyAV",
    )
    p.add_argument(
        "--buffered-io",
        action="store_true",
        help="write through the page cache instead of direct I/O (O_DIRECT, the default "
        "where the file system allows it: steadier CPU at high rates, ~2 KB padding per "
        "frame)",
    )
    options.add_disk(p)
    options.add_discovery(p, opt_in="record every node found, including late joiners")
    c = p.add_argument_group(
        "several recorder hosts (needs pip install 'mmrec[cluster]')",
        "One take across the recorder hosts of a Ray cluster (see 'mmrec cluster --help'):\n"
        "each camera to a host whose network reaches it, one start and stop instant on this\n"
        "machine's clock, one live table, one merged take in OUT/<take-id>/ (each host's part\n"
        "under hosts/<name>/). A host that dies or freezes is reported within seconds while\n"
        "the others record on; the take survives this command (give --duration).",
    )
    c.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="record on the recorder hosts of the Ray cluster at ADDRESS (HEAD:6379)",
    )
    c.add_argument(
        "--hosts",
        type=Path,
        metavar="FILE",
        help="hosts file (TOML: [[host]] name, subnets, streams, cameras pinned to it)",
    )


def _settings(args: argparse.Namespace) -> ShootConfig:
    cfg = load_config(args.config) if args.config else ShootConfig()
    cams = options.cameras(args.cameras, cfg)
    discovery = options.discovery_spec(args, cfg.discovery)
    if not cams and not args.sim and not discovery.enabled:
        raise ConfigError(
            "no cameras: give URLs (mmrec record http://HOST:8081/stream), --config FILE, "
            "--discover to record every node found, or --sim N to rehearse with simulated phones"
        )
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration must be positive")
    if args.segment_seconds is not None and (
        args.segment_seconds < 0 or 0 < args.segment_seconds < 1
    ):
        raise ConfigError("--segment-seconds must be 0 (off) or at least 1")
    options.ingest_config(args)  # checks the timeouts
    if not args.preview_fps > 0:
        raise ConfigError("--preview-fps must be positive")
    if not 0 <= args.preview_port <= 65535:
        raise ConfigError("--preview-port must be 0-65535 (0: any free port)")
    if not 1 <= args.writer_threads <= 64:
        raise ConfigError("--writer-threads must be 1-64")
    if args.sim < 0:
        raise ConfigError("--sim must be 0 or more")
    options.disk_options(args)  # checks the sync interval
    return ShootConfig(
        cameras=tuple(cams),
        out=args.out or cfg.out,
        segment_seconds=(
            args.segment_seconds if args.segment_seconds is not None else cfg.segment_seconds
        ),
        duration=args.duration if args.duration is not None else cfg.duration,
        take_name=args.name or cfg.take_name,
        preview=cfg.preview,
        discovery=discovery,
    )


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.cluster:  # imports Ray; a one-host take never does
        from mmrec.cluster import require_ray
        from mmrec.commands.cluster_record import run_cluster

        require_ray("--cluster")

        return run_cluster(args, settings)
    if args.hosts:
        raise ConfigError("--hosts is for a cluster take (--cluster ADDRESS)")
    keep_freed_memory()  # frame-sized buffers come and go: see mmrec.store.memory
    return asyncio.run(_record(args, settings))


async def _record(args: argparse.Namespace, settings: ShootConfig) -> int:
    console = Console(stderr=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ingest_cfg = options.ingest_config(args)
    relays, sync_interval, write_run = options.disk_options(args)
    async with contextlib.AsyncExitStack() as stack:
        cams = list(settings.cameras)
        if args.sim:
            from mmrec.sim.process import start_sim_process

            sim_cams = await stack.enter_async_context(
                start_sim_process(args.sim, size=args.sim_size, fps=args.sim_fps)
            )
            cams += [CameraSpec(name, url) for name, url in sim_cams]
        take = Take(
            settings.out,
            name=settings.take_name,
            segment_seconds=settings.segment_seconds,
            ingest_config=ingest_cfg,
            muxer=args.muxer,
            writer_threads=args.writer_threads,
            direct_io=not args.buffered_io,
            relays=relays,
            sync_interval=sync_interval,
            write_run=write_run,
            preview=(
                PreviewOptions(port=args.preview_port, fps=args.preview_fps)
                if settings.preview and not args.no_preview
                else None
            ),
            on_event=None if args.json else (lambda text: console.print(f"[dim]{text}[/]")),
        )
        await take.__aenter__()
        try:
            # each asked its /status first: one given by address is named by its deviceName
            await take.join(
                [
                    CameraRequest(c.url, c.name if c.named else None, fallbacks=c.fallbacks)
                    for c in cams
                ]
            )
            await take.recording.announce_forecast()  # free space and how long it lasts
            if settings.discovery.enabled:
                disc_cfg = options.discovery_config(settings.discovery)
                await discover_into(stack, take.session, disc_cfg, cams)
            deadline = loop.time() + settings.duration if settings.duration is not None else None
            view = LiveView(take)
            if args.json:
                await _wait(stop, deadline)
            else:
                console.print(f"recording {len(cams)} camera(s) into {take.dir}  (Ctrl-C to stop)")
                if take.preview is not None and take.preview.url:
                    console.print(f"live preview: {take.preview.url}")
                table = view.table(console.width)
                with Live(table, console=console, refresh_per_second=2) as live:
                    while not stop.is_set():
                        if deadline is not None and loop.time() >= deadline:
                            break
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 0.5)
                        live.update(view.table(console.width))
        finally:
            if not args.json:
                console.print("\nfinalizing files…")
            manifest = await take.close()
    status = exit_status(manifest)
    if args.json:
        json.dump(to_jsonable(manifest), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        preview = None
        if take.preview is not None:
            st = take.preview.stats()
            preview = (
                f"preview: {take.dir / 'preview.mkv'} ({st.fps:.1f} fps achieved, "
                f"{st.tiles_skipped} tiles skipped, {st.late_ticks} late ticks)"
            )
        print_summary(
            console,
            manifest,
            take.dir,
            exit_status=status,
            command=_self_command(),
            preview=preview,
        )
    return status


async def _wait(stop: asyncio.Event, deadline: float | None) -> None:
    loop = asyncio.get_running_loop()
    timeout = None if deadline is None else max(0.0, deadline - loop.time())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)


def _self_command() -> str:
    """How this mmrec was started, so a hint can be pasted as it is (venv or not)."""
    argv0 = sys.argv[0]
    if argv0.endswith("__main__.py"):
        return f"{shlex.quote(sys.executable)} -m mmrec"
    if "/" not in argv0:
        return "mmrec"
    on_path = shutil.which("mmrec")  # the same program by its short name: say it that way
    if on_path and os.path.realpath(on_path) == os.path.realpath(argv0):
        return "mmrec"
    return shlex.quote(argv0)
