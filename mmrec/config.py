"""Shoot configuration: a TOML file (see configs/example-shoot.toml) and CLI overrides.

Validation errors are :class:`ConfigError` naming the file and the field, e.g.
``shoot.toml: camera[2].url: expected a string``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrec.errors import ConfigError
from mmrec.wire.url import API_PORT, short_name


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """A camera given by hand: a name and its stream URL (and optional fallback hosts)."""

    name: str
    url: str
    fallbacks: tuple[str, ...] = ()  # other URLs or hosts for the same camera (e.g. Tailscale)
    named: bool = True  # False: ``name`` is only its address; its /status names it


@dataclass(frozen=True, slots=True)
class DiscoverySpec:
    enabled: bool = False
    interfaces: tuple[str, ...] = ()
    scan: str | None = None
    hostnames: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    mdns: bool = True  # command line only (--no-mdns)
    scan_port: int = API_PORT  # command line only (--scan-port)


@dataclass(frozen=True, slots=True)
class ShootConfig:
    cameras: tuple[CameraSpec, ...] = ()
    out: Path = Path("takes")
    segment_seconds: float = 0.0  # 0: one segment per resolution
    duration: float | None = None
    take_name: str | None = None
    preview: bool = True
    discovery: DiscoverySpec = field(default_factory=DiscoverySpec)


def camera_arg(value: str) -> tuple[str, str]:
    """A camera on the command line: ``NAME=URL``, or a bare ``URL``/``HOST`` that is
    named by its host (and its port when it is not the mesh's 8081)."""
    name, sep, url = value.partition("=")
    if sep and name and "://" not in name:
        return name, url
    return short_name(value), value


def camera_spec(value: str) -> CameraSpec:
    """A camera on the command line (:func:`camera_arg`); one given only by its address
    is ``named=False``: the recorder names it by its ``/status`` deviceName."""
    name, url = camera_arg(value)
    _, sep, _ = value.partition("=")
    return CameraSpec(name, url, named=bool(sep) and url != value)


def _expect(where: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if (
        isinstance(value, bool)
        and kind is not bool
        and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    return value


def _str_list(where: str, value: Any) -> tuple[str, ...]:
    _expect(where, value, list, "a list of strings")
    for i, v in enumerate(value):
        _expect(f"{where}[{i}]", v, str, "a string")
    return tuple(value)


_TOP = {"take", "camera", "discovery"}
_TAKE = {"out", "segment_seconds", "duration", "name", "preview"}
_CAMERA = {"name", "url", "fallbacks"}
_DISCOVERY = {"enabled", "interfaces", "scan", "hostnames", "hosts"}


def _unknown(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(
            f"{where}: unknown field {extra[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def parse_config(data: dict[str, Any], source: str = "config") -> ShootConfig:
    """Validate a parsed TOML document into a :class:`ShootConfig`."""
    _unknown(source, data, _TOP)
    take = _expect(f"{source}: take", data.get("take", {}), dict, "a table [take]")
    _unknown(f"{source}: take", take, _TAKE)
    out = Path(_expect(f"{source}: take.out", take.get("out", "takes"), str, "a folder path"))
    seg = float(
        _expect(
            f"{source}: take.segment_seconds",
            take.get("segment_seconds", 0),
            (int, float),
            "a number of seconds",
        )
    )
    if seg < 0 or (0 < seg < 1):
        raise ConfigError(f"{source}: take.segment_seconds: must be 0 (off) or at least 1")
    duration = take.get("duration")
    if duration is not None:
        duration = float(
            _expect(f"{source}: take.duration", duration, (int, float), "a number of seconds")
        )
        if duration <= 0:
            raise ConfigError(f"{source}: take.duration: must be positive")
    name = take.get("name")
    if name is not None:
        _expect(f"{source}: take.name", name, str, "a string")
    preview = _expect(f"{source}: take.preview", take.get("preview", True), bool, "true or false")

    cams = []
    raw_cams = _expect(f"{source}: camera", data.get("camera", []), list, "[[camera]] tables")
    seen: set[str] = set()
    for i, c in enumerate(raw_cams):
        where = f"{source}: camera[{i}]"
        _expect(where, c, dict, "a table")
        _unknown(where, c, _CAMERA)
        if "url" not in c:
            raise ConfigError(
                f'{where}.url: missing (e.g. url = "http://192.168.1.20:8081/stream")'
            )
        url = _expect(f"{where}.url", c["url"], str, "a string")
        cname = _expect(f"{where}.name", c.get("name", short_name(url)), str, "a string")
        if cname in seen:
            raise ConfigError(f"{where}.name: duplicate camera name {cname!r}")
        seen.add(cname)
        fallbacks = _str_list(f"{where}.fallbacks", c.get("fallbacks", []))
        cams.append(CameraSpec(cname, url, fallbacks, named="name" in c))

    d = _expect(f"{source}: discovery", data.get("discovery", {}), dict, "a table [discovery]")
    _unknown(f"{source}: discovery", d, _DISCOVERY)
    scan = d.get("scan")
    if scan is not None:
        _expect(f"{source}: discovery.scan", scan, str, 'a CIDR like "192.168.1.0/24"')
    disc = DiscoverySpec(
        enabled=_expect(
            f"{source}: discovery.enabled", d.get("enabled", False), bool, "true or false"
        ),
        interfaces=_str_list(f"{source}: discovery.interfaces", d.get("interfaces", [])),
        scan=scan,
        hostnames=_str_list(f"{source}: discovery.hostnames", d.get("hostnames", [])),
        hosts=_str_list(f"{source}: discovery.hosts", d.get("hosts", [])),
    )
    return ShootConfig(
        cameras=tuple(cams),
        out=out,
        segment_seconds=seg,
        duration=duration,
        take_name=name,
        preview=preview,
        discovery=disc,
    )


def load_config(path: Path) -> ShootConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, str(path))
