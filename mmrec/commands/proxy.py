"""Make synced review proxies of a recorded take: one H.264 MP4 per camera, a multiview
of all cameras, and a contact sheet.

The proxies are cut on the same frame grid as `mmrec export`'s MOVs, and named after
them: the same base names, rate, start timecode and length, and in every frame the same
picture, so an editor relinks each proxy to its original. Every file starts at the same
instant and has the same length (the first frame of any camera to the last frame of any
camera), with the timecode in its metadata and burned into the picture with the camera's
name. Where a camera has no frame (not started yet, disconnected, stopped) its proxy shows
a black NO SIGNAL frame. A take left behind by a crash still gives proxies of what is on
disk, with a warning.

Files go to TAKE_DIR/proxies/ unless --out says otherwise:
  <camera>.mp4  multiview.mp4  contact-sheet.jpg
The contact sheet shows an instant where the most cameras have a picture (or --at).

examples:
  mmrec proxy takes/20240611-101500                   # 540p proxies + multiview
  mmrec proxy takes/20240611-101500 --height 360 --fps 25
  mmrec proxy takes/20240611-101500 --at 12.5 --no-multiview --out /tmp/review
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mmrec.commands.options import add_output
from mmrec.commands.progress import frame_progress, warner
from mmrec.errors import ConfigError
from mmrec.review import ProxyOptions, make_proxies
from mmrec.timeline.rate import parse_rate


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}") from None
    if not sep or size[0] < 16 or size[1] < 16 or size[0] % 2 or size[1] % 2:
        raise argparse.ArgumentTypeError(f"expected even WxH of at least 16x16, got {text!r}")
    return size


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("take", type=Path, metavar="TAKE_DIR", help="a take folder (has manifest.json)")
    add_output(p, out_help="output folder (TAKE_DIR/proxies)")
    p.add_argument("--height", type=int, default=540, metavar="PX", help="proxy height (540)")
    p.add_argument(
        "--fps",
        metavar="RATE",
        help="frame rate: 30, 25, 29.97 or 30000/1001 (the take's, as mmrec export chooses "
        "it: give export's --fps here too)",
    )
    p.add_argument(
        "--gap",
        "--hold",
        dest="gap",
        type=float,
        default=0.5,
        metavar="S",
        help="across a silence of at most S seconds hold the camera's last picture; a "
        "longer one shows NO SIGNAL throughout (0.5; --hold is the same, as in mmrec export)",
    )
    p.add_argument(
        "--multiview-size",
        type=_size,
        metavar="WxH",
        help="multiview frame size (16:9 at the proxy height, e.g. 960x540)",
    )
    p.add_argument("--no-multiview", action="store_true", help="do not write multiview.mp4")
    p.add_argument(
        "--at",
        type=float,
        metavar="S",
        help="contact sheet instant, seconds from the proxies' start (where the most "
        "cameras have a picture)",
    )
    p.add_argument("--no-contact-sheet", action="store_true", help="no contact-sheet.jpg")
    p.add_argument(
        "--preset",
        default="ultrafast",
        choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"),
        help="x264 preset (ultrafast)",
    )
    p.add_argument(
        "--qp", type=int, default=23, metavar="N", help="x264 constant quantizer, lower=better (23)"
    )
    p.add_argument(
        "--crf", type=int, metavar="N", help="x264 CRF rate control instead of --qp (slower)"
    )
    p.add_argument(
        "--multiview-bframes",
        type=int,
        default=1,
        metavar="N",
        help="B-frames between the multiview's P-frames, at the same quantizer (1; "
        "-1: as the preset says)",
    )
    p.add_argument(
        "--threads", type=int, default=2, metavar="N", help="worker threads (2: one per core)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="render each camera's proxy as a task on the Ray cluster at ADDRESS, on the host "
        "that recorded it (its files are there) or anywhere (shared storage); the multiview "
        "from their results. Needs pip install 'mmrec[cluster]'. No contact sheet",
    )


def options(args: argparse.Namespace) -> ProxyOptions:
    fps = parse_rate(args.fps) if args.fps else None
    if args.height < 16 or args.height > 4320:
        raise ConfigError("--height must be between 16 and 4320")
    if args.gap <= 0:
        raise ConfigError("--gap must be positive")
    if not -1 <= args.multiview_bframes <= 16:
        raise ConfigError("--multiview-bframes must be between -1 and 16")
    if args.threads < 1:
        raise ConfigError("--threads must be at least 1")
    for name, value in (("--qp", args.qp), ("--crf", args.crf)):
        if value is not None and not 0 <= value <= 51:
            raise ConfigError(f"{name} must be between 0 and 51")
    return ProxyOptions(
        height=args.height // 2 * 2,
        fps=fps,
        gap_s=args.gap,
        multiview=not args.no_multiview,
        multiview_size=args.multiview_size,
        contact_at=args.at,
        contact_sheet=not args.no_contact_sheet,
        preset=args.preset,
        qp=args.qp,
        crf=args.crf,
        multiview_bframes=None if args.multiview_bframes < 0 else args.multiview_bframes,
        threads=args.threads,
        out=args.out,
    )


def run(args: argparse.Namespace) -> int:
    opts = options(args)
    err = Console(stderr=True)
    out = Console()

    if args.cluster:
        return _run_cluster(args, opts, err, out, warner(err))
    with frame_progress("proxies", err, quiet=args.quiet) as progress:
        result = make_proxies(args.take, opts, progress=progress, warn=warner(err))

    summary = (
        f"{result.frames} frames at {result.fps} fps ({result.duration_s:.2f} s), "
        f"start timecode {result.start_timecode}, in {result.seconds:.1f} s "
        f"({result.duration_s / max(result.seconds, 1e-9):.1f}x real time)"
    )
    t = Table()
    for col in ("file", "size", "read", "decoded", "bad", "no signal"):
        t.add_column(col, justify="left" if col == "file" else "right")
    for c in result.cameras:
        t.add_row(
            c.path.name,
            f"{c.size[0]}x{c.size[1]}",
            str(c.source_frames),
            str(c.decoded),
            str(c.decode_errors),
            str(c.gap_frames),
        )
    if result.multiview is not None:
        t.add_row(result.multiview.name, "", "", "", "", "")
    if result.contact_sheet is not None:
        t.add_row(result.contact_sheet.name, "", "", "", "", "")
    out.print(summary, soft_wrap=True)  # one line, never cut
    out.print(t)
    out.print(f"written to {result.out_dir}", soft_wrap=True)
    return 0


def _run_cluster(
    args: argparse.Namespace,
    opts: ProxyOptions,
    err: Console,
    out: Console,
    warn: Callable[[str], None],
) -> int:
    """Each camera's proxy as a Ray task (mmrec.cluster.proxies); imports Ray."""
    from rich.progress import BarColumn, Progress, TextColumn

    from mmrec.cluster import require_ray

    require_ray("--cluster")
    from mmrec.cluster.coordinator import connect
    from mmrec.cluster.proxies import make_cluster_proxies

    connect(args.cluster)
    if args.quiet:
        result = make_cluster_proxies(args.take, opts, warn=warn)
    else:
        with Progress(
            TextColumn("proxies on the cluster"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} cameras"),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("proxies", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = make_cluster_proxies(args.take, opts, progress=progress, warn=warn)
    t = Table(
        title=f"{len(result.cameras)} proxies in {result.seconds:.1f} s", title_justify="left"
    )
    for col in ("file", "host", "frames", "seconds"):
        t.add_column(col, justify="left" if col in ("file", "host") else "right")
    for c in result.cameras:
        t.add_row(c.path.name, c.host or "any", str(c.frames), f"{c.seconds:.1f}")
    if result.multiview is not None:
        t.add_row(result.multiview.name, "here", "", "")
    out.print(t)
    out.print(f"written to {result.out_dir}", soft_wrap=True)
    return 0
