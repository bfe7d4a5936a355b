"""The console's pure parts: the slate, alerts kept until acknowledged, what counts as a
condition (the engine's own verdicts, a clock uncertain for a sustained time), and who
may do what (token, Host allow-list, Origin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrec.console.access import Access, Request
from mmrec.console.alerts import AlertBook, AlertKind, Condition
from mmrec.console.devices import address_kind
from mmrec.console.disk import DiskView, disk_view
from mmrec.console.slate import Slate
from mmrec.console.view import AlertRules, CameraView, RateMeter, Thresholds, disk_conditions
from mmrec.errors import ConfigError
from mmrec.ingest.rate import RateChange
from mmrec.session.folders import DiskStatus, OutputFolders
from mmrec.store.disk import CameraRate
from mmrec.store.take import DiskInfo
from mmrec.wire.host import HostPolicy, is_loopback_bind

# the slate


def test_takes_auto_increment_and_a_new_scene_starts_at_take_one() -> None:
    s = Slate()
    assert s.name == "scene-1-take-1"
    s = s.set(None, None, "wide, sunset").after_take()
    assert (s.scene, s.take, s.note) == ("1", 2, "")
    s = s.set("12A", None, None)
    assert s.name == "scene-12A-take-1"
    assert s.set("12A", 7, None).after_take().take == 8


@pytest.mark.parametrize("scene", ["", "../x", "a b", "x" * 30, "<b>"])
def test_bad_scene_names_are_refused(scene: str) -> None:
    with pytest.raises(ConfigError, match="scene"):
        Slate(scene)


def test_notes_are_made_printable() -> None:
    assert Slate(note="a\u202eb\x00c").note == "abc"


# alerts


def _lost(cam: str = "A") -> Condition:
    return Condition(AlertKind.CAMERA_LOST, cam, f"{cam} lost")


def test_an_alert_stays_visible_after_it_clears_until_acknowledged() -> None:
    book = AlertBook()
    raised = book.update([_lost()], 1)
    assert [a.kind for a in raised] == [AlertKind.CAMERA_LOST]
    assert book.update([_lost()], 2) == []  # still the same alert
    book.update([], 3)
    (a,) = book.visible()
    assert not a.active and a.cleared_ns == 3
    assert book.ack(a.id) == 1
    assert book.visible() == []


def test_a_flapping_condition_is_one_alert_until_acknowledged() -> None:
    book = AlertBook()
    (a,) = book.update([_lost()], 1)
    for t in range(2, 20, 2):
        book.update([], t)
        assert book.update([_lost()], t + 1) == []
    (b,) = book.visible()
    assert b.id == a.id and b.active and b.times == 10


def test_an_acknowledged_condition_is_quiet_until_it_comes_back() -> None:
    book = AlertBook()
    (a,) = book.update([_lost()], 1)
    book.ack(a.id)
    assert book.update([_lost()], 2) == [] and book.visible() == []
    book.update([], 3)
    again = book.update([_lost()], 4)
    assert len(again) == 1 and again[0].id != a.id


def test_ack_all_and_the_book_is_bounded() -> None:
    book = AlertBook(limit=10)
    for i in range(30):
        book.update([_lost(f"c{i}")], i)
        book.update([], i)
    assert len(book.visible()) == 10
    assert book.ack() == 10 and book.visible() == []


def _cam(**kw: object) -> CameraView:
    base: dict[str, object] = dict(
        name="A", url="u", model=None, role=None, state="streaming", fps=30.0,
        nominal_fps=30.0, mbps=8.0, latency_ms=3.0, frames=100, take_frames=None, dropped=0,
        reconnects=0, down_s=None, up_s=60.0, clock_source="device", clock_uncertainty_ms=1.0,
        clock_warm=True, last_error=None, events_connected=True, node_events=(),
    )  # fmt: skip
    base.update(kw)
    base.setdefault("stream", base["state"])  # streaming unless its writer fails (then given)
    return CameraView(**base)  # type: ignore[arg-type]


def test_conditions() -> None:
    rules = AlertRules()
    assert rules.conditions([_cam()], None, 0) == []
    kinds = [c.kind for c in rules.conditions([_cam(state="backoff", down_s=1.0)], None, 0)]
    assert kinds == []  # not yet: a reconnect that quick is no loss
    (lost,) = rules.conditions([_cam(state="backoff", down_s=3.0, last_error="refused")], None, 0)
    assert lost.kind == AlertKind.CAMERA_LOST and "refused" in lost.message
    # a camera whose frames are not written is shown so, and is not "lost" for it
    full = _cam(state="disk-full", stream="streaming", dropped=12, write_error="disk full")
    (drop,) = rules.conditions([full], None, 0)
    assert drop.kind == AlertKind.FRAMES_DROPPED and "(disk full)" in drop.message


def test_slow_is_the_ingests_verdict_in_its_words() -> None:
    """The console has no rule of its own: a camera is slow when the ingest says so (the
    same verdict as record's table and the manifest's ``slow``), whatever the console's
    own 3 s rate says."""
    rules = AlertRules()
    assert rules.conditions([_cam(fps=12.0, nominal_fps=30.0)], None, 0) == []
    change = RateChange(True, 12.0, 30.0, nominal=True)
    (slow,) = rules.conditions([_cam(fps=29.0, slow=change.describe())], None, 0)
    assert slow.kind == AlertKind.CAMERA_SLOW
    assert slow.message == "A slow: 12.0 fps of 30 fps nominal, for 3 s"


def test_clock_uncertain_needs_a_sustained_excess_and_says_the_figure() -> None:
    """Under CPU load the clock model's uncertainty spikes for a second or two: no alert.
    Over the limit for clock_hold_s: an alert with the figure; it clears only once under
    clock_clear_ms for clock_clear_s (hysteresis)."""
    th = Thresholds(clock_uncertain_ms=10.0, clock_hold_s=5.0, clock_clear_ms=7.5,
                    clock_clear_s=3.0)  # fmt: skip
    rules = AlertRules(th)
    s = 1_000_000_000

    def at(t: float, unc: float | None, warm: bool = True) -> list[str]:
        cam = _cam(clock_uncertainty_ms=unc, clock_warm=warm)
        return [c.message for c in rules.conditions([cam], None, int(t * s))]

    # spikes of up to 4 s, again and again: never an alert
    for start in (0, 10, 20):
        assert all(at(start + k, 25.0) == [] for k in range(5))
        assert at(start + 5, 3.0) == []
    # a cold clock model's figure means nothing: not judged
    assert all(at(30 + k, 40.0, warm=False) == [] for k in range(8))
    # sustained: raised at 5 s over the limit, saying the figure
    assert all(at(40 + k, 12.0 + k) == [] for k in range(5))
    (msg,) = at(45, 14.0)
    assert msg == "A clock uncertain: ±14.0 ms for 5 s (peak ±16.0 ms; alert above ±10 ms)"
    # between the marks: still holding; under the clearing mark, for 3 s: cleared
    assert at(46, 9.0) and at(47, 7.0) and at(48, 8.0) and at(49, 7.0) and at(51, 6.0)
    assert at(52, 5.0) == []
    assert at(53, 11.0) == []  # over again: held back again


def test_disk_alerts_are_the_disks_own_levels() -> None:
    roots = [Path("/media/a/takes"), Path("/media/b")]

    def view(*states: tuple[str, int | None, float | None], recording: bool = True) -> DiskView:
        infos = tuple(
            DiskInfo(f"{r}/take", free, 100 * 10**9, 30e6, left, st)
            for r, (st, free, left) in zip(roots, states, strict=False)
        )
        # the watch's own total: writable folders, here each on a disk of its own
        free = sum(f for st, f, _ in states if f is not None and st != "gone")
        return disk_view(DiskStatus(infos, None, None, free), roots, recording=recording)

    assert disk_conditions(view(("ok", 50 * 10**9, 1600.0), ("ok", 10**9, None))) == []
    (low,) = disk_conditions(view(("low", 20 * 10**9, 666.0)))
    assert low.kind == AlertKind.DISK_LOW and low.subject == "/media/a/takes"
    assert low.message == "disk low: /media/a/takes: 20.0 GB free, 11 min 06 s of recording left"
    (crit,) = disk_conditions(view(("critical", 3 * 10**9, 100.0)))
    assert "only 1 min 40 s" in crit.message
    (full,) = disk_conditions(view(("full", 10**6, 0.0), ("ok", 50 * 10**9, 1600.0)))
    assert full.kind == AlertKind.DISK_FULL
    assert full.message.endswith("the take goes on in the next relay folder")
    gone, full2 = disk_conditions(view(("gone", None, None), ("full", 10**6, 0.0)))
    assert gone.kind == AlertKind.FOLDER_GONE
    assert gone.message == "take folder gone: /media/a/takes"  # the relay is full too
    assert full2.kind == AlertKind.DISK_FULL and "goes on" not in full2.message
    v = view(("gone", None, None), ("ok", 50 * 10**9, 1600.0))
    (gone,) = disk_conditions(v)
    assert gone.message.endswith("; the take goes on in the next relay folder")
    assert v.free_bytes == 50 * 10**9 and v.state == "gone"  # a gone folder has no room


def test_output_folders_between_takes_are_judged_by_the_take_rules(tmp_path: Path) -> None:
    """Before a take: the output folders (not made yet: the folder above is checked) at
    the rate the cameras would write, with the disk's levels and its notices."""
    out, relay = tmp_path / "not" / "yet" / "takes", tmp_path / "relay"
    relay.mkdir()
    folders = OutputFolders(out, [relay])
    status, notices = folders.check([CameraRate("A", fps=30.0)])
    assert [f.folder for f in status.folders] == [str(out), str(relay)]
    assert [f.state for f in status.folders] == ["ok", "ok"] and notices == []
    assert status.forecast is not None and "assumed 30 fps" in status.forecast.basis
    v = disk_view(status, folders.roots, recording=False)
    assert v.basis == status.forecast.basis and not v.recording
    assert v.folders[0].rate_bytes_per_s > 0 and v.folders[1].rate_bytes_per_s == 0
    free = v.folders[0].free_bytes
    assert free is not None and free > 0
    # cameras that would fill the first folder in a minute: critical, as in a take
    status, notices = folders.check([CameraRate("A", bytes_per_s=free / 60)])
    assert status.folders[0].state == "critical"
    assert [n.alert for n in notices] == [True] and "only" in notices[0].text
    (crit,) = disk_conditions(disk_view(status, folders.roots, recording=False))
    assert crit.kind == AlertKind.DISK_LOW and crit.subject == str(out)


