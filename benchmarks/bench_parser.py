"""Throughput of MultipartParser against a naive growing-bytearray parser.

A synthetic MJPEG body of JPEG-sized parts (~250 KB, SOI ... EOI, no 0xFF in the
"entropy" bytes so no accidental markers) is cut into 64 KiB socket-sized chunks. The
parser gets them the way asyncio.BufferedProtocol delivers them: ``get_buffer`` then a
copy into the view (standing in for the kernel's recv_into) then ``buffer_updated``.
The baseline gets the chunks as bytes (``Protocol.data_received``), appends them to a
bytearray, searches for the delimiter from the start of the buffer on every chunk and
``del``s the consumed prefix: the parser most first drafts look like.

A third variant is the recorder's own path: payloads received straight into aligned
memory of their own (``alloc=mmrec.store.payload.aligned``), one part arriving at a time
and read the way the ingest reads it with the socket's low-water mark at
``bytes_wanted()`` (a short read of the part's headers, then one read of the rest of
the JPEG into its memory), with freed frame memory kept for reuse as ``mmrec record``
does (``mmrec.store.memory``).

Figures are CPU time (``time.process_time``), best of ``--repeat`` runs, so other
processes on the machine disturb them less than wall time would.

    .venv/bin/python benchmarks/bench_parser.py [--parts 200] [--part-size 250000]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable

import numpy as np

from mmrec.store import payload
from mmrec.store.memory import keep_freed_memory
from mmrec.wire.multipart import MultipartParser

BOUNDARY = b"mmrecbench"


def make_payloads(count: int, size: int, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        body = rng.integers(0, 255, size - 4 + (k % 7) * 101, dtype=np.uint8)  # no 0xFF
        out.append(b"\xff\xd8" + body.tobytes() + b"\xff\xd9")
    return out


def make_stream(payloads: list[bytes], *, with_length: bool) -> bytes:
    return b"".join(make_parts(payloads, with_length=with_length))


def make_parts(payloads: list[bytes], *, with_length: bool) -> list[bytes]:
    pieces = []
    for k, jpeg in enumerate(payloads):
        head = b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
        if with_length:
            head += b"Content-Length: %d\r\n" % len(jpeg)
        head += b"X-Timestamp: 1764067200.%06d\r\n\r\n" % k
        pieces.append(head + jpeg + b"\r\n")
    pieces.append(b"--" + BOUNDARY + b"--\r\n")
    return pieces


def run_parser(chunks: list[bytes]) -> int:
    parser = MultipartParser(BOUNDARY)
    n = 0
    for chunk in chunks:
        pos, size = 0, len(chunk)
        while pos < size:
            view = parser.get_buffer(-1)
            k = min(len(view), size - pos)
            view[:k] = chunk[pos : pos + k]  # the kernel's recv_into
            del view
            n += len(parser.buffer_updated(k))
            pos += k
    n += len(parser.feed_eof())
    return n


def run_direct(parts: list[bytes]) -> int:
    """The recorder's path: one part arrives at a time; read while ``bytes_wanted()`` wait."""
    parser = MultipartParser(BOUNDARY, alloc=payload.aligned)
    n = 0
    left = b""  # bytes below the low-water mark stay in the "socket" for the next read
    for k, data in enumerate(parts):
        last = k == len(parts) - 1
        src = [memoryview(left), memoryview(data)]
        waiting = len(left) + len(data)
        while waiting and (last or waiting >= parser.bytes_wanted()):
            view = parser.get_buffer(-1)
            m = got = min(len(view), waiting)
            at = 0
            while m:  # the kernel's recv_into, from one or two queued pieces
                piece = src[0]
                take = min(m, len(piece))
                view[at : at + take] = piece[:take]
                src[0] = piece[take:]
                if not src[0]:
                    src.pop(0)
                at += take
                m -= take
            del view
            n += len(parser.buffer_updated(got))
            waiting -= got
        left = b"".join(bytes(piece) for piece in src)
    n += len(parser.feed_eof())
    return n


def run_naive(chunks: list[bytes]) -> int:
    """Growing bytearray, rescan from the start on every chunk, del the consumed prefix."""
    delim = b"\r\n--" + BOUNDARY
    buf = bytearray()
    n = 0
    started = False
    for chunk in chunks:
        buf += chunk
        while True:
            if not started:
                i = buf.find(b"--" + BOUNDARY)
                if i < 0:
                    break
                del buf[: buf.index(b"\n", i) + 1]
                started = True
            end = buf.find(delim)  # from the start of the part, every time
            if end < 0:
                break
            head_end = buf.find(b"\r\n\r\n")
            headers = bytes(buf[:head_end]).split(b"\r\n")
            _ = [h.split(b":", 1) for h in headers]
            data = bytes(buf[head_end + 4 : end])
            n += data[:2] == b"\xff\xd8"
            del buf[: end + 2]
            started = False
    return n


def measure(
    fn: Callable[[list[bytes]], int], chunks: list[bytes], repeat: int
) -> tuple[float, int]:
    best = float("inf")
    parts = 0
    for _ in range(repeat):
        t0 = time.process_time()
        parts = fn(chunks)
        best = min(best, time.process_time() - t0)
    return best, parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=200)
    ap.add_argument("--part-size", type=int, default=250_000)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    keep_freed_memory()  # as mmrec record does: frame buffers are reused, not faulted in
    payloads = make_payloads(args.parts, args.part_size)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(
        f"{args.parts} parts of ~{args.part_size / 1000:.0f} KB, {args.chunk}-byte chunks, "
        f"CPU time, best of {args.repeat}"
    )
    print(f"{'variant':<42}{'MB/s':>10}{'CPU-µs/part':>14}{'vs naive':>10}")
    for with_length in (True, False):
        stream = make_stream(payloads, with_length=with_length)
        chunks = [stream[i : i + args.chunk] for i in range(0, len(stream), args.chunk)]
        label = "with Content-Length" if with_length else "without Content-Length"
        t_naive, n_naive = measure(run_naive, chunks, args.repeat)
        t_ours, n_ours = measure(run_parser, chunks, args.repeat)
        assert n_ours == n_naive == args.parts, (n_ours, n_naive)
        mb = len(stream) / 1e6
        for name, t in ((f"MultipartParser, {label}", t_ours), (f"naive, {label}", t_naive)):
            print(f"{name:<42}{mb / t:>10.0f}{t / args.parts * 1e6:>14.1f}{t_naive / t:>9.1f}x")
        if with_length:
            pieces = make_parts(payloads, with_length=True)
            t_direct, n_direct = measure(run_direct, pieces, args.repeat)
            assert n_direct == args.parts, n_direct
            name = "MultipartParser, direct receive (recorder)"
            print(
                f"{name:<42}{mb / t_direct:>10.0f}{t_direct / args.parts * 1e6:>14.1f}"
                f"{t_naive / t_direct:>9.1f}x"
            )


if __name__ == "__main__":
    main()
