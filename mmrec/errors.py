"""One error tree for mmrec.

Everything mmrec raises on purpose derives from :class:`MmrecError`. Third-party
exceptions (aiohttp, av, OSError, zeroconf) are translated where they enter our
code, so callers only ever catch these types. Each class is something a user can
act on; the message names the camera (where there is one) and the cause.

:func:`map_exceptions` is that translation, used at every I/O boundary (ingest connect
and read, the ``/status`` probe, the writer, reading a take back), as httpcore's
``map_exceptions``: each boundary says which foreign exceptions become which of ours.
This module imports nothing outside the standard library, so the pure parsers can use it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


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


class PictureWorkerError(MmrecError):
    """The preview's picture worker process could not start, died or stopped answering
    (recording goes on; the preview says why it stopped)."""


class TakeError(MmrecError):
    """A take folder cannot be read back: no manifest, an unreadable manifest or index."""


ExceptionMap = Mapping[type[BaseException] | tuple[type[BaseException], ...], type[MmrecError]]
"""Foreign exception type(s) -> our error type, tried in order (put subclasses first:
``TimeoutError`` is an ``OSError``)."""


def describe(exc: BaseException, timeout: float | None = None) -> str:
    """A foreign exception as the cause a person reads: an OS error's text without its
    errno and path, a timeout with its length, else the message (or the type's name)."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s" if timeout is not None else "timed out"
    if isinstance(exc, OSError):
        # the errno's own words: asyncio's strerror ("Connect call failed ('h', 1)")
        # and the path in str() only repeat what the context already says
        if exc.errno:
            return os.strerror(exc.errno)
        if exc.strerror:
            return exc.strerror
    return str(exc) or type(exc).__name__


def translate(
    exc: BaseException,
    mapping: ExceptionMap,
    context: str,
    *,
    camera: str | None = None,
    timeout: float | None = None,
) -> BaseException:
    """``exc`` as the first of our types in ``mapping`` that it matches, or ``exc`` itself.

    The message is ``"{context}: {cause}"`` (:func:`describe`); a :class:`CameraError`
    class is given ``camera``, which must then be set. For callbacks that receive an
    exception (asyncio protocols); code that raises uses :func:`map_exceptions`.
    """
    for source, target in mapping.items():
        if isinstance(exc, source):
            cause = describe(exc, timeout)
            cause = f"{context}: {cause}" if context else cause
            if not issubclass(target, CameraError):
                err: MmrecError = target(cause)
            elif camera is None:
                raise TypeError("a CameraError needs camera=") from exc
            else:
                err = target(camera, cause)
            err.__cause__ = exc
            return err
    return exc


@contextlib.contextmanager
def map_exceptions(
    mapping: ExceptionMap,
    context: str,
    *,
    camera: str | None = None,
    timeout: float | None = None,
) -> Iterator[None]:
    """Translate foreign exceptions raised in the block into ours (:func:`translate`).

    Our own errors pass through unless mapped (a :class:`StreamFormatError` becomes a
    :class:`CameraProtocolError` only where a boundary says so); anything unmapped, and
    cancellation, propagates unchanged.
    """
    try:
        yield
    except Exception as exc:
        err = translate(exc, mapping, context, camera=camera, timeout=timeout)
        if err is exc:
            raise
        raise err from exc
