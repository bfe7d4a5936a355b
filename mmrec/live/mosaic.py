"""The live mosaic's tiles: each camera's newest JPEG, its decoded picture and its state.

:meth:`Mosaic.update` keeps a reference to a camera's newest JPEG (on the event loop,
O(1)). A tick asks :meth:`Mosaic.due` which changed tiles to decode within the budget
(:mod:`mmrec.live.schedule`), decodes them with :func:`decode_tile` in worker threads,
hands the pictures back (:meth:`Mosaic.decoded`), and draws :meth:`Mosaic.tiles` with
:func:`draw` in the encode thread. A tile that stopped changing is marked STALE, then
LOST: never a frozen picture that looks live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from mmrec.errors import StreamFormatError
from mmrec.live.schedule import pick_tiles, tiles_in_budget
from mmrec.picture.compose import LIVE, LOST, NO_SIGNAL, Mark, render_tile, to_picture
from mmrec.picture.decode import Decoder
from mmrec.picture.layout import Layout, Rect, choose_scale, fit, grid_layout
from mmrec.picture.yuv import Picture
from mmrec.store.payload import Bytes
from mmrec.wire import jpeg

LOST_STATES: Final = frozenset({"lost", "stopped"})
WAITING: Final = Mark("nosignal", "")  # black with the camera's name only


class _Tile:
    __slots__ = (
        "arrived_ns",
        "bad",
        "data",
        "decoded_version",
        "name",
        "picture",
        "rect",
        "state",
        "time_ns",
        "version",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: Bytes | None = None
        self.arrived_ns = 0  # on the clock, when update() got it: staleness is measured here
        self.time_ns = 0  # the frame's time on the take timeline, as the recorder gave it
        self.version = 0  # bumped by update()
        self.decoded_version = 0
        self.state = "streaming"
        self.picture: Picture | None = None
        self.rect: Rect | None = None
        self.bad: Mark | None = None  # the newest frame was refused: why

    def mark(self, now: int, stale_ns: int, lost_ns: int) -> Mark:
        """How the tile is shown at ``now``: live, stale for how long, lost, no signal."""
        if self.data is None:
            return NO_SIGNAL
        age = now - self.arrived_ns
        lost = self.state in LOST_STATES or (self.state != "streaming" and age > lost_ns)
        if self.bad is not None:
            return LOST if lost else self.bad  # no picture to mark stale: why, until lost
        if self.picture is None:
            return WAITING  # frames arrive but none is decoded yet (just joined, re-laid out)
        if lost:
            return LOST
        if self.state != "streaming" or age > stale_ns:
            return Mark.stale(age / 1e9)
        return LIVE


@dataclass(frozen=True, slots=True)
class DecodeJob:
    """A tile to decode: its JPEG, its cell, the version it is."""

    index: int
    data: Bytes | None
    cell: Rect
    version: int


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded tile: its picture at its place's size, its place, how long it took."""

    picture: Picture
    rect: Rect
    version: int
    ms: float


@dataclass(frozen=True, slots=True)
class Refused:
    """A tile's frame not decoded: its header claims a size no camera sends."""

    version: int
    size: tuple[int, int]


@dataclass(frozen=True, slots=True)
class TileDraw:
    """What one tile shows in a mosaic, taken on the loop for the encode thread."""

    cell: Rect
    rect: Rect | None
    picture: Picture | None
    mark: Mark
    name: str


