"""AppTest for each page: default render, sidebar changes, bad input shown as st.error."""

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


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page(f"app_pages/{name}.py").run()
    assert not at.exception
    return at


def test_diff_page_default_is_the_clean_block_pair():
    at = page("diff")
    assert not at.error and "No mismatches among 6 variables." in [s.value for s in at.success]
    frame = at.dataframe[0].value
    assert set(frame["status"]) == {"renamed", "rng_only"}
    row = frame[frame["left"] == "params/Block_0/Dense_0/kernel"].iloc[0]
    assert row["right"] == "block/linear/kernel"
    sankey = at.get("plotly_chart")[0].proto.spec
    assert '"sankey"' in sankey


def test_diff_page_broken_port_and_status_filter():
    at = page("diff")
    at.selectbox(key="left_pick").set_value(OTHER).run()
    at.text_input(key="left_text").set_value("tests/models/broken_ports.py:linen").run()
    at.selectbox(key="right_pick").set_value(OTHER).run()
    at.text_input(key="right_text").set_value("tests/models/broken_ports.py:missing_bias").run()
    assert not at.exception
    assert at.error[0].value.startswith("1 mismatch")
    at.multiselect(key="diff_statuses").set_value(["left_only"]).run()
    assert list(at.dataframe[0].value["left"]) == ["params/Dense_1/bias"]


def test_diff_page_rules_editor_reruns_the_diff():
    at = page("diff")
    at.selectbox(key="left_pick").set_value("sample:autoencoder:linen").run()
    at.selectbox(key="right_pick").set_value("sample:autoencoder:nnx").run()
    at.text_area(key="diff_rules").set_value(json.dumps({"pairs": {"encoder": "decoder", "decoder": "encoder"}})).run()
    assert not at.exception and at.error[0].value.startswith("4 mismatch")
    at.text_area(key="diff_rules").set_value("{not json").run()
    assert any("not valid JSON" in e.value for e in at.error)


def test_diff_page_values():
    at = page("diff")
    at.selectbox(key="left_pick").set_value("sample:counter:linen").run()
    at.selectbox(key="right_pick").set_value("sample:counter:nnx").run()
    at.toggle(key="diff_values").set_value(True).run()
    frame = at.dataframe[0].value
    assert "counter/count" in frame[frame["status"] == "value_mismatch"]["left"].tolist()
    assert frame["max_abs"].notna().all()


def test_port_page_runs_and_reports_a_match():
    at = page("port")
    at.button(key="port_run").click().run()
    assert not at.exception and at.success[0].value.startswith("MATCH: 4 variables converted")


def test_port_page_catches_a_wrong_port(tmp_path):
    # (a swapped port is paired by the forward pass now, and matches: tests/test_dataflow.py)
    at = page("port")
    at.selectbox(key="left_pick").set_value(OTHER).run()
    at.text_input(key="left_text").set_value("tests/models/port_cases.py:linen").run()
    at.selectbox(key="right_pick").set_value(OTHER).run()
    at.text_input(key="right_text").set_value("tests/models/port_cases.py:wrong_activation").run()
    at.button(key="port_run").click().run()
    assert not at.exception and at.error[0].value.startswith("DIFFER")
    frames = [set(df.value.columns) for df in at.dataframe]  # the outputs, the suspects, then Convert's plan
    assert {"linen", "nnx", "names", "first use"} in frames


@pytest.mark.parametrize("spec,message", [
    ("../outside.py:make", "outside the root folder"),
    ("/etc/model.py:make", "outside the root folder"),
    ("os.path:join", "module specs run code from anywhere"),
    ("tests/models/missing.py:make", "not found"),
], ids=["dotdot", "absolute", "module-spec", "missing-file"])
def test_sources_outside_the_root_are_refused(spec, message):
    at = page("browse")
    at.selectbox(key="left_pick").set_value(OTHER).run()
    at.text_input(key="left_text").set_value(spec).run()
    assert not at.exception and any(message in e.value for e in at.error)
    at.selectbox(key="left_pick").set_value("sample:sow:nnx").run()
    assert not at.error and "linear1/kernel" in set(at.dataframe[0].value["path"])


def test_symlink_escape_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.py").write_text("def make():\n    raise SystemExit('should never run')\n")
    (root / "link.py").symlink_to(tmp_path / "secret.py")
    monkeypatch.setenv("INSPECTOR_ROOT", str(root))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.selectbox(key="left_pick").set_value(OTHER).run()
    at.text_input(key="left_text").set_value("link.py:make").run()
    assert not at.exception and any("outside the root folder" in e.value for e in at.error)


def test_browse_abstract_toggle_and_load_values():
    at = page("browse")
    at.toggle(key="abstract").set_value(True).run()
    assert not at.exception
    assert any("Shapes only" in c.value for c in at.caption)
    at.selectbox(key="browse_variable").set_value("params/Dense_0/kernel").run()
    at.button[0].click().run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # treemap, histogram, heatmap


