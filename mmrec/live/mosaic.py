"""The live mosaic's tiles: each camera's newest JPEG, its state, and what the picture
worker shows of it.

The work is split across two processes (:mod:`mmrec.live.worker` says why):

- :class:`Mosaic`, in the recorder's process, keeps a reference to each camera's newest
  JPEG (:meth:`Mosaic.update`, on the event loop, O(1)), decides per tick which changed
  tiles to decode within the budget (:meth:`Mosaic.due`, :mod:`mmrec.live.schedule`),
  describes every tile for drawing (:meth:`Mosaic.tiles`: name, cell, whether it is stale
  or lost) and counts what the worker reports (:meth:`Mosaic.decoded`);
- :class:`Board`, in the picture worker, holds the decoded pictures: it decodes the due
  tiles with :func:`decode_tile` and draws the mosaic with :func:`draw`.

Both sides apply the same outcome of each decode, so the tiles' marks agree: a tile that
stopped changing is marked STALE, then LOST; never a frozen picture that looks live.
The layout is numbered (:attr:`Mosaic.epoch`): when a camera joins, every tile is laid
out and decoded again, and the board drops the pictures of the old layout.
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


def tile_mark(
    has_data: bool, bad: Mark | None, has_picture: bool, lost: bool, stale_s: float | None
) -> Mark:
    """How a tile is shown: no signal, why its frame was refused, waiting for its first
    picture, lost, stale for ``stale_s``, or live."""
    if not has_data:
        return NO_SIGNAL
    if bad is not None:
        return LOST if lost else bad  # no picture to mark stale: why, until lost
    if not has_picture:
        return WAITING  # frames arrive but none is decoded yet (just joined, re-laid out)
    if lost:
        return LOST
    if stale_s is not None:
        return Mark.stale(stale_s)
    return LIVE


class _Tile:
    __slots__ = ("arrived_ns", "data", "decoded_version", "name", "state", "time_ns", "version")

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: Bytes | None = None
        self.arrived_ns = 0  # on the clock, when update() got it: staleness is measured here
        self.time_ns = 0  # the frame's time on the take timeline, as the recorder gave it
        self.version = 0  # bumped by update()
        self.decoded_version = 0
        self.state = "streaming"

    def view(self, cell: Rect, now: int, stale_ns: int, lost_ns: int) -> TileState:
        age = now - self.arrived_ns
        lost = self.state in LOST_STATES or (self.state != "streaming" and age > lost_ns)
        stale = self.state != "streaming" or age > stale_ns
        return TileState(
            cell,
            self.name,
            self.data is not None,
            lost,
            age / 1e9 if stale else None,
        )


@dataclass(frozen=True, slots=True)
class DecodeJob:
    """A tile to decode: its JPEG, its cell, the version it is, in layout ``epoch``."""

    index: int
    data: Bytes | None
    cell: Rect
    version: int
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Decoded:
    """A tile decoded: where its picture sits in its cell, how long the decode took."""

    rect: Rect
    version: int
    ms: float


@dataclass(frozen=True, slots=True)
class Refused:
    """A tile's frame not decoded: its header claims a size no camera sends."""

    version: int
    size: tuple[int, int]


@dataclass(frozen=True, slots=True)
class TileState:
    """One tile at a tick, as the recorder's side knows it: its place, its name, whether
    it has frames, is lost or stale (for how long). Sent to the worker with each tick;
    what its last decode gave (a picture, or why the frame was refused) only the worker
    keeps (:class:`Board`)."""

    cell: Rect
    name: str
    has_data: bool
    lost: bool
    stale_s: float | None


@dataclass(frozen=True, slots=True)
class TileDraw:
    """What one tile shows in a mosaic: drawn by the worker."""

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
        self.epoch = 0  # the layout's number: bumped when the tiles are laid out again
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
        return [
            DecodeJob(i, tiles[i].data, layout.cells[i], tiles[i].version, self.epoch)
            for i in chosen
        ]

    def decoded(
        self, jobs: Sequence[DecodeJob], results: Sequence[Decoded | Refused | None]
    ) -> None:
        """The outcomes of ``jobs`` (None: would not decode, the last picture stays;
        refused: the tile says why instead of a picture). Outcomes of an older layout
        are dropped: those tiles are decoded again for the new one."""
        tiles = list(self._tiles.values())
        for job, res in zip(jobs, results, strict=True):
            if job.epoch != self.epoch:
                continue
            t = tiles[job.index]
            if res is None:
                self.errors += 1
                t.decoded_version = t.version
                continue
            if isinstance(res, Refused):
                self.refused += 1
                t.decoded_version = res.version
                continue
            t.decoded_version = res.version
            self.decoded_tiles += 1
            self.decode_ms += (res.ms - self.decode_ms) * 0.1

    def tiles(self, now: int) -> list[TileState]:
        """Every tile at ``now``."""
        # A camera may have joined since :meth:`due` (while the tick decoded): lay out again.
        layout = self._layout or self._relayout()
        return [
            t.view(cell, now, self._stale_ns, self._lost_ns)
            for cell, t in zip(layout.cells, self._tiles.values(), strict=True)
        ]

    def __len__(self) -> int:
        return len(self._tiles)

    def _relayout(self) -> Layout:
        layout = grid_layout(len(self._tiles), self.size)
        for tile in self._tiles.values():  # new tile sizes: decode every camera again
            tile.decoded_version = 0
        self._layout = layout
        self.epoch += 1
        return layout


class Board:
    """The picture worker's side of the mosaic: each tile's decoded picture, or why it
    has none, in the layout numbered :attr:`epoch`."""

    def __init__(self) -> None:
        self.epoch = -1
        self._pictures: dict[int, tuple[Rect, Picture]] = {}
        self._bad: dict[int, Mark] = {}

    def lay_out(self, epoch: int) -> None:
        """Tiles of layout ``epoch`` follow: a new layout starts without pictures (a
        refused frame's mark stays, as in :meth:`Mosaic._relayout`)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._pictures.clear()

    def apply(self, index: int, outcome: tuple[Decoded, Picture] | Refused | None) -> None:
        """A decode's outcome for tile ``index`` (as :meth:`Mosaic.decoded` counts it)."""
        if outcome is None:
            return  # would not decode: the last picture stays
        if isinstance(outcome, Refused):
            self._pictures.pop(index, None)
            self._bad[index] = Mark.bad(outcome.size)
            return
        self._bad.pop(index, None)
        self._pictures[index] = (outcome[0].rect, outcome[1])

    def draws(self, tiles: Sequence[TileState]) -> list[TileDraw]:
        """What every tile shows: its picture here, its mark from ``tiles`` and here."""
        out = []
        for i, t in enumerate(tiles):
            got = self._pictures.get(i)
            m = tile_mark(t.has_data, self._bad.get(i), got is not None, t.lost, t.stale_s)
            rect, pic = got if got is not None else (None, None)
            out.append(TileDraw(t.cell, rect, pic, m, t.name))
        return out


def decode_tile(dec: Decoder, job: DecodeJob) -> tuple[Decoded, Picture] | Refused | None:
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
    return Decoded(rect, job.version, (time.perf_counter() - started) * 1000.0), tile


def draw(canvas: Picture, tiles: Sequence[TileDraw]) -> None:
    """Every tile into ``canvas`` (black where no tile is)."""
    for t in tiles:
        render_tile(canvas, t.cell, t.rect, t.picture, t.mark, t.name)
