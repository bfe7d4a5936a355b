"""Free space and time left: the forecast before a take states its assumption; during it,
warnings and alerts come once per threshold crossed, and once more when all is well."""

from __future__ import annotations

from pathlib import Path

from mmrec.store.disk import (
    ASSUMED_FRAME_BYTES,
    CRITICAL_S,
    LOW_S,
    CameraRate,
    DiskWatch,
    FolderCheck,
    Space,
    forecast,
)

SEC = 1_000_000_000
GB = 1_000_000_000


def test_the_forecast_says_what_it_assumes() -> None:
    f = forecast(100 * GB, [CameraRate("a", bytes_per_s=5e6), CameraRate("b")])
    assert f.rate_bps == 5e6 + 30 * ASSUMED_FRAME_BYTES
    assert f.seconds == 100 * GB / f.rate_bps
    assert "1 camera(s) as measured" in f.basis and "1 camera(s) assumed 30 fps" in f.basis
    assert "100.0 GB free: about 2 h" in f.describe()
    declared = forecast(GB, [CameraRate("c", fps=25.0)])
    assert declared.rate_bps == 25 * ASSUMED_FRAME_BYTES and "25 fps" in declared.basis
    assert forecast(GB, []).seconds is None


def _check(free: int, folder: str = "/t", fsid: int | None = None) -> FolderCheck:
    """A folder as checked; each folder on a disk of its own unless ``fsid`` says."""
    fs = hash(folder) if fsid is None else fsid
    return FolderCheck(Path(folder), Space(free, 100 * GB, False, fs), None, 1)


def test_folders_on_one_disk_count_its_free_space_once() -> None:
    watch = DiskWatch([Path("/a"), Path("/a-relay"), Path("/b")])
    checks = [_check(10 * GB, "/a", 1), _check(10 * GB, "/a-relay", 1), _check(5 * GB, "/b", 2)]
    watch.judge(1e6, checks, [True, False, False])
    assert watch.seconds_left == 15 * GB / 1e6  # /a's 10 GB once, /b's 5 GB
    assert watch.free_bytes == 15 * GB  # what the console shows as free


def test_time_left_warns_once_per_threshold_and_once_when_well_again() -> None:
    w = DiskWatch([Path("/t")])
    rate = 10_000_000  # bytes/s
    written = 0
    said: list[tuple[bool, str]] = []

    def tick(t: int, free: int) -> None:
        nonlocal written
        written += rate
        said.extend((n.alert, n.text) for n in w.update(t * SEC, written, [_check(free)], [True]))

    tick(0, 10 * GB)
    for t in range(1, 4):  # 1000 s left: fine
        tick(t, 10 * GB)
    assert said == [] and w.infos[0].state == "ok"
    assert w.infos[0].seconds_left == 10 * GB / rate
    tick(4, rate * (LOW_S - 60))  # under 15 min: a warning, not an alert
    tick(5, rate * (LOW_S - 61))  # still low: nothing more
    assert [a for a, _ in said] == [False] and "of recording left" in said[0][1]
    tick(6, rate * (LOW_S + 10))  # hovering just above: not yet well again
    assert len(said) == 1 and w.infos[0].state == "low"
    tick(7, rate * (CRITICAL_S - 10))  # under 2 min: an alert
    assert said[-1][0] and "only 1 min" in said[-1][1]
    tick(8, 1 << 20)  # full
    assert said[-1] == (True, "/t: disk full (1.0 MB free)") and w.infos[0].state == "full"
    tick(9, 10 * GB)  # space freed: one word that all is well
    assert said[-1] == (False, "/t: writable again, 10.0 GB free") and len(said) == 4


def test_a_folder_gone_is_an_alert_and_the_rate_goes_where_cameras_write() -> None:
    w = DiskWatch([Path("/a"), Path("/b")])
    gone = FolderCheck(Path("/a"), None, "take folder /a is gone (No such file or directory)")
    w.update(0, 0, [_check(GB, "/a"), _check(10 * GB, "/b")], [True, False])
    notices = w.update(SEC, 4_000_000, [gone, _check(10 * GB, "/b")], [False, True])
    assert [(n.alert, n.text) for n in notices] == [
        (True, "take folder /a is gone (No such file or directory)")
    ]
    a, b = w.infos
    assert a.state == "gone" and a.free_bytes is None and a.rate_bps == 0
    assert b.rate_bps == 4_000_000 and b.seconds_left == 10 * GB / 4_000_000
    assert w.seconds_left == 10 * GB / 4_000_000  # only what can still be written counts


def test_the_live_view_says_free_space_and_time_left_in_one_line() -> None:
    from mmrec.commands.record_view import disk_line
    from mmrec.session.folders import DiskStatus
    from mmrec.store.take import DiskInfo

    assert disk_line(DiskStatus((), None, None)) == ""  # before the first check
    ok = DiskInfo("/a", 40 * GB, 100 * GB, 1e7, 4000.0, "ok")
    low = DiskInfo("/b", 2 * GB, 100 * GB, 0.0, None, "low")
    assert disk_line(DiskStatus((ok,), 4000.0, None)) == "disk 40.0 GB free, 1 h 06 min left"
    both = disk_line(DiskStatus((ok, low), 4200.0, None))
    assert both == "disk 42.0 GB free, 1 h 10 min left (low)"  # the worst folder's state
