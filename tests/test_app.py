"""AppTest: the app renders, follows the sidebar, and survives bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120).run()


def test_default_page_shows_the_block_sample():
    at = app()
    assert not at.exception and not at.error
    frame = at.dataframe[0].value
    assert "Block_0/Dense_0/kernel" in set(frame["path"])
    assert [m.label for m in at.metric] == ["Param"]


def test_sidebar_switches_source():
    at = app()
    at.selectbox(key="left_pick").set_value("sample:counter:nnx").run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert set(frame["kind"]) == {"Param", "BatchStat", "Counter"}


def test_bad_source_shows_error_and_app_keeps_working():
    at = app()
    at.selectbox(key="left_pick").set_value("Other: a factory file or checkpoint directory…").run()
    at.text_input(key="left_text").set_value("no/such/model.py:make").run()
    assert not at.exception
    assert "not found" in at.error[0].value
    at.selectbox(key="left_pick").set_value("sample:rnn:linen").run()
    assert not at.exception and not at.error
    assert "ScanRNNCell_0/Dense_0/kernel" in set(at.dataframe[0].value["path"])


def test_search_filters_rows():
    at = app()
    at.text_input(key="browse_query").set_value("kernel").run()
    assert set(at.dataframe[0].value["path"]) == {"Block_0/Dense_0/kernel", "Dense_0/kernel"}
