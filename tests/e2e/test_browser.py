"""The real app in a real browser: streamlit run + Debian's headless Chromium driven by Playwright.

Skipped when Chromium is missing, unless INSPECTOR_REQUIRE_BROWSER=1 (as in CI), where a missing
browser is a failure. Screenshots go to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'

if not Path(CHROMIUM).exists():
    if os.environ.get("INSPECTOR_REQUIRE_BROWSER"):
        raise RuntimeError("Chromium is required here (INSPECTOR_REQUIRE_BROWSER=1): apt-get install chromium")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = {**os.environ, "INSPECTOR_ROOT": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("streamlit did not start: " + (proc.stdout.read() if proc.stdout else ""))
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1400, "height": 900})
        yield context.new_page()
        context.close()


def settle(page) -> None:
    page.wait_for_selector(IDLE, timeout=120_000)
    time.sleep(0.5)
    page.wait_for_selector(IDLE, timeout=120_000)


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => (document.querySelector('[data-testid=\"stMain\"]') || document.body).scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(900, min(int(height) + 100, 6000))})
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def open_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_cold_start_and_browse(server, page):
    started = time.perf_counter()
    page.goto(server)
    page.get_by_text("Parameters by module and kind").wait_for(timeout=120_000)
    settle(page)
    cold = time.perf_counter() - started
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "cold_start.txt").write_text(f"{cold:.2f}\n")
    print(f"cold start to first fully rendered page: {cold:.2f} s")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    page.locator('[data-testid="stIFrame"]').first.scroll_into_view_if_needed()  # treescope draws when visible
    container = page.frame_locator('[data-testid="stIFrame"]').first.locator("treescope-container").first
    container.wait_for(timeout=60_000)
    deadline = time.time() + 60
    while "Dense_0" not in (drawn := container.evaluate("e => e.shadowRoot ? e.shadowRoot.textContent : ''")) \
            and time.time() < deadline:
        time.sleep(0.5)  # treescope draws after its script runs ("(Loading...)" until then)
    assert "Dense_0" in drawn and "Block_0" in drawn  # treescope drew the Linen variables
    shoot(page, "01-browse")


def test_diff_page(server, page):
    open_page(page, "Diff")
    page.get_by_text("No mismatches among 6 variables.").wait_for(timeout=60_000)
    shoot(page, "02-diff")


def test_filters_page(server, page):
    open_page(page, "Filters & split")
    box = page.get_by_label("Filter", exact=True)
    box.fill("nnx.Param & ~nnx.PathContains('bias')")
    box.press("Enter")
    page.get_by_text("2 of 6").wait_for(timeout=60_000)
    settle(page)
    assert page.get_by_text("nnx.All(nnx.Param, nnx.Not(nnx.PathContains('bias')))").count() >= 1
    box.fill("Parm")
    box.press("Enter")
    page.get_by_text("Did you mean 'Param'?").wait_for(timeout=60_000)
    box.fill("nnx.Param & ~nnx.PathContains('bias')")
    box.press("Enter")
    page.get_by_text("2 of 6").wait_for(timeout=60_000)
    settle(page)
    shoot(page, "03-filters")


def test_port_page(server, page):
    open_page(page, "Port check")
    page.get_by_role("button", name="Run port check").click()
    page.get_by_text("MATCH: 4 variables converted").wait_for(timeout=120_000)
    settle(page)
    shoot(page, "04-port")
