"""Run simulated camera nodes (phones) on loopback: MJPEG, status, events and mDNS.

Each node serves, like the phone app:
  GET /stream   multipart/x-mixed-replace MJPEG (Content-Length, X-Timestamp per part)
  GET /status   JSON: deviceName, model, role, apiPort, width, height, fps, clock, counters
  GET /events   Server-Sent Events: a heartbeat each second with the clock and frame number,
                "state" when it stalls or resumes, "command" when it receives one
  POST /command a JSON object (a command from the console or mmrec send): answered as JSON
and is advertised as _mmcam._tcp.local. over mDNS bound to 127.0.0.1 only (--no-mdns: off).

Nodes sit on consecutive loopback addresses at one port (127.0.0.11:8081, 127.0.0.12:8081,
... as on a real mesh where every phone uses 8081), or with --port-step on consecutive
ports of one address. Every frame is a real JPEG carrying a COM record
"mmcam-sim node=<name> frame=<n> true_ns=<host capture time, ns>"; X-Timestamp is the
node's own clock (see --clock-offset, --drift-ppm). Runs until Ctrl-C or --duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import replace

from mmrec.commands import options
from mmrec.errors import ConfigError
from mmrec.sim import NodeConfig, Quirk, SimMesh, auto_ring_length, parse_quirks

EPILOG = """\
examples:
  mmrec sim --nodes 4                          # cam-01..cam-04 on 127.0.0.11-14:8081
  mmrec sim --nodes 2 --bind 127.0.1.11        # 127.0.1.11-12:8081 (keeps clear of others)
  mmrec sim --nodes 16 --port-step --bind 127.0.0.1 --port 9000   # 127.0.0.1:9000-9015
  mmrec sim --nodes 3 --port 0 --json          # ephemeral ports, node list as JSON on stdout
  mmrec sim --nodes 1 --width 640 --height 480 --fps 15 --quality 70 --duration 10
  mmrec sim --nodes 2 --clock-offset 0.25 --drift-ppm 40 --jitter-ms 8 --delay-ms 60
  mmrec sim --nodes 1 --drop-every 10 --stall-at 5 --stall-for 2 --disconnect-at 12
  mmrec sim --nodes 1 --clock-step-at 10 --clock-step -10   # its clock steps back 10 s
  mmrec sim --nodes 1 --quirk no-length --quirk lf      # quirks combine
  mmrec sim --nodes 4 --sent-log sent.jsonl --duration 30  # what each connection got

  ffmpeg -f mpjpeg -i http://127.0.0.11:8081/stream -frames:v 30 -f null -
  curl -s http://127.0.0.11:8081/status ; curl -sN http://127.0.0.11:8081/events

