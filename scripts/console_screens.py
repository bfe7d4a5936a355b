"""Screenshots of the console as an operator sees it, against `mmrec sim` nodes.

    python scripts/console_screens.py /work/screens [--sizes 1440x900 1024x768]

Starts 4 simulated nodes (`mmrec sim`, loopback, no mDNS), a console that is given two
of them by address only (named by their /status), one by name with fallback addresses
(a Tailscale name among them), one found by discovery (--host), and one that never
answers; with a relay folder. For each size: the console in standby, recording, and
after the take, written as console-WxH-N-what.png. Chromium from Debian through
Playwright (executable_path=/usr/bin/chromium), as tests/console/ does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
BASE = "127.0.0.61"  # the sim nodes: 127.0.0.61..64 on 8081


def config(folder: Path) -> Path:
    cfg = folder / "shoot.toml"
    cfg.write_text(
        """
[[camera]]
name = "A-wide"
url = "http://127.0.0.61:8081/stream"
fallbacks = ["http://cam-a-wide-pixel-8-pro.tail4f2a9c.ts.net:8081/stream",
             "http://100.101.7.21:8081/stream", "http://[fd7a:115c:a1e0::21]:8081/stream"]

[[camera]]
name = "D-gone"
url = "http://127.0.0.99:8081/stream"
"""
    )
    return cfg


async def shoot(out: Path, sizes: list[tuple[int, int]]) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryDirectory(dir="/dev/shm") as relay,  # another file system
    ):
        folder = Path(tmp)
        sim = subprocess.Popen(
            [sys.executable, "-m", "mmrec", "sim", "--nodes", "4", "--bind", BASE,
             "--no-mdns", "--width", "1280", "--height", "720", "--fps", "15", "--spread",
             "--model", "Pixel 8 Pro", "--json"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert sim.stdout is not None
        sim.stdout.readline()  # the node list: they serve, the console may ask their /status
        console = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mmrec", "console", "--config", str(config(folder)),
            "127.0.0.62", "127.0.0.63:8081", "--discover", "--no-mdns", "--host",
            "127.0.0.64:8081", "--port", "0", "--out", str(folder / "takes"),
            "--relay", str(relay), "--preview-fps", "5",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert console.stdout is not None
            url = (await asyncio.wait_for(console.stdout.readline(), 60)).decode().strip()
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for n, (w, h) in enumerate(sizes):
                    await pages(browser, url, out, w, h, scene=str(n + 1))
                await browser.close()
        finally:
            console.terminate()
            await console.wait()
            sim.terminate()
            sim.wait()


async def pages(browser: object, url: str, out: Path, w: int, h: int, scene: str) -> None:
    page = await browser.new_page(viewport={"width": w, "height": h})  # type: ignore[attr-defined]
    await page.goto(url)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#cameras tbody tr')]"
        ".filter(r => r.className === 'streaming').length === 4",
        timeout=60_000,
    )
    await page.wait_for_function("() => document.querySelector('#multiview').naturalWidth > 0")
    await page.wait_for_timeout(3000)  # a few seconds of rates and a mosaic with every tile
    name = f"console-{w}x{h}"
    await page.screenshot(path=str(out / f"{name}-1-standby.png"), full_page=True)
    await page.screenshot(path=str(out / f"{name}-2-standby-screen.png"))
    await page.fill("#scene", scene)
    await page.fill("#note", "wide and close, first light")
    await page.click("#btn-record")
    await page.wait_for_function(
        "() => document.querySelector('#elapsed').textContent >= '00:00:04'", timeout=20_000
    )
    await page.screenshot(path=str(out / f"{name}-3-recording.png"))
    await page.click("#btn-stop")
    await page.wait_for_function(
        f"() => document.querySelector('#takes tbody tr')?.textContent.includes('scene-{scene}')"
    )
    await page.wait_for_function(
        "() => { const i = document.querySelector('#contact');"
        " return !i.hidden && i.complete && i.naturalWidth > 0"
        f" && i.src.includes('scene-{scene}'); }}",
        timeout=60_000,
    )
    await page.screenshot(path=str(out / f"{name}-4-after-take.png"), full_page=True)
    await page.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--sizes", nargs="+", default=["1440x900", "1024x768"])
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(shoot(args.out, sizes))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
