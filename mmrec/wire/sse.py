"""Server-Sent Events (``text/event-stream``), sans-IO: a node's ``/events`` as messages.

:class:`SSEParser` is fed the body's bytes in any chunking and hands back complete
:class:`ServerEvent` values, as the WHATWG "event stream interpretation" says: lines end
in CRLF, LF or CR (a CRLF split across two feeds is one line end); ``:`` starts a
comment; ``data`` lines join with LF; a blank line dispatches; an event with no data is
not dispatched; ``id`` and ``retry`` are kept. A UTF-8 BOM at the start is skipped and
bytes that are not UTF-8 become U+FFFD.

The body is untrusted: a line longer than ``max_line`` or an event whose data grows past
``max_event`` raises :class:`~mmrec.errors.StreamFormatError` (the only error raised), so a
node that never ends a line costs at most that much memory. Each byte is looked at once
(the end-of-line search starts where the last one stopped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mmrec.errors import StreamFormatError

__all__ = ["MAX_EVENT", "MAX_LINE", "SSEParser", "ServerEvent"]

MAX_LINE: Final = 16 * 1024
"""Longest line kept (bytes). A node's events are small JSON documents."""
MAX_EVENT: Final = 64 * 1024
"""Most data one event may carry (bytes, over all its ``data`` lines)."""

_EOL: Final = re.compile(rb"\r\n|\r|\n")
_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One dispatched event: its type (``message`` unless named), data and last id."""

    event: str
    data: str
    id: str | None = None
    retry_ms: int | None = None  # the reconnection time the stream asked for, if it did


class SSEParser:
    """Incremental ``text/event-stream`` parser; see the module docstring."""

    def __init__(self, *, max_line: int = MAX_LINE, max_event: int = MAX_EVENT) -> None:
        self.max_line = max_line
        self.max_event = max_event
        self._partial = bytearray()  # the line being received (at most max_line bytes)
        self._after_cr = False  # the last feed ended in CR: a leading LF is its pair
        self._started = False  # past the first line (which may start with a BOM)
        self._event = ""
        self._data: list[str] = []
        self._data_len = 0
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self.comments = 0  # comment lines seen (keep-alives)

    def feed(self, data: bytes | bytearray | memoryview) -> list[ServerEvent]:
        """Parse ``data``; the events it completes, in order."""
        buf = bytes(data)  # one copy of a small body chunk: lines are sliced out of it
        out: list[ServerEvent] = []
        i = 0
        if self._after_cr and buf[:1] == b"\n":
            i = 1
        if buf:
            self._after_cr = False
        for m in _EOL.finditer(buf, i):
            start = m.start()
            if len(self._partial) + (start - i) > self.max_line:
                raise StreamFormatError(f"event stream line longer than {self.max_line} bytes")
            if self._partial:
                self._partial += buf[i:start]
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = buf[i:start]
            if m.end() == len(buf) and m.group() == b"\r":
                self._after_cr = True  # a CRLF may be split across feeds
            i = m.end()
            self._line(line, out)
        if len(self._partial) + (len(buf) - i) > self.max_line:
            raise StreamFormatError(f"event stream line longer than {self.max_line} bytes")
        self._partial += buf[i:]
        return out

    def feed_eof(self) -> list[ServerEvent]:
        """The stream ended: an event not ended by a blank line is discarded (the spec)."""
        self._partial.clear()
        self._reset()
        return []

    def _line(self, raw: bytes, out: list[ServerEvent]) -> None:
        if not self._started:
            self._started = True
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        if not raw:
            self._dispatch(out)
            return
        if raw[:1] == b":":
            self.comments += 1
            return
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data_len += len(raw)
            if self._data_len > self.max_event:
                raise StreamFormatError(f"event data longer than {self.max_event} bytes")
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        # any other field is ignored, as the spec says

    def _dispatch(self, out: list[ServerEvent]) -> None:
        if self._data:
            out.append(
                ServerEvent(self._event or "message", "\n".join(self._data), self.last_id,
                            self.retry_ms)
            )  # fmt: skip
        self._reset()

    def _reset(self) -> None:
        self._event = ""
        self._data = []
        self._data_len = 0
