"""A camera node's ``GET /status`` body: who the node is and what its clock read.

Pure (no I/O). The body is untrusted input: a body that is not a JSON object raises
:class:`~mmrec.errors.StreamFormatError` (the one error of the wire parsers); every
field is optional and an odd one never raises. Identity fields that are present but
unusable are reported as problems (discovery shows them); the clock and rate are
extras that many cameras lack or use for something else, so odd values there are simply
None. The same parser serves discovery (identity), the recorder's clock probes and
``mmrec bench`` (clock and nominal rate), through :class:`mmrec.ingest.status.StatusProbe`.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from mmrec.errors import StreamFormatError
from mmrec.wire.timestamp import parse_device_ts
from mmrec.wire.url import parse_port

__all__ = ["MAX_STATUS_BYTES", "MAX_TEXT", "NodeStatus", "clean_text", "parse_status"]

MAX_STATUS_BYTES: Final = 64 * 1024
"""Longest ``/status`` body read. A node whose ``/status`` never ends (or that serves its
MJPEG stream on every path) costs at most this much."""

MAX_TEXT: Final = 64
"""Longest deviceName/model/role kept (characters); longer values are cut and reported."""

_CAMERA_FIELDS: Final = ("model", "role", "apiPort", "width", "height", "fps")


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What one ``/status`` answer says. Text fields are cleaned (:func:`clean_text`)."""

    name: str = ""  # deviceName; "" when the answer is not a camera node's
    model: str = ""
    role: str = ""
    api_port: int | None = None
    device_ns: int | None = None  # the node's clock when it answered (Unix ns)
    fps: float | None = None  # its nominal frame rate
    not_a_node: str | None = None  # why this is not a camera node's answer; None: it is

    @property
    def is_node(self) -> bool:
        return self.not_a_node is None


def parse_status(body: bytes | str) -> tuple[NodeStatus, list[str]]:
    """Read a ``/status`` body; the value and the problems found in its identity fields.

    A camera node's status has a non-empty string ``deviceName`` and at least two of
    ``model``, ``role``, ``apiPort``, ``width``, ``height``, ``fps`` (an open port that
    answers some other JSON is not a camera); otherwise ``not_a_node`` says why (and is
    the only problem). The clock is ``clockNs`` (integer ns), else ``clock`` (seconds, as a
    number or string, any unit :func:`~mmrec.wire.timestamp.parse_device_ts` reads).
    Raises :class:`StreamFormatError` only when the body is not a JSON object.
    """
    doc = _json_object(body)
    device_ns, fps = _clock(doc), _fps(doc)
    why = _not_a_node(doc)
    name = ""
    problems: list[str] = []
    if why is None:
        name, problems = clean_text(doc["deviceName"], "deviceName")
        if not name:
            why = "/status deviceName is empty"
    if why is not None:
        return NodeStatus(device_ns=device_ns, fps=fps, not_a_node=why), [why]

    def text(key: str) -> str:
        value = doc.get(key)
        if not isinstance(value, str):
            if value is not None:
                problems.append(f"/status {key} is not a string")
            return ""
        kept, p = clean_text(value, key)
        problems.extend(p)
        return kept

    model, role = text("model"), text("role")
    port, p = parse_port(doc.get("apiPort"), "/status apiPort")
    problems += p
    return NodeStatus(name, model, role, port, device_ns, fps), problems


def clean_text(value: str, field: str, max_len: int = MAX_TEXT) -> tuple[str, list[str]]:
    """Make a node-supplied text value printable (no control or format characters, so no
    bidirectional overrides) and at most ``max_len`` long; report what was changed."""
    problems: list[str] = []
    # printable ASCII (the usual case, asked a few times a second per camera) has no
    # control or format characters: no need to look at each character
    if value.isascii() and value.isprintable():
        kept = value
    else:
        kept = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
    if kept != value:
        problems.append(f"{field} has control characters; removed")
    kept = kept.strip()
    if len(kept) > max_len:
        problems.append(f"{field} is {len(kept)} characters long; cut to {max_len}")
        kept = kept[:max_len]
    if any(c in kept for c in "/\\") or kept in {".", ".."} or kept.startswith("."):
        problems.append(f"{field} {kept!r} looks like a path; only its safe form is used on disk")
    return kept, problems


def _json_object(body: bytes | str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except RecursionError:  # absurdly nested JSON
        raise StreamFormatError("/status is nested too deeply") from None
    except ValueError:  # bad UTF-8 or bad JSON
        raise StreamFormatError("/status is not JSON") from None
    if not isinstance(doc, dict):
        raise StreamFormatError("/status is not a JSON object")
    return doc


def _not_a_node(doc: dict[str, Any]) -> str | None:
    if not isinstance(doc.get("deviceName"), str):
        return "/status has no string deviceName"
    if sum(1 for k in _CAMERA_FIELDS if k in doc) < 2:
        return "/status lacks camera fields (model, role, apiPort, width, height, fps)"
    return None


def _clock(doc: dict[str, Any]) -> int | None:
    ns = doc.get("clockNs")
    if isinstance(ns, int) and not isinstance(ns, bool) and ns > 0:
        return ns
    v = doc.get("clock")
    if isinstance(v, str):
        return parse_device_ts(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return parse_device_ts(repr(v))
    return None


def _fps(doc: dict[str, Any]) -> float | None:
    fps = doc.get("fps")
    if isinstance(fps, int | float) and not isinstance(fps, bool) and 0 < fps <= 1000:
        return float(fps)
    return None
