"""AppTest for the Diff page's visual diff: the trees' data, the module filter, the chosen pair.

AppTest cannot click inside a custom component, so these tests set what a click sets
(``st.session_state["diff_module"]``) and read what the component is given (its JSON data).
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


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch):
    monkeypatch.setenv("INSPECTOR_ROOT", str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def diff_page(left: str | None = None, right: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("app_pages/diff.py").run()
    for side, spec in (("left", left), ("right", right)):
        if spec is None:
            continue
        if spec.startswith("sample:"):
            at.selectbox(key=f"{side}_pick").set_value(spec).run()
        else:
            at.selectbox(key=f"{side}_pick").set_value(OTHER).run()
            at.text_input(key=f"{side}_text").set_value(spec).run()
    assert not at.exception
    return at


def tree_data(at: AppTest) -> dict:
    (component,) = at.get("bidi_component")
    assert component.proto.component_name == "flax_inspector.diff_tree"
    return json.loads(component.proto.json)


def index(data: dict, side: str, name: str) -> int:
    """Row index of a module path in the component's column data."""
    columns = data["tree"][side]
    for i in range(len(columns["label"])):
        parts, k = [], i
        while k > 0:
            parts.append(columns["label"][k])
            k = columns["parent"][k]
        if "/".join(reversed(parts)) == name:
            return i
    raise AssertionError(f"no {side} row {name!r}")


def table(at: AppTest) -> list[tuple[str, str]]:
    frame = at.dataframe[0].value
    return sorted(zip(frame["left"], frame["right"]))


def test_block_pair_trees_above_the_table_and_sankey_tucked_away():
    at = diff_page()
    data = tree_data(at)
    assert data["tree"]["left"]["label"] == ["(model)", "Block_0", "Dense_0", "Dense_0"]
    assert data["tree"]["right"]["label"] == ["(model)", "block", "linear", "dropout", "rngs", "linear"]
    assert data["tree"]["right"]["cls"][:3] == ["Model", "Block", "Linear"]
    assert data["titles"] == {"left": "linen · sample:block:linen", "right": "nnx · sample:block:nnx"}
    assert data["open_depth"] == 3 and data["selected"] is None and data["ready_at"] > 0
    assert len(data["colors"]) == len(data["tree"]["statuses"])
    body = [type(node).__name__ for node in at.main]
    assert body.index("UnknownElement") < body.index("Dataframe")  # the trees sit above the table
    expander = next(e for e in at.expander if e.label == "Parameters by size")
    assert '"sankey"' in expander.get("plotly_chart")[0].proto.spec
    assert len(table(at)) == 6


@pytest.mark.parametrize("side,path,rows,notice", [
    ("left", "Block_0", [("params/Block_0/Dense_0/bias", "block/linear/bias"),
                         ("params/Block_0/Dense_0/kernel", "block/linear/kernel")], "left module `Block_0`: 2 of 6"),
    ("right", "block/dropout", [("", "block/dropout/rngs/count"), ("", "block/dropout/rngs/key")],
     "right module `block/dropout`: 2 of 6"),
    ("right", "linear", [("params/Dense_0/bias", "linear/bias"), ("params/Dense_0/kernel", "linear/kernel")],
     "right module `linear`: 2 of 6"),
    ("left", "", None, "left model (every left variable): 4 of 6"),
], ids=["left-container", "right-rng-only", "right-leaf", "root"])
def test_a_clicked_module_filters_the_table(side, path, rows, notice):
    at = diff_page()
    at.session_state["diff_module"] = {"side": side, "path": path}
    at.run()
    assert not at.exception
    assert any(notice in i.value for i in at.info), [i.value for i in at.info]
    if rows is not None:
        assert table(at) == rows
    data = tree_data(at)
    assert data["selected"] == {"side": side, "index": index(data, side, path)}


def test_the_filter_highlights_where_the_variables_went():
    at = diff_page()
    at.session_state["diff_module"] = {"side": "left", "path": "Block_0"}
    at.run()
    data = tree_data(at)
    assert data["highlight"] == {"left": [index(data, "left", "Block_0/Dense_0")],
                                 "right": [index(data, "right", "block/linear")]}
    at.button(key="diff_module_clear").click().run()
    assert "diff_module" not in at.session_state and len(table(at)) == 6 and tree_data(at)["selected"] is None


def test_a_module_from_another_diff_is_ignored():
    at = diff_page()
    at.session_state["diff_module"] = {"side": "left", "path": "layers_3/attention"}
    at.run()
    assert not at.exception and not at.info and len(table(at)) == 6


def test_status_filter_and_module_filter_combine():
    at = diff_page("tests/models/broken_ports.py:linen", "tests/models/broken_ports.py:missing_bias")
    data = tree_data(at)
    dense_1 = index(data, "left", "Dense_1")
    assert data["tree"]["statuses"][data["tree"]["left"]["status"][dense_1]] == "left_only"
    assert data["tree"]["left"]["mismatches"][0] == 1
    at.session_state["diff_module"] = {"side": "left", "path": "Dense_1"}
    at.run()
    assert table(at) == [("params/Dense_1/bias", ""), ("params/Dense_1/kernel", "linear2/kernel")]
    at.multiselect(key="diff_statuses").set_value(["left_only"]).run()
    assert table(at) == [("params/Dense_1/bias", "")]


def test_choosing_a_pair_highlights_and_opens_its_modules_once():
    at = diff_page()
    at.selectbox(key="diff_pair").set_value("params/Dense_0/kernel → linear/kernel").run()
    data = tree_data(at)
    assert data["highlight"] == {"left": [index(data, "left", "Dense_0")], "right": [index(data, "right", "linear")]}
    assert data["reveal"] is True
    at.toggle(key="diff_values").set_value(True).run()  # any later rerun keeps the highlight, opens nothing
    assert tree_data(at)["reveal"] is False and tree_data(at)["highlight"] == data["highlight"]


def test_pair_view_overlays_histograms_and_maps_the_difference():
    at = diff_page()
    assert at.selectbox(key="diff_pair").value == "params/Block_0/Dense_0/kernel → block/linear/kernel"  # largest
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    histograms = next(s for s in specs if s["layout"].get("barmode") == "overlay")
    assert [t["name"] for t in histograms["data"]] == ["left", "right"]
    heatmap = next(s for s in specs if s["data"][0]["type"] == "heatmap")
    assert heatmap["layout"]["title"]["text"].startswith("Difference (right − left)")


def test_pair_view_of_a_shape_mismatch_explains_the_missing_map():
    at = diff_page("tests/models/broken_ports.py:linen", "tests/models/broken_ports.py:transposed")
    assert at.selectbox(key="diff_pair").value == "params/Dense_0/kernel → linear1/kernel"  # the mismatch first
    assert any("shapes differ ((784, 256) vs (256, 784))" in i.value for i in at.info)
    assert not any(json.loads(c.proto.spec)["data"][0]["type"] == "heatmap" for c in at.get("plotly_chart"))


def test_pair_view_of_abstract_sources_reads_values_on_request():
    at = diff_page()
    at.toggle(key="abstract").set_value(True).run()
    assert any("Shapes only" in c.value for c in at.caption)
    assert not at.get("plotly_chart")[:-1]  # only the Sankey
    at.button(key="diff_pair_load").click().run()
    assert not at.exception
    assert any(json.loads(c.proto.spec)["data"][0]["type"] == "heatmap" for c in at.get("plotly_chart"))
