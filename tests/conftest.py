"""Shared test fixtures. Network tests use loopback only (127.0.0.0/8).

Helpers that take arguments or are called mid-test (JPEG makers, simulated nodes on
loopback, waits) are in ``tests/helpers.py``.
"""

from __future__ import annotations

import os

import pytest

from mmrec.ingest.stream import IngestConfig


@pytest.fixture(scope="session")
def fast_ingest() -> IngestConfig:
    """Ingest settings for tests against loopback nodes: a stalled or vanished node is
    noticed within a second and retried within half a second, so tests that stall, stop
    or restart nodes see the recorder react in test time."""
    return IngestConfig(connect_timeout=2.0, read_timeout=1.0, backoff_initial=0.1, backoff_max=0.5)


@pytest.fixture(scope="session")
def o_direct(tmp_path_factory: pytest.TempPathFactory) -> bool:
    """Whether files in the tests' temporary folders can be opened O_DIRECT (tmpfs, for
    one, refuses it); every ``tmp_path`` is on this file system."""
    if not hasattr(os, "O_DIRECT"):
        return False
    probe = tmp_path_factory.getbasetemp() / ".o_direct_probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


@pytest.fixture
def needs_o_direct(o_direct: bool) -> None:
    """Skip a test of direct I/O where the file system has no O_DIRECT."""
    if not o_direct:
        pytest.skip("this file system has no O_DIRECT")
