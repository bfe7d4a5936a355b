"""The proxies' plan, without pixels: which frame every output frame shows, per camera.

The same scenario as test_proxy.py's ``three`` take, decided without reading or encoding
anything: the renderer draws exactly this (test_proxy.py checks the pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import pytest

from mmrec.errors import MmrecError
from mmrec.review import ProxyOptions
from mmrec.review.plan import (
    OutputTimeline,
    capture_phase,
    output_timeline,
    plan_proxies,
    shown_frames,
)

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class F:
    """A source frame: camera and number, at a time on the take timeline."""

    cam: str
    n: int
    time_ns: int


def camera(name: str, spans: list[tuple[float, float]], fps: float = 15.0) -> list[F]:
    out: list[F] = []
    for a, b in spans:
        k = 0
        while a + k / fps < b - 1e-9:
            out.append(F(name, len(out), round((a + k / fps) * NS)))
            k += 1
    return out


A = camera("A", [(0.0, 2.0)])
B = camera("B", [(0.4, 1.4)])
C = camera("C", [(0.0, 0.6), (1.4, 2.0)])
OPTS = ProxyOptions(height=120, fps=Fraction(15), gap_s=0.25, multiview_size=(640, 360))


def plan_three(opts: ProxyOptions = OPTS):  # type: ignore[no-untyped-def]
    cams = [A, B, C]
    spans = [(c[0].time_ns, c[-1].time_ns) for c in cams]
    sizes = [(320, 240), (320, 240), (240, 320)]
    times = [f.time_ns for c in cams for f in c]
    return plan_proxies(spans, sizes, times, "10:00:00:00", opts)


def numbers(frames: list[F | None]) -> list[int | None]:
    return [None if f is None else f.n for f in frames]


def test_every_output_frame_shows_the_nearest_frame_held_up_to_the_gap() -> None:
    plan = plan_three()
    assert plan.timeline.frames == 30  # 2 s at 15 fps: the union of all spans
    out = list(plan.frames([A, B, C]))
    assert [o.k for o in out] == list(range(30))
    a, b, c = (numbers([o.shown[i] for o in out]) for i in range(3))
    assert a == list(range(30))
    # B runs 0.4..1.4 s: nothing before; its last frame held for the gap (0.25 s)
    assert b == [None] * 6 + list(range(15)) + [14] * 3 + [None] * 6
    # C: held up to the gap threshold, then NO SIGNAL until it comes back
    assert c == list(range(9)) + [8] * 3 + [None] * 9 + list(range(9, 18))


def test_a_frame_shown_again_is_held_and_a_gap_is_never_held() -> None:
    out = list(plan_three().frames([A, B, C]))
    held_c = [o.held[2] for o in out]
    assert held_c == [False] * 9 + [True] * 3 + [False] * 9 + [False] * 9
    for o in out:
        for shown, held in zip(o.shown, o.held, strict=True):
            assert not (shown is None and held)
    # at 15 fps a 7.5 fps camera's frames are each shown twice: new, then held
    slow = camera("S", [(0.0, 2.0)], fps=7.5)
    plan = plan_proxies([(0, slow[-1].time_ns)], [(320, 240)], [], "10:00:00:00", OPTS)
    held = [o.held[0] for o in plan.frames([slow])]
    assert held[:8] == [False, True] * 4


def test_timecodes_count_from_the_take_timecode_at_the_output_rate() -> None:
    plan = plan_three()
    out = list(plan.frames([A, B, C]))
    assert plan.start_timecode == out[0].timecode == "10:00:00:00"
    assert out[14].timecode == "10:00:00:14"
    assert out[15].timecode == "10:00:01:00"  # 15 frames a second
    assert [o.t_ns for o in out] == [plan.timeline.instant(k) for k in range(30)]


def test_sizes_keep_each_camera_aspect_and_decode_for_the_larger_use() -> None:
    plan = plan_three()
    assert plan.sizes == ((160, 120), (160, 120), (90, 120))  # portrait C
    assert plan.multiview_size == (640, 360) and len(plan.multiview_cells) == 3
    # a 320x240 picture needs 160x120 for its proxy, ~240x180 for its multiview tile
    assert plan.picture_size(0, 320, 240) == (240, 180)
    alone = plan_three(ProxyOptions(height=120, fps=Fraction(15), multiview=False))
    assert alone.multiview_size is None and alone.multiview_cells == ()
    assert alone.picture_size(0, 320, 240) == (160, 120)


def test_the_contact_sheet_shows_the_middle_or_the_instant_asked_for() -> None:
    # the first instant at or after the middle of 0 .. 1.933 s (0.967 s): 1.0 s
    assert plan_three().contact_k == 15
    at = plan_three(ProxyOptions(height=120, fps=Fraction(15), contact_at=0.5))
    assert at.contact_k == 8  # 0.533 s
    late = plan_three(ProxyOptions(height=120, fps=Fraction(15), contact_at=99.0))
    assert late.contact_k == late.timeline.frames - 1  # clamped to the last frame


def test_instants_fall_on_the_cameras_capture_phase() -> None:
    period = NS // 30
    times = [k * period + 7_000_000 for k in range(60)]  # captured 7 ms into each period
    phase = capture_phase(times, Fraction(30))
    assert phase is not None and abs(phase - 7_000_000) < 1000
    tl = output_timeline([(times[0], times[-1])], Fraction(30), phase)
    assert abs(tl.instant(0) - 7_000_000) < 1000
    assert capture_phase([], Fraction(30)) is None


def test_frames_are_read_only_as_far_as_the_instants_need() -> None:
    read: list[int] = []

    def frames() -> object:
        for f in A:
            read.append(f.n)
            yield f

    tl = OutputTimeline(0, Fraction(15), 30)
    shown = shown_frames(frames(), tl, NS)  # type: ignore[arg-type]
    for _ in range(5):
        next(shown)
    assert len(read) <= 6  # frames 0..4 shown, frame 5 looked at


def test_no_camera_no_timeline() -> None:
    with pytest.raises(MmrecError):
        output_timeline([], Fraction(30))
