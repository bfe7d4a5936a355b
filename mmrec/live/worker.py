"""The live preview's picture worker: a child process that decodes the due tiles, draws
the mosaic, writes preview.mkv and JPEGs the mosaic when someone watches.

Why a process: in the recorder's process this work (numpy, TurboJPEG, x264; ~45 % of a
core for 16 cameras at 10 mosaics a second) competed for the GIL with the recording
threads and the event loop, and the hand-overs made every recorded frame cost more. Here
it has an interpreter of its own and runs at nice +10
(:data:`~mmrec.live.schedule.WORKER_NICE`), so under CPU contention the recorder wins.
The recorder keeps only references to each camera's newest JPEG and, once per tick,
sends the due ones (:mod:`mmrec.live.channel`).

Why ``python -m mmrec.live.worker FD`` through :mod:`subprocess` rather than a
``multiprocessing`` spawn: spawn re-imports the parent's ``__main__`` in the child (a
benchmark script, pytest, the ``mmrec`` entry point), and its start-up is harder to bound
and to see in ``ps``. Here the child imports only mmrec's picture modules, talks over one
inherited socket and runs in a session of its own, so a Ctrl-C meant for the recorder
does not cut preview.mkv short: the recorder says when to close it.

One request at a time, each answered in order. The parent going away (end of file on
the socket) finalizes preview.mkv and ends the worker too: it never outlives its recorder.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import signal
import sys
import time
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final

import av

from mmrec.errors import MmrecError, RecordingError
from mmrec.live.channel import (
    Close,
    Closed,
    Opened,
    OpenFile,
    Ready,
    Request,
    Setup,
    Tick,
    Ticked,
    receive,
    send,
)
from mmrec.live.mosaic import Board, Decoded, Refused, decode_tile, draw
from mmrec.live.schedule import nice_worker
from mmrec.picture.decode import Decoder
from mmrec.picture.h264 import H264Writer, x264_options
from mmrec.picture.still import encode_jpeg
from mmrec.picture.yuv import new_frame
from mmrec.timeline.rate import as_rate

PREVIEW_FILE: Final = "preview.mkv"
# x264 for a live file: fast, no lookahead (zerolatency), threads as x264 chooses.
PREVIEW_X264: Final = x264_options("ultrafast", tune="zerolatency", crf=26, threads=None)
# What a tick may raise that is the preview's problem, not a bug: noted, the worker goes on.
TICK_ERRORS: Final = (MmrecError, ValueError, av.FFmpegError, OSError)


def preview_writer(path: Path, size: tuple[int, int], fps: float) -> H264Writer:
    """H.264 in Matroska, one packet flushed per frame; pts in ms of the clock."""
    return H264Writer(
        path,
        size,
        rate=as_rate(fps),  # 29.97 -> 30000/1001
        time_base=Fraction(1, 1000),
        x264=PREVIEW_X264,
        container="matroska",
        container_options={"flush_packets": "1"},
        metadata={"title": "mmrec live preview"},
    )


class Painter:
    """The worker's state: the decoder and its threads, the tiles' pictures, the file."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.dec = Decoder(setup.backend)
        self.board = Board()
        # the threads inherit the process's niceness; nice_worker says it again per thread
        self.pool = cf.ThreadPoolExecutor(
            max(1, setup.workers), thread_name_prefix="decode", initializer=nice_worker
        )
        self.writer: H264Writer | None = None
        self.start_ns = 0
        self.error: str | None = None

    def open(self, req: OpenFile) -> Opened:
        self._finish()
        self.error = None
        self.start_ns = req.start_ns
        if req.folder is not None:
            try:
                self.writer = preview_writer(
                    req.folder / PREVIEW_FILE, self.setup.size, self.setup.fps
                )
            except RecordingError as exc:
                self.error = str(exc)
        return Opened(self.error)

    def tick(self, req: Tick) -> Ticked:
        self.board.lay_out(req.epoch)
        jobs = req.jobs
        if len(jobs) > 1:
            outcomes = list(self.pool.map(decode_tile, [self.dec] * len(jobs), jobs))
        else:
            outcomes = [decode_tile(self.dec, job) for job in jobs]
        results: list[Decoded | Refused | None] = []
        for job, outcome in zip(jobs, outcomes, strict=True):
            self.board.apply(job.index, outcome)
            results.append(outcome[0] if isinstance(outcome, tuple) else outcome)
        started = time.perf_counter()
        frame, canvas = new_frame(*self.setup.size, black=True)
        draws = self.board.draws(req.tiles)
        draw(canvas, draws)
        if self.writer is not None and self.error is None:
            try:
                self.writer.write(frame, (req.now_ns - self.start_ns) // 1_000_000)
            except RecordingError as exc:
                self.error = str(exc)
        data = None
        if req.want_jpeg:
            data = encode_jpeg(canvas, self.setup.quality, self.dec.turbojpeg)
        ms = (time.perf_counter() - started) * 1000.0
        frames = self.writer.frames if self.writer is not None else 0
        marks = tuple(d.mark.text for d in draws)
        return Ticked(tuple(results), ms, frames, self.error, None, data, marks)

    def close(self) -> Closed:
        self._finish()
        self.pool.shutdown(wait=False, cancel_futures=True)
        return Closed(self.error)

    def _finish(self) -> None:
        old, self.writer = self.writer, None
        if old is not None:
            try:
                old.close()
            except RecordingError as exc:
                self.error = str(exc)


def answer(painter: Painter | None, req: Request) -> Ready | Opened | Ticked | Closed:
    """What the worker answers ``req``."""
    if isinstance(req, Setup):
        return Ready(os.getpid())
    assert painter is not None, "Setup comes first"
    if isinstance(req, OpenFile):
        return painter.open(req)
    if isinstance(req, Close):
        return painter.close()
    try:
        return painter.tick(req)
    except TICK_ERRORS as exc:
        frames = painter.writer.frames if painter.writer is not None else 0
        return Ticked((), 0.0, frames, painter.error, f"preview tick failed: {exc}")


def serve(conn: Connection) -> None:
    """Answer requests until Close, or until the recorder has gone."""
    painter: Painter | None = None
    try:
        while True:
            try:
                req = receive(conn)
            except EOFError:
                return  # the recorder has gone: finalize the file, end
            if isinstance(req, Setup):
                painter = Painter(req)
            elif not isinstance(req, OpenFile | Tick | Close):
                raise MmrecError(f"the picture worker was sent {type(req).__name__}")
            send(conn, answer(painter, req))
            if isinstance(req, Close):
                return
    finally:
        if painter is not None:
            painter.close()


def main(argv: list[str]) -> int:
    """``python -m mmrec.live.worker FD``: serve the recorder on socket FD."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the recorder says when to stop
    nice_worker()  # before any thread starts: they all inherit it
    with (
        contextlib.closing(Connection(int(argv[0]))) as conn,
        contextlib.suppress(BrokenPipeError, ConnectionResetError),
    ):
        serve(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
