"""``mmrec sim`` on the command line: help that teaches, options that map to node configs."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request

import pytest

from mmrec.cli import build_parser
from mmrec.commands.sim import configs_from_args
from mmrec.errors import ConfigError
from mmrec.sim import NodeConfig, Quirk
from mmrec.sim.process import parse_size, start_sim_process


def _args(*argv: str) -> list[NodeConfig]:
    args = build_parser().parse_args(["sim", *argv])
    return list(configs_from_args(args))


def test_help_has_examples_and_quirks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sim", "--help"])
    out = capsys.readouterr().out
    assert "mmrec sim --nodes 4" in out and "ffmpeg -f mpjpeg" in out
    for q in Quirk:
        assert q.value in out


def test_options_map_to_node_configs() -> None:
    configs = _args(
        "--nodes", "3", "--width", "640", "--height", "480", "--fps", "15",
        "--clock-offset", "0.5", "--drift-ppm", "30", "--quirk", "lf,no-length",
        "--quirk", "http10", "--faulty", "2", "--drop-every", "5",
    )  # fmt: skip
    names = [c.name for c in configs]
    assert names == ["cam-01", "cam-02", "cam-03"]
    a, b, c = configs
    assert (a.width, a.height, a.fps) == (640, 480, 15.0)
    assert a.quirks == {Quirk.LF, Quirk.NO_LENGTH, Quirk.HTTP10}
    assert b.clock_offset_s == 0.5 and b.drift_ppm == 30 and b.drop_every == 5
    assert c.quirks == frozenset() and c.clock_offset_s == 0


def test_bad_options_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown quirk"):
        _args("--quirk", "sideways")
    with pytest.raises(ConfigError, match="--nodes"):
        _args("--nodes", "0")
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        parse_size("big")


async def test_child_process_prints_json_and_serves() -> None:
    async with start_sim_process(2, size="160x120", fps=20) as cams:
        assert [name for name, _ in cams] == ["cam-01", "cam-02"]
        url = cams[1][1].removesuffix("/stream") + "/status"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        status = json.loads(body)
        assert status["deviceName"] == "cam-02" and status["width"] == 160


async def test_cli_runs_for_its_duration_and_prints_names_and_urls() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmrec", "sim", "--nodes", "2", "--bind", "127.0.0.1",
        "--port", "0", "--no-mdns", "--width", "96", "--height", "64", "--duration", "0.5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "cam-01  http://127.0.0.1:" in text and "cam-02  http://127.0.0.1:" in text
