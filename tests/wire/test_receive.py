"""The receive buffer and the direct-receive policy, on their own: memory handed to the
kernel, positions kept across compaction, bytes moved, payload memory."""

from __future__ import annotations

import pytest

from mmrec.errors import StreamFormatError
from mmrec.store import payload
from mmrec.wire.receive import DIRECT_MAX, DirectReceive, ReceiveBuffer


def fill(rx: ReceiveBuffer, data: bytes, *, limit: int = 0) -> None:
    """Write ``data`` the way the kernel would: into the views the buffer offers."""
    pos = 0
    while pos < len(data):
        with rx.writable(limit) as view:
            assert len(view) > 0
            n = min(len(view), len(data) - pos)
            view[:n] = data[pos : pos + n]
        rx.filled(n)
        pos += n


def unconsumed(rx: ReceiveBuffer) -> bytes:
    return bytes(rx.data[rx.start : rx.end])


def test_bytes_go_in_at_the_end_and_out_at_the_start() -> None:
    rx = ReceiveBuffer(64, 1024)
    fill(rx, b"hello world")
    assert unconsumed(rx) == b"hello world"
    rx.start += 6
    assert unconsumed(rx) == b"world"
    assert len(rx.writable(4)) == 4  # a limit caps the view


def test_compaction_moves_only_the_unconsumed_tail_and_the_positions_with_it() -> None:
    rx = ReceiveBuffer(64, 64)
    fill(rx, b"x" * 50 + b"\nabc--tail")
    rx.start = 50
    rx.line_start = 51
    rx.resume = 54  # "--tail"
    view = rx.writable()  # 4 bytes free, 16 wanted: compact
    assert rx.start == 0 and unconsumed(rx) == b"\nabc--tail"
    assert rx.data[rx.line_start : rx.line_start + 3] == b"abc"
    assert rx.data[rx.resume : rx.resume + 6] == b"--tail"
    assert rx.bytes_moved == 10 and len(view) == 54


def test_a_line_start_before_the_consumed_point_is_forgotten_on_compaction() -> None:
    rx = ReceiveBuffer(64, 64)
    fill(rx, b"y" * 60)
    rx.line_start, rx.start = 10, 50
    rx.writable()
    assert rx.line_start == -1


def test_growth_makes_a_new_buffer_so_a_view_held_too_long_stays_valid() -> None:
    rx = ReceiveBuffer(32, 4096)
    held = rx.writable()
    fill(rx, b"z" * 30)  # one item filling most of the buffer: it must grow
    view = rx.writable()
    assert len(rx.data) > 32 and held.obj is not rx.data
    held[:1] = b"!"  # the old bytearray is not resized under the view: no BufferError
    del held, view
    assert unconsumed(rx) == b"z" * 30


def test_growth_doubles_and_its_last_step_goes_to_the_limit_at_once() -> None:
    rx = ReceiveBuffer(64, 1000)
    sizes = [len(rx.data)]
    for _ in range(990):  # one item that never ends (a part without a boundary)
        fill(rx, b"w")
        if len(rx.data) != sizes[-1]:
            sizes.append(len(rx.data))
    # 64 -> 128 -> 256 -> 1000: never 512 -> 1000, two big buffers for a little more room
    assert sizes == [64, 128, 256, 1000]
    assert unconsumed(rx) == b"w" * 990


def test_moves_stay_linear_however_the_bytes_are_chunked() -> None:
    rx = ReceiveBuffer(4096, 4096)
    total = 0
    for k in range(20_000):
        chunk = bytes([k % 251]) * (1 + k % 97)
        fill(rx, chunk)
        total += len(chunk)
        rx.start = max(rx.start, rx.end - 300)  # the parser keeps a few hundred bytes
    assert rx.bytes_moved < total


def test_rewind_when_everything_is_consumed() -> None:
    rx = ReceiveBuffer(64, 64)
    fill(rx, b"abcdef")
    rx.start = rx.line_start = rx.resume = 6
    rx.rewind()
    assert (rx.start, rx.end, rx.line_start, rx.resume) == (0, 0, 0, 0)
    rx.rewind()  # nothing to do on an empty buffer
    assert rx.bytes_moved == 0


def test_skipped_garbage_is_counted_without_line_ends() -> None:
    rx = ReceiveBuffer(64, 64)
    fill(rx, b"ab\r\ncd\nef")
    rx.skip_to(7)
    assert (rx.start, rx.bytes_skipped) == (7, 4)
    rx.skip_to(7)
    assert rx.bytes_skipped == 4


