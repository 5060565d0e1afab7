"""The app under 8 sessions at once: one real ``streamlit run`` server, 8 Chromium contexts
(Playwright) each driving Browse, Diff, Filters and Port on its own sample at the same time.

No exception in any session or in the server log; no session shows another's sources; each
session's pages read the same as when that sample ran alone (the ``block`` session against a
session on its own, every session against a second concurrent round); the server's RSS with 8
sessions stays within 300 MB of its RSS with one, and a second round of 8 adds under 5%.
(AppTest in threads cannot test this: it sets up and tears down a process-wide runtime.)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_browser import ARGS, CHROMIUM, IDLE, free_port

async_api = pytest.importorskip("playwright.async_api")

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ("block", "counter", "autoencoder", "rnn", "scan_mlp", "trainstate", "sow", "sharded")
WAIT = 240_000  # ms: 8 sessions share 2 cores
FILTER = "nnx.Param & ~nnx.PathContains('bias')"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with open(log, "w") as out:  # a file, not a pipe nobody reads: a full pipe would stall the server
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env={**os.environ, "INSPECTOR_ROOT": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("streamlit did not start: " + log.read_text())
    yield url, proc, log
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


async def settle(page) -> None:
    await page.wait_for_selector(IDLE, timeout=WAIT)
    await asyncio.sleep(0.5)
    await page.wait_for_selector(IDLE, timeout=WAIT)


async def until(page, ready, what: str) -> str:
    """The main area's text once the app is idle and ``ready(text)`` holds (an idle flag alone can be
    the page before the rerun a click asked for)."""
    deadline = time.monotonic() + WAIT / 1000
    while True:
        await settle(page)
        text = await page.locator('[data-testid="stMain"]').inner_text()
        if ready(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT / 1000:.0f} s for {what}; the page says:\n{text[:2000]}")
        await asyncio.sleep(0.5)


async def pick(page, index: int, spec: str) -> None:
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(index)
    await box.locator("input").click()
    await page.keyboard.type(spec)
    await page.keyboard.press("Enter")
    side = ("left", "right")[index]
    await until(page, lambda text: f"{side}: {spec}" in text, f"{side} source {spec}")


WIDGET_LABELS = {"rtol", "atol", "keyboard_arrow_right", "keyboard_arrow_down"}  # drawn late under load


async def main_text(page) -> str:
    """The main area's text once it stops changing, without the labels of widgets (results only)."""
    assert await page.locator('[data-testid="stException"]').count() == 0, await page.content()
    text = None
    for _ in range(20):
        await settle(page)
        now = await page.locator('[data-testid="stMain"]').inner_text()
        if now == text:
            break
        text = now
        await asyncio.sleep(1.0)
    # Blank lines vary with elements drawn empty (a progress bar's slot): compare the lines with text.
    return "\n".join(line for line in text.splitlines() if line.strip() and line.strip() not in WIDGET_LABELS)


async def session(browser, url: str, sample: str) -> dict[str, str]:
    """One user: pick ``sample``'s Linen and NNX forms, then read every page's text."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT)
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.get_by_text("Parameters by module and kind").wait_for(timeout=WAIT)
        await settle(page)
        await pick(page, 0, f"sample:{sample}:linen")
        await pick(page, 1, f"sample:{sample}:nnx")
        texts = {"browse": await main_text(page)}
        for title, key in (("Diff", "diff"), ("Filters & split", "filters"), ("Port check", "port")):
            await page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
            before = await until(page, lambda text, title=title: text.startswith(title + "\n"), f"page {title}")
            if key == "filters":
                box = page.get_by_label("Filter", exact=True)
                await box.fill(FILTER)
                await box.press("Enter")
                await until(page, lambda text: "nnx.state(model, " in text, "the filter's result")
            if key == "port":
                await page.get_by_role("button", name="Run port check").click()
                await until(page, lambda text, before=before: len(text) > len(before) + 20, "the port check")
            texts[key] = await main_text(page)
        return texts
    finally:
        await context.close()


async def rounds(url: str, pid: int) -> dict:
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            started = time.perf_counter()
            alone = await session(browser, url, "block")
            out = {"alone": alone, "rss_1": rss_mb(pid), "seconds_1": time.perf_counter() - started}
            for name in ("first", "second"):
                started = time.perf_counter()
                out[name] = dict(zip(SAMPLES, await asyncio.gather(*(session(browser, url, s) for s in SAMPLES))))
                out[f"rss_{name}"] = rss_mb(pid)
                out[f"seconds_{name}"] = time.perf_counter() - started
            return out
        finally:
            await browser.close()


def test_eight_sessions_at_once(server):
    url, proc, log = server
    got = asyncio.run(rounds(url, proc.pid))
    print(f"\nRSS: 1 session {got['rss_1']:.0f} MB ({got['seconds_1']:.0f} s); 8 sessions {got['rss_first']:.0f} MB "
          f"({got['seconds_first']:.0f} s); 8 more {got['rss_second']:.0f} MB ({got['seconds_second']:.0f} s)")
    for sample, texts in got["first"].items():
        others = [s for s in SAMPLES if s != sample]
        sources = texts["filters"].split("Examples")[0]
        assert f"left: sample:{sample}:linen" in sources and f"right: sample:{sample}:nnx" in sources, sources
        for text in texts.values():
            assert not any(f"sample:{o}:" in text for o in others), (sample, text[:500])
        assert texts == got["second"][sample], sample
    assert got["first"]["block"] == got["alone"]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert got["rss_first"] <= got["rss_1"] + 300
    assert got["rss_second"] < got["rss_first"] * 1.05
