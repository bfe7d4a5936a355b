"""Takes on disk for the review tests, and how to read back what a proxy shows.

Takes are written directly with CameraWriter (fast, deterministic): every frame is a flat
grey whose level encodes its frame number, with the simulator's COM record, so a frame of
a proxy tells which source frame it shows (:func:`frame_number`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from turbojpeg import TJSAMP_420

from mmrec.store.index import INDEX
from mmrec.store.take import CameraEntry, ClockInfo, Manifest, write_manifest
from mmrec.store.writer import CameraWriter, Frame
from mmrec.wire import jpeg
from tests.helpers import tj

NS = 1_000_000_000
TIMECODE = "10:00:00:00"
PHASE_NS = 5_000_000


def level(n: int) -> int:
    """Grey level of frame n: distinct for n < 32, far from black."""
    return 60 + (n * 6) % 192


def grey_jpeg(name: str, n: int, w: int, h: int, t_ns: int, subsample: int = TJSAMP_420) -> bytes:
    img = np.full((h, w, 3), level(n), np.uint8)
    data: bytes = tj().encode(img, quality=95, jpeg_subsample=subsample)
    com = jpeg.com_segment(f"mmcam-sim node={name} frame={n} true_ns={t_ns}".encode())
    return data[:2] + com + data[2:]


@dataclass(frozen=True, slots=True)
class Cam:
    name: str
    spans: tuple[tuple[float, float], ...]  # seconds on the take timeline, [from, to)
    fps: float = 15.0
    size: tuple[int, int] = (320, 240)
    subsample: int = TJSAMP_420


def write_take(root: Path, cams: list[Cam], *, state: str = "finished") -> Path:
    """A take in ``root/take`` whose cameras send grey frames over their ``spans``."""
    frames: dict[str, list[tuple[int, bytes]]] = {}
    for cam in cams:
        frames[cam.name] = []
        n = 0
        for a, b in cam.spans:
            k = 0
            while a + k / cam.fps < b - 1e-9:
                # captured 5 ms into each frame interval (a phone is never exactly on it)
                t = round((a + k / cam.fps) * NS) + PHASE_NS
                frames[cam.name].append((t, grey_jpeg(cam.name, n, *cam.size, t, cam.subsample)))
                n += 1
                k += 1
    return write_frames(root, frames, state=state)


def write_frames(
    root: Path, cameras: Mapping[str, Sequence[tuple[int, bytes]]], *, state: str = "finished"
) -> Path:
    """A take in ``root/take`` with each camera's (time on the take timeline, JPEG)."""
    take = root / "take"
    take.mkdir()
    entries = []
    for name, frames in cameras.items():
        writer = CameraWriter(name, take, name, metadata={"timecode": TIMECODE})
        for t, data in frames:
            assert writer.offer(Frame(data, t, t, None))
        writer.close()
        st = writer.stats()
        entries.append(
            CameraEntry(
                name=name,
                dir=name,
                url="sim",
                segments=st.segments,
                index=f"{name}/{INDEX}",
                frames=st.frames,
                bytes=st.bytes,
                width=st.width,
                height=st.height,
                first_pts=st.first_pts,
                last_pts=st.last_pts,
                state="stopped",
                clock=ClockInfo(source="arrival"),
            )
        )
    write_manifest(
        take,
        Manifest(
            take_id="test-take",
            started_utc="2024-01-01T00:00:00Z",
            start_realtime_ns=0,
            timecode=TIMECODE,
            cameras=tuple(entries),
            state=state,
        ),
    )
    return take


def y_frames(path: Path) -> list[np.ndarray]:
    """The luma plane of every frame of a video."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            p = f.planes[0]
            out.append(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width])
    return out


def patch(y: np.ndarray) -> float:
    """Mean luma of a patch in the upper-left quarter, clear of labels."""
    h, w = y.shape
    return float(y[h // 5 : h // 3, w // 5 : w // 3].mean())


def frame_number(y: np.ndarray) -> int | None:
    """The source frame number whose grey level is closest, None for a black frame."""
    v = patch(y)
    if v < 30:
        return None
    return min(range(32), key=lambda n: abs(level(n) - v))
