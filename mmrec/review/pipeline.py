"""The proxies' threads: every output's work on ``workers`` threads, a window of instants
at a time.

A camera's work at an instant is one task: decode its newly shown frame (if any), draw its
proxy frame, draw its multiview tile, encode its proxy frame (see
:mod:`mmrec.review.render`). Doing all of it on one core right after the decode keeps the
planes in that core's cache, and a task never waits on another thread. The multiview's
task at an instant (timecode, encode) is ready once every camera has drawn its tile. Each
output (a camera, the multiview) is a *lane* that runs its instants in order and on one
worker at a time; workers take the ready task of the oldest instant. The main thread only
reads and plans, and blocks while ``window`` instants are in flight (nothing is dropped:
an offline job).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mmrec.picture.yuv import Picture, new_frame
from mmrec.review.multiview import Multiview
from mmrec.review.plan import OutputFrame
from mmrec.review.render import CameraStrand
from mmrec.review.source import SourceFrame


@dataclass(eq=False)
class _Instant:
    """One output instant in flight: the plan's output frame and the multiview's frame."""

    out: OutputFrame[SourceFrame]
    mv_frame: Any  # av.VideoFrame, or None without a multiview
    mv_canvas: Picture | None
    pending: int  # cameras that have not drawn this instant yet

    @property
    def k(self) -> int:
        return self.out.k


@dataclass(eq=False)
class _Lane:
    """One output's instants to run, in order, by one worker at a time (``busy``)."""

    camera: CameraStrand | None  # None: the multiview
    todo: deque[_Instant] = field(default_factory=deque)
    busy: bool = False

    def ready(self) -> _Instant | None:
        """The next instant if its task can run now (under the lock): the multiview's once
        every camera has drawn its tile."""
        if not self.todo:
            return None
        inst = self.todo[0]
        return inst if self.camera is not None or inst.pending == 0 else None


