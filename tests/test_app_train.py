"""AppTest: the Port check page's training-step toggle."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
OTHER = "Other: a factory file or checkpoint directory…"
M = "tests/models/train_ports.py"


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch):
    monkeypatch.setenv("INSPECTOR_ROOT", str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def port_page(left: str, right: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240).run()
    at.switch_page("app_pages/port.py").run()
    at.selectbox(key="left_pick").set_value(OTHER).run()
    at.text_input(key="left_text").set_value(left).run()
    at.selectbox(key="right_pick").set_value(OTHER).run()
    at.text_input(key="right_text").set_value(right).run()
    at.toggle(key="port_train").set_value(True).run()
    return at


def test_training_toggle_names_the_batchnorm_statistics_of_a_momentum_bug():
    at = port_page(f"{M}:linen", f"{M}:momentum")
    at.button(key="port_run").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("MATCH")  # inference agrees
    assert at.error[0].value.startswith("TRAINS DIFFERENTLY: 2 state variable(s) differ")
    frames = {tuple(df.value["path"]) for df in at.dataframe[1:] if "path" in df.value.columns}
    assert ("bn/var", "bn/mean") in frames or ("bn/mean", "bn/var") in frames


def test_training_toggle_shows_a_missing_flag_and_takes_train_args():
    at = port_page(f"{M}:stem", f"{M}:stem_port")
    at.button(key="port_run").click().run()
    assert not at.exception and "--train-arg NAME=JSON" in at.error[0].value
    at.text_area(key="port_train_args").set_value("is_training=true").run()
    assert not at.exception and any(s.value.startswith("TRAINS THE SAME") for s in at.success)
