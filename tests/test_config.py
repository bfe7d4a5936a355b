"""Shoot configs: the example parses; every bad field is named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrec.config import load_config, parse_config
from mmrec.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "configs" / "example-shoot.toml")
    assert [c.name for c in cfg.cameras] == ["A-wide", "B-close", "C-overhead"]
    assert cfg.segment_seconds == 600
    assert cfg.discovery.hostnames == ("iphone-16-plus.local",)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"take": {"out": 3}}, "take.out"),
        ({"take": {"segment_seconds": "long"}}, "take.segment_seconds"),
        ({"take": {"segment_seconds": 0.5}}, "take.segment_seconds"),
        ({"take": {"duration": -1}}, "take.duration"),
        ({"take": {"preview": "yes"}}, "take.preview"),
        ({"take": {"colour": 1}}, "unknown field 'colour'"),
        ({"camera": [{"name": "a"}]}, "camera[0].url"),
        ({"camera": [{"url": 5}]}, "camera[0].url"),
        ({"camera": [{"url": "x", "name": "a"}, {"url": "y", "name": "a"}]}, "camera[1].name"),
        ({"camera": [{"url": "x", "fallbacks": ["a", 3]}]}, "camera[0].fallbacks[1]"),
        ({"discovery": {"scan": 24}}, "discovery.scan"),
        ({"discovery": {"interfaces": "eth0"}}, "discovery.interfaces"),
        ({"cameras": []}, "unknown field 'cameras'"),
    ],
)
def test_bad_fields_are_named(doc: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_config(doc, "shoot.toml")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[take\nout=", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(p)