quirks (imitating real servers; repeat --quirk or separate with commas):
  no-length          parts without Content-Length
  quoted-boundary    boundary="mmcamsim" in the Content-Type
  dash-boundary      boundary=--mmcamsim declared, so parts are delimited by ----mmcamsim
  lf                 LF-only line ends (HTTP head, part headers, delimiters)
  no-first-boundary  the first part starts with its headers, no boundary before it
  octet-stream       response Content-Type application/octet-stream, body still multipart
  http10             HTTP/1.0 status line with Connection: close
  blank-lines        an extra blank line before and after every part
  chunked            Transfer-Encoding: chunked, one chunk per part
  no-boundary-param  multipart/x-mixed-replace without boundary= (like ffmpeg's mpjpeg)
  wrong-length       Content-Length 3 bytes too long on even frames, 3 too short on odd
  raw-jpeg           application/octet-stream body of back-to-back JPEGs, no multipart

Per-node knobs apply to every node unless --faulty K limits them to the first K nodes.
Frame n is captured at start + n/fps; dropped, stalled or missed frames are never sent.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    g = parser.add_argument_group("nodes and addresses")
    g.add_argument("--nodes", "-n", type=int, default=4, metavar="N", help="node count (4)")
    g.add_argument(
        "--name-prefix", default="cam", metavar="P", help="names are P-01, P-02, ... (cam)"
    )
    g.add_argument(
        "--bind",
        "--base-host",
        dest="bind",
        default="127.0.0.11",
        metavar="ADDR",
        help="first node's loopback address, the next ones count up (127.0.0.11); "
        "with --port-step or --port 0 every node uses it",
    )
    g.add_argument("--port", type=int, default=8081, help="listen port (8081); 0 = ephemeral")
    g.add_argument(
        "--port-step",
        action="store_true",
        help="one address, consecutive ports (port, port+1, ...) instead of one address each",
    )
    g.add_argument("--no-mdns", action="store_true", help="do not advertise _mmcam._tcp")
    g.add_argument("--model", default="mmcam-sim", help="model in /status and TXT (mmcam-sim)")
    g.add_argument("--role", default="camera", help="role in /status and TXT (camera)")

    f = parser.add_argument_group("frames")
    f.add_argument("--width", type=int, default=1920, help="frame width (1920)")
    f.add_argument("--height", type=int, default=1080, help="frame height (1080)")
    f.add_argument("--fps", type=float, default=30.0, help="frames per second (30)")
    f.add_argument("--quality", type=int, default=85, help="JPEG quality 1-100 (85)")
    f.add_argument(
        "--ring",
        type=int,
        default=0,
        metavar="FRAMES",
        help="pre-encoded frames per node (0 = auto: 30, fewer for many large nodes)",
    )

    k = parser.add_argument_group("clock and faults (per node)")
    k.add_argument("--clock-offset", type=float, default=0.0, metavar="S",
                   help="X-Timestamp offset from the host clock, seconds")  # fmt: skip
    k.add_argument("--drift-ppm", type=float, default=0.0, metavar="PPM",
                   help="device clock drift, parts per million")  # fmt: skip
    k.add_argument("--clock-step-at", type=float, metavar="S",
                   help="the device clock steps once at S seconds (an NTP step)...")  # fmt: skip
    k.add_argument("--clock-step", type=float, default=0.0, metavar="S",
                   help="...by S seconds (negative: back)")  # fmt: skip
    k.add_argument("--spread", action="store_true",
                   help="vary offset and drift across nodes (node i gets i/N of each)")  # fmt: skip
    k.add_argument("--jitter-ms", type=float, default=0.0, metavar="MS",
                   help="random extra send delay per frame, 0..MS")  # fmt: skip
    k.add_argument("--delay-ms", type=float, default=0.0, metavar="MS",
                   help="capture-to-send delay (encode/queue time)")  # fmt: skip
    k.add_argument("--burst-every", type=float, default=0.0, metavar="S",
                   help="every S seconds, hold frames back for --burst-ms, then send them "
                   "back to back (WiFi bursts)")  # fmt: skip
    k.add_argument("--burst-ms", type=float, default=0.0, metavar="MS",
                   help="how long a burst holds frames back")  # fmt: skip
    k.add_argument("--drop-prob", type=float, default=0.0, metavar="P",
                   help="drop each frame with probability P (never sent)")  # fmt: skip
    k.add_argument("--drop-every", type=int, default=0, metavar="N",
                   help="drop every Nth frame")  # fmt: skip
    k.add_argument("--stall-at", type=float, metavar="S",
                   help="stop sending at S seconds, sockets stay open")  # fmt: skip
    k.add_argument("--stall-for", type=float, metavar="S",
                   help="resume after S seconds (default: stay stalled)")  # fmt: skip
    k.add_argument("--disconnect-at", type=float, metavar="S",
                   help="drop all client connections once at S seconds")  # fmt: skip
    k.add_argument("--quirk", action="append", default=[], metavar="NAME",
                   help="wire quirk, repeatable (see the list below)")  # fmt: skip
    k.add_argument("--faulty", type=int, metavar="K",
                   help="apply the clock/fault/quirk knobs to the first K nodes only")  # fmt: skip

    o = parser.add_argument_group("run and output")
    o.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    options.add_output(o, json_help="print the node list as one JSON line")
    o.add_argument(
        "--sent-log",
        metavar="FILE",
        help="JSON lines: what each node and connection sent (rewritten each second)",
    )


def configs_from_args(args: argparse.Namespace) -> list[NodeConfig]:
    """The node configs the command line asks for (ConfigError on bad values)."""
    n = args.nodes
    if not 1 <= n <= 1024:
        raise ConfigError(f"--nodes {n}: use 1 to 1024")
    quirks: frozenset[Quirk] = parse_quirks(args.quirk)
    ring = args.ring or auto_ring_length(n, args.width, args.height)
    width = max(2, len(str(n)))
    faulty = n if args.faulty is None else max(0, args.faulty)
    out: list[NodeConfig] = []
    for i in range(n):
        base = NodeConfig(
            name=f"{args.name_prefix}-{i + 1:0{width}d}",
            width=args.width,
            height=args.height,
            fps=args.fps,
            quality=args.quality,
            model=args.model,
            role=args.role,
            ring=ring,
        )
        if i < faulty:
            share = (i + 1) / n if args.spread else 1.0
            base = replace(
                base,
                clock_offset_s=args.clock_offset * share,
                drift_ppm=args.drift_ppm * share,
                clock_step_at=args.clock_step_at,
                clock_step_s=args.clock_step,
                jitter_ms=args.jitter_ms,
                delay_ms=args.delay_ms,
                burst_every_s=args.burst_every,
                burst_ms=args.burst_ms,
                drop_prob=args.drop_prob,
                drop_every=args.drop_every,
                stall_at=args.stall_at,
                stall_for=args.stall_for,
                disconnect_at=args.disconnect_at,
                quirks=quirks,
            )
        out.append(base)
    return out


def run(args: argparse.Namespace) -> int:
    configs = configs_from_args(args)
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration must be > 0")
    return asyncio.run(_serve(args, configs))


async def _serve(args: argparse.Namespace, configs: list[NodeConfig]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    c0 = configs[0]
    if not args.json:
        print(
            f"mmrec sim: encoding {c0.ring}-frame rings for {len(configs)} node(s) "
            f"at {c0.width}x{c0.height} q{c0.quality} ...",
            file=sys.stderr,
            flush=True,
        )
    mesh = SimMesh(
        configs,
        base_host=args.bind,
        port=args.port,
        port_step=args.port_step,
        mdns=not args.no_mdns,
        sent_log=args.sent_log,
    )
    async with mesh:
        nodes = [
            {
                "name": n.name,
                "host": n.host,
                "port": n.port,
                "url": n.url,
                "base_url": n.base_url,
                "status_url": n.status_url,
                "events_url": n.events_url,
                "width": n.config.width,
                "height": n.config.height,
                "fps": n.config.fps,
                "frame_bytes": round(n.ring.mean_size),
            }
            for n in mesh.nodes
        ]
        if args.json:
            print(json.dumps({"nodes": nodes, "mdns": not args.no_mdns}), flush=True)
        else:
            size = sum(n.ring.mean_size for n in mesh.nodes) / len(mesh.nodes) / 1024
            mdns = "off" if args.no_mdns else "on, 127.0.0.1 only"
            print(
                f"{len(nodes)} node(s), {c0.width}x{c0.height} @ {c0.fps:g} fps, "
                f"~{size:.0f} KB/frame, mDNS {mdns}",
                flush=True,
            )
            w = max(len(n["name"]) for n in nodes)  # type: ignore[arg-type]
            for node in nodes:
                print(f"  {node['name']:<{w}}  {node['url']}", flush=True)
            until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
            print(f"serving {until}", file=sys.stderr, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration)
    if not args.json:
        sent = sum(n.frames_sent for n in mesh.nodes)
        print(f"stopped; {sent} frames sent", file=sys.stderr, flush=True)
    return 0
