"""Every frame carries the connection it came on, the first one of a connection included.

The connection number is what tells the take (gaps) and the clock refinement (a new
clock segment) that a stream started again. A node may send its response head and its
first frames in one TCP segment, so they are parsed in one go: the new connection must
be counted before that first frame is handed on, or the frame is filed under the
previous connection (a false gap, and a frame refined on the wrong segment).
"""

from __future__ import annotations

import asyncio

from mmrec.ingest.stream import CameraIngest, IngestConfig, Received, StreamTarget
from mmrec.sim.trickle import BOUNDARY, stream_parts
from tests.helpers import Arrivals, make_jpeg


async def test_frames_in_the_same_bytes_as_the_head_count_the_new_connection() -> None:
    frames = [make_jpeg(shade=n) for n in range(3)]
    served = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await reader.readuntil(b"\r\n\r\n")
        served += 1
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=%s\r\n\r\n"
            % BOUNDARY
        )
        writer.write(head + b"".join(stream_parts(frames)))  # all in one write
        await writer.drain()
        writer.close()  # the node goes away: the ingest reconnects

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    got: Arrivals[tuple[int, Received]] = Arrivals()
    cfg = IngestConfig(backoff_initial=0.01, backoff_max=0.02)
    cam = CameraIngest(
        StreamTarget.from_url("cam", f"http://127.0.0.1:{port}/stream"),
        lambda rx: got.append((cam.connects, rx)),
        cfg,
    )
    task = asyncio.create_task(cam.run())
    try:
        await got.wait(2 * len(frames), 10)
    finally:
        cam.stop()
        await asyncio.wait_for(task, 5)
        server.close()
        await server.wait_closed()
    conns = [c for c, _ in got[: 2 * len(frames)]]
    assert conns == [1, 1, 1, 2, 2, 2]
