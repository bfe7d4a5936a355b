"""The merged view, synchronously: one camera per node, preferred address, fallback, events."""

from __future__ import annotations

from collections.abc import Sequence

from mmrec.discover import (
    CameraAdded,
    CameraAddressChanged,
    CameraLost,
    CameraRegistry,
    DiscoveryWarning,
    Sighting,
    Source,
)
from mmrec.store.names import safe_name


def sight(
    source: Source,
    key: str,
    name: str = "iphone-16-plus",
    addresses: tuple[str, ...] = ("192.168.1.5",),
    port: int = 8081,
    model: str = "iPhone17,4",
    role: str = "front",
) -> Sighting:
    return Sighting(source, key, name, model, role, addresses, port)


def kinds(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_first_sighting_adds_a_camera() -> None:
    reg = CameraRegistry()
    events = reg.observe(sight(Source.MDNS, "cam._mmcam._tcp.local."), 10)
    assert kinds(events) == ["CameraAdded"]
    assert isinstance(events[0], CameraAdded)
    cam = events[0].camera
    assert (cam.id, cam.name, cam.model, cam.role) == (
        "iphone-16-plus",
        "iphone-16-plus",
        "iPhone17,4",
        "front",
    )
    assert (cam.host, cam.port, cam.answering, cam.last_seen_ns) == ("192.168.1.5", 8081, True, 10)
    assert cam.found_by == {Source.MDNS}
    # Seeing it again changes nothing a recorder cares about.
    assert reg.observe(sight(Source.MDNS, "cam._mmcam._tcp.local."), 20) == []
    assert reg.cameras()[0].last_seen_ns == 20


def test_paths_merge_by_identity_not_address() -> None:
    reg = CameraRegistry()
    reg.observe(sight(Source.MANUAL, "100.64.0.5:8081", addresses=("100.64.0.5",)), 1)
    # The LAN path of the same node arrives: merged, and preferred over the manual path.
    events = reg.observe(sight(Source.MDNS, "cam._mmcam"), 2)
    assert kinds(events) == ["CameraAddressChanged"]
    reg.observe(sight(Source.SCAN, "192.168.1.5:8081"), 3)
    reg.observe(sight(Source.HOSTNAME, "iphone-16-plus.local"), 4)
    [cam] = reg.cameras()
    assert cam.found_by == {Source.MDNS, Source.SCAN, Source.MANUAL, Source.HOSTNAME}
    assert cam.host == "192.168.1.5"


def test_identity_ignores_case() -> None:
    reg = CameraRegistry()
    reg.observe(sight(Source.MDNS, "a", name="Cam-A"), 1)
    reg.observe(sight(Source.SCAN, "s", name="cam-a", model="IPHONE17,4"), 2)
    assert len(reg.cameras()) == 1


def test_fallback_to_manual_when_lan_stops_answering_and_back() -> None:
    reg = CameraRegistry()
    reg.observe(sight(Source.MDNS, "cam._mmcam"), 1)
    reg.observe(sight(Source.MANUAL, "100.64.0.5:8081", addresses=("100.64.0.5",)), 2)
    events = reg.set_answering(Source.MDNS, "cam._mmcam", False, 3)
    assert kinds(events) == ["CameraAddressChanged"]
    changed = events[0]
    assert isinstance(changed, CameraAddressChanged)
    assert (changed.old_host, changed.camera.host) == ("192.168.1.5", "100.64.0.5")
    assert changed.camera.answering
    # LAN answers again: preferred again.
    events = reg.set_answering(Source.MDNS, "cam._mmcam", True, 4)
    assert kinds(events) == ["CameraAddressChanged"]
    assert reg.cameras()[0].host == "192.168.1.5"


def test_lost_when_no_path_answers_then_added_again() -> None:
    reg = CameraRegistry()
    reg.observe(sight(Source.MDNS, "cam._mmcam"), 1)
    events = reg.remove(Source.MDNS, "cam._mmcam", 2)
    assert kinds(events) == ["CameraLost"]
    assert isinstance(events[0], CameraLost)
    assert events[0].camera.host == "192.168.1.5"  # last known address kept
    [cam] = reg.cameras()
    assert not cam.answering and cam.found_by == frozenset()
    # It comes back (another address): same id, added again.
    events = reg.observe(sight(Source.MDNS, "cam._mmcam", addresses=("192.168.1.9",)), 3)
    assert kinds(events) == ["CameraAdded"]
    assert isinstance(events[0], CameraAdded)
    assert (events[0].camera.id, events[0].camera.host) == ("iphone-16-plus", "192.168.1.9")
    assert reg.remove(Source.MDNS, "unknown", 4) == []
    assert reg.set_answering(Source.SCAN, "unknown", True, 4) == []


def test_address_change_on_same_path() -> None:
    reg = CameraRegistry()
    reg.observe(sight(Source.MDNS, "cam._mmcam"), 1)
    events = reg.observe(sight(Source.MDNS, "cam._mmcam", addresses=("192.168.1.77",)), 2)
    assert kinds(events) == ["CameraAddressChanged"]
    events = reg.observe(sight(Source.MDNS, "cam._mmcam", addresses=("192.168.1.77",), port=9), 3)
    assert kinds(events) == ["CameraAddressChanged"]


def test_second_node_claiming_a_name_is_kept_apart_and_reported() -> None:
    reg = CameraRegistry()
    reg.observe(sight(Source.MDNS, "a._mmcam", addresses=("192.168.1.5",)), 1)
    events = reg.observe(sight(Source.MDNS, "b._mmcam", addresses=("192.168.1.6",)), 2)
    assert kinds(events) == ["DiscoveryWarning", "CameraAdded"]
    assert isinstance(events[0], DiscoveryWarning)
    assert "second node claims" in events[0].message
    ids = [c.id for c in reg.cameras()]
    assert ids == ["iphone-16-plus", "iphone-16-plus-2"]
    # The scan finding the second one at its address joins the second one.
    reg.observe(sight(Source.SCAN, "192.168.1.6:8081", addresses=("192.168.1.6",)), 3)
    assert [sorted(c.found_by) for c in reg.cameras()] == [["mdns"], ["mdns", "scan"]]


def test_node_renamed_becomes_another_camera() -> None:
    reg = CameraRegistry()
    reg.observe(sight(Source.MDNS, "a._mmcam", name="old"), 1)
    events = reg.observe(sight(Source.MDNS, "a._mmcam", name="new"), 2)
    assert kinds(events) == ["CameraAdded", "CameraLost"]
    assert {c.id: c.answering for c in reg.cameras()} == {"new": True, "old": False}


def test_ids_are_safe_and_stable_for_hostile_names() -> None:
    reg = CameraRegistry()
    for i, name in enumerate(["../x", "a/b", ".", "ev\x00il", "CON", "x", "../x"]):
        reg.observe(sight(Source.MDNS, f"k{i}", name=name, addresses=(f"10.0.0.{i}",)), i)
    ids = [c.id for c in reg.cameras()]
    assert len(set(ids)) == len(ids) == 7
    assert all(safe_name(i) == i for i in ids)
    assert "x" in ids and "x-2" in ids


def test_report_unreachable_falls_back() -> None:
    reg = CameraRegistry()
    reg.observe(sight(Source.MDNS, "cam._mmcam"), 1)
    reg.observe(sight(Source.MANUAL, "100.64.0.5:8081", addresses=("100.64.0.5",)), 1)
    [cam] = reg.cameras()
    assert kinds(reg.report_unreachable(cam.id, 2)) == ["CameraAddressChanged"]
    assert kinds(reg.report_unreachable(cam.id, 3)) == ["CameraLost"]
    assert reg.report_unreachable("nope", 4) == []


def test_warnings_are_deduplicated_and_bounded() -> None:
    reg = CameraRegistry()
    assert len(reg.warn(Source.MDNS, "x", "bad", 1)) == 1
    assert reg.warn(Source.MDNS, "x", "bad", 2) == []
    for i in range(2000):
        reg.warn(Source.SCAN, f"h{i}", "bad", i)
    assert len(reg.warnings()) == 1000 and reg.warnings_dropped == 1001
