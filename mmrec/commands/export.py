"""Hand a take to an editor: one MOV per camera and a multicam timeline, in sync.

Each camera's MOV holds its recorded JPEGs unchanged (no decode, no re-encode) at one
constant frame rate on the take's frame grid: frame k of every MOV is the same frame
interval of the take (the one its timecode names), showing that camera's newest frame
captured by its end. Every MOV has the same number of frames and the same start timecode
(time of day, as the recorded segments' timecodes are), with its colour tagged as the
JPEGs are (full range, BT.601). Where a camera has no picture (before it joined, during an
outage, after it left) its MOV shows a NO SIGNAL frame; a picture held because a frame was
missing is listed in export.json, as every filler is. `mmrec proxy` makes proxies on the
same grid with the same base names, for an editor to relink.

The timeline has one track per camera, aligned on the take, for:
  xml     FCP 7 XML: Premiere Pro, DaVinci Resolve     fcpxml  Final Cut Pro, Resolve
  edl     CMX 3600, one per camera (one video track)   otio    OpenTimelineIO
  mlt     MLT: every camera side by side (melt, Shotcut)

Files go to TAKE_DIR/export/ unless --to says otherwise:
  <camera>.mov ...  <take>.xml  <take>.fcpxml  <take>.<camera>.edl  <take>.otio  <take>.mlt
  export.json (rate, timecode, and per camera every filler and repeated slot)

examples:
  mmrec export takes/20240611-101500                       # everything, whole take
  mmrec export takes/20240611-101500 --cameras A-wide,B-close --formats mov,xml
  mmrec export takes/20240611-101500 --in 10:15:03:00 --out 10:16:00:00
  mmrec export takes/20240611-101500 --in 12.5 --out 40 --to /media/edit/day1
  mmrec export takes/20240611-101500 --fps 29.97           # written as 30000/1001
  melt takes/20240611-101500/export/20240611-101500.mlt    # watch it side by side
"""

from __future__ import annotations

import argparse
import re
from fractions import Fraction
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.table import Table

from mmrec.commands.progress import frame_progress, warner
from mmrec.errors import ConfigError
from mmrec.export.job import DEFAULT_FORMATS, ExportOptions, export_take
from mmrec.export.timeline import parse_formats
from mmrec.timeline.rate import parse_rate

_TIMECODE: Final = re.compile(r"^\d{1,2}[:;]\d{2}[:;]\d{2}[:;]\d{2}$")  # ; drop frame


def _is_point(text: str) -> bool:
    """Whether ``text`` is what --in/--out take: a timecode or seconds (as parse_point)."""
    text = text.strip()
    if ":" in text or ";" in text:
        return bool(_TIMECODE.match(text))
    try:
        Fraction(text)
    except (ValueError, ZeroDivisionError):
        return False
    return True


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("take", type=Path, metavar="TAKE_DIR", help="a take folder (has manifest.json)")
    p.add_argument(
        "--cameras",
        metavar="NAMES",
        help="comma-separated camera names or folders, in track order (every camera)",
    )
    p.add_argument(
        "--in",
        dest="in_point",
        metavar="TC|S",
        help="first frame: a timecode (HH:MM:SS:FF, time of day) or seconds from the take's "
        "start (default: the first frame of any camera)",
    )
    p.add_argument(
        "--out",
        dest="out_point",
        metavar="TC|S",
        help="end, not included: a timecode or seconds (default: after the last frame of "
        "any camera)",
    )
    p.add_argument("--to", type=Path, metavar="DIR", help="output folder (TAKE_DIR/export)")
    p.add_argument(
        "--formats",
        default=",".join(DEFAULT_FORMATS),
        metavar="LIST",
        help=f"what to write, comma-separated ({','.join(DEFAULT_FORMATS)})",
    )
    p.add_argument(
        "--fps",
        metavar="RATE",
        help="frame rate: 30, 25, 29.97 or 30000/1001 (what the cameras said they run at, "
        "else measured from the frames)",
    )
    p.add_argument(
        "--hold",
        type=float,
        default=0.5,
        metavar="S",
        help="across a silence of at most S seconds (a dropped frame) hold the camera's "
        "last picture, listed in export.json; a longer silence shows NO SIGNAL throughout "
        "(0.5; 0: never hold)",
    )
    p.add_argument(
        "--unfinished",
        action="store_true",
        help="export a take that was never finished (crashed) as it is on disk",
    )
    p.add_argument(
        "--threads", type=int, default=2, metavar="N", help="cameras written at once (2)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def options(args: argparse.Namespace) -> ExportOptions:
    if args.hold < 0:
        raise ConfigError("--hold must be 0 or more seconds")
    if args.threads < 1:
        raise ConfigError("--threads must be at least 1")
    for flag, point in (("--in", args.in_point), ("--out", args.out_point)):
        if point is not None and not _is_point(point):
            also = " (the output folder is --to DIR)" if flag == "--out" else ""
            raise ConfigError(
                f"{flag} {point!r}: expected a timecode (HH:MM:SS:FF) or seconds{also}"
            )
    cameras = tuple(c.strip() for c in (args.cameras or "").split(",") if c.strip())
    return ExportOptions(
        cameras=cameras,
        in_point=args.in_point,
        out_point=args.out_point,
        out=args.to,
        formats=parse_formats(args.formats),
        fps=parse_rate(args.fps) if args.fps else None,
        hold_s=args.hold,
        unfinished=args.unfinished,
        threads=args.threads,
    )


def run(args: argparse.Namespace) -> int:
    opts = options(args)
    err = Console(stderr=True)
    out = Console()

    with frame_progress("export", err, quiet=args.quiet) as progress:
        result = export_take(args.take, opts, progress=progress, warn=warner(err))

    summary = (
        f"take {result.take_id}: {result.frames} frames at {result.rate} fps "
        f"({result.duration_s:.2f} s) from {result.start_timecode}, written in "
        f"{result.seconds:.1f} s ({result.duration_s / max(result.seconds, 1e-9):.0f}x "
        "real time)"
    )
    t = Table()
    for col in ("camera", "file", "size", "frames", "held", "no signal", "MB"):
        t.add_column(col, justify="left" if col in ("camera", "file") else "right")
    for c in result.cameras:
        t.add_row(
            c.camera,
            c.file.name if c.file else "-",
            f"{c.size[0]}x{c.size[1]}",
            str(c.fresh),
            str(c.repeats),
            str(c.fillers),
            f"{c.bytes / 1e6:.1f}",
        )
    out.print(summary, soft_wrap=True)  # one line, never cut
    out.print(t)
    if result.timelines:
        out.print("timelines: " + "  ".join(p.name for p in result.timelines), soft_wrap=True)
    out.print(f"written to {result.out_dir} (details: {result.manifest.name})", soft_wrap=True)
    return 0
