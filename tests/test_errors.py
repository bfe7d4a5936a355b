"""Foreign exceptions become ours at the boundary, with the camera and a readable cause."""

from __future__ import annotations

import errno

import pytest

from mmrec.errors import (
    CameraProtocolError,
    CameraUnreachableError,
    RecordingError,
    StreamFormatError,
    map_exceptions,
    translate,
)

NET = {TimeoutError: CameraUnreachableError, OSError: CameraUnreachableError}


def test_an_os_error_names_the_camera_and_its_cause() -> None:
    with (
        pytest.raises(CameraUnreachableError) as got,
        map_exceptions(NET, "cannot connect to h:8081", camera="cam-a"),
    ):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert str(got.value) == "camera 'cam-a': cannot connect to h:8081: Connection refused"
    assert got.value.camera == "cam-a"
    assert isinstance(got.value.__cause__, ConnectionRefusedError)


def test_a_timeout_says_how_long() -> None:
    with (
        pytest.raises(CameraUnreachableError, match=r"/status: timed out after 1\.5 s$"),
        map_exceptions(NET, "/status", camera="c", timeout=1.5),
    ):
        raise TimeoutError


def test_ours_and_unmapped_pass_through() -> None:
    with pytest.raises(CameraProtocolError, match="HTTP 404"), map_exceptions(NET, "x", camera="c"):
        raise CameraProtocolError("c", "HTTP 404")
    with pytest.raises(KeyError), map_exceptions(NET, "x", camera="c"):
        raise KeyError("bug")
    err = StreamFormatError("bad part")
    assert translate(err, NET, "x", camera="c") is err
    mapped = translate(err, {StreamFormatError: CameraProtocolError}, "bad stream", camera="c")
    assert isinstance(mapped, CameraProtocolError) and mapped.cause == "bad stream: bad part"


def test_errors_without_a_camera() -> None:
    with (
        pytest.raises(RecordingError, match=r"^cannot open a\.mkv: No space left on device$"),
        map_exceptions({OSError: RecordingError}, "cannot open a.mkv"),
    ):
        raise OSError(errno.ENOSPC, "No space left on device", "/x/a.mkv")
    with pytest.raises(TypeError, match="camera="), map_exceptions(NET, "x"):
        raise OSError("no camera given")