def test_browse_treescope_iframe():
    at = page("browse")
    html = at.get("iframe")[0].proto.srcdoc
    assert "treescope" in html.lower() and len(html) > 1000


def test_filters_page_live_results_and_examples():
    at = page("filters")
    assert not at.error
    at.text_input(key="filter_text").set_value("nnx.Param & nnx.PathContains('kernel')").run()
    assert not at.exception and not at.error
    frame = at.dataframe[0].value
    assert frame[frame["match"]]["path"].tolist() == ["block/linear/kernel", "linear/kernel"]
    assert ("variables", "2 of 6") in [(m.label, m.value) for m in at.metric]
    assert "nnx.state(model, nnx.All(nnx.Param, nnx.PathContains('kernel')))" in [c.value for c in at.code]
    at.button_group(key="filter_example").set_value("nnx.RngState").run()
    assert at.text_input(key="filter_text").value == "nnx.RngState"
    assert ("variables", "2 of 6") in [(m.label, m.value) for m in at.metric]


def test_filters_page_refuses_bad_text_and_keeps_working():
    at = page("filters")
    at.text_input(key="filter_text").set_value("Parm").run()
    assert "Unknown name 'Parm'. Did you mean 'Param'?" in at.error[0].value
    at.text_input(key="filter_text").set_value("__import__('os').system('touch /tmp/pwned')").run()
    assert not at.exception and at.error
    at.text_input(key="filter_text").set_value("nnx.Param").run()
    assert not at.error


def test_filters_page_split_and_merge():
    at = page("filters")
    assert "graphdef, params, rest = nnx.split(model, nnx.Param, ...)" in [c.value for c in at.code]
    assert any("rebuilds a model whose state equals the original" in s.value for s in at.success)
    at.text_input(key="split_text").set_value("nnx.Param").run()
    assert any("not exhaustive" in w.value for w in at.warning)


def test_filters_page_linen_source_viewed_as_nnx_kinds():
    at = page("filters")
    at.selectbox(key="right_pick").set_value("sample:counter:linen").run()
    at.text_input(key="filter_text").set_value("nnx.BatchStat").run()
    frame = at.dataframe[0].value
    assert frame[frame["match"]]["path"].tolist() == ["batchnorm/mean", "batchnorm/var"]


@pytest.mark.parametrize("folder", ["..", "sub/..", "../outside", "/tmp"])
def test_port_page_never_writes_or_deletes_outside_the_root(tmp_path, monkeypatch, folder):
    outer = tmp_path / "outer"
    root = outer / "root"
    (root / "sub").mkdir(parents=True)
    (outer / "keep.txt").write_text("keep")
    (root / "keep.txt").write_text("keep")
    monkeypatch.setenv("INSPECTOR_ROOT", str(root))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("app_pages/port.py").run()
    at.button(key="port_run").click().run()
    at.checkbox(key="port_force").check().run()
    at.text_input(key="port_out").set_value(folder).run()
    at.button(key="port_write").click().run()
    assert not at.exception and any("not inside the root folder" in e.value for e in at.error)
    assert (outer / "keep.txt").exists() and (root / "keep.txt").exists() and (root / "sub").is_dir()


def test_port_page_writes_a_checkpoint_under_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_ROOT", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("app_pages/port.py").run()
    at.button(key="port_run").click().run()
    at.text_input(key="port_out").set_value("converted/block").run()
    at.button(key="port_write").click().run()
    assert not at.exception and not at.error
    assert (tmp_path / "converted" / "block" / "_CHECKPOINT_METADATA").exists()


def test_diff_page_shows_the_restore_verdict_for_a_checkpoint(tmp_path, monkeypatch):
    import orbax.checkpoint as ocp

    from loaders import load_source

    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "linen", load_source("sample:block:linen").variables)
    checkpointer.wait_until_finished()
    monkeypatch.setenv("INSPECTOR_ROOT", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("app_pages/diff.py").run()
    at.selectbox(key="left_pick").set_value(OTHER).run()
    at.text_input(key="left_text").set_value("linen").run()
    assert not at.exception
    verdict = at.error[0].value
    assert verdict.startswith("**restore: fails")
    assert "linear/kernel (the checkpoint has it as params/Dense_0/kernel)" in verdict


def test_port_page_converts_under_the_root_and_offers_the_converter(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_ROOT", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("app_pages/port.py").run()
    assert not at.exception and any(s.value.startswith("OK: 4 mapped") for s in at.success)
    assert at.dataframe[0].value["nnx"].tolist()[0] == "block/linear/bias"
    at.text_input(key="convert_out").set_value("../outside").run()
    at.button(key="convert_run").click().run()
    assert any("not inside the root folder" in e.value for e in at.error) and not (tmp_path.parent / "outside").exists()
    at.text_input(key="convert_out").set_value("converted/block_nnx").run()
    at.button(key="convert_run").click().run()
    assert not at.exception and not at.error
    assert (tmp_path / "converted" / "block_nnx" / "_METADATA").exists()
    assert at.get("download_button")
