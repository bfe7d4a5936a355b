"""``mmrec record``'s exit status and summary, run as a user runs it (a subprocess).

0 only when every camera recorded the whole take and mmrec lost nothing; 3 for gaps, 4
for frames mmrec lost, 5 for a camera that recorded nothing; 2 for usage and config
errors. A stop by signal (Ctrl-C, SIGTERM) is a normal end: the outcome decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from mmrec.cli import build_parser
from mmrec.commands.record import EXIT_STATUS
from mmrec.sim import NodeConfig
from tests.helpers import loopback_mesh, serve_404, wait_for


class Recorder:
    """``mmrec record`` in a subprocess at 80 columns; its stderr read line by line as
    it comes, so a test can wait for what the recorder says."""

    def __init__(self, out: Path, *args: str) -> None:
        self.out = out
        self.args = args
        self.lines: list[str] = []
        self.stdout = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Recorder:
        env = dict(os.environ, COLUMNS="80", LINES="40")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mmrec", "record", "--no-preview", "--out", str(self.out),
            *self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for raw in self._proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    async def said(self, text: str, timeout: float = 30) -> None:
        await wait_for(lambda: any(text in line for line in self.lines), timeout, repr(text))

    def manifest(self) -> dict[str, Any] | None:
        found = list(self.out.glob("*/manifest.json"))
        if not found:
            return None
        with contextlib.suppress(ValueError, OSError):
            doc: dict[str, Any] = json.loads(found[0].read_text())
            return doc
        return None

    def events(self, camera: str) -> list[tuple[str, str]]:
        """(kind, detail) of the camera's events in the live manifest."""
        m = self.manifest() or {}
        return [(e["kind"], e["detail"]) for e in m.get("events", []) if e["camera"] == camera]

    def camera(self, name: str) -> dict[str, Any]:
        m = self.manifest()
        cams = {c["name"]: c for c in (m or {}).get("cameras", [])}
        return cams.get(name, {"frames": 0, "state": "new"})

    async def stop(self, timeout: float = 30) -> int:
        """SIGTERM (as Ctrl-C would), then the exit status."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

    async def wait(self, timeout: float = 30) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        out = await asyncio.wait_for(self._proc.stdout.read(), timeout)
        self.stdout = out.decode()
        rc = await asyncio.wait_for(self._proc.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)
        return rc

    def summary(self) -> list[str]:
        """The closing summary: the lines from its table's title on."""
        start = max(
            i for i, line in enumerate(self.lines) if line.startswith("take ") and ":" in line
        )
        return self.lines[start:]


def _node(name: str, **kw: Any) -> NodeConfig:
    return NodeConfig(name, width=kw.pop("width", 160), height=kw.pop("height", 120), ring=4, **kw)


def test_help_lists_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["record", "--help"])
    text = capsys.readouterr().out
    section = text.split("exit status:", 1)[1]
    for outcome, code in EXIT_STATUS.items():
        assert f"\n  {code}  {outcome}: " in section
    assert "\n  2  nothing was recorded: a usage, config or setup error" in section


