"""The ``mmrec`` command: one entry point, one subcommand per job.

Each subcommand lives in ``mmrec.commands.<name>`` and provides ``configure(parser)``
and ``run(args) -> int``. Errors from the :mod:`mmrec.errors` tree are printed as one
clear line and exit with status 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol

from mmrec import __version__
from mmrec.commands import options
from mmrec.errors import MmrecError

# (name, one-line help). Order is the order of the data flow.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("sim", "run simulated camera nodes on loopback (rehearsals, tests, benchmarks)"),
    ("discover", "find camera nodes: mDNS, hostname probes, subnet scan, manual hosts"),
    ("record", "record every camera's MJPEG feed to disk, JPEG passthrough"),
    ("console", "the shoot console: one session all day, takes on a web page, metrics"),
    ("send", "send one HTTP request to many camera nodes at once, show each answer"),
    ("bench", "measure each camera's frame rate, bitrate, jitter and latency"),
    ("proxy", "make synced review proxies and a multiview from a recorded take"),
    ("export", "hand a take to an editor: MOVs in sync and FCP XML/FCPXML/EDL timelines"),
    ("repair", "finish a take its recorder left unfinished (a kill, a crash, a power cut)"),
    ("cluster", "several recorder hosts on Ray: bring them up, merge a cluster take"),
)

EPILOG = """\
quick start (no phones needed):
  mmrec sim --nodes 4                 # 4 simulated phones on 127.0.0.11-14:8081
  mmrec record --sim 4 --duration 20  # record them into ./takes/<take-id>/
  mmrec proxy takes/<take-id>         # synced 540p proxies + multiview

Run 'mmrec COMMAND --help' for each command's options.
"""


class _Command(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmrec",
        description="mmrec records, benchmarks and reviews many MJPEG phone cameras at once.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mmrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS:
        try:
            module: _Command = importlib.import_module(f"mmrec.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mmrec.commands.{name}":
                raise
            continue
        p = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(p)
        options.add_logging(p)
        p.set_defaults(_run=module.run, _parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser: its usage, its name
        own: argparse.ArgumentParser = getattr(args, "_parser", parser)
        own.error(f"unrecognized arguments: {' '.join(extra)}")
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    options.setup_logging(args.verbose)
    try:
        return int(run(args))
    except MmrecError as exc:
        print(f"mmrec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
