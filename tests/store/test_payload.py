"""Aligned frame memory: the layout direct writes rely on, and found again from a view."""

from __future__ import annotations

import numpy as np
import pytest

from mmrec.store import payload
from mmrec.wire.multipart import MultipartParser


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 200_000])
def test_aligned_layout(n: int) -> None:
    view = payload.aligned(n)
    assert len(view) == n and not view.readonly
    found = payload.region(view.toreadonly())
    if n == 0:
        return
    assert found is not None
    raw, off = found
    assert (raw.ctypes.data + off - payload.HEAD) % payload.ALIGN == 0
    assert raw.nbytes - (off + n) >= payload.TAIL


def test_other_memory_is_not_taken_for_aligned() -> None:
    assert payload.region(b"\xff\xd8 bytes") is None
    assert payload.region(memoryview(bytearray(10_000))[100:200]) is None
    arr = np.zeros(3 * payload.ALIGN, np.uint8)
    assert payload.region(memoryview(arr)[1:100]) is None  # no room before it
    assert payload.region(memoryview(arr.reshape(3, -1))) is None  # not one flat row
    whole = payload.aligned(1000)
    assert payload.region(whole[:500]) is None  # part of a payload: its framing would clobber
    big = np.empty(10 * payload.ALIGN, np.uint8)  # someone else's buffer, aligned by chance
    start = (-big.ctypes.data) % payload.ALIGN + payload.HEAD
    assert payload.region(memoryview(big)[start : start + 100]) is None


def test_parser_copies_payloads_into_supplied_memory() -> None:
    body = b"--b\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8jpeg\xff\xd9\r\n--b\r\n"
    p = MultipartParser("b", alloc=payload.aligned)
    (part,) = p.feed(body)
    assert isinstance(part.data, memoryview) and part.data.readonly
    assert part.data == b"\xff\xd8jpeg\xff\xd9"
    assert payload.region(part.data) is not None


def test_only_the_whole_payload_view_is_found() -> None:
    view = payload.aligned(4000)
    assert payload.region(view) is not None
    assert payload.region(view.toreadonly().cast("B")) is not None
    assert payload.region(view[::2]) is None  # not contiguous
    assert payload.region(view[1:]) is None
    assert payload.region(memoryview(view.obj)) is None  # the whole allocation


def test_a_slice_of_an_allocation_is_not_a_payload() -> None:
    view = payload.aligned(4000)
    raw = view.obj
    assert isinstance(raw, np.ndarray)
    assert payload.region(memoryview(raw[10:20])) is None