def test_usage_errors_exit_2_before_anything_is_recorded(tmp_path: Path) -> None:
    for args in (["--duration", "soon"], ["--duration", "-1", "h"], []):
        out = subprocess.run(
            [sys.executable, "-m", "mmrec", "record", "--out", str(tmp_path), *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert list(tmp_path.iterdir()) == []


async def test_complete_take_exits_0_and_suggests_review(tmp_path: Path) -> None:
    async with loopback_mesh([_node("A"), _node("B")]) as mesh:
        cams = [f"{n.name}={n.url}" for n in mesh.nodes]
        async with Recorder(tmp_path, *cams) as rec:
            await wait_for(lambda: all(rec.camera(n)["frames"] >= 30 for n in "AB"), 60, "frames")
            rc = await rec.stop()
    assert rc == 0, rec.stderr
    summary = rec.summary()
    assert all(cell_len(line) <= 80 for line in summary[:5])
    assert [line.split()[:2] for line in summary[3:5]] == [["A", "complete"], ["B", "complete"]]
    assert "outcome: complete (exit status 0)" in summary
    assert any(line.startswith("review: ") and " proxy " in line for line in summary)


async def test_unreachable_camera_exits_5_and_says_why(tmp_path: Path) -> None:
    async with Recorder(tmp_path, "far=http://127.0.0.1:9/stream", "--duration", "2") as rec:
        rc = await rec.wait(60)
    assert rc == EXIT_STATUS["nothing"] == 5, rec.stderr
    text = "\n".join(rec.summary())
    assert "far: never streamed: cannot connect to 127.0.0.1:9: Connection refused" in text
    assert "outcome: nothing (exit status 5)" in text
    assert "nothing was recorded: there is nothing to review" in text
    assert "proxy" not in text
    m = rec.manifest()
    assert m is not None and m["outcome"] == "nothing" and m["state"] == "finished"


async def test_a_404_camera_beside_a_good_one_exits_5(tmp_path: Path) -> None:
    async with serve_404() as port, loopback_mesh([_node("good")]) as mesh:
        cams = [f"good={mesh.nodes[0].url}", f"gone=http://127.0.0.1:{port}/stream"]
        async with Recorder(tmp_path, *cams, "--json") as rec:
            await wait_for(lambda: rec.camera("good")["frames"] >= 30, 60, "frames")
            # --json shows nothing while recording: the live manifest tells
            await wait_for(
                lambda: ("connect-failed", "HTTP 404 Not Found") in rec.events("gone"),
                30,
                "the 404 in the manifest",
            )
            rc = await rec.stop()
    assert rc == 5, rec.stderr
    doc = json.loads(rec.stdout)  # --json: the final manifest on stdout
    by = {c["name"]: c for c in doc["cameras"]}
    assert by["good"]["outcome"] == "complete" and by["gone"]["outcome"] == "nothing"
    assert by["gone"]["outcome_detail"] == "never streamed: HTTP 404 Not Found"
    assert doc["outcome"] == "nothing"


async def test_a_node_restarted_mid_take_exits_3(tmp_path: Path) -> None:
    async with loopback_mesh([_node("phone", fps=30)]) as mesh:
        node = mesh.nodes[0]
        args = [f"phone={node.url}", "--read-timeout", "1"]
        async with Recorder(tmp_path, *args) as rec:
            await wait_for(lambda: rec.camera("phone")["frames"] >= 30, 60, "frames")
            await node.stop()
            await rec.said("camera 'phone': disconnected: ")
            await rec.said("camera 'phone': connect-failed: ")
            await node.start()
            await rec.said("camera 'phone': gap: no frames for ")
            n = rec.camera("phone")["frames"]
            await wait_for(lambda: rec.camera("phone")["frames"] >= n + 15, 30, "frames again")
            rc = await rec.stop()
    assert rc == 3, rec.stderr
    text = "\n".join(rec.summary())
    assert "  phone: 1 gap of " in text and "outcome: gaps (exit status 3)" in text
    m = rec.manifest()
    assert m is not None
    (cam,) = m["cameras"]
    assert cam["outcome"] == "gaps" and len(cam["gaps"]) == 1
    assert cam["fps"] == pytest.approx(30, rel=0.15)


@contextlib.asynccontextmanager
async def _small_disk(where: Path, size: str) -> AsyncIterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (root only); unmounted after."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root (and mount)")
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_a_full_disk_loses_frames_and_exits_4(tmp_path: Path) -> None:
    """The take's disk fills up mid-take: mmrec loses frames (its fault, as far as the
    camera is concerned) and says so; space comes back so the manifest can be final."""
    async with _small_disk(tmp_path / "disk", "8m") as disk:
        filler = disk / "filler"
        filler.write_bytes(bytes(7 * 2**20))  # about 1 MB left for the take
        async with loopback_mesh([_node("cam", width=640, height=480, fps=30)]) as mesh:
            rec = Recorder(disk / "takes", f"cam={mesh.nodes[0].url}")
            async with rec:
                # said as it happens, with where and why (tests/session/test_disk_faults.py
                # has the rest: the state, the count, writing again by itself)
                await rec.said("camera 'cam': alert: cannot write in ", 60)
                filler.unlink()  # room again: the final manifest can be written
                rc = await rec.stop()
            m = rec.manifest()
    assert rc == 4, rec.stderr
    assert m is not None and m["state"] == "finished" and m["outcome"] == "lost"
    (cam,) = m["cameras"]
    assert cam["outcome"] == "lost" and cam["dropped"] > 0
    assert "No space left on device" in cam["outcome_detail"]
    alerts = [e["detail"] for e in m["events"] if e["kind"] == "alert"]
    assert any(a.startswith("cannot write in ") and "No space left" in a for a in alerts)
    disk = [e["detail"] for e in m["events"] if e["kind"] == "disk"]
    # the manifest could not be kept current meanwhile: said once, and its recovery
    failed = [d for d in disk if d.startswith("cannot write") and "manifest.json" in d]
    again = [d for d in disk if d == "the manifest is written again"]
    assert len(failed) <= 1 and len(again) <= len(failed)
    assert "outcome: lost (exit status 4)" in "\n".join(rec.summary())
