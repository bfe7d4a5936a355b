"""What ``mmrec proxy`` makes, and how: sizes, rate, gaps, the encoder, the threads."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    height: int = 540
    fps: Fraction | None = None  # default: the take's rate, as mmrec export chooses it
    # Across a silence of at most this long a camera's last picture is held; a longer one
    # shows NO SIGNAL throughout (mmrec export's --hold: the same pictures as the MOVs).
    gap_s: float = 0.5
    multiview: bool = True
    multiview_size: tuple[int, int] | None = None  # default: 16:9 at the proxy height
    # seconds from the proxies' start; default: where the most cameras have a picture
    contact_at: float | None = None
    contact_sheet: bool = True
    preset: str = "ultrafast"
    qp: int = 23  # constant quantizer (see mmrec.review.proxy.x264_options)
    crf: int | None = None  # CRF rate control instead of constant QP
    multiview_bframes: int | None = 1  # see x264_options; None: as the preset says
    threads: int = 2  # worker threads: decode, draw and encode
    # Output instants in flight: bounds the frames held and memory (a frame per instant
    # per output: ~0.8 MB each at 960x540, ~94 MB for 4 cameras and the multiview).
    window: int = 24
    out: Path | None = None  # default: TAKE_DIR/proxies
    # Only these cameras' proxies (names or folders; () every camera), still on the
    # grid of the whole take: one camera's proxy rendered apart from the others (a
    # cluster's task per camera, mmrec.cluster.proxies) is the same file.
    cameras: tuple[str, ...] = ()
