"""The visual diff in a real browser: the Diff page's module trees on a sample pair and on a generated
2,000-module transformer port. Opens modules, clicks them, checks the table follows, reads the paint
timing the component writes into its DOM, saves screenshots to artifacts/visual-diff/.
"""

from __future__ import annotations

import json
import tempfile
import time

import pytest

from tests.e2e.test_browser import ARGS, CHROMIUM, ROOT, server, settle, sync_api  # noqa: F401  (server: a fixture)

SHOTS = ROOT / "artifacts" / "visual-diff"
LARGE = ("tests/models/transformer_port.py:large_linen", "tests/models/transformer_port.py:large_nnx")
TIMINGS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def page(server):  # noqa: F811
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(server)
        settle(page)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Diff").first.click()
        settle(page)
        yield page
        context.close()
    if TIMINGS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / "timing.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")


def row(page, side: str, path: str):
    return page.locator(f'.dt .row[data-side="{side}"][data-path="{path}"]')


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(900, min(int(height) + 100, 6000))})
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.locator(".dt").first.screenshot(path=str(SHOTS / f"{name}-tree.png"))


def paint_timing(page, name: str) -> dict:
    """The component's own record of its first paint for the tree now shown (ms)."""
    tree = page.locator(".dt").first
    deadline = time.time() + 60
    while time.time() < deadline:
        signature = tree.get_attribute("data-signature")
        if signature and tree.get_attribute("data-paint-signature") == signature:
            break
        time.sleep(0.2)
    timing = {key: float(tree.get_attribute(f"data-{key}"))
              for key in ("first-paint", "render-ms", "since-diff-ms", "since-sent-ms")}
    timing["rows-in-dom"] = page.locator(".dt .row").count()
    TIMINGS[name] = timing
    print(f"{name}: first paint {timing['since-diff-ms']:.0f} ms after the diff was ready, "
          f"{timing['since-sent-ms']:.0f} ms after the tree left Python, {timing['render-ms']:.0f} ms in the component")
    return timing


def table_column(page, name: str) -> list[str]:
    """One column of the dataframe, read from its accessible table (the grid itself is a canvas)."""
    rows = page.evaluate("() => [...document.querySelectorAll('[data-testid=stDataFrame] table tr')]"
                         ".map(r => [...r.children].map(c => c.innerText.trim()))")
    column = rows[0].index(name)
    return [r[column] for r in rows[1:]]


def use_sources(page, left: str, right: str) -> None:
    for side, spec in (("left", left), ("right", right)):
        page.get_by_label(f"{side.title()} source (e.g. {'Linen' if side == 'left' else 'NNX'})").click()
        page.get_by_role("option", name="Other: a factory file or checkpoint directory…").click()
        settle(page)
        box = page.get_by_label(f"{side.title()} spec", exact=True).and_(page.get_by_test_id("stTextInputField"))
        box.fill(spec)
        box.press("Enter")
        settle(page)


def test_sample_pair(page):
    page.get_by_text("No mismatches among 6 variables.").wait_for(timeout=120_000)
    timing = paint_timing(page, "block sample")
    assert timing["since-diff-ms"] > 0 and timing["render-ms"] > 0
    assert row(page, "left", "Block_0").count() == 1 and row(page, "right", "block/dropout/rngs").count() == 1
    row(page, "left", "Block_0").locator(".tw").click()  # collapse, then open again
    assert row(page, "left", "Block_0/Dense_0").count() == 0 and row(page, "right", "block/linear").count() == 0
    row(page, "left", "Block_0").locator(".tw").click()
    assert row(page, "right", "block/linear").count() == 1  # its partner opened with it
    row(page, "left", "Block_0").click()
    page.get_by_text("2 of 6 variables").wait_for(timeout=60_000)
    settle(page)
    assert sorted(table_column(page, "left")) == ["params/Block_0/Dense_0/bias", "params/Block_0/Dense_0/kernel"]
    assert row(page, "left", "Block_0").get_attribute("class").split().count("sel") == 1
    assert "hl" in row(page, "right", "block/linear").get_attribute("class").split()
    shoot(page, "01-block-module-clicked")
    page.get_by_role("button", name="Show all").click()
    settle(page)
    lefts = table_column(page, "left")
    assert len(lefts) == 6
    choose_table_row(page, lefts.index("params/Dense_0/kernel"))
    row(page, "right", "linear").and_(page.locator(".hl")).wait_for(timeout=30_000)
    assert "hl" in row(page, "left", "Dense_0").get_attribute("class").split()
    assert page.get_by_role("combobox", name="Pair").input_value() == "params/Dense_0/kernel → linear/kernel"
    shoot(page, "01b-block-row-chosen")


def choose_table_row(page, index: int) -> None:
    """Tick a row's box in the dataframe (drawn on a canvas: click where the row marker is)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 35 * (index + 1) + 17)
    settle(page)


def test_generated_2000_module_pair(page):
    use_sources(page, *LARGE)
    # the PyTorch-style `wo` of layer 30 (`x @ W.T`) is a transpose the forward pass proves: not a mismatch
    page.get_by_text("5 mismatch(es) among 3247 variables.").wait_for(timeout=300_000)
    settle(page)
    timing = paint_timing(page, "2,000-module transformer port")
    assert timing["rows-in-dom"] < 150  # virtualised: only the rows in view
    assert row(page, "right", "layers").count() == 1 and row(page, "right", "layers/5").count() == 1
    shoot(page, "02-large-overview")

    page.locator(".dt-scroll").evaluate("e => { e.scrollTop = 29 * 24; }")
    row(page, "left", "layers_30").wait_for(timeout=10_000)
    assert "transformed" in row(page, "left", "layers_30").get_attribute("title")
    row(page, "left", "layers_30").locator(".tw").click()
    row(page, "right", "layers/30/mlp").wait_for(timeout=10_000)  # the partner block opened too
    row(page, "left", "layers_30/mlp").locator(".tw").click()
    row(page, "left", "layers_30/mlp").click()
    page.get_by_text("4 of 3,247 variables").wait_for(timeout=60_000)
    settle(page)
    shown = sorted(table_column(page, "left"))
    assert shown == [f"params/layers_30/mlp/{m}/{v}" for m in ("wi", "wo") for v in ("bias", "kernel")]
    assert "hl" in row(page, "right", "layers/30/mlp/wo").get_attribute("class").split()
    shoot(page, "03-large-module-clicked")

    page.get_by_role("button", name="Show all").click()
    settle(page)
    page.locator(".dt-bar button", has_text="Expand all mismatches").click()
    row(page, "left", "layers_60/attention/out").wait_for(timeout=10_000)
    page.locator(".dt-scroll").evaluate("e => { e.scrollTop = e.scrollHeight; }")
    row(page, "right", "layers/179/adapter").wait_for(timeout=10_000)
    assert "right only" in row(page, "right", "layers/179/adapter").inner_text()
    shoot(page, "04-large-mismatches-open")
    page.locator(".dt-bar button[data-act=all]").click()
    assert page.locator(".dt .row").count() < 150
    assert int(page.locator(".dt").first.get_attribute("data-visible-left")) == 1984
