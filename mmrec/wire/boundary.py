"""Multipart delimiter lines: the declared boundary, or one learned from the body.

A delimiter line is ``--`` + boundary, then the closing ``--``, padding or the line end.
Real servers bend this: ffmpeg's mpjpeg declares no boundary (it is learned from the
first ``--token`` line), some declare ``--b`` and write ``--b`` or ``----b``, some declare
one boundary and use another, some put the delimiter right after the JPEG's EOI without
a line end. :class:`Delimiter` accepts all of these and nothing that could be payload.
"""

from __future__ import annotations

import re
from typing import Final

from mmrec.errors import StreamFormatError
from mmrec.wire.receive import ReceiveBuffer

_LF: Final = 0x0A
_DASH: Final = 0x2D
# What may follow "--boundary" on a delimiter line: the closing "--", padding, line end.
_AFTER_DELIM: Final = frozenset(b"-\r\n \t")
# RFC 2046 bchars (space allowed inside, not last); we allow longer than 70 but bounded.
_BOUNDARY: Final = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,199}[0-9A-Za-z'()+_,\-./:=?]")
_MAX_BOUNDARY: Final = 200


class Delimiter:
    """Finds delimiter lines in a :class:`ReceiveBuffer`; learns the boundary if needed.

    ``boundary`` is the boundary as declared (or learned), None until one is known.
    Answers are 1 (a delimiter line), 0 (not one) or -1 (more bytes needed to tell).
    """

    __slots__ = ("_dashed", "_rx", "boundary", "needle")

    def __init__(self, rx: ReceiveBuffer, declared: str | bytes | None) -> None:
        self._rx = rx
        self.boundary: bytes | None = None
        self.needle = b""  # what a delimiter line starts with; empty: learn it
        self._dashed = False
        if declared is not None:
            raw = declared.encode("latin-1", "replace") if isinstance(declared, str) else declared
            raw = raw.strip().strip(b'"').strip()
            if raw:
                self._set(raw)

    def _set(self, raw: bytes) -> None:
        if len(raw) > _MAX_BOUNDARY or b"\r" in raw or b"\n" in raw:
            raise StreamFormatError(f"unusable multipart boundary {raw[:40]!r}")
        self.boundary = raw
        # A delimiter line is "--" + boundary; sloppy servers that declare "--b" may write
        # "--b" (the declared string) or "----b": search for the declared string, and
        # accept "--" before it (see find).
        self._dashed = raw.startswith(b"--")
        self.needle = raw if self._dashed else b"--" + raw

    @property
    def known(self) -> bool:
        """True once there is a boundary to look for (declared or learned)."""
        return bool(self.needle)

    def at(self, i: int) -> int:
        """Is a delimiter line at ``i``? May learn the boundary from it."""
        if not self.needle:
            return self.learn_at(i)
        rx = self._rx
        buf, end = rx.data, rx.end
        forms = (self.needle, b"--" + self.needle) if self._dashed else (self.needle,)
        pending = False
        for form in forms:
            k = len(form)
            avail = end - i
            if avail > k:
                if buf.startswith(form, i, end) and buf[i + k] in _AFTER_DELIM:
                    return 1
            elif avail == k and buf.startswith(form, i, end):
                if rx.eof:
                    return 1
                pending = True
            elif avail < k and form.startswith(buf[i:end]):
                pending = not rx.eof
        return -1 if pending else 0

    def relearn_at(self, i: int) -> int:
        """The declared boundary is not what the body uses: learn the one at ``i`` (1),
        or keep the declared one (0)."""
        saved = (self.boundary, self.needle, self._dashed)
        self.needle = b""
        got = self.learn_at(i)
        if got <= 0:
            self.boundary, self.needle, self._dashed = saved
            return 0
        return got

    def learn_at(self, i: int) -> int:
        """Learn the boundary from a ``--token`` line at ``i``."""
        rx = self._rx
        buf, end = rx.data, rx.end
        if end - i < 2:
            return 0 if rx.eof else -1
        if not buf.startswith(b"--", i, end):
            return 0
        lf = buf.find(b"\n", i, min(end, i + _MAX_BOUNDARY + 8))
        if lf < 0:
            if rx.eof or end - i >= _MAX_BOUNDARY + 8:
                return 0
            return -1
        token = bytes(buf[i + 2 : lf]).rstrip(b"\r \t")
        if token.endswith(b"--") and len(token) > 2:
            token = token[:-2]
        if not _BOUNDARY.fullmatch(token):
            return 0
        self._set(b"--" + token if token.startswith(b"--") else token)
        if self._dashed:  # learned "----x": keep the literal line as the needle
            self.needle = b"--" + token
            self._dashed = False
            self.boundary = token
        return 1

    def rest_of_line(self, i: int, lf: int) -> bytes:
        """What follows the boundary on the delimiter line at ``i`` (ending at ``lf``),
        stripped: ``--`` on a closing delimiter."""
        buf = self._rx.data
        p = i
        if self._dashed and not buf.startswith(self.needle, i, self._rx.end):
            p = i + 2
        return bytes(buf[p + len(self.needle) : lf]).strip()

    def _at_line_start(self, q: int, lo: int) -> bool:
        rx = self._rx
        buf = rx.data
        if q == lo:
            return True
        if q > rx.start and buf[q - 1] == _LF:
            return True
        # Some servers put the delimiter right after the JPEG's EOI, without a line end.
        return q - 2 >= rx.start and buf[q - 2] == 0xFF and buf[q - 1] == 0xD9

    def find(self, pos: int, lo: int) -> tuple[int, int]:
        """Search for a delimiter line from ``pos`` (``lo``: an offset known to start a
        line): (its line start or -1, where to resume the search)."""
        rx = self._rx
        buf, end = rx.data, rx.end
        learning = not self.needle
        needle = b"--" if learning else self.needle
        n = len(needle)
        while True:
            p = buf.find(needle, pos, end)
            if p < 0:
                return -1, max(pos, end - n + 1)
            q = -1
            if self._at_line_start(p, lo):
                q = p
            elif (
                self._dashed
                and p - 2 >= rx.start
                and buf[p - 2] == _DASH
                and buf[p - 1] == _DASH
                and self._at_line_start(p - 2, lo)
            ):
                q = p - 2
            if q < 0:
                pos = p + 1
                continue
            if learning:
                got = self.learn_at(p)
                if got < 0:
                    return -1, p
                if got == 0:
                    pos = p + 1
                    continue
                return q, p
            if p + n >= end:
                if not rx.eof:
                    return -1, p
            elif buf[p + n] not in _AFTER_DELIM:
                pos = p + 1
                continue
            return q, p
