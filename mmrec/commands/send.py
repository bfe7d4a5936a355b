"""Send one HTTP request to many camera nodes at once and show each node's answer.

The same method, path and body go to every node at the same time; each answer (status
and body) or failure (refused, timed out) is shown per node once all have answered or
--deadline has passed. Nodes are given as URLs/hosts, in a --config file, or found with
--discover (listening --listen seconds first). Exit status 0 when every node answered
2xx, 1 otherwise.

examples:
  mmrec send --discover --interface 127.0.0.1 --body '{"action": "ping"}'
  mmrec send 192.168.43.21 192.168.43.22 --path /command --body '{"torch": true}'
  mmrec send --config shoot.toml --method GET --path /status --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from mmrec.commands import options
from mmrec.config import ShootConfig, camera_arg, load_config
from mmrec.errors import ConfigError
from mmrec.ingest.command import METHODS, Command, CommandTarget, fan_out
from mmrec.ingest.stream import StreamTarget
from mmrec.store.take import to_jsonable


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("nodes", nargs="*", metavar="URL|NAME=URL", help="nodes (HOST means :8081)")
    p.add_argument("--config", type=Path, metavar="FILE", help="shoot config: its cameras")
    p.add_argument("--method", default="POST", choices=METHODS, help="(POST)")
    p.add_argument("--path", default="/command", metavar="PATH", help="(/command)")
    p.add_argument("--body", default="", metavar="TEXT", help="request body (JSON for POST)")
    p.add_argument(
        "--deadline", type=float, default=3.0, metavar="S", help="answers within S seconds (3)"
    )
    p.add_argument(
        "--listen",
        type=float,
        default=options.LISTEN_S,
        metavar="S",
        help=f"with --discover: listen this long first ({options.LISTEN_S:g})",
    )
    options.add_output(p, json_help="print the answers as JSON")
    options.add_discovery(p, opt_in="send to every node found")


async def _targets(args: argparse.Namespace) -> list[CommandTarget]:
    cfg = load_config(args.config) if args.config else ShootConfig()
    out: dict[tuple[str, int], CommandTarget] = {}
    for name, url in [(c.name, c.url) for c in cfg.cameras] + [camera_arg(v) for v in args.nodes]:
        t = StreamTarget.from_url(name, url)
        out.setdefault((t.host, t.port), CommandTarget(name, t.host, t.port))
    spec = options.discovery_spec(args, cfg.discovery)
    if spec.enabled:
        from mmrec.discover import survey

        found = await survey(options.discovery_config(spec), args.listen)
        for cam in found.cameras:
            if cam.answering:
                out.setdefault((cam.host, cam.port), CommandTarget(cam.id, cam.host, cam.port))
    if not out:
        raise ConfigError("no nodes: give URLs or hosts, --config FILE, or --discover")
    return list(out.values())


def run(args: argparse.Namespace) -> int:
    command = Command(args.method, args.path, args.body.encode())
    if not 0 < args.deadline <= 60:
        raise ConfigError("--deadline must be 0-60 seconds")

    async def go() -> list[object]:
        return list(await fan_out(await _targets(args), command, deadline_s=args.deadline))

    answers = asyncio.run(go())
    ok = all(getattr(a, "ok", False) for a in answers)
    if args.json:
        rows = [{**to_jsonable(a), "ok": getattr(a, "ok", False)} for a in answers]
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        t = Table(title=f"{command.method} {command.path} to {len(answers)} node(s)")
        for col in ("node", "url", "status", "ms", "answer"):
            t.add_column(col, overflow="fold")
        for a in answers:
            d = to_jsonable(a)
            status = "failed" if d["error"] else str(d["status"])
            answer = d["error"] or d["body"]
            # Text(): a node's words are never read as rich markup
            t.add_row(
                Text(d["node"]), Text(d["url"]), status, f"{d['elapsed_ms']:.0f}", Text(answer)
            )
        Console().print(t)
    return 0 if ok else 1
