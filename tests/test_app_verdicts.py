"""AppTest: the Diff page shows transforms and info, and takes axis rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.models import lm1b_sharding

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
OTHER = "Other: a factory file or checkpoint directory…"


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch):
    monkeypatch.setenv("INSPECTOR_ROOT", str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def _diff_page(left: str, right: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("app_pages/diff.py").run()
    for side, spec in (("left", left), ("right", right)):
        at.selectbox(key=f"{side}_pick").set_value(OTHER).run()
        at.text_input(key=f"{side}_text").set_value(spec).run()
    assert not at.exception
    return at


def test_diff_page_transform_column_and_axis_rules():
    at = _diff_page("tests/models/lm1b_sharding.py:linen", "tests/models/lm1b_sharding.py:nnx_port")
    frame = at.dataframe[0].value
    assert not at.error and all("pass axis rules" in line for line in frame["info"])
    at.text_area(key="diff_axis_rules").set_value(json.dumps(lm1b_sharding.WRONG_RULES)).run()
    assert not at.exception and at.error[0].value.startswith("3 mismatch")
    at.text_area(key="diff_axis_rules").set_value('{"embed": "model"}').run()
    assert any("axis rules" in e.value for e in at.error)


def test_diff_page_shows_transforms():
    at = _diff_page("tests/models/layout_ports.py:linen_fused", "tests/models/layout_ports.py:nnx_fused")
    frame = at.dataframe[0].value
    row = frame[frame["right"] == "attn/qkv/kernel"].iloc[0]
    assert row["status"] == "transformed" and row["transform"].startswith("concat on axis 1 of params/attn/query")
