"""Which host records which camera: reach by subnet, budgets, pinned cameras (pure)."""

from __future__ import annotations

import ipaddress

import pytest

from mmrec.cluster.plan import (
    HostSpec,
    PlannedCamera,
    load_hosts,
    merge_hosts,
    parse_hosts,
    plan_cameras,
)
from mmrec.errors import ConfigError


def net(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def cams(*addrs: str) -> list[PlannedCamera]:
    return [PlannedCamera(f"c{i}", f"http://{a}:8081/stream") for i, a in enumerate(addrs)]


def names(plan: object, host: str) -> list[str]:
    return [c.name for a in plan.assignments if a.host == host for c in a.cameras]  # type: ignore[attr-defined]


def test_each_camera_goes_to_the_host_whose_subnet_holds_it() -> None:
    hosts = [HostSpec("A", net("192.168.43.0/24")), HostSpec("B", net("192.168.44.0/24"))]
    plan = plan_cameras(cams("192.168.44.5", "192.168.43.9", "192.168.44.6"), hosts)
    assert names(plan, "A") == ["c1"]
    assert names(plan, "B") == ["c0", "c2"]
    assert plan.unplaced == ()
    assert plan.host_of("c2") == "B"


def test_a_camera_no_host_reaches_is_said_not_dropped() -> None:
    plan = plan_cameras(cams("10.0.0.5", "cam.local"), [HostSpec("A", net("192.168.43.0/24"))])
    assert plan.cameras == 0
    assert [(c.name, why) for c, why in plan.unplaced] == [
        ("c0", "no host reaches 10.0.0.5"),
        ("c1", "no host reaches cam.local"),
    ]


def test_budgets_fill_evenly_and_overflow_is_said() -> None:
    hosts = [HostSpec("A", (), 2), HostSpec("B", (), 3)]
    plan = plan_cameras(cams(*[f"127.0.0.{i}" for i in range(1, 7)]), hosts)
    assert len(names(plan, "A")) == 2 and len(names(plan, "B")) == 3
    assert [c.name for c, _ in plan.unplaced] == ["c5"]
    assert "every host that reaches 127.0.0.6 is full" in plan.unplaced[0][1]
    # the least loaded by share of its budget takes the next: A, B, A (1/2 = 1/3? no: B)
    even = plan_cameras(cams("1.1.1.1", "1.1.1.2", "1.1.1.3"), [HostSpec("A"), HostSpec("B")])
    assert names(even, "A") == ["c0", "c2"] and names(even, "B") == ["c1"]


def test_pinned_cameras_go_where_they_are_pinned() -> None:
    hosts = [HostSpec("A", net("192.168.43.0/24"), 1), HostSpec("B", net("192.168.44.0/24"))]
    plan = plan_cameras(
        cams("192.168.43.1", "192.168.43.2", "192.168.43.3"),
        hosts,
        {"c0": "B", "c1": "A", "c2": "Z"},
    )
    assert names(plan, "B") == ["c0"]
    assert names(plan, "A") == ["c1"]
    assert plan.unplaced[0][0].name == "c2" and "not up" in plan.unplaced[0][1]


def test_invariants_every_camera_once() -> None:
    hosts = [HostSpec("A", net("127.0.0.0/8"), 4), HostSpec("B", (), 4)]
    given = cams(*[f"127.0.0.{i}" for i in range(1, 12)], "cam.local")
    plan = plan_cameras(given, hosts)
    placed = [c.name for a in plan.assignments for c in a.cameras]
    assert sorted(placed + [c.name for c, _ in plan.unplaced]) == sorted(c.name for c in given)
    assert all(len(a.cameras) <= 4 for a in plan.assignments)


def test_bad_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no recorder hosts"):
        plan_cameras(cams("1.1.1.1"), [])
    with pytest.raises(ConfigError, match="unique"):
        plan_cameras(cams("1.1.1.1"), [HostSpec("A"), HostSpec("A")])
    with pytest.raises(ConfigError, match="twice"):
        plan_cameras(
            [PlannedCamera("x", "1.1.1.1"), PlannedCamera("x", "1.1.1.2")], [HostSpec("A")]
        )


def test_hosts_file(tmp_path: object) -> None:
    doc = {
        "host": [
            {"name": "recA", "subnets": ["192.168.43.0/24"], "streams": 13, "cameras": ["x"]},
            {"name": "recB"},
        ]
    }
    hf = parse_hosts(doc)
    assert hf.hosts[0] == HostSpec("recA", net("192.168.43.0/24"), 13)
    assert hf.hosts[1].streams == 64 and hf.pinned == {"x": "recA"}
    found = [HostSpec("recB", net("10.0.0.0/8")), HostSpec("recA")]
    assert merge_hosts(found, hf) == (hf.hosts[1], hf.hosts[0])
    for bad, field in (
        ({"host": [{"name": ""}]}, "name"),
        ({"host": [{"name": "a", "subnets": ["300.1.1.1/8"]}]}, "subnets"),
        ({"host": [{"name": "a", "streams": 0}]}, "streams"),
        ({"host": [{"name": "a", "cameras": ["x"]}, {"name": "b", "cameras": ["x"]}]}, "pinned"),
    ):
        with pytest.raises(ConfigError, match=field):
            parse_hosts(bad)


def test_load_hosts_names_the_file(tmp_path: object) -> None:
    from pathlib import Path

    p = Path(str(tmp_path)) / "hosts.toml"
    p.write_text('[[host]]\nname = "recA"\nsubnets = ["10.1.0.0/16"]\n')
    assert load_hosts(p).hosts == (HostSpec("recA", net("10.1.0.0/16")),)
    p.write_text("[[host]\n")
    with pytest.raises(ConfigError, match=r"hosts\.toml"):
        load_hosts(p)
