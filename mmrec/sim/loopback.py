"""A bare MJPEG server on loopback: the base of the simulator's odd servers
(:mod:`mmrec.sim.trickle`, :mod:`mmrec.sim.hostile`).

It listens on 127.0.0.1 (port 0: any free one), reads each client's request head and
leaves the answer to the subclass (:meth:`LoopbackServer._serve`: the response head, then
whatever stream it simulates). A client that goes away is its right, not an error.
:meth:`close` stops listening and ends every connection's handler within a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar, Final, Self

HANDLERS_WAIT_S: Final = 5.0  # close() waits at most this long for the handlers to end


def response_head(boundary: bytes) -> bytes:
    """The HTTP response head of a multipart stream with ``boundary``."""
    return (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: multipart/x-mixed-replace; boundary=%s\r\n\r\n" % boundary
    )


class LoopbackServer:
    """One stream per connection on 127.0.0.1 until :meth:`close`; :meth:`_serve` sends it."""

    # How a connection ends: gracefully (FIN, the client reads to the end), or aborted
    # (a handler cancelled by close(), as a server that is killed).
    cancel_on_close: ClassVar[bool] = False

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()  # set by close(): a stream that stays open ends
        self.connections = 0  # clients served so far
        self.url = ""

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._port)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/stream"
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.cancel_on_close:
            for task in list(self._handlers):
                task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=HANDLERS_WAIT_S)

    async def _serve(self, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            await self._serve(writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away (a recorder that gave up on us): its right
        except asyncio.CancelledError:
            pass  # close(): the handler ends (asyncio's streams would log a cancelled one)
        finally:
            if self.cancel_on_close:
                writer.transport.abort()
            else:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            self._handlers.discard(task)
