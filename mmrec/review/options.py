"""What ``mmrec proxy`` makes, and how: sizes, rate, gaps, the encoder, the threads."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from mmrec.picture import h264


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    height: int = 540
    fps: Fraction = Fraction(30)
    gap_s: float = 0.5  # a frame older than this at an instant is a gap (NO SIGNAL)
    multiview: bool = True
    multiview_size: tuple[int, int] | None = None  # default: 16:9 at the proxy height
    contact_at: float | None = None  # seconds from the proxies' start; default: middle
    contact_sheet: bool = True
    preset: str = "ultrafast"
    qp: int = 23  # constant quantizer (see x264_options)
    crf: int | None = None  # CRF rate control instead of constant QP
    multiview_bframes: int | None = 1  # see x264_options; None: as the preset says
    threads: int = 2  # worker threads: decode, draw and encode
    # Output instants in flight: bounds the frames held and memory (a frame per instant
    # per output: ~0.8 MB each at 960x540, ~94 MB for 4 cameras and the multiview).
    window: int = 24
    out: Path | None = None  # default: TAKE_DIR/proxies


def x264_options(opts: ProxyOptions, multiview: bool = False) -> dict[str, str]:
    """libx264 settings for one output (single-threaded: the outputs run side by side).

    Constant QP by default: with the ultrafast preset, CRF still runs x264's lowres
    complexity analysis on every frame, which measured about a third of the encode time
    (benchmarks/bench_proxy.py); a review proxy does not need the rate control it buys.

    The multiview puts a B-frame between P-frames (``multiview_bframes``, a fixed
    pattern), coded at the same quantizer as the rest (pbratio 1). Its four small pictures
    carry more detail and noise than a proxy, which a P-frame codes again every frame and
    a B-frame, predicted from both sides and not a reference (no half-pel planes), mostly
    skips: measured on bench_proxy's take, 1.31 -> 1.05 ms an encode, half the file size,
    the same PSNR (43.5 dB). The proxies themselves encode slower with B-frames.
    """
    return h264.x264_options(
        opts.preset,
        qp=opts.qp,
        crf=opts.crf,
        threads=1,
        bframes=opts.multiview_bframes if multiview else None,
    )
