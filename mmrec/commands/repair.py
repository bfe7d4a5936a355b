"""Finish a take that its recorder left unfinished (killed, crashed, power cut).

Every segment gets what a clean stop writes (sizes, Cues, SeekHead, Duration), each
camera's index.csv is made to match the frames in its files (rows without their frame
are set aside in index-unmatched.csv, frames without a row are indexed from the file),
and the manifest is brought in line and marked "recovered", with what was fixed. JPEG
bytes are never changed and no file is deleted (the index as it was stays beside it as
index-before-repair.csv). Running it again changes nothing. A take whose recorder is
still running is refused.

examples:
  mmrec repair takes/20240611-101500
  mmrec repair takes/20240611-101500 --check      # say what would be fixed, change nothing
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from mmrec.commands.options import add_output
from mmrec.store.repair import repair_take


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("take", type=Path, metavar="TAKE_DIR", help="a take folder (has manifest.json)")
    p.add_argument(
        "--check", action="store_true", help="only say what would be fixed; change nothing"
    )
    add_output(p, json_help="print what was found and fixed as JSON")


def run(args: argparse.Namespace) -> int:
    report = repair_take(args.take, write=not args.check)
    if args.json:
        json.dump(
            {
                "take": str(report.take_dir),
                "state_before": report.state_before,
                "state_after": report.state_after,
                "fixed": report.fixed,
                "problems": report.problems,
                "changed": report.changed and not args.check,
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return 0
    console = Console(stderr=True, highlight=False, soft_wrap=True)  # a line per fix
    verb = "would fix" if args.check else "fixed"
    for line in report.fixed:
        console.print(f"{verb}: {line}")
    for line in report.problems:
        console.print(f"[yellow]not fixed: {line}[/]")
    if not report.fixed:
        console.print(f"{report.take_dir}: nothing to repair (state {report.state_before!r})")
    elif not args.check:
        console.print(f"{report.take_dir}: {report.state_before!r} -> {report.state_after!r}")
    return 0
