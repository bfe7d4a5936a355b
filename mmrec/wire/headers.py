"""The one reader of HTTP-style header lines, for response heads and multipart part heads.

Lenient as camera firmware needs: obsolete line folding continues the previous value, a
line that is not ``name: value`` (no colon, a bad name, a stray CR) is skipped, names are
lower-cased and values stripped. Lines are read where they lie (a bytes-like object and
offsets), so a part's headers are not copied out of the receive buffer first.
"""

from __future__ import annotations

import re
from typing import Final

Headers = list[tuple[str, str]]  # (lower-cased name, stripped value), as received

TOKEN: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # a header name (RFC 9110 token)
LINE: Final = TOKEN + rb"[ \t]*:[ \t]*[^\r\n]*\r?\n"
"""A plain ``name: value`` line with its line end, as a pattern to build on (no groups)."""
_HEADER_LINE: Final = re.compile(rb"(" + TOKEN + rb")[ \t]*:[ \t]*([^\r\n]*)")
_LINE_RE: Final = re.compile(rb"(" + TOKEN + rb")[ \t]*:[ \t]*([^\r\n]*)\r?\n")


def add_header_line(headers: Headers, buf: bytes | bytearray | memoryview, i: int, e: int) -> None:
    """Read the header line ``buf[i:e]`` (its line end left out) into ``headers``."""
    if i < e and buf[i] in (0x20, 0x09):
        # Obsolete line folding: the line continues the previous header's value.
        if headers:
            name, value = headers[-1]
            more = bytes(buf[i:e]).decode("latin-1").strip()
            headers[-1] = (name, f"{value} {more}".strip())
        return
    m = _HEADER_LINE.fullmatch(buf, i, e)
    if m is not None:  # else an odd line (camera firmware): skip it
        headers.append((m.group(1).decode("latin-1").lower(), m.group(2).decode("latin-1").strip()))


def is_header_line(buf: bytes | bytearray | memoryview, i: int, e: int) -> bool:
    """True if ``buf[i:e]`` starts like a header line (``name:``)."""
    return _HEADER_LINE.match(buf, i, e) is not None


def read_lines(block: bytes) -> Headers:
    """Header lines known to be plain ``name: value`` lines (a block that matches
    ``(?:LINE)*``), read at once: as :func:`add_header_line` reads each of them."""
    return [
        (name.decode("latin-1").lower(), value.decode("latin-1").strip())
        for name, value in _LINE_RE.findall(block)
    ]
