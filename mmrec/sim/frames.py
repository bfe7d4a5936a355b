"""Pre-encoded rings of camera-like JPEG frames, one ring per (size, quality, seed, length).

A node never encodes while serving: it cycles through a ring of JPEGs made once by
libjpeg-turbo and only patches the per-frame COM record in front of the body. Rings are
cached process-wide (bounded by bytes), so nodes and tests that share a look share the
frames, and they are built in threads (TurboJPEG and numpy release the GIL).

The picture: a per-seed colour gradient with soft blobs, panned back and forth so the
loop is seamless, fresh sensor-like noise each frame (which gives phone-like sizes,
about 150-350 KB at 1080p quality 85), the ring index in big digits and the node name.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from turbojpeg import TJSAMP_420, TurboJPEG

from mmrec.wire.jpeg import SOI

U8 = npt.NDArray[np.uint8]

# 3x5 bitmap font: rows top to bottom, '1' = ink.
_GLYPHS: dict[str, str] = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111",
    "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101",
    "L": "100100100100111", "M": "101111111101101", "N": "110101101101101",
    "O": "010101101101010", "P": "110101110100100", "Q": "010101101110011",
    "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101",
    "X": "101101010101101", "Y": "101101010010010", "Z": "111001010100111",
    "-": "000000111000000", "_": "000000000000111", ".": "000000000000010",
    ":": "000010000010000", " ": "000000000000000",
}  # fmt: skip

# Sensor-like noise amplitude (0..NOISE-1 added per pixel): it sets the JPEG size.
_NOISE = 14


def text_mask(text: str, scale: int) -> npt.NDArray[np.bool_]:
    """A boolean bitmap of ``text`` in the 3x5 font, each font pixel ``scale`` pixels wide."""
    text = text.upper()
    cols: list[npt.NDArray[np.bool_]] = []
    for i, ch in enumerate(text):
        bits = _GLYPHS.get(ch, "111101101101111" if ch != " " else _GLYPHS[" "])
        glyph = np.array([c == "1" for c in bits], dtype=bool).reshape(5, 3)
        if i:
            cols.append(np.zeros((5, 1), dtype=bool))
        cols.append(glyph)
    bitmap = np.concatenate(cols, axis=1) if cols else np.zeros((5, 0), dtype=bool)
    return np.repeat(np.repeat(bitmap, scale, axis=0), scale, axis=1)


def _draw_text(img: U8, text: str, x: int, y: int, scale: int) -> None:
    """Draw white text on a black box at (x, y), clipped to the image."""
    mask = text_mask(text, scale)
    h, w = img.shape[:2]
    pad = scale
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(w, x + mask.shape[1] + pad), min(h, y + mask.shape[0] + pad)
    if x1 <= x0 or y1 <= y0:
        return
    img[y0:y1, x0:x1] = 0
    mh, mw = min(mask.shape[0], h - y), min(mask.shape[1], w - x)
    if mh > 0 and mw > 0:
        region = img[y : y + mh, x : x + mw]
        region[mask[:mh, :mw]] = 255


def _background(width: int, height: int, seed: int) -> U8:
    """The per-seed scene, wider than the frame by a pan margin; values stay <= 245 - NOISE."""
    rng = np.random.default_rng(seed)
    margin = width // 8
    w = width + margin
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)
    out = np.empty((height, w, 3), dtype=np.uint8)
    for c in range(3):
        a, b = rng.uniform(20, 90, 2)
        fx, fy = rng.uniform(2, 9, 2) * math.pi
        px, py = rng.uniform(0, 2 * math.pi, 2)
        base = rng.uniform(20, 60)
        ramp_x = (a * x).astype(np.float32)
        ramp_y = (b * (1 - y) + base).astype(np.float32)
        blobs = np.outer(np.sin(fy * y + py), np.sin(fx * x + px)).astype(np.float32)
        plane = np.add.outer(ramp_y, ramp_x)
        plane += 45.0 * blobs + 45.0
        np.clip(plane, 0, 245 - _NOISE, out=plane)
        out[:, :, c] = plane.astype(np.uint8)
    # A few hard-edged "objects" so there are edges as in a real room.
    for _ in range(6):
        bw, bh = int(rng.uniform(0.05, 0.2) * w), int(rng.uniform(0.05, 0.3) * height)
        bx, by = int(rng.uniform(0, w - bw)), int(rng.uniform(0, height - bh))
        out[by : by + bh, bx : bx + bw] = rng.integers(10, 245 - _NOISE, 3, dtype=np.uint8)
    return out


_noise_lock = threading.Lock()
_noise_cache: dict[tuple[int, int], U8] = {}


def _noise(width: int, height: int) -> U8:
    """Shared noise field, a little larger than a frame so each frame can take a new window."""
    key = (width, height)
    with _noise_lock:
        field = _noise_cache.get(key)
        if field is None:
            rng = np.random.default_rng(0x6D6D63616D)
            field = rng.integers(0, _NOISE, (height + 64, width + 64, 3), dtype=np.uint8)
            _noise_cache[key] = field
        return field


def render_frame(background: U8, noise: U8, index: int, length: int, label: str) -> U8:
    """Frame ``index`` of a ring of ``length``: panned scene + fresh noise + big digits."""
    height, bw = background.shape[:2]
    width = bw - bw // 9  # background is width + width // 8 wide
    margin = bw - width
    # Pan back and forth over the ring: a seamless loop.
    phase = 2 * math.pi * index / max(1, length)
    shift = round((margin - 1) * (0.5 - 0.5 * math.cos(phase)))
    img = np.ascontiguousarray(background[:, shift : shift + width])
    dy, dx = (index * 37) % 64, (index * 23) % 64
    np.add(img, noise[dy : dy + height, dx : dx + width], out=img)
    # A bright block moving down the frame, like something crossing the view.
    by = int((height - height // 8) * index / max(1, length))
    bx = width // 2 + int(width // 4 * math.sin(phase))
    img[by : by + height // 8, bx : bx + width // 16] = (250, 250, 240)
    scale = max(2, height // 36)
    _draw_text(img, f"{index:03d}", scale * 2, scale * 2, scale)
    _draw_text(img, label, scale * 2, scale * 9, max(1, scale // 2))
    return img


@dataclass(frozen=True, slots=True)
class RingKey:
    """What makes two rings identical."""

    width: int
    height: int
    quality: int
    seed: int
    length: int
    label: str = ""


@dataclass(frozen=True, slots=True)
class FrameRing:
    """``length`` complete JPEGs (SOI..EOI, no COM record) and views of their bodies."""

    key: RingKey
    jpegs: tuple[bytes, ...]
    # memoryviews of the immutable ``jpegs`` after their SOI: written as-is, never copied.
    bodies: tuple[memoryview, ...]

    @classmethod
    def from_jpegs(cls, key: RingKey, jpegs: Sequence[bytes]) -> FrameRing:
        for j in jpegs:
            if j[:2] != SOI:
                raise ValueError("ring frame does not start with SOI")
        return cls(key, tuple(jpegs), tuple(memoryview(j)[2:] for j in jpegs))

    def __len__(self) -> int:
        return len(self.jpegs)

    @property
    def nbytes(self) -> int:
        return sum(len(j) for j in self.jpegs)

    @property
    def max_size(self) -> int:
        return max(len(j) for j in self.jpegs)

    @property
    def mean_size(self) -> float:
        return self.nbytes / len(self.jpegs)


def _encode(img: U8, quality: int) -> bytes:
    # A TurboJPEG object per call: the wrapper makes a fresh compressor handle anyway,
    # and this keeps threads from sharing one.
    return bytes(TurboJPEG().encode(img, quality=quality, jpeg_subsample=TJSAMP_420))


def _build_ring(key: RingKey) -> FrameRing:
    background = _background(key.width, key.height, key.seed)
    noise = _noise(key.width, key.height)
    jpegs = [
        _encode(render_frame(background, noise, i, key.length, key.label), key.quality)
        for i in range(key.length)
    ]
    return FrameRing.from_jpegs(key, jpegs)


def build_rings(keys: Iterable[RingKey], workers: int | None = None) -> dict[RingKey, FrameRing]:
    """Render and encode every ring (blocking; call it from a thread), rings in parallel.

    One ring per thread at a time, so only ``workers`` backgrounds (about 7 MB each at
    1080p) are alive at once however many nodes there are.
    """
    todo = list(dict.fromkeys(keys))
    if not todo:
        return {}
    workers = min(len(todo), workers or min(8, os.cpu_count() or 1))
    if workers == 1:
        return {k: _build_ring(k) for k in todo}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmrec-sim-ring") as pool:
        return dict(zip(todo, pool.map(_build_ring, todo), strict=True))


class RingCache:
    """Process-wide LRU of rings, bounded by total JPEG bytes; thread-safe."""

    def __init__(self, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._rings: OrderedDict[RingKey, FrameRing] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[RingKey], workers: int | None = None) -> list[FrameRing]:
        """Rings for ``keys`` in order, building the missing ones (blocking)."""
        keys = list(keys)
        with self._lock:
            missing = [k for k in keys if k not in self._rings]
        built = build_rings(missing, workers)
        with self._lock:
            self._rings.update(built)
            found = {k: self._rings[k] for k in keys if k in self._rings}
            for k in keys:
                self._rings.move_to_end(k)
            total = sum(r.nbytes for r in self._rings.values())
            while total > self.max_bytes and len(self._rings) > 1:
                _, old = self._rings.popitem(last=False)
                total -= old.nbytes
        return [found[k] for k in keys]

    def clear(self) -> None:
        with self._lock:
            self._rings.clear()


DEFAULT_CACHE = RingCache()


def auto_ring_length(nodes: int, width: int, height: int) -> int:
    """A ring length that keeps startup short: 30 frames for a few 1080p nodes, fewer for many."""
    megapixels = nodes * width * height / 1e6
    # About 1 s of encoding per 100 frame-megapixels on one core; aim for ~15 s at worst.
    return max(8, min(30, int(1000 / max(megapixels, 1.0))))