class Mosaic:
    """The tiles of a ``size`` mosaic, their marks after ``stale_ns`` and ``lost_ns``."""

    def __init__(
        self, size: tuple[int, int], clock: Callable[[], int], stale_ns: int, lost_ns: int
    ) -> None:
        self.size = size
        self._clock = clock
        self._stale_ns = stale_ns
        self._lost_ns = lost_ns
        self._tiles: dict[str, _Tile] = {}
        self._layout: Layout | None = None
        self._rr = 0  # where the next over-budget tick starts decoding (round-robin)
        self.decoded_tiles = 0
        self.skipped = 0
        self.errors = 0
        self.refused = 0  # frames not decoded: absurd sizes (mmrec.wire.jpeg.implausible)
        self.decode_ms = 5.0  # running mean; prior: a 1080p JPEG's entropy decoding dominates

    def tile(self, camera: str) -> _Tile:
        tile = self._tiles.get(camera)
        if tile is None:  # a camera joins the mosaic
            tile = self._tiles[camera] = _Tile(camera)
            self._layout = None  # re-layout at the next tick
        return tile

    def update(self, camera: str, data: Bytes, time_ns: int) -> None:
        tile = self._tiles.get(camera) or self.tile(camera)  # one call a frame, not two
        tile.data = data
        tile.time_ns = time_ns
        tile.arrived_ns = self._clock()
        tile.version += 1

    def due(self, budget: float, fps: float, encode_ms: float) -> list[DecodeJob]:
        """The changed tiles to decode this tick: as many as ``budget`` x the tick period
        allows (less ``encode_ms``), the others counted as skipped."""
        layout = self._layout or self._relayout()
        tiles = list(self._tiles.values())
        changed = [
            i for i, t in enumerate(tiles) if t.data is not None and t.version != t.decoded_version
        ]
        n = tiles_in_budget(budget, fps, encode_ms, self.decode_ms)
        chosen, skipped, self._rr = pick_tiles(changed, n, self._rr)
        self.skipped += skipped
        return [DecodeJob(i, tiles[i].data, layout.cells[i], tiles[i].version) for i in chosen]

    def decoded(
        self, jobs: Sequence[DecodeJob], results: Sequence[Decoded | Refused | None]
    ) -> None:
        """The pictures of ``jobs`` (None: would not decode, the last picture stays;
        refused: the tile says why instead of a picture)."""
        tiles = list(self._tiles.values())
        for job, res in zip(jobs, results, strict=True):
            t = tiles[job.index]
            if res is None:
                self.errors += 1
                t.decoded_version = t.version
                continue
            if isinstance(res, Refused):
                self.refused += 1
                t.bad, t.picture, t.decoded_version = Mark.bad(res.size), None, res.version
                continue
            t.bad = None
            t.picture, t.rect, t.decoded_version = res.picture, res.rect, res.version
            self.decoded_tiles += 1
            self.decode_ms += (res.ms - self.decode_ms) * 0.1

    def tiles(self, now: int) -> list[TileDraw]:
        """What every tile shows at ``now``."""
        # A camera may have joined since :meth:`due` (while the tick decoded): lay out again.
        layout = self._layout or self._relayout()
        return [
            TileDraw(cell, t.rect, t.picture, t.mark(now, self._stale_ns, self._lost_ns), t.name)
            for cell, t in zip(layout.cells, self._tiles.values(), strict=True)
        ]

    def __len__(self) -> int:
        return len(self._tiles)

    def _relayout(self) -> Layout:
        layout = grid_layout(len(self._tiles), self.size)
        for tile in self._tiles.values():  # new tile sizes: decode every camera again
            tile.rect = None
            tile.picture = None
            tile.decoded_version = 0
        self._layout = layout
        return layout


def decode_tile(dec: Decoder, job: DecodeJob) -> Decoded | Refused | None:
    """Worker thread: JPEG -> a picture at its tile's size (None if it will not decode;
    refused, and never decoded, if its header claims a size no camera sends)."""
    started = time.perf_counter()
    info = jpeg.parse_header(job.data) if job.data is not None else None
    if job.data is None or info is None:
        return None
    if jpeg.implausible(info.width, info.height, memoryview(job.data).nbytes):
        return Refused(job.version, (info.width, info.height))
    rect = fit(info.width, info.height, job.cell)
    scale = choose_scale(info.width, info.height, rect.w, rect.h, dec.scales)
    try:
        pic = dec.decode(job.data, scale)
    except StreamFormatError:
        return None
    tile = to_picture(pic, rect.w, rect.h)
    return Decoded(tile, rect, job.version, (time.perf_counter() - started) * 1000.0)


def draw(canvas: Picture, tiles: Sequence[TileDraw]) -> None:
    """Every tile into ``canvas`` (black where no tile is)."""
    for t in tiles:
        render_tile(canvas, t.cell, t.rect, t.picture, t.mark, t.name)