class Pipeline:
    """Runs ``cameras`` and ``multiview`` over the instants :meth:`add` queues; see the
    module docstring. ``cpu`` holds each worker's (decode, compose, encode) seconds."""

    def __init__(
        self,
        cameras: list[CameraStrand],
        multiview: Multiview | None,
        workers: int,
        window: int,
        contact_k: int,
    ) -> None:
        self.cameras = cameras
        self.mv = multiview
        self._lanes = [_Lane(c) for c in cameras]
        self._mv_lane = _Lane(None) if multiview is not None else None
        if self._mv_lane is not None:
            self._lanes.append(self._mv_lane)
        self._window = max(1, window)
        self._batch = self._window  # a run may take every instant in flight (see _work)
        self._contact_k = contact_k
        self.contact_ready = False  # every camera has drawn the contact sheet's instant
        self._in_flight = 0
        self._mv_frames: list[Any] = []  # free multiview frames (reused)
        self._cond = threading.Condition()
        self._stopping = False
        self._error: BaseException | None = None
        self.cpu = [[0.0, 0.0, 0.0] for _ in range(workers)]
        self._threads = [
            threading.Thread(target=self._work, args=(w,), name=f"proxy-{w}", daemon=True)
            for w in range(workers)
        ]
        for t in self._threads:
            t.start()

    def add(self, out: OutputFrame[SourceFrame]) -> None:
        """Queue an output frame; blocks while the window is full; raises a worker's error."""
        with self._cond:
            while self._in_flight >= self._window and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            mv_frame = mv_canvas = None
            if self.mv is not None:
                if self._mv_frames:
                    mv_frame = self._mv_frames.pop()
                    mv_canvas = Picture.of_frame(mv_frame)
                else:
                    mv_frame, mv_canvas = new_frame(*self.mv.size, black=True)
            inst = _Instant(out, mv_frame, mv_canvas, len(self.cameras))
            self._in_flight += 1
            for lane in self._lanes:
                lane.todo.append(inst)
            self._cond.notify_all()

    def finish(self) -> None:
        """Wait for every queued instant, stop the workers; raises a worker's error."""
        with self._cond:
            while self._in_flight and self._error is None:
                self._cond.wait()
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()

    def _pick(self) -> tuple[_Lane, _Instant] | None:
        """The ready task of the oldest instant, the multiview's on a tie (under the lock)."""
        best: tuple[_Lane, _Instant] | None = None
        for lane in self._lanes:
            inst = None if lane.busy else lane.ready()
            if inst is None:
                continue
            if best is None or inst.k < best[1].k or (lane.camera is None and inst.k == best[1].k):
                best = (lane, inst)
        return best

    def _work(self, w: int) -> None:
        cpu = self.cpu[w]
        while True:
            with self._cond:
                while True:
                    if self._stopping or self._error is not None:
                        return
                    task = self._pick()
                    if task is not None:
                        break
                    self._cond.wait()
                lane, inst = task
                self._take(lane)
            camera = lane.camera
            # Run up to ``batch`` of this lane's instants in a row: its encoder's state
            # stays in this core's cache (measured: 0.99 ms per 540p encode round-robin
            # over 4 encoders, 0.81 in runs of 8, 0.72 for one encoder alone). A camera's
            # run decodes and draws all its frames first, then encodes them back to back:
            # measured 0.76-0.77 ms per encode instead of 0.88-0.91 with a decode between.
            # Only a run's first encodes pay for bringing the encoder's state back (by
            # position in runs of 12: 1.12, 0.88, 0.75, then 0.70 ms), so runs may be as
            # long as the window: encode 2.65 -> 2.50 s CPU (best of 6) for 20 s of 4
            # cameras, for one proxy frame per instant in flight per camera (not half).
            drawn: list[Any] = []
            for n in range(1, self._batch + 1):
                try:
                    if camera is None:
                        assert self.mv is not None and inst.mv_canvas is not None
                        self.mv.finish(inst.mv_frame, inst.mv_canvas, inst.out.timecode)
                    else:
                        # the next instant may show this picture again (not queued yet,
                        # or queued holding it): its labels' undersides are kept
                        held_next = not lane.todo or lane.todo[0].out.held[camera.index]
                        drawn.append(camera.draw(inst.out, n - 1, held_next, inst.mv_canvas, cpu))
                except BaseException as exc:
                    self._fail(exc)
                    return
                with self._cond:
                    # Waiters are woken only when what they wait for may have changed: an
                    # instant retired (the reader), the multiview's task ready or a lane
                    # free (the other workers). A wake-up is a futex call and a context
                    # switch (measured ~2% of the CPU when every task woke everyone).
                    wake = camera is None
                    if camera is None:
                        self._retire(inst)
                    else:
                        inst.pending -= 1
                        wake = inst.pending == 0
                        if wake and self.mv is None:
                            self._retire(inst)
                    nxt = lane.ready() if n < self._batch else None
                    done = nxt is None or self._stopping or self._error is not None
                    if done and camera is None:
                        lane.busy = False
                    if wake or (done and camera is None):
                        self._cond.notify_all()
                    if done or nxt is None:
                        break
                    inst = nxt
                    self._take(lane)
            if camera is not None:
                t0 = time.thread_time()
                try:
                    camera.encode(drawn)  # in order, before another worker takes the lane
                except BaseException as exc:
                    self._fail(exc)
                    return
                cpu[2] += time.thread_time() - t0
                with self._cond:
                    lane.busy = False
                    self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = self._error or exc
            self._cond.notify_all()

    @staticmethod
    def _take(lane: _Lane) -> None:
        lane.busy = True
        lane.todo.popleft()

    def _retire(self, inst: _Instant) -> None:
        self._in_flight -= 1
        if inst.mv_frame is not None:
            self._mv_frames.append(inst.mv_frame)
        if inst.k == self._contact_k:
            self.contact_ready = True
