"""Content-Type values: the media type, its parameters, a multipart boundary.

Lenient: malformed parameters are skipped, never fatal, because the parser can learn a
boundary from the body when the header does not give a usable one.
"""

from __future__ import annotations

import re
from typing import Final

_PARAM: Final = re.compile(r';\s*([^\s;=]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"?|([^;]*)))?')
_JPEG_TYPES: Final = frozenset({"image/jpeg", "image/jpg", "image/pjpeg"})


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into the lower-cased media type and its parameters.

    Parameter names are lower-cased; quoted values are unquoted (backslash escapes
    resolved), unquoted values stripped. Malformed parameters are skipped, never fatal.
    """
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for m in _PARAM.finditer(";" + rest):
        name = m.group(1).lower()
        if m.group(2) is not None:
            val = re.sub(r"\\(.)", r"\1", m.group(2))
        else:
            val = (m.group(3) or "").strip()
        params.setdefault(name, val)
    return media.strip().lower(), params


def boundary_from_content_type(value: str | None) -> bytes | None:
    """The ``boundary`` parameter of a Content-Type value, or None if there is none.

    The value is returned as declared (quotes removed). A boundary declared with a
    leading ``--`` is kept as is: the multipart parser accepts delimiter lines equal to
    the declared string as well as ``--`` + the declared string.
    """
    if not value:
        return None
    _, params = parse_content_type(value)
    boundary = params.get("boundary", "").strip()
    if not boundary:
        return None
    return boundary.encode("latin-1", "replace")


def media_type(value: str | None) -> str | None:
    """The lower-cased media type of a part's Content-Type (``image/jpg`` and
    ``image/pjpeg`` read as ``image/jpeg``); None without the header."""
    if value is None:
        return None
    media = value.partition(";")[0].strip().lower()
    return "image/jpeg" if media in _JPEG_TYPES else media
