"""A one-host take never imports Ray (the extra is optional, and Ray's start-up costs
seconds and hundreds of MB): checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys
from mmrec import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
assert "ray" not in sys.modules, "ray was imported"
print("no ray")
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHECK, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_record_help_imports_no_ray() -> None:
    out = run("record", "--help")
    assert out.returncode == 0, out.stderr
    assert "--cluster ADDRESS" in out.stdout and out.stdout.endswith("no ray\n")


def test_a_simulated_one_host_take_imports_no_ray(tmp_path: Path) -> None:
    out = run(
        "record", "--sim", "1", "--sim-size", "160x120", "--sim-fps", "10",
        "--duration", "1", "--no-preview", "--json", "--out", str(tmp_path),
    )  # fmt: skip
    assert out.stdout.endswith("no ray\n"), out.stderr
    assert list(tmp_path.glob("*/manifest.json"))


def test_cluster_help_and_merge_import_no_ray(tmp_path: Path) -> None:
    out = run("cluster", "merge", "--help")
    assert out.returncode == 0 and out.stdout.endswith("no ray\n"), out.stderr
    out = run("cluster", "up", "--name", "recA", "--address", "10.0.0.1:6379", "--dry-run")
    assert out.stdout.startswith("ray start --address=10.0.0.1:6379"), out.stderr
    assert out.stdout.endswith("no ray\n")


NO_RAY = """
import importlib.util, sys
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "ray" else real(name, *a)
from mmrec import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_cluster_options_without_ray_say_how_to_get_it(tmp_path: Path) -> None:
    """Where the extra is not installed, --cluster is one clear line, not a traceback."""
    for args in (
        ["record", "--cluster", "127.0.0.1:1", "--sim", "1", "--duration", "1",
         "--out", str(tmp_path)],
        ["proxy", str(tmp_path), "--cluster", "127.0.0.1:1"],
    ):  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", NO_RAY, *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert "needs Ray" in out.stderr and "mmrec[cluster]" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
