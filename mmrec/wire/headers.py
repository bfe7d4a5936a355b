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

_HEADER_LINE: Final = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*:[ \t]*([^\r\n]*)")


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
