"""What ``mmrec record`` shows, read back from a recorded 80-column terminal.

One line per camera whatever its name or error (the full text is in the manifest), the
current error only, fps while live, gaps as a count and a length, a camera whose files
fail never shown as live; the summary says what went wrong in words and suggests a
review only when something was recorded.
"""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len
from rich.console import Console

from mmrec.commands.record_view import live_table, print_summary, summary_table
from mmrec.ingest.stream import CameraState, IngestStats
from mmrec.session.takecamera import CameraStatus
from mmrec.store.files import WriterStats
from mmrec.store.take import CameraEntry, Manifest

LONG = "B-close-up-on-the-left-side-of-the-stage"
REFUSED = f"camera {LONG!r}: cannot connect to 192.168.43.100:8081: Connection refused"


def _status(
    name: str,
    state: CameraState,
    *,
    error: str | None = None,
    write_error: str | None = None,
    frames: int = 300,
    dropped: int = 0,
    gaps: tuple[int, int] = (0, 0),
) -> CameraStatus:
    ingest = IngestStats(state, frames, frames * 20_000, 0, 0, 1, 2, error, 0, 0)
    writer = WriterStats(
        frames, frames * 20_000, dropped, 0, (f"{name}/seg-0000.mkv",), 1920, 1080,
        0, 10_000, 0, 0, write_error,
    )  # fmt: skip
    return CameraStatus(name, name, "http://h/stream", ingest, writer, gaps[0], gaps[1])


def _render(renderable: object, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return [line.rstrip() for line in console.export_text().splitlines()]


def _rows() -> list[tuple[CameraStatus, float | None, float | None]]:
    return [
        # streaming again after an outage: its old error is history
        (_status("A-wide", CameraState.STREAMING, error="stalled: no data for 5 s"), 29.97, 41.2),
        (_status(LONG, CameraState.BACKOFF, error=REFUSED, gaps=(2, 3_400_000_000)), 0.0, 0.0),
        (
            _status(
                "C",
                CameraState.STREAMING,
                write_error="camera 'C': cannot write: No space left on device",
                dropped=843,
            ),
            30.0,
            40.0,
        ),
        (_status("D", CameraState.CONNECTING), None, None),
    ]


def test_live_table_is_one_line_per_camera_at_80_columns() -> None:
    lines = _render(live_table("take 20240611-101500-scene-12  12.3 s", _rows(), 80), 80)
    assert all(cell_len(line) <= 80 for line in lines)
    title, header, rule, *rows = lines
    assert title.startswith("take 20240611-101500-scene-12  12.3 s")
    assert header.split() == ["camera", "state", "fps", "frames", "lost", "gaps", "error"]
    assert set(rule) == {"─"}
    assert len(rows) == 4  # one line each, nothing folded
    a, b, c, d = rows
    assert a.split() == ["A-wide", "live", "30.0", "300", "0", "0"]  # no stale error
    assert b.startswith("B-close-up-on-the-l…") and " retry " in b
    assert " 2 3.4s " in b and "cannot connect to 192." in b
    assert b.rstrip().endswith("…")  # shortened, not wrapped
    assert "camera 'B" not in b  # the row already names the camera
    assert c.split()[:5] == ["C", "error", "30.0", "300", "843"]  # files failing: not "live"
    assert "cannot write: No space" in c
    assert d.split() == ["D", "conn", "-", "300", "0", "0"]


def test_live_table_shows_more_columns_when_wide() -> None:
    lines = _render(live_table("take t  1.0 s", _rows(), 160, caption="preview x"), 160)
    header = lines[1].split()
    assert header == [
        "camera", "state", "fps", "Mbit/s", "frames", "lost", "gaps", "recon", "size", "error",
    ]  # fmt: skip
    assert f"{LONG} " in lines[4]  # a 40-character name fits here...
    assert lines[4].rstrip().endswith("cannot connect to 192.168.43.100:8081: Connection refused")
    assert lines[-1] == "preview x"


def _entry(name: str, outcome: str, detail: str, **kw: object) -> CameraEntry:
    return CameraEntry(name, name, "http://h/stream", outcome=outcome, outcome_detail=detail, **kw)  # type: ignore[arg-type]


def _manifest(*cams: CameraEntry, outcome: str, detail: str) -> Manifest:
    return Manifest(
        take_id="20240611-101500",
        started_utc="2024-06-11T08:15:00Z",
        start_realtime_ns=0,
        timecode="10:15:00:00",
        cameras=cams,
        state="finished",
        duration_ns=20_000_000_000,
        outcome=outcome,
        outcome_detail=detail,
    )


def test_summary_says_what_went_wrong_per_camera_and_the_exit_status(tmp_path: Path) -> None:
    m = _manifest(
        _entry("A-wide", "complete", "600 frames, no interruption", frames=600, fps=30.0),
        _entry(
            LONG, "gaps", "1 gap of 3.4 s: stalled: no data for 5 s", frames=498, fps=29.97,
            gaps=((5_000_000_000, 8_400_000_000),),
        ),
        _entry("C", "nothing", "never streamed: HTTP 404 Not Found"),
        outcome="nothing",
        detail="1 of 3 camera(s) complete; nothing recorded: C; gaps: " + LONG,
    )  # fmt: skip
    console = Console(width=80, record=True, color_system=None)
    print_summary(console, m, tmp_path / m.take_id, exit_status=5, command="mmrec")
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    title, header, _, a, b, c, *words = lines
    assert title == "take 20240611-101500: 20.0 s, timecode 10:15:00:00"
    assert header.split() == ["camera", "outcome", "frames", "fps", "gaps", "lost", "MB"]
    assert a.split() == ["A-wide", "complete", "600", "30.0", "0", "0", "0.0"]
    # the rate while live (29.97), not frames over the take (24.9)
    assert b.split()[1:] == ["gaps", "498", "30.0", "1", "3.4s", "0", "0.0"]
    assert c.split() == ["C", "nothing", "0", "-", "0", "0", "0.0"]
    assert all(cell_len(line) <= 80 for line in (title, header, a, b, c))
    text = "\n".join(words)
    assert f"  {LONG}: 1 gap of 3.4 s: stalled: no data for 5 s" in text
    assert "  C: never streamed: HTTP 404 Not Found" in text
    assert "A-wide:" not in text  # a complete camera needs no words
    assert "outcome: nothing (exit status 5): 1 of 3 camera(s) complete" in text
    assert f"review: mmrec proxy {tmp_path / m.take_id}" in text
    assert "mmrec export" in text


def test_summary_suggests_no_review_when_nothing_was_recorded(tmp_path: Path) -> None:
    why = "never streamed: cannot connect to 127.0.0.1:9: Connection refused"
    m = _manifest(
        _entry("127.0.0.1:9", "nothing", why),
        outcome="nothing",
        detail="0 of 1 camera(s) complete; nothing recorded: 127.0.0.1:9",
    )
    console = Console(width=80, record=True, color_system=None)
    print_summary(console, m, tmp_path, exit_status=5, command="mmrec")
    text = console.export_text()
    assert f"127.0.0.1:9: {why}" in text
    assert "proxy" not in text and "export" not in text
    assert "nothing was recorded: there is nothing to review" in text


def test_summary_table_fits_80_columns_with_long_names() -> None:
    names = [LONG, LONG + "-2", "x" * 60]
    m = _manifest(
        *(_entry(n, "complete", "", frames=1) for n in names), outcome="complete", detail=""
    )
    lines = _render(summary_table(m, 80), 80)
    assert len(lines) == 3 + len(names)
    assert all(cell_len(line) <= 80 for line in lines)
