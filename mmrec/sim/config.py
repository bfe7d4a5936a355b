"""What one simulated camera node is: size, rate, clock, faults and wire quirks.

A :class:`NodeConfig` is immutable and validated on construction; every invalid value
raises :class:`~mmrec.errors.ConfigError` naming the field, so the CLI and tests get
the same message.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from mmrec.errors import ConfigError


class Quirk(StrEnum):
    """Ways real MJPEG servers bend the multipart format; several may combine."""

    NO_LENGTH = "no-length"  # parts carry no Content-Length
    QUOTED_BOUNDARY = "quoted-boundary"  # boundary="..." in the Content-Type
    DASH_BOUNDARY = "dash-boundary"  # boundary=--foo, so delimiters read ----foo
    LF = "lf"  # LF-only line ends, in the HTTP head too
    NO_FIRST_BOUNDARY = "no-first-boundary"  # first part starts with its headers
    OCTET_STREAM = "octet-stream"  # response Content-Type application/octet-stream
    HTTP10 = "http10"  # HTTP/1.0 status line, Connection: close
    BLANK_LINES = "blank-lines"  # an extra blank line before and after every part
    CHUNKED = "chunked"  # Transfer-Encoding: chunked body, one chunk per part
    NO_BOUNDARY_PARAM = "no-boundary-param"  # multipart Content-Type without boundary=
    WRONG_LENGTH = "wrong-length"  # Content-Length off by 3 (+3 even, -3 odd frames)
    RAW_JPEG = "raw-jpeg"  # octet-stream body of back-to-back JPEGs, no multipart


def parse_quirks(names: Iterable[str]) -> frozenset[Quirk]:
    """Quirks from their names (``no-length``, ``lf``, ...); ConfigError names a bad one."""
    out: set[Quirk] = set()
    for raw in names:
        for name in raw.split(","):
            name = name.strip().lower().replace("_", "-")
            if not name:
                continue
            try:
                out.add(Quirk(name))
            except ValueError:
                known = ", ".join(q.value for q in Quirk)
                raise ConfigError(f"unknown quirk {name!r} (known: {known})") from None
    return frozenset(out)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """One simulated phone. Times are seconds since the node first started.

    Clock knobs shape ``X-Timestamp`` (the device clock at capture):
    ``device = host + clock_offset_s + drift_ppm * 1e-6 * (host - start)``. The COM record's
    ``true_ns`` is always the host ``CLOCK_REALTIME`` capture time.
    """

    name: str
    width: int = 1920
    height: int = 1080
    fps: float = 30.0
    quality: int = 85
    model: str = "mmcam-sim"
    role: str = "camera"
    seed: int | None = None  # picture content; None derives it from the name
    ring: int = 30  # pre-encoded frames per distinct (size, quality, seed)
    clock_offset_s: float = 0.0
    drift_ppm: float = 0.0
    clock_step_at: float | None = None  # the device clock steps at this time...
    clock_step_s: float = 0.0  # ...by this much (negative: back), as an NTP step would
    jitter_ms: float = 0.0  # uniform random extra send delay per frame, order kept
    delay_ms: float = 0.0  # capture-to-send delay (a phone's encode/queue time)
    burst_every_s: float = 0.0  # every so often, frames are held back...
    burst_ms: float = 0.0  # ...for this long, then sent back to back (0 = no bursts)
    drop_prob: float = 0.0  # each frame is dropped (never sent) with this probability
    drop_every: int = 0  # every Nth frame (n % N == N - 1) is dropped; 0 = off
    stall_at: float | None = None  # stop sending, keep sockets open
    stall_for: float | None = None  # resume after this long; None = until resume()
    disconnect_at: float | None = None  # drop every client connection once
    quirks: frozenset[Quirk] = field(default_factory=frozenset)
    max_client_buffer: int = 0  # bytes queued per client before frames skip; 0 = auto
    # What the node calls itself in /status, /events and mDNS TXT (default: name). Any
    # text, as a real phone's user may type it (markup, right-to-left marks): tests of
    # what mmrec does with untrusted names use it.
    device_name: str = ""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ConfigError(f"node name {self.name!r}: use 1-63 letters, digits, '.', '_' or '-'")
        if len(self.device_name) > 200:
            raise ConfigError(f"node {self.name}: device_name longer than 200 characters")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ConfigError(f"node {self.name}: size {self.width}x{self.height} out of range")
        if not (math.isfinite(self.fps) and 0.1 <= self.fps <= 240):
            raise ConfigError(f"node {self.name}: fps {self.fps} out of range 0.1-240")
        if not 1 <= self.quality <= 100:
            raise ConfigError(f"node {self.name}: quality {self.quality} out of range 1-100")
        if not 1 <= self.ring <= 600:
            raise ConfigError(f"node {self.name}: ring {self.ring} out of range 1-600")
        for label, value in (
            ("jitter_ms", self.jitter_ms),
            ("delay_ms", self.delay_ms),
            ("burst_every_s", self.burst_every_s),
            ("burst_ms", self.burst_ms),
            ("max_client_buffer", self.max_client_buffer),
            ("drop_every", self.drop_every),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"node {self.name}: {label} must be >= 0, got {value}")
        if not (
            math.isfinite(self.clock_offset_s)
            and math.isfinite(self.drift_ppm)
            and math.isfinite(self.clock_step_s)
        ):
            raise ConfigError(f"node {self.name}: clock offset, drift and step must be finite")
        if not 0.0 <= self.drop_prob < 1.0:
            raise ConfigError(f"node {self.name}: drop_prob must be in [0, 1)")
        if self.drop_every == 1:
            raise ConfigError(f"node {self.name}: drop_every=1 would drop every frame")
        for label, t in (
            ("stall_at", self.stall_at),
            ("stall_for", self.stall_for),
            ("disconnect_at", self.disconnect_at),
            ("clock_step_at", self.clock_step_at),
        ):
            if t is not None and not (math.isfinite(t) and t >= 0):
                raise ConfigError(f"node {self.name}: {label} must be >= 0 seconds")
        if Quirk.CHUNKED in self.quirks and Quirk.HTTP10 in self.quirks:
            raise ConfigError(f"node {self.name}: quirks chunked and http10 exclude each other")
        if not all(isinstance(q, Quirk) for q in self.quirks):
            raise ConfigError(f"node {self.name}: quirks must be Quirk values")

    @property
    def label(self) -> str:
        """The name the node gives itself (``device_name``, else ``name``)."""
        return self.device_name or self.name

    @property
    def picture_seed(self) -> int:
        """The seed that picks this node's picture (stable across runs)."""
        return self.seed if self.seed is not None else zlib.crc32(self.name.encode())

    @property
    def period_ns(self) -> int:
        """Nominal frame interval."""
        return round(1e9 / self.fps)