def test_find_lf_looks_only_within_the_limit_and_the_filled_bytes() -> None:
    rx = ReceiveBuffer(64, 64)
    fill(rx, b"abc\ndef")
    rx.data[10] = 0x0A  # past the filled end: stale, never read
    assert rx.find_lf(0, 10) == 3
    assert rx.find_lf(0, 3) == -1
    assert rx.find_lf(4, 60) == -1


def test_a_full_buffer_at_its_limit_is_an_error_not_an_overflow() -> None:
    rx = ReceiveBuffer(16, 16)
    fill(rx, b"q" * 16)
    with pytest.raises(StreamFormatError):
        rx.writable()


# --- payload memory ----------------------------------------------------------------------

JPEG = b"\xff\xd8" + b"x" * 100 + b"\xff\xd9"


def test_a_payload_is_copied_once_into_bytes_or_into_supplied_memory() -> None:
    buf = bytearray(b"--" + JPEG + b"--")
    assert DirectReceive(None).copy(buf, 2, 2 + len(JPEG)) == JPEG
    data = DirectReceive(payload.aligned).copy(buf, 2, 2 + len(JPEG))
    assert isinstance(data, memoryview) and data.readonly and data == JPEG
    assert payload.region(data) is not None


def test_direct_receive_is_armed_by_an_exact_big_payload_only() -> None:
    memory = DirectReceive(payload.aligned, min_bytes=100)
    memory.arm(True, 100)
    assert memory.armed and memory.wants(100, 100) and not memory.wants(100, 99)
    # a part bigger than any frame goes through the buffer (see DIRECT_MAX)
    assert memory.wants(DIRECT_MAX, 100) and not memory.wants(DIRECT_MAX + 1, DIRECT_MAX)
    memory.arm(False, 1000)  # the declared length counted a line end
    assert not memory.armed
    memory.arm(True, 99)
    assert not memory.armed
    without = DirectReceive(None, min_bytes=1)
    without.arm(True, 10**6)
    assert not without.armed  # nowhere to receive into
    with pytest.raises(ValueError):
        DirectReceive(None, min_bytes=0)


def _receive_directly(memory: DirectReceive, rx: ReceiveBuffer, body: bytes, head: int) -> bool:
    """The first ``head`` bytes went into the buffer, the rest straight into the memory."""
    fill(rx, body[:head])
    memory.begin(rx, len(body))
    assert rx.end == rx.start  # nothing of the payload stays in the buffer
    rest = body[head:]
    done = False
    while rest:
        view = memory.view()
        n = min(len(view), 7000, len(rest))
        view[:n] = rest[:n]
        done = memory.received(n)
        rest = rest[n:]
    return done


def test_a_payload_received_directly_is_handed_out_in_its_own_memory() -> None:
    made: list[memoryview] = []

    def alloc(n: int) -> memoryview:
        made.append(payload.aligned(n))
        return made[-1]

    memory, rx = DirectReceive(alloc, min_bytes=1), ReceiveBuffer(4096, 4096)
    memory.arm(True, 10)
    body = b"\xff\xd8" + bytes(range(256)) * 100 + b"\xff\xd9"
    assert _receive_directly(memory, rx, body, 1000)
    data = memory.finish()
    assert data is not None and data == body and data.readonly
    assert data.obj is made[0].obj and len(made) == 1  # no copy
    assert memory.armed and memory.memory is None


def test_a_length_that_counts_the_line_end_costs_one_copy_and_disarms() -> None:
    memory, rx = DirectReceive(payload.aligned, min_bytes=1), ReceiveBuffer(4096, 4096)
    memory.arm(True, 10)
    assert _receive_directly(memory, rx, JPEG + b"\r\n", 10)
    data = memory.finish()
    assert data is not None and data == JPEG and payload.region(data) is not None
    assert not memory.armed


def test_a_payload_that_is_not_one_jpeg_goes_back_through_the_buffer() -> None:
    memory, rx = DirectReceive(payload.aligned, min_bytes=1), ReceiveBuffer(64, 4096)
    memory.arm(True, 10)
    body = JPEG + b"--b\r\n"
    assert _receive_directly(memory, rx, body, 5)
    assert memory.finish() is None
    memory.give_back(rx)
    assert unconsumed(rx) == body and rx.bytes_moved >= len(body)
    assert not memory.armed and memory.memory is None
