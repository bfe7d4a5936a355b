"""The console in a real browser (Debian's chromium, driven by Playwright), against
simulated nodes on loopback: the operator starts and stops a take with the buttons, sees
a camera go down and come back (its state and an alert that stays until acknowledged),
sends a command to every node, opens one camera at full resolution, and the take is on
disk as promised. Names and events from nodes with markup and bidirectional marks show
as text. Screenshots of what the operator sees go to $MMREC_SCREENS (default: the test's
temporary folder).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmrec.sim import NodeConfig, SimNode
from mmrec.store.take import load_manifest
from tests.helpers import loopback_mesh

playwright = pytest.importorskip("playwright.async_api", reason="pip install playwright (dev)")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
EVIL = "<script>window.__pwned=1</script>\u202eevil"  # what the node calls itself
MARKUP = "<b>bravo</b>"  # a camera named so on the command line (NAME=URL: no "=")
# addresses of alpha's beside its own (a Tailscale name and address, as a shoot config
# gives them): long, and never answering here
LONG_NAME = "alpha-pixel-8-pro-of-the-second-unit.tail4f2a9c.ts.net"
FALLBACKS = [
    f"http://{LONG_NAME}:8081/stream",
    "http://[fd7a:115c:a1e0:ab12:cd34:ef56:7890:1234]:8081/stream",
]
# every panel fits its contents at this width (long names are cut, with a title)
NARROW = {"width": 800, "height": 700}
PHONE = {"width": 600, "height": 900}
OVERFLOWING = """() => [...document.querySelectorAll('main > section, header#top, #alerts-bar')]
  .filter((s) => !s.hidden && s.scrollWidth > s.clientWidth)
  .map((s) => s.id + ': ' + s.scrollWidth + ' > ' + s.clientWidth)"""


def _screens(tmp_path: Path) -> Path:
    out = Path(os.environ.get("MMREC_SCREENS") or tmp_path / "screens")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_operator_records_a_take_in_the_browser(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "chromium is missing: bash scripts/bootstrap.sh --dev"
    screens = _screens(tmp_path)
    nodes = [
        NodeConfig("alpha", width=640, height=360, ring=3, fps=15, clock_offset_s=1.5),
        NodeConfig("bravo", width=480, height=360, ring=3, fps=15, delay_ms=20, jitter_ms=5),
        NodeConfig("evil", width=320, height=240, ring=3, fps=15, device_name=EVIL),
    ]
    out = tmp_path / "takes"
    async with loopback_mesh(nodes) as mesh:
        alpha, bravo, evil = mesh.nodes
        config = tmp_path / "shoot.toml"
        config.write_text(
            f'[[camera]]\nname = "alpha"\nurl = "{alpha.url}"\n'
            f"fallbacks = {json.dumps(FALLBACKS)}\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mmrec", "console", "--config", str(config),
            f"{MARKUP}={bravo.url}", "--discover", "--no-mdns", "--host",
            f"{evil.host}:{evil.port}", "--port", "0", "--out", str(out),
            "--connect-timeout", "1", "--read-timeout", "1", "--preview-fps", "5",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
            assert url.startswith("http://127.0.0.1:"), url
            await _drive(url, screens, mesh.nodes, out)
        finally:
            proc.terminate()
            _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    takes = list(out.iterdir())
    assert len(takes) == 1
    m = load_manifest(takes[0])
    assert m.state == "finished" and takes[0].name.endswith("scene-4-take-1")
    by_name = {c.name: c for c in m.cameras}
    assert set(by_name) >= {"alpha", MARKUP}
    for c in m.cameras:
        assert c.frames > 15 and c.dropped == 0, c
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
             "stream=codec_name,width,height,nb_read_packets", "-of", "json",
             str(takes[0] / c.segments[0])],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        stream = json.loads(probe.stdout)["streams"][0]
        assert stream["codec_name"] == "mjpeg" and int(stream["nb_read_packets"]) > 0
    assert by_name["alpha"].reconnects >= 1 and by_name["alpha"].gaps  # it went and came back
    assert by_name["alpha"].outcome == "gaps" and m.outcome == "gaps"
    assert (takes[0] / "preview.mkv").stat().st_size > 0
    assert any(e.kind == "note" and "rehearsal" in e.detail for e in m.events)
    assert any(e.kind == "node" for e in m.events)  # the nodes reported the command


async def _drive(url: str, screens: Path, nodes: tuple[SimNode, ...], out: Path) -> None:
    alpha = nodes[0]
    async with playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(url)
        # every camera streaming (the discovered one joins within the first probe round)
        await page.wait_for_function(
            """() => { const rows = document.querySelectorAll('#cameras tbody tr');
                       return rows.length === 3 &&
                         [...rows].every(r => r.className === 'streaming'); }""",
            timeout=30_000,
        )
        await page.wait_for_function(
            "() => !document.querySelector('#multiview').complete ||"
            " document.querySelector('#multiview').naturalWidth > 0"
        )
        await page.screenshot(path=str(screens / "console-1-standby.png"), full_page=True)

        # narrow: every panel still holds its contents; alpha's long addresses are cut
        # with an ellipsis, and the whole of each is in its title
        await page.set_viewport_size(NARROW)
        await page.wait_for_function(
            "() => document.querySelectorAll('#devices tr[data-camera=alpha] .addr').length === 3"
        )
        assert await page.evaluate(OVERFLOWING) == []
        cut = await page.eval_on_selector_all(
            "#devices .addr",
            "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.title)",
        )
        assert any(LONG_NAME in t for t in cut), cut
        await page.screenshot(path=str(screens / "console-1-narrow.png"), full_page=True)

        # a phone held upright: still no panel wider than the screen, the last error has
        # room for its words, and every camera's "view" button is on the screen
        await page.set_viewport_size(PHONE)
        await page.wait_for_function(f"() => window.innerWidth === {PHONE['width']}")
        assert await page.evaluate(OVERFLOWING) == []
        error_width = await page.eval_on_selector(
            "#cameras th:nth-child(11)", "e => e.getBoundingClientRect().width"
        )
        assert error_width >= 80, error_width
        rights = await page.eval_on_selector_all(
            "#cameras td button", "els => els.map(e => e.getBoundingClientRect().right)"
        )
        assert rights and max(rights) <= PHONE["width"], rights
        await page.screenshot(path=str(screens / "console-1-phone.png"), full_page=True)
        await page.set_viewport_size({"width": 1600, "height": 1000})

        # names from nodes and the command line stay text
        names = await page.eval_on_selector_all(
            "#cameras tbody tr td:first-child", "els => els.map(e => e.textContent)"
        )
        assert MARKUP in names
        node_names = await page.eval_on_selector_all(
            "#devices tbody tr .who", "els => els.map(e => e.textContent)"
        )
        assert any("<script>window.__pwned=1</script>evil" in n for n in node_names)  # RTL removed
        assert await page.evaluate("() => window.__pwned") is None
        assert await page.evaluate("() => document.scripts.length") == 1
        assert await page.locator("#devices img, #cameras img").count() == 0

        # record: the slate, then the button
        await page.fill("#scene", "4")
        await page.fill("#note", "rehearsal")
        await page.click("#btn-record")
        await page.wait_for_function(
            "() => document.querySelector('#rec-indicator').textContent.includes('REC')"
        )
        await page.wait_for_function(
            "() => document.querySelector('#take-name').textContent === 'scene-4-take-1'"
        )
        await page.wait_for_function(
            "() => document.querySelector('#elapsed').textContent >= '00:00:02'"
        )
        await page.screenshot(path=str(screens / "console-2-recording.png"))

        # a camera goes down: its state and an alert on the page
        await alpha.stop()
        row = "#cameras tbody tr[data-camera='alpha']"
        await page.wait_for_function(
            f"() => document.querySelector(\"{row}\").className !== 'streaming'"
        )
        alert = "#alerts li[data-kind='camera-lost'][data-subject='alpha']"
        await page.wait_for_selector(alert, timeout=15_000)
        assert "alpha lost" in (await page.text_content(alert) or "")
        await page.screenshot(path=str(screens / "console-3-camera-lost.png"))
        # ...and comes back: streaming again; the alert stays (cleared) until acknowledged
        await alpha.start()
        await page.wait_for_function(
            f"() => document.querySelector(\"{row}\").className === 'streaming'",
            timeout=20_000,
        )
        await page.wait_for_selector(alert + ".cleared")
        await page.click(alert + " button.ack")
        await page.wait_for_selector(alert, state="detached")

        # a command to every node, each node's answer shown, and each node's own event
        # saying it got it (alpha's /events followed again since it came back)
        events = f"{row} td:nth-child(12)"
        await page.wait_for_function(
            f"() => document.querySelector(\"{events}\").textContent !== '-'", timeout=10_000
        )
        await page.fill("#cmd-body", '{"action": "mark"}')
        await page.click("#btn-send")
        await page.wait_for_function(
            "() => document.querySelectorAll('#answers tbody tr').length === 3"
        )
        statuses = await page.eval_on_selector_all(
            "#answers tbody tr td:nth-child(2)", "els => els.map(e => e.textContent)"
        )
        assert statuses == ["200", "200", "200"]
        answers = await page.eval_on_selector_all(
            "#answers tbody tr td:nth-child(4)", "els => els.map(e => e.textContent)"
        )
        assert any("<script>window.__pwned=1</script>" in a for a in answers)  # as text
        for node in nodes:
            assert {"action": "mark"} in list(node.commands)
        await page.wait_for_function(
            f"() => document.querySelector(\"{events}\").textContent.startsWith('command: ')"
        )

        # one camera at full resolution, relayed
        await page.click("#cameras tbody tr[data-camera='alpha'] button.view")
        await page.wait_for_function(
            "() => document.querySelector('#single-img').naturalWidth === 640", timeout=15_000
        )
        await page.screenshot(path=str(screens / "console-4-one-camera.png"))
        await page.click("#btn-single-close")

        # stop: the take is listed, with its contact sheet
        await page.click("#btn-stop")
        await page.wait_for_function(
            "() => document.querySelector('#rec-indicator').textContent === 'STANDBY'"
        )
        await page.wait_for_function(
            "() => document.querySelectorAll('#takes tbody tr').length === 1"
        )
        await page.wait_for_function(
            "() => { const i = document.querySelector('#contact');"
            " return !i.hidden && i.complete && i.naturalWidth > 0; }",
            timeout=30_000,
        )
        take_row = await page.text_content("#takes tbody tr")
        assert take_row is not None and "scene-4-take-1" in take_row and "rehearsal" in take_row
        assert "alpha: gaps" in take_row  # the take's outcome, per camera
        assert await page.input_value("#take") == "2"  # the next take is numbered
        await page.screenshot(path=str(screens / "console-5-after-take.png"), full_page=True)
        await page.set_viewport_size(NARROW)  # with takes, answers and events listed
        await page.wait_for_function("() => window.innerWidth === 800")
        assert await page.evaluate(OVERFLOWING) == []
        assert dialogs == [] and errors == []
        assert await page.evaluate("() => window.__pwned") is None
        await browser.close()
    assert out.exists()
