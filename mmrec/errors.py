"""One error tree for mmrec.

Everything mmrec raises on purpose derives from :class:`MmrecError`. Third-party
exceptions (aiohttp, av, OSError, zeroconf) are translated where they enter our
code, so callers only ever catch these types. Each class is something a user can
act on; the message names the camera (where there is one) and the cause.
"""

from __future__ import annotations


class MmrecError(Exception):
    """Root of every error mmrec raises on purpose."""


class ConfigError(MmrecError):
    """A config file or command-line value is invalid; the message names the field."""


class StreamFormatError(MmrecError):
    """Bytes from a node break the wire format beyond repair (sans-IO parsers raise only this).

    Parsers do not know which camera they serve; the ingest loop wraps this into a
    :class:`CameraProtocolError` that names the camera, and reconnects.
    """


class CameraError(MmrecError):
    """Something went wrong with one camera; ``camera`` names it."""

    def __init__(self, camera: str, cause: str) -> None:
        super().__init__(f"camera {camera!r}: {cause}")
        self.camera = camera
        self.cause = cause


class CameraProtocolError(CameraError):
    """The camera answered, but not with a usable MJPEG stream."""


class CameraUnreachableError(CameraError):
    """The camera could not be reached, or stopped sending (connect/read timeout, reset)."""


class RecordingError(MmrecError):
    """A recording file cannot be written (disk full, permissions, muxer failure)."""


class DiscoveryError(MmrecError):
    """Discovery could not start (bad interface, bad scan range)."""
