"""Find camera nodes and list them: name, model, role, address, how found, answering.

Paths, all merged into one row per camera (identity = deviceName + model, not IP):
  mdns      Bonjour browse of _mmcam._tcp.local. (always on unless --no-mdns)
  hostname  NAME.local resolved over mDNS, then GET /status (--hostname; names seen
            via mDNS are re-probed too, to catch nodes whose announcements are missed)
  scan      opt-in subnet scan (--scan): TCP connect to port 8081 on each address,
            then GET /status must answer a camera node's JSON. Only addresses inside
            the given range are ever probed; at most 256 of them (a /24).
  manual    hosts typed in by hand (--host), e.g. Tailscale 100.x addresses; they
            are also the fallback when a node's LAN path stops answering.

Runs for --timeout seconds (and until a --scan finishes), prints a table, or JSON
with --json. Exit status 0 if any camera answers, 1 if none was found.

examples:
  mmrec discover --interface 127.0.0.1                 # mDNS on loopback only (rehearsal)
  mmrec discover --interface 127.0.0.1 --json          # for scripts
  mmrec discover --interface 127.0.0.1 --scan 127.0.0.0/24
  mmrec discover --interface 192.168.1.20 --scan auto  # this LAN's own subnet
  mmrec discover --host 100.101.102.103 --host 192.168.1.31:8081
  mmrec discover --hostname iphone-16-plus.local --timeout 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mmrec.commands import options
from mmrec.discover import CameraInfo, DiscoveryWarning, ScanReport, survey
from mmrec.errors import ConfigError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=options.LISTEN_S,
        metavar="S",
        help=f"how long to listen, in seconds (default {options.LISTEN_S:g}; nodes announce"
        " within 1-3 s)",
    )
    options.add_discovery(parser)
    options.add_output(parser, json_help="print JSON instead of a table")


def camera_json(camera: CameraInfo, now_ns: int) -> dict[str, Any]:
    """One camera as a JSON object (the shape ``--json`` prints)."""
    return {
        "id": camera.id,
        "deviceName": camera.name,
        "model": camera.model,
        "role": camera.role,
        "host": camera.host,
        "port": camera.port,
        "stream_url": camera.stream_url,
        "status_url": camera.status_url,
        "found_by": sorted(camera.found_by),
        "answering": camera.answering,
        "last_seen_s_ago": round(max(0, now_ns - camera.last_seen_ns) / 1e9, 3),
    }


def warning_json(w: DiscoveryWarning) -> dict[str, str]:
    return {"source": str(w.source), "subject": w.subject, "message": w.message}


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        raise ConfigError("--timeout must be > 0")
    config = options.discovery_config(options.discovery_spec(args))
    found = asyncio.run(survey(config, args.timeout))
    cameras, warnings, report = list(found.cameras), list(found.warnings), found.scan
    now = time.monotonic_ns()
    if args.json:
        doc: dict[str, Any] = {
            "cameras": [camera_json(c, now) for c in cameras],
            "warnings": [warning_json(w) for w in warnings],
        }
        if report is not None:
            doc["scan"] = {
                "range": report.cidr,
                "targets": report.targets,
                "open_ports": report.open_ports,
                "nodes": report.nodes,
                "timed_out": report.timed_out,
            }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(cameras, warnings, report)
    return 0 if any(c.answering for c in cameras) else 1


def _print_table(
    cameras: list[CameraInfo], warnings: list[DiscoveryWarning], report: ScanReport | None
) -> None:
    # Piped output gets a wide table rather than rich's 80-column default.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    table = Table(title=f"{len(cameras)} camera node(s)")
    for col in ("name", "model", "role", "address", "port", "found by", "answering", "id"):
        table.add_column(col, overflow="fold")
    for c in cameras:
        # Node-supplied text goes in as Text, never as markup.
        table.add_row(
            Text(c.name),
            Text(c.model),
            Text(c.role),
            Text(c.host),
            str(c.port),
            ", ".join(sorted(c.found_by)),
            Text("yes", style="green") if c.answering else Text("no", style="red"),
            Text(c.id),
            style=None if c.answering else "dim",
        )
    console.print(table)
    if report is not None:
        bound = " (stopped at its time bound)" if report.timed_out else ""
        console.print(
            f"scan {report.cidr}: {report.targets} addresses, {report.open_ports} open,"
            f" {report.nodes} camera node(s){bound}",
            highlight=False,
        )
    err = Console(stderr=True, soft_wrap=True)
    for w in warnings:
        err.print(f"[yellow]warning:[/] {escape(str(w))}", highlight=False)
