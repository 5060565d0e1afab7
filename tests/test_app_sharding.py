"""AppTest for the Sharding page: the planned layout on one device, and sources without annotations.

The per-device heatmap needs 8 devices: ``tests/test_sharding_devices.py`` checks it in a process of
its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
OTHER = "Other: a factory file or checkpoint directory…"
STACK = "tests/models/sharded_stack.py"


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch):
    monkeypatch.setenv("INSPECTOR_ROOT", str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def sharding_page(right: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.selectbox(key="right_pick").set_value(right).run()
    at.switch_page("app_pages/sharding.py").run()
    assert not at.exception and not at.error
    return at


def test_planned_layout_on_one_device():
    at = sharding_page("sample:sharded:nnx")
    assert any("only planned" in i.value and "--devices 8" in i.value for i in at.info)
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert bars["layout"]["title"]["text"] == "Bytes per device (planned)" and len(bars["data"][0]["x"]) == 8
    at.selectbox(key="sharding_variable").set_value("mlp_in/kernel").run()
    fields = dict(zip(at.dataframe[0].value["field"], at.dataframe[0].value["value"]))
    assert fields["PartitionSpec"] == "P('data', 'model')" and fields["shard shape"] == "(32, 64)"
    assert fields["bytes per device"] == "8.0 KiB" and fields["devices holding each shard"] == "1"
    assert len(at.get("plotly_chart")) == 1  # no per-device heatmap without devices


@pytest.mark.parametrize("right", ["sample:sharded:linen", "sample:block:nnx"], ids=["linen", "unannotated"])
def test_other_sources(right):
    at = sharding_page(right)
    if right == "sample:block:nnx":
        assert "No variable" in at.info[0].value
    else:
        assert at.metric[0].value == "data=2×model=4"


def test_diff_page_explains_a_sharding_mismatch():
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("app_pages/diff.py").run()
    for side, factory in (("left", "linen"), ("right", "nnx_dropped")):
        at.selectbox(key=f"{side}_pick").set_value(OTHER).run()
        at.text_input(key=f"{side}_text").set_value(f"{STACK}:{factory}").run()
    assert not at.exception and at.error[0].value.startswith("2 mismatch")
    frame = at.dataframe[0].value
    assert set(frame["status"]) == {"sharding_mismatch"}
    assert all("without transform_metadata" in note for note in frame["notes"])