def test_rate_meter() -> None:
    m = RateMeter()
    assert m.rates() == (None, None)
    for i in range(10):
        m.add(i * 1_000_000_000, i * 30, i * 3_000_000)
    fps, bps = m.rates()
    assert fps == pytest.approx(30.0) and bps == pytest.approx(3e6)


def test_address_kinds() -> None:
    assert address_kind("100.101.7.21") == "tailscale"
    assert address_kind("192.168.43.21") == "lan"
    assert address_kind("127.0.0.11") == "loopback"
    assert address_kind("fd7a:115c:a1e0::1") == "tailscale"
    assert address_kind("phone.local") == "name"


# access


def test_loopback_binds_are_only_these() -> None:
    assert all(is_loopback_bind(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback_bind(h) for h in ("127.0.0.2", "0.0.0.0", "192.168.1.5", "::"))


def test_host_allow_list_refuses_foreign_names() -> None:
    lo = HostPolicy.for_bind("127.0.0.1")
    assert lo.allows("127.0.0.1:8095") and lo.allows("localhost:8095") and lo.allows("[::1]:1")
    assert not lo.allows("evil.example:8095")  # DNS rebinding
    assert not lo.allows("192.168.1.5:8095") and not lo.allows(None) and not lo.allows("")
    lan = HostPolicy.for_bind("0.0.0.0", ["console.lan"])
    assert lan.allows("192.168.1.5:8095") and lan.allows("console.lan")
    assert not lan.allows("evil.example")


def test_loopback_reads_are_open_and_changes_need_the_header_token() -> None:
    acc = Access.for_bind("127.0.0.1", "sekret")
    host = "127.0.0.1:8095"
    assert acc.check(Request("GET", host)).ok
    assert acc.check(Request("POST", host)).status == 403
    assert acc.check(Request("POST", host, cookie_token="sekret")).status == 403  # CSRF
    assert acc.check(Request("POST", host, query_token="sekret")).status == 403
    assert acc.check(Request("POST", host, header_token="wrong")).status == 403
    assert acc.check(Request("POST", host, header_token="sekret")).ok
    evil = Request("POST", host, origin="http://evil.example", header_token="sekret")
    assert acc.check(evil).status == 403
    assert acc.check(Request("POST", host, "http://127.0.0.1:8095", "sekret")).ok
    assert acc.check(Request("GET", "evil.example:8095")).status == 403


def test_beyond_loopback_every_request_needs_the_token() -> None:
    acc = Access.for_bind("127.0.0.2", "sekret")
    assert acc.token_required
    host = "127.0.0.2:8095"
    assert acc.check(Request("GET", host)).status == 401
    assert acc.check(Request("GET", host, query_token="nope")).status == 401
    assert acc.check(Request("GET", host, query_token="sekret")).ok
    assert acc.check(Request("GET", host, cookie_token="sekret")).ok
    assert acc.check(Request("GET", host, header_token="sekret")).ok
    assert acc.url("127.0.0.2", 8095) == "http://127.0.0.2:8095/?token=sekret"


def test_a_token_is_made_when_none_is_given() -> None:
    a, b = Access.for_bind("0.0.0.0"), Access.for_bind("0.0.0.0")
    assert len(a.token) >= 32 and a.token != b.token


# the device map


def test_device_map_lists_every_address_with_its_paths_and_the_one_in_use() -> None:
    from mmrec.console.devices import discovered_device
    from mmrec.discover import CameraRegistry, Sighting, Source

    reg = CameraRegistry()
    lan = Sighting(Source.MDNS, "cam-a._mmcam._tcp.local.", "Cam A", "Pixel 8", "wide",
                   ("192.168.43.21",), 8081)  # fmt: skip
    scan = Sighting(Source.SCAN, "192.168.43.21:8081", "Cam A", "Pixel 8", "wide",
                    ("192.168.43.21",), 8081)  # fmt: skip
    ts = Sighting(Source.MANUAL, "100.101.7.21:8081", "Cam A", "Pixel 8", "wide",
                  ("100.101.7.21",), 8081)  # fmt: skip
    for s in (lan, scan, ts):
        reg.observe(s, 1)
    (info,) = reg.cameras()
    assert [p.source for p in reg.paths_of(info.id)] == [Source.MDNS, Source.SCAN, Source.MANUAL]
    dev = discovered_device(info, reg.paths_of(info.id), (info.host, info.port))
    assert (dev.name, dev.model, dev.role, dev.in_use) == (
        "Cam A",
        "Pixel 8",
        "wide",
        "192.168.43.21:8081",
    )
    assert dev.found_by == ("manual", "mdns", "scan")
    rows = {a.address: a for a in dev.addresses}
    assert rows["192.168.43.21"].kind == "lan" and rows["192.168.43.21"].in_use
    assert rows["192.168.43.21"].found_by == ("mdns", "scan")
    assert rows["100.101.7.21"].kind == "tailscale" and not rows["100.101.7.21"].in_use
    # the LAN stops answering: the Tailscale address takes over, and the map says so
    reg.set_answering(Source.MDNS, lan.key, False, 2)
    reg.set_answering(Source.SCAN, scan.key, False, 2)
    (info,) = reg.cameras()
    dev = discovered_device(info, reg.paths_of(info.id), (info.host, info.port))
    rows = {a.address: a for a in dev.addresses}
    assert rows["100.101.7.21"].in_use and not rows["192.168.43.21"].answering
