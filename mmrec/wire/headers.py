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
LINE: Final = TOKEN + rb"[ \t]*:[^\r\n]*\r?\n"
"""A plain ``name: value`` line with its line end, as a pattern to build on (no groups).
Each line matches one way only (no blanks both after the colon and in the value): a
pattern repeating an ambiguous line backtracks exponentially on a head that then fails
(a hostile camera's 32 lines of "a:" and blanks would hold the event loop for ever)."""
# The name, and the value with its leading blanks (stripped after: one way to match, so a
# line that fails costs its length, not its length squared; measured: an 8000-byte line of
# blanks with a stray CR took 0.5 s to refuse with "[ \t]*" on both sides of the value).
_HEADER_LINE: Final = re.compile(rb"(" + TOKEN + rb")[ \t]*:([^\r\n]*)")
_LINE_RE: Final = re.compile(rb"(" + TOKEN + rb")[ \t]*:([^\r\n]*)\r?\n")


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
