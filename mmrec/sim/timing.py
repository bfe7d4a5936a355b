"""When a simulated node captures, drops and sends each frame, and what its clock says.

Pure arithmetic on integer nanoseconds, no I/O. Frame ``n`` is captured at
``origin + n / fps``; whether it is dropped and how much jitter it gets depend only on
``(seed, n)``, so every client of a node sees the same frames and a test can predict
them. The device clock is ``host + offset + drift_ppm * 1e-6 * (host - origin)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmrec.sim.config import NodeConfig

_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a well-spread 64-bit hash of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def unit_random(seed: int, n: int, stream: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, n, stream)."""
    return _mix64(_mix64(_mix64(seed & _MASK64) ^ stream) ^ (n & _MASK64)) / 2.0**64


_DROP = 1
_JITTER = 2


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """A phone's wall clock: offset and drift relative to the host's CLOCK_REALTIME, and
    one step (an NTP correction, a user setting the time) if ``step_ns``."""

    origin_ns: int  # host time the drift is measured from (the node's first start)
    offset_ns: int = 0
    drift_ppm: float = 0.0
    step_at_ns: int = 0  # host time since the origin when the clock steps...
    step_ns: int = 0  # ...by this much (negative: back)

    def device_ns(self, host_ns: int) -> int:
        """What the device clock reads when the host clock reads ``host_ns``."""
        drift = round((host_ns - self.origin_ns) * self.drift_ppm / 1e6)
        step = self.step_ns if host_ns - self.origin_ns >= self.step_at_ns else 0
        return host_ns + self.offset_ns + drift + step


@dataclass(frozen=True, slots=True)
class FrameSchedule:
    """Capture and send times (ns after the node's origin) and drops, per frame number."""

    fps: float
    seed: int = 0
    delay_ns: int = 0
    jitter_ns: int = 0
    drop_prob: float = 0.0
    drop_every: int = 0
    burst_every: int = 0  # frames: every burst_every frames, hold burst_len of them...
    burst_len: int = 0  # ...and send them back to back with the last one (WiFi bursts)

    @classmethod
    def of(cls, config: NodeConfig) -> FrameSchedule:
        """The schedule a node with ``config`` keeps (the live node and its model alike)."""
        return cls(
            fps=config.fps,
            seed=config.picture_seed,
            delay_ns=round(config.delay_ms * 1e6),
            jitter_ns=round(config.jitter_ms * 1e6),
            drop_prob=config.drop_prob,
            drop_every=config.drop_every,
            burst_every=round(config.burst_every_s * config.fps),
            burst_len=round(config.burst_ms / 1000 * config.fps),
        )

    def capture_ns(self, n: int) -> int:
        """When frame ``n`` is captured, relative to the origin."""
        return round(n * 1e9 / self.fps)

    def frame_at(self, elapsed_ns: int) -> int:
        """The newest frame captured at or before ``elapsed_ns`` (-1 before the first)."""
        if elapsed_ns < 0:
            return -1
        n = int(elapsed_ns * self.fps / 1e9)
        # Float rounding may be one off either way near a frame edge.
        while n > 0 and self.capture_ns(n) > elapsed_ns:
            n -= 1
        while self.capture_ns(n + 1) <= elapsed_ns:
            n += 1
        return n

    def send_ns(self, n: int) -> int:
        """When frame ``n`` is due on the wire: capture + delay + its jitter (order not kept)."""
        t = self.capture_ns(n) + self.delay_ns
        if self.jitter_ns:
            t += int(unit_random(self.seed, n, _JITTER) * self.jitter_ns)
        if self.burst_every and self.burst_len and n % self.burst_every < self.burst_len:
            # held in the phone's queue until the block's last frame is ready
            last = n - n % self.burst_every + self.burst_len - 1
            t = max(t, self.capture_ns(last) + self.delay_ns)
        return t

    def dropped(self, n: int) -> bool:
        """True if frame ``n`` is never sent (its number is skipped)."""
        if self.drop_every and n % self.drop_every == self.drop_every - 1:
            return True
        return bool(self.drop_prob) and unit_random(self.seed, n, _DROP) < self.drop_prob
