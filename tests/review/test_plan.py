"""The proxies' plan, without pixels: which frame every output frame shows, per camera.

The same scenario as test_proxy.py's ``three`` take, decided without reading or encoding
anything: the renderer draws exactly this (test_proxy.py checks the pixels). The grid is
the export's (:func:`mmrec.timeline.grid.take_grid`), the slot rule the export's.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mmrec.review import ProxyOptions
from mmrec.review.plan import ProxyPlan, plan_proxies
from mmrec.timeline.grid import FrameGrid, day_grid
from mmrec.timeline.timecode import day_clock

NS = 1_000_000_000
TEN = 10 * 3600 * NS  # take time 0 is 10:00:00


@dataclass(frozen=True, slots=True)
class F:
    """A source frame: camera and number, at a time on the take timeline."""

    cam: str
    n: int
    time_ns: int


class Source:
    """A camera's frames as the plan fetches them (by number, never going back)."""

    def __init__(self, frames: list[F]) -> None:
        self.frames = frames
        self.asked: list[int] = []

    def at(self, i: int) -> F:
        assert not self.asked or i >= self.asked[-1]
        self.asked.append(i)
        return self.frames[i]


def camera(name: str, spans: list[tuple[float, float]], fps: float = 15.0) -> list[F]:
    """Frames captured 5 ms into each frame interval of ``fps`` over ``spans``."""
    out: list[F] = []
    for a, b in spans:
        k = 0
        while a + k / fps < b - 1e-9:
            out.append(F(name, len(out), round((a + k / fps) * NS) + 5_000_000))
            k += 1
    return out


A = camera("A", [(0.0, 2.0)])
B = camera("B", [(0.4, 1.4)])
C = camera("C", [(0.0, 0.6), (1.4, 2.0)])
OPTS = ProxyOptions(height=120, fps=Fraction(15), gap_s=0.25, multiview_size=(640, 360))


def grid_of(cams: list[list[F]], fps: Fraction = Fraction(15)) -> FrameGrid:
    return day_grid(
        day_clock(TEN, fps), min(c[0].time_ns for c in cams), max(c[-1].time_ns for c in cams)
    )


def plan_three(opts: ProxyOptions = OPTS) -> ProxyPlan:
    cams = [A, B, C]
    sizes = [(320, 240), (320, 240), (240, 320)]
    return plan_proxies(grid_of(cams), [[f.time_ns for f in c] for c in cams], sizes, opts)


def numbers(frames: list[F | None]) -> list[int | None]:
    return [None if f is None else f.n for f in frames]


def test_every_output_frame_shows_the_frame_of_its_slot_held_across_a_short_silence() -> None:
    plan = plan_three()
    assert plan.grid.frames == 30  # 2 s at 15 fps: the union of all spans
    out = list(plan.frames([Source(A), Source(B), Source(C)]))
    assert [o.k for o in out] == list(range(30))
    a, b, c = (numbers([o.shown[i] for o in out]) for i in range(3))
    assert a == list(range(30))
    # B runs 0.4..1.4 s: NO SIGNAL before and after, as its exported MOV shows filler
    assert b == [None] * 6 + list(range(15)) + [None] * 9
    # C is silent for 0.87 s, longer than the gap (0.25 s): NO SIGNAL throughout
    assert c == list(range(9)) + [None] * 12 + list(range(9, 18))


def test_a_frame_shown_again_is_held_and_a_gap_is_never_held() -> None:
    # a camera that misses a frame: its last picture is held across the silence
    missed = [f for f in A if f.n != 10]
    grid = grid_of([A])
    plan = plan_proxies(grid, [[f.time_ns for f in missed]], [(320, 240)], OPTS)
    out = list(plan.frames([Source(missed)]))
    assert [o.held[0] for o in out] == [False] * 10 + [True] + [False] * 19
    assert out[10].shown[0] is out[9].shown[0]
    for o in plan_three().frames([Source(A), Source(B), Source(C)]):
        for shown, held in zip(o.shown, o.held, strict=True):
            assert not (shown is None and held)
    # at 15 fps a 7.5 fps camera's frames are each shown twice: new, then held
    slow = camera("S", [(0.0, 2.0)], fps=7.5)
    plan = plan_proxies(grid_of([slow]), [[f.time_ns for f in slow]], [(320, 240)], OPTS)
    held = [o.held[0] for o in plan.frames([Source(slow)])]
    assert held[:8] == [False, True] * 4


def test_timecodes_are_the_time_of_day_of_each_slot() -> None:
    plan = plan_three()
    out = list(plan.frames([Source(A), Source(B), Source(C)]))
    assert plan.start_timecode == out[0].timecode == "10:00:00:00"
    assert out[14].timecode == "10:00:00:14"
    assert out[15].timecode == "10:00:01:00"  # 15 frames a second
    assert [o.t_ns for o in out] == [plan.grid.instant(k) for k in range(30)]


def test_sizes_keep_each_camera_aspect_and_decode_for_the_larger_use() -> None:
    plan = plan_three()
    assert plan.sizes == ((160, 120), (160, 120), (90, 120))  # portrait C
    assert plan.multiview_size == (640, 360) and len(plan.multiview_cells) == 3
    # a 320x240 picture needs 160x120 for its proxy, ~240x180 for its multiview tile
    assert plan.picture_size(0, 320, 240) == (240, 180)
    alone = plan_three(ProxyOptions(height=120, fps=Fraction(15), multiview=False))
    assert alone.multiview_size is None and alone.multiview_cells == ()
    assert alone.picture_size(0, 320, 240) == (160, 120)


def test_the_contact_sheet_shows_the_most_cameras_or_the_instant_asked_for() -> None:
    # all three cameras have a picture only in slots 6-8 (B from 0.4 s, C until 0.6 s)
    assert plan_three().contact_k == 8  # the one of those nearest the middle
    at = plan_three(ProxyOptions(height=120, fps=Fraction(15), contact_at=0.5))
    assert at.contact_k == 7  # the slot 0.5 s holds
    late = plan_three(ProxyOptions(height=120, fps=Fraction(15), contact_at=99.0))
    assert late.contact_k == late.grid.frames - 1  # clamped to the last frame


def test_frames_are_read_only_as_far_as_the_slots_need() -> None:
    sources = [Source(A), Source(B), Source(C)]
    out = plan_three().frames(sources)
    for _ in range(5):
        next(out)
    assert sources[0].asked == [0, 1, 2, 3, 4]
    assert sources[1].asked == []  # nothing of B shown yet
