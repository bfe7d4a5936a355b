"""Raw JPEG streams: back-to-back JPEGs without multipart framing, each from SOI to EOI.

Some servers send ``application/octet-stream`` (or no type) and just concatenate JPEGs.
A JPEG's end is found by walking its marker segments (:func:`mmrec.wire.jpeg.walk`) up
to the scan, so EOI bytes inside a header segment (a comment, EXIF) do not split it,
then searching the entropy-coded data for EOI: there 0xFF is always followed by 0x00 or
an RST marker, so FF D9 is the end. Garbage between images is skipped and counted.
"""

from __future__ import annotations

from enum import Enum

from mmrec.errors import StreamFormatError
from mmrec.wire import jpeg
from mmrec.wire.receive import DirectReceive, ReceiveBuffer


class _Step(Enum):
    SEEK = "seek"  # skip to the next SOI
    WALK = "walk"  # marker segments up to SOS
    SCAN = "scan"  # entropy-coded data: search for EOI


class JpegSplitter:
    """Splits back-to-back JPEGs in a :class:`ReceiveBuffer` into payloads.

    :meth:`begin` at an SOI, or :meth:`seek` past garbage; :meth:`step` then returns the
    payloads found and True when the stream is at the start of the next item (an SOI),
    False when more bytes are needed. Positions live in the buffer (``start``: the
    image's SOI, ``resume``: where the walk or search goes on).
    """

    __slots__ = ("_max", "_memory", "_rx", "_step", "active", "truncated")

    def __init__(self, rx: ReceiveBuffer, memory: DirectReceive, max_part_size: int) -> None:
        self._rx = rx
        self._memory = memory
        self._max = max_part_size
        self._step = _Step.SEEK
        self.active = False  # the stream has been seen to be raw JPEGs
        self.truncated = 0

    @property
    def in_image(self) -> bool:
        """True while an image has begun and is not yet returned."""
        return self._step is not _Step.SEEK

    def begin(self, i: int) -> None:
        """An SOI at ``rx.data[i]`` (== ``rx.start``) starts an image."""
        self.active = True
        self._rx.resume = i + 2
        self._step = _Step.WALK

    def seek(self) -> None:
        """Not an image at ``rx.start``: skip to the next SOI."""
        self._step = _Step.SEEK

    def step(self, out: list[bytes | memoryview]) -> bool:
        """Go on, appending the images found to ``out``; True when the stream is at the
        next item (after an image, or at an SOI found by seeking), False when more bytes
        are needed."""
        if self._step is _Step.SEEK:
            return self._seek()
        if self._step is _Step.WALK:
            done = self._walk(out)
            if done is not None:
                return done
        return self._scan(out)

    def _seek(self) -> bool:
        rx = self._rx
        buf, end = rx.data, rx.end
        p = buf.find(jpeg.SOI, rx.start, end)
        if p < 0:
            # Keep a last 0xFF: it may be the first half of an SOI.
            keep = end - 1 if end > rx.start and buf[end - 1] == 0xFF else end
            rx.skip_to(end if rx.eof else keep)
            return False
        rx.skip_to(p)
        return True  # a JPEG, or (sloppy servers) a delimiter after all

    def _walk(self, out: list[bytes | memoryview]) -> bool | None:
        """Walk the header: True if the image ended in it (EOI before any scan), False if
        more bytes are needed, None when its scan is to be searched."""
        rx = self._rx
        stop, pos = jpeg.walk(rx.data, rx.resume, rx.end)
        if pos - rx.start > self._max:
            raise self._too_big()
        if stop is jpeg.Stop.END:
            self._done(out, pos + 2)
            return True
        if stop is jpeg.Stop.MORE:
            rx.resume = pos
            if rx.eof:
                self._cut_short()
            return False
        # SCAN: search the entropy-coded data after the SOS segment; BAD (no marker where
        # one should be): search for EOI from there.
        rx.resume = jpeg.segment_end(rx.data, pos) if stop is jpeg.Stop.SCAN else pos
        self._step = _Step.SCAN
        return None

    def _scan(self, out: list[bytes | memoryview]) -> bool:
        rx = self._rx
        end = rx.end
        p = rx.data.find(jpeg.EOI, rx.resume, end) if rx.resume < end else -1
        if p < 0:
            rx.resume = max(rx.resume, end - 1)
            if end - rx.start > self._max:
                raise self._too_big()
            if rx.eof:
                self._cut_short()
            return False
        self._done(out, p + 2)
        return True

    def _done(self, out: list[bytes | memoryview], e: int) -> None:
        rx = self._rx
        if e - rx.start > self._max:
            raise self._too_big()
        out.append(self._memory.copy(rx.data, rx.start, e))
        rx.start = e
        self._step = _Step.SEEK

    def _cut_short(self) -> None:
        self.truncated += 1
        self._rx.start = self._rx.end
        self._step = _Step.SEEK

    def _too_big(self) -> StreamFormatError:
        return StreamFormatError(f"JPEG larger than max_part_size={self._max}")
