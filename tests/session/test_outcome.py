"""Outcomes, judged from what is known of a camera's take (pure): one word and the words.

complete < gaps < lost < nothing; the take's is the worst of its cameras'; the words say
what went wrong in a crew's terms; the rate is the rate while frames came.
"""

from __future__ import annotations

import pytest

from mmrec.session.outcome import (
    CameraFacts,
    Outcome,
    fps_while_receiving,
    gap_summary,
    judge_camera,
    judge_take,
)

S = 1_000_000_000


def test_a_camera_that_recorded_throughout_is_complete() -> None:
    v = judge_camera(CameraFacts("A", frames=600, connections=1))
    assert v.outcome == Outcome.COMPLETE and v.detail == "600 frames, no interruption"


def test_gaps_say_how_many_how_long_and_why() -> None:
    v = judge_camera(
        CameraFacts(
            "A",
            frames=500,
            gaps=((5 * S, 7 * S), (10 * S, 11_400_000_000)),
            connections=3,
            error="stalled: no data for 5 s",  # history: the camera streams again
            causes=("stalled: no data for 5 s", "the node closed the stream", "stopped"),
        )
    )
    assert v.outcome == Outcome.GAPS
    assert v.detail == (
        "2 gaps, 3.4 s in all (longest 2.0 s): stalled: no data for 5 s; the node closed the stream"
    )


def test_frames_dropped_by_mmrec_are_lost_whatever_the_camera_did() -> None:
    v = judge_camera(CameraFacts("A", frames=900, dropped=12, connections=1))
    assert v.outcome == Outcome.LOST
    assert v.detail == (
        "mmrec lost 12 frames: the disk did not keep up (the camera's write queue was full)"
    )
    err = "camera 'A': cannot write: No space left on device"
    v = judge_camera(CameraFacts("A", frames=900, dropped=843, write_error=err, gaps=((S, 3 * S),)))
    assert v.outcome == Outcome.LOST
    assert v.detail == (
        "mmrec lost 843 frames: cannot write: No space left on device; also 1 gap of 2.0 s"
    )


@pytest.mark.parametrize(
    ("facts", "detail"),
    [
        (
            CameraFacts("A", 0, error="camera 'A': cannot connect to 127.0.0.1:9: "
                        "Connection refused"),
            "never streamed: cannot connect to 127.0.0.1:9: Connection refused",
        ),
        (CameraFacts("A", 0, error="HTTP 404 Not Found"), "never streamed: HTTP 404 Not Found"),
        (CameraFacts("A", 0), "never streamed"),
        (
            CameraFacts("A", 0, connections=1, skipped_parts=40),
            "connected, but sent no JPEG (40 part(s) that were not JPEG)",
        ),
        (
            CameraFacts("A", 0, connections=1, error="stalled: no data for 5 s"),
            "connected, but no frame arrived; then stalled: no data for 5 s",
        ),
        (
            CameraFacts("A", 0, dropped=120, write_error="camera 'A': cannot open A/seg-0000.mkv: "
                        "Read-only file system", connections=1),
            "all 120 frames received were lost by mmrec: cannot open A/seg-0000.mkv: "
            "Read-only file system",
        ),
    ],
)  # fmt: skip
def test_nothing_recorded_says_why(facts: CameraFacts, detail: str) -> None:
    v = judge_camera(facts)
    assert v.outcome == Outcome.NOTHING and v.detail == detail


def test_the_take_is_the_worst_of_its_cameras() -> None:
    assert [o.severity for o in Outcome] == [0, 1, 2, 3]
    take = judge_take(
        [
            ("A", Outcome.COMPLETE),
            ("B", Outcome.GAPS),
            ("C", Outcome.NOTHING),
            ("D", Outcome.LOST),
            ("E", Outcome.GAPS),
        ]
    )
    assert take.outcome == Outcome.NOTHING
    assert take.detail == (
        "1 of 5 camera(s) complete; nothing recorded: C; frames lost by mmrec: D; gaps: B, E"
    )
    assert judge_take([("A", Outcome.COMPLETE), ("B", Outcome.COMPLETE)]).outcome == "complete"
    assert judge_take([("A", Outcome.GAPS), ("B", Outcome.LOST)]).outcome == "lost"
    none = judge_take([])
    assert none.outcome == Outcome.NOTHING and none.detail == "no camera was recorded"


def test_fps_is_the_rate_while_frames_came() -> None:
    """Live at 30 fps for 10 s, away 10.4 s, live again 10 s: 30, not frames over the take."""
    period = S // 30
    first = [i * period for i in range(300)]
    back = first[-1] + 10_400_000_000
    second = [back + i * period for i in range(300)]
    gaps = ((first[-1], back),)
    fps = fps_while_receiving(600, first[0], second[-1], gaps)
    assert fps == pytest.approx(30.0, rel=1e-3)
    whole = 600 / ((second[-1] - first[0]) / 1e9 + 0.6)  # what the old summary showed
    assert whole < 20
    # a gap before the first frame (a late start) is not between frames: no effect
    assert fps_while_receiving(600, first[0], second[-1], ((-S, 0), *gaps)) == fps
    assert fps_while_receiving(1, 0, 0, ()) is None
    assert fps_while_receiving(0, None, None, ()) is None


def test_gap_summary() -> None:
    assert gap_summary([(0, 1_250_000_000)]) == "1 gap of 1.2 s"
    assert gap_summary([(0, S), (2 * S, 5 * S)]) == "2 gaps, 4.0 s in all (longest 3.0 s)"
