"""The live preview's picture worker, seen from the recorder: its messages, their framing
on the socket, and :class:`PictureWorker`, the handle that starts it, talks to it and
ends it (the worker's own side is :mod:`mmrec.live.worker`).

Framing: a message is one length-prefixed record (``Connection.send_bytes``) holding the
pickled message and how many payloads follow, then each payload as a record of its own
raw bytes. Payloads are the JPEGs: the due tiles' frames going out, the mosaic coming
back; they are written from the recorder's buffers as they are (a read-only memoryview
over numpy memory is fine) and never pickled. The pickled part is small (names, cells,
marks, counters) and only ever travels between this process and the child it started.

Invariants of :class:`PictureWorker`:
- nothing here blocks the event loop: one sender thread writes requests in order, one
  receiver thread reads answers, which come back in the same order, each to the future
  its request got;
- every wait is bounded: a request not answered in its time marks the worker hung, and
  it is killed;
- a worker that cannot start, dies or hangs only makes :attr:`PictureWorker.error` say
  why (and every waiting request raise :class:`PictureWorkerError`); the caller's
  recording never sees more;
- :meth:`PictureWorker.close` always ends the process (terminate, then kill, each after
  a timeout), reaps it and closes the socket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final

import mmrec
from mmrec.errors import PictureWorkerError
from mmrec.live.mosaic import Decoded, DecodeJob, Refused, TileState
from mmrec.store.payload import Bytes

CLOSE_GRACE_S: Final = 3.0  # after Close is answered, or terminate is sent, to exit


# -- requests (recorder -> worker) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setup:
    """The first message: the mosaic's size and rate, JPEG quality, decode threads and
    which decoder (``auto``, ``turbojpeg``, ``pyav``)."""

    size: tuple[int, int]
    fps: float
    quality: int
    workers: int
    backend: str


@dataclass(frozen=True, slots=True)
class OpenFile:
    """Finalize the current preview.mkv; with ``folder``, begin one there whose pts count
    from ``start_ns`` (on the recorder's clock)."""

    folder: Path | None
    start_ns: int


@dataclass(frozen=True, slots=True)
class Tick:
    """One mosaic at ``now_ns``: decode ``jobs`` (their JPEGs travel as payloads), draw
    ``tiles`` of layout ``epoch``, write it, and JPEG it if ``want_jpeg``."""

    now_ns: int
    epoch: int
    tiles: tuple[TileState, ...]
    jobs: tuple[DecodeJob, ...]
    want_jpeg: bool


@dataclass(frozen=True, slots=True)
class Close:
    """Finalize preview.mkv, answer, exit."""


Request = Setup | OpenFile | Tick | Close


# -- answers (worker -> recorder), one per request, in order ------------------------------


@dataclass(frozen=True, slots=True)
class Ready:
    pid: int


@dataclass(frozen=True, slots=True)
class Opened:
    error: str | None  # why preview.mkv cannot be written


@dataclass(frozen=True, slots=True)
class Ticked:
    """A tick's outcome: each job's decode, the time composing + H.264 + JPEG took, frames
    in the current file, why the file stopped being written (if it did), why the tick
    failed (if it did), the mosaic's JPEG (a payload) if one was asked for, and the words
    on each tile as drawn (a mark's text; "" for a live picture), in the tick's order."""

    results: tuple[Decoded | Refused | None, ...]
    encode_ms: float
    frames: int
    error: str | None
    failed: str | None
    jpeg: bytes | None = None
    marks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Closed:
    error: str | None


Answer = Ready | Opened | Ticked | Closed


# -- framing -------------------------------------------------------------------------------


def send(conn: Connection, message: Request | Answer) -> None:
    """Write ``message`` (blocking): its small part pickled, its JPEGs as raw records."""
    payloads: list[Bytes] = []
    if isinstance(message, Tick):
        payloads = [job.data if job.data is not None else b"" for job in message.jobs]
        message = replace(message, jobs=tuple(replace(job, data=None) for job in message.jobs))
    elif isinstance(message, Ticked) and message.jpeg is not None:
        payloads = [message.jpeg]
        message = replace(message, jpeg=None)
    conn.send_bytes(pickle.dumps((message, len(payloads)), pickle.HIGHEST_PROTOCOL))
    for data in payloads:
        conn.send_bytes(data)  # no copy: the record's header, then the buffer itself


def receive(conn: Connection) -> Request | Answer:
    """Read one message (blocking); EOFError when the other side has gone."""
    message, count = pickle.loads(conn.recv_bytes())
    payloads = [conn.recv_bytes() for _ in range(count)]
    if isinstance(message, Tick):
        jobs = tuple(replace(j, data=d) for j, d in zip(message.jobs, payloads, strict=True))
        return replace(message, jobs=jobs)
    if isinstance(message, Ticked) and payloads:
        return replace(message, jpeg=payloads[0])
    if not isinstance(message, Request | Answer):
        raise PictureWorkerError(f"not a picture worker message: {type(message).__name__}")
    return message


# -- the handle ------------------------------------------------------------------------------


def _settle(fut: asyncio.Future[Answer], answer: Answer | None, error: str | None) -> None:
    if fut.done():  # its asker gave up (timeout, cancelled): the answer is dropped
        return
    if answer is not None:
        fut.set_result(answer)
    else:
        fut.set_exception(PictureWorkerError(error or "the picture worker has gone"))


class PictureWorker:
    """The picture worker process: see the module docstring.

    Usage (on the event loop)::

        worker = PictureWorker(Setup((1920, 1080), 10.0, 75, 2, "auto"))
        await worker.start(30)              # PictureWorkerError if it cannot
        answer = await worker.ask(OpenFile(folder, now), 30)
        ...
        await worker.close(10)
    """

    def __init__(self, setup: Setup) -> None:
        self._setup = setup
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._pending: collections.deque[asyncio.Future[Answer]] = collections.deque()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._error: str | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def error(self) -> str | None:
        """Why the worker is gone (None while it works)."""
        return self._error

    async def start(self, timeout: float) -> None:
        """Start the process and wait (at most ``timeout``) until it is set up."""
        self._loop = asyncio.get_running_loop()
        try:
            # fork + exec off the loop: it copies the page tables of a large process
            self._proc, self._conn = await asyncio.to_thread(_spawn)
        except OSError as exc:
            self._error = f"the preview's picture worker cannot start: {exc}"
            raise PictureWorkerError(self._error) from exc
        for target, name in ((self._send_loop, "send"), (self._receive_loop, "receive")):
            t = threading.Thread(target=target, name=f"preview-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        await self.ask(self._setup, timeout)

    async def ask(self, request: Request, timeout: float) -> Answer:
        """Send ``request``, wait (at most ``timeout``) for its answer. A worker that
        takes longer is taken for hung: it is killed and :attr:`error` says so."""
        if self._error is not None or self._loop is None:
            raise PictureWorkerError(self._error or "the picture worker is not started")
        fut: asyncio.Future[Answer] = self._loop.create_future()
        self._pending.append(fut)  # before the request can be answered: answers are in order
        self._outbox.put(request)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            what = type(request).__name__
            self._fail(f"the preview's picture worker did not answer {what} in {timeout:g} s")
            raise PictureWorkerError(self._error or "") from None

    async def close(self, timeout: float) -> str | None:
        """Ask the worker to finalize its file and exit; then make sure it has ended
        (terminate, kill), reap it and close the socket. Returns why the file could not
        be finalized, if it could not."""
        error: str | None = None
        if self._error is None and self._proc is not None:
            try:
                answer = await self.ask(Close(), timeout)
                error = answer.error if isinstance(answer, Closed) else None
            except PictureWorkerError as exc:
                error = str(exc)
        self._outbox.put(None)
        await asyncio.to_thread(self._end)
        return error

    # -- threads -----------------------------------------------------------------------------

    def _send_loop(self) -> None:
        assert self._conn is not None
        while (request := self._outbox.get()) is not None:
            try:
                send(self._conn, request)
            except OSError:  # its end of the socket has closed: it died
                self._fail(f"the preview's picture worker died ({self._exit_status()})")
                return
            except Exception as exc:  # whatever it was, the channel is no use now
                what = type(request).__name__
                self._fail(f"the preview's picture worker cannot be sent {what}: {exc!r}")
                return

    def _receive_loop(self) -> None:
        assert self._conn is not None
        while True:
            try:
                answer = receive(self._conn)
                fut = self._pending.popleft()  # IndexError: an answer nobody asked for
            except Exception:  # end of file, a broken socket, a garbled answer
                # (never the end of a worker told to close: this loop ends at Closed)
                self._fail(f"the preview's picture worker died ({self._exit_status()})")
                return
            self._call(_settle, fut, answer, None)
            if isinstance(answer, Closed):
                return

    # -- failure and the end -----------------------------------------------------------------

    def _call(self, *args: object) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            self._loop.call_soon_threadsafe(*args)  # type: ignore[arg-type]

    def _fail(self, why: str) -> None:
        """Any thread: the worker is gone or useless; note why (once), kill it, and fail
        every request that waits."""
        with self._lock:
            if self._error is None:
                self._error = why
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._proc.kill()
        while True:
            try:
                fut = self._pending.popleft()
            except IndexError:
                break
            self._call(_settle, fut, None, self._error)

    def _exit_status(self) -> str:
        if self._proc is None:
            return "not started"
        try:
            code = self._proc.wait(CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            return "its socket closed"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def _end(self) -> None:
        """Blocking (a thread): the process ended and reaped, the threads and socket done."""
        proc = self._proc
        if proc is not None:
            for stop in (None, proc.terminate, proc.kill):
                if stop is not None:
                    with contextlib.suppress(OSError):
                        stop()
                try:
                    proc.wait(CLOSE_GRACE_S)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for t in self._threads:  # their reads and writes end with the process's socket
            t.join(CLOSE_GRACE_S)
        if self._conn is not None:
            self._conn.close()


def _spawn() -> tuple[subprocess.Popen[bytes], Connection]:
    """``python -m mmrec.live.worker FD``, its end of a socket pair as FD, in a session of
    its own (a Ctrl-C at the terminal is the recorder's to handle: the worker finalizes
    preview.mkv when told). It imports this same mmrec tree."""
    ours, theirs = socket.socketpair()
    root = str(Path(mmrec.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmrec.live.worker", str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
            env=env,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()  # the child has its copy: its exit is our EOF
    return proc, Connection(ours.detach())
