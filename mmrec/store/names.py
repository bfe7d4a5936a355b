"""Safe file-system names from network-supplied names.

Camera nodes choose their own ``deviceName``; the recorder turns it into a folder
name. Anything a node says is untrusted, so :func:`safe_name` guarantees, for every
input string, a result that is:

* one path component: only ASCII letters, digits, ``-``, ``_`` and ``.``;
* never empty, never ``.`` or ``..``, never starting with a dot (hidden) or a dash
  (read as an option by shell tools), never ending with a dot;
* at most ``max_len`` characters (default 64);
* never a name Windows reserves (``CON``, ``NUL``, ``COM1`` ..., with or without an
  extension), so a take copied to any disk keeps its folders.

:func:`unique_name` adds a ``-2``, ``-3`` ... suffix when a name is already taken,
comparing without case (case-insensitive file systems would merge the folders).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

DEFAULT_MAX_LEN = 64
FALLBACK = "camera"

_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_DASH_RUN = re.compile(r"-{2,}")
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "clock$"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
    | {"com¹", "com²", "com³", "lpt¹", "lpt²", "lpt³"}
)


def _is_reserved(name: str) -> bool:
    # Windows reserves the stem whatever the extension: "nul.txt" is the null device.
    return name.split(".", 1)[0].lower() in _RESERVED


def _trim(text: str) -> str:
    return text.lstrip(".-_").rstrip(".-_ ")


def safe_name(text: str, *, max_len: int = DEFAULT_MAX_LEN, fallback: str = FALLBACK) -> str:
    """Return an ASCII slug of ``text`` that is safe as a single path component.

    Accents are folded (``Café`` -> ``Cafe``), every other unsafe run becomes one
    ``-``. ``fallback`` (itself made safe) replaces a result that would be empty.
    """
    if max_len < 8:
        raise ValueError("max_len must be at least 8")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _trim(_DASH_RUN.sub("-", _UNSAFE_RUN.sub("-", folded)))
    slug = _trim(slug[:max_len])
    if not slug:
        slug = FALLBACK if fallback == FALLBACK else safe_name(fallback, max_len=max_len)
    if _is_reserved(slug):
        slug = _trim(("x-" + slug)[:max_len])
    return slug


def unique_name(base: str, taken: Iterable[str], *, max_len: int = DEFAULT_MAX_LEN) -> str:
    """Return ``safe_name(base)``, suffixed ``-2``, ``-3`` ... until no name in ``taken``
    equals it ignoring case. The result respects ``max_len``."""
    used = {t.casefold() for t in taken}
    name = safe_name(base, max_len=max_len)
    if name.casefold() not in used:
        return name
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = _trim(name[: max_len - len(suffix)]) + suffix
        if candidate.casefold() not in used and not _is_reserved(candidate):
            return candidate
        n += 1
