"""Parsing what nodes announce (TXT records, hostnames): never raises on bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmrec.discover.model import (
    CameraInfo,
    Source,
    instance_label,
    normalize_hostname,
    sighting_from_mdns,
)
from mmrec.wire.url import http_url, parse_port

NAME = "Cam A._mmcam._tcp.local."


def txt(**kw: str | bytes | None) -> dict[bytes, bytes | None]:
    return {k.encode(): (v.encode() if isinstance(v, str) else v) for k, v in kw.items()}


def test_good_announcement() -> None:
    s, problems = sighting_from_mdns(
        NAME,
        ["fd00::5", "192.168.1.5"],
        8081,
        txt(deviceName="iphone-16-plus", model="iPhone17,4", role="front", apiPort="8081"),
        "iphone-16-plus.local.",
    )
    assert problems == []
    assert s is not None
    assert (s.source, s.key, s.name, s.model, s.role) == (
        Source.MDNS,
        NAME,
        "iphone-16-plus",
        "iPhone17,4",
        "front",
    )
    assert s.addresses == ("192.168.1.5", "fd00::5")  # IPv4 preferred
    assert (s.host, s.port, s.hostname) == ("192.168.1.5", 8081, "iphone-16-plus.local")


@pytest.mark.parametrize(
    ("props", "srv_port", "name", "port", "needle"),
    [
        (txt(deviceName=b"\xff\xfecam", model="m", role="r", apiPort="8081"), 8081,
         "\ufffd\ufffdcam", 8081, "not valid UTF-8"),
        (txt(deviceName="", model="m", role="r", apiPort="8081"), 8081, "Cam A", 8081, "empty"),
        (txt(model="m", role="r", apiPort="8081"), 8081, "Cam A", 8081, "deviceName missing"),
        (txt(deviceName="x" * 250, model="m", role="r", apiPort="8081"), 8081, "x" * 64, 8081,
         "cut to 64"),
        (txt(deviceName="../x", model="m", role="r", apiPort="8081"), 8081, "../x", 8081,
         "looks like a path"),
        (txt(deviceName="a/b", model="m", role="r", apiPort="8081"), 8081, "a/b", 8081,
         "looks like a path"),
        (txt(deviceName="ev\x00il", model="m", role="r", apiPort="8081"), 8081, "evil", 8081,
         "control characters"),
        (txt(deviceName="c", model="m", role="r", apiPort="0"), 9000, "c", 9000, "out of range"),
        (txt(deviceName="c", model="m", role="r", apiPort="70000"), 0, "c", 8081, "out of range"),
        (txt(deviceName="c", model="m", role="r", apiPort="abc"), 9000, "c", 9000,
         "not a port number"),
        (txt(deviceName="c", model="m", role="r", apiPort="-1"), 9000, "c", 9000, "not a port"),
        (txt(deviceName="c", model="m", role="r"), 9000, "c", 9000, "apiPort missing"),
        (txt(deviceName="c", model="m", role="r", apiPort=None), 9000, "c", 9000, "apiPort"),
        ({}, None, "Cam A", 8081, "deviceName missing"),
    ],
)  # fmt: skip
def test_bad_announcements_are_reported_not_raised(
    props: dict[bytes, bytes | None], srv_port: int | None, name: str, port: int, needle: str
) -> None:
    s, problems = sighting_from_mdns(NAME, ["10.0.0.9"], srv_port, props, None)
    assert s is not None
    assert (s.name, s.port) == (name, port)
    assert any(needle in p for p in problems), problems


def test_no_address_is_unusable() -> None:
    s, problems = sighting_from_mdns(NAME, [], 8081, txt(deviceName="c"), None)
    assert s is None and "no address resolved" in problems


@given(
    st.dictionaries(
        st.sampled_from([b"deviceName", b"model", b"role", b"apiPort", b"junk"]),
        st.one_of(st.none(), st.binary(max_size=300)),
    ),
    st.one_of(st.none(), st.integers(min_value=-5, max_value=70000)),
    st.text(max_size=80),
)
def test_any_txt_gives_a_bounded_sighting(
    props: dict[bytes, bytes | None], srv_port: int | None, label: str
) -> None:
    s, _ = sighting_from_mdns(label + "._mmcam._tcp.local.", ["10.0.0.9"], srv_port, props, None)
    assert s is not None
    assert 1 <= s.port <= 65535
    assert len(s.name) <= 64 and len(s.model) <= 64 and len(s.role) <= 64
    assert not any(ord(c) < 32 for c in s.name + s.model + s.role)


def test_hostnames_and_urls() -> None:
    assert normalize_hostname("iphone-16-plus") == "iphone-16-plus.local."
    assert normalize_hostname("iphone-16-plus.local") == "iphone-16-plus.local."
    assert normalize_hostname("Phone.LOCAL.") == "Phone.LOCAL."
    with pytest.raises(ValueError):
        normalize_hostname("a/b")
    assert http_url("fe80::1%eth0", 8081, "/stream") == "http://[fe80::1%25eth0]:8081/stream"
    assert instance_label("Cam A._mmcam._tcp.local.") == "Cam A"
    assert parse_port(True, "p")[0] is None
    cam = CameraInfo("a", "a", "m", "r", "127.0.0.1", 8081, frozenset({Source.MDNS}), True, 0)
    assert (cam.stream_url, cam.status_url) == (
        "http://127.0.0.1:8081/stream",
        "http://127.0.0.1:8081/status",
    )
