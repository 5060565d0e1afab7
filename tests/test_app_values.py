"""AppTest: the diff page's value comparison goes through the streaming engine, once per input."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ui.compare import VALUES_KEY

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch):
    monkeypatch.setenv("INSPECTOR_ROOT", str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def test_compare_values_measures_once_and_shows_the_verdict(monkeypatch):
    import loaders.streaming

    calls = []
    original = loaders.streaming.stream_diffs

    def counting(*args, **kwargs):
        calls.append(kwargs.get("progress") is not None)
        return original(*args, **kwargs)

    monkeypatch.setattr("ui.compare.stream_diffs", counting)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.switch_page("app_pages/diff.py").run()
    at.selectbox(key="left_pick").set_value("sample:counter:linen").run()
    at.selectbox(key="right_pick").set_value("sample:counter:nnx").run()
    at.toggle(key="diff_values").set_value(True).run()
    assert not at.exception and calls == [True]  # with a progress bar
    frame = at.dataframe[0].value
    assert "counter/count" in frame[frame["status"] == "value_mismatch"]["left"].tolist()
    at.number_input(key="diff_atol").set_value(2.0).run()  # count 0 vs 1: within atol 2
    assert calls == [True, True] and len(at.session_state[VALUES_KEY]) == 2
    frame = at.dataframe[0].value
    assert "counter/count" not in frame[frame["status"] == "value_mismatch"]["left"].tolist()
    at.number_input(key="diff_atol").set_value(1e-8).run()  # measured before: not read again
    assert calls == [True, True] and not at.exception
