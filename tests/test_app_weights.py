"""Weight files in the app: the sidebar lists what is under the root, and Browse reads it."""

from __future__ import annotations

import os
from pathlib import Path

import ml_dtypes
import numpy as np
import orbax.checkpoint as ocp
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from loaders.discover import find_sources
from tests.weight_writers import encoder_variables, hf_flax_folder, hf_safetensors_folder, torch_state_dict

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A user's folder: loose weight files, model folders, checkpoints, and things to skip."""
    base = tmp_path / "root"
    (base / "runs").mkdir(parents=True)
    np.savez(base / "w.npz", bf=np.ones(3, ml_dtypes.bfloat16), x=np.arange(4, dtype=np.float32).reshape(2, 2))
    hf_flax_folder(base / "hub" / "bert", encoder_variables()["params"])
    hf_safetensors_folder(base / "hub" / "torch-bert", torch_state_dict(), shards=2)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save((base / "runs" / "orbax").absolute(), {"w": np.zeros(3, np.float32)})
    (base / "runs" / "ckpts").mkdir()
    (base / "runs" / "ckpts" / "checkpoint_4").write_bytes(b"\x80")
    (base / ".venv").mkdir()
    np.savez(base / ".venv" / "hidden.npz", a=np.zeros(1))
    np.savez(tmp_path / "outside.npz", a=np.zeros(1))
    os.symlink(tmp_path / "outside.npz", base / "link.npz")
    return base


def test_find_sources_lists_weights_folders_and_checkpoints_inside_the_root(root):
    found, truncated = find_sources(root)
    assert not truncated
    assert [(f.spec, f.what) for f in found] == [
        ("hub/bert", "model folder (flax_model.msgpack)"),
        ("hub/torch-bert", "model folder (model.safetensors.index.json)"),
        ("runs/ckpts", "legacy flax checkpoints (1 step)"),
        ("runs/orbax", "Orbax checkpoint"),
        ("w.npz", "npz file")]


def test_find_sources_stops_at_its_caps(root):
    found, truncated = find_sources(root, limit=2)
    assert truncated and len(found) == 2


@pytest.fixture
def app(root, monkeypatch):
    monkeypatch.setenv("INSPECTOR_ROOT", str(root))
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(APP, default_timeout=180).run()


def test_sidebar_offers_weight_files_and_browse_reads_them(app):
    assert not app.exception
    options = app.selectbox(key="left_pick").options
    assert "hub/bert — model folder (flax_model.msgpack)" in options and "w.npz — npz file" in options
    app.selectbox(key="left_pick").set_value("hub/bert").run()
    assert not app.exception and not app.error
    frame = app.dataframe[0].value
    assert "0/attention/query/kernel" in set(frame["path"]) and len(frame) == 25
    assert any(e.label.startswith("Read: msgpack folder") for e in app.expander)


def test_raw_bytes_are_listed_but_not_plotted(app):
    app.selectbox(key="left_pick").set_value("w.npz").run()
    app.selectbox(key="browse_variable").set_value("bf").run()
    assert not app.exception
    next(b for b in app.button if b.label == "Load values").click().run()
    assert not app.exception and not app.error
    assert any("raw 2-byte items" in c.value for c in app.caption)


def test_typed_weight_path_outside_the_root_is_refused(app, root):
    app.selectbox(key="left_pick").set_value("Other: a factory file or checkpoint directory…").run()
    app.text_input(key="left_text").set_value("../outside.npz").run()
    assert not app.exception and "outside the root folder" in app.error[0].value


def test_diff_page_with_a_pytorch_counter_on_one_side(root, monkeypatch):
    """``counter_only`` rows colour the table and the Sankey like the other statuses."""
    from tests.weight_writers import write_safetensors

    state = torch_state_dict()
    write_safetensors(root / "torch.safetensors", state)
    write_safetensors(root / "flax.safetensors", {k: v for k, v in state.items() if "num_batches" not in k})
    monkeypatch.setenv("INSPECTOR_ROOT", str(root))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.selectbox(key="left_pick").set_value("torch.safetensors").run()
    at.selectbox(key="right_pick").set_value("flax.safetensors").run()
    at.switch_page("app_pages/diff.py").run()
    assert not at.exception and not at.error
    frame = at.dataframe[0].value
    assert (frame["status"] == "counter_only").sum() == 2


def test_diff_page_warns_about_pairs_made_by_position_only(tmp_path, monkeypatch):
    """A sorted weight file against a renamed twin: the page says the pairing is a guess."""
    import shutil

    import jax
    from flax import serialization

    from tests.models import file_ports

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(Path(file_ports.__file__), root / "ports.py")
    module, args, _ = file_ports.linen_stack()
    variables = jax.tree.map(lambda x: x, module.init(jax.random.key(0), *args))  # keys sorted
    (root / "stack.msgpack").write_bytes(serialization.to_bytes(variables))
    monkeypatch.setenv("INSPECTOR_ROOT", str(root))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.selectbox(key="left_pick").set_value("stack.msgpack").run()
    at.selectbox(key="right_pick").set_value("Other: a factory file or checkpoint directory…").run()
    at.text_input(key="right_text").set_value("ports.py:nnx_stack").run()
    at.switch_page("app_pages/diff.py").run()
    assert not at.exception and not at.error
    assert any("6 variable(s) paired by position only" in w.value for w in at.warning)
