"""A local multi-node Ray cluster for the cluster tests: a head without a host label and
three nodes labelled ``host:recA``..``host:recC`` (one machine, as ``ray.cluster_utils``
makes it), started once (~9 s) and shared by every cluster test; simulated phones in a
child process.

Ray's health check is tuned (``HEALTH_CHECK``) so a node that stops answering is
declared dead in seconds. Token authentication (on by default for local clusters) uses a
token of this test run's own, given by environment so the coordinator's child process in
the coordinator-death test joins with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmrec.commands.cluster_record import sim_nodes

# Set before Ray is imported: its config (the auth mode) is read once, at import.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))

HOSTS = ("recA", "recB", "recC")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    ray = pytest.importorskip("ray", reason="the cluster extra (mmrec[cluster]) is not installed")
    from ray.cluster_utils import Cluster

    from mmrec.cluster import HEALTH_CHECK

    saved = {"PYTHONPATH": os.environ.get("PYTHONPATH")}
    # Ray's workers (and the recorders they start) import this tree's mmrec
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved["PYTHONPATH"]) if p)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "_system_config": dict(HEALTH_CHECK)},
    )
    nodes = {h: cluster.add_node(num_cpus=1, resources={f"host:{h}": 1}) for h in HOSTS}
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    cluster.mmrec_nodes = nodes  # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def sim9() -> Iterator[list[tuple[str, str]]]:
    """Nine simulated phones (320x240 at 30 fps) on loopback, in a child process."""
    with sim_process(9) as nodes:
        yield nodes


def sim_process(
    count: int, fps: float = 30.0
) -> contextlib.AbstractContextManager[list[tuple[str, str]]]:
    """``count`` simulated phones (320x240) in a child process: the command's own helper."""
    return sim_nodes(count, "320x240", fps)


def until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str | Callable[[], str],
    every: Callable[[], object] | None = None,
) -> None:
    """Check ``predicate`` (after ``every``, e.g. a coordinator's poll) every 50 ms until
    true; fail after ``timeout`` s. A condition wait: state other processes advance."""
    deadline = time.monotonic() + timeout
    while True:
        if every is not None:
            every()
        if predicate():
            return
        if time.monotonic() > deadline:
            said = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout} s waiting for {said}")
        time.sleep(0.05)  # poll interval of a condition wait


@pytest.fixture
def recorders_ended(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, and after the test every recorder started under it ended (SIGTERM:
    it finalizes its take): a failed test leaves no detached recorder behind."""
    yield tmp_path
    for control in tmp_path.glob("*/hosts/*/control.json"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(json.loads(control.read_text())["pid"])
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
