"""The /status body: identity for discovery, clock and rate for the recorder and bench.

Untrusted input: odd fields never raise; only a body that is not a JSON object does.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmrec.errors import StreamFormatError
from mmrec.wire.status import NodeStatus, parse_status


def _body(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_parse_status() -> None:
    doc = {"deviceName": "cam", "model": "m", "role": "r", "apiPort": 8081, "width": 1920}
    status, problems = parse_status(_body(doc))
    assert status.is_node and problems == []
    assert (status.name, status.model, status.role, status.api_port) == ("cam", "m", "r", 8081)


@pytest.mark.parametrize(
    "doc",
    [
        {"deviceName": 5, "model": "m", "role": "r"},
        {"deviceName": "cam"},  # an open port with some JSON is not a camera
        {"deviceName": "", "model": "m", "role": "r"},
        {"name": "router", "model": "x", "fps": 1},
    ],
)
def test_parse_status_rejects_non_nodes(doc: object) -> None:
    status, problems = parse_status(_body(doc))
    assert not status.is_node and problems == [status.not_a_node]
    assert (status.name, status.model, status.role, status.api_port) == ("", "", "", None)


@pytest.mark.parametrize("body", [b"[]", b'"cam"', b"[1, 2]", b"{", b"\xff\xfe", b"[" * 100_000])
def test_parse_status_rejects_non_objects(body: bytes) -> None:
    with pytest.raises(StreamFormatError, match="/status"):
        parse_status(body)


def test_parse_status_odd_values() -> None:
    status, problems = parse_status(
        _body({"deviceName": "c", "model": 7, "fps": 30, "apiPort": "x"})
    )
    assert status.is_node and status.model == "" and status.api_port is None
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("body", "device_ns", "fps"),
    [
        (b'{"clockNs": 1700000000123456789, "fps": 30}', 1_700_000_000_123_456_789, 30.0),
        (b'{"clock": 1700000000.5, "fps": 29.97}', 1_700_000_000_500_000_000, 29.97),
        (b'{"clock": "1700000000.250000"}', 1_700_000_000_250_000_000, None),
        (b'{"deviceName": "x", "fps": true}', None, None),
        (b'{"clock": {"mono_ns": 0}, "fps": -1, "clockNs": "7"}', None, None),
    ],
)
def test_parse_status_clock(body: bytes, device_ns: int | None, fps: float | None) -> None:
    status, _ = parse_status(body)
    assert (status.device_ns, status.fps) == (device_ns, fps)


def test_a_camera_node_answer_has_identity_and_clock() -> None:
    body = b'{"deviceName": "p", "model": "m", "clockNs": 1764067200123456789, "fps": 30}'
    status, problems = parse_status(body)
    assert problems == []
    assert status == NodeStatus("p", "m", "", None, 1764067200123456789, 30.0)


FIELDS = st.sampled_from(
    ["deviceName", "model", "role", "apiPort", "width", "fps", "clock", "clockNs"]
)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=80))


# the machine is shared: a slow first draw is load, not a slow strategy
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(FIELDS, VALUES))
def test_any_object_gives_a_bounded_status(doc: dict[str, object]) -> None:
    status, problems = parse_status(json.dumps(doc))
    assert len(status.name) <= 64 and len(status.model) <= 64 and len(status.role) <= 64
    assert status.api_port is None or 1 <= status.api_port <= 65535
    assert status.device_ns is None or status.device_ns > 0
    assert status.is_node or problems == [status.not_a_node]
